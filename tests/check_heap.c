/*
 * check_heap.c: the binary min-heap (core/heap.c): pops come out in the
 * order of a sorted model over many seeded random pushes, pops and
 * removes; ties with and without a sequence number; the moved() index of
 * every item is right after every call (and HEAP_NO_INDEX once it left);
 * the max (FULL, heap unchanged) and heap_reserve(); an empty heap's
 * peek, pop, remove and at; clear and reuse after free.
 *
 * The model is a plain array kept sorted by (key, seq): with unique
 * sequence numbers the heap order is total, so every pop must return
 * exactly the model's first item.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/heap.h"
#include "tests/check_main.h"

/* Items per random run: enough for a deep tree and many sift paths. */
#define N_ITEMS 512
/* Operations per random run. */
#define N_OPS 20000

typedef struct item {
    int key;      /* Primary order; drawn from a small range for ties. */
    unsigned seq; /* Unique: FIFO among equal keys. */
    size_t idx;   /* What moved() last said. */
} item;

/* xorshift64: a fixed seed makes every run the same. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

static bool item_before(const void *a, const void *b)
{
    const item *x = a;
    const item *y = b;

    if (x->key != y->key)
        return x->key < y->key;
    return x->seq < y->seq;
}

/* Ties only by key: equal keys leave in any order. */
static bool item_key_before(const void *a, const void *b)
{
    return ((const item *)a)->key < ((const item *)b)->key;
}

static void item_moved(void *p, size_t index)
{
    ((item *)p)->idx = index;
}

/* Every item knows its index and no child beats its parent. */
static void heap_check_shape(const heap *h)
{
    size_t n = heap_len(h);

    for (size_t i = 0; i < n; i++) {
        const item *it = heap_at(h, i);

        ck_assert_ptr_nonnull(it);
        ck_assert_uint_eq(it->idx, i);
        if (i > 0)
            ck_assert(!h->before(it, heap_at(h, (i - 1) / 2)));
    }
    ck_assert_ptr_null(heap_at(h, n));
}

/* The sorted model: removes model[i], keeping the order. */
static void model_del(item **model, size_t *n, size_t i)
{
    memmove(&model[i], &model[i + 1], (*n - i - 1) * sizeof(*model));
    (*n)--;
}

/* Inserts it into the sorted model after every item that comes first. */
static void model_add(item **model, size_t *n, item *it)
{
    size_t i = 0;

    while (i < *n && item_before(model[i], it))
        i++;
    memmove(&model[i + 1], &model[i], (*n - i) * sizeof(*model));
    model[i] = it;
    (*n)++;
}

START_TEST(test_random_against_model)
{
    static item items[N_ITEMS];
    static item *model[N_ITEMS];
    item *free_items[N_ITEMS];
    size_t n_free = N_ITEMS;
    size_t n_model = 0;
    unsigned seq = 0;
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    heap h;

    heap_init(&h, N_ITEMS, item_before, item_moved);
    for (size_t i = 0; i < N_ITEMS; i++) {
        items[i].idx = HEAP_NO_INDEX;
        free_items[i] = &items[i];
    }
    for (int op = 0; op < N_OPS; op++) {
        unsigned r = (unsigned)(rng_next(&rng) % 10);

        if (r < 5 && n_free > 0) {
            size_t k = (size_t)(rng_next(&rng) % n_free);
            item *it = free_items[k];

            free_items[k] = free_items[--n_free];
            /* 32 keys over up to 512 items: many ties. */
            it->key = (int)(rng_next(&rng) % 32) - 16;
            it->seq = seq++;
            ck_assert_int_eq(heap_push(&h, it), HERALD_OK);
            model_add(model, &n_model, it);
        } else if (r < 8) {
            item *it = heap_pop(&h);

            if (n_model == 0) {
                ck_assert_ptr_null(it);
                continue;
            }
            ck_assert_ptr_eq(it, model[0]);
            ck_assert_uint_eq(it->idx, HEAP_NO_INDEX);
            model_del(model, &n_model, 0);
            free_items[n_free++] = it;
        } else if (n_model > 0) {
            size_t k = (size_t)(rng_next(&rng) % n_model);
            item *it = model[k];

            ck_assert_ptr_eq(heap_remove(&h, it->idx), it);
            ck_assert_uint_eq(it->idx, HEAP_NO_INDEX);
            model_del(model, &n_model, k);
            free_items[n_free++] = it;
        }
        ck_assert_uint_eq(heap_len(&h), n_model);
        ck_assert_ptr_eq(heap_peek(&h), n_model ? model[0] : NULL);
        heap_check_shape(&h);
    }
    /* Draining gives the rest in model order. */
    for (size_t i = 0; i < n_model; i++)
        ck_assert_ptr_eq(heap_pop(&h), model[i]);
    ck_assert_ptr_null(heap_pop(&h));
    heap_free(&h);
}
END_TEST

START_TEST(test_ties_fifo_by_sequence)
{
    item items[64];
    heap h;

    heap_init(&h, 64, item_before, item_moved);
    /* Two keys interleaved; each key must come out in push order. */
    for (unsigned i = 0; i < 64; i++) {
        items[i].key = (int)(i % 2);
        items[i].seq = i;
        ck_assert_int_eq(heap_push(&h, &items[i]), HERALD_OK);
    }
    for (unsigned i = 0; i < 64; i++) {
        item *it = heap_pop(&h);
        unsigned want = i < 32 ? 2 * i : 2 * (i - 32) + 1;

        ck_assert_ptr_eq(it, &items[want]);
    }
    heap_free(&h);
}
END_TEST

START_TEST(test_ties_without_sequence)
{
    item items[200];
    size_t popped = 0;
    int last = -1000;
    bool seen[200] = {false};
    uint64_t rng = 7;
    heap h;

    /* No moved callback: the heap works without index tracking. */
    heap_init(&h, 200, item_key_before, NULL);
    for (unsigned i = 0; i < 200; i++) {
        items[i].key = (int)(rng_next(&rng) % 5);
        items[i].seq = i;
        ck_assert_int_eq(heap_push(&h, &items[i]), HERALD_OK);
    }
    while (heap_len(&h) > 0) {
        item *it = heap_pop(&h);
        size_t i = (size_t)(it - items);

        ck_assert_int_ge(it->key, last);
        ck_assert(!seen[i]);
        seen[i] = true;
        last = it->key;
        popped++;
    }
    ck_assert_uint_eq(popped, 200);
    heap_free(&h);
}
END_TEST

START_TEST(test_remove_each_index)
{
    item items[31];
    heap h;

    /* Removing any position of a full tree leaves a valid heap. */
    for (size_t victim = 0; victim < 31; victim++) {
        heap_init(&h, 31, item_before, item_moved);
        for (unsigned i = 0; i < 31; i++) {
            /* Descending keys: every push sifts to the root. */
            items[i].key = (int)(31 - i);
            items[i].seq = i;
            ck_assert_int_eq(heap_push(&h, &items[i]), HERALD_OK);
        }
        heap_check_shape(&h);
        {
            item *it = heap_at(&h, victim);

            ck_assert_ptr_eq(heap_remove(&h, victim), it);
            ck_assert_uint_eq(it->idx, HEAP_NO_INDEX);
        }
        ck_assert_uint_eq(heap_len(&h), 30);
        heap_check_shape(&h);
        ck_assert_ptr_null(heap_remove(&h, 30));
        heap_free(&h);
    }
}
END_TEST

START_TEST(test_max)
{
    item items[4] = {{3, 0, 0}, {1, 1, 0}, {2, 2, 0}, {0, 3, 0}};
    heap h;

    heap_init(&h, 3, item_before, item_moved);
    ck_assert_int_eq(heap_reserve(&h, 4), HERALD_ERR_FULL);
    ck_assert_int_eq(heap_reserve(&h, 3), HERALD_OK);
    ck_assert_uint_eq(heap_len(&h), 0);
    ck_assert_ptr_null(heap_peek(&h));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(heap_push(&h, &items[i]), HERALD_OK);
    items[3].idx = 99;
    ck_assert_int_eq(heap_push(&h, &items[3]), HERALD_ERR_FULL);
    /* Refused: unchanged, and the callback never saw the item. */
    ck_assert_uint_eq(items[3].idx, 99);
    ck_assert_uint_eq(heap_len(&h), 3);
    heap_check_shape(&h);
    ck_assert_ptr_eq(heap_peek(&h), &items[1]);
    /* A pop frees a slot. */
    ck_assert_ptr_eq(heap_pop(&h), &items[1]);
    ck_assert_int_eq(heap_push(&h, &items[3]), HERALD_OK);
    ck_assert_ptr_eq(heap_pop(&h), &items[3]);
    ck_assert_ptr_eq(heap_pop(&h), &items[2]);
    ck_assert_ptr_eq(heap_pop(&h), &items[0]);
    heap_free(&h);

    /* A max of zero holds nothing. */
    heap_init(&h, 0, item_before, NULL);
    ck_assert_int_eq(heap_push(&h, &items[0]), HERALD_ERR_FULL);
    heap_free(&h);
}
END_TEST

START_TEST(test_empty)
{
    item it = {1, 0, 0};
    heap h;

    heap_init(&h, 8, item_before, item_moved);
    ck_assert_uint_eq(heap_len(&h), 0);
    ck_assert_ptr_null(heap_peek(&h));
    ck_assert_ptr_null(heap_pop(&h));
    ck_assert_ptr_null(heap_remove(&h, 0));
    ck_assert_ptr_null(heap_at(&h, 0));
    /* Empty again after one item went in and out. */
    ck_assert_int_eq(heap_push(&h, &it), HERALD_OK);
    ck_assert_uint_eq(it.idx, 0);
    ck_assert_ptr_eq(heap_pop(&h), &it);
    ck_assert_ptr_null(heap_pop(&h));
    ck_assert_ptr_null(heap_peek(&h));
    heap_free(&h);
    heap_free(&h); /* Freeing twice is harmless. */
}
END_TEST

START_TEST(test_clear_and_reuse)
{
    item items[10];
    heap h;

    heap_init(&h, 10, item_before, item_moved);
    for (unsigned i = 0; i < 10; i++) {
        items[i].key = (int)i;
        items[i].seq = i;
        ck_assert_int_eq(heap_push(&h, &items[i]), HERALD_OK);
    }
    heap_clear(&h);
    ck_assert_uint_eq(heap_len(&h), 0);
    ck_assert_ptr_null(heap_peek(&h));
    ck_assert_int_eq(heap_push(&h, &items[5]), HERALD_OK);
    ck_assert_ptr_eq(heap_peek(&h), &items[5]);
    heap_free(&h);
    /* Usable after free, as a buf is. */
    ck_assert_int_eq(heap_push(&h, &items[2]), HERALD_OK);
    ck_assert_ptr_eq(heap_pop(&h), &items[2]);
    heap_free(&h);
}
END_TEST

int main(void)
{
    const check_case cases[] = {
        {"random_against_model", test_random_against_model},
        {"ties_fifo_by_sequence", test_ties_fifo_by_sequence},
        {"ties_without_sequence", test_ties_without_sequence},
        {"remove_each_index", test_remove_each_index},
        {"max", test_max},
        {"empty", test_empty},
        {"clear_and_reuse", test_clear_and_reuse},
    };
    Suite *s = suite_create("heap");

    check_suite_add(s, cases, CHECK_N_CASES(cases), NULL, NULL);
    return check_suite_run(s);
}
