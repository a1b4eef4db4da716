/*
 * run_cli.c: the command line of `herald run` (worker/worker.h).
 *
 * Data flow: worker_config_default() -> the option table below
 * (core/options.h: flags, HERALD_* environment, defaults) -> with
 * --print-config the effective settings on stdout and exit; otherwise
 * the checks across flags, log_init(), one log line with the effective
 * settings (secrets masked), the stop and reload flags registered with
 * the signal thread (core/signals.h), and worker_run() on this thread,
 * which becomes the consumer thread.
 *
 * Threads: the main thread only.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/options.h"
#include "core/signals.h"
#include "worker/api.h"
#include "worker/worker.h"

/* The longest settings line logged at start, bytes. */
#define RUN_SUMMARY_MAX 8192

/* What the table fills: the worker's settings plus the fields whose C
 * type the table cannot write directly (enums, size_t). */
typedef struct run_settings {
    worker_config cfg;
    options_list props; /* -X and HERALD_KAFKA_*. */
    int max_bytes;      /* cfg.limits.max_bytes. */
    int strategy;       /* cfg.publish.strategy. */
    int level;          /* log_level. */
    int format;         /* log_format. */
    bool print_config;
} run_settings;

#define RUN_FIELD(f) offsetof(run_settings, f)

static const char *const run_strategy_words[] = {
    "skip_unhealthy", "skip_unhealthy_and_degraded", "publish_to_all", NULL};
static const int run_strategy_values[] = {PUBLISH_SKIP_UNHEALTHY,
                                          PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED,
                                          PUBLISH_TO_ALL};

/* The one option table of `herald run`. Defaults: run_settings_default(). */
static const options_entry run_entries[] = {
    OPTIONS_ENTRY_BROKERS(run_settings, cfg.brokers),
    {.name = "topic",
     .short_name = 't',
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.topic),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "topic to consume"},
    {.name = "group",
     .short_name = 'g',
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.group),
     .flags = OPTIONS_REQUIRED,
     .arg = "ID",
     .help = "consumer group id"},
    {.name = "targets",
     .short_name = 'c',
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.targets_path),
     .flags = OPTIONS_REQUIRED,
     .arg = "FILE",
     .help = "targets.yaml; reloaded on SIGHUP and when the\n"
             "file changes"},
    OPTIONS_ENTRY_PROPERTY(run_settings, props),
    {.name = "dlq-topic",
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.dlq_topic),
     .arg = "NAME",
     .help = "dead-letter topic (default <topic>.dlq); created\n"
             "if missing, with the source topic's partitions"},
    {.name = "window",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.window),
     .arg = "N",
     .min = 1,
     .max = 1000000,
     .help = "unfinished jobs per partition before it is paused\n"
             "(resumes at N/2)"},
    {.name = "queue-capacity",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.queue_capacity),
     .arg = "N",
     .min = 1,
     .max = 1000000,
     .help = "jobs held by the PublishingQueue"},
    {.name = "dispatchers",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.dispatchers),
     .arg = "N",
     .min = 1,
     .max = 1024,
     .help = "dispatcher threads"},
    {.name = "transport-threads",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.transport_threads),
     .arg = "N",
     .min = 1,
     .max = 64,
     .help = "HTTP I/O threads"},
    {.name = "publish-deadline-ms",
     .type = OPTIONS_MS,
     .offset = RUN_FIELD(cfg.publish.deadline_ms),
     .arg = "MS",
     .min = 1,
     .max = PUBLISH_DEADLINE_MAX_MS,
     .help = "one alert's fan-out deadline"},
    {.name = "health-strategy",
     .type = OPTIONS_ENUM,
     .offset = RUN_FIELD(strategy),
     .arg = "S",
     .words = run_strategy_words,
     .values = run_strategy_values,
     .help = "which targets a job is published to"},
    {.name = "job-max-attempts",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.job_max_attempts),
     .arg = "N",
     .min = 1,
     .max = 1000,
     .help = "job attempts on total failure before the job is\n"
             "dead-lettered"},
    {.name = "job-max-age-ms",
     .type = OPTIONS_MS,
     .offset = RUN_FIELD(cfg.job_max_age_ms),
     .arg = "MS",
     .min = 0,
     .max = 86400000,
     .help = "job retry budget by age"},
    {.name = "commit-interval-ms",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.commit_interval_ms),
     .arg = "MS",
     .min = 10,
     .max = 600000,
     .help = "periodic commit"},
    {.name = "drain-timeout-ms",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.drain_timeout_ms),
     .arg = "MS",
     .min = 0,
     .max = 3600000,
     .help = "shutdown drain deadline; keep it below Kubernetes' "
             "terminationGracePeriodSeconds"},
    {.name = "revoke-timeout-ms",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.revoke_timeout_ms),
     .arg = "MS",
     .min = 0,
     .max = 600000,
     .help = "wait for a revoked partition's jobs"},
    {.name = "max-message-bytes",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(max_bytes),
     .arg = "N",
     .min = 1,
     .max = 1L << 30,
     .help = "larger messages are dead-lettered"},
    {.name = "max-json-depth",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.limits.max_depth),
     .arg = "N",
     .min = 2,
     .max = 1000,
     .help = "deeper JSON is dead-lettered"},
    {.name = "api-listen",
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.api_listen),
     .arg = "ADDR:PORT",
     .help = "API: /metrics /stats /targets /healthz /readyz\n"
             "/publish/* (\"\" turns the API off)"},
    {.name = "api-token",
     .type = OPTIONS_STRING,
     .offset = RUN_FIELD(cfg.api_token),
     .flags = OPTIONS_SECRET,
     .arg = "TOKEN",
     .help = "bearer token every endpoint but /healthz and\n"
             "/readyz requires"},
    {.name = "api-read-deadline-ms",
     .type = OPTIONS_MS,
     .offset = RUN_FIELD(cfg.api_read_deadline_ms),
     .arg = "MS",
     .min = 100,
     .max = 600000,
     .help = "whole time to read one API request, headers and\n"
             "body; not reset by activity (slow clients)"},
    {.name = "api-per-ip-connections",
     .type = OPTIONS_INT,
     .offset = RUN_FIELD(cfg.api_per_ip_connections),
     .arg = "N",
     .min = 1,
     .max = 1024,
     .help = "open API connections from one client address"},
    {.name = "metrics-public",
     .type = OPTIONS_BOOL,
     .offset = RUN_FIELD(cfg.api_metrics_public),
     .help = "GET /metrics needs no token (for scrapers)"},
    {.name = "insecure-no-token",
     .type = OPTIONS_BOOL,
     .offset = RUN_FIELD(cfg.api_insecure_no_token),
     .help = "allow --api-listen on a non-loopback address\n"
             "without --api-token (anyone may publish)"},
    OPTIONS_ENTRY_LOG_LEVEL(run_settings, level, 'l'),
    {.name = "log-format",
     .type = OPTIONS_ENUM,
     .offset = RUN_FIELD(format),
     .arg = "F",
     .words = options_log_format_words,
     .values = options_log_format_values,
     .help = "auto is text on a terminal, JSON otherwise"},
    {.name = "print-config",
     .type = OPTIONS_BOOL,
     .offset = RUN_FIELD(print_config),
     .flags = OPTIONS_NOENV,
     .help = "print the effective settings, one `name = value\n"
             "# source` per line, secrets as ***, and exit\n"
             "without contacting Kafka"},
};

static const options_spec run_spec = {
    .command = "herald run",
    .usage =
        "Usage: herald run --brokers LIST --topic NAME --group ID "
        "--targets FILE\n"
        "                  [-X prop=value]... [OPTIONS]\n\n"
        "Consumes NAME in consumer group ID, publishes every alert of every "
        "message to\n"
        "its targets in parallel and commits a message's offset only when "
        "every target\n"
        "delivered or the failure was written to the dead-letter topic "
        "(at-least-once).\n\n"
        "Every flag --some-flag can be set as HERALD_SOME_FLAG (set to "
        "\"\" it means\n"
        "the empty value). A flag wins over the environment, the "
        "environment over the\n"
        "default. librdkafka properties come from -X and from "
        "HERALD_KAFKA_<PROPERTY>\n"
        "(HERALD_KAFKA_SASL_PASSWORD is sasl.password); -X wins.\n",
    .footer = "Signals: SIGTERM/SIGINT stop fetching, drain in-flight jobs, "
              "commit and leave\n"
              "the group; a second SIGTERM/SIGINT exits at once (what was "
              "not committed is\n"
              "consumed again); SIGHUP reloads targets.yaml.\n",
    OPTIONS_TABLE(run_entries),
    .max_args = 0,
};

static void run_settings_default(run_settings *rs)
{
    memset(rs, 0, sizeof *rs);
    worker_config_default(&rs->cfg);
    rs->cfg.api_listen = "127.0.0.1:8080";
    rs->cfg.api_read_deadline_ms = API_DEFAULT_READ_DEADLINE_MS;
    rs->cfg.api_per_ip_connections = API_DEFAULT_PER_IP_CONNECTIONS;
    rs->max_bytes = (int)rs->cfg.limits.max_bytes;
    rs->strategy = (int)rs->cfg.publish.strategy;
    rs->level = LOG_LEVEL_INFO;
    rs->format = LOG_FORMAT_AUTO;
}

/* Logs the effective settings, secrets masked: one line at start. */
static void run_log_settings(const run_settings *rs)
{
    buf b;

    buf_init(&b, RUN_SUMMARY_MAX);
    if (options_summary(&run_spec, rs, &b) == HERALD_OK)
        LOG_INFO("main", LOG_NOFIELDS, "settings: %s", buf_str(&b));
    buf_free(&b);
}

int worker_cli_main(int argc, char **argv)
{
    run_settings rs;
    options_state st;
    atomic_int stop = 0;
    atomic_int reload = 0;
    char errstr[1024];
    herald_err err;
    int rc;

    run_settings_default(&rs);
    rc = options_cli(&run_spec, argc, argv, &rs, &st);
    if (rc >= 0)
        goto out;
    rc = 2;
    if (rs.print_config) {
        options_print(&run_spec, &rs, &st, stdout);
        rc = 0;
        goto out;
    }
    if (rs.cfg.dlq_topic && strcmp(rs.cfg.dlq_topic, rs.cfg.topic) == 0) {
        fprintf(stderr,
                "herald run: --dlq-topic must differ from --topic "
                "(\"%s\"): dead-lettered records would be consumed "
                "and published again\n",
                rs.cfg.topic);
        goto out;
    }
    /* Refuse an open API before contacting Kafka. */
    if (rs.cfg.api_listen && rs.cfg.api_listen[0] &&
        !api_listen_check(rs.cfg.api_listen, rs.cfg.api_token,
                          rs.cfg.api_insecure_no_token, errstr,
                          sizeof(errstr))) {
        fprintf(stderr, "herald run: %s\n", errstr);
        goto out;
    }
    rs.cfg.props = (const char *const *)rs.props.items;
    rs.cfg.n_props = rs.props.n;
    rs.cfg.limits.max_bytes = (size_t)rs.max_bytes;
    rs.cfg.publish.strategy = (publish_strategy)rs.strategy;
    log_init((log_level)rs.level, (log_format)rs.format);
    run_log_settings(&rs);

    rs.cfg.stop = &stop;
    rs.cfg.reload = &reload;
    signals_watch(&stop, &reload);
    err = worker_run(&rs.cfg, errstr, sizeof(errstr));
    signals_watch(NULL, NULL);
    if (err) {
        LOG_ERROR("main", LOG_NOFIELDS, "%s", errstr);
        fprintf(stderr, "herald run: %s\n", errstr);
        rc = 1;
    } else {
        rc = 0;
    }
out:
    options_list_free(&rs.props);
    options_state_free(&st);
    return rc;
}
