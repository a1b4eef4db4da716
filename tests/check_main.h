/*
 * check_main.h: what the Check programs with fixtures and threads share: a
 * suite built from a table of cases, running it to an exit status, and
 * waiting for a condition with a bounded poll (STYLE.md: no sleeps as
 * synchronisation where a condition can be awaited).
 *
 * Header only (static inline): the fixture library does not link Check.
 * Include it once per test program.
 */
#ifndef HERALD_TESTS_CHECK_MAIN_H
#define HERALD_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "publishers/breaker.h"

/*
 * Upper bound of a WAIT_FOR, ms: only reached when a test fails, so it is
 * generous enough for a loaded machine running a sanitizer build.
 */
#define CHECK_WAIT_MS 10000

/* Seconds a test case may take when Check forks (CK_FORK=no ignores it). */
#define CHECK_CASE_TIMEOUT_S 60

/* One test of a suite table. */
typedef struct check_case {
    const char *name;
    const TTest *fn;
} check_case;

#define CHECK_N_CASES(a) (sizeof(a) / sizeof((a)[0]))

/* Sleeps ms milliseconds. Any thread. */
static inline void check_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Polls cond every millisecond for up to CHECK_WAIT_MS; fails the test
 * when it is still false then. Test thread only. */
#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        int64_t until_ = herald_now_ms() + CHECK_WAIT_MS;                      \
        while (!(cond) && herald_now_ms() < until_)                            \
            check_sleep_ms(1);                                                 \
        ck_assert_msg((cond), "timed out waiting for " #cond);                 \
    } while (0)

/*
 * Adds one test case per cases[i] to s, each with the checked fixture
 * setup/teardown (either may be NULL) and CHECK_CASE_TIMEOUT_S. The
 * suite owns the cases; the table is read during the call only.
 */
static inline void check_suite_add(Suite *s, const check_case *cases, size_t n,
                                   SFun setup, SFun teardown)
{
    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(cases[i].name);

        if (setup != NULL || teardown != NULL)
            tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, CHECK_CASE_TIMEOUT_S);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
}

/* Runs s (taking ownership) and returns EXIT_SUCCESS when every test
 * passed, else EXIT_FAILURE. Main thread. */
static inline int check_suite_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
