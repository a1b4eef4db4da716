/*
 * backpressure.c: bounded memory. A partition is paused, never dropped,
 * when its in-flight window is full or the queue refuses its jobs, and
 * resumed at the low watermark.
 *
 * Data flow: consumer.c hands every tracked job to backpressure_push():
 * into the PublishingQueue, or, when the queue is full (or the partition
 * already has a backlog, so that offset order holds), onto the partition's
 * backlog, and the partition is paused. backpressure_apply(), once per
 * poll, flushes each backlog into the queue and pauses a partition whose
 * redeliverable offsets reach the window (cfg.window) or that still has a
 * backlog; it resumes one at or below cfg.low_watermark with no backlog.
 * A revoked partition is never resumed here (rebalance.c owns it then).
 *
 * Threads: consumer thread only (it owns rd_kafka_t and the partition
 * table). Calls part.c, the queue and librdkafka; no worker file it calls
 * calls it back.
 */
#include "core/log.h"
#include "worker/worker_int.h"

static const char *COMP = "consumer";

void backpressure_pause(worker *w, part *p, bool pause)
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
    metrics_set(w->cm.paused, pause ? 1 : 0, w->cfg.topic, lbl);
    LOG_DEBUG(COMP, (&(log_fields){NULL, w->cfg.topic, p->partition, -1, NULL}),
              "partition %s (%zu unfinished jobs)",
              pause ? "paused" : "resumed",
              offset_tracker_inflight(p->tracker));
}

void backpressure_push(worker *w, part *p, job *job)
{
    if (p->backlog_head ||
        queue_push(w->q, job->queue_key, job->priority, job) != HERALD_OK) {
        if (p->backlog_tail)
            p->backlog_tail->next = job;
        else
            p->backlog_head = job;
        p->backlog_tail = job;
        backpressure_pause(w, p, true);
    }
}

void backpressure_flush(worker *w, part *p)
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

void backpressure_apply(worker *w)
{
    size_t low = (size_t)w->cfg.low_watermark;

    for (size_t i = 0; i < w->n_parts_cap; i++) {
        part *p = w->parts[i];
        size_t inflight;

        if (!p)
            continue;
        backpressure_flush(w, p);
        /* What a crash would redeliver (tracked entries plus finished,
         * not yet committed ones): bounding it bounds memory and the
         * duplicates after a crash by the window. */
        inflight = part_redeliverable(p);
        if (!p->paused &&
            (inflight >= (size_t)w->cfg.window || p->backlog_head))
            backpressure_pause(w, p, true);
        else if (p->paused && !p->backlog_head && inflight <= low &&
                 !atomic_load(&p->revoked))
            backpressure_pause(w, p, false);
    }
}
