/*
 * offsets.h: the per-partition offset tracker.
 *
 * The consumer adds every message of a partition to the partition's tracker
 * when it dispatches the job, and marks it done when the job is final
 * (delivered to every selected target, or its failure acknowledged by the
 * dead-letter topic). The commit point is the offset to commit, in Kafka's
 * sense the NEXT offset to consume: the lowest offset whose job is not final,
 * or the last added offset + 1 when every job is final. Jobs may finish in
 * any order; the commit point never passes an unfinished job and never goes
 * backwards (ARCHITECTURE.md, "Delivery semantics"). Kafka's committed
 * offset is the next offset to read: rdkafka.h says of
 * rd_kafka_commit_message() that "the committed offset is the message's
 * offset + 1", so the commit point is given to rd_kafka_commit() as is.
 *
 * Data structure: a ring buffer of (offset, done, added_ms) in increasing
 * offset order, from the commit point to the last added offset. The done
 * prefix is popped as soon as it forms, so the first entry, if any, is always
 * the lowest unfinished job. add and commit_point are O(1) amortised, done is
 * O(log n) (binary search). Memory is proportional to the entries between the
 * commit point and the last added offset (offset_tracker_tracked()); the
 * consumer bounds that with its in-flight window by pausing the partition.
 *
 * A tracker belongs to one assignment of one partition: when a partition is
 * revoked its tracker is destroyed (after a final commit), and a re-assigned
 * partition starts with a fresh tracker. A job must report done to the
 * tracker that added it, never to a later tracker of the same partition
 * (offsets of the two assignments overlap).
 *
 * Thread-safety: not thread-safe; consumer thread only. Dispatcher threads
 * hand finished jobs back to the consumer thread, which calls
 * offset_tracker_done().
 */
#ifndef HERALD_OFFSETS_H
#define HERALD_OFFSETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct offset_tracker offset_tracker;

/*
 * Most entries one tracker holds (24 bytes each, so 24 MiB). The consumer's
 * in-flight window is far smaller; the cap turns a missing pause into an
 * error instead of unbounded memory.
 */
#define OFFSET_TRACKER_MAX_TRACKED (1024 * 1024)

/*
 * Creates an empty tracker for topic/partition. topic is copied. Returns
 * NULL when out of memory, when topic is NULL or partition is negative.
 * Free with offset_tracker_destroy().
 */
offset_tracker *offset_tracker_new(const char *topic, int32_t partition);

/* Frees the tracker. NULL is a no-op. */
void offset_tracker_destroy(offset_tracker *t);

/* The topic (borrowed for the tracker's lifetime) and the partition. */
const char *offset_tracker_topic(const offset_tracker *t);
int32_t offset_tracker_partition(const offset_tracker *t);

/*
 * Tracks a new, unfinished job at offset, dispatched at now_ms (any
 * millisecond clock, used only for offset_tracker_oldest_age_ms()). Offsets
 * must increase from one call to the next; gaps are normal (compaction,
 * transaction markers). Errors: HERALD_ERR_INVALID for a negative offset or
 * one not above the last added offset; HERALD_ERR_FULL when
 * OFFSET_TRACKER_MAX_TRACKED entries are held; HERALD_ERR_NOMEM. On error the
 * tracker is unchanged.
 */
herald_err offset_tracker_add(offset_tracker *t, int64_t offset,
                              int64_t now_ms);

/*
 * Marks the job at offset final. Idempotent: marking a done job again, or an
 * offset below the commit point (already final and released), returns
 * HERALD_OK and changes nothing. Errors: HERALD_ERR_NOT_FOUND when offset was
 * never added to this tracker (below the first added offset, in a gap, or
 * above the last added offset).
 */
herald_err offset_tracker_done(offset_tracker *t, int64_t offset);

/*
 * The offset to commit (the next offset to consume): the lowest unfinished
 * offset, or the last added offset + 1 when none is unfinished, or -1 when
 * nothing was added yet. Never decreases.
 */
int64_t offset_tracker_commit_point(const offset_tracker *t);

/* Jobs added and not yet done (for the pause/resume watermarks). */
size_t offset_tracker_inflight(const offset_tracker *t);

/*
 * Entries held: the jobs from the commit point to the last added offset,
 * done or not. These are the jobs a crash would deliver again, so a window
 * on this count bounds both memory and duplicates after a crash.
 */
size_t offset_tracker_tracked(const offset_tracker *t);

/*
 * Age in milliseconds of the oldest unfinished job (now_ms minus the now_ms
 * it was added with, never negative), or 0 when none is unfinished.
 */
int64_t offset_tracker_oldest_age_ms(const offset_tracker *t, int64_t now_ms);

/*
 * True when the commit point is above the last point given to
 * offset_tracker_mark_committed() (or is >= 0 and none was given); then
 * *point (if not NULL) receives the commit point. False otherwise, *point
 * untouched.
 */
bool offset_tracker_commit_due(const offset_tracker *t, int64_t *point);

/*
 * Records that point was committed (call once the commit was accepted, or
 * optimistically when it was sent). A point lower than the one recorded is
 * ignored, so a stale result never moves the record backwards. A negative
 * point forgets the record (call it when a commit failed): the current
 * commit point becomes due again, and committing it again is safe because
 * the commit point itself never goes backwards.
 */
void offset_tracker_mark_committed(offset_tracker *t, int64_t point);

/* The last point recorded by offset_tracker_mark_committed(), or -1. */
int64_t offset_tracker_committed(const offset_tracker *t);

#endif
