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
 * pop.
 *
 * Invariants, all under q->lock:
 *   size == queued nodes + running;  size <= capacity;
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
 * every signal is sent after unlocking. No lost wakeup: a dispatcher waits
 * only after seeing an empty heap under the lock; a push that makes a key
 * runnable signals when a dispatcher waits; a key made runnable again by a
 * finishing job is picked up by that same dispatcher, which looks at the
 * heap before it waits.
 *
 * Threads: any thread pushes, drains, stops and reads the counters; the
 * dispatcher threads (fixed pool, started by queue_new(), joined by
 * queue_destroy()) run the jobs.
 */
#include "queue/queue.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* One queued job. */
typedef struct queue_node {
    struct queue_node *next; /* Next job of the same key, in push order. */
    void *job;               /* Borrowed from the pusher. */
    uint64_t seq;            /* Push sequence: FIFO among equal priorities. */
    int priority;            /* Smaller runs sooner. */
} queue_node;

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
    queue_key **heap;    /* Min-heap of runnable keys; capacity slots. */
    size_t heap_len;

    size_t capacity;   /* Most jobs held. */
    size_t size;       /* Jobs held, queued plus running. */
    size_t running;    /* Jobs in a run callback. */
    uint64_t next_seq; /* Sequence of the next push. */
    int idle_threads;  /* Dispatchers waiting on work_cond. */
    int drain_waiters; /* Threads waiting on idle_cond. */
    bool stopping;     /* queue_stop() was called. */

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
static bool queue_key_before(const queue_key *a, const queue_key *b)
{
    if (a->head->priority != b->head->priority)
        return a->head->priority < b->head->priority;
    return a->head->seq < b->head->seq;
}

/* Adds a runnable key to the heap. Caller holds q->lock. */
static void queue_heap_push(queue *q, queue_key *qk)
{
    size_t i = q->heap_len++;

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!queue_key_before(qk, q->heap[parent]))
            break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = qk;
}

/* Removes and returns the best runnable key. Caller holds q->lock. */
static queue_key *queue_heap_pop(queue *q)
{
    queue_key *top = q->heap[0];
    queue_key *last = q->heap[--q->heap_len];
    size_t n = q->heap_len;
    size_t i = 0;

    if (n == 0)
        return top;
    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= n)
            break;
        if (child + 1 < n &&
            queue_key_before(q->heap[child + 1], q->heap[child]))
            child++;
        if (!queue_key_before(q->heap[child], last))
            break;
        q->heap[i] = q->heap[child];
        i = child;
    }
    q->heap[i] = last;
    return top;
}

static void *queue_dispatcher_main(void *arg)
{
    queue *q = arg;

    pthread_mutex_lock(&q->lock);
    for (;;) {
        queue_key *qk;
        queue_node *node;
        void *job;
        bool wake_drain;

        while (q->heap_len == 0 && !q->stopping) {
            q->idle_threads++;
            pthread_cond_wait(&q->work_cond, &q->lock);
            q->idle_threads--;
        }
        /* queue_stop() empties the heap and no key can re-enter it. */
        if (q->heap_len == 0)
            break;

        qk = queue_heap_pop(q);
        node = qk->head;
        qk->head = node->next;
        if (!qk->head)
            qk->tail = NULL;
        qk->running = true;
        q->running++;
        pthread_mutex_unlock(&q->lock);

        job = node->job;
        free(node);
        q->run(q->opaque, job);

        pthread_mutex_lock(&q->lock);
        qk->running = false;
        q->running--;
        q->size--;
        /*
         * The key's next job (pushed meanwhile, or queued before) becomes
         * runnable only now. No signal: this thread looks at the heap
         * before it waits.
         */
        if (qk->head)
            queue_heap_push(q, qk);
        else
            queue_key_remove(q, qk);
        wake_drain = q->size == 0 && q->drain_waiters > 0;
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

/* Starts the dispatcher threads with the process signals blocked. */
static int queue_threads_start(queue *q, int nthreads)
{
    sigset_t block;
    sigset_t saved;
    int rc = 0;

    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    while (q->nthreads < nthreads) {
        char name[16];

        rc = pthread_create(&q->threads[q->nthreads], NULL,
                            queue_dispatcher_main, q);
        if (rc != 0)
            break;
        snprintf(name, sizeof(name), "herald-q%d", q->nthreads);
        pthread_setname_np(q->threads[q->nthreads], name);
        q->nthreads++;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
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
    q->opaque = opaque;
    q->nbuckets = 16;
    while (q->nbuckets < q->capacity)
        q->nbuckets *= 2;
    q->buckets = calloc(q->nbuckets, sizeof(*q->buckets));
    q->heap = calloc(q->capacity, sizeof(*q->heap));
    q->threads = calloc((size_t)c.threads, sizeof(*q->threads));
    if (!q->buckets || !q->heap || !q->threads)
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
    while (q->size > 0) {
        if (timeout_ms < 0) {
            pthread_cond_wait(&q->idle_cond, &q->lock);
        } else if (pthread_cond_timedwait(&q->idle_cond, &q->lock, &deadline) ==
                   ETIMEDOUT) {
            break;
        }
    }
    q->drain_waiters--;
    empty = q->size == 0;
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
    q->heap_len = 0;
    q->size -= ndropped;
    wake_drain = q->size == 0 && q->drain_waiters > 0;
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
    if (!q)
        return;
    if (q->lock_ready) {
        queue_stop(q);
        for (int i = 0; i < q->nthreads; i++)
            pthread_join(q->threads[i], NULL);
        pthread_cond_destroy(&q->idle_cond);
        pthread_cond_destroy(&q->work_cond);
        pthread_mutex_destroy(&q->lock);
    }
    /* Every key left the map: queued ones in stop, running ones on return. */
    free(q->threads);
    free(q->heap);
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
