/*
 * tsan_thrd.h: lets ThreadSanitizer see librdkafka's threads. Include it in
 * exactly one file of a test executable that starts librdkafka handles.
 *
 * librdkafka starts its threads with C11 thrd_create(), which glibc
 * implements without going through pthread_create(), so GCC 12's
 * ThreadSanitizer never registers them and crashes in their first
 * malloc(). Under TSan this header defines thrd_create/thrd_join/
 * thrd_detach (the executable's definitions win over glibc's for
 * librdkafka) on top of the intercepted pthread functions. thrd_t is a
 * pthread_t in glibc. Without TSan it defines nothing.
 */
#ifndef HERALD_TESTS_TSAN_THRD_H
#define HERALD_TESTS_TSAN_THRD_H

#if defined(__SANITIZE_THREAD__)
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <threads.h>
typedef struct tsan_thrd_start {
    thrd_start_t fn;
    void *arg;
} tsan_thrd_start;

static void *tsan_thrd_main(void *p)
{
    tsan_thrd_start s = *(tsan_thrd_start *)p;

    free(p);
    return (void *)(intptr_t)s.fn(s.arg);
}

int thrd_create(thrd_t *thr, thrd_start_t fn, void *arg)
{
    tsan_thrd_start *s = malloc(sizeof *s);
    int rc;

    if (!s)
        return thrd_nomem;
    s->fn = fn;
    s->arg = arg;
    rc = pthread_create((pthread_t *)thr, NULL, tsan_thrd_main, s);
    if (rc != 0) {
        free(s);
        return rc == EAGAIN || rc == ENOMEM ? thrd_nomem : thrd_error;
    }
    return thrd_success;
}

int thrd_join(thrd_t thr, int *res)
{
    void *r = NULL;

    if (pthread_join((pthread_t)thr, &r) != 0)
        return thrd_error;
    if (res)
        *res = (int)(intptr_t)r;
    return thrd_success;
}

int thrd_detach(thrd_t thr)
{
    return pthread_detach((pthread_t)thr) == 0 ? thrd_success : thrd_error;
}
#endif

#endif
