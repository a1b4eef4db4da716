/*
 * job_int.h: what worker/job.c and worker/legs.c share: the targets of a
 * job and the delivery state of its (alert, target) legs. Private to the job;
 * job.c calls legs.c, never the other way.
 */
#ifndef HERALD_JOB_INT_H
#define HERALD_JOB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/log.h"
#include "core/stats.h"
#include "publishers/parallel.h"
#include "publishers/targets.h"

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
    bool permanent; /* Gave up (4xx, unbuildable): retrying cannot help. */
    int attempts;   /* Over all job attempts. */
    int64_t first_attempt_ms;
    int64_t last_attempt_ms;
} leg;

/* What the legs of a job add up to after an attempt. */
typedef struct legs_tally {
    size_t failed;      /* Legs failed. */
    size_t retryable;   /* Failed and not permanent. */
    bool delivered_any; /* At least one leg delivered. */
} legs_tally;

/*
 * Writes the job's targets into out (cap slots) and returns how many: every
 * target of set, or, when only_targets (the herald-targets header, "a,b",
 * borrowed) is not NULL, those it names that exist in set; an unknown name
 * is logged (lf: the job's fields, borrowed) and ignored. The targets are
 * borrowed from set. Any thread.
 */
size_t legs_targets(target_set *set, const char *only_targets,
                    const log_fields *lf, target **out, size_t cap);

/*
 * Folds one alert's publish result (res, borrowed) into its legs (n_legs
 * of them, one per target of the job) and records each attempted target's
 * outcome in st. The caller owns the legs; one thread at a time per job.
 */
void legs_update(stats *st, leg *legs, size_t n_legs,
                 const publish_result *res);

/*
 * Adds up legs[alert][target] (n_alerts x n_targets) into *tally (fields
 * are added to; delivered_any is or-ed in).
 */
void legs_tally_add(leg *const *legs, size_t n_alerts, size_t n_targets,
                    legs_tally *tally);

/*
 * Merges the failed legs of target t over every alert into *agg: the first
 * failed leg's facts, the most attempts and the latest attempt. Returns
 * false (agg unspecified) when no leg of t failed.
 */
bool legs_failed_merge(leg *const *legs, size_t n_alerts, size_t t, leg *agg);

/*
 * Writes the targets of an alert's legs (n_legs) still to publish (pending
 * or failed) into out (n_legs slots); returns how many.
 */
size_t legs_remaining(const leg *legs, size_t n_legs, target **out);

#endif
