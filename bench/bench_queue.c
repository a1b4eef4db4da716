/*
 * bench_queue.c: PublishingQueue throughput with an empty run callback, so
 * the figure is the queue's own cost (locking, hashing, heap, hand-off to
 * the dispatcher threads), for 1, 100 and 10000 distinct keys on 16
 * dispatcher threads and the default capacity. One key is the worst case:
 * its jobs run one after another, each hand-off crossing threads. A second
 * set of runs uses manual_done mode with one continuation per job (run,
 * queue_resume() due now, the continuation finishes the job with
 * queue_job_done()): the cost of an asynchronous job, two dispatches and a
 * key lookup.
 *
 * Usage: bench_queue [jobs per run, default 500000]. Not a test: it asserts
 * nothing and its numbers depend on the machine.
 */
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "queue/queue.h"

static atomic_long bench_runs;

static void bench_run(void *opaque, void *job)
{
    (void)opaque;
    (void)job;
    atomic_fetch_add_explicit(&bench_runs, 1, memory_order_relaxed);
}

static queue *bench_q; /* The queue of the running manual_done bench. */

/*
 * Manual_done: job points at its key string; the first run resumes the
 * job, the continuation (told apart by a tag bit) finishes it. A job's
 * runs are ordered by the queue, so the plain tag is safe.
 */
typedef struct bench_job {
    const char *key;
    int runs;
} bench_job;

static void bench_run_manual(void *opaque, void *job)
{
    bench_job *j = job;

    (void)opaque;
    if (j->runs++ == 0) {
        queue_resume(bench_q, j, 0);
        return;
    }
    queue_job_done(bench_q, j->key);
    atomic_fetch_add_explicit(&bench_runs, 1, memory_order_relaxed);
}

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_keys(int nkeys, long jobs, bool manual)
{
    queue_config cfg;
    char err[256];
    char(*keys)[24] = calloc((size_t)nkeys, sizeof(*keys));
    /* Manual: one job record per job. Records are never reused: jobs of
     * different keys finish out of push order, so a reused record could
     * still be in use. */
    bench_job *bj = NULL;
    size_t nbj = (size_t)jobs;
    long full = 0;
    double start;
    double secs;
    queue *q;

    if (manual)
        bj = calloc(nbj, sizeof(*bj));
    if (!keys || (manual && !bj)) {
        free(keys);
        free(bj);
        return -1;
    }
    for (int k = 0; k < nkeys; k++)
        snprintf(keys[k], sizeof(keys[k]), "%016x", (unsigned)k * 2654435761u);
    queue_config_init(&cfg);
    cfg.threads = 16;
    cfg.manual_done = manual;
    q = queue_new(&cfg, manual ? bench_run_manual : bench_run, NULL, err,
                  sizeof(err));
    if (!q) {
        fprintf(stderr, "bench_queue: %s\n", err);
        free(keys);
        free(bj);
        return -1;
    }
    bench_q = q;
    atomic_store(&bench_runs, 0);
    start = bench_now();
    for (long i = 0; i < jobs; i++) {
        void *job = NULL;

        if (manual) {
            bench_job *j = &bj[i];

            j->key = keys[i % nkeys];
            j->runs = 0;
            job = j;
        }
        /* A full queue is backpressure: yield until a slot frees. */
        while (queue_push(q, keys[i % nkeys], (int)(i % 5), job) ==
               HERALD_ERR_FULL) {
            full++;
            sched_yield();
        }
    }
    queue_drain(q, -1);
    secs = bench_now() - start;
    queue_destroy(q);
    printf("%s keys=%-6d threads=16 jobs=%ld  %.3f s  %.0f jobs/s  "
           "(full retries %ld)\n",
           manual ? "manual_done" : "sync       ", nkeys,
           atomic_load(&bench_runs), secs, (double)jobs / secs, full);
    free(keys);
    free(bj);
    return 0;
}

int main(int argc, char **argv)
{
    long jobs = argc > 1 ? strtol(argv[1], NULL, 10) : 500000;
    const int nkeys[] = {1, 100, 10000};

    if (jobs <= 0) {
        fprintf(stderr, "usage: bench_queue [jobs]\n");
        return 2;
    }
    for (size_t i = 0; i < sizeof(nkeys) / sizeof(nkeys[0]); i++) {
        if (bench_keys(nkeys[i], jobs, false) != 0)
            return 1;
    }
    for (size_t i = 0; i < sizeof(nkeys) / sizeof(nkeys[0]); i++) {
        if (bench_keys(nkeys[i], jobs, true) != 0)
            return 1;
    }
    return 0;
}
