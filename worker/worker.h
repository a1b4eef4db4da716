/*
 * worker.h: `herald run`, the Kafka consumer worker.
 *
 * One consumer thread (the caller of worker_run) owns the rd_kafka_t: it
 * polls messages, parses each into a job, tracks the job's offset, pushes
 * it into the PublishingQueue, handles rebalances, pauses and resumes
 * partitions, and commits. Dispatcher threads of the queue run jobs
 * (worker/job.c): publish every alert to its targets through the
 * ParallelPublisher, retry total failures within a budget, write what
 * could not be delivered to the dead-letter topic, and hand the finished
 * job back to the consumer thread, which marks its offset final.
 * The delivery contract is ARCHITECTURE.md's "Delivery semantics".
 */
#ifndef HERALD_WORKER_H
#define HERALD_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"
#include "core/err.h"
#include "publishers/parallel.h"

/* Settings of `herald run`. worker_config_default() fills the defaults. */
typedef struct worker_config {
    const char *brokers;      /* Bootstrap servers, "host:port,...". */
    const char *topic;        /* Topic to consume. */
    const char *group;        /* Consumer group id. */
    const char *targets_path; /* targets.yaml. */
    const char *dlq_topic;    /* Dead-letter topic; NULL = "<topic>.dlq". */
    const char *const *props; /* n_props "key=value" librdkafka properties
                                 (-X), applied after herald's defaults. */
    size_t n_props;
    int window;             /* Unfinished jobs per partition before it is
                               paused (default 1000). */
    int low_watermark;      /* Resume at or below this (default window/2). */
    int queue_capacity;     /* PublishingQueue capacity, jobs (10000). */
    int dispatchers;        /* Dispatcher threads (default 32). */
    int transport_threads;  /* HTTP I/O threads (default 2). */
    int commit_interval_ms; /* Periodic commit (default 1000). */
    int drain_timeout_ms;   /* Shutdown drain deadline (default 25000). */
    int revoke_timeout_ms;  /* Wait for revoked partitions' jobs (10000). */
    int job_max_attempts;   /* Job attempts on total failure (default 5). */
    int64_t job_max_age_ms; /* Job retry budget by age (default 300000). */
    int job_backoff_initial_ms;   /* Job retry backoff (default 1000). */
    int job_backoff_max_ms;       /* Job retry backoff cap (default 30000). */
    int dlq_timeout_ms;           /* One dead-letter write (default 30000). */
    alert_limits limits;          /* Message size, depth, alert count. */
    publish_opts publish;         /* Deadline, health strategy, breakers. */
    const char *api_listen;       /* "127.0.0.1:8080"; NULL or "" = no API. */
    const char *api_token;        /* Bearer token for the API, or NULL. */
    bool api_metrics_public;      /* GET /metrics needs no token. */
    bool api_insecure_no_token;   /* Non-loopback API without a token. */
    int64_t api_read_deadline_ms; /* 0: the API's default (api.h). */
    int api_per_ip_connections;   /* 0: the API's default (api.h). */
    int targets_watch_ms; /* Poll targets.yaml for changes (2000; 0 off). */
    atomic_int *stop;     /* Set by SIGTERM/SIGINT (the signal thread,
                             core/signals.h): shut down. */
    atomic_int *reload;   /* Set by SIGHUP: reload targets; NULL = none. */
} worker_config;

/* Fills cfg with the defaults listed above (strings NULL). */
void worker_config_default(worker_config *cfg);

/*
 * Runs the worker on the calling thread until *cfg->stop becomes non-zero,
 * then shuts down as ARCHITECTURE.md says: stop fetching, drain with a
 * deadline, commit, leave the group. cfg and its strings are borrowed for
 * the call. Returns HERALD_OK after a clean shutdown; HERALD_ERR_CONFIG or
 * HERALD_ERR_KAFKA (errstr filled) when it cannot start; HERALD_ERR_KAFKA
 * on a fatal consumer error.
 */
herald_err worker_run(const worker_config *cfg, char *errstr,
                      size_t errstr_size);

/*
 * Runs `herald run` (worker/run_cli.c): argv[0] is "run", the flags
 * follow; settings come from flags, HERALD_* variables and defaults
 * (core/options.h). Registers its stop and reload flags with the signal
 * thread (core/signals.h) for the run. Returns the exit status: 0 after a
 * clean shutdown or --help/--print-config, 1 when the worker fails, 2 on
 * a usage error. Main thread only, once at a time.
 */
int worker_cli_main(int argc, char **argv);

#endif
