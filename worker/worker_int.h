/*
 * worker_int.h: what the files of `herald run` share. Private to the
 * worker; not a public interface.
 *
 * Who calls whom (each arrow one way only; checked with nm on the objects):
 *
 *   worker.c       -> consumer.c, api_worker.c, job.c, part.c,
 *                     completions.c, reload.c        (wiring, start/stop)
 *   consumer.c     -> rebalance.c, commit.c, backpressure.c, reload.c,
 *                     job.c, part.c                  (poll loop, drain)
 *   rebalance.c    -> commit.c, job.c, part.c, completions.c
 *   commit.c       -> job.c, part.c, completions.c   (finished jobs, commits)
 *   backpressure.c -> part.c                         (pause/resume, backlog)
 *   job.c          -> legs.c, part.c, completions.c, dlq.c
 *   api_worker.c   -> api.c -> api_routes.c
 *   reload.c, part.c, completions.c, legs.c: call no worker file.
 *
 * The consumer thread side (consumer.c, rebalance.c, commit.c,
 * backpressure.c, worker.c) calls job.c; job.c never calls it back: a
 * finished job goes into the completion mailbox (completions.c), which
 * commit.c drains on the consumer thread, then frees the job with
 * job_free().
 */
#ifndef HERALD_WORKER_INT_H
#define HERALD_WORKER_INT_H

#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "core/alert.h"
#include "core/metrics.h"
#include "core/stats.h"
#include "publishers/health.h"
#include "publishers/parallel.h"
#include "publishers/targets.h"
#include "queue/queue.h"
#include "worker/api.h"
#include "worker/dlq.h"
#include "worker/offsets.h"
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

/*
 * The completion mailbox (completions.c): finished jobs, handed from the
 * dispatcher threads to the consumer thread in the order they finished.
 */
typedef struct completions {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    job *head;
    job *tail;
} completions;

/* Metric families of the consumer (consumer.c registers them). */
typedef struct consumer_metrics {
    metric *messages;
    metric *lag;
    metric *committed;
    metric *inflight;
    metric *oldest_age;
    metric *paused;
    metric *rebalances;
    metric *commits;
} consumer_metrics;

/* The worker: shared by the consumer thread and the dispatcher threads. */
typedef struct worker {
    worker_config cfg;
    char dlq_topic[256];
    /* max.message.bytes of the dead-letter topic herald creates and
     * message.max.bytes of its producer: the source topic's limit plus
     * room for the headers; 0 when the source topic's was unreadable. */
    long long dlq_max_bytes;
    rd_kafka_t *rk; /* Consumer thread only. */
    queue *q;
    parallel_publisher *pp;
    health *health;
    targets_registry *targets;
    dlq *dlq;
    stats *stats;
    consumer_metrics cm;
    atomic_bool stopping; /* Shutdown past its drain deadline. */
    completions done;     /* Finished jobs, for the consumer thread. */
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
    /* Consumer thread only: when the periodic duties of the poll loop are
     * due next (monotonic ms), and the targets file's last mtime. */
    int64_t next_commit;
    int64_t next_gauges;
    int64_t next_watch;
    struct timespec targets_mtime;
} worker;

/* ---- completions.c: the hand-off of finished jobs ---- */

/* Initialises an empty mailbox. Before any thread uses it. */
void completions_init(completions *c);

/* Destroys the lock and condition; the mailbox must have been emptied with
 * completions_take(). After every thread stopped using it. */
void completions_free(completions *c);

/* Appends a finished job (ownership passes to the mailbox) and wakes a
 * waiter. Any thread. */
void completions_push(completions *c, job *job);

/* Empties the mailbox: returns its jobs linked by job->next in the order
 * they were pushed, or NULL; the caller owns them (free with job_free()).
 * Any thread; the consumer thread in practice. */
job *completions_take(completions *c);

/* Waits up to timeout_ms (milliseconds, > 0) for the mailbox to hold a
 * job; returns at once when it already does. Takes nothing. Any thread. */
void completions_wait(completions *c, int timeout_ms);

/* ---- part.c: the assigned partitions ---- */

/* The partition, or NULL when it is not ours. Consumer thread only. */
part *part_get(worker *w, int32_t partition);

/* Adds a fresh partition (no-op when it is already ours: cooperative
 * re-assign). HERALD_ERR_NOMEM when out of memory. Consumer thread only. */
herald_err part_add(worker *w, int32_t partition);

/* Takes a reference to p (a job's). Any thread. */
void part_ref(part *p);

/* Drops a reference to p, freeing it (and its tracker) at zero. NULL is a
 * no-op. Any thread. */
void part_unref(part *p);

/* Writes the partition's metric label ("3") into out (n bytes). */
void part_label(int32_t partition, char *out, size_t n);

/* Jobs pushed and not yet handed back, over every partition. Consumer
 * thread only. */
size_t parts_outstanding(worker *w);

/* True when at least one partition is ours. Consumer thread only. */
bool parts_any(worker *w);

/* Drops the worker's reference to every partition and frees the table.
 * At teardown, consumer thread. */
void parts_free(worker *w);

/* ---- job.c: one job, from message to final state ---- */

/*
 * Creates the job of a consumed message: copies the key, value and
 * herald-targets header, parses the alerts (a poison message keeps its
 * reason) and takes a reference to p. rkm is borrowed for the call.
 * Returns the job (caller owns; free with job_free(), or hand it to the
 * queue, whose run and drop callbacks take it), or NULL when out of memory.
 * Consumer thread.
 */
job *job_new(worker *w, part *p, const rd_kafka_message_t *rkm);

/* Runs the next step of a job (queue_run_cb; opaque is the worker). On a
 * dispatcher thread. A finished job goes to w->done. */
void job_run(void *opaque, void *vjob);

/* A job the queue never ran at stop (queue_drop_cb): goes to w->done as
 * not final. On the thread stopping the queue. */
void job_drop(void *opaque, void *vjob);

/* Frees a job and drops its partition reference. NULL is a no-op. Any
 * thread, once no other thread holds the job. */
void job_free(job *job);

/* ---- commit.c: finished jobs, offsets and commits ---- */

/*
 * Takes the finished jobs from w->done, marks the offsets of final ones
 * done in their partition's tracker (revoked partitions are ignored) and
 * frees the jobs. Consumer thread only.
 */
void commit_mark_finished(worker *w);

/* Commits the contiguous finished prefix of every partition (or only of
 * `only`) whose commit point advanced; sync waits for the broker. Consumer
 * thread only. */
void commit_due(worker *w, bool sync, part *only);

/* The periodic commit: commit_due() every commit_interval_ms unless a
 * cooperative rejoin is pending. now: monotonic ms. Consumer thread. */
void commit_tick(worker *w, int64_t now);

/* True while a cooperative rejoin is pending (see struct worker): a commit
 * sent now would fail. Gives up after REJOIN_MAX_MS. Consumer thread. */
bool commit_blocked(worker *w);

/* Holds periodic commits until the two assigns of a cooperative rejoin
 * (commit_rejoin_assigned()), or REJOIN_MAX_MS. Consumer thread. */
void commit_hold_for_rejoin(worker *w);

/* One assign callback of a pending rejoin happened. Consumer thread. */
void commit_rejoin_assigned(worker *w);

/* librdkafka's offset commit callback (rd_kafka_conf_set_offset_commit_cb);
 * opaque is the worker. Consumer thread (from rd_kafka_consumer_poll). */
void commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
               rd_kafka_topic_partition_list_t *offsets, void *opaque);

/* ---- backpressure.c: pause / resume at the in-flight window ---- */

/* Pauses (pause) or resumes a partition; no-op when already so. Consumer
 * thread only. */
void backpressure_pause(worker *w, part *p, bool pause);

/* Pushes a tracked job into the queue, or, when the queue is full or the
 * partition has a backlog, appends it to the backlog and pauses the
 * partition. Takes ownership of job. Consumer thread only. */
void backpressure_push(worker *w, part *p, job *job);

/* Pushes a partition's backlog into the queue, in offset order, until the
 * queue refuses. Consumer thread only. */
void backpressure_flush(worker *w, part *p);

/* Flushes every backlog and applies the in-flight window: pause above it,
 * resume at the low watermark. Consumer thread only. */
void backpressure_apply(worker *w);

/* ---- rebalance.c: assign and revoke ---- */

/* librdkafka's rebalance callback (rd_kafka_conf_set_rebalance_cb), eager
 * and cooperative; opaque is the worker. Consumer thread (from
 * rd_kafka_consumer_poll and rd_kafka_consumer_close). */
void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                  rd_kafka_topic_partition_list_t *parts, void *opaque);

/* ---- reload.c: targets.yaml reload ---- */

/* Remembers the targets file's modification time as loaded. Consumer
 * thread, at start. */
void reload_init(worker *w);

/* Reloads targets.yaml on SIGHUP (*cfg.reload) or when the file changed
 * (checked every targets_watch_ms); a rejected file keeps the running
 * targets. now: monotonic ms. Consumer thread. */
void reload_check(worker *w, int64_t now);

/* ---- consumer.c: the Kafka consumer and its poll loop ---- */

/* Registers the consumer's metric families into w->cm. Any thread. */
void consumer_metrics_init(consumer_metrics *cm);

/* Creates the consumer handle from w->cfg (herald's defaults, then the -X
 * properties; auto commit refused). Returns it (caller owns) or NULL with
 * errstr filled. Consumer thread. */
rd_kafka_t *consumer_new(worker *w, char *errstr, size_t errstr_size);

/* Subscribes to the topic and polls until *cfg.stop is set (HERALD_OK) or
 * librdkafka reports a fatal error (HERALD_ERR_KAFKA, errstr filled).
 * Consumer thread. */
herald_err consumer_poll_loop(worker *w, char *errstr, size_t errstr_size);

/* Shutdown: pauses everything, drains the jobs up to drain_timeout_ms while
 * polling, cancels the rest, commits, stops the queue. Consumer thread. */
void consumer_drain(worker *w);

/* ---- api_worker.c: what the HTTP API serves from the worker ---- */

/* Starts the API server when cfg.api_listen is set (*out = NULL when it is
 * not). Returns HERALD_OK, or HERALD_ERR_CONFIG with errstr filled. The
 * server borrows w until api_destroy(). Main (consumer) thread. */
herald_err api_worker_start(worker *w, api_server **out, char *errstr,
                            size_t errstr_size);

#endif
