/*
 * job.c: the life of one job (one Kafka message): created from the
 * message, run as a small state machine whose steps run on the dispatcher
 * threads of the PublishingQueue, handed back, freed.
 *
 * Data flow per job:
 *   create    job_new() on the consumer thread: copy the message, parse
 *             the alerts, take a reference to the partition;
 *   start     select the targets (all configured ones, or those of the
 *             herald-targets header); a poison message goes straight to
 *             the dead-letter topic;
 *   publish   start one asynchronous fan-out per alert (publish_start:
 *             the healthy targets on the first attempt, the failed legs
 *             after that) and return: no dispatcher thread waits for a
 *             target. The last fan-out to complete resumes the job;
 *   evaluate  fold each leg's outcome in: delivered, not selected
 *             (disabled / filtered), or failed (attempted, or skipped as
 *             unhealthy / degraded / circuit open). Everything delivered:
 *             final. Something delivered (partial success), or the job
 *             budget (attempts, age) spent: dead-letter the failed legs.
 *             Nothing delivered yet (total failure): resume after a
 *             full-jitter backoff and publish the failed legs again;
 *   dead-letter  one record per failed target, each acknowledged by the
 *             broker before the next; a write is asynchronous
 *             (dlq_write_async(): no dispatcher thread waits for the
 *             broker), its report resumes the job; a failed write resumes
 *             after a backoff (the offset stays uncommitted meanwhile);
 *   finish    release the fingerprint in the queue (its next job may
 *             run) and push the job into the completion mailbox
 *             (completions.c); the consumer thread takes it from there
 *             (commit.c), marks the offset final only when the job says
 *             so, and frees it with job_free().
 * A job whose partition is revoked before it starts, or that is cancelled
 * (revoke deadline, shutdown) is finished as not final: its offset is never
 * committed and the next owner consumes the message again (at-least-once).
 *
 * Threads: steps run on dispatcher threads, one step of a job at a time;
 * job_alert_done() runs on the publisher's threads and only counts down;
 * job_dlq_done() runs on the dlq's delivery-report thread and only stores
 * the report and resumes the job.
 * Jobs of one fingerprint never overlap: the queue keeps the key busy
 * until job_finish(). job_new() and job_free() run on the consumer thread.
 *
 * Dependencies, one way: the consumer side (consumer.c, commit.c,
 * rebalance.c, backpressure.c, worker.c) calls job_new(), job_free() and
 * passes job_run()/job_drop() to the queue; job.c calls only legs.c,
 * part.c, completions.c and dlq.c, never a consumer-side function.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "publishers/backoff.h"
#include "publishers/breaker.h"
#include "worker/job_int.h"
#include "worker/worker_int.h"

static const char *COMP = "job";

/* Backoff of dead-letter write retries, ms: a broker outage of minutes is
 * retried every 30 s at most. */
#define DLQ_BACKOFF_INITIAL_MS 500
#define DLQ_BACKOFF_MAX_MS 30000
/* Lines that repeat per job while a target is down (retries, dead
 * letters): at most one per key per 10 s with the count of the suppressed
 * ones (log_write_limited()); each job's line stays at debug level. */
#define JOB_OUTAGE_LOG_MS 10000

typedef enum job_step {
    STEP_START = 0,
    STEP_PUBLISH,     /* Start (again) the fan-outs of the failed legs. */
    STEP_EVALUATE,    /* Every fan-out of this attempt completed. */
    STEP_DEAD_LETTER, /* Write the failed legs, from dlq_next on. */
    STEP_POISON       /* Write the poison message. */
} job_step;

/* What a running job keeps between its steps. Owned by the job. */
struct job_run {
    worker *w;
    job_step step;
    target_set *set; /* Acquired at start: the job keeps its config. */
    target **base;   /* The job's targets, n_base of them. */
    size_t n_base;
    leg **legs;              /* legs[alert][target]. */
    target **remaining;      /* [alert * n_base + k]: legs to publish. */
    publish_result *results; /* One per alert, for the current attempt. */
    bool *started;           /* Fan-out started for the alert. */
    atomic_int pending;      /* Fan-outs not completed, + 1 while starting. */
    publish_opts opts;
    int attempt;
    bool delivered_any;
    uint64_t seed;
    size_t dlq_next; /* Next target to dead-letter. */
    int dlq_attempt; /* Failed writes of the current record. */
    /* herald_now_ms() at which the backoff the job waits out (a job retry
     * or a dead-letter write again) ends; 0 when it waits for none. */
    int64_t due_ms;
    /* The report of the dead-letter write in flight (job_dlq_done()), for
     * the step that started it, which runs again. */
    bool dlq_reported;
    herald_err dlq_err;
    char dlq_error[256];
};

static metric *jobs_total;
static metric *job_retries;
static pthread_once_t job_metrics_once = PTHREAD_ONCE_INIT;

static void job_metrics_init(void)
{
    jobs_total = metrics_family(METRIC_COUNTER, "herald_jobs_total",
                                "Jobs finished, by outcome (success, "
                                "partial_success, dead_lettered, poison, "
                                "no_targets, cancelled).",
                                "outcome", NULL, 0);
    job_retries = metrics_family(METRIC_COUNTER, "herald_job_retries_total",
                                 "Job attempts repeated after a total "
                                 "failure.",
                                 "", NULL, 0);
}

static void job_run_free(job *job)
{
    job_run_state *run = job->run;

    if (!run)
        return;
    if (run->legs) {
        for (size_t i = 0; i < job->batch.n; i++)
            free(run->legs[i]);
    }
    if (run->results) {
        for (size_t i = 0; i < job->batch.n; i++)
            publish_result_free(&run->results[i]);
    }
    free(run->legs);
    free(run->results);
    free(run->started);
    free(run->remaining);
    free(run->base);
    if (run->set)
        targets_release(run->set);
    free(run);
    job->run = NULL;
}

void job_free(job *job)
{
    if (!job)
        return;
    job_run_free(job);
    alert_batch_free(&job->batch);
    free(job->key);
    free(job->value);
    free(job->only_targets);
    part_unref(job->part);
    free(job);
}

/* Copies n bytes into a new NUL-terminated string; NULL when out of
 * memory. */
static char *job_strdup(const void *data, size_t n)
{
    char *s = malloc(n + 1);

    if (s) {
        memcpy(s, data, n);
        s[n] = '\0';
    }
    return s;
}

/* Copies the value, the key and the herald-targets header of a message. */
static herald_err job_copy_message(job *job, const rd_kafka_message_t *rkm)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *hv;
    size_t hlen;

    if (rkm->payload) {
        job->value = job_strdup(rkm->payload, rkm->len);
        if (!job->value)
            return HERALD_ERR_NOMEM;
        job->value_len = rkm->len;
    }
    if (rkm->key) {
        job->key = job_strdup(rkm->key, rkm->key_len);
        if (!job->key)
            return HERALD_ERR_NOMEM;
        job->key_len = rkm->key_len;
    }
    if (rd_kafka_message_headers(rkm, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, "herald-targets", &hv, &hlen) ==
            RD_KAFKA_RESP_ERR_NO_ERROR &&
        hv) {
        job->only_targets = strndup(hv, hlen);
        if (!job->only_targets)
            return HERALD_ERR_NOMEM;
    }
    return HERALD_OK;
}

job *job_new(worker *w, part *p, const rd_kafka_message_t *rkm)
{
    job *job = calloc(1, sizeof(*job));

    if (!job)
        return NULL;
    job->offset = rkm->offset;
    job->received_ms = herald_now_ms();
    if (job_copy_message(job, rkm) != HERALD_OK) {
        job_free(job);
        return NULL;
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
    part_ref(p);
    job->part = p;
    return job;
}

void job_drop(void *opaque, void *vjob)
{
    worker *w = opaque;
    job *job = vjob;

    job->final = false;
    completions_push(&w->done, job);
}

static bool job_cancelled(worker *w, job *job)
{
    return atomic_load(&job->part->cancel) || atomic_load(&w->stopping);
}

static log_fields job_fields(worker *w, job *job, const char *target)
{
    log_fields lf = {target, w->cfg.topic, job->part->partition, job->offset,
                     job->batch.n ? job->batch.alerts[0].fingerprint : NULL};

    return lf;
}

/*
 * Ends the job: frees its run state, releases its fingerprint in the queue
 * and hands it to the consumer thread. The job must not be touched after.
 */
static void job_finish(worker *w, job *job, bool final, const char *outcome)
{
    herald_err err;

    job->final = final;
    metrics_add(jobs_total, 1, outcome);
    job_run_free(job);
    err = queue_job_done(w->q, job->queue_key);
    if (err)
        LOG_ERROR(COMP,
                  (&(log_fields){NULL, w->cfg.topic, job->part->partition,
                                 job->offset, NULL}),
                  "queue_job_done: %s", herald_err2str(err));
    completions_push(&w->done, job);
}

/* Runs the job's next step on a dispatcher thread at when_ms (0 = now). */
static void job_resume(worker *w, job *job, int64_t when_ms)
{
    herald_err err = queue_resume(w->q, job, when_ms);

    if (err) {
        /* Only out of memory: finish as not final rather than lose track
         * of the job; the message is consumed again after a restart. */
        LOG_ERROR(COMP,
                  (&(log_fields){NULL, w->cfg.topic, job->part->partition,
                                 job->offset, NULL}),
                  "cannot resume job (%s): not final", herald_err2str(err));
        job_finish(w, job, false, "cancelled");
    }
}

/*
 * Called first by every step that may run after a backoff. True when the
 * step must not go on: the job was finished as cancelled because its
 * partition was revoked (or herald stops) while it waited (it is not
 * retried; its offset is not committed by this replica, so the new owner
 * consumes it again), or it woke before its due time (queue_timers_expire()
 * at a revoke of another partition) and sleeps again until then.
 */
static bool job_backoff_wake(worker *w, job *job)
{
    job_run_state *run = job->run;
    int64_t due = run->due_ms;

    if (due == 0)
        return false;
    if (atomic_load(&job->part->revoked) || job_cancelled(w, job)) {
        job_finish(w, job, false, "cancelled");
        return true;
    }
    if (herald_now_ms() < due) {
        job_resume(w, job, due);
        return true;
    }
    run->due_ms = 0;
    return false;
}

/* Resumes after a dead-letter write failed; false when cancelled. */
static bool job_dlq_backoff(worker *w, job *job)
{
    job_run_state *run = job->run;
    int64_t delay;

    if (job_cancelled(w, job))
        return false;
    run->dlq_attempt++;
    delay = backoff_delay_ms(run->dlq_attempt, DLQ_BACKOFF_INITIAL_MS,
                             DLQ_BACKOFF_MAX_MS, &run->seed);
    run->due_ms = herald_now_ms() + delay;
    job_resume(w, job, run->due_ms);
    return true;
}

/* The dlq's report of the job's dead-letter write: kept for the step that
 * started the write, which runs again. On the dlq's delivery-report
 * thread; the job is not running meanwhile. */
static void job_dlq_done(void *opaque, herald_err err, const char *errstr)
{
    job *job = opaque;
    job_run_state *run = job->run;

    run->dlq_err = err;
    snprintf(run->dlq_error, sizeof(run->dlq_error), "%s",
             errstr ? errstr : "");
    run->dlq_reported = true;
    job_resume(run->w, job, 0);
}

typedef enum job_dlq_state {
    JOB_DLQ_WRITTEN, /* The broker acknowledged the record. */
    JOB_DLQ_WAITING, /* Written asynchronously: the step runs again. */
    JOB_DLQ_FAILED   /* Not written: back off and write it again. */
} job_dlq_state;

/*
 * One dead-letter write, in two halves, so that no dispatcher thread waits
 * for the broker: the first call starts the write (JOB_DLQ_WAITING: the
 * step must return at once and not touch the job, job_dlq_done() resumes
 * it); the call in the resumed step takes the report (WRITTEN or FAILED).
 * Logs the outcome.
 */
static job_dlq_state job_dlq_write(worker *w, job *job, const dlq_record *rec)
{
    job_run_state *run = job->run;
    log_fields lf = job_fields(w, job, rec->target);
    char errstr[256];
    herald_err err;

    if (run->dlq_reported) {
        run->dlq_reported = false;
        err = run->dlq_err;
        snprintf(errstr, sizeof(errstr), "%s", run->dlq_error);
    } else {
        err = dlq_write_async(w->dlq, rec, w->cfg.dlq_timeout_ms, job_dlq_done,
                              job, errstr, sizeof(errstr));
        if (err == HERALD_OK)
            return JOB_DLQ_WAITING;
    }
    if (err == HERALD_OK) {
        char key[192];

        snprintf(key, sizeof(key), "dlq:%s:%s", rec->target ? rec->target : "-",
                 rec->reason);
        LOG_DEBUG(COMP, &lf, "dead-lettered to %s: %s: %s", dlq_topic(w->dlq),
                  rec->reason, rec->error ? rec->error : "");
        log_write_limited(LOG_LEVEL_WARN, COMP, &lf, key, JOB_OUTAGE_LOG_MS,
                          "dead-lettered to %s: %s: %s", dlq_topic(w->dlq),
                          rec->reason, rec->error ? rec->error : "");
        return JOB_DLQ_WRITTEN;
    }
    log_write_limited(LOG_LEVEL_ERROR, COMP, &lf, "dlq-write", 10000,
                      "dead-letter write failed, retrying; the offset is "
                      "not committed: %s",
                      errstr);
    return JOB_DLQ_FAILED;
}

static void job_record_init(worker *w, job *job, dlq_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->source_topic = w->cfg.topic;
    rec->source_partition = job->part->partition;
    rec->source_offset = job->offset;
    rec->key = job->key;
    rec->key_len = job->key_len;
    rec->value = job->value;
    rec->value_len = job->value_len;
}

/* A message herald cannot deliver at all: poison, or no target. */
static void job_step_poison(worker *w, job *job)
{
    dlq_record rec;
    bool no_targets = job->batch.n > 0;

    if (job_backoff_wake(w, job))
        return;
    /* A write that was acknowledged counts even if the job was cancelled
     * while it waited for the report. */
    if (!job->run->dlq_reported && job_cancelled(w, job)) {
        job_finish(w, job, false, "cancelled");
        return;
    }
    job_record_init(w, job, &rec);
    if (no_targets) {
        rec.reason = "no_targets";
        rec.error = "no target is configured for this message (none in "
                    "targets.yaml, or the herald-targets header names "
                    "none)";
    } else {
        rec.reason = alert_reason_name(job->reason);
        rec.error = job->parse_error;
    }
    if (job->run->dlq_attempt == 0 && !job->run->dlq_reported)
        LOG_ERROR(COMP,
                  (&(log_fields){NULL, w->cfg.topic, job->part->partition,
                                 job->offset, NULL}),
                  "%s (%s): %s", no_targets ? "undeliverable" : "bad message",
                  rec.reason, rec.error);
    switch (job_dlq_write(w, job, &rec)) {
    case JOB_DLQ_WAITING: break;
    case JOB_DLQ_WRITTEN:
        job_finish(w, job, true, no_targets ? "no_targets" : "poison");
        break;
    case JOB_DLQ_FAILED:
        if (!job_dlq_backoff(w, job))
            job_finish(w, job, false, "cancelled");
        break;
    }
}

static void job_step_evaluate(worker *w, job *job);

/* Called by the publisher when one alert's fan-out completed. */
static void job_alert_done(void *opaque, herald_err err, publish_result *res)
{
    job *job = opaque;

    (void)err;
    (void)res;
    if (atomic_fetch_sub(&job->run->pending, 1) == 1) {
        job->run->step = STEP_EVALUATE;
        job_resume(job->run->w, job, 0);
    }
}

/* Starts one fan-out per alert that still has legs to deliver. */
static void job_step_publish(worker *w, job *job)
{
    job_run_state *run = job->run;
    size_t n_base = run->n_base;

    if (job_backoff_wake(w, job))
        return;
    if (job_cancelled(w, job)) {
        job_finish(w, job, false, "cancelled");
        return;
    }
    run->attempt++;
    run->step = STEP_EVALUATE;
    /* One extra count while starting: a fan-out that completes at once
     * cannot resume the job before every fan-out is started. */
    atomic_store(&run->pending, 1);
    for (size_t i = 0; i < job->batch.n; i++) {
        target **rem = &run->remaining[i * (n_base ? n_base : 1)];
        size_t n_rem = legs_remaining(run->legs[i], n_base, rem);
        herald_err err;

        run->started[i] = false;
        if (n_rem == 0)
            continue;
        publish_result_free(&run->results[i]);
        run->started[i] = true;
        atomic_fetch_add(&run->pending, 1);
        err = publish_start(w->pp,
                            run->attempt == 1 ? PUBLISH_MODE_HEALTHY
                                              : PUBLISH_MODE_MULTIPLE,
                            &job->batch.alerts[i], rem, n_rem, &run->opts,
                            &run->results[i], job_alert_done, job);
        if (err != HERALD_OK)
            atomic_fetch_sub(&run->pending, 1); /* Result filled anyway. */
    }
    if (atomic_fetch_sub(&run->pending, 1) == 1)
        job_step_evaluate(w, job);
}

/* Writes one record per failed target, resuming where a failure stopped. */
static void job_step_dead_letter(worker *w, job *job)
{
    job_run_state *run = job->run;
    log_fields lf = job_fields(w, job, NULL);

    if (job_backoff_wake(w, job))
        return;
    for (; run->dlq_next < run->n_base; run->dlq_next++) {
        size_t t = run->dlq_next;
        leg agg;
        dlq_record rec;
        char error[320];

        job_dlq_state st;

        if (!run->dlq_reported && job_cancelled(w, job)) {
            job_finish(w, job, false, "cancelled");
            return;
        }
        if (!legs_failed_merge(run->legs, job->batch.n, t, &agg))
            continue;
        job_record_init(w, job, &rec);
        if (!run->delivered_any && !agg.permanent) {
            snprintf(error, sizeof(error),
                     "no target delivered after %d job attempts: %s",
                     run->attempt, agg.error);
            rec.reason = "budget_exhausted";
        } else {
            snprintf(error, sizeof(error), "%s", agg.error);
            rec.reason = agg.reason;
        }
        rec.error = error;
        rec.target = run->base[t]->name;
        rec.http_status = agg.http_status;
        rec.attempts = agg.attempts;
        rec.first_attempt_ms = agg.first_attempt_ms;
        rec.last_attempt_ms = agg.last_attempt_ms;
        st = job_dlq_write(w, job, &rec);
        if (st == JOB_DLQ_WAITING)
            return;
        if (st == JOB_DLQ_FAILED) {
            if (!job_dlq_backoff(w, job))
                job_finish(w, job, false, "cancelled");
            return;
        }
        run->dlq_attempt = 0;
    }
    if (run->delivered_any)
        log_write_limited(LOG_LEVEL_WARN, COMP, &lf, "job:partial",
                          JOB_OUTAGE_LOG_MS,
                          "partial success: failed legs dead-lettered");
    else
        log_write_limited(
            LOG_LEVEL_ERROR, COMP, &lf, "job:dead-lettered", JOB_OUTAGE_LOG_MS,
            "total failure after %d attempts: dead-lettered", run->attempt);
    job_finish(w, job, true,
               run->delivered_any ? "partial_success" : "dead_lettered");
}

/* Folds the results of the attempt's fan-outs into the legs and stats. */
static void job_results_fold(worker *w, job *job)
{
    job_run_state *run = job->run;

    for (size_t i = 0; i < job->batch.n; i++) {
        publish_result *res = &run->results[i];

        if (!run->started[i])
            continue;
        stats_record_publish(w->stats,
                             res->succeeded == 0 ? STATS_PUBLISH_FAILURE
                             : res->failed > 0   ? STATS_PUBLISH_PARTIAL_SUCCESS
                                                 : STATS_PUBLISH_SUCCESS,
                             res->duration_ms);
        legs_update(w->stats, run->legs[i], run->n_base, res);
        publish_result_free(res);
        run->started[i] = false;
    }
}

/* Total failure within the budget: publish the failed legs again after a
 * full-jitter backoff. */
static void job_retry(worker *w, job *job, size_t failed)
{
    job_run_state *run = job->run;
    log_fields lf = job_fields(w, job, NULL);
    int64_t delay =
        backoff_delay_ms(run->attempt, w->cfg.job_backoff_initial_ms,
                         w->cfg.job_backoff_max_ms, &run->seed);

    metrics_add(job_retries, 1);
    LOG_DEBUG(COMP, &lf,
              "total failure on attempt %d: retrying %zu leg(s) in "
              "%" PRId64 " ms",
              run->attempt, failed, delay);
    log_write_limited(LOG_LEVEL_WARN, COMP, &lf, "job:retry", JOB_OUTAGE_LOG_MS,
                      "total failure on attempt %d: retrying %zu leg(s) in "
                      "%" PRId64 " ms",
                      run->attempt, failed, delay);
    run->step = STEP_PUBLISH;
    run->due_ms = herald_now_ms() + delay;
    job_resume(w, job, run->due_ms);
}

/* Every fan-out of the attempt completed: decide what comes next. */
static void job_step_evaluate(worker *w, job *job)
{
    job_run_state *run = job->run;
    log_fields lf = job_fields(w, job, NULL);
    legs_tally tally = {0, 0, run->delivered_any};
    int64_t age;

    job_results_fold(w, job);
    if (job_cancelled(w, job)) {
        job_finish(w, job, false, "cancelled");
        return;
    }
    legs_tally_add(run->legs, job->batch.n, run->n_base, &tally);
    run->delivered_any = tally.delivered_any;
    if (tally.failed == 0) {
        if (!run->delivered_any)
            LOG_WARN(COMP, &lf,
                     "no target selected for this job (every target is "
                     "disabled or filtered by its matchers)");
        else
            LOG_INFO(COMP, &lf,
                     "delivered %zu alert(s) to every selected "
                     "target",
                     job->batch.n);
        job_finish(w, job, true, "success");
        return;
    }
    age = herald_now_ms() - job->received_ms;
    /* Permanent failures (the target refused the request with a 4xx, or
     * it cannot be built) are dead-lettered at once: a job retry would
     * only repeat them. */
    if (run->delivered_any || tally.retryable == 0 ||
        run->attempt >= w->cfg.job_max_attempts ||
        age >= w->cfg.job_max_age_ms) {
        run->step = STEP_DEAD_LETTER;
        run->dlq_next = 0;
        job_step_dead_letter(w, job);
        return;
    }
    job_retry(w, job, tally.failed);
}

/* First step: set up the run state and start publishing. */
static void job_step_start(worker *w, job *job)
{
    job_run_state *run;
    log_fields lf;
    size_t n_alerts = job->batch.n;
    size_t n_all;

    if (atomic_load(&job->part->revoked) || job_cancelled(w, job)) {
        job_finish(w, job, false, "cancelled");
        return;
    }
    run = calloc(1, sizeof(*run));
    if (!run)
        goto oom;
    job->run = run;
    run->w = w;
    run->seed = (uint64_t)(uintptr_t)job ^ (uint64_t)job->offset ^
                (uint64_t)herald_now_ms();
    run->opts = w->cfg.publish;
    run->opts.cancel = &job->part->cancel;
    if (n_alerts == 0) {
        run->step = STEP_POISON;
        job_step_poison(w, job);
        return;
    }
    run->set = targets_registry_current(w->targets);
    n_all = targets_count(run->set);
    run->base = calloc(n_all ? n_all : 1, sizeof(*run->base));
    if (!run->base)
        goto oom;
    lf = job_fields(w, job, NULL);
    run->n_base =
        legs_targets(run->set, job->only_targets, &lf, run->base, n_all);
    if (run->n_base == 0) {
        run->step = STEP_POISON; /* Undeliverable: dead-letter it. */
        job_step_poison(w, job);
        return;
    }
    run->legs = calloc(n_alerts, sizeof(*run->legs));
    run->results = calloc(n_alerts, sizeof(*run->results));
    run->started = calloc(n_alerts, sizeof(*run->started));
    run->remaining = calloc(n_alerts * run->n_base, sizeof(*run->remaining));
    if (!run->legs || !run->results || !run->started || !run->remaining)
        goto oom;
    for (size_t i = 0; i < n_alerts; i++) {
        publish_result_init(&run->results[i]);
        run->legs[i] = calloc(run->n_base, sizeof(**run->legs));
        if (!run->legs[i])
            goto oom;
        for (size_t t = 0; t < run->n_base; t++)
            run->legs[i][t].tgt = run->base[t];
    }
    run->step = STEP_PUBLISH;
    job_step_publish(w, job);
    return;
oom:
    LOG_ERROR(COMP,
              (&(log_fields){NULL, w->cfg.topic, job->part->partition,
                             job->offset, NULL}),
              "out of memory: job not final, it is consumed again after a "
              "restart or rebalance");
    job_finish(w, job, false, "cancelled");
}

void job_run(void *opaque, void *vjob)
{
    worker *w = opaque;
    job *job = vjob;

    pthread_once(&job_metrics_once, job_metrics_init);
    switch (job->run ? job->run->step : STEP_START) {
    case STEP_START: job_step_start(w, job); break;
    case STEP_PUBLISH: job_step_publish(w, job); break;
    case STEP_EVALUATE: job_step_evaluate(w, job); break;
    case STEP_DEAD_LETTER: job_step_dead_letter(w, job); break;
    case STEP_POISON: job_step_poison(w, job); break;
    }
}
