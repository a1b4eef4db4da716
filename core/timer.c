/*
 * timer.c: the timer engine (see timer.h).
 *
 * Data flow: timer_add() stamps the entry with its due time and an add
 * sequence and pushes it into a core/heap.h min-heap ordered by (due,
 * sequence); the heap's moved() callback keeps entry->pos, so
 * timer_cancel() removes an entry in O(log n) without a lookup. The thread
 * sleeps on a CLOCK_MONOTONIC condition variable until the earliest due
 * time or a signal; timer_add() signals only when the new entry became the
 * earliest (the thread sleeps for a later time), so the common case, a
 * deadline far behind others, costs no wakeup. A due entry is popped and
 * recorded as "running" in the same critical section, then its callback
 * runs without the lock. So an entry is always exactly one of: pending (in
 * the heap), running (t->running), or neither; timer_cancel() answers from
 * that, and timer_cancel_wait() waits on done_cond while it is running.
 * timer_cancel_owner() rebuilds the heap without the owner's entries
 * (popping all keeps them in due order) and waits the same way while a
 * callback of that owner runs (t->running_owner, copied at the pop).
 * The engine never dereferences an entry after its callback started: the
 * callback may free it.
 *
 * Why one thread and a heap (libuv's timer heap, librdkafka's rdtimer,
 * Redis ae's time events): herald's timers are deadlines, retry backoffs
 * and cancel polls, a few hundred pending and a few hundred firings a
 * second at most; one thread handles that with microseconds per callback,
 * and owners keep their work on their own threads. A process-wide shared
 * engine (reference counted, see timer_shared_acquire()) gives `herald
 * run` one timer thread without threading an engine through every
 * constructor; explicit engines (timer_new()) keep tests independent.
 *
 * Locking: t->lock guards the heap, the sequence, running, waiters and
 * stopping. Callbacks run without it; an owner may call timer_add() and
 * timer_cancel() holding its own lock (owner lock, then t->lock), because
 * the engine never calls out while holding t->lock.
 *
 * Threads: the engine's thread (started by timer_new(), joined by
 * timer_destroy()) runs the callbacks; any thread adds and cancels.
 */
#include "core/timer.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/heap.h"
#include "core/thread.h"

struct herald_timer {
    pthread_mutex_t lock;
    pthread_cond_t wake_cond; /* The thread: a new earliest, or stop. */
    pthread_cond_t done_cond; /* timer_cancel_wait(): a callback returned. */
    heap timers;              /* timer_entry *, by (due_ms, seq). */
    uint64_t next_seq;
    timer_entry *running;      /* Entry whose callback runs; compared only. */
    const void *running_owner; /* Its owner, copied before the call. */
    int waiters;               /* Threads waiting on done_cond. */
    bool stopping;
    bool lock_ready;
    bool started;
    pthread_t thread;
};

/* The process-wide engine (timer_shared_acquire()). */
static pthread_mutex_t timer_shared_lock = PTHREAD_MUTEX_INITIALIZER;
static herald_timer *timer_shared;
static unsigned timer_shared_refs;

void timer_entry_init(timer_entry *e, const void *owner)
{
    memset(e, 0, sizeof *e);
    e->owner = owner;
}

/* True when entry a falls due before b; equal due times in add order. */
static bool timer_before(const void *pa, const void *pb)
{
    const timer_entry *a = pa;
    const timer_entry *b = pb;

    if (a->due_ms != b->due_ms)
        return a->due_ms < b->due_ms;
    return a->seq < b->seq;
}

/* Keeps entry->pos (index + 1; 0 once it left). Holds t->lock. */
static void timer_moved(void *item, size_t index)
{
    ((timer_entry *)item)->pos = index == HEAP_NO_INDEX ? 0 : index + 1;
}

/* True when e is pending in t's heap. Caller holds t->lock. */
static bool timer_is_pending(const herald_timer *t, const timer_entry *e)
{
    return e->pos != 0 && heap_at(&t->timers, e->pos - 1) == e;
}

/* True when the calling thread is t's thread. Caller holds t->lock. */
static bool timer_on_thread(const herald_timer *t)
{
    return t->started && pthread_equal(pthread_self(), t->thread);
}

static void *timer_main(void *arg)
{
    herald_timer *t = arg;

    pthread_mutex_lock(&t->lock);
    while (!t->stopping) {
        timer_entry *e = heap_peek(&t->timers);
        timer_cb cb;
        void *cb_arg;

        if (!e) {
            pthread_cond_wait(&t->wake_cond, &t->lock);
            continue;
        }
        if (e->due_ms > herald_now_ms()) {
            struct timespec ts;

            ts.tv_sec = (time_t)(e->due_ms / 1000);
            ts.tv_nsec = (long)(e->due_ms % 1000) * 1000000L;
            pthread_cond_timedwait(&t->wake_cond, &t->lock, &ts);
            continue;
        }
        /* Pending -> running in one critical section: no gap to cancel. */
        (void)heap_pop(&t->timers);
        cb = e->cb;
        cb_arg = e->arg;
        t->running = e;
        t->running_owner = e->owner;
        pthread_mutex_unlock(&t->lock);

        cb(cb_arg); /* e may be freed from here on. */

        pthread_mutex_lock(&t->lock);
        t->running = NULL;
        t->running_owner = NULL;
        if (t->waiters > 0)
            pthread_cond_broadcast(&t->done_cond);
    }
    pthread_mutex_unlock(&t->lock);
    return NULL;
}

static void timer_errstr(char *errstr, size_t errstr_size, const char *msg,
                         int rc)
{
    if (!errstr || errstr_size == 0)
        return;
    if (rc != 0)
        snprintf(errstr, errstr_size, "%s: %s", msg, strerror(rc));
    else
        snprintf(errstr, errstr_size, "%s", msg);
}

herald_timer *timer_new(const char *name, char *errstr, size_t errstr_size)
{
    herald_timer *t;
    pthread_condattr_t ca;
    pthread_t th;
    int rc;

    t = calloc(1, sizeof *t);
    if (!t) {
        timer_errstr(errstr, errstr_size, "timer: out of memory", 0);
        return NULL;
    }
    /* Memory is the only limit: each entry is the owner's, one slot here. */
    heap_init(&t->timers, HEAP_MAX_LEN, timer_before, timer_moved);
    if (pthread_condattr_init(&ca) != 0) {
        timer_errstr(errstr, errstr_size, "timer: out of memory", 0);
        goto fail;
    }
    /* Due times are monotonic: a wall-clock step must not move them. */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    rc = pthread_mutex_init(&t->lock, NULL);
    if (rc == 0) {
        rc = pthread_cond_init(&t->wake_cond, &ca);
        if (rc != 0)
            pthread_mutex_destroy(&t->lock);
    }
    if (rc == 0) {
        rc = pthread_cond_init(&t->done_cond, &ca);
        if (rc != 0) {
            pthread_cond_destroy(&t->wake_cond);
            pthread_mutex_destroy(&t->lock);
        }
    }
    pthread_condattr_destroy(&ca);
    if (rc != 0) {
        timer_errstr(errstr, errstr_size, "timer: cannot create its lock", rc);
        goto fail;
    }
    t->lock_ready = true;
    rc = herald_thread_create(&th, name ? name : "herald-timer", timer_main, t);
    if (rc != 0) {
        timer_errstr(errstr, errstr_size, "timer: cannot start its thread", rc);
        goto fail;
    }
    /* Under the lock: timer_on_thread() reads it from other threads. */
    pthread_mutex_lock(&t->lock);
    t->thread = th;
    t->started = true;
    pthread_mutex_unlock(&t->lock);
    return t;
fail:
    timer_destroy(t);
    return NULL;
}

void timer_destroy(herald_timer *t)
{
    if (!t)
        return;
    if (t->lock_ready) {
        pthread_mutex_lock(&t->lock);
        t->stopping = true;
        pthread_mutex_unlock(&t->lock);
        pthread_cond_signal(&t->wake_cond);
        if (t->started)
            pthread_join(t->thread, NULL);
        pthread_cond_destroy(&t->done_cond);
        pthread_cond_destroy(&t->wake_cond);
        pthread_mutex_destroy(&t->lock);
    }
    /* The entries are the owners': heap_free() does not touch them. */
    heap_free(&t->timers);
    free(t);
}

herald_timer *timer_shared_acquire(char *errstr, size_t errstr_size)
{
    herald_timer *t;

    pthread_mutex_lock(&timer_shared_lock);
    if (!timer_shared)
        timer_shared = timer_new("herald-timer", errstr, errstr_size);
    if (timer_shared)
        timer_shared_refs++;
    t = timer_shared;
    pthread_mutex_unlock(&timer_shared_lock);
    return t;
}

void timer_shared_release(void)
{
    herald_timer *last = NULL;

    pthread_mutex_lock(&timer_shared_lock);
    if (timer_shared_refs > 0 && --timer_shared_refs == 0) {
        last = timer_shared;
        timer_shared = NULL;
    }
    pthread_mutex_unlock(&timer_shared_lock);
    /* Joined outside the lock: a new user may start a new engine now. */
    timer_destroy(last);
}

herald_err timer_add(herald_timer *t, timer_entry *e, int64_t due_ms,
                     timer_cb cb, void *arg)
{
    herald_err err = HERALD_OK;
    bool wake = false;

    if (!t || !e || !cb)
        return HERALD_ERR_INVALID;
    pthread_mutex_lock(&t->lock);
    if (t->stopping || timer_is_pending(t, e)) {
        err = HERALD_ERR_STATE;
        goto unlock;
    }
    e->due_ms = due_ms;
    e->seq = t->next_seq;
    e->cb = cb;
    e->arg = arg;
    /* Full (HEAP_MAX_LEN) or out of memory: both are NOMEM here. */
    if (heap_push(&t->timers, e) != HERALD_OK) {
        e->pos = 0;
        err = HERALD_ERR_NOMEM;
        goto unlock;
    }
    t->next_seq++;
    /* The thread sleeps until the earliest entry: wake it for a new one. */
    wake = heap_peek(&t->timers) == e;
unlock:
    pthread_mutex_unlock(&t->lock);
    if (wake)
        pthread_cond_signal(&t->wake_cond);
    return err;
}

/* Removes e when it is pending; true when it was. Holds t->lock. */
static bool timer_remove(herald_timer *t, timer_entry *e)
{
    if (!timer_is_pending(t, e))
        return false;
    (void)heap_remove(&t->timers, e->pos - 1);
    return true;
}

/* Waits until the running callback returned. Caller holds t->lock and is
 * not on t's thread. */
static void timer_wait_callback(herald_timer *t)
{
    t->waiters++;
    pthread_cond_wait(&t->done_cond, &t->lock);
    t->waiters--;
}

bool timer_cancel(herald_timer *t, timer_entry *e)
{
    bool removed;

    if (!t || !e)
        return false;
    pthread_mutex_lock(&t->lock);
    removed = timer_remove(t, e);
    pthread_mutex_unlock(&t->lock);
    return removed;
}

bool timer_cancel_wait(herald_timer *t, timer_entry *e)
{
    bool removed = false;

    if (!t || !e)
        return false;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        if (timer_remove(t, e))
            removed = true;
        if (t->running != e || timer_on_thread(t))
            break;
        /* The callback may re-arm e: look again once it returned. */
        timer_wait_callback(t);
    }
    pthread_mutex_unlock(&t->lock);
    return removed;
}

/*
 * Moves owner's pending entries to *tail, in due order, and returns the
 * new tail. Every entry is popped (due order) and the others pushed back
 * with their sequence, so their order is kept; the pushes never allocate
 * (the heap keeps its memory when it shrinks). Holds t->lock.
 */
static timer_entry **timer_take_owner(herald_timer *t, const void *owner,
                                      timer_entry **tail)
{
    timer_entry *all = NULL;
    timer_entry **all_tail = &all;
    timer_entry *e;

    for (e = heap_pop(&t->timers); e; e = heap_pop(&t->timers)) {
        e->next = NULL;
        *all_tail = e;
        all_tail = &e->next;
    }
    while (all) {
        e = all;
        all = e->next;
        e->next = NULL;
        if (e->owner == owner) {
            *tail = e;
            tail = &e->next;
        } else {
            (void)heap_push(&t->timers, e);
        }
    }
    return tail;
}

timer_entry *timer_cancel_owner(herald_timer *t, const void *owner)
{
    timer_entry *removed = NULL;
    timer_entry **tail = &removed;

    if (!t || !owner)
        return NULL;
    pthread_mutex_lock(&t->lock);
    for (;;) {
        tail = timer_take_owner(t, owner, tail);
        if (!t->running || t->running_owner != owner || timer_on_thread(t))
            break;
        /* Its callback may re-arm: take again once it returned. */
        timer_wait_callback(t);
    }
    pthread_mutex_unlock(&t->lock);
    /* The earliest may be gone: the thread wakes for it and sleeps on. */
    return removed;
}

size_t timer_len(herald_timer *t)
{
    size_t n;

    pthread_mutex_lock(&t->lock);
    n = heap_len(&t->timers);
    pthread_mutex_unlock(&t->lock);
    return n;
}
