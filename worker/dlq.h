/*
 * dlq.h: the dead-letter producer of herald.
 *
 * A job that cannot be delivered (a poison message, or a target leg that
 * exhausted its retries or was skipped) becomes one record on the
 * dead-letter topic. The record keeps the original key and value (a Kafka
 * null value stays null) and carries the facts as headers, all values
 * UTF-8 text:
 *
 *   herald-reason            reason kind ("not_json", "target_failed", ...)
 *   herald-error             error text
 *   herald-source-topic      topic of the original message
 *   herald-source-partition  its partition (decimal)
 *   herald-source-offset     its offset (decimal)
 *   herald-target            target name; absent for poison messages
 *   herald-http-status       last HTTP status (decimal), "0" when none
 *   herald-attempts          delivery attempts (decimal)
 *   herald-first-attempt-ms  wall clock ms since the epoch, "0" when none
 *   herald-last-attempt-ms   wall clock ms since the epoch, "0" when none
 *   herald-version           herald's version (HERALD_VERSION)
 *   herald-dlq-time-ms       wall clock ms since the epoch of the write
 *
 * A record that can never be written as it is (dlq_write_async() only):
 * larger than the producer's message.max.bytes, or failed by the broker
 * with MESSAGE_TOO_LARGE, RECORD_LIST_TOO_LARGE, TOPIC_AUTHORIZATION_FAILED
 * or an unknown topic, is replaced by a truncated copy: the first 16 KiB
 * of the value, 1 KiB of the key, the same headers (herald-error cut to
 * 1 KiB) plus
 *
 *   herald-truncated          "true"
 *   herald-original-size      the value's size in bytes (decimal)
 *   herald-original-key-size  the key's size in bytes (decimal)
 *   herald-original-sha256    SHA-256 of the value (64 hex digits)
 *   herald-dlq-error          why the record was refused (librdkafka's
 *                             error name, e.g. "MSG_SIZE_TOO_LARGE")
 *
 * so that an oversize dead letter never pins its partition; the copy's
 * acknowledgement is the write's success. herald_dlq_truncated_total
 * counts them.
 *
 * Records are produced with acks=all and the idempotent producer
 * (enable.idempotence=true), and dlq_write() returns only after the broker
 * acknowledged the record, so a caller may commit the source offset right
 * after a successful write (ARCHITECTURE.md, "Delivery semantics").
 *
 * At-least-once: when dlq_write() returns HERALD_ERR_TIMEOUT the record
 * stays queued in librdkafka and may still be delivered later (until
 * message.timeout.ms). The caller must treat the write as failed and try
 * again, so the dead-letter topic may then hold the record twice; it never
 * holds it zero times once a write succeeded.
 *
 * Thread-safety: dlq_write(), dlq_write_async() and dlq_topic() may be
 * called from any thread, concurrently. dlq_new() and dlq_destroy() are called
 * once each, with no write running. The dlq owns one producer rd_kafka_t and
 * one background thread that polls it for delivery reports; no other thread
 * polls it.
 *
 * Metrics (core/metrics.h): herald_dlq_records_total{reason} counts
 * acknowledged records, herald_dlq_errors_total counts failed or timed-out
 * writes.
 */
#ifndef HERALD_DLQ_H
#define HERALD_DLQ_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct dlq dlq;

/*
 * Creates the dead-letter producer for topic on brokers (bootstrap list).
 * props: n_props "key=value" librdkafka properties (the -X flags), applied
 * after herald's defaults (acks=all, enable.idempotence=true, linger.ms=5),
 * so they win. All strings are copied or borrowed for the call only.
 * Starts the delivery-report thread. The topic is not checked to exist.
 * Returns NULL with errstr filled for a bad property or when librdkafka
 * cannot create the handle. Free with dlq_destroy(). Any thread.
 */
dlq *dlq_new(const char *brokers, const char *topic, const char *const *props,
             size_t n_props, char *errstr, size_t errstr_size);

/* One dead-letter record. Every pointer is borrowed for the call. */
typedef struct dlq_record {
    /* Reason kind, required: a poison kind from alert_reason_name()
     * ("not_json", "oversize", ...) or "target_failed", "circuit_open",
     * "unhealthy", "degraded", "budget_exhausted". */
    const char *reason;
    const char *error;        /* Error text, or NULL for "". */
    const char *source_topic; /* Required. */
    int32_t source_partition;
    int64_t source_offset;
    const char *target; /* Target name, NULL for poison messages. */
    long http_status;   /* Last HTTP status, 0 none. */
    int attempts;
    /* Wall clock ms since the epoch, 0 none. */
    int64_t first_attempt_ms, last_attempt_ms;
    const void *key; /* Original key (may be NULL). */
    size_t key_len;
    const void *value; /* Original value (NULL: a null value stays null). */
    size_t value_len;
} dlq_record;

/*
 * Produces one record (rec, borrowed for the call; key and value are
 * copied) and blocks until the broker acknowledged it or timeout_ms
 * (milliseconds, > 0) passed. Any thread, concurrently.
 * Errors: HERALD_ERR_INVALID (NULL d or rec, no reason or source topic),
 * HERALD_ERR_KAFKA (librdkafka refused or the broker failed the record;
 * errstr says why), HERALD_ERR_TIMEOUT (no acknowledgement in time; the
 * record may still be delivered later, see the top of this file).
 */
herald_err dlq_write(dlq *d, const dlq_record *rec, int timeout_ms,
                     char *errstr, size_t errstr_size);

/*
 * Called once per accepted dlq_write_async() with its outcome: HERALD_OK
 * (errstr NULL) once the broker acknowledged the record, otherwise the
 * errors of dlq_write() (HERALD_ERR_KAFKA, HERALD_ERR_TIMEOUT; the same
 * at-least-once rule applies) with errstr, a sentence borrowed for the
 * call. Runs on the dlq's delivery-report thread, with no dlq lock held;
 * it must not block, and may call dlq_write_async() again but not
 * dlq_close() or dlq_destroy().
 */
typedef void (*dlq_done_fn)(void *opaque, herald_err err, const char *errstr);

/*
 * Like dlq_write(), without waiting: produces rec (borrowed for the call;
 * key and value are copied) and returns. On HERALD_OK, done(opaque, ...)
 * is called exactly once later, when the broker acknowledged or failed the
 * record, or when timeout_ms (milliseconds, > 0; checked every 100 ms)
 * passed first. On an error done is never called: HERALD_ERR_INVALID
 * (as dlq_write(), or no done), HERALD_ERR_NOMEM, HERALD_ERR_KAFKA or
 * HERALD_ERR_TIMEOUT (librdkafka refused the record, or its local queue is
 * full; errstr says why), HERALD_ERR_STATE after dlq_close().
 * Any thread, concurrently.
 */
herald_err dlq_write_async(dlq *d, const dlq_record *rec, int timeout_ms,
                           dlq_done_fn done, void *opaque, char *errstr,
                           size_t errstr_size);

/*
 * Refuses new asynchronous writes (HERALD_ERR_STATE) and waits until the
 * done callback of every accepted one has returned (at the latest when
 * their timeouts pass), so that what the callbacks use may be freed next.
 * dlq_write() keeps working. Idempotent; NULL is a no-op. Not from a done
 * callback.
 */
void dlq_close(dlq *d);

/*
 * herald_now_ms() of the first failed write (refused, failed or timed out,
 * synchronous or not) since the last acknowledged one; 0 while writes
 * succeed. A value far in the past means dead letters are stuck: the
 * worker's /readyz reports it. Gauge herald_dlq_failing mirrors it (1/0).
 * Any thread.
 */
int64_t dlq_failing_since_ms(dlq *d);

/* The dead-letter topic name; borrowed until dlq_destroy(). Any thread. */
const char *dlq_topic(const dlq *d);

/*
 * Closes d (dlq_close()), flushes queued records for up to 10 s, stops the
 * delivery-report thread and frees d. Records still unacknowledged after that
 * are purged (their writers already returned HERALD_ERR_TIMEOUT). No
 * dlq_write() may be running. NULL is a no-op.
 */
void dlq_destroy(dlq *d);

#endif
