/*
 * part.c: the partitions assigned to this worker, a table by partition
 * number, and their reference counts.
 *
 * Data flow: rebalance.c adds a partition on assign (a fresh offset
 * tracker) and removes it on revoke; job.c takes a reference per job, so a
 * job finishing after its partition was revoked still has a valid
 * pointer; the last reference frees the partition.
 *
 * Threads: the table (w->parts) is the consumer thread's; part_ref() and
 * part_unref() are atomic and run on any thread. Calls no other worker
 * file: job.c and the consumer side both call into it.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker/worker_int.h"

part *part_get(worker *w, int32_t partition)
{
    if (partition < 0 || (size_t)partition >= w->n_parts_cap)
        return NULL;
    return w->parts[partition];
}

void part_label(int32_t partition, char *out, size_t n)
{
    snprintf(out, n, "%" PRId32, partition);
}

/* Grows the table so that it has a slot for partition. */
static herald_err parts_grow(worker *w, int32_t partition)
{
    size_t ncap = (size_t)partition + 16;
    part **np;

    if ((size_t)partition < w->n_parts_cap)
        return HERALD_OK;
    np = realloc(w->parts, ncap * sizeof(*np));
    if (!np)
        return HERALD_ERR_NOMEM;
    memset(np + w->n_parts_cap, 0, (ncap - w->n_parts_cap) * sizeof(*np));
    w->parts = np;
    w->n_parts_cap = ncap;
    return HERALD_OK;
}

herald_err part_add(worker *w, int32_t partition)
{
    part *p;

    if (parts_grow(w, partition) != HERALD_OK)
        return HERALD_ERR_NOMEM;
    if (w->parts[partition])
        return HERALD_OK; /* Already ours (cooperative re-assign). */
    p = calloc(1, sizeof(*p));
    if (!p)
        return HERALD_ERR_NOMEM;
    p->tracker = offset_tracker_new(w->cfg.topic, partition);
    if (!p->tracker) {
        free(p);
        return HERALD_ERR_NOMEM;
    }
    atomic_init(&p->refs, 1);
    atomic_init(&p->revoked, false);
    atomic_init(&p->cancel, false);
    p->partition = partition;
    p->first_offset = -1;
    w->parts[partition] = p;
    return HERALD_OK;
}

void part_ref(part *p)
{
    atomic_fetch_add(&p->refs, 1);
}

void part_unref(part *p)
{
    if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
        offset_tracker_destroy(p->tracker);
        free(p);
    }
}

size_t parts_outstanding(worker *w)
{
    size_t n = 0;

    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            n += w->parts[i]->outstanding;
    }
    return n;
}

bool parts_any(worker *w)
{
    for (size_t i = 0; i < w->n_parts_cap; i++) {
        if (w->parts[i])
            return true;
    }
    return false;
}

void parts_free(worker *w)
{
    for (size_t i = 0; i < w->n_parts_cap; i++)
        part_unref(w->parts[i]);
    free(w->parts);
    w->parts = NULL;
    w->n_parts_cap = 0;
}
