/*
 * offsets.c: per-partition offset tracker (see offsets.h).
 *
 * Data flow: the consumer thread adds each dispatched message's offset
 * (increasing), marks offsets done as their jobs become final, and reads the
 * commit point to commit it. Entries live in a ring buffer in offset order;
 * whenever the first entry becomes done, the whole done prefix is popped.
 *
 * Invariants (checked by tests/check_offsets.c):
 *   I1 ring offsets strictly increase from front to back;
 *   I2 the front entry, if any, is unfinished (the done prefix is popped);
 *   I3 every offset added and below the front (or below last + 1 when the
 *      ring is empty) is done.
 * From I1-I3 the commit point (front offset, or last + 1) is exactly the
 * lowest unfinished offset, so it never passes an unfinished job; and it
 * never decreases because pops only remove the front, and adds append above
 * the last offset, which is at least the commit point.
 *
 * The ring has a hard cap (OFFSET_TRACKER_MAX_TRACKED) and grows by doubling;
 * it is a fixed-size record array, so it does not use the byte buffer buf.
 *
 * Threads: the consumer thread only; no locks.
 */
#include "worker/offsets.h"

#include <stdlib.h>
#include <string.h>

typedef struct offset_entry {
    int64_t offset;
    int64_t added_ms;
    bool done;
} offset_entry;

struct offset_tracker {
    char *topic;
    int32_t partition;

    offset_entry *ring; /* cap entries; NULL until the first add. */
    size_t cap;         /* A power of two, or 0. */
    size_t head;        /* Index of the front entry. */
    size_t count;       /* Entries held. */
    size_t unfinished;  /* Entries not done. */

    int64_t first_added; /* First offset ever added, or -1. */
    int64_t last_added;  /* Last offset added, or -1. */
    int64_t committed;   /* Last point marked committed, or -1. */
};

/* The first allocation: a few dozen jobs are common on a quiet partition. */
#define OFFSET_TRACKER_INITIAL_CAP 64

static offset_entry *offset_tracker_at(const offset_tracker *t, size_t i)
{
    return &t->ring[(t->head + i) & (t->cap - 1)];
}

offset_tracker *offset_tracker_new(const char *topic, int32_t partition)
{
    offset_tracker *t;

    if (!topic || partition < 0)
        return NULL;
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->topic = strdup(topic);
    if (!t->topic) {
        free(t);
        return NULL;
    }
    t->partition = partition;
    t->first_added = -1;
    t->last_added = -1;
    t->committed = -1;
    return t;
}

void offset_tracker_destroy(offset_tracker *t)
{
    if (!t)
        return;
    free(t->ring);
    free(t->topic);
    free(t);
}

const char *offset_tracker_topic(const offset_tracker *t)
{
    return t->topic;
}

int32_t offset_tracker_partition(const offset_tracker *t)
{
    return t->partition;
}

/* Doubles the ring, unwrapping it so the front lands at index 0. */
static herald_err offset_tracker_grow(offset_tracker *t)
{
    size_t ncap = t->cap ? t->cap * 2 : OFFSET_TRACKER_INITIAL_CAP;
    offset_entry *nring = malloc(ncap * sizeof(*nring));

    if (!nring)
        return HERALD_ERR_NOMEM;
    for (size_t i = 0; i < t->count; i++)
        nring[i] = *offset_tracker_at(t, i);
    free(t->ring);
    t->ring = nring;
    t->cap = ncap;
    t->head = 0;
    return HERALD_OK;
}

herald_err offset_tracker_add(offset_tracker *t, int64_t offset, int64_t now_ms)
{
    offset_entry *e;

    if (offset < 0 || (t->last_added >= 0 && offset <= t->last_added))
        return HERALD_ERR_INVALID;
    if (t->count >= OFFSET_TRACKER_MAX_TRACKED)
        return HERALD_ERR_FULL;
    if (t->count == t->cap) {
        herald_err err = offset_tracker_grow(t);

        if (err)
            return err;
    }
    e = offset_tracker_at(t, t->count);
    e->offset = offset;
    e->added_ms = now_ms;
    e->done = false;
    t->count++;
    t->unfinished++;
    if (t->first_added < 0)
        t->first_added = offset;
    t->last_added = offset;
    return HERALD_OK;
}

herald_err offset_tracker_done(offset_tracker *t, int64_t offset)
{
    size_t lo = 0;
    size_t hi = t->count;

    if (t->first_added < 0 || offset < t->first_added || offset > t->last_added)
        return HERALD_ERR_NOT_FOUND;
    /* Below the commit point everything added is final (I3). */
    if (offset < offset_tracker_commit_point(t))
        return HERALD_OK;
    /* Binary search for offset in [lo, hi) (I1). */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (offset_tracker_at(t, mid)->offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == t->count || offset_tracker_at(t, lo)->offset != offset)
        return HERALD_ERR_NOT_FOUND; /* A gap: never added. */
    if (offset_tracker_at(t, lo)->done)
        return HERALD_OK;
    offset_tracker_at(t, lo)->done = true;
    t->unfinished--;
    /* Pop the done prefix so the front is unfinished again (I2). */
    while (t->count > 0 && offset_tracker_at(t, 0)->done) {
        t->head = (t->head + 1) & (t->cap - 1);
        t->count--;
    }
    return HERALD_OK;
}

int64_t offset_tracker_commit_point(const offset_tracker *t)
{
    if (t->count > 0)
        return offset_tracker_at(t, 0)->offset;
    if (t->last_added >= 0)
        return t->last_added + 1;
    return -1;
}

size_t offset_tracker_inflight(const offset_tracker *t)
{
    return t->unfinished;
}

size_t offset_tracker_tracked(const offset_tracker *t)
{
    return t->count;
}

int64_t offset_tracker_oldest_age_ms(const offset_tracker *t, int64_t now_ms)
{
    int64_t age;

    /* The front is the oldest unfinished job (I2; adds come in order). */
    if (t->count == 0)
        return 0;
    age = now_ms - offset_tracker_at(t, 0)->added_ms;
    return age > 0 ? age : 0;
}

bool offset_tracker_commit_due(const offset_tracker *t, int64_t *point)
{
    int64_t cp = offset_tracker_commit_point(t);

    if (cp < 0 || cp <= t->committed)
        return false;
    if (point)
        *point = cp;
    return true;
}

void offset_tracker_mark_committed(offset_tracker *t, int64_t point)
{
    if (point < 0)
        t->committed = -1;
    else if (point > t->committed)
        t->committed = point;
}

int64_t offset_tracker_committed(const offset_tracker *t)
{
    return t->committed;
}
