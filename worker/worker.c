/*
 * worker.c: `herald run` (worker.h): wires the subsystems of the worker,
 * runs the consumer, and takes everything down in order.
 *
 * Data flow: worker_run() checks the configuration, loads targets.yaml,
 * then starts, in this order, the stats, the health monitor, the
 * ParallelPublisher (and its transport threads), the dead-letter producer,
 * the PublishingQueue (whose dispatcher threads run job.c), the Kafka
 * consumer (consumer.c) and the HTTP API (api_worker.c); it checks the
 * topics, runs the poll loop until a stop, drains (consumer_drain()),
 * closes the consumer and frees the subsystems in the reverse order.
 *
 * Threads: worker_run() runs on the caller's thread, which becomes the
 * consumer thread. Calls consumer.c, job.c (the queue's callbacks,
 * job_free), part.c, completions.c, reload.c and api_worker.c; no worker
 * file calls it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"
#include "core/clock.h"
#include "core/log.h"
#include "worker/worker_int.h"

static const char *COMP = "consumer";

/* Room for a dead letter's key and headers on top of a source record of
 * the source topic's maximum size: the key and the error text are far
 * below this in practice; a record that still does not fit is written as
 * a truncated copy (dlq.c). */
#define DLQ_HEADROOM_BYTES 65536
/* librdkafka's upper bound for message.max.bytes. */
#define DLQ_MAX_BYTES_CAP 1000000000LL

void worker_config_default(worker_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->window = 1000;
    cfg->low_watermark = -1;
    cfg->queue_capacity = 10000;
    cfg->dispatchers = 32;
    cfg->transport_threads = 2;
    cfg->commit_interval_ms = 1000;
    cfg->drain_timeout_ms = 25000;
    cfg->revoke_timeout_ms = 10000;
    cfg->job_max_attempts = 5;
    cfg->job_max_age_ms = 300000;
    cfg->job_backoff_initial_ms = 1000;
    cfg->job_backoff_max_ms = 30000;
    cfg->dlq_timeout_ms = 30000;
    cfg->targets_watch_ms = 2000;
    alert_limits_default(&cfg->limits);
    publish_opts_default(&cfg->publish);
}

/* Copies the configuration, checks what is required and fills the derived
 * settings (watermark, dead-letter topic). */
static herald_err worker_configure(worker *w, const worker_config *cfg_in,
                                   char *errstr, size_t errstr_size)
{
    w->cfg = *cfg_in;
    if (!w->cfg.brokers || !w->cfg.topic || !w->cfg.group ||
        !w->cfg.targets_path) {
        snprintf(errstr, errstr_size,
                 "--brokers, --topic, --group and --targets are required");
        return HERALD_ERR_CONFIG;
    }
    if (w->cfg.window < 1)
        w->cfg.window = 1;
    if (w->cfg.low_watermark < 0 || w->cfg.low_watermark >= w->cfg.window)
        w->cfg.low_watermark = w->cfg.window / 2;
    snprintf(w->dlq_topic, sizeof(w->dlq_topic), "%s",
             w->cfg.dlq_topic && w->cfg.dlq_topic[0] ? w->cfg.dlq_topic : "");
    if (!w->dlq_topic[0])
        snprintf(w->dlq_topic, sizeof(w->dlq_topic), "%s.dlq", w->cfg.topic);
    return HERALD_OK;
}

/* Loads the targets and starts the stats, the health monitor and the
 * publisher. */
static herald_err worker_start_publishing(worker *w, char *errstr,
                                          size_t errstr_size)
{
    target_set *set = NULL;
    parallel_config pcfg;
    herald_err ret;

    ret = targets_load(w->cfg.targets_path, &set, errstr, errstr_size);
    if (ret)
        return ret;
    reload_init(w);
    w->targets = targets_registry_new(set);
    if (!w->targets) {
        targets_release(set);
        return HERALD_ERR_NOMEM;
    }
    w->stats = stats_new();
    w->health = health_new(true, errstr, errstr_size);
    if (!w->stats || !w->health)
        return HERALD_ERR_NOMEM;
    health_set_targets(w->health, targets_list(set), targets_count(set));
    parallel_config_default(&pcfg);
    if (w->cfg.transport_threads > 0)
        pcfg.transport.n_threads = w->cfg.transport_threads;
    w->pp = parallel_new(&pcfg, w->health, errstr, errstr_size);
    return w->pp ? HERALD_OK : HERALD_ERR_CONFIG;
}

/*
 * Reads the source topic's max.message.bytes (Admin API, DescribeConfigs)
 * into the dead-letter limit w->dlq_max_bytes, so that a record the source
 * topic took fits its dead letter. Unreadable (a broker not up yet, no
 * DescribeConfigs permission): 0, logged; librdkafka's and the broker's
 * defaults apply then.
 */
static void worker_dlq_size(worker *w)
{
    char value[32], kerr[512];
    long long bytes;

    if (admin_topic_config(w->cfg.brokers, w->cfg.props, w->cfg.n_props,
                           w->cfg.topic, "max.message.bytes", value,
                           sizeof(value), 10000, kerr,
                           sizeof(kerr)) != HERALD_OK) {
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "cannot read max.message.bytes of %s (%s); the dead-letter "
                 "producer and topic keep their defaults",
                 w->cfg.topic, kerr);
        return;
    }
    bytes = atoll(value);
    if (bytes <= 0)
        return;
    bytes += DLQ_HEADROOM_BYTES;
    w->dlq_max_bytes = bytes < DLQ_MAX_BYTES_CAP ? bytes : DLQ_MAX_BYTES_CAP;
}

/*
 * Starts the dead-letter producer with message.max.bytes =
 * w->dlq_max_bytes (when known) ahead of the -X properties, which win.
 */
static herald_err worker_start_dlq(worker *w, char *errstr, size_t errstr_size)
{
    const char **props = calloc(w->cfg.n_props + 1, sizeof(*props));
    char max_kv[64];
    size_t n = 0;

    if (!props) {
        snprintf(errstr, errstr_size, "out of memory");
        return HERALD_ERR_NOMEM;
    }
    snprintf(max_kv, sizeof(max_kv), "message.max.bytes=%lld",
             w->dlq_max_bytes);
    if (w->dlq_max_bytes > 0)
        props[n++] = max_kv;
    for (size_t i = 0; i < w->cfg.n_props; i++)
        props[n++] = w->cfg.props[i];
    w->dlq =
        dlq_new(w->cfg.brokers, w->dlq_topic, props, n, errstr, errstr_size);
    free(props);
    return w->dlq ? HERALD_OK : HERALD_ERR_KAFKA;
}

/* Starts the dead-letter producer, the queue and the consumer handle. */
static herald_err worker_start_kafka(worker *w, char *errstr,
                                     size_t errstr_size)
{
    queue_config qcfg;
    herald_err err;

    worker_dlq_size(w);
    err = worker_start_dlq(w, errstr, errstr_size);
    if (err)
        return err;
    queue_config_init(&qcfg);
    qcfg.capacity = (size_t)w->cfg.queue_capacity;
    qcfg.threads = w->cfg.dispatchers;
    qcfg.drop = job_drop;
    /* Jobs are asynchronous (job.c): a job holds its fingerprint until it
     * calls queue_job_done(), not until its first step returns. */
    qcfg.manual_done = true;
    w->q = queue_new(&qcfg, job_run, w, errstr, errstr_size);
    if (!w->q)
        return HERALD_ERR_CONFIG;
    w->rk = consumer_new(w, errstr, errstr_size);
    return w->rk ? HERALD_OK : HERALD_ERR_CONFIG;
}

/*
 * Checks the source topic and makes sure the dead-letter topic exists
 * before the first bad message, with the source topic's partition count
 * and the broker's default replication factor. Runs after every local
 * setting was validated, so a typo never creates a stray topic.
 * Errors: HERALD_ERR_CONFIG when the source topic does not exist. An
 * unreachable broker is only logged: the consumer keeps retrying.
 */
static herald_err topics_check(worker *w, char *errstr, size_t errstr_size)
{
    char kerr[512], max_kv[64], value[32];
    const char *configs[] = {max_kv};
    int partitions = 0;
    herald_err err;

    if (strcmp(w->dlq_topic, w->cfg.topic) == 0) {
        snprintf(errstr, errstr_size,
                 "the dead-letter topic must differ from the source topic "
                 "\"%s\"",
                 w->cfg.topic);
        return HERALD_ERR_CONFIG;
    }
    err = admin_partition_count(w->cfg.brokers, w->cfg.props, w->cfg.n_props,
                                w->cfg.topic, &partitions, 10000, kerr,
                                sizeof(kerr));
    if (err == HERALD_ERR_NOT_FOUND) {
        snprintf(errstr, errstr_size,
                 "topic \"%s\" does not exist on %s: create it first (for "
                 "example herald produce --create-topic N)",
                 w->cfg.topic, w->cfg.brokers);
        return HERALD_ERR_CONFIG;
    }
    if (err || partitions < 1) {
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "cannot read topic %s from the brokers yet (%s); "
                 "continuing, the consumer keeps retrying",
                 w->cfg.topic, kerr);
        return HERALD_OK;
    }
    snprintf(max_kv, sizeof(max_kv), "max.message.bytes=%lld",
             w->dlq_max_bytes);
    if (admin_create_topic(w->cfg.brokers, w->cfg.props, w->cfg.n_props,
                           w->dlq_topic, partitions, -1, configs,
                           w->dlq_max_bytes > 0 ? 1 : 0, 10000, kerr,
                           sizeof(kerr)) != HERALD_OK) {
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "could not ensure the dead-letter topic %s exists: %s",
                 w->dlq_topic, kerr);
        return HERALD_OK;
    }
    /* An existing topic keeps its limit: say what that means. */
    if (w->dlq_max_bytes > 0 &&
        admin_topic_config(w->cfg.brokers, w->cfg.props, w->cfg.n_props,
                           w->dlq_topic, "max.message.bytes", value,
                           sizeof(value), 10000, kerr,
                           sizeof(kerr)) == HERALD_OK &&
        atoll(value) < w->dlq_max_bytes)
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "dead-letter topic %s has max.message.bytes=%s, less than "
                 "the %lld a record of %s may need: larger dead letters are "
                 "written as truncated copies (herald-truncated)",
                 w->dlq_topic, value, w->dlq_max_bytes, w->cfg.topic);
    return HERALD_OK;
}

static void worker_free(worker *w)
{
    job *head;

    /*
     * Order matters. Jobs still in flight here (only after the drain
     * deadline) are cancelled: every step then finishes at once without
     * touching the publisher or the dead-letter producer. The publisher
     * goes first: destroying it completes pending fan-outs, whose
     * callbacks resume their jobs in the queue, which must still exist.
     * Then the dead-letter producer is closed: it refuses new writes and
     * waits until the report of every write in flight has resumed its job
     * (at the latest after dlq_timeout_ms). Destroying the queue then runs
     * those continuations.
     */
    atomic_store(&w->stopping, true);
    parallel_destroy(w->pp);
    w->pp = NULL;
    dlq_close(w->dlq);
    queue_destroy(w->q);
    /* Jobs the queue handed back while it was destroyed. */
    head = completions_take(&w->done);
    while (head) {
        job *next = head->next;

        job_free(head);
        head = next;
    }
    health_destroy(w->health);
    dlq_destroy(w->dlq);
    targets_registry_destroy(w->targets);
    stats_destroy(w->stats);
    parts_free(w);
    completions_free(&w->done);
}

herald_err worker_run(const worker_config *cfg_in, char *errstr,
                      size_t errstr_size)
{
    worker w;
    api_server *api = NULL;
    herald_err ret;
    rd_kafka_resp_err_t kerr;

    memset(&w, 0, sizeof(w));
    completions_init(&w.done);
    consumer_metrics_init(&w.cm);
    ret = worker_configure(&w, cfg_in, errstr, errstr_size);
    if (!ret)
        ret = worker_start_publishing(&w, errstr, errstr_size);
    if (!ret)
        ret = worker_start_kafka(&w, errstr, errstr_size);
    if (!ret)
        ret = api_worker_start(&w, &api, errstr, errstr_size);
    if (!ret)
        ret = topics_check(&w, errstr, errstr_size);
    if (ret)
        goto out;
    ret = consumer_poll_loop(&w, errstr, errstr_size);
    consumer_drain(&w);
    kerr = rd_kafka_consumer_close(w.rk);
    if (kerr)
        LOG_WARN(COMP, LOG_NOFIELDS, "consumer close: %s",
                 rd_kafka_err2str(kerr));
    LOG_INFO(COMP, LOG_NOFIELDS, "stopped after %lld messages",
             (long long)atomic_load(&w.consumed));
out:
    api_destroy(api);
    if (w.rk)
        rd_kafka_destroy(w.rk);
    w.rk = NULL;
    worker_free(&w);
    return ret;
}
