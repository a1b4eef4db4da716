/*
 * rebalance.c: partitions coming and going, eager and cooperative.
 *
 * Data flow: librdkafka calls rebalance_cb() from the consumer's poll.
 * Assign: a fresh partition (part.c: offset tracker) per new partition,
 * then rd_kafka_assign() (eager) or rd_kafka_incremental_assign()
 * (cooperative), then an explicit resume (librdkafka keeps pause flags
 * across assignments). Revoke: mark the partitions revoked (their queued
 * jobs skip publishing; jobs waiting for a retry backoff wake at once and
 * are cancelled, not retried), wait for their in-flight jobs up to
 * revoke_timeout_ms (the revoke deadline) while taking completions
 * (commit.c), commit the contiguous finished prefix synchronously unless
 * the assignment was lost, cancel what is left, free the backlog, forget
 * the partitions. Late completions are then ignored (p->removed), so a
 * revoked partition is never committed by us. After a cooperative revoke,
 * periodic commits wait for the rejoin (commit_hold_for_rejoin()).
 *
 * Threads: consumer thread only (librdkafka calls the callback from
 * rd_kafka_consumer_poll() and rd_kafka_consumer_close()); the wait blocks
 * it for at most revoke_timeout_ms, well inside max.poll.interval.ms.
 * Calls commit.c, part.c, job.c (job_free), completions.c; none of them
 * calls it back.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker_int.h"

static const char *COMP = "consumer";

/* Marks the partitions revoked and waits, taking completions, until their
 * jobs came back or the revoke deadline passed (not at all when lost). */
static void revoke_wait(worker *w, rd_kafka_topic_partition_list_t *parts,
                        bool lost)
{
    int64_t deadline = herald_now_ms() + w->cfg.revoke_timeout_ms;

    for (int i = 0; i < parts->cnt; i++) {
        part *p = part_get(w, parts->elems[i].partition);

        if (p)
            atomic_store(&p->revoked, true);
    }
    /* Jobs of these partitions waiting out a backoff wake now and finish
     * as cancelled instead of retrying (job.c); jobs of other partitions
     * that wake early sleep again until their due time. */
    queue_timers_expire(w->q);
    for (;;) {
        size_t waiting = 0;

        commit_mark_finished(w);
        for (int i = 0; i < parts->cnt; i++) {
            part *p = part_get(w, parts->elems[i].partition);

            if (p)
                waiting += p->outstanding;
        }
        if (waiting == 0 || herald_now_ms() >= deadline || lost)
            break;
        completions_wait(&w->done, 50);
    }
}

/* Commits (unless lost), cancels and forgets one revoked partition. */
static void revoke_forget(worker *w, part *p, bool lost)
{
    log_fields lf = {NULL, w->cfg.topic, p->partition, -1, NULL};
    char lbl[16];

    if (!lost)
        commit_due(w, true, p);
    if (p->outstanding)
        LOG_WARN(COMP, &lf,
                 "revoked with %zu unfinished jobs: cancelled, the next "
                 "owner consumes them again from offset %" PRId64,
                 p->outstanding, offset_tracker_commit_point(p->tracker));
    else
        LOG_INFO(COMP, &lf, "partition revoked%s",
                 lost ? " (assignment lost)" : "");
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
    metrics_set(w->cm.inflight, 0, w->cfg.topic, lbl);
    metrics_set(w->cm.paused, 0, w->cfg.topic, lbl);
    w->parts[p->partition] = NULL;
    part_unref(p);
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
    revoke_wait(w, parts, lost);
    for (int i = 0; i < parts->cnt; i++) {
        part *p = part_get(w, parts->elems[i].partition);

        if (p)
            revoke_forget(w, p, lost);
    }
    /* Cancelled jobs waiting out a backoff finish now, not later. */
    queue_timers_expire(w->q);
    atomic_store(&w->assigned, parts_any(w));
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

/* What one rebalance callback does, for the log lines. */
typedef struct rebalance_event {
    bool cooperative;
    char list[512]; /* "0,1,5" */
    rd_kafka_error_t *error;
    rd_kafka_resp_err_t ret;
} rebalance_event;

static void rebalance_assign(worker *w, rd_kafka_t *rk,
                             rd_kafka_topic_partition_list_t *parts,
                             rebalance_event *ev)
{
    metrics_add(w->cm.rebalances, 1, "assign");
    LOG_INFO(COMP, LOG_NOFIELDS, "assigned partitions [%s] (%s)", ev->list,
             ev->cooperative ? "cooperative" : "eager");
    for (int i = 0; i < parts->cnt; i++) {
        if (part_add(w, parts->elems[i].partition) != HERALD_OK)
            LOG_ERROR(COMP, LOG_NOFIELDS, "out of memory on assign");
    }
    commit_rejoin_assigned(w);
    atomic_store(&w->assigned, parts->cnt > 0 || atomic_load(&w->assigned));
    if (ev->cooperative)
        ev->error = rd_kafka_incremental_assign(rk, parts);
    else
        ev->ret = rd_kafka_assign(rk, parts);
    partitions_resume_fresh(w, parts);
}

static void rebalance_revoke(worker *w, rd_kafka_t *rk,
                             rd_kafka_topic_partition_list_t *parts,
                             rebalance_event *ev)
{
    bool lost = rd_kafka_assignment_lost(rk);

    metrics_add(w->cm.rebalances, 1, lost ? "lost" : "revoke");
    LOG_INFO(COMP, LOG_NOFIELDS, "revoking partitions [%s] (%s)%s", ev->list,
             ev->cooperative ? "cooperative" : "eager",
             lost ? ", assignment lost" : "");
    partitions_revoke(w, parts, lost);
    if (ev->cooperative && !lost && parts->cnt > 0)
        commit_hold_for_rejoin(w);
    if (ev->cooperative)
        ev->error = rd_kafka_incremental_unassign(rk, parts);
    else
        ev->ret = rd_kafka_assign(rk, NULL);
}

void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    worker *w = opaque;
    rebalance_event ev = {
        strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0, "", NULL,
        RD_KAFKA_RESP_ERR_NO_ERROR};

    for (int i = 0; i < parts->cnt; i++) {
        size_t len = strlen(ev.list);

        snprintf(ev.list + len, sizeof(ev.list) - len, "%s%" PRId32,
                 i ? "," : "", parts->elems[i].partition);
    }
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        rebalance_assign(w, rk, parts, &ev);
    } else if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
        rebalance_revoke(w, rk, parts, &ev);
    } else {
        LOG_ERROR(COMP, LOG_NOFIELDS, "rebalance error: %s",
                  rd_kafka_err2str(err));
        partitions_revoke(w, parts, true);
        ev.ret = rd_kafka_assign(rk, NULL);
    }
    if (ev.error) {
        LOG_ERROR(COMP, LOG_NOFIELDS, "incremental rebalance failed: %s",
                  rd_kafka_error_string(ev.error));
        rd_kafka_error_destroy(ev.error);
    } else if (ev.ret) {
        LOG_ERROR(COMP, LOG_NOFIELDS, "assign failed: %s",
                  rd_kafka_err2str(ev.ret));
    }
}
