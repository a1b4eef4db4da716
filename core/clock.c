/*
 * clock.c: the process clocks (core/clock.h). Both read clock_gettime(2),
 * which is async-signal-safe and lock-free, so any thread may call them.
 */
#include "core/clock.h"

#include <time.h>

static int64_t clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t herald_now_ms(void)
{
    return clock_ms(CLOCK_MONOTONIC);
}

int64_t herald_wall_ms(void)
{
    return clock_ms(CLOCK_REALTIME);
}
