/*
 * heap.h: the one binary min-heap of herald, a priority queue of pointers.
 *
 * The caller gives the order: before(a, b) is true when item a must leave
 * the heap before item b (a strict order: false for equal items). Equal
 * items leave in no particular order, so a caller that needs FIFO among
 * ties adds a sequence number to its items and compares it last. The
 * optional moved(item, index) callback is told every new index an item
 * takes, and HEAP_NO_INDEX when it leaves, so an item can remember where
 * it is and be removed in O(log n) with heap_remove().
 *
 * Storage is one capped buf (core/buf.h) of pointers; the heap holds at
 * most the max given at init. A heap is a caller-allocated value type:
 * heap_init()/heap_free(). It never owns the items: freeing them is the
 * caller's business. push and pop are O(log n), peek and len O(1).
 *
 * Not thread-safe: one owner at a time, or every call under the caller's
 * lock (the queue's q->lock, the timer engine's t->lock). The callbacks
 * run on the calling thread, inside the call, under whatever lock it holds:
 * they must only compare or store the index, never call back into the heap.
 */
#ifndef HERALD_HEAP_H
#define HERALD_HEAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

/* The index moved() is given for an item that left the heap. */
#define HEAP_NO_INDEX SIZE_MAX

/*
 * The largest max a heap accepts, in items: what a buf can address in
 * pointers, with room for its NUL. A caller wanting "memory is the only
 * limit" passes it.
 */
#define HEAP_MAX_LEN ((SIZE_MAX / 2) / sizeof(void *))

/* True when item a must leave the heap before item b. Both are borrowed. */
typedef bool (*heap_before_cb)(const void *a, const void *b);

/* Item (borrowed) now sits at index, or left the heap (HEAP_NO_INDEX). */
typedef void (*heap_moved_cb)(void *item, size_t index);

typedef struct heap {
    buf items;             /* void * array; len is a multiple of a pointer. */
    size_t max;            /* Most items held. */
    heap_before_cb before; /* The order; never NULL. */
    heap_moved_cb moved;   /* Index tracking, or NULL. */
} heap;

/*
 * Initialises an empty heap holding at most max items (clamped to
 * HEAP_MAX_LEN) ordered by before (required); moved may be NULL. Allocates
 * nothing: the first push does. Not thread-safe (see the top).
 */
void heap_init(heap *h, size_t max, heap_before_cb before, heap_moved_cb moved);

/*
 * Makes room for n items in total, so that pushes up to n items never
 * allocate (and so never fail with HERALD_ERR_NOMEM). Errors:
 * HERALD_ERR_FULL when n is above the max, HERALD_ERR_NOMEM; the heap is
 * unchanged on error. Not thread-safe.
 */
herald_err heap_reserve(heap *h, size_t n);

/*
 * Adds item (borrowed; not NULL) in O(log n). Errors: HERALD_ERR_FULL when
 * the heap holds max items, HERALD_ERR_NOMEM; on error the heap is
 * unchanged and moved() was not called. Not thread-safe.
 */
herald_err heap_push(heap *h, void *item);

/* The first item, or NULL when the heap is empty. Not thread-safe. */
void *heap_peek(const heap *h);

/*
 * Removes and returns the first item (moved() is told HEAP_NO_INDEX), or
 * NULL when the heap is empty. O(log n). Not thread-safe.
 */
void *heap_pop(heap *h);

/*
 * Removes and returns the item at index (as moved() reported it), or NULL
 * when index is not below heap_len(). O(log n). Not thread-safe.
 */
void *heap_remove(heap *h, size_t index);

/*
 * The item at index in heap order (index 0 is the first; the others are
 * not sorted), or NULL past the end: for scanning every item. Not
 * thread-safe.
 */
void *heap_at(const heap *h, size_t index);

/* The number of items held. Not thread-safe. */
size_t heap_len(const heap *h);

/*
 * Empties the heap, keeping its memory. moved() is not called: the items
 * may already be gone. Not thread-safe.
 */
void heap_clear(heap *h);

/* Frees the memory (not the items); the heap is empty and reusable. */
void heap_free(heap *h);

#endif
