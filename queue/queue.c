/*
 * queue.c: the PublishingQueue (see queue.h).
 *
 * Data flow: queue_push() appends a node (job, priority, push sequence) to
 * the FIFO of its key, found in a chained hash map. A key is "runnable" when
 * its FIFO is not empty and none of its jobs is running; exactly the
 * runnable keys sit in a binary min-heap ordered by the (priority, sequence)
 * of their head node. A dispatcher pops the best key, takes its head node,
 * marks the key running and runs the job without the lock. When the job
 * returns, the key goes back into the heap if it has more jobs (its new head
 * decides its place), or leaves the map if it has none. So a key is never in
 * the heap while one of its jobs runs, which is the whole per-key ordering
 * argument, and a key's heap position never changes while it is in the heap
 * (its head only changes when it is popped), so the heap needs only push and
 * pop. Both heaps are core/heap.h min-heaps guarded by q->lock.
 *
 * Invariants, all under q->lock:
 *   size == queued nodes + running;  size <= capacity;
 *   running == keys with running set (manual_done: started, not done);
 *   live keys <= size (a key lives while it holds a queued or running job),
 *   so the bucket array (>= capacity) keeps the load factor <= 1 and the
 *   heap array (capacity slots) never overflows;
 *   key in heap  <=>  key->head != NULL && !key->running.
 *
 * Locking follows Redis bio.c and libuv threadpool.c: one mutex per queue
 * with two condition variables, work_cond (dispatchers wait for a runnable
 * key; signalled once per key made runnable by a push) and idle_cond
 * (queue_drain() waits for size 0). Two condition variables so that a push
 * can pthread_cond_signal() one dispatcher without the risk of waking a
 * drain waiter instead. No callback, log or I/O runs under the lock and
 * signals are sent after unlocking where that is safe (see "Signals"
 * below for the three that are not). No lost wakeup: a dispatcher waits
 * only after seeing an empty heap under the lock; a push that makes a key
 * runnable signals when a dispatcher waits; a key made runnable again by a
 * finishing job is picked up by that same dispatcher, which looks at the
 * heap before it waits.
 *
 * Manual_done mode (asynchronous jobs): the dispatcher does not finish a
 * job when run returns; queue_job_done() does (any thread), which is the
 * same "key leaves running, goes back to the heap or leaves the map" step
 * plus a signal, because no dispatcher is bound to look at the heap then.
 * In this mode a dispatcher never touches its key after run returns: the
 * key may already be finished and freed. Continuations (queue_resume())
 * are nodes (job, due time) that are either due, in a FIFO served before
 * the key heap, or delayed: armed in the process timer engine
 * (core/timer.h; queue_config.timer or the shared one) with the queue as
 * owner, and counted in delayed_len. The engine's callback (on the timer
 * thread) moves its continuation to the due FIFO under q->lock and signals
 * one idle dispatcher; dispatchers themselves never wait with a timeout.
 * A dispatcher that takes a continuation and leaves more due ones signals
 * the next (a chain), so several timers falling due at once spread out.
 * queue_timers_expire() and queue_destroy() take every delayed one back
 * with timer_cancel_owner() (without q->lock, which the callback takes),
 * in due order, and append them to the due FIFO or hand them to drop;
 * until then they still count in delayed_len, so drain and the
 * dispatchers' exit rule never see them missing.
 *
 * Signals: dispatchers, queue_push() and queue_stop() signal after
 * unlocking, as above. queue_job_done(), queue_resume(),
 * queue_timers_expire() and the timer callback signal while holding the
 * lock: they are called from threads the queue does not join (transport
 * callbacks, the timer thread), and once they
 * unlock, the job they finished or resumed can complete, queue_drain()
 * return and queue_destroy() free the condition variable that a late
 * signal would still touch. Under the lock, their last access to the queue
 * is the unlock, which destroy's own locking orders before the free.
 *
 * Stop and destroy in manual_done mode: after queue_stop() the dispatchers
 * stay while a started job is not done or a continuation is pending (the
 * owner finishes its cancelled jobs through them); queue_destroy() sets
 * closing, upon which they exit as soon as no continuation is due; the
 * delayed ones left after the join go to the drop callback.
 *
 * Threads: any thread pushes, drains, stops, resumes, finishes jobs and
 * reads the counters; the dispatcher threads (fixed pool, started by
 * queue_new() with core/thread.h, joined by queue_destroy()) run the jobs
 * and continuations; the timer thread makes delayed continuations due.
 */
#include "queue/queue.h"
#include "core/clock.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/heap.h"
#include "core/thread.h"
#include "core/timer.h"

/* One queued job. */
typedef struct queue_node {
    struct queue_node *next; /* Next job of the same key, in push order. */
    void *job;               /* Borrowed from the pusher. */
    uint64_t seq;            /* Push sequence: FIFO among equal priorities. */
    int priority;            /* Smaller runs sooner. */
} queue_node;

/* One continuation of a started job (manual_done mode). */
typedef struct queue_cont {
    struct queue_cont *next; /* Next due continuation, in FIFO order. */
    struct queue *q;         /* For the timer callback. */
    void *job;               /* Borrowed from the owner until run. */
    timer_entry timer;       /* Armed while delayed; owner q. */
} queue_cont;

/* One key with at least one queued or running job. */
typedef struct queue_key {
    struct queue_key *hnext; /* Next key in the same hash bucket. */
    uint64_t hash;
    queue_node *head; /* Oldest queued job, or NULL. */
    queue_node *tail; /* Newest queued job, or NULL. */
    bool running;     /* One of this key's jobs is running. */
    char name[];      /* The key, NUL-terminated. */
} queue_key;

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t work_cond; /* Dispatchers: a key became runnable. */
    pthread_cond_t idle_cond; /* Drain waiters: size became 0. */
    bool lock_ready;          /* lock and conditions were initialised. */

    queue_key **buckets; /* Chained hash map key -> queue_key. */
    size_t nbuckets;     /* A power of two >= capacity. */
    heap keys;           /* Runnable keys; capacity slots reserved. */

    size_t capacity;   /* Most jobs held. */
    size_t size;       /* Jobs held, queued plus running. */
    size_t running;    /* Jobs running (manual_done: started, not done). */
    size_t executing;  /* Dispatchers inside a run callback. */
    uint64_t next_seq; /* Sequence of the next push. */
    int idle_threads;  /* Dispatchers waiting on work_cond. */
    int drain_waiters; /* Threads waiting on idle_cond. */
    bool stopping;     /* queue_stop() was called. */
    bool closing;      /* queue_destroy(): exit once nothing is due. */
    bool manual;       /* manual_done mode; immutable after queue_new(). */

    queue_cont *due_head; /* Due continuations, FIFO, before new jobs. */
    queue_cont *due_tail;
    size_t due_len;
    size_t delayed_len;  /* Continuations armed in the timer engine. */
    bool timers_closed;  /* destroy: resumes go to the due FIFO. */
    herald_timer *timer; /* Borrowed (cfg) or the shared engine. */
    bool timer_shared;   /* timer is a timer_shared_acquire() ref. */

    queue_run_cb run;
    queue_drop_cb drop;
    void *opaque;

    pthread_t *threads;
    int nthreads; /* Threads started, all joined by queue_destroy(). */
};

void queue_config_init(queue_config *cfg)
{
    cfg->capacity = QUEUE_DEFAULT_CAPACITY;
    cfg->threads = QUEUE_DEFAULT_THREADS;
    cfg->drop = NULL;
    cfg->manual_done = false;
    cfg->timer = NULL;
}

/* FNV-1a 64: short keys (16 hex digit fingerprints), good spread. */
static uint64_t queue_hash(const char *key)
{
    uint64_t h = 14695981039346656037ULL;

    for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    return h;
}

/* Caller holds q->lock. */
static queue_key *queue_key_find(queue *q, const char *key, uint64_t hash)
{
    queue_key *qk = q->buckets[hash & (q->nbuckets - 1)];

    while (qk && (qk->hash != hash || strcmp(qk->name, key) != 0))
        qk = qk->hnext;
    return qk;
}

/* Unlinks qk from the map and frees it. Caller holds q->lock. */
static void queue_key_remove(queue *q, queue_key *qk)
{
    queue_key **pp = &q->buckets[qk->hash & (q->nbuckets - 1)];

    while (*pp != qk)
        pp = &(*pp)->hnext;
    *pp = qk->hnext;
    free(qk);
}

/* True when key a must run before key b. Both have a head. */
static bool queue_key_before(const void *pa, const void *pb)
{
    const queue_key *a = pa;
    const queue_key *b = pb;

    if (a->head->priority != b->head->priority)
        return a->head->priority < b->head->priority;
    return a->head->seq < b->head->seq;
}

/*
 * Adds a runnable key to the heap. Caller holds q->lock. Never fails:
 * queue_new() reserved capacity slots and live keys <= size <= capacity.
 */
static void queue_heap_push(queue *q, queue_key *qk)
{
    (void)heap_push(&q->keys, qk);
}

/* Appends c to the due FIFO. Caller holds q->lock. */
static void queue_due_append(queue *q, queue_cont *c)
{
    c->next = NULL;
    if (q->due_tail)
        q->due_tail->next = c;
    else
        q->due_head = c;
    q->due_tail = c;
    q->due_len++;
}

/*
 * The timer callback of a delayed continuation (timer thread): it fell
 * due, so it joins the due FIFO. Short: a lock, a few pointers and a
 * signal.
 */
static void queue_cont_fire(void *arg)
{
    queue_cont *c = arg;
    queue *q = c->q;

    pthread_mutex_lock(&q->lock);
    q->delayed_len--;
    queue_due_append(q, c);
    /* Signalled under the lock: see "Signals" at the top. */
    if (q->idle_threads > 0)
        pthread_cond_signal(&q->work_cond);
    pthread_mutex_unlock(&q->lock);
}

/*
 * Takes every delayed continuation back from the timer engine, in due
 * order, linked through their next field; none of their callbacks runs
 * after this. No lock held (the callback takes q->lock). They still count
 * in delayed_len: the caller moves them under q->lock and subtracts *n.
 */
static queue_cont *queue_delayed_take(queue *q, size_t *n)
{
    queue_cont *list = NULL;
    queue_cont **tail = &list;
    timer_entry *e;

    *n = 0;
    if (!q->timer)
        return NULL;
    for (e = timer_cancel_owner(q->timer, q); e; e = e->next) {
        queue_cont *c = e->arg;

        c->next = NULL;
        *tail = c;
        tail = &c->next;
        (*n)++;
    }
    return list;
}

/*
 * True when nothing is held, pending or executing: what queue_drain()
 * waits for. Caller holds q->lock.
 */
static bool queue_idle(const queue *q)
{
    return q->size == 0 && q->executing == 0 && q->due_len == 0 &&
           q->delayed_len == 0;
}

/*
 * True when a dispatcher with nothing to run should exit: stopped, and
 * either destroying, or not in manual_done mode (the original rule: the
 * heap is empty for good), or no started job and no continuation is left.
 * Caller holds q->lock and saw the FIFO and the key heap empty.
 */
static bool queue_dispatcher_done(const queue *q)
{
    if (!q->stopping)
        return false;
    return q->closing || !q->manual || (q->size == 0 && q->delayed_len == 0);
}

/*
 * Waits for work: a runnable key, a due continuation (the timer callback
 * signals), stop or destroy. Caller holds q->lock.
 */
static void queue_dispatcher_wait(queue *q)
{
    q->idle_threads++;
    pthread_cond_wait(&q->work_cond, &q->lock);
    q->idle_threads--;
}

static void *queue_dispatcher_main(void *arg)
{
    queue *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        queue_key *qk = NULL;
        void *job;
        bool wake_next = false;
        bool wake_drain;

        if (q->due_head) {
            /* Continuations first: they finish work already started. */
            queue_cont *c = q->due_head;

            q->due_head = c->next;
            if (!q->due_head)
                q->due_tail = NULL;
            q->due_len--;
            job = c->job;
            free(c);
            wake_next = q->due_head != NULL && q->idle_threads > 0;
        } else if (heap_len(&q->keys) > 0) {
            queue_node *node;

            qk = heap_pop(&q->keys);
            node = qk->head;
            qk->head = node->next;
            if (!qk->head)
                qk->tail = NULL;
            qk->running = true;
            q->running++;
            job = node->job;
            free(node);
        } else if (queue_dispatcher_done(q)) {
            break;
        } else {
            queue_dispatcher_wait(q);
            continue;
        }
        q->executing++;
        pthread_mutex_unlock(&q->lock);

        if (wake_next)
            pthread_cond_signal(&q->work_cond);
        q->run(q->opaque, job);

        pthread_mutex_lock(&q->lock);
        q->executing--;
        /*
         * In manual_done mode the job ends with queue_job_done(), maybe
         * already called: qk must not be touched (it may be freed).
         */
        if (qk && !q->manual) {
            qk->running = false;
            q->running--;
            q->size--;
            /*
             * The key's next job (pushed meanwhile, or queued before)
             * becomes runnable only now. No signal: this thread looks at
             * the heap before it waits.
             */
            if (qk->head)
                queue_heap_push(q, qk);
            else
                queue_key_remove(q, qk);
        }
        wake_drain = queue_idle(q) && q->drain_waiters > 0;
        if (wake_drain) {
            pthread_mutex_unlock(&q->lock);
            pthread_cond_broadcast(&q->idle_cond);
            pthread_mutex_lock(&q->lock);
        }
    }
    pthread_mutex_unlock(&q->lock);
    return NULL;
}

static void queue_errstr(char *errstr, size_t errstr_size, const char *msg)
{
    if (errstr && errstr_size > 0)
        snprintf(errstr, errstr_size, "%s", msg);
}

/* Starts the dispatcher threads (core/thread.h: signals blocked, named). */
static int queue_threads_start(queue *q, int nthreads)
{
    int rc = 0;

    while (q->nthreads < nthreads) {
        char name[24]; /* Cut to HERALD_THREAD_NAME_MAX by the callee. */

        snprintf(name, sizeof(name), "herald-q%d", q->nthreads);
        rc = herald_thread_create(&q->threads[q->nthreads], name,
                                  queue_dispatcher_main, q);
        if (rc != 0)
            break;
        q->nthreads++;
    }
    return rc;
}

queue *queue_new(const queue_config *cfg, queue_run_cb run, void *opaque,
                 char *errstr, size_t errstr_size)
{
    queue_config c;
    queue *q = NULL;
    pthread_condattr_t cattr;
    bool cattr_ready = false;
    int rc;

    if (cfg)
        c = *cfg;
    else
        queue_config_init(&c);
    if (c.capacity == 0)
        c.capacity = QUEUE_DEFAULT_CAPACITY;
    if (c.threads == 0)
        c.threads = QUEUE_DEFAULT_THREADS;
    if (!run) {
        queue_errstr(errstr, errstr_size, "queue: a run callback is required");
        goto fail;
    }
    if (c.capacity > QUEUE_MAX_CAPACITY) {
        if (errstr && errstr_size > 0)
            snprintf(errstr, errstr_size,
                     "queue: capacity %zu is above the maximum %d", c.capacity,
                     QUEUE_MAX_CAPACITY);
        goto fail;
    }
    if (c.threads < 0 || c.threads > QUEUE_MAX_THREADS) {
        if (errstr && errstr_size > 0)
            snprintf(errstr, errstr_size, "queue: threads %d is outside 1..%d",
                     c.threads, QUEUE_MAX_THREADS);
        goto fail;
    }

    q = calloc(1, sizeof(*q));
    if (!q)
        goto nomem;
    q->capacity = c.capacity;
    q->run = run;
    q->drop = c.drop;
    q->manual = c.manual_done;
    q->opaque = opaque;
    heap_init(&q->keys, q->capacity, queue_key_before, NULL);
    q->nbuckets = 16;
    while (q->nbuckets < q->capacity)
        q->nbuckets *= 2;
    q->buckets = calloc(q->nbuckets, sizeof(*q->buckets));
    q->threads = calloc((size_t)c.threads, sizeof(*q->threads));
    if (!q->buckets || !q->threads ||
        heap_reserve(&q->keys, q->capacity) != HERALD_OK)
        goto nomem;

    /* Timed drain waits use the monotonic clock: wall clock jumps. */
    if (pthread_condattr_init(&cattr) != 0)
        goto nomem;
    cattr_ready = true;
    pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&q->lock, NULL) != 0)
        goto nomem;
    if (pthread_cond_init(&q->work_cond, &cattr) != 0) {
        pthread_mutex_destroy(&q->lock);
        goto nomem;
    }
    if (pthread_cond_init(&q->idle_cond, &cattr) != 0) {
        pthread_cond_destroy(&q->work_cond);
        pthread_mutex_destroy(&q->lock);
        goto nomem;
    }
    q->lock_ready = true;
    pthread_condattr_destroy(&cattr);
    cattr_ready = false;

    /* Only manual_done mode has delayed continuations, hence timers. */
    if (q->manual && c.timer) {
        q->timer = c.timer;
    } else if (q->manual) {
        q->timer = timer_shared_acquire(errstr, errstr_size);
        if (!q->timer)
            goto fail;
        q->timer_shared = true;
    }

    rc = queue_threads_start(q, c.threads);
    if (rc != 0) {
        if (errstr && errstr_size > 0)
            snprintf(errstr, errstr_size,
                     "queue: cannot start dispatcher thread %d of %d: %s",
                     q->nthreads + 1, c.threads, strerror(rc));
        goto fail;
    }
    return q;

nomem:
    queue_errstr(errstr, errstr_size, "queue: out of memory");
fail:
    if (cattr_ready)
        pthread_condattr_destroy(&cattr);
    queue_destroy(q);
    return NULL;
}

herald_err queue_push(queue *q, const char *key, int priority, void *job)
{
    queue_node *node;
    queue_key *qk;
    uint64_t hash;
    size_t keylen;
    herald_err err = HERALD_OK;
    bool wake = false;

    if (!key)
        return HERALD_ERR_INVALID;
    /* Hash and allocate before locking: keep the critical section short. */
    hash = queue_hash(key);
    keylen = strlen(key);
    node = malloc(sizeof(*node));
    if (!node)
        return HERALD_ERR_NOMEM;
    node->next = NULL;
    node->job = job;
    node->priority = priority;

    pthread_mutex_lock(&q->lock);
    if (q->stopping) {
        err = HERALD_ERR_STATE;
        goto unlock;
    }
    if (q->size >= q->capacity) {
        err = HERALD_ERR_FULL;
        goto unlock;
    }
    qk = queue_key_find(q, key, hash);
    if (!qk) {
        qk = malloc(sizeof(*qk) + keylen + 1);
        if (!qk) {
            err = HERALD_ERR_NOMEM;
            goto unlock;
        }
        qk->hash = hash;
        qk->head = NULL;
        qk->tail = NULL;
        qk->running = false;
        memcpy(qk->name, key, keylen + 1);
        qk->hnext = q->buckets[hash & (q->nbuckets - 1)];
        q->buckets[hash & (q->nbuckets - 1)] = qk;
    }
    node->seq = q->next_seq++;
    if (qk->tail)
        qk->tail->next = node;
    else
        qk->head = node;
    qk->tail = node;
    q->size++;
    /* A key with a running job, or with older queued jobs, is unchanged. */
    if (!qk->running && qk->head == node) {
        queue_heap_push(q, qk);
        wake = q->idle_threads > 0;
    }
    node = NULL; /* Owned by the queue now. */
unlock:
    pthread_mutex_unlock(&q->lock);
    free(node);
    if (wake)
        pthread_cond_signal(&q->work_cond);
    return err;
}

herald_err queue_drain(queue *q, int64_t timeout_ms)
{
    struct timespec deadline;
    bool empty;

    if (timeout_ms >= 0) {
        clock_gettime(CLOCK_MONOTONIC, &deadline);
        deadline.tv_sec += (time_t)(timeout_ms / 1000);
        deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
            deadline.tv_sec++;
            deadline.tv_nsec -= 1000000000L;
        }
    }
    pthread_mutex_lock(&q->lock);
    q->drain_waiters++;
    while (!queue_idle(q)) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->idle_cond, &q->lock);
        } else if (pthread_cond_timedwait(&q->idle_cond, &q->lock, &deadline) ==
                   ETIMEDOUT) {
            break;
        }
    }
    q->drain_waiters--;
    empty = queue_idle(q);
    pthread_mutex_unlock(&q->lock);
    return empty ? HERALD_OK : HERALD_ERR_TIMEOUT;
}

void queue_stop(queue *q)
{
    queue_node *dropped = NULL;
    queue_node **dropped_tail = &dropped;
    size_t ndropped = 0;
    bool wake_drain;

    pthread_mutex_lock(&q->lock);
    if (q->stopping) {
        pthread_mutex_unlock(&q->lock);
        return;
    }
    q->stopping = true;
    /* Detach every queued node; keys with a running job stay until it ends. */
    for (size_t b = 0; b < q->nbuckets; b++) {
        queue_key *qk = q->buckets[b];

        while (qk) {
            queue_key *next = qk->hnext;

            for (queue_node *n = qk->head; n; n = n->next)
                ndropped++;
            if (qk->head) {
                *dropped_tail = qk->head;
                dropped_tail = &qk->tail->next;
                qk->head = NULL;
                qk->tail = NULL;
            }
            if (!qk->running)
                queue_key_remove(q, qk);
            qk = next;
        }
    }
    heap_clear(&q->keys);
    q->size -= ndropped;
    wake_drain = queue_idle(q) && q->drain_waiters > 0;
    pthread_mutex_unlock(&q->lock);

    pthread_cond_broadcast(&q->work_cond);
    if (wake_drain)
        pthread_cond_broadcast(&q->idle_cond);
    while (dropped) {
        queue_node *node = dropped;

        dropped = node->next;
        if (q->drop)
            q->drop(q->opaque, node->job);
        free(node);
    }
}

void queue_destroy(queue *q)
{
    queue_cont *left = NULL;
    queue_cont **left_tail = &left;
    queue_cont *delayed;
    size_t ndelayed;

    if (!q)
        return;
    if (q->lock_ready) {
        queue_stop(q);
        pthread_mutex_lock(&q->lock);
        q->closing = true;
        pthread_mutex_unlock(&q->lock);
        pthread_cond_broadcast(&q->work_cond);
        for (int i = 0; i < q->nthreads; i++)
            pthread_join(q->threads[i], NULL);
        /*
         * No dispatcher is left. Resumes from now on go to the due FIFO
         * (no new timer); the delayed ones leave the engine, then due
         * ones (scheduled after the threads exited) go first, then the
         * delayed ones in due order. The lock still orders this against
         * a late resume from another thread that returned before this
         * call.
         */
        pthread_mutex_lock(&q->lock);
        q->timers_closed = true;
        pthread_mutex_unlock(&q->lock);
        delayed = queue_delayed_take(q, &ndelayed);
        pthread_mutex_lock(&q->lock);
        *left_tail = q->due_head;
        if (q->due_tail)
            left_tail = &q->due_tail->next;
        *left_tail = delayed;
        q->due_head = NULL;
        q->due_tail = NULL;
        q->due_len = 0;
        q->delayed_len -= ndelayed;
        pthread_mutex_unlock(&q->lock);
        while (left) {
            queue_cont *c = left;

            left = c->next;
            if (q->drop)
                q->drop(q->opaque, c->job);
            free(c);
        }
        pthread_cond_destroy(&q->idle_cond);
        pthread_cond_destroy(&q->work_cond);
        pthread_mutex_destroy(&q->lock);
    }
    /*
     * Queued keys left the map in stop, finished ones on return or in
     * queue_job_done(); what remains are manual_done jobs never finished.
     */
    for (size_t b = 0; q->buckets && b < q->nbuckets; b++) {
        while (q->buckets[b]) {
            queue_key *qk = q->buckets[b];

            q->buckets[b] = qk->hnext;
            free(qk);
        }
    }
    if (q->timer_shared)
        timer_shared_release();
    free(q->threads);
    heap_free(&q->keys);
    free(q->buckets);
    free(q);
}

size_t queue_size(queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->size;
    pthread_mutex_unlock(&q->lock);
    return n;
}

size_t queue_running(queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->running;
    pthread_mutex_unlock(&q->lock);
    return n;
}

herald_err queue_job_done(queue *q, const char *key)
{
    queue_key *qk;
    uint64_t hash;
    herald_err err = HERALD_OK;
    bool wake_work = false;
    bool wake_all = false;
    bool wake_drain = false;

    if (!q->manual || !key)
        return HERALD_ERR_INVALID;
    hash = queue_hash(key);
    pthread_mutex_lock(&q->lock);
    qk = queue_key_find(q, key, hash);
    if (!qk || !qk->running) {
        err = HERALD_ERR_NOT_FOUND;
        goto unlock;
    }
    qk->running = false;
    q->running--;
    q->size--;
    /* No dispatcher is bound to look at the heap now: signal one. */
    if (qk->head) {
        queue_heap_push(q, qk);
        wake_work = q->idle_threads > 0;
    } else {
        queue_key_remove(q, qk);
    }
    /* Stopped dispatchers wait for the last started job to end, then exit. */
    wake_all = q->stopping && q->size == 0 && q->idle_threads > 0;
    wake_drain = queue_idle(q) && q->drain_waiters > 0;
    /* Signalled under the lock: see "Signals" at the top. */
    if (wake_all)
        pthread_cond_broadcast(&q->work_cond);
    else if (wake_work)
        pthread_cond_signal(&q->work_cond);
    if (wake_drain)
        pthread_cond_broadcast(&q->idle_cond);
unlock:
    pthread_mutex_unlock(&q->lock);
    return err;
}

herald_err queue_resume(queue *q, void *job, int64_t when_ms)
{
    queue_cont *c;
    int64_t now = 0;
    herald_err err = HERALD_OK;
    bool wake = false;

    if (!q->manual)
        return HERALD_ERR_INVALID;
    /* Allocate and read the clock before locking: a short section. */
    c = calloc(1, sizeof(*c));
    if (!c)
        return HERALD_ERR_NOMEM;
    c->q = q;
    c->job = job;
    timer_entry_init(&c->timer, q);
    if (when_ms > 0)
        now = herald_now_ms();

    pthread_mutex_lock(&q->lock);
    if (when_ms <= now || q->timers_closed) {
        queue_due_append(q, c);
        wake = q->idle_threads > 0;
    } else {
        /*
         * Armed under q->lock (q->lock, then the engine's), so resumes of
         * one queue are added to the engine in call order: equal due
         * times fire in that order.
         */
        if (timer_add(q->timer, &c->timer, when_ms, queue_cont_fire, c) !=
            HERALD_OK) {
            err = HERALD_ERR_NOMEM;
            goto unlock;
        }
        q->delayed_len++;
    }
    c = NULL; /* Owned by the queue now. */
    /* Signalled under the lock: see "Signals" at the top. */
    if (wake)
        pthread_cond_signal(&q->work_cond);
unlock:
    pthread_mutex_unlock(&q->lock);
    free(c);
    return err;
}

void queue_timers_expire(queue *q)
{
    queue_cont *delayed;
    size_t ndelayed;
    bool wake;

    if (!q->manual)
        return;
    /* In due order: they run in that order, before new jobs. */
    delayed = queue_delayed_take(q, &ndelayed);
    pthread_mutex_lock(&q->lock);
    while (delayed) {
        queue_cont *c = delayed;

        delayed = c->next;
        queue_due_append(q, c);
    }
    q->delayed_len -= ndelayed;
    wake = q->due_len > 0 && q->idle_threads > 0;
    /* Signalled under the lock: see "Signals" at the top. */
    if (wake)
        pthread_cond_broadcast(&q->work_cond);
    pthread_mutex_unlock(&q->lock);
}

size_t queue_pending_continuations(queue *q)
{
    size_t n;

    pthread_mutex_lock(&q->lock);
    n = q->due_len + q->delayed_len;
    pthread_mutex_unlock(&q->lock);
    return n;
}
