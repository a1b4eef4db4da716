/*
 * stats.h: a small in-process aggregator of delivery outcomes and latencies
 * behind GET /stats.
 *
 * Publishers record every finished delivery leg (target name, delivered or
 * not, duration in milliseconds) and every finished publish (success,
 * partial success, failure); stats_to_json() summarises them: totals, per
 * target success rate and p50/p99 duration.
 *
 * Precision: durations go into a fixed log-scale histogram per target
 * (16 buckets per doubling from 0.01 ms up to 1 hour, 456 buckets, 3.6 KiB
 * per target). A quantile is the geometric middle of the bucket holding the
 * rank, clamped to the observed min and max, so it is within about 2.2 % of
 * the exact order statistic; durations under 0.01 ms or over 1 hour fall in
 * the first or last bucket. Memory is bounded: at most STATS_MAX_TARGETS
 * distinct target names are tracked; legs of further names count only in the
 * totals.
 *
 * Thread-safety: every function may be called from any thread (one mutex;
 * stats_to_json() calls its annotate callback without holding it).
 */
#ifndef HERALD_STATS_H
#define HERALD_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

typedef struct stats stats;

/* Most distinct target names tracked one by one. */
#define STATS_MAX_TARGETS 4096

/* How one publish (one alert to its selected targets) ended. */
typedef enum stats_publish_result {
    STATS_PUBLISH_SUCCESS = 0,         /* Every selected target delivered. */
    STATS_PUBLISH_PARTIAL_SUCCESS = 1, /* Some delivered, some failed. */
    STATS_PUBLISH_FAILURE = 2          /* None delivered. */
} stats_publish_result;

/* Creates an empty aggregator; NULL when out of memory. Free with
 * stats_destroy(). */
stats *stats_new(void);

/* Frees st; NULL is a no-op. No other thread may use st any more. */
void stats_destroy(stats *st);

/*
 * Records one delivery leg of target (copied; a name, never a URL):
 * delivered is true for "delivered", false for a final failure;
 * duration_ms in milliseconds (negative or NaN counts as 0). Any thread.
 */
void stats_record(stats *st, const char *target, bool delivered,
                  double duration_ms);

/* Records one finished publish and its duration in milliseconds. */
void stats_record_publish(stats *st, stats_publish_result result,
                          double duration_ms);

/*
 * Called by stats_to_json() once per tracked target, in name order, without
 * the lock held, so the caller can add fields such as "breaker" and
 * "health" to obj (borrowed).
 */
typedef void (*stats_annotate_fn)(void *opaque, const char *target,
                                  json_object *obj);

/*
 * Builds the summary. Caller owns the result (json_object_put); NULL when out
 * of memory. annotate may be NULL. Shape (durations in ms, rates 0..1 or
 * null when there is no leg yet):
 *   {"publishes": {"total", "success", "partial_success", "failure",
 *                  "duration_ms": {"p50", "p99", "max", "mean"}},
 *    "deliveries": {"total", "delivered", "failed", "success_rate"},
 *    "targets": {"<name>": {"deliveries", "delivered", "failed",
 *                           "success_rate", "duration_ms": {...}}, ...}}
 * Duration fields are null while there is no sample. Any thread.
 */
json_object *stats_to_json(stats *st, stats_annotate_fn annotate, void *opaque);

/*
 * The q-quantile (0 < q <= 1) of target's leg durations in ms, with the
 * precision above; -1 when the target has no sample. Any thread.
 */
double stats_target_quantile(stats *st, const char *target, double q);

#endif
