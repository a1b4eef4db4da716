/*
 * kafka_fixture.h: librdkafka's in-process mock cluster (rdkafka_mock.h)
 * for tests, with topics and a throwaway reader.
 *
 * A fixture is a mock cluster of N brokers on 127.0.0.1 plus the producer
 * handle librdkafka needs for the cluster's book keeping. Tests create
 * topics on it, point the code under test at its bootstrap string, and
 * read records back with kafka_fixture_read() (copies into caller-provided
 * storage) or kafka_fixture_read_each() (a per-record callback): a fresh
 * consumer assigns every partition of the topic from the beginning and
 * polls until the wanted count came or the timeout passed.
 *
 * Linked into every test and benchmark as part of the static library
 * herald_test_fixtures; like http_fixture it does not depend on Check, so
 * functions report errors and the tests assert on them.
 */
#ifndef HERALD_TESTS_KAFKA_FIXTURE_H
#define HERALD_TESTS_KAFKA_FIXTURE_H

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct kafka_fixture kafka_fixture;

/* One record read back, copied out of librdkafka. */
typedef struct kafka_fixture_record {
    int32_t partition;
    int64_t offset;
    char *key;      /* NUL-terminated copy, NULL for a null key; owned. */
    size_t key_len; /* Bytes, without the terminator. */
    char *value;    /* NUL-terminated copy, NULL for a null value; owned. */
    size_t len;     /* Value bytes, without the terminator. */
    rd_kafka_headers_t *headers; /* Copy, NULL when none; owned. */
} kafka_fixture_record;

/*
 * Called by kafka_fixture_read_each() for every record without an error,
 * on the calling thread; index counts from 0. m is borrowed for the call.
 */
typedef void (*kafka_fixture_record_cb)(const rd_kafka_message_t *m, int index,
                                        void *opaque);

/*
 * Starts a mock cluster with brokers brokers (1 or more). Returns the
 * fixture, which the caller destroys with kafka_fixture_destroy(), or
 * NULL with errstr filled when brokers is below 1 or librdkafka cannot
 * create the handle or the cluster. Any thread.
 */
kafka_fixture *kafka_fixture_new(int brokers, char *errstr, size_t errstr_size);

/*
 * Destroys the cluster and its handle and frees the fixture. NULL is a
 * no-op. Call it after every client of the cluster was destroyed (a
 * client still connected only logs reconnection errors).
 */
void kafka_fixture_destroy(kafka_fixture *kfx);

/*
 * The cluster's bootstrap string, "127.0.0.1:<port>,...": borrowed until
 * kafka_fixture_destroy(). Any thread.
 */
const char *kafka_fixture_bootstraps(const kafka_fixture *kfx);

/*
 * The mock cluster, for rd_kafka_mock_*() calls such as
 * rd_kafka_mock_broker_set_down(): borrowed until kafka_fixture_destroy().
 */
rd_kafka_mock_cluster_t *kafka_fixture_mock(kafka_fixture *kfx);

/*
 * Creates topic with partitions partitions (replication factor 1) and
 * remembers the count for the readers. Returns HERALD_OK;
 * HERALD_ERR_INVALID when partitions is below 1 or topic is empty;
 * HERALD_ERR_FULL when the fixture already holds KAFKA_FIXTURE_MAX_TOPICS
 * topics; HERALD_ERR_KAFKA when the mock cluster refuses. errstr is filled
 * on error. Thread of the fixture's owner.
 */
#define KAFKA_FIXTURE_MAX_TOPICS 16
herald_err kafka_fixture_topic_create(kafka_fixture *kfx, const char *topic,
                                      int partitions, char *errstr,
                                      size_t errstr_size);

/*
 * Reads every partition of topic (created with kafka_fixture_topic_create)
 * from the beginning with a new consumer until max records came or
 * timeout_ms passed, calling cb for each record (records carrying an
 * error are skipped). The consumer joins no group and commits nothing.
 * Returns the count read (0..max), or -1 with errstr filled when topic
 * is unknown or the consumer cannot be created. Calling thread only.
 */
int kafka_fixture_read_each(kafka_fixture *kfx, const char *topic, int max,
                            int timeout_ms, kafka_fixture_record_cb cb,
                            void *opaque, char *errstr, size_t errstr_size);

/*
 * kafka_fixture_read_each() copying each record into recs[0..max). The
 * caller owns the copies and frees them with kafka_fixture_records_free().
 * Returns the count, or -1 with errstr filled (also when a copy runs out
 * of memory; the records read so far are then freed).
 */
int kafka_fixture_read(kafka_fixture *kfx, const char *topic,
                       kafka_fixture_record *recs, int max, int timeout_ms,
                       char *errstr, size_t errstr_size);

/* Frees the copies of recs[0..n); recs itself stays the caller's. */
void kafka_fixture_records_free(kafka_fixture_record *recs, int n);

/*
 * The last value of header name in hdrs (may be NULL) as a string in out
 * (out_size bytes, truncated if short). Returns true when present; when
 * absent returns false and sets out to "". Any thread.
 */
bool kafka_fixture_header(const rd_kafka_headers_t *hdrs, const char *name,
                          char *out, size_t out_size);

#endif
