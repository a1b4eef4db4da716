/*
 * thread.c: herald_thread_create() (see thread.h). The signal mask is
 * inherited by a new thread, so the caller's mask is widened for the
 * pthread_create() call and restored right after: the new thread starts
 * with the signals blocked without a window in which one could reach it.
 * Any thread may call it; it touches only the calling thread's mask.
 */
#include "core/thread.h"

#include "core/signals.h"

#include <signal.h>
#include <stdio.h>

int herald_thread_create(pthread_t *tid, const char *name,
                         void *(*fn)(void *arg), void *arg)
{
    sigset_t block;
    sigset_t saved;
    pthread_t th;
    int rc;

    signals_set(&block);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    rc = pthread_create(&th, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (rc != 0)
        return rc;
    if (name) {
        char cut[HERALD_THREAD_NAME_MAX];

        snprintf(cut, sizeof cut, "%s", name);
        /* Naming is best effort: a failure changes nothing else. */
        (void)pthread_setname_np(th, cut);
    }
    *tid = th;
    return 0;
}
