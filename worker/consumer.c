/*
 * consumer.c: the consumer thread of `herald run` (see worker.h).
 *
 * Data flow: rd_kafka_consumer_poll -> job (value copied, parsed) ->
 * offset tracker of its partition -> queue_push (or the partition's backlog
 * when the queue is full) ... dispatcher threads run the job (job.c) ...
 * worker_job_done() -> completion list -> this thread marks the offset
 * final -> periodic commit of each partition's contiguous finished prefix.
 *
 * Threads: everything here runs on the consumer thread (the caller of
 * worker_run), including librdkafka's rebalance and commit callbacks, which
 * librdkafka calls from rd_kafka_consumer_poll. The only shared state is
 * the completion list (done_lock) and the atomic flags of partitions.
 * The poll loop never blocks on targets: it polls at least every 100 ms,
 * so max.poll.interval.ms is never exceeded whatever the targets do.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "publishers/breaker.h"
#include "core/admin.h"
#include "worker/api.h"
#include "core/log.h"
#include "core/metrics.h"
#include "worker/worker_int.h"

#define POLL_MS 100
/* Longest wait for a cooperative rejoin before periodic commits resume
 * anyway, ms: well above a rebalance of a healthy group (a few heartbeat
 * intervals), and a late commit only widens what a crash redelivers. */
#define REJOIN_MAX_MS 30000

static const char *COMP = "consumer";

void worker_config_default(worker_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->window = 1000;
    cfg->low_watermark = -1;
    cfg->queue_capacity = 10000;
    cfg->dispatchers = 32;
    cfg->transport_threads = 2;
    cfg->commit_interval_ms = 1000;
    cfg->drain_timeout_ms = 30000;
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

/* Metrics of the consumer, registered once per process. */
static struct {
    metric *messages;
    metric *lag;
    metric *committed;
    metric *inflight;
    metric *oldest_age;
    metric *paused;
    metric *rebalances;
    metric *commits;
} cm;

static void consumer_metrics_init(void)
{
    cm.messages = metrics_family(
        METRIC_COUNTER, "herald_consumer_messages_total",
        "Messages consumed from Kafka.", "topic,partition", NULL, 0);
    cm.lag = metrics_family(METRIC_GAUGE, "herald_consumer_lag",
                            "High watermark minus the commit point.",
                            "topic,partition", NULL, 0);
    cm.committed = metrics_family(
        METRIC_GAUGE, "herald_consumer_committed_offset",
        "Last offset committed (next to consume).", "topic,partition", NULL, 0);
    cm.inflight = metrics_family(METRIC_GAUGE, "herald_jobs_inflight",
                                 "Jobs consumed and not yet final.",
                                 "topic,partition", NULL, 0);
    cm.oldest_age = metrics_family(
        METRIC_GAUGE, "herald_oldest_unfinished_job_age_seconds",
        "Age of the oldest job that pins the partition's commit point.",
        "topic,partition", NULL, 0);
    cm.paused = metrics_family(METRIC_GAUGE, "herald_consumer_paused",
                               "1 while a partition is paused "
                               "(backpressure).",
                               "topic,partition", NULL, 0);
    cm.rebalances =
        metrics_family(METRIC_COUNTER, "herald_consumer_rebalances_total",
                       "Rebalance events by kind.", "kind", NULL, 0);
    cm.commits = metrics_family(METRIC_COUNTER, "herald_commits_total",
                                "Offset commits by result.", "result", NULL, 0);
}

void part_unref(part *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
        offset_tracker_destroy(p->tracker);
        free(p);
    }
}

void worker_job_done(worker *w, job *job)
{
    job->next = NULL;
    pthread_mutex_lock(&w->done_lock);
    if (w->done_tail)
        w->done_tail->next = job;
    else
        w->done_head = job;
    w->done_tail = job;
    pthread_mutex_unlock(&w->done_lock);
    pthread_cond_signal(&w->done_cond);
}

static part *part_get(worker *w, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= w->n_parts_cap)
        return NULL;
    return w->parts[partition];
}

static void part_label(int32_t partition, char *out, size_t n)
{
    snprintf(out, n, "%" PRId32, partition);
}

static herald_err part_add(worker *w, int32_t partition)
{
    part *p;

    if ((size_t)partition >= w->n_parts_cap) {
        size_t ncap = (size_t)partition + 16;
        part **np = realloc(w->parts, ncap * sizeof(*np));

        if (!np)
            return HERALD_ERR_NOMEM;
        memset(np + w->n_parts_cap, 0, (ncap - w->n_parts_cap) * sizeof(*np));
        w->parts = np;
        w->n_parts_cap = ncap;
    }
    if (w->parts[partition])
        return HERALD_OK; /* Already ours (cooperative re-assign). */
    p = calloc(1, sizeof(*p));
    if (!p)
        return HERALD_ERR_NOMEM;
    p->tracker = offset_tracker_new(w->cfg.topic, partition);
    if (!p->tracker) {
        free(p);
        return HERALD_ERR_NOMEM;
    }
    atomic_init(&p->refs, 1);
    atomic_init(&p->revoked, false);
    atomic_init(&p->cancel, false);
    p->partition = partition;
    p->first_offset = -1;
    w->parts[partition] = p;
    return HERALD_OK;
}

/* Processes every completion handed back so far. Consumer thread. */
static void completions_drain(worker *w)
{
    job *head;

    pthread_mutex_lock(&w->done_lock);
    head = w->done_head;
    w->done_head = NULL;
    w->done_tail = NULL;
    pthread_mutex_unlock(&w->done_lock);

    while (head) {
        job *job = head;
        part *p = job->part;

        head = job->next;
        if (!p->removed) {
            p->outstanding--;
            /* A job that did not reach a final state (cancelled by a
             * revoke or shutdown) is never marked: its offset pins the
             * commit point and the message is consumed again by the next
             * owner. */
            if (job->final &&
                offset_tracker_done(p->tracker, job->offset) != HERALD_OK)
                LOG_ERROR(COMP,
                          (&(log_fields){NULL, w->cfg.topic, p->partition,
                                         job->offset, NULL}),
                          "completion for an offset that is not tracked");
        }
        job_free(job);
    }
}

static void partitions_pause(worker *w, part *p, bool pause)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;
    char lbl[16];

    if (p->paused == pause)
        return;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, w->cfg.topic, p->partition);
    err = pause ? rd_kafka_pause_partitions(w->rk, list)
                : rd_kafka_resume_partitions(w->rk, list);
    rd_kafka_topic_partition_list_destroy(list);
    if (err) {
        LOG_WARN(
            COMP, (&(log_fields){NULL, w->cfg.topic, p->partition, -1, NULL}),
            "%s failed: %s", pause ? "pause" : "resume", rd_kafka_err2str(err));
        return;
    }
    p->paused = pause;
    part_label(p->partition, lbl, sizeof(lbl));
    metrics_set(cm.paused, pause ? 1 : 0, w->cfg.topic, lbl);
    LOG_DEBUG(COMP, (&(log_fields){NULL, w->cfg.topic, p->partition, -1, NULL}),
              "partition %s (%zu unfinished jobs)",
              pause ? "paused" : "resumed",
              offset_tracker_inflight(p->tracker));
}

/* Pushes a partition's backlog into the queue, in offset order. */
static void backlog_flush(worker *w, part *p)
{
    while (p->backlog_head) {
        job *job = p->backlog_head;

        if (queue_push(w->q, job->queue_key, job->priority, job) != HERALD_OK)
            return;
        p->backlog_head = job->next;
        if (!p->backlog_head)
            p->backlog_tail = NULL;
        job->next = NULL;
    }
}

/*
 * What a crash now would consume again on this partition: from the last
 * committed offset (the assignment's first offset before any commit) to
 * the last consumed one. That is the tracked entries (from the commit
 * point on, finished or not) plus the finished jobs between the last
 * commit sent and the commit point, which the tracker has released but
 * Kafka does not know about yet. Counted in offsets, so gaps count too:
 * an overestimate, never an underestimate.
 */
static size_t part_redeliverable(const part *p)
{
    size_t n = offset_tracker_tracked(p->tracker);
    int64_t point = offset_tracker_commit_point(p->tracker);
    int64_t base = offset_tracker_committed(p->tracker);

    if (base < 0)
        base = p->first_offset;
    if (base >= 0 && point > base)
        n += (size_t)(point - base);
    return n;
}

/* Applies the in-flight window: pause above it, resume at the low mark. */
static void backpressure_apply(worker *w)
{
    size_t low = (size_t)w->cfg.low_watermark;

    for (size_t i = 0; i < w->n_parts_cap; i++) {
        part *p = w->parts[i];
        size_t inflight;

        if (!p)
            continue;
        backlog_flush(w, p);
        /* What a crash would redeliver (tracked entries plus finished,
         * not yet committed ones): bounding it bounds memory and the
         * duplicates after a crash by the window. */
        inflight = part_redeliverable(p);
        if (!p->paused &&
            (inflight >= (size_t)w->cfg.window || p->backlog_head))
            partitions_pause(w, p, true);
        else if (p->paused && !p->backlog_head && inflight <= low &&
                 !atomic_load(&p->revoked))
            partitions_pause(w, p, false);
    }
}

/*
 * True while a cooperative rejoin of ours is pending (see worker_int.h):
 * a commit sent now would fail and make librdkafka drop the assignment.
 */
static bool commit_blocked(worker *w)
{
    if (w->rejoin_assigns <= 0)
        return false;
    if (herald_now_ms() >= w->rejoin_until_ms) {
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "rebalance did not complete in %d ms after a cooperative "
                 "revoke: committing again",
                 REJOIN_MAX_MS);
        w->rejoin_assigns = 0;
        return false;
    }
    return true;
}

/*
 * Commits the contiguous finished prefix of every partition whose commit
 * point advanced. Only partitions we own are ever in the list.
 */
static void commit_due(worker *w, bool sync, part *only)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;

    list = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < w->n_parts_cap; i++) {
        part *p = w->parts[i];
        int64_t point;

        if (!p || (only && p != only))
            continue;
        if (offset_tracker_commit_due(p->tracker, &point))
            rd_kafka_topic_partition_list_add(list, w->cfg.topic, p->partition)
                ->offset = point;
    }
    if (list->cnt == 0) {
        rd_kafka_topic_partition_list_destroy(list);
        return;
    }
    err = rd_kafka_commit(w->rk, list, sync ? 0 : 1);
    if (sync || err) {
        metrics_add(cm.commits, 1, err ? "error" : "ok");
        if (err)
            LOG_WARN(COMP, LOG_NOFIELDS, "commit failed: %s",
                     rd_kafka_err2str(err));
    }
    if (!err) {
        for (int i = 0; i < list->cnt; i++) {
            part *p = part_get(w, list->elems[i].partition);
            char lbl[16];

            if (!p)
                continue;
            offset_tracker_mark_committed(p->tracker, list->elems[i].offset);
            part_label(p->partition, lbl, sizeof(lbl));
            metrics_set(cm.committed, (double)list->elems[i].offset,
                        w->cfg.topic, lbl);
            LOG_DEBUG(COMP,
                      (&(log_fields){NULL, w->cfg.topic, p->partition,
                                     list->elems[i].offset, NULL}),
                      "committed");
        }
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void offset_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                             rd_kafka_topic_partition_list_t *offsets,
                             void *opaque)
{
    worker *w = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    metrics_add(cm.commits, 1, err ? "error" : "ok");
    if (err) {
        LOG_WARN(COMP, LOG_NOFIELDS, "commit failed: %s",
                 rd_kafka_err2str(err));
        /* Commit again next time: forget what we believed committed. */
        for (int i = 0; offsets && i < offsets->cnt; i++) {
            part *p = part_get(w, offsets->elems[i].partition);

            if (p)
                offset_tracker_mark_committed(p->tracker, -1);
        }
    }
}

/*
 * Revokes partitions: stop dispatching their jobs, wait for in-flight jobs
 * up to revoke_timeout_ms, commit the contiguous finished prefix
 * synchronously (unless the assignment was lost), cancel what is left,
 * forget the partitions. Late completions are ignored (p->removed).
 */
static void partitions_revoke(worker *w, rd_kafka_topic_partition_list_t *parts,
                              bool lost)
{
    int64_t deadline = herald_now_ms() + w->cfg.revoke_timeout_ms;

    for (int i = 0; i < parts->cnt; i++) {
        part *p = part_get(w, parts->elems[i].partition);

        if (p)
            atomic_store(&p->revoked, true);
    }
    for (;;) {
        size_t waiting = 0;
        struct timespec ts;

        completions_drain(w);
        for (int i = 0; i < parts->cnt; i++) {
            part *p = part_get(w, parts->elems[i].partition);

            if (p)
                waiting += p->outstanding;
        }
        if (waiting == 0 || herald_now_ms() >= deadline || lost)
            break;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&w->done_lock);
        if (!w->done_head)
            pthread_cond_timedwait(&w->done_cond, &w->done_lock, &ts);
        pthread_mutex_unlock(&w->done_lock);
    }
    for (int i = 0; i < parts->cnt; i++) {
        part *p = part_get(w, parts->elems[i].partition);
        char lbl[16];

        if (!p)
            continue;
        if (!lost)
            commit_due(w, true, p);
        if (p->outstanding)
            LOG_WARN(
                COMP,
                (&(log_fields){NULL, w->cfg.topic, p->partition, -1, NULL}),
                "revoked with %zu unfinished jobs: cancelled, the next "
                "owner consumes them again from offset %" PRId64,
                p->outstanding, offset_tracker_commit_point(p->tracker));
        else
            LOG_INFO(
                COMP,
                (&(log_fields){NULL, w->cfg.topic, p->partition, -1, NULL}),
                "partition revoked%s", lost ? " (assignment lost)" : "");
        atomic_store(&p->cancel, true);
        p->removed = true;
        /* Backlog jobs never reached the queue: free them here. */
        while (p->backlog_head) {
            job *job = p->backlog_head;

            p->backlog_head = job->next;
            job_free(job);
        }
        p->backlog_tail = NULL;
        part_label(p->partition, lbl, sizeof(lbl));
        metrics_set(cm.inflight, 0, w->cfg.topic, lbl);
        metrics_set(cm.paused, 0, w->cfg.topic, lbl);
        w->parts[p->partition] = NULL;
        part_unref(p);
    }
    /* Cancelled jobs waiting out a backoff finish now, not later. */
    queue_timers_expire(w->q);
    {
        bool any = false;

        for (size_t i = 0; i < w->n_parts_cap; i++)
            any = any || w->parts[i];
        atomic_store(&w->assigned, any);
    }
}

/*
 * librdkafka keeps a partition's pause flag across unassign and assign: a
 * partition revoked while paused (backpressure) would stay paused when it
 * comes back, and since nothing of it is ever consumed, nothing would ever
 * resume it. So every assigned partition that we do not hold paused is
 * resumed explicitly (a no-op for one that is not paused).
 */
static void partitions_resume_fresh(worker *w,
                                    rd_kafka_topic_partition_list_t *parts)
{
    rd_kafka_topic_partition_list_t *list;
    rd_kafka_resp_err_t err;

    list = rd_kafka_topic_partition_list_new(parts->cnt > 0 ? parts->cnt : 1);
    for (int i = 0; i < parts->cnt; i++) {
        part *p = part_get(w, parts->elems[i].partition);

        if (p && !p->paused)
            rd_kafka_topic_partition_list_add(list, w->cfg.topic, p->partition);
    }
    if (list->cnt > 0) {
        err = rd_kafka_resume_partitions(w->rk, list);
        if (err)
            LOG_WARN(COMP, LOG_NOFIELDS,
                     "resume of assigned partitions failed: %s",
                     rd_kafka_err2str(err));
    }
    rd_kafka_topic_partition_list_destroy(list);
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    worker *w = opaque;
    bool cooperative =
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *error = NULL;
    rd_kafka_resp_err_t ret = RD_KAFKA_RESP_ERR_NO_ERROR;
    char list[512] = "";

    for (int i = 0; i < parts->cnt; i++) {
        size_t len = strlen(list);

        snprintf(list + len, sizeof(list) - len, "%s%" PRId32, i ? "," : "",
                 parts->elems[i].partition);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        metrics_add(cm.rebalances, 1, "assign");
        LOG_INFO(COMP, LOG_NOFIELDS, "assigned partitions [%s] (%s)", list,
                 cooperative ? "cooperative" : "eager");
        for (int i = 0; i < parts->cnt; i++) {
            if (part_add(w, parts->elems[i].partition) != HERALD_OK)
                LOG_ERROR(COMP, LOG_NOFIELDS, "out of memory on assign");
        }
        if (w->rejoin_assigns > 0)
            w->rejoin_assigns--;
        atomic_store(&w->assigned, parts->cnt > 0 || atomic_load(&w->assigned));
        if (cooperative)
            error = rd_kafka_incremental_assign(rk, parts);
        else
            ret = rd_kafka_assign(rk, parts);
        partitions_resume_fresh(w, parts);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        bool lost = rd_kafka_assignment_lost(rk);

        metrics_add(cm.rebalances, 1, lost ? "lost" : "revoke");
        LOG_INFO(COMP, LOG_NOFIELDS, "revoking partitions [%s] (%s)%s", list,
                 cooperative ? "cooperative" : "eager",
                 lost ? ", assignment lost" : "");
        partitions_revoke(w, parts, lost);
        if (cooperative && !lost && parts->cnt > 0) {
            /* librdkafka assigns the rest of this generation, then
             * rejoins: hold periodic commits until both assigns. */
            w->rejoin_assigns = 2;
            w->rejoin_until_ms = herald_now_ms() + REJOIN_MAX_MS;
        }
        if (cooperative)
            error = rd_kafka_incremental_unassign(rk, parts);
        else
            ret = rd_kafka_assign(rk, NULL);
    } else {
        LOG_ERROR(COMP, LOG_NOFIELDS, "rebalance error: %s",
                  rd_kafka_err2str(err));
        partitions_revoke(w, parts, true);
        ret = rd_kafka_assign(rk, NULL);
    }
    if (error) {
        LOG_ERROR(COMP, LOG_NOFIELDS, "incremental rebalance failed: %s",
                  rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
    } else if (ret) {
        LOG_ERROR(COMP, LOG_NOFIELDS, "assign failed: %s",
                  rd_kafka_err2str(ret));
    }
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

/* Copies a message into a new job, parses it and tracks its offset. */
static job *job_from_message(worker *w, part *p, rd_kafka_message_t *rkm)
{
    job *job = calloc(1, sizeof(*job));
    rd_kafka_headers_t *hdrs = NULL;
    const void *hv;
    size_t hlen;

    if (!job)
        return NULL;
    job->offset = rkm->offset;
    job->received_ms = herald_now_ms();
    if (rkm->payload) {
        job->value = malloc(rkm->len + 1);
        if (!job->value)
            goto fail;
        memcpy(job->value, rkm->payload, rkm->len);
        job->value[rkm->len] = '\0';
        job->value_len = rkm->len;
    }
    if (rkm->key) {
        job->key = malloc(rkm->key_len + 1);
        if (!job->key)
            goto fail;
        memcpy(job->key, rkm->key, rkm->key_len);
        job->key[rkm->key_len] = '\0';
        job->key_len = rkm->key_len;
    }
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "herald-targets", &hv, &hlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hv) {
        job->only_targets = strndup(hv, hlen);
        if (!job->only_targets)
            goto fail;
    }
    if (alert_batch_parse(job->value, job->value_len, &w->cfg.limits,
                          &job->batch, &job->reason, job->parse_error,
                          sizeof(job->parse_error)) != HERALD_OK &&
        job->reason == ALERT_REASON_NONE)
        job->reason = ALERT_REASON_WRONG_TYPE;
    if (job->key && job->key_len > 0 && job->key_len < sizeof(job->queue_key))
        snprintf(job->queue_key, sizeof(job->queue_key), "%s", job->key);
    else if (job->batch.n > 0)
        snprintf(job->queue_key, sizeof(job->queue_key), "%s",
                 job->batch.alerts[0].fingerprint);
    else
        snprintf(job->queue_key, sizeof(job->queue_key), "partition-%d",
                 (int)p->partition);
    job->priority =
        job->batch.n > 0 ? alert_priority(&job->batch.alerts[0]) : 4;
    atomic_fetch_add(&p->refs, 1);
    job->part = p;
    return job;
fail:
    job_free(job);
    return NULL;
}

static void message_handle(worker *w, rd_kafka_message_t *rkm)
{
    part *p;
    job *job;
    char lbl[16];
    herald_err err;

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
    job = job_from_message(w, p, rkm);
    if (!job) {
        /* Out of memory: leave the offset untracked-but-pinned by pausing
         * and seeking back, so the message is consumed again. */
        rd_kafka_topic_partition_list_t *l =
            rd_kafka_topic_partition_list_new(1);

        rd_kafka_topic_partition_list_add(l, w->cfg.topic, p->partition)
            ->offset = rkm->offset;
        rd_kafka_seek_partitions(w->rk, l, 1000);
        rd_kafka_topic_partition_list_destroy(l);
        LOG_ERROR(COMP,
                  (&(log_fields){NULL, w->cfg.topic, p->partition, rkm->offset,
                                 NULL}),
                  "out of memory: message will be consumed again");
        return;
    }
    err = offset_tracker_add(p->tracker, rkm->offset, job->received_ms);
    if (err) {
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
    metrics_add(cm.messages, 1, w->cfg.topic, lbl);
    p->outstanding++;
    if (p->backlog_head ||
        queue_push(w->q, job->queue_key, job->priority, job) != HERALD_OK) {
        if (p->backlog_tail)
            p->backlog_tail->next = job;
        else
            p->backlog_head = job;
        p->backlog_tail = job;
        partitions_pause(w, p, true);
    }
}

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
        metrics_set(cm.inflight, (double)offset_tracker_inflight(p->tracker),
                    w->cfg.topic, lbl);
        metrics_set(cm.oldest_age,
                    (double)offset_tracker_oldest_age_ms(p->tracker, now) /
                        1000.0,
                    w->cfg.topic, lbl);
        point = offset_tracker_commit_point(p->tracker);
        if (rd_kafka_get_watermark_offsets(w->rk, w->cfg.topic, p->partition,
                                           &low, &high) ==
                RD_KAFKA_RESP_ERR_NO_ERROR &&
            high >= 0 && point >= 0)
            metrics_set(cm.lag, (double)(high > point ? high - point : 0),
                        w->cfg.topic, lbl);
    }
}

static rd_kafka_t *consumer_new(worker *w, char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    static const char *const defaults[][2] = {
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"auto.offset.reset", "earliest"},
        {"enable.partition.eof", "false"},
        {"client.id", "herald"},
        /* Headroom for the revoke wait inside the rebalance callback. */
        {"max.poll.interval.ms", "300000"},
    };
    char kerr[512];

    if (rd_kafka_conf_set(conf, "bootstrap.servers", w->cfg.brokers, kerr,
                          sizeof(kerr)) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", w->cfg.group, kerr, sizeof(kerr)) !=
            RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (rd_kafka_conf_set(conf, defaults[i][0], defaults[i][1], kerr,
                              sizeof(kerr)) != RD_KAFKA_CONF_OK)
            goto fail;
    }
    for (size_t i = 0; i < w->cfg.n_props; i++) {
        char *kv = strdup(w->cfg.props[i]);
        char *eq = kv ? strchr(kv, '=') : NULL;
        rd_kafka_conf_res_t res;

        if (!eq) {
            snprintf(kerr, sizeof(kerr), "-X %s: expected prop=value",
                     w->cfg.props[i]);
            free(kv);
            goto fail;
        }
        *eq = '\0';
        if (strcmp(kv, "enable.auto.commit") == 0 ||
            strcmp(kv, "enable.auto.offset.store") == 0) {
            snprintf(kerr, sizeof(kerr),
                     "-X %s: herald manages commits itself (at-least-once)",
                     kv);
            free(kv);
            goto fail;
        }
        res = rd_kafka_conf_set(conf, kv, eq + 1, kerr, sizeof(kerr));
        free(kv);
        if (res != RD_KAFKA_CONF_OK)
            goto fail;
    }
    rd_kafka_conf_set_opaque(conf, w);
    rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);
    rd_kafka_conf_set_offset_commit_cb(conf, offset_commit_cb);
    rd_kafka_conf_set_log_cb(conf, kafka_log_cb);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, kerr, sizeof(kerr));
    if (!rk) {
        snprintf(errstr, errstr_size, "kafka consumer: %s", kerr);
        return NULL; /* rd_kafka_new frees conf only on success. */
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
fail:
    snprintf(errstr, errstr_size, "kafka configuration: %s", kerr);
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* api.c callbacks: readiness, publish, stats, targets. */
static bool api_ready(void *opaque)
{
    worker *w = opaque;

    return atomic_load(&w->assigned);
}

static herald_err api_publish(void *opaque, api_publish_mode mode,
                              const alert *a, const char *const *names,
                              size_t n, json_object **result_json,
                              int *http_status, char *errstr,
                              size_t errstr_size)
{
    worker *w = opaque;
    target_set *set = targets_registry_current(w->targets);
    target **chosen = NULL;
    publish_result res;
    publish_opts opts = w->cfg.publish;
    herald_err err;

    publish_result_init(&res);
    opts.cancel = NULL;
    if (mode == API_PUBLISH_MULTIPLE) {
        chosen = calloc(n ? n : 1, sizeof(*chosen));
        if (!chosen) {
            err = HERALD_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            chosen[i] = targets_find(set, names[i]);
            if (!chosen[i]) {
                snprintf(errstr, errstr_size,
                         "targets[%zu]: unknown target "
                         "\"%s\"",
                         i, names[i]);
                *http_status = 404;
                err = HERALD_ERR_NOT_FOUND;
                goto done;
            }
        }
        err = publish_to_multiple(w->pp, a, chosen, n, &opts, &res);
    } else if (mode == API_PUBLISH_ALL) {
        err = publish_to_all(w->pp, a, targets_list(set), targets_count(set),
                             &opts, &res);
    } else {
        err = publish_to_healthy(w->pp, a, targets_list(set),
                                 targets_count(set), &opts, &res);
    }
    for (size_t i = 0; i < res.n_targets; i++) {
        if (res.targets[i].outcome != PUBLISH_OUTCOME_SKIPPED)
            stats_record(w->stats, res.targets[i].name,
                         res.targets[i].outcome == PUBLISH_OUTCOME_DELIVERED,
                         res.targets[i].duration_ms);
    }
    *result_json = publish_result_to_json(&res);
    *http_status = err == HERALD_OK            ? 200
                   : err == HERALD_ERR_INVALID ? 400
                                               : 502;
    if (err == HERALD_ERR_NO_ENABLED || err == HERALD_ERR_NO_HEALTHY)
        *http_status = 503;
    err = HERALD_OK; /* The result JSON carries the outcome. */
done:
    publish_result_free(&res);
    free(chosen);
    targets_release(set);
    return err;
}

static void api_annotate(void *opaque, const char *target, json_object *obj)
{
    worker *w = opaque;
    breaker_state st;
    uint64_t transitions = 0;

    if (parallel_breaker_state(w->pp, target, herald_now_ms(), &st,
                               &transitions) != HERALD_OK)
        st = BREAKER_CLOSED;
    json_object_object_add(obj, "breaker",
                           json_object_new_string(breaker_state_name(st)));
    json_object_object_add(obj, "breaker_transitions",
                           json_object_new_int64((int64_t)transitions));
    json_object_object_add(obj, "health",
                           json_object_new_string(health_status_name(
                               health_get(w->health, target))));
}

static json_object *api_stats(void *opaque)
{
    worker *w = opaque;

    return stats_to_json(w->stats, api_annotate, w);
}

static json_object *api_targets(void *opaque)
{
    worker *w = opaque;
    target_set *set = targets_registry_current(w->targets);
    json_object *arr = NULL;

    if (targets_to_json(set, &arr) == HERALD_OK && arr &&
        json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *t = json_object_array_get_idx(arr, i);
            json_object *name;

            if (json_object_object_get_ex(t, "name", &name))
                api_annotate(w, json_object_get_string(name), t);
        }
    }
    targets_release(set);
    return arr;
}

static void targets_reload(worker *w)
{
    char errstr[512];
    target_set *old = targets_registry_current(w->targets);
    target_set *set;

    /* The health monitor borrows the targets of the running set: keep the
     * old set alive until the monitor has the new one. */
    if (targets_registry_reload(w->targets, w->cfg.targets_path, errstr,
                                sizeof(errstr)) != HERALD_OK) {
        LOG_ERROR("targets", LOG_NOFIELDS,
                  "reload rejected, keeping the running targets: %s", errstr);
        targets_release(old);
        return;
    }
    set = targets_registry_current(w->targets);
    health_set_targets(w->health, targets_list(set), targets_count(set));
    LOG_INFO("targets", LOG_NOFIELDS, "reloaded %s: %zu targets",
             w->cfg.targets_path, targets_count(set));
    targets_release(set);
    targets_release(old);
}

/* Jobs the queue never ran at stop: handed back as not final. */
static void job_dropped(void *opaque, void *vjob)
{
    job *job = vjob;

    job->final = false;
    worker_job_done(opaque, job);
}

static void worker_free(worker *w)
{
    job *head;

    /*
     * Order matters. Jobs still in flight here (only after the drain
     * deadline) are cancelled: every step then finishes at once without
     * touching the publisher or the dead-letter producer. The publisher
     * goes first: destroying it completes pending fan-outs, whose
     * callbacks resume their jobs in the queue, which must still exist;
     * destroying the queue then runs those continuations.
     */
    atomic_store(&w->stopping, true);
    parallel_destroy(w->pp);
    w->pp = NULL;
    queue_destroy(w->q);
    /* Jobs the queue handed back while it was destroyed. */
    head = w->done_head;
    w->done_head = NULL;
    w->done_tail = NULL;
    while (head) {
        job *next = head->next;

        job_free(head);
        head = next;
    }
    health_destroy(w->health);
    dlq_destroy(w->dlq);
    targets_registry_destroy(w->targets);
    stats_destroy(w->stats);
    for (size_t i = 0; i < w->n_parts_cap; i++)
        part_unref(w->parts[i]);
    free(w->parts);
    pthread_mutex_destroy(&w->done_lock);
    pthread_cond_destroy(&w->done_cond);
}

static size_t outstanding_total(worker *w)
{
    size_t n = 0;

    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            n += w->parts[i]->outstanding;
    }
    return n;
}

/*
 * Shutdown: stop fetching (pause everything), keep polling while the
 * jobs drain up to drain_timeout_ms, cancel the rest, commit, close.
 */
static void worker_shutdown(worker *w)
{
    int64_t deadline = herald_now_ms() + w->cfg.drain_timeout_ms;
    size_t left;

    LOG_INFO(COMP, LOG_NOFIELDS,
             "shutting down: draining %zu jobs (deadline %d ms)",
             outstanding_total(w), w->cfg.drain_timeout_ms);
    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            partitions_pause(w, w->parts[i], true);
    }
    for (;;) {
        rd_kafka_message_t *rkm;

        completions_drain(w);
        for (size_t i = 0; i < w->n_parts_cap; i++) {
            if (w->parts[i])
                backlog_flush(w, w->parts[i]);
        }
        left = outstanding_total(w);
        /* The final commit waits for a pending cooperative rejoin (it
         * would fail), within the drain deadline. */
        if (left == 0 && (!commit_blocked(w) || herald_now_ms() >= deadline))
            break;
        if (herald_now_ms() >= deadline) {
            if (!atomic_load(&w->stopping)) {
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
                deadline = herald_now_ms() + 10000;
                continue;
            }
            break;
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
    completions_drain(w);
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
    char kerr[512];
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
    if (admin_create_topic(w->cfg.brokers, w->cfg.props, w->cfg.n_props,
                           w->dlq_topic, partitions, -1, 10000, kerr,
                           sizeof(kerr)) != HERALD_OK)
        LOG_WARN(COMP, LOG_NOFIELDS,
                 "could not ensure the dead-letter topic %s exists: %s",
                 w->dlq_topic, kerr);
    return HERALD_OK;
}

herald_err worker_run(const worker_config *cfg_in, char *errstr,
                      size_t errstr_size)
{
    worker w;
    rd_kafka_topic_partition_list_t *sub = NULL;
    target_set *set = NULL;
    queue_config qcfg;
    parallel_config pcfg;
    api_server *api = NULL;
    herald_err ret = HERALD_OK;
    rd_kafka_resp_err_t kerr;
    int64_t next_commit;
    int64_t next_gauges = 0;
    int64_t next_watch = 0;
    struct timespec targets_mtime = {0, 0};

    memset(&w, 0, sizeof(w));
    w.cfg = *cfg_in;
    pthread_mutex_init(&w.done_lock, NULL);
    pthread_cond_init(&w.done_cond, NULL);
    consumer_metrics_init();
    if (!w.cfg.brokers || !w.cfg.topic || !w.cfg.group || !w.cfg.targets_path) {
        snprintf(errstr, errstr_size,
                 "--brokers, --topic, --group and --targets are required");
        ret = HERALD_ERR_CONFIG;
        goto out;
    }
    if (w.cfg.window < 1)
        w.cfg.window = 1;
    if (w.cfg.low_watermark < 0 || w.cfg.low_watermark >= w.cfg.window)
        w.cfg.low_watermark = w.cfg.window / 2;
    snprintf(w.dlq_topic, sizeof(w.dlq_topic), "%s",
             w.cfg.dlq_topic && w.cfg.dlq_topic[0] ? w.cfg.dlq_topic : "");
    if (!w.dlq_topic[0])
        snprintf(w.dlq_topic, sizeof(w.dlq_topic), "%s.dlq", w.cfg.topic);

    ret = targets_load(w.cfg.targets_path, &set, errstr, errstr_size);
    if (ret)
        goto out;
    targets_file_changed(w.cfg.targets_path, &targets_mtime);
    w.targets = targets_registry_new(set);
    if (!w.targets) {
        targets_release(set);
        ret = HERALD_ERR_NOMEM;
        goto out;
    }
    w.stats = stats_new();
    w.health = health_new(true, errstr, errstr_size);
    if (!w.stats || !w.health) {
        ret = HERALD_ERR_NOMEM;
        goto out;
    }
    health_set_targets(w.health, targets_list(set), targets_count(set));
    parallel_config_default(&pcfg);
    if (w.cfg.transport_threads > 0)
        pcfg.transport.n_threads = w.cfg.transport_threads;
    w.pp = parallel_new(&pcfg, w.health, errstr, errstr_size);
    if (!w.pp) {
        ret = HERALD_ERR_CONFIG;
        goto out;
    }
    w.dlq = dlq_new(w.cfg.brokers, w.dlq_topic, w.cfg.props, w.cfg.n_props,
                    errstr, errstr_size);
    if (!w.dlq) {
        ret = HERALD_ERR_KAFKA;
        goto out;
    }
    queue_config_init(&qcfg);
    qcfg.capacity = (size_t)w.cfg.queue_capacity;
    qcfg.threads = w.cfg.dispatchers;
    qcfg.drop = job_dropped;
    /* Jobs are asynchronous (job.c): a job holds its fingerprint until it
     * calls queue_job_done(), not until its first step returns. */
    qcfg.manual_done = true;
    w.q = queue_new(&qcfg, job_run, &w, errstr, errstr_size);
    if (!w.q) {
        ret = HERALD_ERR_CONFIG;
        goto out;
    }
    w.rk = consumer_new(&w, errstr, errstr_size);
    if (!w.rk) {
        ret = HERALD_ERR_CONFIG;
        goto out;
    }
    if (w.cfg.api_listen && w.cfg.api_listen[0]) {
        api_config acfg;

        api_config_init(&acfg);
        acfg.listen = w.cfg.api_listen;
        acfg.token = w.cfg.api_token;
        acfg.opaque = &w;
        acfg.ready = api_ready;
        acfg.publish = api_publish;
        acfg.stats = api_stats;
        acfg.targets = api_targets;
        api = api_new(&acfg, errstr, errstr_size);
        if (!api) {
            ret = HERALD_ERR_CONFIG;
            goto out;
        }
    }
    ret = topics_check(&w, errstr, errstr_size);
    if (ret)
        goto out;
    sub = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(sub, w.cfg.topic, RD_KAFKA_PARTITION_UA);
    kerr = rd_kafka_subscribe(w.rk, sub);
    rd_kafka_topic_partition_list_destroy(sub);
    if (kerr) {
        snprintf(errstr, errstr_size, "subscribe to %s: %s", w.cfg.topic,
                 rd_kafka_err2str(kerr));
        ret = HERALD_ERR_KAFKA;
        goto out;
    }
    LOG_INFO(COMP, LOG_NOFIELDS,
             "consuming %s in group %s from %s; %zu targets; dead-letter "
             "topic %s",
             w.cfg.topic, w.cfg.group, w.cfg.brokers, targets_count(set),
             w.dlq_topic);

    next_commit = herald_now_ms() + w.cfg.commit_interval_ms;
    while (!*w.cfg.stop) {
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(w.rk, POLL_MS);
        int64_t now;
        char fatal[512];

        if (rkm) {
            message_handle(&w, rkm);
            rd_kafka_message_destroy(rkm);
        }
        completions_drain(&w);
        backpressure_apply(&w);
        now = herald_now_ms();
        if (now >= next_commit && !commit_blocked(&w)) {
            commit_due(&w, false, NULL);
            next_commit = now + w.cfg.commit_interval_ms;
        }
        if (now >= next_gauges) {
            gauges_update(&w);
            next_gauges = now + 1000;
        }
        if ((w.cfg.reload && *w.cfg.reload) ||
            (w.cfg.targets_watch_ms > 0 && now >= next_watch &&
             targets_file_changed(w.cfg.targets_path, &targets_mtime))) {
            if (w.cfg.reload)
                *w.cfg.reload = 0;
            targets_reload(&w);
        }
        if (now >= next_watch)
            next_watch = now + w.cfg.targets_watch_ms;
        if (rd_kafka_fatal_error(w.rk, fatal, sizeof(fatal))) {
            snprintf(errstr, errstr_size, "fatal kafka error: %s", fatal);
            ret = HERALD_ERR_KAFKA;
            break;
        }
    }
    worker_shutdown(&w);
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
