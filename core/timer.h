/*
 * timer.h: the one timer engine of herald: one thread, one binary min-heap
 * (core/heap.h) of timers ordered by (due time, add order), callbacks run
 * on that thread when their time comes.
 *
 * Who uses it: the PublishingQueue's delayed continuations (queue/), the
 * ParallelPublisher's publish deadlines and cancel polls, and the
 * transport's "not before" times of retries (publishers/). Each callback
 * only hands work to its owner's thread: the queue moves a continuation to
 * its due FIFO and signals a dispatcher, the transport appends the request
 * to its I/O thread's incoming list and wakes it with curl_multi_wakeup(),
 * the publisher closes the fan-out that ran out of time.
 *
 * A timer is a caller-allocated timer_entry embedded in the owner's object
 * (as libuv's uv_timer_t, librdkafka's rd_kafka_timer_t and the Linux
 * timer_list are): adding one allocates nothing but a heap slot, cancelling
 * is O(log n) and needs no lookup, and a zeroed entry is a valid "not
 * pending" entry. The engine borrows the entry while it is pending and
 * while its callback runs; it never frees it. An entry names its owner
 * (the queue, the I/O thread, the publisher), so that an owner shutting
 * down (or expiring its delayed work) takes all its timers back with one
 * timer_cancel_owner() instead of keeping its own list of them.
 *
 * Times are monotonic milliseconds as herald_now_ms() (core/clock.h). A
 * timer fires at or after its due time, never before; timers fire in due
 * order, and timers with the same due time in the order they were added.
 *
 * Callbacks run on the engine's thread, one at a time, with no engine lock
 * held. They must be short and must not block (every other timer of the
 * process waits for them); they may call timer_add() (to re-arm, their own
 * entry included) and timer_cancel()/timer_cancel_wait() (which then never
 * waits), but never timer_destroy() or timer_shared_release().
 *
 * Ownership of the engine: libuv, Redis ae and librdkafka all hang their
 * timers off an explicit object (a uv_loop_t, an aeEventLoop, an
 * rd_kafka_t), never off a hidden global, and libuv adds one lazily made
 * default loop for programs that want just one. herald does the same: an
 * engine is an explicit handle (timer_new()/timer_destroy()), and a
 * module takes one, borrowed, in its configuration (queue_config.timer;
 * transport_config.timer, which the publisher shares with its transport).
 * When none is given it takes a reference to the process-wide engine
 * (timer_shared_acquire()), started by its first user and joined when its
 * last user releases it. So `herald run` runs exactly one timer thread
 * without threading a handle through every constructor (and without
 * touching the worker's wiring), nothing is left running after the last
 * module is destroyed (no leak, no atexit), and a test can give a module
 * an engine of its own.
 *
 * Cancel contract, in short: timer_cancel() never waits and says whether
 * the callback is now sure not to run (true) or has run / is running /
 * is about to run (false); timer_cancel_wait() and timer_cancel_owner()
 * also wait for a running callback, so after them the owner may free.
 *
 * Threads: every function may be called from any thread, concurrently, on
 * the same engine, unless said otherwise.
 */
#ifndef HERALD_TIMER_H
#define HERALD_TIMER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct herald_timer herald_timer;

/* A timer's callback; arg is timer_add()'s. Runs on the timer thread. */
typedef void (*timer_cb)(void *arg);

/*
 * One timer, owned by the caller (embed it in the object it is for).
 * timer_entry_init() it (or zero it: no owner) once before the first
 * timer_add(). The fields are the engine's, guarded by its lock: read only
 * next and arg of the entries timer_cancel_owner() returned.
 */
typedef struct timer_entry {
    int64_t due_ms;           /* Monotonic ms, as herald_now_ms(). */
    uint64_t seq;             /* Add order: FIFO among equal due times. */
    size_t pos;               /* Heap index + 1 while pending; else 0. */
    const void *owner;        /* For timer_cancel_owner(); may be NULL. */
    timer_cb cb;              /* As given to timer_add(). */
    void *arg;                /* As given to timer_add(). */
    struct timer_entry *next; /* timer_cancel_owner()'s list. */
} timer_entry;

/*
 * Makes e a "not pending" entry of owner (borrowed, only compared: the
 * module instance, so that it can cancel all its timers at once with
 * timer_cancel_owner(); NULL: none). Not while e is pending.
 */
void timer_entry_init(timer_entry *e, const void *owner);

/*
 * Creates an engine and starts its thread, named name (borrowed for the
 * call; NULL: "herald-timer"), with the process signals blocked
 * (core/thread.h). Returns the engine (free with timer_destroy()), or NULL
 * with a sentence in errstr (errstr_size bytes, may be 0) when memory or
 * the thread cannot be had. Any thread.
 */
herald_timer *timer_new(const char *name, char *errstr, size_t errstr_size);

/*
 * Stops the thread (a callback that is running finishes first), joins it
 * and frees the engine. Pending timers are forgotten: their callbacks never
 * run and their entries (the owners') are not touched. NULL is a no-op.
 * Not from a timer callback; no other call on t may run concurrently or
 * follow.
 */
void timer_destroy(herald_timer *t);

/*
 * Takes a reference to the process-wide engine (thread "herald-timer"),
 * creating it on the first call. Returns it, or NULL with a sentence in
 * errstr when it cannot be created. Pair every successful call with one
 * timer_shared_release(). Any thread.
 */
herald_timer *timer_shared_acquire(char *errstr, size_t errstr_size);

/*
 * Drops a reference taken with timer_shared_acquire(); the last one
 * destroys the engine (see timer_destroy(): pending timers are forgotten,
 * so owners cancel theirs first). Not from a timer callback. Any other
 * thread.
 */
void timer_shared_release(void);

/*
 * Arms e: cb(arg) will run once on the timer thread at or after due_ms
 * (monotonic ms; 0 or a past time: as soon as the thread gets to it),
 * unless cancelled first. e is borrowed until its callback has started or
 * it was cancelled; arg is passed untouched. Errors (nothing was armed):
 * HERALD_ERR_INVALID (NULL t, e or cb), HERALD_ERR_STATE (e is pending
 * already, or t is being destroyed), HERALD_ERR_NOMEM (the heap cannot
 * grow). Any thread, including a timer callback.
 */
herald_err timer_add(herald_timer *t, timer_entry *e, int64_t due_ms,
                     timer_cb cb, void *arg);

/*
 * Disarms e without ever waiting. Returns true when e was pending: it is
 * removed and its callback will not run for that arming. Returns false
 * when e was not pending: never armed, cancelled already, or fired, in
 * which case its callback has run, is running, or is about to run on the
 * timer thread. Until the owner knows that callback has returned (its own
 * bookkeeping under its own lock, or timer_cancel_wait()), it must keep
 * arg and e alive. Any thread, holding any lock (the engine lock is taken
 * after the caller's; callbacks run without it).
 */
bool timer_cancel(herald_timer *t, timer_entry *e);

/*
 * Like timer_cancel(), then, when e's callback is running, waits until it
 * returned, and disarms e again if the callback re-armed it. On return e is
 * not pending and its callback is not running, so the owner may free e and
 * arg. Returns true when it removed a pending arming. Called from a timer
 * callback it never waits (it cannot wait for itself): it is
 * timer_cancel(). Must not be called holding a lock that e's callback
 * takes (the callback would wait for the lock, this call for the
 * callback). Any thread.
 */
bool timer_cancel_wait(herald_timer *t, timer_entry *e);

/*
 * Disarms every pending timer of owner (owner != NULL) and, unless called
 * from a timer callback, waits until no callback of owner's runs, and
 * disarms again what such a callback re-armed. Returns the disarmed
 * entries, linked through their next field, in due order (entries re-armed
 * during the wait come last), or NULL: their callbacks will not run for
 * those armings, and the caller owns them again (arg tells which object
 * each is). On return no timer of owner is pending or running, unless
 * another thread arms one meanwhile. For shutdowns and bulk expiries:
 * O(n log n) in the timers of the whole engine. Must not be called holding
 * a lock owner's callbacks take. Any thread.
 */
timer_entry *timer_cancel_owner(herald_timer *t, const void *owner);

/* Timers pending (armed, not fired). Any thread; a snapshot. */
size_t timer_len(herald_timer *t);

#endif
