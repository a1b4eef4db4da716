/*
 * breaker.h: a circuit breaker per target.
 *
 * closed -> open after failure_threshold consecutive failures, or when the
 * failure rate over window_ms exceeds failure_rate (with at least
 * min_requests in the window); open -> half-open after open_timeout_ms;
 * half-open lets at most half_open_probes requests through at once; it
 * closes after success_threshold successes and reopens on any failure.
 * Defaults (target_breaker): 5 failures, 30 s, 2 successes, 1 probe.
 * State changes are logged and counted in herald_breaker_* metrics.
 *
 * Thread-safety: every function may be called from any thread (one mutex
 * per breaker, nothing logged while it is held).
 */
#ifndef HERALD_BREAKER_H
#define HERALD_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

#include "publishers/target.h"

typedef enum breaker_state {
    BREAKER_CLOSED = 0,
    BREAKER_OPEN = 1,
    BREAKER_HALF_OPEN = 2
} breaker_state;

typedef struct breaker breaker;

/*
 * Creates a breaker for the target named name (copied) with settings cfg
 * (copied). Returns NULL when out of memory. Free with breaker_destroy().
 */
breaker *breaker_new(const char *name, const target_breaker *cfg);

/* Frees b. NULL is a no-op. No other thread may use b any more. */
void breaker_destroy(breaker *b);

/*
 * Asks to send one request at now_ms (monotonic ms). True when allowed;
 * in half-open a true answer takes a probe slot, which the caller must
 * give back with breaker_record() (the request's outcome).
 */
bool breaker_allow(breaker *b, int64_t now_ms);

/* Records the outcome of an allowed request at now_ms. */
void breaker_record(breaker *b, bool success, int64_t now_ms);

/* Current state, after applying the open timeout at now_ms. */
breaker_state breaker_get_state(breaker *b, int64_t now_ms);

/* Transitions so far (for /stats). */
uint64_t breaker_transitions(breaker *b);

/* "closed", "open", "half_open". */
const char *breaker_state_name(breaker_state state);

/* Fills cfg with the defaults listed above. */
void breaker_config_default(target_breaker *cfg);

#endif
