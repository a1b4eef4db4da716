/*
 * heap.c: the binary min-heap of pointers (see heap.h).
 *
 * Data flow: the items live in one capped buf as a void * array in the
 * usual implicit tree (the children of i are 2i+1 and 2i+2). A push
 * appends and sifts the new item up; a pop or remove moves the last item
 * into the hole and sifts it up, then down. Sifting carries the moving
 * item in hand and writes every displaced item once, telling moved()
 * each index written, so the callback is always right when a call
 * returns. The buf is allocated with realloc's alignment, which suits
 * pointers; its length shrinks by hand (buf has no truncate), keeping the
 * NUL buf promises after the content.
 *
 * Threads: none of its own; the owner serialises every call (heap.h).
 */
#include "core/heap.h"

#include <string.h>

/* The item array; valid while the buf is not grown. */
static void **heap_items(const heap *h)
{
    return (void **)(void *)h->items.data;
}

/* Writes item at index i and tells the owner. */
static void heap_set(heap *h, size_t i, void *item)
{
    heap_items(h)[i] = item;
    if (h->moved)
        h->moved(item, i);
}

/* Moves item, meant for the hole at i, towards the root; returns where
 * it ended. */
static size_t heap_sift_up(heap *h, size_t i, void *item)
{
    void **items = heap_items(h);

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (!h->before(item, items[parent]))
            break;
        heap_set(h, i, items[parent]);
        i = parent;
    }
    heap_set(h, i, item);
    return i;
}

/* Moves item, meant for the hole at i, towards the leaves. */
static void heap_sift_down(heap *h, size_t i, void *item)
{
    void **items = heap_items(h);
    size_t n = heap_len(h);

    for (;;) {
        size_t child = 2 * i + 1;

        if (child >= n)
            break;
        if (child + 1 < n && h->before(items[child + 1], items[child]))
            child++;
        if (!h->before(items[child], item))
            break;
        heap_set(h, i, items[child]);
        i = child;
    }
    heap_set(h, i, item);
}

void heap_init(heap *h, size_t max, heap_before_cb before, heap_moved_cb moved)
{
    if (max > HEAP_MAX_LEN)
        max = HEAP_MAX_LEN;
    buf_init(&h->items, max * sizeof(void *));
    h->max = max;
    h->before = before;
    h->moved = moved;
}

herald_err heap_reserve(heap *h, size_t n)
{
    /* buf grows only by appending: append zeros, then cut them off. */
    static const char zeros[256];
    size_t len = h->items.len;
    size_t need;

    if (n > h->max)
        return HERALD_ERR_FULL;
    need = n * sizeof(void *);
    while (h->items.len < need) {
        size_t chunk = need - h->items.len;

        if (chunk > sizeof zeros)
            chunk = sizeof zeros;
        if (buf_append(&h->items, zeros, chunk) != HERALD_OK) {
            h->items.len = len;
            if (h->items.data)
                h->items.data[len] = '\0';
            return HERALD_ERR_NOMEM;
        }
    }
    h->items.len = len;
    if (h->items.data)
        h->items.data[len] = '\0';
    return HERALD_OK;
}

herald_err heap_push(heap *h, void *item)
{
    herald_err err;

    if (heap_len(h) >= h->max)
        return HERALD_ERR_FULL;
    err = buf_append(&h->items, &item, sizeof item);
    if (err == HERALD_ERR_TOO_LARGE)
        return HERALD_ERR_FULL;
    if (err != HERALD_OK)
        return HERALD_ERR_NOMEM;
    heap_sift_up(h, heap_len(h) - 1, item);
    return HERALD_OK;
}

void *heap_peek(const heap *h)
{
    return heap_len(h) > 0 ? heap_items(h)[0] : NULL;
}

void *heap_pop(heap *h)
{
    return heap_remove(h, 0);
}

void *heap_remove(heap *h, size_t index)
{
    size_t n = heap_len(h);
    void *item;
    void *last;

    if (index >= n)
        return NULL;
    item = heap_items(h)[index];
    last = heap_items(h)[n - 1];
    h->items.len -= sizeof(void *);
    h->items.data[h->items.len] = '\0';
    if (h->moved)
        h->moved(item, HEAP_NO_INDEX);
    if (index == n - 1)
        return item;
    /* The last item fills the hole: up if it beats the hole's parent,
     * else down (at most one of the two moves it). */
    index = heap_sift_up(h, index, last);
    heap_sift_down(h, index, last);
    return item;
}

void *heap_at(const heap *h, size_t index)
{
    return index < heap_len(h) ? heap_items(h)[index] : NULL;
}

size_t heap_len(const heap *h)
{
    return h->items.len / sizeof(void *);
}

void heap_clear(heap *h)
{
    buf_reset(&h->items);
}

void heap_free(heap *h)
{
    buf_free(&h->items);
}
