/*
 * worker_int.h: what worker/consumer.c and worker/job.c share. Private to
 * the worker; not a public interface.
 */
#ifndef HERALD_WORKER_INT_H
#define HERALD_WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "publishers/health.h"
#include "publishers/parallel.h"
#include "publishers/targets.h"
#include "queue/queue.h"
#include "core/alert.h"
#include "worker/dlq.h"
#include "worker/offsets.h"
#include "core/stats.h"
#include "worker/worker.h"

/*
 * One assigned partition. Created on assign, removed on revoke. The
 * consumer thread owns every non-atomic field; jobs hold a reference so a
 * job that finishes after the revoke still has a valid pointer.
 */
typedef struct part {
    atomic_int refs;
    int32_t partition;
    atomic_bool revoked; /* Jobs not yet started skip publishing. */
    atomic_bool cancel;  /* Running jobs stop (publisher cancel flag). */
    /* Consumer thread only: */
    bool removed;            /* No longer ours: completions are ignored. */
    offset_tracker *tracker; /* Fresh on every assign. */
    bool paused;
    size_t outstanding;       /* Jobs pushed and not yet handed back. */
    int64_t first_offset;     /* First offset tracked in this assignment,
                               * -1 before the first message. */
    struct job *backlog_head; /* Jobs the full queue refused, in order. */
    struct job *backlog_tail;
} part;

/* One Kafka message on its way through the worker. */
typedef struct job {
    struct job *next; /* Completion list or backlog link. */
    part *part;       /* Holds a reference. */
    int64_t offset;
    char *key; /* Message key as text (owned), or NULL. */
    size_t key_len;
    char *value; /* Message value (owned), NULL for a null value. */
    size_t value_len;
    char *only_targets;  /* herald-targets header (owned), or NULL. */
    alert_batch batch;   /* Empty (n == 0) for a poison message. */
    alert_reason reason; /* Why the message is poison, or NONE. */
    char parse_error[256];
    char queue_key[64]; /* Ordering key: fingerprint / message key. */
    int priority;
    int64_t received_ms; /* Monotonic. */
    bool final;          /* Set by the job: its offset may be committed. */
    struct job_run *run; /* Run state between steps (job.c), or NULL. */
} job;

/* The run state of a job in progress; private to worker/job.c. */
typedef struct job_run job_run_state;

/* The worker: shared by the consumer thread and the dispatcher threads. */
typedef struct worker {
    worker_config cfg;
    char dlq_topic[256];
    rd_kafka_t *rk; /* Consumer thread only. */
    queue *q;
    parallel_publisher *pp;
    health *health;
    targets_registry *targets;
    dlq *dlq;
    stats *stats;
    atomic_bool stopping; /* Shutdown past its drain deadline. */
    /* Completed jobs, handed from dispatcher threads to the consumer. */
    pthread_mutex_t done_lock;
    pthread_cond_t done_cond;
    job *done_head;
    job *done_tail;
    /* Consumer thread only: assigned partitions by number. */
    part **parts;
    size_t n_parts_cap;
    atomic_bool assigned;  /* At least one partition: readiness. */
    atomic_llong consumed; /* Messages consumed, for the summary. */
    /*
     * Consumer thread only. After a cooperative revoke librdkafka rejoins
     * the group at once; an offset commit sent while that JoinGroup is
     * pending carries the old generation, fails with ILLEGAL_GENERATION,
     * and librdkafka < 2.10 then treats the whole assignment as lost
     * (librdkafka issue #4059), so everything since the last commit is
     * consumed again. Periodic commits wait until the rebalance completes:
     * rejoin_assigns counts the assign callbacks still to come (the one of
     * the revoking generation, then the one after the rejoin), bounded by
     * rejoin_until_ms (monotonic) in case librdkafka skips one.
     */
    int rejoin_assigns;
    int64_t rejoin_until_ms;
} worker;

/* Runs one job on a dispatcher thread (queue_run_cb). worker/job.c. */
void job_run(void *opaque, void *vjob);

/* Frees a job and drops its partition reference. worker/job.c. */
void job_free(job *job);

/* Hands a finished job to the consumer thread. Any thread. consumer.c. */
void worker_job_done(worker *w, job *job);

/* Drops a reference to a partition, freeing it at zero. Any thread. */
void part_unref(part *p);

#endif
