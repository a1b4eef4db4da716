/*
 * check_backoff.c: full-jitter backoff (publishers/backoff.c): bounds over
 * many draws, growth of the cap and its ceiling, seeds; Retry-After as
 * delay-seconds and as the three HTTP-date forms of RFC 9110 section
 * 5.6.7, past dates, the cap and garbage.
 *
 * The epoch values were computed with Python's calendar.timegm():
 * 1994-11-06 08:49:37 UTC is 784111777, 2030-01-01 00:00:00 UTC is
 * 1893456000.
 */
#include <check.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>

#include "publishers/backoff.h"

#define DRAWS 4000

/* 1994-11-06 08:49:37 UTC, the example date of RFC 9110. */
#define RFC_DATE 784111777
/* 2030-01-01 00:00:00 UTC. */
#define Y2030 1893456000

START_TEST(test_delay_bounds)
{
    uint64_t seed = 42;

    for (int attempt = 1; attempt <= 20; attempt++) {
        int64_t cap = 100LL << (attempt - 1);
        int64_t top = 0;

        if (cap > 10000)
            cap = 10000;
        for (int i = 0; i < DRAWS; i++) {
            int64_t d = backoff_delay_ms(attempt, 100, 10000, &seed);

            ck_assert_int_ge(d, 0);
            ck_assert_int_le(d, cap);
            if (d > top)
                top = d;
        }
        /*
         * The cap grows with the attempt: over DRAWS uniform draws the
         * largest lies above half the cap unless the jitter is broken
         * (chance 2^-4000 otherwise).
         */
        ck_assert_int_gt(top, cap / 2);
    }
}
END_TEST

START_TEST(test_delay_ceiling)
{
    uint64_t seed = 7;
    int64_t top = 0;

    /* Huge attempt numbers must neither overflow nor pass max_ms. */
    for (int i = 0; i < DRAWS; i++) {
        int64_t d = backoff_delay_ms(INT_MAX - i, 200, 5000, &seed);

        ck_assert_int_ge(d, 0);
        ck_assert_int_le(d, 5000);
        if (d > top)
            top = d;
    }
    ck_assert_int_gt(top, 2500);
    /* max below initial: the max wins. */
    for (int i = 0; i < 100; i++)
        ck_assert_int_le(backoff_delay_ms(1, 1000, 300, &seed), 300);
}
END_TEST

START_TEST(test_delay_seed)
{
    uint64_t a = 12345;
    uint64_t b = 12345;
    uint64_t z = 0;
    int differ = 0;
    int64_t first;

    /* The same seed gives the same sequence; the seed advances. */
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(backoff_delay_ms(5, 100, 100000, &a),
                         backoff_delay_ms(5, 100, 100000, &b));
    ck_assert(a != 12345);
    /* A zero seed is replaced, not stuck at zero. */
    first = backoff_delay_ms(10, 100, 100000, &z);
    ck_assert(z != 0);
    for (int i = 0; i < 100; i++)
        differ |= backoff_delay_ms(10, 100, 100000, &z) != first;
    ck_assert(differ);
}
END_TEST

START_TEST(test_delay_degenerate)
{
    uint64_t seed = 1;

    ck_assert_int_eq(backoff_delay_ms(3, 0, 1000, &seed), 0);
    ck_assert_int_eq(backoff_delay_ms(3, 100, 0, &seed), 0);
    ck_assert_int_eq(backoff_delay_ms(3, -5, -5, &seed), 0);
    /* Attempt 0 or below counts as the first attempt. */
    for (int i = 0; i < 100; i++) {
        ck_assert_int_le(backoff_delay_ms(0, 100, 10000, &seed), 100);
        ck_assert_int_le(backoff_delay_ms(-3, 100, 10000, &seed), 100);
    }
}
END_TEST

START_TEST(test_retry_after_seconds)
{
    ck_assert_int_eq(backoff_parse_retry_after("120", 0), 120000);
    ck_assert_int_eq(backoff_parse_retry_after("0", 0), 0);
    ck_assert_int_eq(backoff_parse_retry_after(" 5\t", 0), 5000);
    ck_assert_int_eq(backoff_parse_retry_after("300", 0), 300000);
    ck_assert_int_eq(backoff_parse_retry_after("301", 0),
                     BACKOFF_RETRY_AFTER_CAP_MS);
    ck_assert_int_eq(backoff_parse_retry_after("99999999999999999999999999", 0),
                     BACKOFF_RETRY_AFTER_CAP_MS);
}
END_TEST

START_TEST(test_retry_after_dates)
{
    /* The three forms of the same instant, two minutes ahead. */
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                               RFC_DATE - 120),
                     120000);
    ck_assert_int_eq(backoff_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT",
                                               RFC_DATE - 120),
                     120000);
    ck_assert_int_eq(
        backoff_parse_retry_after("Sun Nov  6 08:49:37 1994", RFC_DATE - 120),
        120000);
    /* asctime with a two-digit day. */
    ck_assert_int_eq(
        backoff_parse_retry_after("Wed Nov 16 08:49:37 1994", RFC_DATE - 120),
        BACKOFF_RETRY_AFTER_CAP_MS);
    ck_assert_int_eq(backoff_parse_retry_after("Wed Nov 16 08:49:37 1994",
                                               RFC_DATE + 10 * 86400 - 7),
                     7000);
    /* A leap day parses (2024-02-29 00:00:00 UTC is 1709164800). */
    ck_assert_int_eq(backoff_parse_retry_after("Thu, 29 Feb 2024 00:00:00 GMT",
                                               1709164800 - 1),
                     1000);
}
END_TEST

START_TEST(test_retry_after_rfc850_year)
{
    /* Two-digit years near now are this century... */
    ck_assert_int_eq(backoff_parse_retry_after(
                         "Tuesday, 01-Jan-30 00:00:00 GMT", Y2030 - 120),
                     120000);
    /* ...and more than 50 years ahead means the previous century. */
    ck_assert_int_eq(backoff_parse_retry_after(
                         "Tuesday, 01-Jan-80 00:00:00 GMT", Y2030 - 120),
                     0);
    ck_assert_int_eq(backoff_parse_retry_after("Monday, 01-Jan-79 00:00:00 GMT",
                                               Y2030 - 120),
                     BACKOFF_RETRY_AFTER_CAP_MS);
}
END_TEST

START_TEST(test_retry_after_past_and_cap)
{
    ck_assert_int_eq(
        backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", RFC_DATE),
        0);
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                               RFC_DATE + 3600),
                     0);
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                               RFC_DATE - 3600),
                     BACKOFF_RETRY_AFTER_CAP_MS);
    ck_assert_int_eq(backoff_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT",
                                               RFC_DATE - 300),
                     300000);
}
END_TEST

START_TEST(test_retry_after_garbage)
{
    static const char *const bad[] = {
        "",
        "   ",
        "-5",
        "+5",
        "1.5",
        "5s",
        "abc",
        "Sun, 06 Nov 1994 08:49:37 UTC",
        "Sun, 6 Nov 1994 08:49:37 GMT",
        "Sun, 31 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Xyz, 06 Nov 1994 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 GMT trailing",
        "Sunday, 06-Nov-1994 08:49:37 GMT",
        "Sun Nov 6 08:49:37 1994",
        "sun, 06 nov 1994 08:49:37 gmt",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(backoff_parse_retry_after(bad[i], RFC_DATE - 10) == -1,
                      "accepted \"%s\"", bad[i]);
    ck_assert_int_eq(backoff_parse_retry_after(NULL, 0), -1);
}
END_TEST

static Suite *backoff_suite(void)
{
    Suite *s = suite_create("backoff");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"delay_bounds", test_delay_bounds},
        {"delay_ceiling", test_delay_ceiling},
        {"delay_seed", test_delay_seed},
        {"delay_degenerate", test_delay_degenerate},
        {"retry_after_seconds", test_retry_after_seconds},
        {"retry_after_dates", test_retry_after_dates},
        {"retry_after_rfc850_year", test_retry_after_rfc850_year},
        {"retry_after_past_and_cap", test_retry_after_past_and_cap},
        {"retry_after_garbage", test_retry_after_garbage},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(backoff_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
