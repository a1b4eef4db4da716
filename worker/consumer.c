/*
 * consumer.c: the Kafka consumer of `herald run` and its poll loop.
 *
 * Data flow: rd_kafka_consumer_poll -> message_handle(): job_new() (job.c:
 * value copied, parsed) -> offset tracker of its partition ->
 * backpressure_push() (the queue, or the partition's backlog when it is
 * full) ... dispatcher threads run the job (job.c), which ends in the
 * completion mailbox ... each poll: commit_mark_finished() marks offsets
 * final (commit.c), backpressure_apply() pauses and resumes, commit_tick()
 * commits each partition's contiguous finished prefix, the gauges and the
 * targets reload (reload.c) run on their own intervals. librdkafka calls
 * rebalance_cb() (rebalance.c) and commit_cb() (commit.c) from inside the
 * poll. At shutdown consumer_drain() lets the jobs finish while it keeps
 * polling, then commits.
 *
 * Threads: everything here runs on the consumer thread (the caller of
 * worker_run), which alone touches rd_kafka_t. The poll loop never blocks
 * on targets: it polls at least every POLL_MS (100 ms), so
 * max.poll.interval.ms is never exceeded whatever the targets do.
 * Calls rebalance.c, commit.c, backpressure.c, reload.c, job.c and part.c;
 * none of them calls it back. worker.c calls it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker_int.h"

/* Longest poll of the consumer thread, ms: the loop's duties (completions,
 * backpressure, commits) run at least this often. */
#define POLL_MS 100

static const char *COMP = "consumer";

void consumer_metrics_init(consumer_metrics *cm)
{
    cm->messages = metrics_family(
        METRIC_COUNTER, "herald_consumer_messages_total",
        "Messages consumed from Kafka.", "topic,partition", NULL, 0);
    cm->lag = metrics_family(METRIC_GAUGE, "herald_consumer_lag",
                             "High watermark minus the commit point.",
                             "topic,partition", NULL, 0);
    cm->committed = metrics_family(
        METRIC_GAUGE, "herald_consumer_committed_offset",
        "Last offset committed (next to consume).", "topic,partition", NULL, 0);
    cm->inflight = metrics_family(METRIC_GAUGE, "herald_jobs_inflight",
                                  "Jobs consumed and not yet final.",
                                  "topic,partition", NULL, 0);
    cm->oldest_age = metrics_family(
        METRIC_GAUGE, "herald_oldest_unfinished_job_age_seconds",
        "Age of the oldest job that pins the partition's commit point.",
        "topic,partition", NULL, 0);
    cm->paused = metrics_family(METRIC_GAUGE, "herald_consumer_paused",
                                "1 while a partition is paused "
                                "(backpressure).",
                                "topic,partition", NULL, 0);
    cm->rebalances =
        metrics_family(METRIC_COUNTER, "herald_consumer_rebalances_total",
                       "Rebalance events by kind.", "kind", NULL, 0);
    cm->commits =
        metrics_family(METRIC_COUNTER, "herald_commits_total",
                       "Offset commits by result.", "result", NULL, 0);
}

static void kafka_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *buf)
{
    log_level lvl = level <= 3   ? LOG_LEVEL_ERROR
                    : level <= 4 ? LOG_LEVEL_WARN
                    : level <= 6 ? LOG_LEVEL_INFO
                                 : LOG_LEVEL_DEBUG;

    (void)rk;
    LOG_AT(lvl, "librdkafka", LOG_NOFIELDS, "%s: %s", fac, buf);
}

/* Applies herald's defaults, then the -X properties (auto commit refused:
 * herald commits itself). False with kerr filled. */
static bool consumer_conf_fill(worker *w, rd_kafka_conf_t *conf, char *kerr,
                               size_t kerr_size)
{
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        {"client.id", "herald"},
        /* Headroom for the revoke wait inside the rebalance callback. */
        {"max.poll.interval.ms", "300000"},
    };

    if (rd_kafka_conf_set(conf, "bootstrap.servers", w->cfg.brokers, kerr,
                          kerr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", w->cfg.group, kerr, kerr_size) !=
            RD_KAFKA_CONF_OK)
        return false;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], kerr,
                              kerr_size) != RD_KAFKA_CONF_OK)
            return false;
    }
    for (size_t i = 0; i < w->cfg.n_props; i++) {
        char *kv = strdup(w->cfg.props[i]);
        char *eq = kv ? strchr(kv, '=') : NULL;
        rd_kafka_conf_res_t res;

        if (!eq) {
            snprintf(kerr, kerr_size, "-X %s: expected prop=value",
                     w->cfg.props[i]);
            free(kv);
            return false;
        }
        *eq = '\0';
        if (strcmp(kv, "enable.auto.commit") == 0 ||
            strcmp(kv, "enable.auto.offset.store") == 0) {
            snprintf(kerr, kerr_size,
                     "-X %s: herald manages commits itself (at-least-once)",
                     kv);
            free(kv);
            return false;
        }
        res = rd_kafka_conf_set(conf, kv, eq + 1, kerr, kerr_size);
        free(kv);
        if (res != RD_KAFKA_CONF_OK)
            return false;
    }
    return true;
}

rd_kafka_t *consumer_new(worker *w, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    char kerr[512];

    if (!consumer_conf_fill(w, conf, kerr, sizeof(kerr))) {
        snprintf(errstr, errstr_size, "kafka configuration: %s", kerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, commit_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", kerr);
        return NULL; /* rd_kafka_new frees conf only on success. */
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* Out of memory for a message's job: seek back so that the message is
 * consumed again. */
static void message_retry_later(worker *w, part *p, rd_kafka_message_t *rkm)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(l, w->cfg.topic, p->partition)->offset =
        rkm->offset;
    rd_kafka_seek_partitions(w->rk, l, 1000);
    rd_kafka_topic_partition_list_destroy(l);
    LOG_ERROR(
        COMP,
        (&(log_fields){NULL, w->cfg.topic, p->partition, rkm->offset, NULL}),
        "out of memory: message will be consumed again");
}

/* Turns one consumed message into a tracked job on its way to the queue. */
static void message_handle(worker *w, rd_kafka_message_t *rkm)
{
    part *p;
    job *job;
    char lbl[16];

    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            return;
        LOG_WARN(COMP,
                 (&(log_fields){NULL,
                                rkm->rkt ? rd_kafka_topic_name(rkm->rkt) : NULL,
                                rkm->partition, rkm->offset, NULL}),
                 "consumer error: %s", rd_kafka_message_errstr(rkm));
        return;
    }
    p = part_get(w, rkm->partition);
    if (!p || atomic_load(&p->revoked)) {
        /* Not ours (any more): the owner consumes it; nothing to do. */
        return;
    }
    job = job_new(w, p, rkm);
    if (!job) {
        message_retry_later(w, p, rkm);
        return;
    }
    if (offset_tracker_add(p->tracker, rkm->offset, job->received_ms)) {
        /* An offset at or below one we track: a re-delivery after a seek.
         * It is already tracked (or done); the earlier copy counts. */
        LOG_DEBUG(COMP,
                  (&(log_fields){NULL, w->cfg.topic, p->partition, rkm->offset,
                                 NULL}),
                  "duplicate offset ignored");
        job_free(job);
        return;
    }
    if (p->first_offset < 0)
        p->first_offset = rkm->offset;
    atomic_fetch_add(&w->consumed, 1);
    part_label(p->partition, lbl, sizeof(lbl));
    metrics_add(w->cm.messages, 1, w->cfg.topic, lbl);
    p->outstanding++;
    backpressure_push(w, p, job);
}

/* Refreshes the per-partition gauges: in flight, oldest age, lag. */
static void gauges_update(worker *w)
{
    int64_t now = herald_now_ms();

    for (size_t i = 0; i < w->n_parts_cap; i++) {
        part *p = w->parts[i];
        int64_t low = 0;
        int64_t high = 0;
        int64_t point;
        char lbl[16];

        if (!p)
            continue;
        part_label(p->partition, lbl, sizeof(lbl));
        metrics_set(w->cm.inflight, (double)offset_tracker_inflight(p->tracker),
                    w->cfg.topic, lbl);
        metrics_set(w->cm.oldest_age,
                    (double)offset_tracker_oldest_age_ms(p->tracker, now) /
                        1000.0,
                    w->cfg.topic, lbl);
        point = offset_tracker_commit_point(p->tracker);
        if (rd_kafka_get_watermark_offsets(w->rk, w->cfg.topic, p->partition,
                                           &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0 && point >= 0)
            metrics_set(w->cm.lag, (double)(high > point ? high - point : 0),
                        w->cfg.topic, lbl);
    }
}

static herald_err consumer_subscribe(worker *w, char *errstr,
                                     size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *sub;
    rd_kafka_resp_err_t kerr;

    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, w->cfg.topic, RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(w->rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr) {
        snprintf(errstr, errstr_size, "subscribe to %s: %s", w->cfg.topic,
                 rd_kafka_err2str(kerr));
        return HERALD_ERR_KAFKA;
    }
    return HERALD_OK;
}

herald_err consumer_poll_loop(worker *w, char *errstr, size_t errstr_size)
{
    herald_err ret = consumer_subscribe(w, errstr, errstr_size);
    target_set *set;

    if (ret)
        return ret;
    set = targets_registry_current(w->targets);
    LOG_INFO(COMP, LOG_NOFIELDS,
             "consuming %s in group %s from %s; %zu targets; dead-letter "
             "topic %s",
             w->cfg.topic, w->cfg.group, w->cfg.brokers, targets_count(set),
             w->dlq_topic);
    targets_release(set);
    w->next_commit = herald_now_ms() + w->cfg.commit_interval_ms;
    while (!*w->cfg.stop) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w->rk, POLL_MS);
        int64_t now;
        char fatal[512];

        if (rkm) {
            message_handle(w, rkm);
            rd_kafka_message_destroy(rkm);
        }
        commit_mark_finished(w);
        backpressure_apply(w);
        now = herald_now_ms();
        commit_tick(w, now);
        if (now >= w->next_gauges) {
            gauges_update(w);
            w->next_gauges = now + 1000;
        }
        reload_check(w, now);
        if (rd_kafka_fatal_error(w->rk, fatal, sizeof(fatal))) {
            snprintf(errstr, errstr_size, "fatal kafka error: %s", fatal);
            return HERALD_ERR_KAFKA;
        }
    }
    return HERALD_OK;
}

/*
 * The drain deadline passed with jobs left: cancel them (every step then
 * finishes at once, not final) and give them 10 s more to come back.
 * Returns the new deadline, or -1 when they were cancelled already.
 */
static int64_t drain_cancel(worker *w, size_t left)
{
    if (atomic_load(&w->stopping))
        return -1;
    LOG_WARN(COMP, LOG_NOFIELDS,
             "drain deadline passed with %zu unfinished jobs: "
             "cancelling them; they are not committed",
             left);
    atomic_store(&w->stopping, true);
    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            atomic_store(&w->parts[i]->cancel, true);
    }
    /* Jobs waiting out a backoff see the cancel now. */
    queue_timers_expire(w->q);
    /* Cancelled jobs come back quickly; give them 10 s. */
    return herald_now_ms() + 10000;
}

void consumer_drain(worker *w)
{
    int64_t deadline = herald_now_ms() + w->cfg.drain_timeout_ms;
    size_t left;

    LOG_INFO(COMP, LOG_NOFIELDS,
             "shutting down: draining %zu jobs (deadline %d ms)",
             parts_outstanding(w), w->cfg.drain_timeout_ms);
    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            backpressure_pause(w, w->parts[i], true);
    }
    for (;;) {
        rd_kafka_message_t *rkm;

        commit_mark_finished(w);
        for (size_t i = 0; i < w->n_parts_cap; i++) {
            if (w->parts[i])
                backpressure_flush(w, w->parts[i]);
        }
        left = parts_outstanding(w);
        /* The final commit waits for a pending cooperative rejoin (it
         * would fail), within the drain deadline. */
        if (left == 0 && (!commit_blocked(w) || herald_now_ms() >= deadline))
            break;
        if (herald_now_ms() >= deadline) {
            deadline = drain_cancel(w, left);
            if (deadline < 0)
                break;
            continue;
        }
        /* Keep serving the group (heartbeats, rebalances); messages that
         * still arrive are not ours to process now: not tracked, so not
         * committed. */
        rkm = rd_kafka_consumer_poll(w->rk, POLL_MS / 2);
        if (rkm)
            rd_kafka_message_destroy(rkm);
    }
    commit_due(w, true, NULL);
    queue_stop(w->q);
    commit_mark_finished(w);
}
