/*
 * backoff.h: exponential backoff with full jitter, and Retry-After parsing.
 *
 * Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"):
 * the delay before attempt n+1 is uniform in [0, min(max, initial * 2^n)).
 * Retry-After (RFC 9110 section 10.2.3) is either delay-seconds or an
 * HTTP-date; a server-given delay replaces the jittered one, capped.
 *
 * Thread-safety: pure functions; the jitter uses a caller-owned seed.
 */
#ifndef HERALD_BACKOFF_H
#define HERALD_BACKOFF_H

#include <stdint.h>
#include <time.h>

/* Longest Retry-After honoured, milliseconds (5 minutes). */
#define BACKOFF_RETRY_AFTER_CAP_MS 300000

/*
 * Delay in ms before the next attempt after `attempt` attempts (1-based)
 * failed: uniform in [0, min(max_ms, initial_ms * 2^(attempt-1))].
 * *seed is the caller's xorshift state (any non-zero value to start).
 */
int64_t backoff_delay_ms(int attempt, int initial_ms, int max_ms,
                         uint64_t *seed);

/*
 * Parses a Retry-After value at wall-clock time now (seconds since the
 * epoch). Returns the delay in ms (0 for a date in the past), capped at
 * BACKOFF_RETRY_AFTER_CAP_MS, or -1 when the value is neither form.
 */
int64_t backoff_parse_retry_after(const char *value, time_t now);

#endif
