/*
 * commit.c: from finished jobs to committed offsets.
 *
 * Data flow: job.c hands finished jobs to the completion mailbox
 * (completions.c); commit_mark_finished() takes them on the consumer
 * thread, marks the offset of each final job done in its partition's
 * tracker (offsets.c) and frees the job through job_free(). The commit
 * point of a partition is its lowest unfinished offset, so commits are
 * contiguous: commit_tick() commits every partition whose point advanced
 * every commit_interval_ms (asynchronously; commit_cb() sees the result),
 * rebalance.c and the shutdown commit synchronously with commit_due().
 * Only partitions we own are ever in a commit: a revoked partition is
 * removed from the table before another owner can consume it, and its late
 * completions are ignored (p->removed), so it is never committed by us.
 *
 * Threads: consumer thread only, including commit_cb(), which librdkafka
 * calls from rd_kafka_consumer_poll(). Calls job.c, part.c, completions.c
 * and offsets.c; no worker file it calls calls it back.
 */
#include <inttypes.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker_int.h"

/* Longest wait for a cooperative rejoin before periodic commits resume
 * anyway, ms: well above a rebalance of a healthy group (a few heartbeat
 * intervals), and a late commit only widens what a crash redelivers. */
#define REJOIN_MAX_MS 30000

static const char *COMP = "consumer";

void commit_mark_finished(worker *w)
{
    job *head = completions_take(&w->done);

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

bool commit_blocked(worker *w)
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

void commit_hold_for_rejoin(worker *w)
{
    /* librdkafka assigns the rest of this generation, then rejoins: hold
     * periodic commits until both assigns. */
    w->rejoin_assigns = 2;
    w->rejoin_until_ms = herald_now_ms() + REJOIN_MAX_MS;
}

void commit_rejoin_assigned(worker *w)
{
    if (w->rejoin_assigns > 0)
        w->rejoin_assigns--;
}

/* Records what the broker accepted: tracker, gauge and a debug line. */
static void commit_record(worker *w,
                          const rd_kafka_topic_partition_list_t *list)
{
    for (int i = 0; i < list->cnt; i++) {
        part *p = part_get(w, list->elems[i].partition);
        char lbl[16];

        if (!p)
            continue;
        offset_tracker_mark_committed(p->tracker, list->elems[i].offset);
        part_label(p->partition, lbl, sizeof(lbl));
        metrics_set(w->cm.committed, (double)list->elems[i].offset,
                    w->cfg.topic, lbl);
        LOG_DEBUG(COMP,
                  (&(log_fields){NULL, w->cfg.topic, p->partition,
                                 list->elems[i].offset, NULL}),
                  "committed");
    }
}

void commit_due(worker *w, bool sync, part *only)
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
        metrics_add(w->cm.commits, 1, err ? "error" : "ok");
        if (err)
            LOG_WARN(COMP, LOG_NOFIELDS, "commit failed: %s",
                     rd_kafka_err2str(err));
    }
    if (!err)
        commit_record(w, list);
    rd_kafka_topic_partition_list_destroy(list);
}

void commit_tick(worker *w, int64_t now)
{
    if (now >= w->next_commit && !commit_blocked(w)) {
        commit_due(w, false, NULL);
        w->next_commit = now + w->cfg.commit_interval_ms;
    }
}

void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
               rd_kafka_topic_partition_list_t *offsets, void *opaque)
{
    worker *w = opaque;

    (void)rk;
    if (err == RD_KAFKA_RESP_ERR__NO_OFFSET)
        return;
    metrics_add(w->cm.commits, 1, err ? "error" : "ok");
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
