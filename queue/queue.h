/*
 * queue.h: the PublishingQueue, a bounded, keyed, prioritised job queue run
 * by a fixed pool of dispatcher threads.
 *
 * A job is an opaque pointer pushed with a key (the alert fingerprint or the
 * Kafka message key) and a priority. The queue promises:
 *
 * - Per-key order: jobs with the same key run strictly one after another, in
 *   push order. A key's next job becomes runnable only once the run callback
 *   of its previous job has returned. This is how a `resolved` never
 *   overtakes its `firing` (ARCHITECTURE.md, "Delivery semantics").
 * - Parallelism: jobs with different keys run at the same time, up to the
 *   number of dispatcher threads.
 * - Priority: among the keys that have a runnable job, the key whose first
 *   (head) job has the smallest priority runs first; equal priorities run in
 *   push order. A priority only orders the heads of different keys; it never
 *   reorders one key's jobs (a priority-0 job queued behind a priority-4 job
 *   of the same key waits for it). Priorities are strict: a steady stream of
 *   urgent jobs can delay less urgent keys for as long as it lasts.
 * - Bounded: at most `capacity` jobs are held (queued plus running);
 *   queue_push() never blocks and answers HERALD_ERR_FULL instead, upon which
 *   the consumer pauses its partitions (backpressure, never a drop).
 *
 * Jobs are never lost silently: every pushed job is either handed to the run
 * callback exactly once, or, if the queue is stopped before it ran, handed to
 * the drop callback exactly once. The consumer does not commit the offset of
 * a dropped job, so Kafka delivers it again after a restart (at-least-once).
 *
 * Asynchronous jobs (queue_config.manual_done): a job that waits for a slow
 * HTTP target must not hold a dispatcher thread for seconds. In manual_done
 * mode a job is not finished when its run callback returns: the callback
 * starts the work and returns, the owner schedules the job's continuation
 * with queue_resume() (the run callback is called again, with the same job
 * pointer, on a dispatcher thread, now or at a monotonic time), and declares
 * the job finished with queue_job_done(). Until then the key stays busy (the
 * key's next job does not start) and the job counts against capacity, so the
 * per-key order and the bound above hold unchanged. Due continuations run
 * before new jobs: they finish work already started. Delayed continuations
 * wait in the process timer engine (core/timer.h), whose callback makes
 * them due and wakes a dispatcher.
 *
 * Data structures: a hash map from key to a per-key FIFO of jobs, and a
 * binary min-heap of the runnable keys ordered by (head priority, head push
 * sequence). push, and taking the next job, are O(log n) in the number of
 * runnable keys.
 *
 * Threads: the functions below may be called from any thread unless said
 * otherwise, including from inside a run callback (queue_push() from a job is
 * fine), except queue_destroy(), which must not be called from a run or drop
 * callback.
 */
#ifndef HERALD_QUEUE_H
#define HERALD_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/timer.h"

typedef struct queue queue;

/*
 * Runs one job. Called on a dispatcher thread, without any queue lock held,
 * exactly once per job that was not dropped. opaque is the pointer given to
 * queue_new(); job is the pointer given to queue_push(), and its ownership
 * passes to the callback (the queue never touches it again).
 *
 * In manual_done mode it is also called once per continuation scheduled
 * with queue_resume(), with the pointer given there; the callback tells a
 * first run from a continuation by the job's own state. The callback may
 * call queue_resume() and queue_job_done() for its own job.
 */
typedef void (*queue_run_cb)(void *opaque, void *job);

/*
 * Receives a job that was pushed but never ran because the queue was
 * stopped. Called on the thread calling queue_stop() (or queue_destroy()),
 * without any queue lock held, once per such job, in push order per key.
 * Ownership of job passes to the callback, which should free it and must not
 * treat it as delivered (its offset is not committed).
 *
 * In manual_done mode queue_destroy() also hands it every continuation that
 * was still pending when the dispatcher threads ended (delayed ones, or ones
 * scheduled after the threads exited), in due order: a job that was started
 * and never finished. The same rule applies: free it, do not commit it.
 */
typedef void (*queue_drop_cb)(void *opaque, void *job);

/* Default and largest values of queue_config. */
#define QUEUE_DEFAULT_CAPACITY 10000
#define QUEUE_DEFAULT_THREADS 16
/*
 * A million jobs is far beyond any in-flight window (each job holds a Kafka
 * message); the cap turns a misconfiguration into an error, not an OOM.
 */
#define QUEUE_MAX_CAPACITY (1024 * 1024)
/* Dispatcher threads mostly wait on the transport; 1024 is plenty. */
#define QUEUE_MAX_THREADS 1024

typedef struct queue_config {
    size_t capacity;    /* Most jobs held, queued plus running; 0: default. */
    int threads;        /* Dispatcher threads (fixed pool); 0: default. */
    queue_drop_cb drop; /* Optional; NULL: un-run jobs are just forgotten. */
    /*
     * Default false. When true, a job is NOT finished when its run callback
     * returns; the owner finishes it with queue_job_done(). Until then its
     * key stays busy (the key's next job does not run) and it counts
     * against capacity. Enables queue_resume() and queue_timers_expire().
     */
    bool manual_done;
    /*
     * The timer engine of delayed continuations (manual_done mode only),
     * borrowed until queue_destroy() returned; NULL (the default): the
     * process-wide engine (timer_shared_acquire()).
     */
    herald_timer *timer;
} queue_config;

/*
 * Fills cfg with the defaults (capacity 10000, 16 threads, no drop, not
 * manual_done, the shared timer engine).
 */
void queue_config_init(queue_config *cfg);

/*
 * Creates a queue and starts its dispatcher threads. cfg is copied and may
 * be NULL for the defaults; run is required; opaque is passed to run and
 * drop, borrowed for the queue's lifetime. The dispatcher threads block the
 * usual process signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2)
 * so that they reach the main thread (core/thread.h).
 * Returns the queue (free with queue_destroy()), or NULL with a sentence in
 * errstr (errstr_size bytes, may be 0) on an invalid configuration (capacity
 * above QUEUE_MAX_CAPACITY, threads negative or above QUEUE_MAX_THREADS, no
 * run callback), out of memory, or when a thread (a dispatcher, or the
 * shared timer engine's) cannot be started.
 */
queue *queue_new(const queue_config *cfg, queue_run_cb run, void *opaque,
                 char *errstr, size_t errstr_size);

/*
 * Adds job under key with priority (smaller runs sooner: 0 firing critical
 * ... 4 resolved; any int is accepted). Never blocks. key is copied; job is
 * borrowed by the queue until it is handed to the run or drop callback.
 * Errors (the job was not taken, the caller still owns it):
 * HERALD_ERR_FULL when capacity jobs are held, HERALD_ERR_STATE after
 * queue_stop(), HERALD_ERR_INVALID for a NULL key, HERALD_ERR_NOMEM.
 * Any thread.
 */
herald_err queue_push(queue *q, const char *key, int priority, void *job);

/*
 * Waits until the queue holds no job (none queued, none running) or until
 * timeout_ms milliseconds have passed; a negative timeout waits without
 * limit. Returns HERALD_OK when empty, HERALD_ERR_TIMEOUT otherwise. Pushes
 * may continue meanwhile; drain only waits. Any thread except a dispatcher
 * thread (a running job counts itself, so it would wait for itself).
 *
 * In manual_done mode a job counts as running until queue_job_done(), and
 * "empty" also requires that no continuation is pending (delayed ones
 * included) and that no run callback is executing, so after HERALD_OK no
 * callback of this queue runs until the next push.
 */
herald_err queue_drain(queue *q, int64_t timeout_ms);

/*
 * Stops the queue: later pushes fail with HERALD_ERR_STATE, the jobs that
 * are queued but not running are removed and handed to the drop callback
 * (on this thread, after the lock is released), and the dispatcher threads
 * exit once their running job returns. Does not wait for running jobs: use
 * queue_drain() first to let them finish, or queue_destroy() to join.
 * Idempotent. Any thread; from a run callback too.
 *
 * In manual_done mode the started jobs are not finished yet: queue_resume()
 * and queue_job_done() keep working, and the dispatcher threads keep
 * running continuations (due, and delayed ones when they fall due) until
 * every started job is done and no continuation is pending, or until
 * queue_destroy(). So the owner can cancel its jobs, call
 * queue_timers_expire(), and queue_drain() until they finished.
 */
void queue_stop(queue *q);

/*
 * Stops the queue (see queue_stop()), waits for the running jobs to return,
 * joins every dispatcher thread and frees the queue. NULL is a no-op. Must
 * not be called from a run or drop callback.
 *
 * In manual_done mode the dispatcher threads first run every continuation
 * that is due (including ones those continuations schedule as due), then
 * exit without waiting for delayed ones. Every continuation still pending
 * after the join (delayed, or scheduled after the threads exited) is handed
 * to the drop callback on this thread (forgotten when there is none), so
 * nothing leaks in the queue; the job pointers themselves belong to the
 * owner. Jobs started and never finished with queue_job_done() are simply
 * forgotten by the queue (their pointers belong to the owner since their
 * first run). No other thread may call into the queue once this returns.
 */
void queue_destroy(queue *q);

/* Jobs held, queued plus running. Any thread; a snapshot. */
size_t queue_size(queue *q);

/*
 * Jobs running: whose run callback is executing (busy dispatchers), or, in
 * manual_done mode, jobs started and not finished with queue_job_done()
 * (waiting for a continuation included), so an "active jobs" metric stays
 * meaningful. Any thread; a snapshot.
 */
size_t queue_running(queue *q);

/*
 * Finishes the running job of key (manual_done mode): the key's next job
 * becomes runnable and the capacity slot is freed. key is borrowed for the
 * call. Call it exactly once per job: the queue knows jobs by key only, so
 * a second call after the key's next job started would finish that one.
 * Any thread, including inside the run callback (of this job's first run
 * or of a continuation). Errors: HERALD_ERR_NOT_FOUND when key has no
 * running job, HERALD_ERR_INVALID when not in manual_done mode or key is
 * NULL.
 */
herald_err queue_job_done(queue *q, const char *key);

/*
 * Schedules a continuation of a running job (manual_done mode): run(opaque,
 * job) is called again on a dispatcher thread at or after when_ms
 * (monotonic ms as herald_now_ms()/CLOCK_MONOTONIC; 0 or past = now).
 * Continuations that are due run before new jobs (they finish work already
 * started), in the order they fell due (due time, then call order). The key
 * stays busy. job is borrowed until it is handed to run (or to drop by
 * queue_destroy()); the queue does not check that it is a running job, the
 * owner must only resume jobs started and not yet done. Each call schedules
 * one more run: two calls run the job twice.
 * Any thread, including inside run and from other libraries' callback
 * threads. Never blocks (a short lock, no wait). Works after queue_stop().
 * Errors (nothing was scheduled): HERALD_ERR_NOMEM, HERALD_ERR_INVALID (not
 * manual_done mode).
 */
herald_err queue_resume(queue *q, void *job, int64_t when_ms);

/*
 * Makes every delayed continuation due now (used when jobs are cancelled at
 * a revoke or shutdown so they do not sit out their backoff); they run in
 * due order, before new jobs. No-op outside manual_done mode. Any thread.
 */
void queue_timers_expire(queue *q);

/*
 * Continuations scheduled and not yet run (delayed ones included; one whose
 * run callback is executing no longer counts). Any thread; a snapshot.
 */
size_t queue_pending_continuations(queue *q);

#endif
