/*
 * check_metrics.c: tests of the Prometheus registry (core/metrics.c).
 *
 * The registry is process-wide, so every test starts and ends with
 * metrics_shutdown() (a checked fixture) and asserts on the exact exposition
 * text of the families it registers itself.
 */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/metrics.h"

static void setup(void)
{
    metrics_shutdown();
}

static void teardown(void)
{
    metrics_shutdown();
}

/* Renders the registry into a fresh string; caller frees. */
static char *render(void)
{
    buf b;
    char *s;

    buf_init(&b, 1 << 20);
    ck_assert_int_eq(metrics_render(&b), HERALD_OK);
    s = buf_steal(&b);
    ck_assert_ptr_nonnull(s);
    buf_free(&b);
    return s;
}

START_TEST(test_counter_gauge_text)
{
    metric *c = metrics_family(METRIC_COUNTER, "herald_deliveries_total",
                               "Deliveries by target and outcome.",
                               "target,outcome", NULL, 0);
    metric *g = metrics_family(METRIC_GAUGE, "herald_inflight_jobs",
                               "Jobs in flight.", "", NULL, 0);
    char *s;

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(g);
    metrics_add(c, 1, "slack", "delivered");
    metrics_add(c, 2, "slack", "delivered");
    metrics_add(c, 1, "alpha", "give_up");
    metrics_add(c, 0.5, "slack", "retry");
    metrics_set(g, 7);
    metrics_add(g, -2);                       /* Gauges accept signed adds. */
    metrics_add(c, -5, "slack", "delivered"); /* Ignored on a counter. */
    s = render();
    ck_assert_str_eq(
        s, "# HELP herald_deliveries_total Deliveries by target and outcome.\n"
           "# TYPE herald_deliveries_total counter\n"
           "herald_deliveries_total{target=\"alpha\",outcome=\"give_up\"} 1\n"
           "herald_deliveries_total{target=\"slack\",outcome=\"delivered\"} 3\n"
           "herald_deliveries_total{target=\"slack\",outcome=\"retry\"} 0.5\n"
           "# HELP herald_inflight_jobs Jobs in flight.\n"
           "# TYPE herald_inflight_jobs gauge\n"
           "herald_inflight_jobs 5\n");
    free(s);
}
END_TEST

START_TEST(test_histogram_text)
{
    static const double b[] = {0.1, 0.5, INFINITY};
    metric *h =
        metrics_family(METRIC_HISTOGRAM, "herald_publish_duration_seconds",
                       "Publish duration.", "result", b, 3);
    char *s;

    ck_assert_ptr_nonnull(h);
    metrics_observe(h, 0.05, "success");
    metrics_observe(h, 0.1, "success"); /* Upper bounds are inclusive. */
    metrics_observe(h, 0.3, "success");
    metrics_observe(h, 2, "success");
    metrics_add(h, 1, "success"); /* Wrong type: ignored. */
    s = render();
    ck_assert_str_eq(
        s, "# HELP herald_publish_duration_seconds Publish duration.\n"
           "# TYPE herald_publish_duration_seconds histogram\n"
           "herald_publish_duration_seconds_bucket{result=\"success\","
           "le=\"0.1\"} 2\n"
           "herald_publish_duration_seconds_bucket{result=\"success\","
           "le=\"0.5\"} 3\n"
           "herald_publish_duration_seconds_bucket{result=\"success\","
           "le=\"+Inf\"} 4\n"
           "herald_publish_duration_seconds_sum{result=\"success\"} 2.45\n"
           "herald_publish_duration_seconds_count{result=\"success\"} 4\n");
    free(s);
}
END_TEST

START_TEST(test_histogram_default_buckets)
{
    metric *h =
        metrics_family(METRIC_HISTOGRAM, "herald_x_seconds", "X.", "", NULL, 0);
    char *s;

    ck_assert_ptr_nonnull(h);
    metrics_observe(h, 31);
    s = render();
    ck_assert_ptr_nonnull(strstr(s,
                                 "herald_x_seconds_bucket{le=\"0.005\"} 0\n"
                                 "herald_x_seconds_bucket{le=\"0.01\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(s, "herald_x_seconds_bucket{le=\"30\"} 0\n"
                                    "herald_x_seconds_bucket{le=\"+Inf\"} 1\n"
                                    "herald_x_seconds_sum 31\n"
                                    "herald_x_seconds_count 1\n"));
    free(s);
}
END_TEST

START_TEST(test_label_escaping)
{
    metric *g =
        metrics_family(METRIC_GAUGE, "herald_escape_test",
                       "Help with \\ and\nnewline \"kept\".", "v", NULL, 0);
    char *s;

    ck_assert_ptr_nonnull(g);
    metrics_set(g, 1, "a\\b\"c\nd");
    s = render();
    ck_assert_str_eq(
        s, "# HELP herald_escape_test Help with \\\\ and\\nnewline \"kept\".\n"
           "# TYPE herald_escape_test gauge\n"
           "herald_escape_test{v=\"a\\\\b\\\"c\\nd\"} 1\n");
    free(s);
}
END_TEST

START_TEST(test_special_values)
{
    metric *g =
        metrics_family(METRIC_GAUGE, "herald_special", "S.", "k", NULL, 0);
    char *s;

    metrics_set(g, INFINITY, "a");
    metrics_set(g, -INFINITY, "b");
    metrics_set(g, NAN, "c");
    metrics_set(g, 0.1, "d");
    metrics_set(g, 1e21, "e");
    s = render();
    ck_assert_ptr_nonnull(strstr(s, "herald_special{k=\"a\"} +Inf\n"
                                    "herald_special{k=\"b\"} -Inf\n"
                                    "herald_special{k=\"c\"} NaN\n"
                                    "herald_special{k=\"d\"} 0.1\n"
                                    "herald_special{k=\"e\"} 1e+21\n"));
    free(s);
}
END_TEST

START_TEST(test_registration_idempotent)
{
    metric *a = metrics_family(METRIC_COUNTER, "herald_retries_total", "R.",
                               "target", NULL, 0);
    metric *b = metrics_family(METRIC_COUNTER, "herald_retries_total",
                               "Other help.", "target", NULL, 0);

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    /* Same name with another type or other labels is refused. */
    ck_assert_ptr_null(metrics_family(METRIC_GAUGE, "herald_retries_total",
                                      "R.", "target", NULL, 0));
    ck_assert_ptr_null(metrics_family(METRIC_COUNTER, "herald_retries_total",
                                      "R.", "target,outcome", NULL, 0));
    /* Invalid names and label sets are refused. */
    ck_assert_ptr_null(metrics_family(METRIC_GAUGE, "9bad", "B.", "", NULL, 0));
    ck_assert_ptr_null(
        metrics_family(METRIC_GAUGE, "herald-bad", "B.", "", NULL, 0));
    ck_assert_ptr_null(
        metrics_family(METRIC_GAUGE, "herald_ok", "B.", "a,b,c,d,e", NULL, 0));
    ck_assert_ptr_null(
        metrics_family(METRIC_GAUGE, "herald_ok", "B.", "a,", NULL, 0));
    ck_assert_ptr_null(
        metrics_family(METRIC_GAUGE, "herald_ok", "B.", "__x", NULL, 0));
    ck_assert_ptr_null(
        metrics_family(METRIC_HISTOGRAM, "herald_ok", "B.", "le", NULL, 0));
    {
        static const double bad[] = {1, 0.5};
        ck_assert_ptr_null(
            metrics_family(METRIC_HISTOGRAM, "herald_ok", "B.", "", bad, 2));
    }
    ck_assert_ptr_nonnull(
        metrics_family(METRIC_GAUGE, "herald_ok", "B.", "a,b,c,d", NULL, 0));
}
END_TEST

START_TEST(test_clear)
{
    metric *g = metrics_family(METRIC_GAUGE, "herald_lag", "Lag.",
                               "topic,partition", NULL, 0);
    char *s;

    metrics_set(g, 10, "alerts", "0");
    metrics_set(g, 20, "alerts", "1");
    metrics_clear(g);
    s = render();
    ck_assert_str_eq(s, ""); /* A labelled family without series is hidden. */
    free(s);
    metrics_set(g, 5, "alerts", "1");
    s = render();
    ck_assert_str_eq(s, "# HELP herald_lag Lag.\n# TYPE herald_lag gauge\n"
                        "herald_lag{topic=\"alerts\",partition=\"1\"} 5\n");
    free(s);
}
END_TEST

START_TEST(test_render_cap)
{
    metric *g = metrics_family(METRIC_GAUGE, "herald_cap", "C.", "", NULL, 0);
    buf b;

    ck_assert_ptr_nonnull(g);
    buf_init(&b, 16);
    ck_assert_int_eq(metrics_render(&b), HERALD_ERR_TOO_LARGE);
    buf_free(&b);
}
END_TEST

#define N_THREADS 4
#define N_UPDATES 5000

static void *update_thread(void *arg)
{
    static const char *const targets[] = {"a", "b", "c"};
    metric *c = metrics_family(METRIC_COUNTER, "herald_conc_total", "C.",
                               "target", NULL, 0);
    metric *h = metrics_family(METRIC_HISTOGRAM, "herald_conc_seconds", "H.",
                               "target", NULL, 0);
    int i;

    (void)arg;
    for (i = 0; i < N_UPDATES; i++) {
        metrics_add(c, 1, targets[i % 3]);
        metrics_observe(h, 0.01, targets[i % 3]);
        if (i % 500 == 0) {
            buf b;
            buf_init(&b, 1 << 20);
            ck_assert_int_eq(metrics_render(&b), HERALD_OK);
            buf_free(&b);
        }
    }
    return NULL;
}

START_TEST(test_concurrent_updates)
{
    pthread_t th[N_THREADS];
    char expect[128];
    char *s;
    int i;

    for (i = 0; i < N_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, update_thread, NULL), 0);
    for (i = 0; i < N_THREADS; i++)
        pthread_join(th[i], NULL);
    s = render();
    /* 5000 updates per thread over 3 targets: 1667 + 1667 + 1666. */
    snprintf(expect, sizeof(expect), "herald_conc_total{target=\"a\"} %d\n",
             N_THREADS * 1667);
    ck_assert_ptr_nonnull(strstr(s, expect));
    snprintf(expect, sizeof(expect), "herald_conc_total{target=\"c\"} %d\n",
             N_THREADS * 1666);
    ck_assert_ptr_nonnull(strstr(s, expect));
    snprintf(expect, sizeof(expect),
             "herald_conc_seconds_count{target=\"b\"} %d\n", N_THREADS * 1667);
    ck_assert_ptr_nonnull(strstr(s, expect));
    free(s);
}
END_TEST

START_TEST(test_promtool)
{
    static const char *promtool = "/usr/bin/promtool";
    metric *c, *g, *h;
    char path[] = "/tmp/herald_metrics_XXXXXX";
    char cmd[256];
    char *s;
    FILE *f;
    int fd;
    int rc;

    if (access(promtool, X_OK) != 0) {
        fprintf(stderr, "check_metrics: %s absent, promtool test skipped\n",
                promtool);
        return;
    }
    c = metrics_family(METRIC_COUNTER, "herald_publishes_total",
                       "Publishes by result.", "result", NULL, 0);
    g = metrics_family(METRIC_GAUGE, "herald_target_health_status",
                       "Health status per target (1 for the current one).",
                       "target,status", NULL, 0);
    h = metrics_family(METRIC_HISTOGRAM, "herald_http_request_duration_seconds",
                       "HTTP request duration per target.", "target", NULL, 0);
    metrics_add(c, 3, "success");
    metrics_add(c, 1, "partial_success");
    metrics_set(g, 1, "we\"ird\\name\n", "healthy");
    metrics_observe(h, 0.2, "slack");
    metrics_observe(h, 42, "pagerduty");
    s = render();
    fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fputs(s, f) >= 0, 1);
    fclose(f);
    free(s);
    snprintf(cmd, sizeof(cmd), "%s check metrics < %s", promtool, path);
    rc = system(cmd);
    unlink(path);
    ck_assert_int_eq(WIFEXITED(rc), 1);
    ck_assert_int_eq(WEXITSTATUS(rc), 0);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"counter_gauge_text", test_counter_gauge_text},
        {"histogram_text", test_histogram_text},
        {"histogram_default_buckets", test_histogram_default_buckets},
        {"label_escaping", test_label_escaping},
        {"special_values", test_special_values},
        {"registration_idempotent", test_registration_idempotent},
        {"clear", test_clear},
        {"render_cap", test_render_cap},
        {"concurrent_updates", test_concurrent_updates},
        {"promtool", test_promtool},
    };
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
