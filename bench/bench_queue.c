/*
 * bench_queue.c: PublishingQueue throughput with an empty run callback, so
 * the figure is the queue's own cost (locking, hashing, heap, hand-off to
 * the dispatcher threads), for 1, 100 and 10000 distinct keys on 16
 * dispatcher threads and the default capacity. One key is the worst case:
 * its jobs run one after another, each hand-off crossing threads.
 *
 * Usage: bench_queue [jobs per run, default 500000]. Not a test: it asserts
 * nothing and its numbers depend on the machine.
 */
#include <sched.h>
#include <stdatomic.h>
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

static double bench_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_keys(int nkeys, long jobs)
{
    queue_config cfg;
    char err[256];
    char(*keys)[24] = calloc((size_t)nkeys, sizeof(*keys));
    long full = 0;
    double start;
    double secs;
    queue *q;

    if (!keys)
        return -1;
    for (int k = 0; k < nkeys; k++)
        snprintf(keys[k], sizeof(keys[k]), "%016x", (unsigned)k * 2654435761u);
    queue_config_init(&cfg);
    cfg.threads = 16;
    q = queue_new(&cfg, bench_run, NULL, err, sizeof(err));
    if (!q) {
        fprintf(stderr, "bench_queue: %s\n", err);
        free(keys);
        return -1;
    }
    atomic_store(&bench_runs, 0);
    start = bench_now();
    for (long i = 0; i < jobs; i++) {
        /* A full queue is backpressure: yield until a slot frees. */
        while (queue_push(q, keys[i % nkeys], (int)(i % 5), NULL) ==
               HERALD_ERR_FULL) {
            full++;
            sched_yield();
        }
    }
    queue_drain(q, -1);
    secs = bench_now() - start;
    queue_destroy(q);
    printf("keys=%-6d threads=16 jobs=%ld  %.3f s  %.0f jobs/s  "
           "(full retries %ld)\n",
           nkeys, atomic_load(&bench_runs), secs, (double)jobs / secs, full);
    free(keys);
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
        if (bench_keys(nkeys[i], jobs) != 0)
            return 1;
    }
    return 0;
}
