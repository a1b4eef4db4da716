/*
 * check_queue.c: the PublishingQueue (queue/queue.c): strict per-key order
 * under many threads and random job durations, different keys running at
 * the same time, priority order of key heads, the capacity bound, stop
 * handing un-run jobs to the drop callback, drain, pushes from a running
 * job, and a clean destroy in every state. Manual_done mode (asynchronous
 * jobs): the key stays busy and the job counts against capacity until
 * queue_job_done() (from the run callback or another thread); continuations
 * run on a dispatcher with the same job pointer, never before their due
 * time, before new jobs, promptly after queue_timers_expire() and still
 * after queue_stop(); queue_destroy() runs the due ones and drops the
 * delayed ones; and many jobs resumed from several threads at once (TSan).
 *
 * Dispatcher threads never call ck_assert (Check's failure path is not
 * thread-safe with CK_FORK=no): run callbacks record what they saw and the
 * test thread asserts it. Waits for a condition poll it with a deadline.
 * Plain (non-atomic) per-key state touched only by one key's jobs is
 * deliberate: under TSan it proves the queue orders those jobs
 * (happens-before), not just that they did not overlap by luck.
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "queue/queue.h"

/* Long enough for a loaded sanitizer run, short enough to end a hang. */
#define WAIT_MS 30000

static int64_t now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Polls *flag until true or WAIT_MS passed; returns its last value. */
static bool wait_flag(atomic_bool *flag)
{
    int64_t deadline = now_ms() + WAIT_MS;

    while (!atomic_load(flag) && now_ms() < deadline) {
        struct timespec ts = {0, 1000000};

        nanosleep(&ts, NULL);
    }
    return atomic_load(flag);
}

/*
 * A gate job: its run callback says it entered, then blocks until the test
 * opens the gate. It holds a dispatcher for as long as the test needs.
 */
typedef struct gate {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    atomic_bool entered;
    bool open;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->lock, NULL);
    pthread_cond_init(&g->cond, NULL);
    atomic_init(&g->entered, false);
    g->open = false;
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->lock);
    g->open = true;
    pthread_mutex_unlock(&g->lock);
    pthread_cond_broadcast(&g->cond);
}

static void gate_free(gate *g)
{
    pthread_cond_destroy(&g->cond);
    pthread_mutex_destroy(&g->lock);
}

static void gate_pass(gate *g)
{
    atomic_store(&g->entered, true);
    pthread_mutex_lock(&g->lock);
    while (!g->open)
        pthread_cond_wait(&g->cond, &g->lock);
    pthread_mutex_unlock(&g->lock);
}

/*
 * The test job: a gate, or a plain job that appends its id to the run log.
 */
typedef struct tjob {
    gate *gate; /* Non-NULL: block on this gate. */
    int id;
} tjob;

typedef struct runlog {
    pthread_mutex_t lock;
    int ids[4096];
    int n;
    int dropped[4096];
    int ndropped;
} runlog;

static void runlog_run(void *opaque, void *job)
{
    runlog *log = opaque;
    tjob *j = job;

    if (j->gate) {
        gate_pass(j->gate);
        return;
    }
    pthread_mutex_lock(&log->lock);
    log->ids[log->n++] = j->id;
    pthread_mutex_unlock(&log->lock);
}

static void runlog_drop(void *opaque, void *job)
{
    runlog *log = opaque;
    tjob *j = job;

    pthread_mutex_lock(&log->lock);
    log->dropped[log->ndropped++] = j->id;
    pthread_mutex_unlock(&log->lock);
}

static runlog *runlog_new(void)
{
    runlog *log = calloc(1, sizeof(*log));

    pthread_mutex_init(&log->lock, NULL);
    return log;
}

static void runlog_destroy(runlog *log)
{
    pthread_mutex_destroy(&log->lock);
    free(log);
}

static queue *new_queue(size_t capacity, int threads, queue_run_cb run,
                        queue_drop_cb drop, void *opaque)
{
    queue_config cfg;
    char err[256] = "";
    queue *q;

    queue_config_init(&cfg);
    cfg.capacity = capacity;
    cfg.threads = threads;
    cfg.drop = drop;
    q = queue_new(&cfg, run, opaque, err, sizeof(err));
    ck_assert_msg(q != NULL, "queue_new: %s", err);
    return q;
}

/* ---- Same key strictly ordered, many threads, random durations. ---- */

#define ORD_KEYS 8
#define ORD_PER_KEY 300

typedef struct ord_job {
    int key;
    int seq;
    long delay_ns; /* Simulated delivery time, drawn by the test thread. */
} ord_job;

typedef struct ord_state {
    int next_seq[ORD_KEYS]; /* Plain on purpose, see the top comment. */
    atomic_int inside[ORD_KEYS];
    atomic_int overlaps;
    atomic_int out_of_order;
    atomic_int runs;
} ord_state;

static void ord_run(void *opaque, void *job)
{
    ord_state *st = opaque;
    ord_job *j = job;
    struct timespec ts = {0, j->delay_ns};

    if (atomic_fetch_add(&st->inside[j->key], 1) != 0)
        atomic_fetch_add(&st->overlaps, 1);
    if (st->next_seq[j->key] != j->seq)
        atomic_fetch_add(&st->out_of_order, 1);
    st->next_seq[j->key] = j->seq + 1;
    if (ts.tv_nsec > 0)
        nanosleep(&ts, NULL);
    atomic_fetch_sub(&st->inside[j->key], 1);
    atomic_fetch_add(&st->runs, 1);
}

START_TEST(test_same_key_ordered)
{
    ord_state st;
    ord_job *jobs = calloc(ORD_KEYS * ORD_PER_KEY, sizeof(*jobs));
    int pushed[ORD_KEYS] = {0};
    unsigned seed = 12345;
    queue *q;

    memset(&st, 0, sizeof(st));
    q = new_queue(ORD_KEYS * ORD_PER_KEY, 16, ord_run, NULL, &st);
    /* Interleave the keys randomly, each key's jobs in sequence order. */
    for (int n = 0; n < ORD_KEYS * ORD_PER_KEY; n++) {
        int k = rand_r(&seed) % ORD_KEYS;
        char key[16];
        ord_job *j;

        while (pushed[k] == ORD_PER_KEY)
            k = (k + 1) % ORD_KEYS;
        j = &jobs[n];
        j->key = k;
        j->seq = pushed[k]++;
        j->delay_ns = (rand_r(&seed) % 4 == 0) ? rand_r(&seed) % 200000 : 0;
        snprintf(key, sizeof(key), "fp-%d", k);
        ck_assert_int_eq(queue_push(q, key, rand_r(&seed) % 5, j), HERALD_OK);
    }
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_uint_eq(queue_size(q), 0);
    ck_assert_uint_eq(queue_running(q), 0);
    queue_destroy(q);

    ck_assert_int_eq(atomic_load(&st.runs), ORD_KEYS * ORD_PER_KEY);
    ck_assert_int_eq(atomic_load(&st.overlaps), 0);
    ck_assert_int_eq(atomic_load(&st.out_of_order), 0);
    for (int k = 0; k < ORD_KEYS; k++)
        ck_assert_int_eq(st.next_seq[k], ORD_PER_KEY);
    free(jobs);
}
END_TEST

/* ---- Different keys run at the same time. ---- */

typedef struct par_state {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int inside;
    int saw_both;
} par_state;

static void par_run(void *opaque, void *job)
{
    par_state *st = opaque;
    struct timespec deadline;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&st->lock);
    st->inside++;
    pthread_cond_broadcast(&st->cond);
    /* Only true if the other key's job is inside its run callback too. */
    while (st->inside < 2 &&
           pthread_cond_timedwait(&st->cond, &st->lock, &deadline) == 0)
        ;
    if (st->inside >= 2)
        st->saw_both++;
    pthread_mutex_unlock(&st->lock);
}

START_TEST(test_different_keys_parallel)
{
    par_state st = {.inside = 0, .saw_both = 0};
    int a = 1;
    int b = 2;
    queue *q;

    pthread_mutex_init(&st.lock, NULL);
    pthread_cond_init(&st.cond, NULL);
    q = new_queue(10, 2, par_run, NULL, &st);
    ck_assert_int_eq(queue_push(q, "fp-a", 4, &a), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "fp-b", 0, &b), HERALD_OK);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    queue_destroy(q);
    /* Each job saw the other inside: they ran at the same time. */
    ck_assert_int_eq(st.saw_both, 2);
    pthread_cond_destroy(&st.cond);
    pthread_mutex_destroy(&st.lock);
}
END_TEST

/* ---- Priority orders the heads of different keys (one thread). ---- */

#define PRIO_JOBS 300
#define PRIO_KEYS 12

START_TEST(test_priority_heads)
{
    runlog *log = runlog_new();
    gate g;
    tjob gj = {&g, -1};
    tjob jobs[PRIO_JOBS];
    int keys[PRIO_JOBS];
    int prios[PRIO_JOBS];
    bool ran[PRIO_JOBS] = {false};
    unsigned seed = 777;
    queue *q;

    gate_init(&g);
    q = new_queue(PRIO_JOBS + 1, 1, runlog_run, NULL, log);
    /* Hold the only dispatcher so every job is queued before any runs. */
    ck_assert_int_eq(queue_push(q, "gate", 0, &gj), HERALD_OK);
    ck_assert(wait_flag(&g.entered));
    for (int i = 0; i < PRIO_JOBS; i++) {
        char key[16];

        jobs[i].gate = NULL;
        jobs[i].id = i;
        keys[i] = rand_r(&seed) % PRIO_KEYS;
        prios[i] = rand_r(&seed) % 5;
        snprintf(key, sizeof(key), "fp-%d", keys[i]);
        ck_assert_int_eq(queue_push(q, key, prios[i], &jobs[i]), HERALD_OK);
    }
    gate_open(&g);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    queue_destroy(q);

    /*
     * The model: each step runs, among the keys with jobs left, the key
     * whose oldest remaining job has the smallest (priority, push index).
     */
    ck_assert_int_eq(log->n, PRIO_JOBS);
    for (int step = 0; step < PRIO_JOBS; step++) {
        int best = -1;
        bool head_seen[PRIO_KEYS] = {false};

        for (int i = 0; i < PRIO_JOBS; i++) {
            if (ran[i] || head_seen[keys[i]])
                continue;
            head_seen[keys[i]] = true;
            if (best < 0 || prios[i] < prios[best])
                best = i;
        }
        ck_assert_msg(log->ids[step] == best,
                      "step %d ran job %d (key %d prio %d), want %d "
                      "(key %d prio %d)",
                      step, log->ids[step], keys[log->ids[step]],
                      prios[log->ids[step]], best, keys[best], prios[best]);
        ran[best] = true;
    }
    gate_free(&g);
    runlog_destroy(log);
}
END_TEST

START_TEST(test_priority_never_reorders_a_key)
{
    runlog *log = runlog_new();
    gate g;
    tjob gj = {&g, -1};
    tjob jobs[4] = {{NULL, 0}, {NULL, 1}, {NULL, 2}, {NULL, 3}};
    queue *q;

    gate_init(&g);
    q = new_queue(10, 1, runlog_run, NULL, log);
    ck_assert_int_eq(queue_push(q, "gate", 0, &gj), HERALD_OK);
    ck_assert(wait_flag(&g.entered));
    /* A resolved (4) then a firing critical (0) of the same fingerprint. */
    ck_assert_int_eq(queue_push(q, "fp-x", 4, &jobs[0]), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "fp-x", 0, &jobs[1]), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "fp-y", 2, &jobs[2]), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "fp-z", 2, &jobs[3]), HERALD_OK);
    gate_open(&g);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    queue_destroy(q);
    /* y and z (2, FIFO) before x's head (4); x's 0 only after its 4. */
    ck_assert_int_eq(log->n, 4);
    ck_assert_int_eq(log->ids[0], 2);
    ck_assert_int_eq(log->ids[1], 3);
    ck_assert_int_eq(log->ids[2], 0);
    ck_assert_int_eq(log->ids[3], 1);
    gate_free(&g);
    runlog_destroy(log);
}
END_TEST

/* ---- Full, then accepts again once a job completed. ---- */

START_TEST(test_full)
{
    runlog *log = runlog_new();
    gate g1;
    gate g2;
    tjob j1 = {&g1, -1};
    tjob j2 = {&g2, -2};
    tjob y = {NULL, 7};
    tjob z = {NULL, 8};
    queue *q;

    gate_init(&g1);
    gate_init(&g2);
    q = new_queue(2, 1, runlog_run, NULL, log);
    ck_assert_int_eq(queue_push(q, "a", 0, &j1), HERALD_OK);
    ck_assert(wait_flag(&g1.entered));
    ck_assert_int_eq(queue_push(q, "b", 0, &j2), HERALD_OK);
    /* One running plus one queued: the capacity counts both. */
    ck_assert_uint_eq(queue_size(q), 2);
    ck_assert_uint_eq(queue_running(q), 1);
    ck_assert_int_eq(queue_push(q, "c", 0, &y), HERALD_ERR_FULL);
    ck_assert_int_eq(queue_push(q, "a", 0, &y), HERALD_ERR_FULL);

    /* g1's job completes, g2's starts: one slot is free. */
    gate_open(&g1);
    ck_assert(wait_flag(&g2.entered));
    ck_assert_int_eq(queue_push(q, "c", 0, &y), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "d", 0, &z), HERALD_ERR_FULL);
    gate_open(&g2);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(log->n, 1);
    ck_assert_int_eq(log->ids[0], 7);
    queue_destroy(q);
    gate_free(&g1);
    gate_free(&g2);
    runlog_destroy(log);
}
END_TEST

/* ---- Stop hands the un-run jobs to the drop callback. ---- */

START_TEST(test_stop_drops)
{
    runlog *log = runlog_new();
    gate g;
    tjob gj = {&g, -1};
    tjob jobs[6];
    queue *q;
    int k1 = 0;

    gate_init(&g);
    q = new_queue(100, 1, runlog_run, runlog_drop, log);
    ck_assert_int_eq(queue_push(q, "gate", 0, &gj), HERALD_OK);
    ck_assert(wait_flag(&g.entered));
    for (int i = 0; i < 6; i++) {
        jobs[i].gate = NULL;
        jobs[i].id = i;
        /* Jobs 0, 2, 4 share a key; 1, 3, 5 each have their own. */
        if (i % 2 == 0) {
            ck_assert_int_eq(queue_push(q, "k1", 4 - i, &jobs[i]), HERALD_OK);
        } else {
            char key[16];

            snprintf(key, sizeof(key), "k-%d", i);
            ck_assert_int_eq(queue_push(q, key, 0, &jobs[i]), HERALD_OK);
        }
    }
    /* A job of the running gate's key waits behind it: dropped too. */
    ck_assert_uint_eq(queue_size(q), 7);

    queue_stop(q);
    /* The drop callback ran on this thread, before queue_stop returned. */
    ck_assert_int_eq(log->ndropped, 6);
    ck_assert_int_eq(queue_push(q, "k9", 0, &jobs[0]), HERALD_ERR_STATE);
    ck_assert_uint_eq(queue_size(q), 1); /* The gate job still runs. */
    queue_stop(q); /* Idempotent: nothing dropped twice. */
    ck_assert_int_eq(log->ndropped, 6);

    gate_open(&g);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    queue_destroy(q);
    ck_assert_int_eq(log->n, 0);
    /* Every job dropped once; one key's jobs in push order. */
    for (int i = 0; i < 6; i++) {
        int seen = 0;

        for (int d = 0; d < log->ndropped; d++)
            seen += log->dropped[d] == i;
        ck_assert_int_eq(seen, 1);
    }
    for (int d = 0; d < log->ndropped; d++) {
        if (log->dropped[d] % 2 == 0) {
            ck_assert_int_eq(log->dropped[d], k1);
            k1 += 2;
        }
    }
    gate_free(&g);
    runlog_destroy(log);
}
END_TEST

/* ---- Drain waits, and times out while a job is held. ---- */

START_TEST(test_drain)
{
    runlog *log = runlog_new();
    gate g;
    tjob gj = {&g, -1};
    queue *q;

    gate_init(&g);
    q = new_queue(10, 2, runlog_run, NULL, log);
    ck_assert_int_eq(queue_drain(q, 0), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "gate", 0, &gj), HERALD_OK);
    ck_assert(wait_flag(&g.entered));
    /* The gate cannot open before the test opens it. */
    ck_assert_int_eq(queue_drain(q, 20), HERALD_ERR_TIMEOUT);
    ck_assert_int_eq(queue_drain(q, 0), HERALD_ERR_TIMEOUT);
    gate_open(&g);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(queue_drain(q, -1), HERALD_OK); /* No limit: empty. */
    ck_assert_uint_eq(queue_size(q), 0);
    queue_destroy(q);
    gate_free(&g);
    runlog_destroy(log);
}
END_TEST

/* ---- A running job pushes the next job of its own key. ---- */

typedef struct chain_state {
    queue *q;
    int next;  /* Plain: the key's jobs are ordered by the queue. */
    int wrong; /* Plain, same reason. */
    int ids[100];
} chain_state;

static void chain_run(void *opaque, void *job)
{
    chain_state *st = opaque;
    int *id = job;

    if (*id != st->next)
        st->wrong++;
    st->next = *id + 1;
    if (*id + 1 < 100 &&
        queue_push(st->q, "chain", *id % 5, &st->ids[*id + 1]) != HERALD_OK)
        st->wrong++;
}

START_TEST(test_push_from_job)
{
    chain_state st;
    queue *q;

    memset(&st, 0, sizeof(st));
    for (int i = 0; i < 100; i++)
        st.ids[i] = i;
    q = new_queue(4, 4, chain_run, NULL, &st);
    st.q = q;
    ck_assert_int_eq(queue_push(q, "chain", 0, &st.ids[0]), HERALD_OK);
    /* The next push happens inside run, so size never drops to 0 early. */
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    queue_destroy(q);
    ck_assert_int_eq(st.wrong, 0);
    ck_assert_int_eq(st.next, 100);
}
END_TEST

/* ---- Destroy: NULL, idle, busy; every job run or dropped once. ---- */

#define DESTROY_JOBS 2000

typedef struct once_state {
    atomic_int run[DESTROY_JOBS];
    atomic_int dropped[DESTROY_JOBS];
} once_state;

static void once_run(void *opaque, void *job)
{
    once_state *st = opaque;

    atomic_fetch_add(&st->run[*(int *)job], 1);
}

static void once_drop(void *opaque, void *job)
{
    once_state *st = opaque;

    atomic_fetch_add(&st->dropped[*(int *)job], 1);
}

START_TEST(test_destroy)
{
    once_state *st = calloc(1, sizeof(*st));
    int *ids = calloc(DESTROY_JOBS, sizeof(*ids));
    queue *q;

    queue_destroy(NULL);
    queue_destroy(new_queue(0, 0, once_run, NULL, st));

    /* Destroy while jobs are queued and running. */
    q = new_queue(DESTROY_JOBS, 4, once_run, once_drop, st);
    for (int i = 0; i < DESTROY_JOBS; i++) {
        char key[16];

        ids[i] = i;
        snprintf(key, sizeof(key), "fp-%d", i % 37);
        ck_assert_int_eq(queue_push(q, key, i % 5, &ids[i]), HERALD_OK);
    }
    queue_destroy(q);
    /* No job lost silently, none handed out twice. */
    for (int i = 0; i < DESTROY_JOBS; i++)
        ck_assert_int_eq(
            atomic_load(&st->run[i]) + atomic_load(&st->dropped[i]), 1);
    free(ids);
    free(st);
}
END_TEST

START_TEST(test_config)
{
    queue_config cfg;
    char err[256];
    queue *q;
    int dummy = 0;

    queue_config_init(&cfg);
    ck_assert_uint_eq(cfg.capacity, 10000);
    ck_assert_int_eq(cfg.threads, 16);

    cfg.capacity = QUEUE_MAX_CAPACITY + 1;
    ck_assert_ptr_null(queue_new(&cfg, once_run, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "capacity"));
    queue_config_init(&cfg);
    cfg.threads = -1;
    ck_assert_ptr_null(queue_new(&cfg, once_run, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "threads"));
    ck_assert_ptr_null(queue_new(NULL, NULL, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "run callback"));
    ck_assert_ptr_null(queue_new(NULL, NULL, NULL, NULL, 0));

    q = queue_new(NULL, once_run, NULL, err, sizeof(err));
    ck_assert_ptr_nonnull(q);
    ck_assert_int_eq(queue_push(q, NULL, 0, &dummy), HERALD_ERR_INVALID);
    ck_assert_uint_eq(queue_size(q), 0);
    queue_destroy(q);
}
END_TEST

/* ---- Manual_done mode: asynchronous jobs and continuations. ---- */

/*
 * An asynchronous test job. Its run callback optionally blocks on a gate
 * (first run only), records each run (index from started), then schedules
 * `resumes` continuations, one per run (each delay_ms after the run, 0: due
 * now), and on its last run finishes itself when done_in_run. Recording
 * happens before the resume: the continuation may start on another
 * dispatcher before this run returns.
 */
#define AJOB_RUNS 8

typedef struct ajob {
    int id;
    char key[16];
    gate *gate;
    int resumes;
    int64_t delay_ms;
    bool done_in_run;
    atomic_int started;
    atomic_int returned;
    int64_t due_ms[AJOB_RUNS]; /* when_ms asked for run i (i >= 1). */
    int64_t ran_ms[AJOB_RUNS];
    pthread_t thread[AJOB_RUNS];
} ajob;

typedef struct actx {
    queue *q;
    pthread_mutex_t lock;
    int log[256]; /* Job ids in run order, one entry per run. */
    int n;
    atomic_int errors; /* Queue calls that failed inside callbacks. */
    atomic_int dropped[16];
} actx;

static void ajob_init(ajob *j, int id, const char *key, int resumes,
                      int64_t delay_ms, bool done_in_run)
{
    memset(j, 0, sizeof(*j));
    j->id = id;
    snprintf(j->key, sizeof(j->key), "%s", key);
    j->resumes = resumes;
    j->delay_ms = delay_ms;
    j->done_in_run = done_in_run;
    atomic_init(&j->started, 0);
    atomic_init(&j->returned, 0);
}

static void actx_run(void *opaque, void *job)
{
    actx *cx = opaque;
    ajob *j = job;
    int i = atomic_fetch_add(&j->started, 1);

    if (i == 0 && j->gate)
        gate_pass(j->gate);
    if (i < AJOB_RUNS) {
        j->ran_ms[i] = now_ms();
        j->thread[i] = pthread_self();
    }
    pthread_mutex_lock(&cx->lock);
    if (cx->n < 256)
        cx->log[cx->n++] = j->id;
    pthread_mutex_unlock(&cx->lock);
    if (i < j->resumes) {
        int64_t due = j->delay_ms > 0 ? now_ms() + j->delay_ms : 0;

        if (i + 1 < AJOB_RUNS)
            j->due_ms[i + 1] = due;
        if (queue_resume(cx->q, j, due) != HERALD_OK)
            atomic_fetch_add(&cx->errors, 1);
    } else if (j->done_in_run && queue_job_done(cx->q, j->key) != HERALD_OK) {
        atomic_fetch_add(&cx->errors, 1);
    }
    atomic_fetch_add(&j->returned, 1);
}

static void actx_drop(void *opaque, void *job)
{
    actx *cx = opaque;
    ajob *j = job;

    atomic_fetch_add(&cx->dropped[j->id % 16], 1);
}

static actx *actx_new(void)
{
    actx *cx = calloc(1, sizeof(*cx));

    pthread_mutex_init(&cx->lock, NULL);
    return cx;
}

static void actx_destroy(actx *cx)
{
    pthread_mutex_destroy(&cx->lock);
    free(cx);
}

static queue *new_manual_queue(size_t capacity, int threads, actx *cx)
{
    queue_config cfg;
    char err[256] = "";
    queue *q;

    queue_config_init(&cfg);
    ck_assert(!cfg.manual_done);
    cfg.capacity = capacity;
    cfg.threads = threads;
    cfg.drop = actx_drop;
    cfg.manual_done = true;
    q = queue_new(&cfg, actx_run, cx, err, sizeof(err));
    ck_assert_msg(q != NULL, "queue_new: %s", err);
    cx->q = q;
    return q;
}

/* Polls until *n reaches want or WAIT_MS passed; returns its last value. */
static int wait_count(atomic_int *n, int want)
{
    int64_t deadline = now_ms() + WAIT_MS;

    while (atomic_load(n) < want && now_ms() < deadline) {
        struct timespec ts = {0, 1000000};

        nanosleep(&ts, NULL);
    }
    return atomic_load(n);
}

/* A copy of the run log, under its lock; returns its length. */
static int actx_log(actx *cx, int *ids, int max)
{
    int n;

    pthread_mutex_lock(&cx->lock);
    n = cx->n < max ? cx->n : max;
    memcpy(ids, cx->log, (size_t)n * sizeof(*ids));
    pthread_mutex_unlock(&cx->lock);
    return n;
}

START_TEST(test_manual_key_busy_until_done)
{
    actx *cx = actx_new();
    ajob a;
    ajob b;
    ajob c;
    int ids[8];
    queue *q;

    ajob_init(&a, 1, "k", 0, 0, false);
    ajob_init(&b, 2, "k", 0, 0, true);
    ajob_init(&c, 3, "other", 0, 0, true);
    /* One dispatcher: it takes the best runnable head each time. */
    q = new_manual_queue(10, 1, cx);
    ck_assert_int_eq(queue_push(q, "k", 0, &a), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 1), 1);
    /*
     * a's run returned but a is not done. b (same key, pushed before c,
     * same priority) would be the best head if its key were free, so c
     * running first proves that the busy key holds b back.
     */
    ck_assert_int_eq(queue_push(q, "k", 0, &b), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "other", 0, &c), HERALD_OK);
    ck_assert_int_eq(wait_count(&c.returned, 1), 1);
    ck_assert_int_eq(atomic_load(&b.started), 0);
    ck_assert_uint_eq(queue_size(q), 2);    /* a running, b queued. */
    ck_assert_uint_eq(queue_running(q), 1); /* a: started, not done. */
    ck_assert_int_eq(queue_drain(q, 0), HERALD_ERR_TIMEOUT);

    /* Finished from this (non-dispatcher) thread: b runs only now. */
    ck_assert_int_eq(queue_job_done(q, "k"), HERALD_OK);
    ck_assert_int_eq(queue_job_done(q, "nokey"), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(queue_job_done(q, NULL), HERALD_ERR_INVALID);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(atomic_load(&b.started), 1);
    ck_assert_int_eq(actx_log(cx, ids, 8), 3);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 3);
    ck_assert_int_eq(ids[2], 2);
    /* b finished itself inside its run: the key is free, nothing left. */
    ck_assert_int_eq(queue_job_done(q, "k"), HERALD_ERR_NOT_FOUND);
    ck_assert_uint_eq(queue_running(q), 0);
    ck_assert_uint_eq(queue_size(q), 0);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_manual_not_enabled)
{
    int dummy = 0;
    queue *q = new_queue(4, 1, once_run, NULL, NULL);

    ck_assert_int_eq(queue_job_done(q, "k"), HERALD_ERR_INVALID);
    ck_assert_int_eq(queue_resume(q, &dummy, 0), HERALD_ERR_INVALID);
    queue_timers_expire(q); /* No-op. */
    ck_assert_uint_eq(queue_pending_continuations(q), 0);
    queue_destroy(q);
}
END_TEST

START_TEST(test_resume_same_job_on_dispatcher)
{
    actx *cx = actx_new();
    ajob a;
    queue *q;

    /* Run 0 resumes itself (inside run); run 2 is resumed from here. */
    ajob_init(&a, 1, "k", 1, 0, false);
    q = new_manual_queue(10, 2, cx);
    ck_assert_int_eq(queue_push(q, "k", 0, &a), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 2), 2);
    ck_assert_int_eq(queue_resume(q, &a, 0), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 3), 3);
    /* actx_run casts its job to ajob: it saw &a each time, on a dispatcher. */
    ck_assert_int_eq(atomic_load(&a.started), 3);
    for (int i = 0; i < 3; i++)
        ck_assert(!pthread_equal(a.thread[i], pthread_self()));
    ck_assert_uint_eq(queue_running(q), 1);
    ck_assert_uint_eq(queue_pending_continuations(q), 0);
    ck_assert_int_eq(queue_job_done(q, "k"), HERALD_OK);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(atomic_load(&a.started), 3);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_resume_delayed)
{
    actx *cx = actx_new();
    ajob a;
    ajob b;
    int64_t due;
    queue *q;

    /* a: resumes itself once, 150 ms after its first run, then done. */
    ajob_init(&a, 1, "a", 1, 150, true);
    ajob_init(&b, 2, "b", 0, 0, false);
    q = new_manual_queue(10, 2, cx);
    ck_assert_int_eq(queue_push(q, "a", 0, &a), HERALD_OK);
    /* b: resumed from this thread with a due time 100 ms ahead. */
    ck_assert_int_eq(queue_push(q, "b", 0, &b), HERALD_OK);
    ck_assert_int_eq(wait_count(&b.returned, 1), 1);
    due = now_ms() + 100;
    ck_assert_int_eq(queue_resume(q, &b, due), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 2), 2);
    ck_assert_int_eq(wait_count(&b.returned, 2), 2);
    /* A correctness bound (never early), not a speed assertion. */
    ck_assert_int_gt(a.due_ms[1], 0);
    ck_assert_int_ge(a.ran_ms[1], a.due_ms[1]);
    ck_assert_int_ge(b.ran_ms[1], due);
    ck_assert_int_eq(queue_job_done(q, "b"), HERALD_OK);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_due_continuations_before_new_jobs)
{
    actx *cx = actx_new();
    gate g;
    ajob gj;
    ajob a;
    ajob b;
    ajob n1;
    ajob n2;
    int ids[16];
    int64_t due;
    queue *q;

    gate_init(&g);
    ajob_init(&a, 1, "a", 0, 0, false);
    ajob_init(&b, 2, "b", 0, 0, false);
    ajob_init(&n1, 3, "n1", 0, 0, true);
    ajob_init(&n2, 4, "n2", 0, 0, true);
    ajob_init(&gj, 5, "gate", 0, 0, true);
    gj.gate = &g;
    q = new_manual_queue(10, 1, cx);
    /* a and b start; their first runs neither resume nor finish. */
    ck_assert_int_eq(queue_push(q, "a", 0, &a), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "b", 0, &b), HERALD_OK);
    ck_assert_int_eq(wait_count(&b.returned, 1), 1);
    /* Ordered before their next run by the queue lock of the resume. */
    a.done_in_run = true;
    b.done_in_run = true;

    /* Hold the only dispatcher, then queue new jobs of urgent priority. */
    ck_assert_int_eq(queue_push(q, "gate", 0, &gj), HERALD_OK);
    ck_assert(wait_flag(&g.entered));
    ck_assert_int_eq(queue_push(q, "n1", -5, &n1), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "n2", -5, &n2), HERALD_OK);
    /* b: delayed, and due by the time the gate opens; a: due now. */
    due = now_ms() + 2;
    ck_assert_int_eq(queue_resume(q, &b, due), HERALD_OK);
    ck_assert_int_eq(queue_resume(q, &a, 0), HERALD_OK);
    ck_assert_uint_eq(queue_pending_continuations(q), 2);
    while (now_ms() <= due) {
        struct timespec ts = {0, 1000000};

        nanosleep(&ts, NULL);
    }
    gate_open(&g);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    /* a, b, gate, then the continuations (a first: due earlier in FIFO). */
    ck_assert_int_eq(actx_log(cx, ids, 16), 7);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 2);
    ck_assert_int_eq(ids[2], 5);
    ck_assert_int_eq(ids[3], 1);
    ck_assert_int_eq(ids[4], 2);
    ck_assert_int_eq(ids[5], 3);
    ck_assert_int_eq(ids[6], 4);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    gate_free(&g);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_timers_expire)
{
    actx *cx = actx_new();
    ajob a;
    queue *q;

    /* a resumes itself an hour from now, then finishes on that run. */
    ajob_init(&a, 1, "a", 1, 3600 * 1000, true);
    q = new_manual_queue(10, 2, cx);
    ck_assert_int_eq(queue_push(q, "a", 0, &a), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 1), 1);
    ck_assert_uint_eq(queue_pending_continuations(q), 1);
    ck_assert_int_eq(queue_drain(q, 0), HERALD_ERR_TIMEOUT);
    queue_timers_expire(q);
    /* Bounded by WAIT_MS (30 s), far below the hour. */
    ck_assert_int_eq(wait_count(&a.returned, 2), 2);
    ck_assert_int_lt(a.ran_ms[1], a.due_ms[1]);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_uint_eq(queue_pending_continuations(q), 0);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

/* A thread that is neither the test's nor a dispatcher: finishes "k". */
typedef struct done_arg {
    queue *q;
    herald_err err;
} done_arg;

static void *done_thread(void *arg)
{
    done_arg *d = arg;

    d->err = queue_job_done(d->q, "k");
    return NULL;
}

START_TEST(test_done_from_run_and_other_thread)
{
    actx *cx = actx_new();
    ajob j1;
    ajob j2;
    ajob j3;
    int ids[8];
    done_arg d;
    pthread_t th;
    queue *q;

    /* j1: done in its first run; j2: done by another thread; j3: done in
     * its continuation. */
    ajob_init(&j1, 1, "k", 0, 0, true);
    ajob_init(&j2, 2, "k", 0, 0, false);
    ajob_init(&j3, 3, "k", 1, 0, true);
    q = new_manual_queue(10, 3, cx);
    ck_assert_int_eq(queue_push(q, "k", 0, &j1), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "k", 0, &j2), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "k", 0, &j3), HERALD_OK);
    ck_assert_int_eq(wait_count(&j2.returned, 1), 1);
    ck_assert_int_eq(atomic_load(&j3.started), 0);
    d.q = q;
    d.err = HERALD_ERR_STATE;
    ck_assert_int_eq(pthread_create(&th, NULL, done_thread, &d), 0);
    pthread_join(th, NULL);
    ck_assert_int_eq(d.err, HERALD_OK);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(actx_log(cx, ids, 8), 4);
    ck_assert_int_eq(ids[0], 1);
    ck_assert_int_eq(ids[1], 2);
    ck_assert_int_eq(ids[2], 3);
    ck_assert_int_eq(ids[3], 3);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_manual_capacity)
{
    actx *cx = actx_new();
    ajob a;
    ajob b;
    ajob c;
    queue *q;

    ajob_init(&a, 1, "a", 0, 0, false);
    ajob_init(&b, 2, "b", 0, 0, false);
    ajob_init(&c, 3, "c", 0, 0, true);
    q = new_manual_queue(2, 2, cx);
    ck_assert_int_eq(queue_push(q, "a", 0, &a), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "b", 0, &b), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 1), 1);
    ck_assert_int_eq(wait_count(&b.returned, 1), 1);
    /* Both run callbacks returned; neither job is done: still full. */
    ck_assert_uint_eq(queue_size(q), 2);
    ck_assert_uint_eq(queue_running(q), 2);
    ck_assert_int_eq(queue_push(q, "c", 0, &c), HERALD_ERR_FULL);
    ck_assert_int_eq(queue_job_done(q, "a"), HERALD_OK);
    ck_assert_uint_eq(queue_running(q), 1);
    ck_assert_int_eq(queue_push(q, "c", 0, &c), HERALD_OK);
    ck_assert_int_eq(wait_count(&c.returned, 1), 1);
    ck_assert_int_eq(queue_drain(q, 20), HERALD_ERR_TIMEOUT); /* b. */
    ck_assert_int_eq(queue_job_done(q, "b"), HERALD_OK);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_stop_then_finish)
{
    actx *cx = actx_new();
    ajob a;
    ajob b;
    queue *q;

    /* The shutdown path: a waits an hour for its retry; b is queued. */
    ajob_init(&a, 1, "k", 1, 3600 * 1000, true);
    ajob_init(&b, 2, "k", 0, 0, true);
    q = new_manual_queue(10, 2, cx);
    ck_assert_int_eq(queue_push(q, "k", 0, &a), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 1), 1);
    ck_assert_int_eq(queue_push(q, "k", 0, &b), HERALD_OK);
    queue_stop(q);
    ck_assert_int_eq(atomic_load(&cx->dropped[2]), 1); /* b, never ran. */
    ck_assert_uint_eq(queue_size(q), 1);               /* a, started. */
    /* Cancel: a's continuation runs now, on a dispatcher, and ends a. */
    queue_timers_expire(q);
    ck_assert_int_eq(queue_drain(q, WAIT_MS), HERALD_OK);
    ck_assert_int_eq(atomic_load(&a.returned), 2);
    ck_assert_int_eq(atomic_load(&b.started), 0);
    ck_assert_int_eq(atomic_load(&cx->dropped[1]), 0);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    queue_destroy(q);
    actx_destroy(cx);
}
END_TEST

START_TEST(test_destroy_with_continuations)
{
    actx *cx = actx_new();
    ajob a;
    ajob b;
    ajob c;
    queue *q;

    /* a, b: an hour-delayed continuation each; c: one due now. */
    ajob_init(&a, 1, "a", 1, 3600 * 1000, true);
    ajob_init(&b, 2, "b", 1, 3600 * 1000, true);
    ajob_init(&c, 3, "c", 0, 0, false);
    q = new_manual_queue(10, 2, cx);
    ck_assert_int_eq(queue_push(q, "a", 0, &a), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "b", 0, &b), HERALD_OK);
    ck_assert_int_eq(queue_push(q, "c", 0, &c), HERALD_OK);
    ck_assert_int_eq(wait_count(&a.returned, 1), 1);
    ck_assert_int_eq(wait_count(&b.returned, 1), 1);
    ck_assert_int_eq(wait_count(&c.returned, 1), 1);
    ck_assert_int_eq(queue_resume(q, &c, 0), HERALD_OK);
    queue_destroy(q);
    /* Documented: due ones run, delayed ones go to drop, each once. */
    ck_assert_int_eq(atomic_load(&c.returned), 2);
    ck_assert_int_eq(atomic_load(&cx->dropped[3]), 0);
    ck_assert_int_eq(atomic_load(&a.returned), 1);
    ck_assert_int_eq(atomic_load(&b.returned), 1);
    ck_assert_int_eq(atomic_load(&cx->dropped[1]), 1);
    ck_assert_int_eq(atomic_load(&cx->dropped[2]), 1);
    ck_assert_int_eq(atomic_load(&cx->errors), 0);
    actx_destroy(cx);
}
END_TEST

/*
 * Many jobs, many resumes, from several threads: each job runs 1 + resumes
 * times; some continuations are scheduled inside run, some from "library"
 * threads (as curl's transport threads would), some delayed by a
 * millisecond or two; jobs are finished inside run or by a library thread.
 * Per-key plain state proves the key stays busy from first run to done.
 */
#define ST_KEYS 16
#define ST_PER_KEY 40
#define ST_JOBS (ST_KEYS * ST_PER_KEY)
#define ST_LIBS 3

typedef struct st_job {
    int key;
    int seq;
    int resumes;  /* Continuations still to schedule. */
    int runs;     /* Plain: a job's runs are ordered by the queue. */
    int want;     /* Runs expected: 1 + resumes at push. */
    bool via_lib; /* Next step is handed to a library thread. */
    struct st_job *next_mail;
} st_job;

typedef struct st_state {
    queue *q;
    int next_seq[ST_KEYS]; /* Plain on purpose, see the top comment. */
    atomic_int busy[ST_KEYS];
    atomic_int overlaps;
    atomic_int out_of_order;
    atomic_int errors;
    atomic_int finished;
    pthread_mutex_t mail_lock;
    pthread_cond_t mail_cond;
    st_job *mail; /* Steps handed to the library threads. */
    bool quit;
} st_state;

/* Continues or finishes j: the step both run and library threads take. */
static void st_step(st_state *st, st_job *j)
{
    char key[16];

    if (j->resumes > 0) {
        int64_t due = j->resumes % 3 == 0 ? now_ms() + j->resumes % 2 + 1 : 0;

        j->resumes--;
        if (queue_resume(st->q, j, due) != HERALD_OK)
            atomic_fetch_add(&st->errors, 1);
        return;
    }
    snprintf(key, sizeof(key), "st-%d", j->key);
    atomic_fetch_sub(&st->busy[j->key], 1);
    atomic_fetch_add(&st->finished, 1);
    if (queue_job_done(st->q, key) != HERALD_OK)
        atomic_fetch_add(&st->errors, 1);
}

static void st_run(void *opaque, void *job)
{
    st_state *st = opaque;
    st_job *j = job;

    if (j->runs++ == 0) {
        if (atomic_fetch_add(&st->busy[j->key], 1) != 0)
            atomic_fetch_add(&st->overlaps, 1);
        if (st->next_seq[j->key] != j->seq)
            atomic_fetch_add(&st->out_of_order, 1);
        st->next_seq[j->key] = j->seq + 1;
    }
    j->via_lib = !j->via_lib;
    if (!j->via_lib) {
        st_step(st, j);
        return;
    }
    pthread_mutex_lock(&st->mail_lock);
    j->next_mail = st->mail;
    st->mail = j;
    pthread_mutex_unlock(&st->mail_lock);
    pthread_cond_signal(&st->mail_cond);
}

static void *st_lib_main(void *arg)
{
    st_state *st = arg;

    pthread_mutex_lock(&st->mail_lock);
    for (;;) {
        st_job *j;

        while (!st->mail && !st->quit)
            pthread_cond_wait(&st->mail_cond, &st->mail_lock);
        if (!st->mail)
            break;
        j = st->mail;
        st->mail = j->next_mail;
        pthread_mutex_unlock(&st->mail_lock);
        st_step(st, j);
        pthread_mutex_lock(&st->mail_lock);
    }
    pthread_mutex_unlock(&st->mail_lock);
    return NULL;
}

START_TEST(test_resume_stress)
{
    st_state *st = calloc(1, sizeof(*st));
    st_job *jobs = calloc(ST_JOBS, sizeof(*jobs));
    pthread_t libs[ST_LIBS];
    queue_config cfg;
    char err[256] = "";
    unsigned seed = 4242;
    int pushed[ST_KEYS] = {0};

    pthread_mutex_init(&st->mail_lock, NULL);
    pthread_cond_init(&st->mail_cond, NULL);
    queue_config_init(&cfg);
    cfg.capacity = 64; /* Below the job count: pushes meet backpressure. */
    cfg.threads = 4;
    cfg.manual_done = true;
    st->q = queue_new(&cfg, st_run, st, err, sizeof(err));
    ck_assert_msg(st->q != NULL, "queue_new: %s", err);
    for (int i = 0; i < ST_LIBS; i++)
        ck_assert_int_eq(pthread_create(&libs[i], NULL, st_lib_main, st), 0);
    for (int n = 0; n < ST_JOBS; n++) {
        int k = rand_r(&seed) % ST_KEYS;
        int64_t deadline = now_ms() + WAIT_MS;
        char key[16];
        herald_err e;

        while (pushed[k] == ST_PER_KEY)
            k = (k + 1) % ST_KEYS;
        jobs[n].key = k;
        jobs[n].seq = pushed[k]++;
        jobs[n].resumes = rand_r(&seed) % 6;
        jobs[n].want = 1 + jobs[n].resumes;
        jobs[n].via_lib = rand_r(&seed) % 2;
        snprintf(key, sizeof(key), "st-%d", k);
        /* Full is backpressure: retry until a job is done. */
        for (;;) {
            struct timespec ts = {0, 200000};

            e = queue_push(st->q, key, rand_r(&seed) % 5, &jobs[n]);
            if (e != HERALD_ERR_FULL || now_ms() > deadline)
                break;
            nanosleep(&ts, NULL);
        }
        ck_assert_int_eq(e, HERALD_OK);
    }
    ck_assert_int_eq(queue_drain(st->q, WAIT_MS), HERALD_OK);
    ck_assert_uint_eq(queue_pending_continuations(st->q), 0);
    ck_assert_uint_eq(queue_running(st->q), 0);
    queue_destroy(st->q);
    pthread_mutex_lock(&st->mail_lock);
    st->quit = true;
    pthread_mutex_unlock(&st->mail_lock);
    pthread_cond_broadcast(&st->mail_cond);
    for (int i = 0; i < ST_LIBS; i++)
        pthread_join(libs[i], NULL);

    ck_assert_int_eq(atomic_load(&st->errors), 0);
    ck_assert_int_eq(atomic_load(&st->overlaps), 0);
    ck_assert_int_eq(atomic_load(&st->out_of_order), 0);
    ck_assert_int_eq(atomic_load(&st->finished), ST_JOBS);
    for (int n = 0; n < ST_JOBS; n++)
        ck_assert_int_eq(jobs[n].runs, jobs[n].want);
    for (int k = 0; k < ST_KEYS; k++)
        ck_assert_int_eq(st->next_seq[k], ST_PER_KEY);
    pthread_cond_destroy(&st->mail_cond);
    pthread_mutex_destroy(&st->mail_lock);
    free(jobs);
    free(st);
}
END_TEST

static Suite *queue_suite(void)
{
    Suite *s = suite_create("queue");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"same_key_ordered", test_same_key_ordered},
        {"different_keys_parallel", test_different_keys_parallel},
        {"priority_heads", test_priority_heads},
        {"priority_never_reorders_a_key", test_priority_never_reorders_a_key},
        {"full", test_full},
        {"stop_drops", test_stop_drops},
        {"drain", test_drain},
        {"push_from_job", test_push_from_job},
        {"destroy", test_destroy},
        {"config", test_config},
        {"manual_key_busy_until_done", test_manual_key_busy_until_done},
        {"manual_not_enabled", test_manual_not_enabled},
        {"resume_same_job_on_dispatcher", test_resume_same_job_on_dispatcher},
        {"resume_delayed", test_resume_delayed},
        {"due_continuations_before_new_jobs",
         test_due_continuations_before_new_jobs},
        {"timers_expire", test_timers_expire},
        {"done_from_run_and_other_thread", test_done_from_run_and_other_thread},
        {"manual_capacity", test_manual_capacity},
        {"stop_then_finish", test_stop_then_finish},
        {"destroy_with_continuations", test_destroy_with_continuations},
        {"resume_stress", test_resume_stress},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(queue_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
