/*
 * topic_reader.h: reads every partition of a topic from a start offset up
 * to the end offsets seen at the start, without joining a consumer group.
 *
 * The command-line tools that walk the dead-letter topic (`herald dlq
 * show`, `herald dlq replay`) share it. topic_reader_new() reads each
 * partition's low and high watermark (and the group's committed offset)
 * with admin_group_offsets(), creates a consumer handle and assigns
 * (rd_kafka_assign(), never subscribe) the partitions that have records
 * between their start and end offset. topic_reader_next() then hands out
 * records until every assigned partition reached its end: a record at or
 * past the end offset of the start, or the end of the partition
 * (enable.partition.eof), ends it. Records written after the start are
 * left for the next run.
 *
 * Thread-safety: a reader and its rd_kafka_t belong to the thread that
 * created it; every call on one reader comes from that thread (STYLE.md
 * 14). Different readers share nothing.
 *
 * librdkafka references: rd_kafka_assign(), rd_kafka_consumer_poll(),
 * RD_KAFKA_RESP_ERR__PARTITION_EOF and rd_kafka_commit() in rdkafka.h;
 * enable.partition.eof in CONFIGURATION.md.
 */
#ifndef HERALD_TOPIC_READER_H
#define HERALD_TOPIC_READER_H

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Wait of one topic_reader_next() call for a record, ms. */
#define TOPIC_READER_POLL_MS 500
/*
 * topic_reader_next() gives up (TOPIC_READER_STALLED) when nothing, not
 * even an end of partition, arrived for this long, ms: far longer than a
 * fetch from a healthy broker takes.
 */
#define TOPIC_READER_STALL_MS 60000
/* Metadata, offsets and commit timeout, ms. */
#define TOPIC_READER_KAFKA_TIMEOUT_MS 30000

typedef struct topic_reader topic_reader;

/* What topic_reader_next() found. */
typedef enum topic_reader_event {
    TOPIC_READER_RECORD,  /* *m is a record before the end offset. */
    TOPIC_READER_NOTICE,  /* *m is an error of no assigned partition (a
                             client-wide one such as brokers down); the
                             reader goes on. */
    TOPIC_READER_ERROR,   /* *m is a consume error of an assigned
                             partition; stop reading. */
    TOPIC_READER_STALLED, /* Nothing for TOPIC_READER_STALL_MS; stop. */
    TOPIC_READER_END      /* Every assigned partition reached its end. */
} topic_reader_event;

/*
 * Creates a reader of topic and assigns its partitions.
 *
 * group names the consumer group (required). With from_committed, each
 * partition starts at the group's committed offset (its low watermark
 * when there is none), group.id is set after props so that a -X group.id
 * cannot change the group that reads and commits, and
 * topic_reader_commit() commits for it. Without, each partition starts at
 * its low watermark and group is only the handle's default group.id,
 * which props may replace; nothing is committed either way unless the
 * caller calls topic_reader_commit().
 *
 * brokers, props (n_props "key=value" strings, the user's -X, applied
 * after the reader's defaults), topic and group are borrowed for the call
 * (topic until topic_reader_destroy()). Returns a new reader (caller owns
 * it: topic_reader_destroy()), or NULL with errstr filled and *err (when
 * err is not NULL) set: HERALD_ERR_CONFIG for a property the consumer
 * rejects, HERALD_ERR_KAFKA when its handle cannot be created or the
 * assignment fails, what admin_group_offsets() returns (its
 * HERALD_ERR_INVALID covers properties that do not parse: with
 * from_committed the offsets are read before the handle is created,
 * without after), HERALD_ERR_NOMEM.
 * The calling thread owns the reader.
 */
topic_reader *topic_reader_new(const char *brokers, const char *const *props,
                               size_t n_props, const char *topic,
                               const char *group, bool from_committed,
                               herald_err *err, char *errstr,
                               size_t errstr_size);

/*
 * Waits up to TOPIC_READER_POLL_MS at a time for the next event; returns
 * TOPIC_READER_END at once when every partition is done (also when none
 * had records). For RECORD, NOTICE and ERROR, *m is the message, borrowed
 * until the next call or topic_reader_destroy() (the reader destroys it).
 * A RECORD counts as read at once: it ends its partition when it is the
 * last before the end offset. Owner thread only.
 */
topic_reader_event topic_reader_next(topic_reader *tr,
                                     const rd_kafka_message_t **m);

/*
 * Commits offset (the next offset to read: a record's offset + 1) of
 * partition for the reader's group, synchronously (up to the broker's
 * answer). Errors: HERALD_ERR_KAFKA with errstr holding librdkafka's
 * message, HERALD_ERR_NOMEM. Owner thread only.
 */
herald_err topic_reader_commit(topic_reader *tr, int32_t partition,
                               int64_t offset, char *errstr,
                               size_t errstr_size);

/*
 * Closes the consumer (it never joined a group, so closing commits
 * nothing) and frees the reader; NULL is a no-op. Owner thread only.
 */
void topic_reader_destroy(topic_reader *tr);

#endif
