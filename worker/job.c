/*
 * job.c: runs one job (one Kafka message) on a dispatcher thread.
 *
 * Data flow per job: select the targets (all configured ones, or those of
 * the herald-targets header) -> for every alert of the message publish to
 * the healthy ones through the ParallelPublisher (each target retried on
 * its own inside the publisher) -> classify legs: delivered, not selected
 * (disabled / filtered: nothing to do), failed (attempted, or skipped as
 * unhealthy / degraded / circuit open) -> if anything was delivered, write
 * every failed leg to the dead-letter topic; if nothing was delivered
 * (total failure), retry only the failed legs with backoff until the job
 * budget (attempts, age) is spent, then dead-letter them -> the job is
 * final only when every leg delivered or its dead-letter record was
 * acknowledged by the broker. Poison messages go straight to the
 * dead-letter topic. A job whose partition is revoked or that is cancelled
 * at shutdown is handed back as not final, so its offset is never
 * committed and the next owner consumes it again (at-least-once).
 *
 * Threads: dispatcher threads of the PublishingQueue; one job at a time
 * per thread; jobs of one fingerprint never run concurrently.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "publishers/backoff.h"
#include "publishers/breaker.h"
#include "worker/log.h"
#include "worker/metrics.h"
#include "worker/worker_int.h"

static const char *COMP = "job";

/* State of one (alert, target) leg across job attempts. */
typedef enum leg_state {
    LEG_PENDING = 0, /* Not yet attempted. */
    LEG_DELIVERED,
    LEG_NOT_SELECTED, /* Disabled or filtered: not for this alert. */
    LEG_FAILED        /* Attempted or skipped for health; not delivered. */
} leg_state;

typedef struct leg {
    target *tgt;
    leg_state state;
    char reason[32]; /* Dead-letter reason kind when failed. */
    char error[256];
    long http_status;
    int attempts; /* Over all job attempts. */
    int64_t first_attempt_ms;
    int64_t last_attempt_ms;
} leg;

static metric *jobs_total;
static metric *job_retries;
static pthread_once_t job_metrics_once = PTHREAD_ONCE_INIT;

static void job_metrics_init(void)
{
    jobs_total = metrics_family(METRIC_COUNTER, "herald_jobs_total",
                                "Jobs finished, by outcome (success, "
                                "partial_success, dead_lettered, poison, "
                                "cancelled).",
                                "outcome", NULL, 0);
    job_retries = metrics_family(METRIC_COUNTER, "herald_job_retries_total",
                                 "Job attempts repeated after a total "
                                 "failure.",
                                 "", NULL, 0);
}

void job_free(job *job)
{
    if (!job)
        return;
    alert_batch_free(&job->batch);
    free(job->key);
    free(job->value);
    free(job->only_targets);
    part_unref(job->part);
    free(job);
}

static bool job_cancelled(worker *w, job *job)
{
    return atomic_load(&job->part->cancel) || atomic_load(&w->stopping);
}

/* Waits ms milliseconds unless the job is cancelled first. */
static bool job_wait(worker *w, job *job, int64_t ms)
{
    int64_t until = herald_now_ms() + ms;

    while (!job_cancelled(w, job)) {
        int64_t left = until - herald_now_ms();
        struct timespec ts;

        if (left <= 0)
            return true;
        if (left > 50)
            left = 50; /* Notice a cancel within 50 ms. */
        ts.tv_sec = 0;
        ts.tv_nsec = left * 1000000L;
        nanosleep(&ts, NULL);
    }
    return false;
}

/*
 * Writes one dead-letter record, retrying until the broker acknowledges
 * it. Returns false only when the job was cancelled first (then nothing
 * may be committed for it).
 */
static bool job_dead_letter(worker *w, job *job, const dlq_record *rec)
{
    uint64_t seed = (uint64_t)(uintptr_t)job ^ (uint64_t)herald_now_ms();
    int attempt = 0;
    log_fields lf = {rec->target, w->cfg.topic, job->part->partition,
                     job->offset, job->batch.n ? job->batch.alerts[0].fingerprint
                                               : NULL};

    for (;;) {
        char errstr[256];
        herald_err err;

        err = dlq_write(w->dlq, rec, w->cfg.dlq_timeout_ms, errstr,
                        sizeof(errstr));
        if (err == HERALD_OK) {
            LOG_WARN(COMP, &lf, "dead-lettered to %s: %s: %s",
                     dlq_topic(w->dlq), rec->reason,
                     rec->error ? rec->error : "");
            return true;
        }
        attempt++;
        log_write_limited(LOG_LEVEL_ERROR, COMP, &lf, "dlq-write", 10000,
                          "dead-letter write failed (attempt %d), "
                          "retrying; the offset is not committed: %s",
                          attempt, errstr);
        if (!job_wait(w, job, backoff_delay_ms(attempt, 500, 30000, &seed)))
            return false;
    }
}

/* Poison message: dead-letter it with its reason kind. */
static bool job_poison(worker *w, job *job)
{
    dlq_record rec;

    memset(&rec, 0, sizeof(rec));
    rec.reason = alert_reason_name(job->reason);
    rec.error = job->parse_error;
    rec.source_topic = w->cfg.topic;
    rec.source_partition = job->part->partition;
    rec.source_offset = job->offset;
    rec.key = job->key;
    rec.key_len = job->key_len;
    rec.value = job->value;
    rec.value_len = job->value_len;
    LOG_ERROR(COMP,
              (&(log_fields){NULL, w->cfg.topic, job->part->partition,
                             job->offset, NULL}),
              "bad message (%s): %s", rec.reason, job->parse_error);
    return job_dead_letter(w, job, &rec);
}

/* The targets of this job: all, or those the herald-targets header names. */
static size_t job_targets(worker *w, job *job, target_set *set,
                          target **out, size_t cap)
{
    target *const *all = targets_list(set);
    size_t n = targets_count(set);
    size_t k = 0;
    char *list;
    char *save = NULL;

    if (!job->only_targets) {
        for (size_t i = 0; i < n && k < cap; i++)
            out[k++] = all[i];
        return k;
    }
    list = strdup(job->only_targets);
    for (char *name = list ? strtok_r(list, ", ", &save) : NULL; name;
         name = strtok_r(NULL, ", ", &save)) {
        target *tgt = targets_find(set, name);

        if (!tgt) {
            LOG_WARN(COMP,
                     (&(log_fields){name, w->cfg.topic, job->part->partition,
                                    job->offset, NULL}),
                     "herald-targets header names an unknown target: "
                     "ignored");
            continue;
        }
        if (k < cap)
            out[k++] = tgt;
    }
    free(list);
    return k;
}

/* Folds one publish result into the legs of an alert. */
static void legs_update(worker *w, leg *legs, size_t n_legs,
                        const publish_result *res)
{
    for (size_t r = 0; r < res->n_targets; r++) {
        const publish_target_result *tr = &res->targets[r];
        leg *lg = NULL;

        for (size_t i = 0; i < n_legs; i++) {
            if (strcmp(legs[i].tgt->name, tr->name) == 0) {
                lg = &legs[i];
                break;
            }
        }
        if (!lg)
            continue;
        lg->attempts += tr->attempts;
        if (tr->first_attempt_ms &&
            (!lg->first_attempt_ms || tr->first_attempt_ms < lg->first_attempt_ms))
            lg->first_attempt_ms = tr->first_attempt_ms;
        if (tr->last_attempt_ms > lg->last_attempt_ms)
            lg->last_attempt_ms = tr->last_attempt_ms;
        switch (tr->outcome) {
        case PUBLISH_OUTCOME_DELIVERED:
            lg->state = LEG_DELIVERED;
            stats_record(w->stats, tr->name, true, tr->duration_ms);
            break;
        case PUBLISH_OUTCOME_SKIPPED:
            if (tr->skip_reason == PUBLISH_REASON_DISABLED ||
                tr->skip_reason == PUBLISH_REASON_FILTERED) {
                lg->state = LEG_NOT_SELECTED;
                break;
            }
            lg->state = LEG_FAILED;
            snprintf(lg->reason, sizeof(lg->reason), "%s",
                     publish_skip_reason_name(tr->skip_reason));
            snprintf(lg->error, sizeof(lg->error), "skipped: %s",
                     publish_skip_reason_name(tr->skip_reason));
            break;
        case PUBLISH_OUTCOME_FAILED:
        default:
            lg->state = LEG_FAILED;
            snprintf(lg->reason, sizeof(lg->reason), "target_failed");
            snprintf(lg->error, sizeof(lg->error), "%s", tr->error);
            lg->http_status = tr->http_status;
            stats_record(w->stats, tr->name, false, tr->duration_ms);
            break;
        }
    }
}

void job_run(void *opaque, void *vjob)
{
    worker *w = opaque;
    job *job = vjob;
    target_set *set = NULL;
    target **base = NULL;
    leg **legs = NULL; /* legs[alert][target] */
    target **remaining = NULL;
    size_t n_base = 0;
    size_t n_alerts = job->batch.n;
    uint64_t seed = (uint64_t)(uintptr_t)job ^ (uint64_t)job->offset;
    int attempt = 0;
    bool delivered_any = false;
    const char *outcome = "cancelled";
    publish_opts opts = w->cfg.publish;
    log_fields lf = {NULL, w->cfg.topic, job->part->partition, job->offset,
                     n_alerts ? job->batch.alerts[0].fingerprint : NULL};

    pthread_once(&job_metrics_once, job_metrics_init);
    job->final = false;
    if (atomic_load(&job->part->revoked) || job_cancelled(w, job))
        goto done;
    if (n_alerts == 0) {
        job->final = job_poison(w, job);
        outcome = job->final ? "poison" : "cancelled";
        goto done;
    }
    set = targets_registry_current(w->targets);
    n_base = targets_count(set);
    base = calloc(n_base ? n_base : 1, sizeof(*base));
    remaining = calloc(n_base ? n_base : 1, sizeof(*remaining));
    legs = calloc(n_alerts, sizeof(*legs));
    if (!base || !remaining || !legs)
        goto oom;
    n_base = job_targets(w, job, set, base, n_base);
    for (size_t i = 0; i < n_alerts; i++) {
        legs[i] = calloc(n_base ? n_base : 1, sizeof(**legs));
        if (!legs[i])
            goto oom;
        for (size_t t = 0; t < n_base; t++)
            legs[i][t].tgt = base[t];
    }
    opts.cancel = &job->part->cancel;

    for (;;) {
        size_t failed = 0;
        int64_t age;

        attempt++;
        for (size_t i = 0; i < n_alerts; i++) {
            const alert *a = &job->batch.alerts[i];
            publish_result res;
            size_t n_rem = 0;

            for (size_t t = 0; t < n_base; t++) {
                if (legs[i][t].state == LEG_PENDING ||
                    legs[i][t].state == LEG_FAILED)
                    remaining[n_rem++] = legs[i][t].tgt;
            }
            if (n_rem == 0)
                continue;
            publish_result_init(&res);
            if (attempt == 1)
                publish_to_healthy(w->pp, a, remaining, n_rem, &opts, &res);
            else
                publish_to_multiple(w->pp, a, remaining, n_rem, &opts, &res);
            stats_record_publish(
                w->stats,
                res.succeeded == 0 ? STATS_PUBLISH_FAILURE
                : res.failed > 0   ? STATS_PUBLISH_PARTIAL_SUCCESS
                                   : STATS_PUBLISH_SUCCESS,
                res.duration_ms);
            legs_update(w, legs[i], n_base, &res);
            publish_result_free(&res);
            if (job_cancelled(w, job))
                goto done;
        }
        for (size_t i = 0; i < n_alerts; i++) {
            for (size_t t = 0; t < n_base; t++) {
                failed += legs[i][t].state == LEG_FAILED;
                delivered_any =
                    delivered_any || legs[i][t].state == LEG_DELIVERED;
            }
        }
        if (failed == 0) {
            job->final = true;
            outcome = "success";
            if (!delivered_any)
                LOG_WARN(COMP, &lf,
                         "no target selected for this job (disabled, "
                         "filtered or no targets configured)");
            else
                LOG_INFO(COMP, &lf, "delivered %zu alert(s) to every "
                         "selected target", n_alerts);
            goto done;
        }
        age = herald_now_ms() - job->received_ms;
        if (delivered_any || attempt >= w->cfg.job_max_attempts ||
            age >= w->cfg.job_max_age_ms)
            break;
        metrics_add(job_retries, 1);
        {
            int64_t delay = backoff_delay_ms(attempt,
                                             w->cfg.job_backoff_initial_ms,
                                             w->cfg.job_backoff_max_ms,
                                             &seed);

            LOG_WARN(COMP, &lf,
                     "total failure on attempt %d: retrying %zu leg(s) in "
                     "%" PRId64 " ms",
                     attempt, failed, delay);
            if (!job_wait(w, job, delay))
                goto done;
        }
    }

    /* Partial success, or a total failure whose budget is spent: every
     * failed leg goes to the dead-letter topic, one record per target. */
    for (size_t t = 0; t < n_base; t++) {
        leg agg;
        dlq_record rec;
        char error[320];

        memset(&agg, 0, sizeof(agg));
        for (size_t i = 0; i < n_alerts; i++) {
            leg *lg = &legs[i][t];

            if (lg->state != LEG_FAILED)
                continue;
            if (agg.state != LEG_FAILED)
                agg = *lg;
            agg.attempts = lg->attempts > agg.attempts ? lg->attempts
                                                       : agg.attempts;
            if (lg->last_attempt_ms > agg.last_attempt_ms)
                agg.last_attempt_ms = lg->last_attempt_ms;
        }
        if (agg.state != LEG_FAILED)
            continue;
        memset(&rec, 0, sizeof(rec));
        if (!delivered_any) {
            snprintf(error, sizeof(error),
                     "no target delivered after %d job attempts: %s",
                     attempt, agg.error);
            rec.reason = "budget_exhausted";
        } else {
            snprintf(error, sizeof(error), "%s", agg.error);
            rec.reason = agg.reason;
        }
        rec.error = error;
        rec.source_topic = w->cfg.topic;
        rec.source_partition = job->part->partition;
        rec.source_offset = job->offset;
        rec.target = base[t]->name;
        rec.http_status = agg.http_status;
        rec.attempts = agg.attempts;
        rec.first_attempt_ms = agg.first_attempt_ms;
        rec.last_attempt_ms = agg.last_attempt_ms;
        rec.key = job->key;
        rec.key_len = job->key_len;
        rec.value = job->value;
        rec.value_len = job->value_len;
        if (!job_dead_letter(w, job, &rec))
            goto done;
    }
    job->final = true;
    outcome = delivered_any ? "partial_success" : "dead_lettered";
    if (delivered_any)
        LOG_WARN(COMP, &lf, "partial success: failed legs dead-lettered");
    else
        LOG_ERROR(COMP, &lf,
                  "total failure after %d attempts: dead-lettered", attempt);
    goto done;
oom:
    LOG_ERROR(COMP, &lf, "out of memory: job not final, it is consumed "
              "again after a restart or rebalance");
done:
    metrics_add(jobs_total, 1, outcome);
    if (legs) {
        for (size_t i = 0; i < n_alerts; i++)
            free(legs[i]);
    }
    free(legs);
    free(base);
    free(remaining);
    if (set)
        targets_release(set);
    worker_job_done(w, job);
}
