/*
 * metrics.h: the process-wide Prometheus metrics registry.
 *
 * Families are registered once by name (registering the same name again
 * returns the same family) and series are created on first use of a label
 * value combination. metrics_render() writes the Prometheus text exposition
 * format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/)
 * and the output passes `promtool check metrics`. Names start with
 * "herald_"; counters end in "_total"; durations are in seconds.
 * Label values must never carry secrets (use target names).
 *
 * Thread-safety: every function may be called from any thread.
 */
#ifndef HERALD_METRICS_H
#define HERALD_METRICS_H

#include <stddef.h>

#include "core/buf.h"
#include "core/err.h"

typedef enum metric_type {
    METRIC_COUNTER = 0,
    METRIC_GAUGE = 1,
    METRIC_HISTOGRAM = 2
} metric_type;

typedef struct metric metric;

/* Most labels one family may have. */
#define METRICS_MAX_LABELS 4

/*
 * Registers (or finds) a family. label_names is a comma-separated list
 * ("target,outcome") or "" for none; buckets (upper bounds, increasing,
 * seconds) only for histograms, NULL for the default
 * {.005,.01,.025,.05,.1,.25,.5,1,2.5,5,10,30}. Strings are copied. Returns
 * NULL when out of memory or when the name is registered with another type.
 */
metric *metrics_family(metric_type type, const char *name, const char *help,
                       const char *label_names, const double *buckets,
                       size_t n_buckets);

/* Counter: adds v (>= 0) to the series with the given label values. The
 * number of values must equal the family's label count. */
void metrics_add(metric *m, double v, ...);

/* Gauge: sets the series to v. */
void metrics_set(metric *m, double v, ...);

/* Histogram: observes v (seconds for durations). */
void metrics_observe(metric *m, double v, ...);

/* Removes every series of a family (e.g. lag of revoked partitions). */
void metrics_clear(metric *m);

/* Appends the whole exposition to out. Errors: HERALD_ERR_TOO_LARGE, NOMEM. */
herald_err metrics_render(buf *out);

/* Frees every family (at exit, for leak checkers). */
void metrics_shutdown(void);

#endif
