/*
 * check_log.c: tests of core/log's rate-limited lines (log_write_limited()),
 * which keep a target outage from flooding the log: one line per key per
 * interval, the count of the suppressed ones on the next line written for
 * the key, and the same from many threads at once. stderr is redirected
 * to a temporary file and read back.
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#include "tests/check_main.h"

/* An hour: no interval passes during a test. */
#define HOUR_MS 3600000
#define THREADS 4
#define PER_THREAD 1000

static char path[] = "/tmp/check_log_XXXXXX";
static int saved_stderr = -1;

static void setup(void)
{
    int fd = mkstemp(path);

    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
    log_init(LOG_LEVEL_INFO, LOG_FORMAT_TEXT);
}

static void teardown(void)
{
    fflush(stderr);
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    unlink(path);
    strcpy(path, "/tmp/check_log_XXXXXX");
}

/* The captured lines containing needle. */
static int count_lines(const char *needle)
{
    char line[1024];
    int n = 0;
    FILE *f;

    fflush(stderr);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    while (fgets(line, sizeof line, f))
        if (strstr(line, needle))
            n++;
    fclose(f);
    return n;
}

START_TEST(test_one_line_per_key_per_interval)
{
    for (int i = 0; i < 500; i++) {
        log_write_limited(LOG_LEVEL_WARN, "publisher", LOG_TARGET("t1"),
                          "skip:t1:circuit_open", HOUR_MS,
                          "skipped: circuit_open");
        log_write_limited(LOG_LEVEL_WARN, "publisher", LOG_TARGET("t2"),
                          "skip:t2:circuit_open", HOUR_MS,
                          "skipped: circuit_open");
    }
    ck_assert_int_eq(count_lines("skipped: circuit_open"), 2);
    ck_assert_int_eq(count_lines("target=t1"), 1);
    ck_assert_int_eq(count_lines("target=t2"), 1);
}
END_TEST

START_TEST(test_next_line_counts_suppressed)
{
    for (int i = 0; i < 5; i++)
        log_write_limited(LOG_LEVEL_WARN, "job", LOG_TARGET("t3"), "job:t3",
                          HOUR_MS, "retrying");
    /* Interval 0: due at once, and it reports the 4 suppressed lines. */
    log_write_limited(LOG_LEVEL_WARN, "job", LOG_TARGET("t3"), "job:t3", 0,
                      "retrying");
    ck_assert_int_eq(count_lines("retrying"), 2);
    ck_assert_int_eq(count_lines("(suppressed 4 similar)"), 1);
}
END_TEST

START_TEST(test_below_level_not_counted)
{
    log_write_limited(LOG_LEVEL_DEBUG, "job", NULL, "dbg", HOUR_MS, "quiet");
    ck_assert_int_eq(count_lines("quiet"), 0);
}
END_TEST

static void *limited_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        log_write_limited(LOG_LEVEL_ERROR, "publisher", LOG_TARGET("t4"),
                          "publish:t4", HOUR_MS, "delivery failed");
    return NULL;
}

START_TEST(test_threads_share_the_limit)
{
    pthread_t th[THREADS];
    char want[64];

    for (int i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, limited_writer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    log_write_limited(LOG_LEVEL_ERROR, "publisher", LOG_TARGET("t4"),
                      "publish:t4", 0, "delivery failed");
    snprintf(want, sizeof want, "(suppressed %d similar)",
             THREADS * PER_THREAD - 1);
    ck_assert_int_eq(count_lines("delivery failed"), 2);
    ck_assert_int_eq(count_lines(want), 1);
}
END_TEST

int main(void)
{
    const check_case cases[] = {
        {"one_line_per_key_per_interval", test_one_line_per_key_per_interval},
        {"next_line_counts_suppressed", test_next_line_counts_suppressed},
        {"below_level_not_counted", test_below_level_not_counted},
        {"threads_share_the_limit", test_threads_share_the_limit},
    };
    Suite *s = suite_create("log");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    return check_suite_run(s);
}
