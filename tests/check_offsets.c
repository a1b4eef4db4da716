/*
 * check_offsets.c: the per-partition offset tracker (worker/offsets.c):
 * the commit point with in-order and out-of-order completion, gaps, never
 * backwards, unknown offsets, idempotent done, the oldest unfinished age,
 * commit bookkeeping, the ring wrapping and its cap, and a randomised test
 * of any completion order with revoke points across fresh trackers.
 *
 * The randomised test prints its seed on failure; set HERALD_TEST_SEED to
 * replay one.
 */
#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/offsets.h"

START_TEST(test_basic)
{
    offset_tracker *t = offset_tracker_new("alerts", 3);
    int64_t point = 0;

    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(offset_tracker_topic(t), "alerts");
    ck_assert_int_eq(offset_tracker_partition(t), 3);
    ck_assert_int_eq(offset_tracker_commit_point(t), -1);
    ck_assert_uint_eq(offset_tracker_inflight(t), 0);
    ck_assert(!offset_tracker_commit_due(t, &point));

    for (int64_t o = 0; o < 3; o++)
        ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 0);
    ck_assert_uint_eq(offset_tracker_inflight(t), 3);
    ck_assert_uint_eq(offset_tracker_tracked(t), 3);

    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 1);
    ck_assert_int_eq(offset_tracker_done(t, 1), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 2), HERALD_OK);
    /* Kafka semantics: the next offset to consume. */
    ck_assert_int_eq(offset_tracker_commit_point(t), 3);
    ck_assert_uint_eq(offset_tracker_inflight(t), 0);
    ck_assert_uint_eq(offset_tracker_tracked(t), 0);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_new_invalid)
{
    ck_assert_ptr_null(offset_tracker_new(NULL, 0));
    ck_assert_ptr_null(offset_tracker_new("alerts", -1));
    offset_tracker_destroy(NULL);
}
END_TEST

START_TEST(test_gaps)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    /* Compaction or transaction markers leave holes between offsets. */
    ck_assert_int_eq(offset_tracker_add(t, 10, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 13, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 20, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 10);
    ck_assert_int_eq(offset_tracker_done(t, 13), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 10);
    ck_assert_int_eq(offset_tracker_done(t, 10), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 20);
    ck_assert_int_eq(offset_tracker_done(t, 20), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 21);

    /* The next offset may jump: the commit point follows it. */
    ck_assert_int_eq(offset_tracker_add(t, 30, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 30);
    ck_assert_int_eq(offset_tracker_add(t, 35, 0), HERALD_OK);
    /* A hole above the commit point was never added. */
    ck_assert_int_eq(offset_tracker_done(t, 32), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(offset_tracker_commit_point(t), 30);
    ck_assert_uint_eq(offset_tracker_inflight(t), 2);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_out_of_order)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    for (int64_t o = 100; o < 110; o++)
        ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    /* A slow first job pins the commit point, however many finish. */
    for (int64_t o = 109; o > 100; o--) {
        ck_assert_int_eq(offset_tracker_done(t, o), HERALD_OK);
        ck_assert_int_eq(offset_tracker_commit_point(t), 100);
    }
    ck_assert_uint_eq(offset_tracker_inflight(t), 1);
    ck_assert_uint_eq(offset_tracker_tracked(t), 10);
    ck_assert_int_eq(offset_tracker_done(t, 100), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 110);
    ck_assert_uint_eq(offset_tracker_tracked(t), 0);

    /* A hole in the middle of the done run. */
    for (int64_t o = 110; o < 115; o++)
        ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 110), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 111), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 113), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 114), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 112);
    ck_assert_int_eq(offset_tracker_done(t, 112), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 115);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_never_backwards)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    ck_assert_int_eq(offset_tracker_add(t, -1, 0), HERALD_ERR_INVALID);
    ck_assert_int_eq(offset_tracker_commit_point(t), -1);
    ck_assert_int_eq(offset_tracker_add(t, 5, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 5, 0), HERALD_ERR_INVALID);
    ck_assert_int_eq(offset_tracker_add(t, 4, 0), HERALD_ERR_INVALID);
    ck_assert_uint_eq(offset_tracker_inflight(t), 1);
    ck_assert_int_eq(offset_tracker_done(t, 5), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 6);
    /* An offset below the commit point cannot be added again. */
    ck_assert_int_eq(offset_tracker_add(t, 3, 0), HERALD_ERR_INVALID);
    ck_assert_int_eq(offset_tracker_commit_point(t), 6);
    ck_assert_uint_eq(offset_tracker_inflight(t), 0);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_not_found)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(offset_tracker_add(t, 50, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 51, 0), HERALD_OK);
    /* Below the first offset: e.g. a late job of an older assignment. */
    ck_assert_int_eq(offset_tracker_done(t, 49), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(offset_tracker_done(t, 52), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(offset_tracker_done(t, -3), HERALD_ERR_NOT_FOUND);
    ck_assert_int_eq(offset_tracker_commit_point(t), 50);
    ck_assert_uint_eq(offset_tracker_inflight(t), 2);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_idempotent_done)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    for (int64_t o = 0; o < 4; o++)
        ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    /* Not at the front: stays tracked as done. */
    ck_assert_int_eq(offset_tracker_done(t, 2), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 2), HERALD_OK);
    ck_assert_uint_eq(offset_tracker_inflight(t), 3);
    /* At the front: popped, then below the commit point. */
    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert_uint_eq(offset_tracker_inflight(t), 2);
    ck_assert_int_eq(offset_tracker_commit_point(t), 1);
    ck_assert_int_eq(offset_tracker_done(t, 1), HERALD_OK);
    ck_assert_int_eq(offset_tracker_commit_point(t), 3);
    ck_assert_int_eq(offset_tracker_done(t, 2), HERALD_OK);
    ck_assert_int_eq(offset_tracker_done(t, 1), HERALD_OK);
    ck_assert_uint_eq(offset_tracker_inflight(t), 1);
    ck_assert_int_eq(offset_tracker_commit_point(t), 3);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_oldest_age)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);

    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 1000), 0);
    ck_assert_int_eq(offset_tracker_add(t, 0, 100), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 1, 150), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, 2, 180), HERALD_OK);
    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 200), 100);
    /* A done later job does not change the oldest unfinished one. */
    ck_assert_int_eq(offset_tracker_done(t, 1), HERALD_OK);
    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 200), 100);
    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 200), 20);
    /* A clock read before the add gives 0, never a negative age. */
    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 50), 0);
    ck_assert_int_eq(offset_tracker_done(t, 2), HERALD_OK);
    ck_assert_int_eq(offset_tracker_oldest_age_ms(t, 10000), 0);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_commit_due)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);
    int64_t point = -7;

    ck_assert_int_eq(offset_tracker_committed(t), -1);
    ck_assert_int_eq(offset_tracker_add(t, 0, 0), HERALD_OK);
    /* Nothing final yet, but the start offset itself is committable. */
    ck_assert(offset_tracker_commit_due(t, &point));
    ck_assert_int_eq(point, 0);
    offset_tracker_mark_committed(t, 0);
    ck_assert(!offset_tracker_commit_due(t, &point));

    ck_assert_int_eq(offset_tracker_add(t, 1, 0), HERALD_OK);
    ck_assert(!offset_tracker_commit_due(t, &point));
    ck_assert_int_eq(offset_tracker_done(t, 1), HERALD_OK);
    ck_assert(!offset_tracker_commit_due(t, &point));
    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert(offset_tracker_commit_due(t, &point));
    ck_assert_int_eq(point, 2);
    ck_assert(offset_tracker_commit_due(t, NULL));
    offset_tracker_mark_committed(t, 2);
    ck_assert(!offset_tracker_commit_due(t, &point));
    /* A stale commit result never moves the record backwards. */
    offset_tracker_mark_committed(t, 1);
    ck_assert_int_eq(offset_tracker_committed(t), 2);
    ck_assert(!offset_tracker_commit_due(t, &point));
    /* A failed commit forgets the record: the same point is due again. */
    offset_tracker_mark_committed(t, -1);
    ck_assert_int_eq(offset_tracker_committed(t), -1);
    point = -7;
    ck_assert(offset_tracker_commit_due(t, &point));
    ck_assert_int_eq(point, 2);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_ring_wrap)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);
    int64_t next = 0;
    int64_t low = 0;

    /*
     * Keep about 100 jobs in flight while 5000 pass: the front moves round
     * the ring many times, with growth while a slow job pins the front.
     */
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 100; i++)
            ck_assert_int_eq(offset_tracker_add(t, next++, 0), HERALD_OK);
        /* Finish all but the lowest, then the lowest. */
        for (int64_t o = next - 1; o > low; o--)
            ck_assert_int_eq(offset_tracker_done(t, o), HERALD_OK);
        ck_assert_int_eq(offset_tracker_commit_point(t), low);
        ck_assert_int_eq(offset_tracker_done(t, low), HERALD_OK);
        ck_assert_int_eq(offset_tracker_commit_point(t), next);
        low = next;
    }
    ck_assert_uint_eq(offset_tracker_tracked(t), 0);
    offset_tracker_destroy(t);
}
END_TEST

START_TEST(test_cap)
{
    offset_tracker *t = offset_tracker_new("alerts", 0);
    int64_t o;

    for (o = 0; o < OFFSET_TRACKER_MAX_TRACKED; o++)
        ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_ERR_FULL);
    ck_assert_int_eq(offset_tracker_commit_point(t), 0);
    ck_assert_int_eq(offset_tracker_done(t, 0), HERALD_OK);
    ck_assert_int_eq(offset_tracker_add(t, o, 0), HERALD_OK);
    ck_assert_uint_eq(offset_tracker_tracked(t), OFFSET_TRACKER_MAX_TRACKED);
    offset_tracker_destroy(t);
}
END_TEST

/* splitmix64: small, seedable, good enough to shuffle test orders. */
static uint64_t rnd_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
    return rnd_next(s) % n;
}

#define RAND_MAX_MSGS 256
#define RAND_ROUNDS 2000

/*
 * One partition of n messages (random offsets with gaps) consumed by a
 * sequence of assignments. Each assignment makes a fresh tracker, re-reads
 * from the committed offset (so unfinished and later jobs come again, as
 * after a rebalance), and interleaves adds with completions in random order
 * until a random revoke point, where the commit point is taken and checked:
 * it is not below the previous commit (never backwards), every offset below
 * it was finished in some assignment (never passes an unfinished job), and
 * it equals the lowest unfinished offset of this assignment (as far as it
 * can go). Throughout, the tracker is compared with a plain array model.
 * Returns NULL or a description of the first violation.
 */
static const char *rand_round(uint64_t seed, char *why, size_t why_size)
{
    uint64_t s = seed;
    int64_t offs[RAND_MAX_MSGS];
    bool ever_done[RAND_MAX_MSGS] = {false};
    size_t n = 1 + rnd_below(&s, RAND_MAX_MSGS);
    int64_t committed = -1; /* Nothing committed: start at offs[0]. */
    int revokes = 0;

    offs[0] = (int64_t)rnd_below(&s, 1000);
    for (size_t i = 1; i < n; i++)
        offs[i] = offs[i - 1] + 1 +
                  (rnd_below(&s, 4) == 0 ? (int64_t)rnd_below(&s, 5) : 0);

    for (;;) {
        offset_tracker *t = offset_tracker_new("alerts", 0);
        bool done[RAND_MAX_MSGS] = {false};
        size_t start = 0;
        size_t next;
        size_t low; /* Model: index of the lowest unfinished added job. */
        size_t unfinished = 0;
        int64_t last_point = -1;
        bool revoked = false;

        if (!t)
            return "out of memory";
        /* Resume from the committed offset, as Kafka would. */
        while (committed >= 0 && start < n && offs[start] < committed)
            start++;
        next = start;
        low = start;

        while (!revoked) {
            uint64_t action = rnd_below(&s, 100);
            int64_t point;
            int64_t want;

            if (next < n && (action < 45 || low == next)) {
                if (offset_tracker_add(t, offs[next], 0) != HERALD_OK) {
                    snprintf(why, why_size, "add %" PRId64 " failed",
                             offs[next]);
                    goto fail;
                }
                next++;
                unfinished++;
            } else if (low < next && action < 97) {
                /* Finish a random added job, done or not (idempotent). */
                size_t i = low + rnd_below(&s, next - low);

                if (offset_tracker_done(t, offs[i]) != HERALD_OK) {
                    snprintf(why, why_size, "done %" PRId64 " failed", offs[i]);
                    goto fail;
                }
                unfinished -= !done[i];
                done[i] = true;
                ever_done[i] = true;
                while (low < next && done[low])
                    low++;
            } else if (revokes < 8) {
                revoked = true;
                revokes++;
            } else if (low == next && next == n) {
                revoked = true; /* Everything finished: the last check. */
            }

            point = offset_tracker_commit_point(t);
            if (next == start)
                want = -1;
            else if (low < next)
                want = offs[low];
            else
                want = offs[next - 1] + 1;
            if (point != want) {
                snprintf(why, why_size,
                         "commit point %" PRId64 ", model %" PRId64, point,
                         want);
                goto fail;
            }
            if (point < last_point) {
                snprintf(why, why_size,
                         "commit point went back from %" PRId64 " to %" PRId64,
                         last_point, point);
                goto fail;
            }
            last_point = point;
            if (offset_tracker_inflight(t) != unfinished) {
                snprintf(why, why_size, "inflight %zu, model %zu",
                         offset_tracker_inflight(t), unfinished);
                goto fail;
            }
            /* Offsets in a gap were never added. */
            if (next > start + 1 && offs[next - 1] - offs[next - 2] > 1 &&
                offs[next - 1] - 1 >= point &&
                offset_tracker_done(t, offs[next - 1] - 1) !=
                    HERALD_ERR_NOT_FOUND) {
                snprintf(why, why_size, "done in a gap was accepted");
                goto fail;
            }
        }

        /* The revoke point: what the old owner commits synchronously. */
        {
            int64_t point = offset_tracker_commit_point(t);

            offset_tracker_destroy(t);
            t = NULL;
            if (point < 0)
                point = committed; /* Nothing added: nothing to commit. */
            if (point < committed) {
                snprintf(why, why_size,
                         "revoke commit %" PRId64 " below %" PRId64, point,
                         committed);
                return why;
            }
            for (size_t i = 0; i < n && offs[i] < point; i++) {
                if (!ever_done[i]) {
                    snprintf(why, why_size,
                             "commit %" PRId64 " passes unfinished %" PRId64,
                             point, offs[i]);
                    return why;
                }
            }
            for (size_t i = start; i < next; i++) {
                if (!done[i] && offs[i] < point) {
                    snprintf(why, why_size,
                             "commit %" PRId64 " passes unfinished %" PRId64,
                             point, offs[i]);
                    return why;
                }
            }
            committed = point;
            if (next == n && low == n) {
                if (committed != offs[n - 1] + 1) {
                    snprintf(why, why_size,
                             "final commit %" PRId64 ", want %" PRId64,
                             committed, offs[n - 1] + 1);
                    return why;
                }
                return NULL;
            }
        }
        continue;
    fail:
        offset_tracker_destroy(t);
        return why;
    }
}

START_TEST(test_random_revokes)
{
    const char *env = getenv("HERALD_TEST_SEED");
    uint64_t base = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    uint64_t s = base;
    char why[256];

    for (int r = 0; r < RAND_ROUNDS; r++) {
        uint64_t seed = rnd_next(&s);
        const char *err = rand_round(seed, why, sizeof(why));

        ck_assert_msg(err == NULL,
                      "round %d seed 0x%016" PRIx64
                      " (replay: HERALD_TEST_SEED=%" PRIu64 "): %s",
                      r, seed, base, err ? err : "");
    }
}
END_TEST

static Suite *offsets_suite(void)
{
    Suite *s = suite_create("offsets");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"basic", test_basic},
        {"new_invalid", test_new_invalid},
        {"gaps", test_gaps},
        {"out_of_order", test_out_of_order},
        {"never_backwards", test_never_backwards},
        {"not_found", test_not_found},
        {"idempotent_done", test_idempotent_done},
        {"oldest_age", test_oldest_age},
        {"commit_due", test_commit_due},
        {"ring_wrap", test_ring_wrap},
        {"cap", test_cap},
        {"random_revokes", test_random_revokes},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(offsets_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
