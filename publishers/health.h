/*
 * health.h: the health monitor of targets.
 *
 * One background thread probes every enabled target periodically (HTTP GET
 * or HEAD of a URL, or a TCP connect to the target's host and port, per
 * target_health) with a timeout; results of real deliveries count too
 * (health_record). Statuses: unknown (no result yet), healthy, degraded
 * (latency above degraded_latency_ms, or a recent failure), unhealthy
 * (unhealthy_after consecutive failures). Fail open: unknown counts as
 * healthy for routing. Probes never run on the consumer or publishing
 * threads, and reading a status never blocks on a probe.
 *
 * Thread-safety: all functions may be called from any thread after
 * health_new() returned and until health_destroy().
 */
#ifndef HERALD_HEALTH_H
#define HERALD_HEALTH_H

#include <stdbool.h>
#include <stddef.h>

#include "publishers/target.h"

typedef enum health_status {
    HEALTH_UNKNOWN = 0,
    HEALTH_HEALTHY = 1,
    HEALTH_DEGRADED = 2,
    HEALTH_UNHEALTHY = 3
} health_status;

typedef struct health health;

/*
 * Creates the monitor. When start_thread is false no probes run (tests,
 * `herald produce`) and only passive results count. Returns NULL with
 * errstr filled on failure. Free with health_destroy().
 */
health *health_new(bool start_thread, char *errstr, size_t errstr_size);

/*
 * Replaces the set of monitored targets (borrowed: the caller keeps them
 * alive until the next health_set_targets or health_destroy). State of
 * targets whose name stays is kept. Errors: HERALD_ERR_NOMEM.
 */
herald_err health_set_targets(health *h, target *const *targets, size_t n);

/* Stops the probe thread, joins it and frees h. NULL is a no-op. */
void health_destroy(health *h);

/* Status of the target named name; HEALTH_UNKNOWN when not monitored. */
health_status health_get(health *h, const char *name);

/*
 * Records a passive result (a real delivery attempt) for target name:
 * success and its latency in ms.
 */
void health_record(health *h, const char *name, bool success,
                   double latency_ms);

/* Runs one probe round now, synchronously (tests). */
void health_probe_all(health *h);

/* "unknown", "healthy", "degraded", "unhealthy". */
const char *health_status_name(health_status status);

#endif
