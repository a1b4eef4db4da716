/*
 * signals.c: the signal thread (core/signals.h).
 *
 * Data flow: the kernel queues SIGINT/SIGTERM/SIGHUP, blocked in every
 * thread, for the process; the signal thread alone takes them with
 * sigwait() and sets the flags registered by the running subcommand,
 * which the consumer thread polls. The registered pointers are atomics
 * because signals_watch() runs on the main thread while the signal thread
 * reads them.
 *
 * Threads: the main thread (block, start, watch, stop) and the signal
 * thread.
 */
#include "core/signals.h"

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <unistd.h>

static _Atomic(atomic_int *) signals_stop_flag;
static _Atomic(atomic_int *) signals_reload_flag;
static atomic_bool signals_quit;
static pthread_t signals_thread;
static bool signals_running;

void signals_set(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGHUP);
}

herald_err signals_block(void)
{
    sigset_t set;
    struct sigaction sa;

    signals_set(&set);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
        return HERALD_ERR_INVALID;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) != 0)
        return HERALD_ERR_INVALID;
    return HERALD_OK;
}

/* Handles one signal: set a flag, or end the process at once. */
static void signals_handle(int sig)
{
    atomic_int *stop = atomic_load(&signals_stop_flag);
    atomic_int *reload = atomic_load(&signals_reload_flag);

    if (sig == SIGHUP && reload) {
        atomic_store(reload, 1);
        return;
    }
    /* A second signal means "now": leave without draining. Nothing is
     * lost: what was not committed is consumed again (at-least-once). */
    if (!stop || atomic_exchange(stop, 1))
        _exit(128 + sig);
}

static void *signals_main(void *arg)
{
    sigset_t set;

    (void)arg;
    /* Named here rather than through herald_thread_create(): core/thread.c
     * uses this file, so calling it back would make a cycle. */
    pthread_setname_np(pthread_self(), "herald-signal");
    signals_set(&set);
    for (;;) {
        int sig = 0;

        if (sigwait(&set, &sig) != 0)
            continue;
        if (atomic_load(&signals_quit))
            break;
        signals_handle(sig);
    }
    return NULL;
}

herald_err signals_start(void)
{
    if (signals_running)
        return HERALD_OK;
    atomic_store(&signals_quit, false);
    if (pthread_create(&signals_thread, NULL, signals_main, NULL) != 0)
        return HERALD_ERR_NOMEM;
    signals_running = true;
    return HERALD_OK;
}

void signals_watch(atomic_int *stop, atomic_int *reload)
{
    atomic_store(&signals_stop_flag, stop);
    atomic_store(&signals_reload_flag, reload);
}

void signals_stop(void)
{
    if (!signals_running)
        return;
    signals_watch(NULL, NULL);
    atomic_store(&signals_quit, true);
    /* Wakes sigwait(): the signal is blocked, so it stays pending for
     * the signal thread, which sees the quit flag and leaves. */
    pthread_kill(signals_thread, SIGHUP);
    pthread_join(signals_thread, NULL);
    signals_running = false;
}
