/*
 * main.c: the herald command line.
 *
 *   herald run      consume alerts and deliver them (worker/worker.h)
 *   herald produce  produce alerts to a topic (tools/produce.h)
 *   herald offsets  committed offsets and lag of a group (tools/groupinfo.h)
 *   herald dlq replay  re-publish dead-lettered records (tools/replay.h)
 *   herald check-config FILE  validate targets.yaml (publishers/targets.h)
 *
 * Runs on the main thread, which becomes the consumer thread of `run`.
 * Signal handlers only set flags (STYLE.md 15).
 */
#include <curl/curl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "publishers/targets.h"
#include "tools/dlqshow.h"
#include "tools/groupinfo.h"
#include "core/log.h"
#include "core/metrics.h"
#include "tools/produce.h"
#include "tools/replay.h"
#include "worker/worker.h"

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_stop(int sig)
{
    /* A second signal means "now": leave without draining. Nothing is
     * lost: what was not committed is consumed again (at-least-once). */
    if (stop_flag)
        _exit(128 + sig);
    stop_flag = 1;
}

static void on_hup(int sig)
{
    (void)sig;
    reload_flag = 1;
}

static void usage_main(FILE *out)
{
    fprintf(out,
            "herald %s: delivers Alertmanager alerts from Kafka to the "
            "people on call.\n\n"
            "Usage: herald COMMAND [OPTIONS]\n\n"
            "Commands:\n"
            "  run            consume a topic in a consumer group and "
            "publish every\n"
            "                 alert to its targets; commit after the "
            "outcome\n"
            "  produce        produce JSON alerts (a file or stdin) to a "
            "topic\n"
            "  offsets        show a group's committed offsets, end "
            "offsets and lag\n"
            "  dlq replay     re-publish records of the dead-letter "
            "topic\n"
            "  dlq show       print the records of the dead-letter topic "
            "(no commit)\n"
            "  check-config FILE  validate targets.yaml and print the "
            "effective\n"
            "                 targets (secrets masked)\n"
            "  version        print the version\n\n"
            "`herald COMMAND --help` explains the options of a command.\n",
            HERALD_VERSION);
}

static void usage_run(FILE *out)
{
    fprintf(out,
            "Usage: herald run --brokers LIST --topic NAME --group ID "
            "--targets FILE\n"
            "                  [-X prop=value]... [OPTIONS]\n\n"
            "Consumes NAME in consumer group ID, publishes every alert of "
            "every message to\n"
            "its targets in parallel and commits a message's offset only "
            "when every target\n"
            "delivered or the failure was written to the dead-letter "
            "topic (at-least-once).\n\n"
            "Kafka:\n"
            "  -b, --brokers LIST     bootstrap servers host:port,... "
            "(env HERALD_BROKERS)\n"
            "  -t, --topic NAME       topic to consume (env HERALD_TOPIC)\n"
            "  -g, --group ID         consumer group id (env HERALD_GROUP)\n"
            "  -X prop=value          librdkafka property, repeatable (as "
            "kcat), e.g.\n"
            "                         -X security.protocol=SASL_SSL\n"
            "                         -X partition.assignment.strategy="
            "cooperative-sticky\n"
            "      --dlq-topic NAME   dead-letter topic (default "
            "<topic>.dlq; created\n"
            "                         if missing with the source topic's "
            "partition count)\n"
            "Targets:\n"
            "  -c, --targets FILE     targets.yaml (env HERALD_TARGETS); "
            "reloaded on SIGHUP\n"
            "                         and when the file changes\n"
            "Delivery:\n"
            "      --window N         unfinished jobs per partition before "
            "it is paused\n"
            "                         (default 1000; resumes at N/2)\n"
            "      --queue-capacity N jobs held by the PublishingQueue "
            "(default 10000)\n"
            "      --dispatchers N    dispatcher threads (default 32)\n"
            "      --transport-threads N  HTTP I/O threads (default 2)\n"
            "      --publish-deadline-ms MS  one alert's fan-out deadline "
            "(default 30000)\n"
            "      --health-strategy S  skip_unhealthy (default), "
            "skip_unhealthy_and_degraded,\n"
            "                         publish_to_all\n"
            "      --job-max-attempts N  job attempts on total failure "
            "before it is\n"
            "                         dead-lettered (default 5)\n"
            "      --job-max-age-ms MS   job retry budget by age (default "
            "300000)\n"
            "      --commit-interval-ms MS  periodic commit (default 1000)\n"
            "      --drain-timeout-ms MS    shutdown drain deadline "
            "(default 30000)\n"
            "      --revoke-timeout-ms MS   wait for a revoked partition's "
            "jobs (10000)\n"
            "      --max-message-bytes N    larger messages are "
            "dead-lettered (1048576)\n"
            "      --max-json-depth N       deeper JSON is dead-lettered "
            "(32)\n"
            "HTTP API:\n"
            "      --api-listen ADDR:PORT  /metrics /stats /targets "
            "/healthz /readyz\n"
            "                         /publish/* (default 127.0.0.1:8080; "
            "\"\" disables)\n"
            "      --api-token TOKEN  bearer token for POST (env "
            "HERALD_API_TOKEN)\n"
            "Logging:\n"
            "  -l, --log-level L      debug, info (default), warn, error\n"
            "      --log-format F     auto (default: text on a terminal), "
            "json, text\n"
            "  -h, --help             this help\n\n"
            "Signals: SIGTERM/SIGINT stop fetching, drain in-flight jobs, "
            "commit and leave\n"
            "the group; a second SIGTERM/SIGINT exits at once (what was not "
            "committed is\n"
            "consumed again); SIGHUP reloads targets.yaml.\n");
}

enum {
    OPT_DLQ = 1000,
    OPT_WINDOW,
    OPT_QCAP,
    OPT_DISPATCHERS,
    OPT_TTHREADS,
    OPT_DEADLINE,
    OPT_STRATEGY,
    OPT_JOB_ATTEMPTS,
    OPT_JOB_AGE,
    OPT_COMMIT,
    OPT_DRAIN,
    OPT_REVOKE,
    OPT_MAX_BYTES,
    OPT_MAX_DEPTH,
    OPT_API_LISTEN,
    OPT_API_TOKEN,
    OPT_LOG_FORMAT
};

static int parse_int(const char *flag, const char *s, long min, long max,
                     long *out)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);

    if (!s[0] || *end || v < min || v > max) {
        fprintf(stderr,
                "herald: %s: expected an integer in %ld..%ld, got "
                "\"%s\"\n",
                flag, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"targets", required_argument, NULL, 'c'},
        {"log-level", required_argument, NULL, 'l'},
        {"log-format", required_argument, NULL, OPT_LOG_FORMAT},
        {"dlq-topic", required_argument, NULL, OPT_DLQ},
        {"window", required_argument, NULL, OPT_WINDOW},
        {"queue-capacity", required_argument, NULL, OPT_QCAP},
        {"dispatchers", required_argument, NULL, OPT_DISPATCHERS},
        {"transport-threads", required_argument, NULL, OPT_TTHREADS},
        {"publish-deadline-ms", required_argument, NULL, OPT_DEADLINE},
        {"health-strategy", required_argument, NULL, OPT_STRATEGY},
        {"job-max-attempts", required_argument, NULL, OPT_JOB_ATTEMPTS},
        {"job-max-age-ms", required_argument, NULL, OPT_JOB_AGE},
        {"commit-interval-ms", required_argument, NULL, OPT_COMMIT},
        {"drain-timeout-ms", required_argument, NULL, OPT_DRAIN},
        {"revoke-timeout-ms", required_argument, NULL, OPT_REVOKE},
        {"max-message-bytes", required_argument, NULL, OPT_MAX_BYTES},
        {"max-json-depth", required_argument, NULL, OPT_MAX_DEPTH},
        {"api-listen", required_argument, NULL, OPT_API_LISTEN},
        {"api-token", required_argument, NULL, OPT_API_TOKEN},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    worker_config cfg;
    const char **props = NULL;
    size_t n_props = 0;
    log_level level = LOG_LEVEL_INFO;
    log_format format = LOG_FORMAT_AUTO;
    char errstr[1024];
    struct sigaction sa;
    herald_err err;
    long v;
    int c;
    int rc = 2;

    worker_config_default(&cfg);
    cfg.brokers = getenv("HERALD_BROKERS");
    cfg.topic = getenv("HERALD_TOPIC");
    cfg.group = getenv("HERALD_GROUP");
    cfg.targets_path = getenv("HERALD_TARGETS");
    cfg.api_token = getenv("HERALD_API_TOKEN");
    cfg.api_listen = "127.0.0.1:8080";
    optind = 1;
    while ((c = getopt_long(argc, argv, "b:t:g:c:X:l:h", opts, NULL)) != -1) {
        switch (c) {
        case 'b': cfg.brokers = optarg; break;
        case 't': cfg.topic = optarg; break;
        case 'g': cfg.group = optarg; break;
        case 'c': cfg.targets_path = optarg; break;
        case 'X': {
            const char **np = realloc(props, (n_props + 1) * sizeof(*np));

            if (!np)
                goto out;
            props = np;
            props[n_props++] = optarg;
            break;
        }
        case 'l':
            if (log_level_parse(optarg, &level) != 0) {
                fprintf(stderr,
                        "herald: --log-level: unknown level \"%s\" "
                        "(debug, info, warn, error)\n",
                        optarg);
                goto out;
            }
            break;
        case OPT_LOG_FORMAT:
            if (log_format_parse(optarg, &format) != 0) {
                fprintf(stderr,
                        "herald: --log-format: expected auto, json "
                        "or text, got \"%s\"\n",
                        optarg);
                goto out;
            }
            break;
        case OPT_DLQ: cfg.dlq_topic = optarg; break;
        case OPT_API_LISTEN: cfg.api_listen = optarg; break;
        case OPT_API_TOKEN: cfg.api_token = optarg; break;
        case OPT_STRATEGY:
            if (publish_strategy_parse(optarg, &cfg.publish.strategy)) {
                fprintf(stderr,
                        "herald: --health-strategy: expected "
                        "skip_unhealthy, skip_unhealthy_and_degraded or "
                        "publish_to_all, got \"%s\"\n",
                        optarg);
                goto out;
            }
            break;
        case OPT_WINDOW:
            if (parse_int("--window", optarg, 1, 1000000, &v))
                goto out;
            cfg.window = (int)v;
            break;
        case OPT_QCAP:
            if (parse_int("--queue-capacity", optarg, 1, 1000000, &v))
                goto out;
            cfg.queue_capacity = (int)v;
            break;
        case OPT_DISPATCHERS:
            if (parse_int("--dispatchers", optarg, 1, 1024, &v))
                goto out;
            cfg.dispatchers = (int)v;
            break;
        case OPT_TTHREADS:
            if (parse_int("--transport-threads", optarg, 1, 64, &v))
                goto out;
            cfg.transport_threads = (int)v;
            break;
        case OPT_DEADLINE:
            if (parse_int("--publish-deadline-ms", optarg, 1,
                          PUBLISH_DEADLINE_MAX_MS, &v))
                goto out;
            cfg.publish.deadline_ms = v;
            break;
        case OPT_JOB_ATTEMPTS:
            if (parse_int("--job-max-attempts", optarg, 1, 1000, &v))
                goto out;
            cfg.job_max_attempts = (int)v;
            break;
        case OPT_JOB_AGE:
            if (parse_int("--job-max-age-ms", optarg, 0, 86400000L, &v))
                goto out;
            cfg.job_max_age_ms = v;
            break;
        case OPT_COMMIT:
            if (parse_int("--commit-interval-ms", optarg, 10, 600000, &v))
                goto out;
            cfg.commit_interval_ms = (int)v;
            break;
        case OPT_DRAIN:
            if (parse_int("--drain-timeout-ms", optarg, 0, 3600000, &v))
                goto out;
            cfg.drain_timeout_ms = (int)v;
            break;
        case OPT_REVOKE:
            if (parse_int("--revoke-timeout-ms", optarg, 0, 600000, &v))
                goto out;
            cfg.revoke_timeout_ms = (int)v;
            break;
        case OPT_MAX_BYTES:
            if (parse_int("--max-message-bytes", optarg, 1, 1L << 30, &v))
                goto out;
            cfg.limits.max_bytes = (size_t)v;
            break;
        case OPT_MAX_DEPTH:
            if (parse_int("--max-json-depth", optarg, 2, 1000, &v))
                goto out;
            cfg.limits.max_depth = (int)v;
            break;
        case 'h':
            usage_run(stdout);
            rc = 0;
            goto out;
        default: usage_run(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herald run: unexpected argument \"%s\"\n",
                argv[optind]);
        goto out;
    }
    if (!cfg.brokers || !cfg.topic || !cfg.group || !cfg.targets_path) {
        fprintf(stderr, "herald run: missing %s (see herald run --help)\n",
                !cfg.brokers ? "--brokers (or HERALD_BROKERS)"
                : !cfg.topic ? "--topic (or HERALD_TOPIC)"
                : !cfg.group ? "--group (or HERALD_GROUP)"
                             : "--targets (or HERALD_TARGETS)");
        goto out;
    }
    if (cfg.dlq_topic && strcmp(cfg.dlq_topic, cfg.topic) == 0) {
        fprintf(stderr,
                "herald run: --dlq-topic must differ from --topic "
                "(\"%s\"): dead-lettered records would be consumed "
                "and published again\n",
                cfg.topic);
        goto out;
    }
    cfg.props = props;
    cfg.n_props = n_props;
    log_init(level, format);

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_hup;
    sigaction(SIGHUP, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    cfg.stop = &stop_flag;
    cfg.reload = &reload_flag;

    err = worker_run(&cfg, errstr, sizeof(errstr));
    if (err) {
        LOG_ERROR("main", LOG_NOFIELDS, "%s", errstr);
        fprintf(stderr, "herald run: %s\n", errstr);
        rc = 1;
    } else {
        rc = 0;
    }
out:
    free(props);
    return rc;
}

static int cmd_check_config(int argc, char **argv)
{
    target_set *set = NULL;
    char errstr[1024];

    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fprintf(argc < 2 ? stderr : stdout,
                "Usage: herald check-config FILE\n\n"
                "Validates targets.yaml and prints the effective targets "
                "with secrets\nmasked. Exits 1 with FILE:LINE:COL and the "
                "key on the first error.\n");
        return argc < 2 ? 2 : 0;
    }
    if (targets_load(argv[1], &set, errstr, sizeof(errstr)) != HERALD_OK) {
        fprintf(stderr, "%s\n", errstr);
        return 1;
    }
    targets_print(set, stdout);
    targets_release(set);
    return 0;
}

int main(int argc, char **argv)
{
    int rc;

    if (argc < 2) {
        usage_main(stderr);
        return 2;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage_main(stdout);
        return 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("herald %s\n", HERALD_VERSION);
        return 0;
    }
    /* libcurl's global state is set up once, before any thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "herald: libcurl initialisation failed\n");
        return 1;
    }
    if (strcmp(argv[1], "run") == 0)
        rc = cmd_run(argc - 1, argv + 1);
    else if (strcmp(argv[1], "produce") == 0)
        rc = produce_main(argc - 1, argv + 1);
    else if (strcmp(argv[1], "offsets") == 0)
        rc = offsets_main(argc - 1, argv + 1);
    else if (strcmp(argv[1], "dlq") == 0 && argc > 2 &&
             strcmp(argv[2], "replay") == 0)
        rc = replay_main(argc - 2, argv + 2);
    else if (strcmp(argv[1], "dlq") == 0 && argc > 2 &&
             strcmp(argv[2], "show") == 0)
        rc = dlqshow_main(argc - 2, argv + 2);
    else if (strcmp(argv[1], "dlq") == 0) {
        fprintf(argc > 2 && (strcmp(argv[2], "--help") == 0 ||
                             strcmp(argv[2], "-h") == 0)
                    ? stdout
                    : stderr,
                "Usage: herald dlq show|replay [OPTIONS]\n\n"
                "  show    print the records of the dead-letter topic "
                "(commits nothing)\n"
                "  replay  re-publish dead-lettered records to their "
                "targets\n\n"
                "`herald dlq show --help` and `herald dlq replay --help` "
                "list the options.\n");
        rc = argc > 2 && (strcmp(argv[2], "--help") == 0 ||
                          strcmp(argv[2], "-h") == 0)
                 ? 0
                 : 2;
    } else if (strcmp(argv[1], "check-config") == 0)
        rc = cmd_check_config(argc - 1, argv + 1);
    else {
        fprintf(stderr, "herald: unknown command \"%s\"\n\n", argv[1]);
        usage_main(stderr);
        rc = 2;
    }
    metrics_shutdown();
    curl_global_cleanup();
    return rc;
}
