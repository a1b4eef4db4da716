/*
 * check_stats.c: tests of the /stats aggregator (core/stats.c): totals,
 * success rates, quantile precision, annotation, bounds and concurrency.
 */
#include <check.h>
#include <json-c/json.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/stats.h"

/* Follows a path of object keys; fails the test when one is missing. */
static json_object *get(json_object *o, const char *a, const char *b,
                        const char *c)
{
    const char *keys[3] = {a, b, c};
    int i;

    for (i = 0; i < 3 && keys[i]; i++) {
        json_object *next;
        ck_assert_msg(json_object_object_get_ex(o, keys[i], &next),
                      "missing key %s", keys[i]);
        o = next;
    }
    return o;
}

START_TEST(test_empty)
{
    stats *st = stats_new();
    json_object *j;

    ck_assert_ptr_nonnull(st);
    j = stats_to_json(st, NULL, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_object_get_int64(get(j, "publishes", "total", NULL)),
                     0);
    ck_assert_ptr_null(get(j, "publishes", "duration_ms", "p50"));
    ck_assert_ptr_null(get(j, "deliveries", "success_rate", NULL));
    ck_assert_int_eq(json_object_object_length(get(j, "targets", NULL, NULL)),
                     0);
    ck_assert_double_eq(stats_target_quantile(st, "none", 0.5), -1);
    json_object_put(j);
    stats_destroy(st);
    stats_destroy(NULL);
}
END_TEST

START_TEST(test_outcomes_and_rates)
{
    stats *st = stats_new();
    json_object *j;
    json_object *t;

    stats_record(st, "slack", true, 10);
    stats_record(st, "slack", true, 20);
    stats_record(st, "slack", false, 30);
    stats_record(st, "pagerduty", false, 5);
    stats_record_publish(st, STATS_PUBLISH_SUCCESS, 12);
    stats_record_publish(st, STATS_PUBLISH_PARTIAL_SUCCESS, 40);
    stats_record_publish(st, STATS_PUBLISH_FAILURE, 41);
    stats_record_publish(st, STATS_PUBLISH_FAILURE, 42);
    j = stats_to_json(st, NULL, NULL);
    ck_assert_ptr_nonnull(j);
    ck_assert_int_eq(json_object_get_int64(get(j, "publishes", "total", NULL)),
                     4);
    ck_assert_int_eq(
        json_object_get_int64(get(j, "publishes", "failure", NULL)), 2);
    ck_assert_int_eq(
        json_object_get_int64(get(j, "publishes", "partial_success", NULL)), 1);
    ck_assert_int_eq(json_object_get_int64(get(j, "deliveries", "total", NULL)),
                     4);
    ck_assert_double_eq_tol(
        json_object_get_double(get(j, "deliveries", "success_rate", NULL)), 0.5,
        1e-9);
    t = get(j, "targets", "slack", NULL);
    ck_assert_int_eq(json_object_get_int64(get(t, "delivered", NULL, NULL)), 2);
    ck_assert_int_eq(json_object_get_int64(get(t, "failed", NULL, NULL)), 1);
    ck_assert_double_eq_tol(
        json_object_get_double(get(t, "success_rate", NULL, NULL)), 2.0 / 3.0,
        1e-9);
    ck_assert_double_eq_tol(
        json_object_get_double(get(t, "duration_ms", "max", NULL)), 30, 1e-9);
    ck_assert_double_eq_tol(
        json_object_get_double(get(t, "duration_ms", "mean", NULL)), 20, 1e-9);
    t = get(j, "targets", "pagerduty", NULL);
    ck_assert_double_eq(
        json_object_get_double(get(t, "success_rate", NULL, NULL)), 0);
    /* A single sample: every quantile is that sample (clamped to min/max). */
    ck_assert_double_eq_tol(
        json_object_get_double(get(t, "duration_ms", "p99", NULL)), 5, 1e-9);
    json_object_put(j);
    stats_destroy(st);
}
END_TEST

START_TEST(test_quantile_precision)
{
    stats *st = stats_new();
    double p50, p99;
    int i;

    /* 1..1000 ms: the exact nearest-rank p50 is 500, p99 is 990. */
    for (i = 1; i <= 1000; i++)
        stats_record(st, "t", true, i);
    p50 = stats_target_quantile(st, "t", 0.5);
    p99 = stats_target_quantile(st, "t", 0.99);
    ck_assert_msg(fabs(p50 - 500) / 500 <= 0.023, "p50 %f", p50);
    ck_assert_msg(fabs(p99 - 990) / 990 <= 0.023, "p99 %f", p99);
    ck_assert_double_eq(stats_target_quantile(st, "t", 1), 1000);
    /* Out-of-range durations are clamped, never lost. */
    stats_record(st, "edge", true, NAN);
    stats_record(st, "edge", true, -3);
    stats_record(st, "edge", true, 1e12);
    ck_assert_double_eq(stats_target_quantile(st, "edge", 0.5), 0);
    ck_assert_double_eq(stats_target_quantile(st, "edge", 1), 1e12);
    stats_destroy(st);
}
END_TEST

typedef struct annotate_log {
    char names[4][16];
    int n;
} annotate_log;

static void annotate(void *opaque, const char *target, json_object *obj)
{
    annotate_log *log = opaque;

    ck_assert_int_lt(log->n, 4);
    snprintf(log->names[log->n++], sizeof(log->names[0]), "%s", target);
    json_object_object_add(obj, "breaker", json_object_new_string("closed"));
}

START_TEST(test_annotate_in_name_order)
{
    stats *st = stats_new();
    annotate_log log = {.n = 0};
    json_object *j;

    stats_record(st, "zeta", true, 1);
    stats_record(st, "alpha", true, 1);
    stats_record(st, "mid", false, 1);
    j = stats_to_json(st, annotate, &log);
    ck_assert_int_eq(log.n, 3);
    ck_assert_str_eq(log.names[0], "alpha");
    ck_assert_str_eq(log.names[1], "mid");
    ck_assert_str_eq(log.names[2], "zeta");
    ck_assert_str_eq(
        json_object_get_string(get(j, "targets", "mid", "breaker")), "closed");
    json_object_put(j);
    stats_destroy(st);
}
END_TEST

START_TEST(test_target_cap)
{
    stats *st = stats_new();
    json_object *j;
    char name[32];
    int i;

    for (i = 0; i <= STATS_MAX_TARGETS; i++) {
        snprintf(name, sizeof(name), "t%05d", i);
        stats_record(st, name, true, 1);
    }
    j = stats_to_json(st, NULL, NULL);
    ck_assert_int_eq(json_object_object_length(get(j, "targets", NULL, NULL)),
                     STATS_MAX_TARGETS);
    ck_assert_int_eq(json_object_get_int64(get(j, "deliveries", "total", NULL)),
                     STATS_MAX_TARGETS + 1);
    json_object_put(j);
    stats_destroy(st);
}
END_TEST

#define N_THREADS 4
#define N_RECORDS 2000

static void *record_thread(void *arg)
{
    stats *st = arg;
    int i;

    for (i = 0; i < N_RECORDS; i++) {
        stats_record(st, i % 2 ? "a" : "b", i % 4 != 0, i % 50);
        if (i % 200 == 0)
            json_object_put(stats_to_json(st, NULL, NULL));
    }
    return NULL;
}

START_TEST(test_concurrent_records)
{
    stats *st = stats_new();
    pthread_t th[N_THREADS];
    json_object *j;
    int i;

    for (i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, record_thread, st), 0);
    for (i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    j = stats_to_json(st, NULL, NULL);
    ck_assert_int_eq(json_object_get_int64(get(j, "deliveries", "total", NULL)),
                     N_THREADS * N_RECORDS);
    /* i % 4 == 0 fails: a quarter of the legs. */
    ck_assert_int_eq(
        json_object_get_int64(get(j, "deliveries", "failed", NULL)),
        N_THREADS * N_RECORDS / 4);
    ck_assert_int_eq(
        json_object_get_int64(get(j, "targets", "a", "deliveries")),
        N_THREADS * N_RECORDS / 2);
    json_object_put(j);
    stats_destroy(st);
}
END_TEST

static Suite *stats_suite(void)
{
    Suite *s = suite_create("stats");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"empty", test_empty},
        {"outcomes_and_rates", test_outcomes_and_rates},
        {"quantile_precision", test_quantile_precision},
        {"annotate_in_name_order", test_annotate_in_name_order},
        {"target_cap", test_target_cap},
        {"concurrent_records", test_concurrent_records},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(stats_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
