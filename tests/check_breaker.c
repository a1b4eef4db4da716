/*
 * check_breaker.c: the circuit breaker (publishers/breaker.c). The clock is
 * passed in, so every transition is driven without sleeping: closed ->
 * open on consecutive failures and on the failure rate, open -> half-open
 * after the timeout, the half-open probe limit, closing after N successes,
 * reopening on a failure, defaults, metrics, and mixed use from several
 * threads (run under TSan).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "publishers/breaker.h"

static target_breaker cfg_make(int failures, int open_ms, int successes,
                               int probes)
{
    target_breaker cfg;

    breaker_config_default(&cfg);
    cfg.failure_threshold = failures;
    cfg.open_timeout_ms = open_ms;
    cfg.success_threshold = successes;
    cfg.half_open_probes = probes;
    return cfg;
}

/*
 * Value of the metric line that starts with prefix (name and labels), or
 * -1 when the exposition has no such line.
 */
static double metric_value(const char *prefix)
{
    buf out;
    double v = -1.0;
    const char *p;

    buf_init(&out, 1 << 22);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    p = buf_str(&out);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, strlen(prefix)) == 0 &&
            p[strlen(prefix)] == ' ') {
            v = strtod(p + strlen(prefix) + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    buf_free(&out);
    return v;
}

START_TEST(test_defaults)
{
    target_breaker cfg;
    breaker *b;
    int64_t t = 1000;

    breaker_config_default(&cfg);
    ck_assert_int_eq(cfg.failure_threshold, 5);
    ck_assert_int_eq(cfg.open_timeout_ms, 30000);
    ck_assert_int_eq(cfg.success_threshold, 2);
    ck_assert_int_eq(cfg.half_open_probes, 1);
    ck_assert(cfg.failure_rate == 0.0);
    ck_assert_str_eq(breaker_state_name(BREAKER_CLOSED), "closed");
    ck_assert_str_eq(breaker_state_name(BREAKER_OPEN), "open");
    ck_assert_str_eq(breaker_state_name(BREAKER_HALF_OPEN), "half_open");

    /* NULL settings mean the defaults: 5 failures open it, 4 do not. */
    b = breaker_new("defaults", NULL);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 4; i++) {
        ck_assert(breaker_allow(b, t));
        breaker_record(b, false, t);
    }
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_OPEN);
    ck_assert_int_eq(breaker_get_state(b, t + 29999), BREAKER_OPEN);
    ck_assert_int_eq(breaker_get_state(b, t + 30000), BREAKER_HALF_OPEN);
    breaker_destroy(b);

    /* Zeroed settings are replaced by the defaults too. */
    memset(&cfg, 0, sizeof(cfg));
    b = breaker_new("zeroed", &cfg);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 4; i++)
        breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    breaker_destroy(b);

    breaker_destroy(NULL);
    ck_assert_ptr_null(breaker_new(NULL, NULL));
}
END_TEST

START_TEST(test_closed_to_open)
{
    target_breaker cfg = cfg_make(3, 1000, 1, 1);
    breaker *b = breaker_new("threshold", &cfg);
    int64_t t = 50;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    /* A success in between resets the consecutive count. */
    breaker_record(b, false, t);
    breaker_record(b, false, t);
    breaker_record(b, true, t);
    breaker_record(b, false, t);
    breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    ck_assert(breaker_allow(b, t));
    ck_assert_uint_eq(breaker_transitions(b), 0);
    breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_OPEN);
    ck_assert(!breaker_allow(b, t));
    ck_assert(!breaker_allow(b, t + 999));
    ck_assert_uint_eq(breaker_transitions(b), 1);
    /* Late results while open change nothing. */
    breaker_record(b, true, t + 10);
    ck_assert_int_eq(breaker_get_state(b, t + 10), BREAKER_OPEN);
    /* Metrics follow: gauge 1 (open) and one closed -> open. */
    ck_assert(metric_value("herald_breaker_state{target=\"threshold\"}") ==
              1.0);
    ck_assert(metric_value("herald_breaker_transitions_total{target="
                           "\"threshold\",from=\"closed\",to=\"open\"}") ==
              1.0);
    breaker_destroy(b);
}
END_TEST

START_TEST(test_open_to_half_open)
{
    target_breaker cfg = cfg_make(1, 500, 1, 1);
    breaker *b = breaker_new("timeout", &cfg);

    ck_assert_ptr_nonnull(b);
    breaker_record(b, false, 100);
    ck_assert_int_eq(breaker_get_state(b, 100), BREAKER_OPEN);
    ck_assert(!breaker_allow(b, 599));
    ck_assert_int_eq(breaker_get_state(b, 599), BREAKER_OPEN);
    /* allow() itself applies the timeout and takes the probe slot. */
    ck_assert(breaker_allow(b, 600));
    ck_assert_int_eq(breaker_get_state(b, 600), BREAKER_HALF_OPEN);
    ck_assert_uint_eq(breaker_transitions(b), 2);
    ck_assert(metric_value("herald_breaker_state{target=\"timeout\"}") == 2.0);
    breaker_destroy(b);
}
END_TEST

START_TEST(test_half_open_probe_limit)
{
    target_breaker cfg = cfg_make(1, 100, 5, 2);
    breaker *b = breaker_new("probes", &cfg);

    ck_assert_ptr_nonnull(b);
    breaker_record(b, false, 0);
    ck_assert_int_eq(breaker_get_state(b, 100), BREAKER_HALF_OPEN);
    ck_assert(breaker_allow(b, 100));
    ck_assert(breaker_allow(b, 100));
    /* Both slots taken: the third waits. */
    ck_assert(!breaker_allow(b, 101));
    ck_assert(!breaker_allow(b, 5000));
    /* A result gives a slot back. */
    breaker_record(b, true, 102);
    ck_assert_int_eq(breaker_get_state(b, 102), BREAKER_HALF_OPEN);
    ck_assert(breaker_allow(b, 103));
    ck_assert(!breaker_allow(b, 103));
    breaker_destroy(b);
}
END_TEST

START_TEST(test_half_open_closes)
{
    target_breaker cfg = cfg_make(2, 100, 3, 1);
    breaker *b = breaker_new("closes", &cfg);

    ck_assert_ptr_nonnull(b);
    breaker_record(b, false, 0);
    breaker_record(b, false, 0);
    ck_assert_int_eq(breaker_get_state(b, 0), BREAKER_OPEN);
    for (int i = 0; i < 2; i++) {
        ck_assert(breaker_allow(b, 200 + i));
        breaker_record(b, true, 200 + i);
        ck_assert_int_eq(breaker_get_state(b, 200 + i), BREAKER_HALF_OPEN);
    }
    ck_assert(breaker_allow(b, 210));
    breaker_record(b, true, 210);
    ck_assert_int_eq(breaker_get_state(b, 210), BREAKER_CLOSED);
    ck_assert_uint_eq(breaker_transitions(b), 3);
    /* Closed again with a fresh failure count: one failure is not enough. */
    breaker_record(b, false, 211);
    ck_assert_int_eq(breaker_get_state(b, 211), BREAKER_CLOSED);
    ck_assert(metric_value("herald_breaker_transitions_total{target="
                           "\"closes\",from=\"half_open\",to=\"closed\"}") ==
              1.0);
    breaker_destroy(b);
}
END_TEST

START_TEST(test_half_open_reopens)
{
    target_breaker cfg = cfg_make(1, 100, 2, 1);
    breaker *b = breaker_new("reopens", &cfg);

    ck_assert_ptr_nonnull(b);
    breaker_record(b, false, 0);
    ck_assert(breaker_allow(b, 100));
    breaker_record(b, true, 101);
    ck_assert(breaker_allow(b, 102));
    /* One failure in half-open reopens, whatever succeeded before. */
    breaker_record(b, false, 150);
    ck_assert_int_eq(breaker_get_state(b, 150), BREAKER_OPEN);
    ck_assert(!breaker_allow(b, 151));
    /* The open timeout restarts from the reopening. */
    ck_assert_int_eq(breaker_get_state(b, 249), BREAKER_OPEN);
    ck_assert_int_eq(breaker_get_state(b, 250), BREAKER_HALF_OPEN);
    ck_assert_uint_eq(breaker_transitions(b), 4);
    ck_assert(metric_value("herald_breaker_transitions_total{target="
                           "\"reopens\",from=\"half_open\",to=\"open\"}") ==
              1.0);
    breaker_destroy(b);
}
END_TEST

START_TEST(test_failure_rate)
{
    target_breaker cfg = cfg_make(1000, 1000, 1, 1);
    breaker *b;
    int64_t t = 10000;

    cfg.failure_rate = 0.5;
    cfg.window_ms = 10000;
    cfg.min_requests = 10;
    b = breaker_new("rate", &cfg);
    ck_assert_ptr_nonnull(b);
    /* 9 results, all failing every other time: too few to count. */
    for (int i = 0; i < 9; i++)
        breaker_record(b, i % 2 == 0, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    /* The 10th result is a failure: 5 of 10 reach the rate. */
    breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_OPEN);
    breaker_destroy(b);

    /* Below the rate stays closed. */
    b = breaker_new("rate_low", &cfg);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 30; i++)
        breaker_record(b, i % 3 != 0, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    breaker_destroy(b);

    /* Old failures slide out of the window. */
    b = breaker_new("rate_window", &cfg);
    ck_assert_ptr_nonnull(b);
    for (int i = 0; i < 8; i++)
        breaker_record(b, false, t);
    for (int i = 0; i < 4; i++)
        breaker_record(b, true, t + 1000);
    /* Two windows later only new results count: 1 failure of 10. */
    t += 20000;
    for (int i = 0; i < 9; i++)
        breaker_record(b, true, t);
    breaker_record(b, false, t);
    ck_assert_int_eq(breaker_get_state(b, t), BREAKER_CLOSED);
    breaker_destroy(b);
}
END_TEST

/* Mixed concurrent use: several threads share one breaker and one clock. */
#define CONC_THREADS 4
#define CONC_ROUNDS 20000

struct conc_ctx {
    breaker *b;
    atomic_llong clock;
    unsigned seed;
};

static void *conc_main(void *arg)
{
    struct conc_ctx *ctx = arg;
    unsigned seed = (unsigned)(uintptr_t)pthread_self() ^ ctx->seed;

    for (int i = 0; i < CONC_ROUNDS; i++) {
        int64_t now = atomic_fetch_add(&ctx->clock, 1);
        unsigned r = (unsigned)rand_r(&seed);

        if (breaker_allow(ctx->b, now)) {
            /* Fail a third of the time, so the breaker keeps moving. */
            breaker_record(ctx->b, r % 3 != 0, now);
        }
        (void)breaker_get_state(ctx->b, now);
        (void)breaker_transitions(ctx->b);
    }
    return NULL;
}

START_TEST(test_concurrent)
{
    target_breaker cfg = cfg_make(3, 20, 2, 2);
    struct conc_ctx ctx;
    pthread_t th[CONC_THREADS];
    uint64_t n;
    breaker_state state;
    double sum = 0.0;
    static const char *const names[] = {"closed", "open", "half_open"};

    cfg.failure_rate = 0.5;
    cfg.window_ms = 100;
    cfg.min_requests = 5;
    memset(&ctx, 0, sizeof(ctx));
    ctx.b = breaker_new("concurrent", &cfg);
    ck_assert_ptr_nonnull(ctx.b);
    atomic_init(&ctx.clock, 1);
    ctx.seed = 1234;
    for (int i = 0; i < CONC_THREADS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, conc_main, &ctx), 0);
    for (int i = 0; i < CONC_THREADS; i++)
        pthread_join(th[i], NULL);

    /*
     * The breaker moved, and every transition was counted in metrics. The
     * state is read first: reading it may apply the open timeout.
     */
    state = breaker_get_state(ctx.b, atomic_load(&ctx.clock));
    n = breaker_transitions(ctx.b);
    ck_assert_uint_gt(n, 0);
    for (int from = 0; from < 3; from++) {
        for (int to = 0; to < 3; to++) {
            char prefix[160];
            double v;

            snprintf(prefix, sizeof(prefix),
                     "herald_breaker_transitions_total{target=\"concurrent\","
                     "from=\"%s\",to=\"%s\"}",
                     names[from], names[to]);
            v = metric_value(prefix);
            if (v > 0)
                sum += v;
        }
    }
    ck_assert(sum == (double)n);
    ck_assert(metric_value("herald_breaker_state{target=\"concurrent\"}") ==
              (double)state);
    breaker_destroy(ctx.b);
}
END_TEST

static Suite *breaker_suite(void)
{
    Suite *s = suite_create("breaker");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"defaults", test_defaults},
        {"closed_to_open", test_closed_to_open},
        {"open_to_half_open", test_open_to_half_open},
        {"half_open_probe_limit", test_half_open_probe_limit},
        {"half_open_closes", test_half_open_closes},
        {"half_open_reopens", test_half_open_reopens},
        {"failure_rate", test_failure_rate},
        {"concurrent", test_concurrent},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].fn);
        tcase_set_timeout(tc, 120);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(breaker_suite());
    int failed;

    /* State changes are logged; keep the test output to failures. */
    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    metrics_shutdown();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
