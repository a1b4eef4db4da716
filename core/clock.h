/*
 * clock.h: the process clocks.
 *
 * herald_now_ms() is the one monotonic clock every deadline, backoff,
 * timer and latency in herald is measured on (CLOCK_MONOTONIC, POSIX.1-2008
 * clock_gettime). herald_wall_ms() is wall-clock time for what leaves the
 * process (Kafka record timestamps, dead-letter headers, log lines).
 */
#ifndef HERALD_CLOCK_H
#define HERALD_CLOCK_H

#include <stdint.h>

/*
 * Monotonic clock in milliseconds since an unspecified start
 * (CLOCK_MONOTONIC). Never goes back, not affected by clock steps. Any
 * thread; cannot fail.
 */
int64_t herald_now_ms(void);

/*
 * Wall-clock time in milliseconds since the Unix epoch (CLOCK_REALTIME),
 * the unit of Kafka record timestamps. Any thread; cannot fail.
 */
int64_t herald_wall_ms(void);

#endif
