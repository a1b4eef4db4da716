/*
 * check_parallel.c: the ParallelPublisher (publishers/parallel.h) against
 * the in-process HTTP fixture (tests/http_fixture.h) on 127.0.0.1 with one
 * behaviour per path, and the fixture's test target plugin that POSTs the
 * alert fingerprint to the target URL (so these tests do not depend on the
 * real plugins).
 *
 * Paths: /ok 200; /fail 500; /bad 400; /flaky 503 once then 200; /429 429
 * with Retry-After: 1 once then 200; /slow 200 after 600 ms; /gate 200 after
 * 100 ms (its concurrency is what the limits tests read); /slow1s 200 after
 * 1 s (the non-blocking publish_start test). A closed port gives
 * "connection refused".
 */
#include <check.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "publishers/breaker.h"
#include "publishers/health.h"
#include "publishers/matchers.h"
#include "publishers/parallel.h"
#include "tests/check_main.h"
#include "tests/http_fixture.h"

static const http_fixture_rule rules[] = {
    {.path = "/ok"},
    {.path = "/fail", .status = 500},
    {.path = "/bad", .status = 400},
    {.path = "/flaky", .status = 503, .times = 1},
    {.path = "/429", .status = 429, .times = 1, .retry_after = "1"},
    {.path = "/slow", .delay_ms = 600},
    {.path = "/gate", .delay_ms = 100},
    {.path = "/slow1s", .delay_ms = 1000},
};

/* The receiver, started once in main() and reset before each test. */
static http_fixture *fx;

/* A fixture target sending to path, or to a closed port for "refused". */
static target *mk_target(const char *name, const char *path)
{
    target *t;
    char url[128];

    if (strcmp(path, "refused") == 0)
        snprintf(url, sizeof url, "http://127.0.0.1:%d/ok",
                 http_fixture_closed_port());
    else
        http_fixture_url(fx, path, url, sizeof url);
    t = http_fixture_target_new(name, url);
    ck_assert_ptr_nonnull(t);
    return t;
}

static alert_kv test_labels[] = {{"alertname", "DiskFull"}, {"team", "web"}};
static alert test_alert;

static void init_alert(void)
{
    memset(&test_alert, 0, sizeof test_alert);
    test_alert.labels.items = test_labels;
    test_alert.labels.n = 2;
    snprintf(test_alert.fingerprint, sizeof test_alert.fingerprint,
             "0123456789abcdef");
    test_alert.classification_confidence = -1;
}

/* Per-test publisher and targets. */
static parallel_publisher *pp;
static health *hm;
static target *tg[16];
static size_t ntg;

static void setup(void)
{
    char err[256];

    http_fixture_reset(fx);
    init_alert();
    hm = health_new(false, err, sizeof err);
    ck_assert_msg(hm != NULL, "%s", err);
    pp = parallel_new(NULL, hm, err, sizeof err);
    ck_assert_msg(pp != NULL, "%s", err);
    ntg = 0;
}

static void teardown(void)
{
    parallel_destroy(pp);
    pp = NULL;
    health_destroy(hm);
    hm = NULL;
    for (size_t i = 0; i < ntg; i++)
        http_fixture_target_destroy(tg[i]);
    ntg = 0;
}

static target *add(const char *name, const char *path)
{
    target *t = mk_target(name, path);

    tg[ntg++] = t;
    return t;
}

static const publish_target_result *find(const publish_result *res,
                                         const char *name)
{
    for (size_t i = 0; i < res->n_targets; i++)
        if (strcmp(res->targets[i].name, name) == 0)
            return &res->targets[i];
    ck_abort_msg("no result for %s", name);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Options and names                                                    */
/* ------------------------------------------------------------------ */

START_TEST(test_opts_defaults)
{
    publish_opts o;
    char err[128];

    publish_opts_default(&o);
    ck_assert_int_eq(o.deadline_ms, 30000);
    ck_assert_int_eq(o.strategy, PUBLISH_SKIP_UNHEALTHY);
    ck_assert(o.respect_breakers);
    ck_assert_int_eq(o.max_concurrent_targets, 0);
    ck_assert_ptr_null(o.cancel);
    ck_assert_int_eq(publish_opts_validate(&o, err, sizeof err), HERALD_OK);
}
END_TEST

START_TEST(test_opts_validation)
{
    publish_opts o;
    char err[128];

    publish_opts_default(&o);
    o.deadline_ms = 0;
    ck_assert_int_eq(publish_opts_validate(&o, err, sizeof err),
                     HERALD_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "deadline_ms"));
    o.deadline_ms = PUBLISH_DEADLINE_MAX_MS + 1;
    ck_assert_int_eq(publish_opts_validate(&o, err, sizeof err),
                     HERALD_ERR_INVALID);
    publish_opts_default(&o);
    o.strategy = (publish_strategy)7;
    ck_assert_int_eq(publish_opts_validate(&o, err, sizeof err),
                     HERALD_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "strategy"));
    publish_opts_default(&o);
    o.max_concurrent_targets = -1;
    ck_assert_int_eq(publish_opts_validate(&o, err, sizeof err),
                     HERALD_ERR_INVALID);
    ck_assert_ptr_nonnull(strstr(err, "max_concurrent_targets"));
    ck_assert_int_eq(publish_opts_validate(NULL, err, sizeof err),
                     HERALD_ERR_INVALID);
}
END_TEST

START_TEST(test_names)
{
    publish_strategy s;
    const publish_strategy all[] = {PUBLISH_SKIP_UNHEALTHY,
                                    PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED,
                                    PUBLISH_TO_ALL};

    ck_assert_str_eq(publish_strategy_name(PUBLISH_SKIP_UNHEALTHY),
                     "skip_unhealthy");
    ck_assert_str_eq(publish_strategy_name(PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED),
                     "skip_unhealthy_and_degraded");
    ck_assert_str_eq(publish_strategy_name(PUBLISH_TO_ALL), "publish_to_all");
    ck_assert_str_eq(publish_strategy_name((publish_strategy)9), "unknown");
    for (size_t i = 0; i < 3; i++) {
        ck_assert_int_eq(
            publish_strategy_parse(publish_strategy_name(all[i]), &s),
            HERALD_OK);
        ck_assert_int_eq(s, all[i]);
    }
    ck_assert_int_eq(publish_strategy_parse("all", &s), HERALD_ERR_INVALID);
    ck_assert_int_eq(publish_strategy_parse(NULL, &s), HERALD_ERR_INVALID);
    ck_assert_str_eq(publish_outcome_name(PUBLISH_OUTCOME_DELIVERED),
                     "delivered");
    ck_assert_str_eq(publish_outcome_name(PUBLISH_OUTCOME_FAILED), "failed");
    ck_assert_str_eq(publish_outcome_name(PUBLISH_OUTCOME_SKIPPED), "skipped");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_DISABLED),
                     "disabled");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_FILTERED),
                     "filtered");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_UNHEALTHY),
                     "unhealthy");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_DEGRADED),
                     "degraded");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_CIRCUIT_OPEN),
                     "circuit_open");
    ck_assert_str_eq(publish_skip_reason_name(PUBLISH_REASON_NONE), "");
}
END_TEST

/* ------------------------------------------------------------------ */
/* Result helpers and JSON                                              */
/* ------------------------------------------------------------------ */

START_TEST(test_result_helpers)
{
    publish_result r;

    publish_result_init(&r);
    ck_assert(!publish_result_success(&r));
    ck_assert(!publish_result_all_succeeded(&r));
    ck_assert(!publish_result_all_failed(&r));
    ck_assert(publish_result_success_rate(&r) == 0.0);
    r.succeeded = 3;
    r.failed = 1;
    r.skipped = 2;
    ck_assert(publish_result_success(&r));
    ck_assert(!publish_result_all_succeeded(&r));
    ck_assert(!publish_result_all_failed(&r));
    ck_assert(publish_result_success_rate(&r) == 0.75);
    r.failed = 0;
    ck_assert(publish_result_all_succeeded(&r));
    ck_assert(publish_result_success_rate(&r) == 1.0);
    r.succeeded = 0;
    r.failed = 2;
    ck_assert(publish_result_all_failed(&r));
    ck_assert(!publish_result_success(&r));
    ck_assert(publish_result_success_rate(&r) == 0.0);
    ck_assert(!publish_result_success(NULL));
    publish_result_free(&r);
    publish_result_free(NULL);
}
END_TEST

START_TEST(test_result_json)
{
    publish_result res;
    struct json_object *o;
    struct json_object *ts;
    struct json_object *v;
    target *ok = add("ok", "/ok");
    target *off = add("off", "/ok");

    off->enabled = false;
    (void)ok;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_all(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    o = publish_result_to_json(&res);
    ck_assert_ptr_nonnull(o);
    ck_assert(json_object_object_get_ex(o, "total", &v));
    ck_assert_int_eq(json_object_get_int(v), 2);
    ck_assert(json_object_object_get_ex(o, "succeeded", &v));
    ck_assert_int_eq(json_object_get_int(v), 1);
    ck_assert(json_object_object_get_ex(o, "skipped", &v));
    ck_assert_int_eq(json_object_get_int(v), 1);
    ck_assert(json_object_object_get_ex(o, "success", &v));
    ck_assert(json_object_get_boolean(v));
    ck_assert(json_object_object_get_ex(o, "error", &v));
    ck_assert_ptr_null(v);
    ck_assert(json_object_object_get_ex(o, "targets", &ts));
    ck_assert_int_eq(json_object_array_length(ts), 2);
    v = json_object_array_get_idx(ts, 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "name")),
                     "ok");
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(v, "outcome")),
        "delivered");
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(v, "http_status")), 200);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "type")),
                     "test");
    v = json_object_array_get_idx(ts, 1);
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(v, "skip_reason")),
        "disabled");
    ck_assert_ptr_null(json_object_object_get(v, "http_status"));
    json_object_put(o);
    ck_assert_ptr_null(publish_result_to_json(NULL));
    publish_result_free(&res);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Publishing                                                           */
/* ------------------------------------------------------------------ */

START_TEST(test_happy_path)
{
    publish_result res;
    herald_err err;
    int64_t before = (int64_t)time(NULL) * 1000 - 1000;

    add("a", "/ok");
    add("b", "/ok");
    add("c", "/ok");
    publish_result_init(&res);
    err = publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res);
    ck_assert_int_eq(err, HERALD_OK);
    ck_assert_int_eq(res.err, HERALD_OK);
    ck_assert_uint_eq(res.total, 3);
    ck_assert_uint_eq(res.succeeded, 3);
    ck_assert_uint_eq(res.failed, 0);
    ck_assert_uint_eq(res.skipped, 0);
    ck_assert(!res.partial_success);
    ck_assert(publish_result_all_succeeded(&res));
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 3);
    for (size_t i = 0; i < 3; i++) {
        const publish_target_result *tr = &res.targets[i];

        ck_assert_str_eq(tr->name, tg[i]->name);
        ck_assert_str_eq(tr->type, "test");
        ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_DELIVERED);
        ck_assert_int_eq(tr->http_status, 200);
        ck_assert_int_eq(tr->attempts, 1);
        ck_assert_str_eq(tr->error, "");
        ck_assert_ptr_null(tr->error_type);
        ck_assert_int_ge(tr->first_attempt_ms, before);
        ck_assert_int_ge(tr->last_attempt_ms, tr->first_attempt_ms);
    }
    publish_result_free(&res);
    ck_assert_uint_eq(res.n_targets, 0);
}
END_TEST

START_TEST(test_debug_logging)
{
    publish_result res;

    /* The same path with every log line formatted (no URL may leak, which
     * the log module's output cannot show here; this covers formatting). */
    log_set_level(LOG_LEVEL_DEBUG);
    add("a", "/ok");
    add("b", "/fail");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert(res.partial_success);
    log_set_level(LOG_LEVEL_OFF);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_partial_success)
{
    publish_result res;
    const publish_target_result *tr;

    add("good", "/ok");
    add("bad", "/fail");
    add("refused", "refused");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 1);
    ck_assert_uint_eq(res.failed, 2);
    ck_assert(res.partial_success);
    ck_assert(publish_result_success(&res));
    ck_assert(!publish_result_all_succeeded(&res));
    tr = find(&res, "bad");
    ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_FAILED);
    ck_assert_int_eq(tr->http_status, 500);
    ck_assert_str_eq(tr->error_type, "http_5xx");
    ck_assert_ptr_nonnull(strstr(tr->error, "500"));
    tr = find(&res, "refused");
    ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_FAILED);
    ck_assert_int_eq(tr->http_status, 0);
    ck_assert_str_eq(tr->error_type, "connect");
    publish_result_free(&res);
}
END_TEST

START_TEST(test_total_failure)
{
    publish_result res;

    add("bad", "/fail");
    add("gone", "refused");
    add("rejects", "/bad");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_ERR_ALL_FAILED);
    ck_assert_int_eq(res.err, HERALD_ERR_ALL_FAILED);
    ck_assert_uint_eq(res.total, 3);
    ck_assert_uint_eq(res.failed, 3);
    ck_assert(publish_result_all_failed(&res));
    ck_assert(!res.partial_success);
    ck_assert_str_eq(find(&res, "rejects")->error_type, "http_4xx");
    publish_result_free(&res);
}
END_TEST

START_TEST(test_empty_targets)
{
    publish_result res;

    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, NULL, 0, NULL, &res),
                     HERALD_ERR_NO_ENABLED);
    ck_assert_uint_eq(res.total, 0);
    ck_assert_int_eq(res.err, HERALD_ERR_NO_ENABLED);
    ck_assert_int_eq(publish_to_all(pp, &test_alert, NULL, 0, NULL, &res),
                     HERALD_ERR_NO_ENABLED);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, NULL, 0, NULL, &res),
                     HERALD_ERR_NO_ENABLED);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_invalid_input)
{
    publish_result res;
    publish_opts o;
    target *null_list[1] = {NULL};

    add("a", "/ok");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, NULL, tg, ntg, NULL, &res),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(res.err, HERALD_ERR_INVALID);
    ck_assert_uint_eq(res.succeeded, 0);
    ck_assert_int_eq(
        publish_to_multiple(NULL, &test_alert, tg, ntg, NULL, &res),
        HERALD_ERR_INVALID);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, NULL, 2, NULL, &res),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(
        publish_to_multiple(pp, &test_alert, null_list, 1, NULL, &res),
        HERALD_ERR_INVALID);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, NULL),
                     HERALD_ERR_INVALID);
    publish_opts_default(&o);
    o.deadline_ms = -5;
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 0);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_build_error)
{
    publish_result res;
    const publish_target_result *tr;

    add("ok", "/ok");
    add("broken", "/build-error");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    tr = find(&res, "broken");
    ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_FAILED);
    ck_assert_str_eq(tr->error_type, "build");
    ck_assert_int_eq(tr->attempts, 0);
    ck_assert(res.partial_success);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_deadline)
{
    publish_result res;
    publish_opts o;
    const publish_target_result *tr;

    add("fast", "/ok");
    add("slow", "/slow");
    publish_opts_default(&o);
    o.deadline_ms = 200;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_OK);
    ck_assert(res.partial_success);
    tr = find(&res, "slow");
    ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_FAILED);
    ck_assert_str_eq(tr->error_type, "deadline");
    ck_assert_str_eq(tr->error, "deadline exceeded");
    ck_assert_int_eq(tr->attempts, 1);
    publish_result_free(&res);

    /* Only the slow one: the call itself reports the deadline. */
    http_fixture_reset(fx);
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg + 1, 1, &o, &res),
                     HERALD_ERR_DEADLINE);
    ck_assert_uint_eq(res.failed, 1);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_late_result_counted)
{
    publish_result res;
    publish_opts o;

    add("slow", "/slow");
    ck_assert_int_eq(health_set_targets(hm, tg, ntg), HERALD_OK);
    publish_opts_default(&o);
    o.deadline_ms = 100;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_ERR_DEADLINE);
    ck_assert_uint_eq(res.failed, 1);
    ck_assert_str_eq(res.targets[0].error, "deadline exceeded");
    /* The caller's result is gone before the response arrives. */
    publish_result_free(&res);
    ck_assert_int_eq(health_get(hm, "slow"), HEALTH_UNKNOWN);
    ck_assert_uint_ge(parallel_in_flight(pp), 1);
    /* The late response still reaches the health monitor. */
    WAIT_FOR(parallel_in_flight(pp) == 0);
    ck_assert_int_eq(health_get(hm, "slow"), HEALTH_HEALTHY);
}
END_TEST

static atomic_bool cancel_flag;

static void *canceller(void *arg)
{
    (void)arg;
    /* Cancel once the slow receiver has the request. */
    while (http_fixture_count(fx, "/slow") < 1)
        check_sleep_ms(1);
    atomic_store(&cancel_flag, true);
    return NULL;
}

START_TEST(test_cancellation)
{
    publish_result res;
    publish_opts o;
    pthread_t th;

    add("slow1", "/slow");
    add("slow2", "/slow");
    atomic_store(&cancel_flag, false);
    publish_opts_default(&o);
    o.cancel = &cancel_flag;
    publish_result_init(&res);
    pthread_create(&th, NULL, canceller, NULL);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_ERR_CANCELLED);
    pthread_join(th, NULL);
    ck_assert_uint_eq(res.failed, 2);
    ck_assert_str_eq(res.targets[0].error_type, "cancelled");
    ck_assert_str_eq(res.targets[1].error, "cancelled");
    publish_result_free(&res);

    /* Cancelled before the call: nothing is sent. */
    http_fixture_reset(fx);
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_ERR_CANCELLED);
    ck_assert_uint_eq(res.failed, 2);
    ck_assert_int_eq(res.targets[0].attempts, 0);
    ck_assert_int_eq(http_fixture_count(fx, "/slow"), 0);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_retry_does_not_resend_delivered)
{
    publish_result res;
    target *fl;

    add("ok", "/ok");
    fl = add("flaky", "/flaky");
    fl->retry.max_attempts = 3;
    tg[0]->retry.max_attempts = 3;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 2);
    ck_assert_int_eq(find(&res, "flaky")->attempts, 2);
    ck_assert_int_eq(find(&res, "ok")->attempts, 1);
    ck_assert_int_eq(http_fixture_count(fx, "/flaky"), 2);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 1);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_retry_exhausted)
{
    publish_result res;
    target *t = add("bad", "/fail");

    t->retry.max_attempts = 3;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_ERR_ALL_FAILED);
    ck_assert_int_eq(res.targets[0].attempts, 3);
    ck_assert_int_eq(http_fixture_count(fx, "/fail"), 3);
    ck_assert_int_ge(res.targets[0].last_attempt_ms,
                     res.targets[0].first_attempt_ms);
    publish_result_free(&res);

    /* A 4xx gives up at once, whatever max_attempts says. */
    http_fixture_reset(fx);
    t = add("rejects", "/bad");
    t->retry.max_attempts = 3;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, &t, 1, NULL, &res),
                     HERALD_ERR_ALL_FAILED);
    ck_assert_int_eq(res.targets[0].attempts, 1);
    ck_assert_int_eq(http_fixture_count(fx, "/bad"), 1);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_retry_after_honoured)
{
    publish_result res;
    target *t = add("limited", "/429");

    t->retry.max_attempts = 2;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_int_eq(res.targets[0].attempts, 2);
    ck_assert_int_eq(http_fixture_count(fx, "/429"), 2);
    /* Retry-After: 1 means one second at least between the attempts. */
    ck_assert_int_ge(http_fixture_last_ms(fx, "/429") -
                         http_fixture_first_ms(fx, "/429"),
                     950);
    publish_result_free(&res);

    /* A Retry-After past the deadline ends the leg instead of waiting. */
    http_fixture_reset(fx);
    {
        publish_opts o;

        publish_opts_default(&o);
        o.deadline_ms = 500;
        publish_result_init(&res);
        ck_assert_int_eq(
            publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
            HERALD_ERR_ALL_FAILED);
        ck_assert_int_eq(res.targets[0].attempts, 1);
        ck_assert_str_eq(res.targets[0].error_type, "rate_limited");
        publish_result_free(&res);
    }
}
END_TEST

START_TEST(test_retry_bounded_by_max_elapsed)
{
    publish_result res;
    target *t = add("limited", "/429");

    t->retry.max_attempts = 5;
    t->retry.max_elapsed_ms = 300; /* Less than the 1 s Retry-After. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_ERR_ALL_FAILED);
    ck_assert_int_eq(res.targets[0].attempts, 1);
    publish_result_free(&res);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Selection: publish_to_all and publish_to_healthy                     */
/* ------------------------------------------------------------------ */

static void publish_all_n(size_t n)
{
    publish_result res;
    char name[32];

    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "t%zu", i);
        add(name, "/ok");
    }
    /* One disabled target on top: reported, never sent to. */
    add("disabled", "/fail")->enabled = false;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_all(pp, &test_alert, tg, ntg, NULL, &res),
                     n ? HERALD_OK : HERALD_ERR_NO_ENABLED);
    ck_assert_uint_eq(res.total, n + 1);
    ck_assert_uint_eq(res.succeeded, n);
    ck_assert_uint_eq(res.skipped, 1);
    ck_assert_uint_eq(res.failed, 0);
    ck_assert_int_eq(find(&res, "disabled")->skip_reason,
                     PUBLISH_REASON_DISABLED);
    ck_assert_int_eq(find(&res, "disabled")->outcome, PUBLISH_OUTCOME_SKIPPED);
    ck_assert_int_eq(find(&res, "disabled")->attempts, 0);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), (int)n);
    ck_assert_int_eq(http_fixture_count(fx, "/fail"), 0);
    publish_result_free(&res);
}

START_TEST(test_all_0)
{
    publish_all_n(0);
}
END_TEST
START_TEST(test_all_1)
{
    publish_all_n(1);
}
END_TEST
START_TEST(test_all_10)
{
    publish_all_n(10);
}
END_TEST

START_TEST(test_all_filtered)
{
    publish_result res;
    target *t = add("db-team", "/ok");

    add("everyone", "/ok");
    t->matchers = calloc(1, sizeof *t->matchers);
    t->n_matchers = 1;
    t->matchers[0].name = strdup("team");
    t->matchers[0].op = TARGET_MATCH_EQ;
    t->matchers[0].value = strdup("db");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_all(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_int_eq(find(&res, "db-team")->skip_reason,
                     PUBLISH_REASON_FILTERED);
    ck_assert_uint_eq(res.succeeded, 1);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 1);
    publish_result_free(&res);

    /* publish_to_multiple: the caller chose, matchers do not apply. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, 1, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 1);
    publish_result_free(&res);
}
END_TEST

/* Sets the monitor's status of target name by recording results. */
static void set_health(const char *name, health_status st)
{
    switch (st) {
    case HEALTH_HEALTHY: health_record(hm, name, true, 1.0); break;
    case HEALTH_DEGRADED: health_record(hm, name, true, 1e9); break;
    case HEALTH_UNHEALTHY:
        for (int i = 0; i < 3; i++)
            health_record(hm, name, false, 1.0);
        break;
    case HEALTH_UNKNOWN: break;
    }
    ck_assert_int_eq(health_get(hm, name), st);
}

/* Four targets: healthy, degraded, unhealthy, unknown. */
static void health_fixture(void)
{
    add("healthy", "/ok");
    add("degraded", "/ok");
    add("unhealthy", "/ok");
    add("unknown", "/ok");
    ck_assert_int_eq(health_set_targets(hm, tg, ntg), HERALD_OK);
    set_health("healthy", HEALTH_HEALTHY);
    set_health("degraded", HEALTH_DEGRADED);
    set_health("unhealthy", HEALTH_UNHEALTHY);
    set_health("unknown", HEALTH_UNKNOWN);
}

START_TEST(test_strategy_skip_unhealthy)
{
    publish_result res;

    health_fixture();
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 3);
    ck_assert_uint_eq(res.skipped, 1);
    ck_assert_int_eq(find(&res, "unhealthy")->skip_reason,
                     PUBLISH_REASON_UNHEALTHY);
    /* Unknown fails open. */
    ck_assert_int_eq(find(&res, "unknown")->outcome, PUBLISH_OUTCOME_DELIVERED);
    ck_assert_int_eq(find(&res, "degraded")->outcome,
                     PUBLISH_OUTCOME_DELIVERED);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_strategy_skip_degraded)
{
    publish_result res;
    publish_opts o;

    health_fixture();
    publish_opts_default(&o);
    o.strategy = PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 2);
    ck_assert_uint_eq(res.skipped, 2);
    ck_assert_int_eq(find(&res, "degraded")->skip_reason,
                     PUBLISH_REASON_DEGRADED);
    ck_assert_int_eq(find(&res, "unhealthy")->skip_reason,
                     PUBLISH_REASON_UNHEALTHY);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 2);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_strategy_publish_to_all)
{
    publish_result res;
    publish_opts o;

    health_fixture();
    publish_opts_default(&o);
    o.strategy = PUBLISH_TO_ALL;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 4);
    ck_assert_uint_eq(res.skipped, 0);
    publish_result_free(&res);

    /* publish_to_all ignores health, whatever the strategy. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_all(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 4);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_no_healthy)
{
    publish_result res;

    add("down1", "/ok");
    add("down2", "/ok");
    ck_assert_int_eq(health_set_targets(hm, tg, ntg), HERALD_OK);
    set_health("down1", HEALTH_UNHEALTHY);
    set_health("down2", HEALTH_UNHEALTHY);
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_ERR_NO_HEALTHY);
    ck_assert_uint_eq(res.skipped, 2);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 0);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_health_monitor_absent_fails_open)
{
    publish_result res;
    parallel_publisher *bare;
    char err[256];

    /* No monitor at all, and a monitor that never heard of the targets:
     * both publish to every target. */
    bare = parallel_new(NULL, NULL, err, sizeof err);
    ck_assert_ptr_nonnull(bare);
    ck_assert_ptr_null(parallel_health(bare));
    add("a", "/ok");
    add("b", "/ok");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(bare, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 2);
    publish_result_free(&res);
    parallel_destroy(bare);

    ck_assert_ptr_eq(parallel_health(pp), hm);
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_healthy(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 2);
    publish_result_free(&res);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Circuit breakers                                                     */
/* ------------------------------------------------------------------ */

START_TEST(test_breaker_open_and_mixed)
{
    publish_result res;
    breaker_state st;
    uint64_t transitions = 0;
    target *bad = add("bad", "/fail");

    add("good", "/ok");
    bad->breaker.failure_threshold = 2;
    bad->breaker.open_timeout_ms = 600000;
    ck_assert_int_eq(
        parallel_breaker_state(pp, "bad", herald_now_ms(), &st, NULL),
        HERALD_ERR_NOT_FOUND);
    for (int i = 0; i < 2; i++) {
        publish_result_init(&res);
        ck_assert_int_eq(
            publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
            HERALD_OK);
        ck_assert_int_eq(find(&res, "bad")->outcome, PUBLISH_OUTCOME_FAILED);
        publish_result_free(&res);
    }
    ck_assert_int_eq(
        parallel_breaker_state(pp, "bad", herald_now_ms(), &st, &transitions),
        HERALD_OK);
    ck_assert_int_eq(st, BREAKER_OPEN);
    ck_assert_uint_ge(transitions, 1);
    ck_assert_int_eq(
        parallel_breaker_state(pp, "good", herald_now_ms(), &st, NULL),
        HERALD_OK);
    ck_assert_int_eq(st, BREAKER_CLOSED);

    /* Open: skipped circuit_open, never sent; the other target delivers. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_int_eq(find(&res, "bad")->outcome, PUBLISH_OUTCOME_SKIPPED);
    ck_assert_int_eq(find(&res, "bad")->skip_reason,
                     PUBLISH_REASON_CIRCUIT_OPEN);
    ck_assert_uint_eq(res.skipped, 1);
    ck_assert_uint_eq(res.succeeded, 1);
    ck_assert_int_eq(http_fixture_count(fx, "/fail"), 2);
    publish_result_free(&res);

    /* Only the open one: no healthy target. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, 1, NULL, &res),
                     HERALD_ERR_NO_HEALTHY);
    publish_result_free(&res);

    /* respect_breakers = false sends anyway. */
    {
        publish_opts o;

        publish_opts_default(&o);
        o.respect_breakers = false;
        publish_result_init(&res);
        ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, 1, &o, &res),
                         HERALD_ERR_ALL_FAILED);
        ck_assert_int_eq(http_fixture_count(fx, "/fail"), 3);
        publish_result_free(&res);
    }
}
END_TEST

START_TEST(test_breaker_half_open)
{
    publish_result res;
    breaker_state st = BREAKER_CLOSED;
    target *bad = add("flaky", "/flaky");

    /* /flaky fails once (opens the breaker), then answers 200. */
    bad->breaker.failure_threshold = 1;
    bad->breaker.open_timeout_ms = 50;
    bad->breaker.success_threshold = 1;
    bad->breaker.half_open_probes = 1;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_ERR_ALL_FAILED);
    publish_result_free(&res);
    ck_assert_int_eq(
        parallel_breaker_state(pp, "flaky", herald_now_ms(), &st, NULL),
        HERALD_OK);
    ck_assert_int_eq(st, BREAKER_OPEN);
    WAIT_FOR(parallel_breaker_state(pp, "flaky", herald_now_ms(), &st, NULL) ==
                 HERALD_OK &&
             st == BREAKER_HALF_OPEN);
    /* Half-open lets the probe through; its success closes the breaker. */
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    ck_assert_int_eq(res.targets[0].attempts, 1);
    publish_result_free(&res);
    ck_assert_int_eq(
        parallel_breaker_state(pp, "flaky", herald_now_ms(), &st, NULL),
        HERALD_OK);
    ck_assert_int_eq(st, BREAKER_CLOSED);
    ck_assert_int_eq(http_fixture_count(fx, "/flaky"), 2);
}
END_TEST

START_TEST(test_breaker_kept_across_reload)
{
    target *a1 = add("same", "/ok");
    target *a2 = add("same", "/ok");
    target *b2 = add("same", "/ok");
    breaker *br1;

    /* Two target objects with one name and equal settings (a reload):
     * one breaker. Changed settings: a fresh breaker. */
    br1 = parallel_breaker_for(pp, a1);
    ck_assert_ptr_nonnull(br1);
    ck_assert_ptr_eq(parallel_breaker_for(pp, a2), br1);
    b2->breaker.failure_threshold = 99;
    ck_assert_ptr_ne(parallel_breaker_for(pp, b2), br1);
    ck_assert_ptr_null(parallel_breaker_for(pp, NULL));
}
END_TEST

/* ------------------------------------------------------------------ */
/* Concurrency                                                          */
/* ------------------------------------------------------------------ */

struct pub_job {
    target *t;
    herald_err err;
};

static void *pub_thread(void *arg)
{
    struct pub_job *job = arg;
    publish_result res;

    publish_result_init(&res);
    job->err = publish_to_multiple(pp, &test_alert, &job->t, 1, NULL, &res);
    publish_result_free(&res);
    return NULL;
}

START_TEST(test_max_concurrency_respected)
{
    enum { N = 6 };
    pthread_t th[N];
    struct pub_job jobs[N];
    target *t = add("gate", "/gate");

    /* Six concurrent publishes to one target limited to two in flight:
     * all six are delivered (queued, not dropped), two at a time. */
    t->max_concurrency = 2;
    for (int i = 0; i < N; i++) {
        jobs[i].t = t;
        jobs[i].err = HERALD_ERR_STATE;
        pthread_create(&th[i], NULL, pub_thread, &jobs[i]);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_int_eq(jobs[i].err, HERALD_OK);
    }
    ck_assert_int_eq(http_fixture_count(fx, "/gate"), N);
    ck_assert_int_le(http_fixture_max_concurrent(fx, "/gate"), 2);
    ck_assert_int_ge(http_fixture_max_concurrent(fx, "/gate"), 1);
}
END_TEST

START_TEST(test_max_concurrent_targets)
{
    publish_result res;
    publish_opts o;

    /* One leg at a time: never two /gate requests at once. */
    for (int i = 0; i < 4; i++) {
        char name[16];

        snprintf(name, sizeof name, "g%d", i);
        add(name, "/gate");
    }
    publish_opts_default(&o);
    o.max_concurrent_targets = 1;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 4);
    ck_assert_int_eq(http_fixture_max_concurrent(fx, "/gate"), 1);
    publish_result_free(&res);

    /* Unlimited: the four legs overlap. */
    http_fixture_reset(fx);
    o.max_concurrent_targets = 0;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_OK);
    ck_assert_uint_eq(res.succeeded, 4);
    ck_assert_int_ge(http_fixture_max_concurrent(fx, "/gate"), 2);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_deadline_with_waiting_legs)
{
    publish_result res;
    publish_opts o;

    /* With one leg at a time, the second slow leg never starts before the
     * deadline: it is still reported, failed with 0 attempts. */
    add("s1", "/slow");
    add("s2", "/slow");
    publish_opts_default(&o);
    o.max_concurrent_targets = 1;
    o.deadline_ms = 150;
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, &o, &res),
                     HERALD_ERR_DEADLINE);
    ck_assert_uint_eq(res.failed, 2);
    ck_assert_int_eq(find(&res, "s2")->attempts, 0);
    ck_assert_str_eq(find(&res, "s2")->error_type, "deadline");
    publish_result_free(&res);
}
END_TEST

/* A regex match that hits a limit skips the leg as filtered and is counted
 * per target in herald_matcher_limit_hits_total. */
START_TEST(test_matcher_limit_metric)
{
    static char longv[3000];
    alert_kv kv[] = {{"alertname", "DiskFull"}, {"team", longv}};
    alert a = test_alert;
    target *t = add("m-limit", "/ok");
    publish_result res;
    char why[256];
    buf out;

    memset(longv, 'a', sizeof(longv) - 1);
    a.labels.items = kv;
    ck_assert_int_eq(matchers_parse("team=~\"(?:a{0,1000}){8}(?:b|c)\"",
                                    &t->matchers, &t->n_matchers, why,
                                    sizeof(why)),
                     HERALD_OK);
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_all(pp, &a, tg, ntg, NULL, &res),
                     HERALD_ERR_NO_ENABLED);
    ck_assert_int_eq(find(&res, "m-limit")->outcome, PUBLISH_OUTCOME_SKIPPED);
    publish_result_free(&res);
    buf_init(&out, 4 * 1024 * 1024);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    ck_assert_msg(strstr(buf_str(&out), "herald_matcher_limit_hits_total{"
                                        "target=\"m-limit\"} 1\n") != NULL,
                  "%s", buf_str(&out));
    buf_free(&out);
}
END_TEST

START_TEST(test_metrics_exposed)
{
    publish_result res;
    buf out;

    add("m-ok", "/ok");
    add("m-bad", "/fail");
    publish_result_init(&res);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &res),
                     HERALD_OK);
    publish_result_free(&res);
    buf_init(&out, 4 * 1024 * 1024);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    ck_assert_ptr_nonnull(strstr(buf_str(&out),
                                 "herald_publishes_total{result=\"partial_"
                                 "success\"}"));
    ck_assert_ptr_nonnull(strstr(buf_str(&out),
                                 "herald_target_deliveries_total{target=\"m-"
                                 "ok\",outcome=\"delivered\"}"));
    ck_assert_ptr_nonnull(strstr(buf_str(&out),
                                 "herald_target_failures_total{target=\"m-"
                                 "bad\",error_type=\"http_5xx\"}"));
    ck_assert_ptr_nonnull(strstr(buf_str(&out),
                                 "herald_http_request_duration_seconds_count{"
                                 "target=\"m-ok\"}"));
    ck_assert_ptr_nonnull(strstr(buf_str(&out), "herald_fanout_active 0"));
    ck_assert_ptr_null(strstr(buf_str(&out), "127.0.0.1"));
    buf_free(&out);
}
END_TEST

/* ------------------------------------------------------------------ */
/* Asynchronous publishing (publish_start)                              */
/* ------------------------------------------------------------------ */

/* What a publish_done_cb saw. Fields are written before calls is
 * incremented and read after it is seen, so the atomic orders them. */
typedef struct async_done {
    atomic_int calls;
    herald_err err;
    publish_result *res;
    pthread_t thread;
    char thread_name[16];
} async_done;

static void async_done_init(async_done *d)
{
    memset(d, 0, sizeof *d);
    atomic_init(&d->calls, 0);
}

static void on_done(void *opaque, herald_err err, publish_result *res)
{
    async_done *d = opaque;

    d->err = err;
    d->res = res;
    d->thread = pthread_self();
    pthread_getname_np(pthread_self(), d->thread_name, sizeof d->thread_name);
    atomic_fetch_add(&d->calls, 1);
}

/* Starts a fan-out and waits (bounded poll) for its callback. */
static void start_and_wait(publish_mode mode, target *const *t, size_t n,
                           const publish_opts *o, publish_result *res,
                           async_done *d)
{
    async_done_init(d);
    publish_result_init(res);
    ck_assert_int_eq(
        publish_start(pp, mode, &test_alert, t, n, o, res, on_done, d),
        HERALD_OK);
    WAIT_FOR(atomic_load(&d->calls) >= 1);
    ck_assert_ptr_eq(d->res, res);
    ck_assert_int_eq(d->err, res->err);
}

/* Destroys the publisher (joining every thread that could call back) and
 * checks that the callback ran exactly once. */
static void assert_called_once(const async_done *d)
{
    parallel_destroy(pp);
    pp = NULL;
    ck_assert_int_eq(atomic_load(&d->calls), 1);
}

static void assert_same_result(const publish_result *x, const publish_result *y)
{
    ck_assert_int_eq(x->err, y->err);
    ck_assert_uint_eq(x->total, y->total);
    ck_assert_uint_eq(x->succeeded, y->succeeded);
    ck_assert_uint_eq(x->failed, y->failed);
    ck_assert_uint_eq(x->skipped, y->skipped);
    ck_assert_int_eq(x->partial_success, y->partial_success);
    ck_assert_uint_eq(x->n_targets, y->n_targets);
    for (size_t i = 0; i < x->n_targets; i++) {
        const publish_target_result *a = &x->targets[i];
        const publish_target_result *b = &y->targets[i];

        ck_assert_str_eq(a->name, b->name);
        ck_assert_str_eq(a->type, b->type);
        ck_assert_int_eq(a->outcome, b->outcome);
        ck_assert_int_eq(a->http_status, b->http_status);
        ck_assert_str_eq(a->error, b->error);
        if (a->error_type || b->error_type)
            ck_assert_str_eq(a->error_type ? a->error_type : "(null)",
                             b->error_type ? b->error_type : "(null)");
        ck_assert_int_eq(a->attempts, b->attempts);
        ck_assert_int_eq(a->skip_reason, b->skip_reason);
    }
}

/* publish_start and publish_to_multiple on the same targets agree. */
static void check_same_as_sync(herald_err want)
{
    publish_result ares;
    publish_result sres;
    async_done d;

    start_and_wait(PUBLISH_MODE_MULTIPLE, tg, ntg, NULL, &ares, &d);
    ck_assert_int_eq(d.err, want);
    publish_result_init(&sres);
    ck_assert_int_eq(publish_to_multiple(pp, &test_alert, tg, ntg, NULL, &sres),
                     want);
    assert_same_result(&ares, &sres);
    assert_called_once(&d);
    publish_result_free(&ares);
    publish_result_free(&sres);
}

START_TEST(test_start_happy_path)
{
    add("a", "/ok");
    add("b", "/ok");
    add("c", "/ok");
    check_same_as_sync(HERALD_OK);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 6);
}
END_TEST

START_TEST(test_start_partial_success)
{
    add("good", "/ok");
    add("bad", "/fail");
    check_same_as_sync(HERALD_OK);
}
END_TEST

START_TEST(test_start_total_failure)
{
    add("bad", "/fail");
    add("gone", "refused");
    check_same_as_sync(HERALD_ERR_ALL_FAILED);
}
END_TEST

START_TEST(test_start_all_skipped_inline)
{
    publish_result res;
    async_done d;

    add("off1", "/ok")->enabled = false;
    add("off2", "/ok")->enabled = false;
    async_done_init(&d);
    publish_result_init(&res);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_ALL, &test_alert, tg, ntg,
                                   NULL, &res, on_done, &d),
                     HERALD_OK);
    /* Nothing to send: called on this thread, before publish_start
     * returned. */
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    ck_assert(pthread_equal(d.thread, pthread_self()));
    ck_assert_int_eq(d.err, HERALD_ERR_NO_ENABLED);
    ck_assert_int_eq(res.err, HERALD_ERR_NO_ENABLED);
    ck_assert_uint_eq(res.skipped, 2);
    ck_assert_int_eq(res.targets[0].skip_reason, PUBLISH_REASON_DISABLED);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 0);
    assert_called_once(&d);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_start_deadline_on_timer_thread)
{
    publish_result res;
    publish_opts o;
    async_done d;
    const publish_target_result *tr;

    add("fast", "/ok");
    add("slow", "/slow");
    publish_opts_default(&o);
    o.deadline_ms = 200;
    start_and_wait(PUBLISH_MODE_MULTIPLE, tg, ntg, &o, &res, &d);
    ck_assert_str_eq(d.thread_name, "herald-timer");
    ck_assert_int_eq(d.err, HERALD_OK);
    ck_assert(res.partial_success);
    ck_assert_int_eq(find(&res, "fast")->outcome, PUBLISH_OUTCOME_DELIVERED);
    tr = find(&res, "slow");
    ck_assert_int_eq(tr->outcome, PUBLISH_OUTCOME_FAILED);
    ck_assert_str_eq(tr->error, "deadline exceeded");
    ck_assert_str_eq(tr->error_type, "deadline");
    ck_assert_int_eq(tr->attempts, 1);
    publish_result_free(&res);

    /* Only the slow one: the fan-out itself reports the deadline. */
    start_and_wait(PUBLISH_MODE_MULTIPLE, tg + 1, 1, &o, &res, &d);
    ck_assert_str_eq(d.thread_name, "herald-timer");
    ck_assert_int_eq(d.err, HERALD_ERR_DEADLINE);
    ck_assert_uint_eq(res.failed, 1);
    /* The late response is still counted, and never calls back again. */
    WAIT_FOR(parallel_in_flight(pp) == 0);
    assert_called_once(&d);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_start_cancel)
{
    publish_result res;
    publish_opts o;
    async_done d;
    pthread_t th;

    add("slow1", "/slow");
    add("slow2", "/slow");
    atomic_store(&cancel_flag, false);
    publish_opts_default(&o);
    o.cancel = &cancel_flag;
    pthread_create(&th, NULL, canceller, NULL);
    start_and_wait(PUBLISH_MODE_MULTIPLE, tg, ntg, &o, &res, &d);
    pthread_join(th, NULL);
    ck_assert_str_eq(d.thread_name, "herald-timer");
    ck_assert_int_eq(d.err, HERALD_ERR_CANCELLED);
    ck_assert_uint_eq(res.failed, 2);
    ck_assert_str_eq(res.targets[0].error, "cancelled");
    ck_assert_str_eq(res.targets[1].error_type, "cancelled");
    publish_result_free(&res);

    /* Cancelled before the start: nothing is sent, called inline. */
    http_fixture_reset(fx);
    async_done_init(&d);
    publish_result_init(&res);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_MULTIPLE, &test_alert, tg,
                                   ntg, &o, &res, on_done, &d),
                     HERALD_OK);
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    ck_assert(pthread_equal(d.thread, pthread_self()));
    ck_assert_int_eq(d.err, HERALD_ERR_CANCELLED);
    ck_assert_int_eq(res.targets[0].attempts, 0);
    ck_assert_int_eq(http_fixture_count(fx, "/slow"), 0);
    assert_called_once(&d);
    publish_result_free(&res);
}
END_TEST

START_TEST(test_start_invalid)
{
    publish_result res;
    publish_opts o;
    async_done d;

    add("a", "/ok");
    async_done_init(&d);
    publish_result_init(&res);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_MULTIPLE, &test_alert, tg,
                                   ntg, NULL, &res, NULL, NULL),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(res.err, HERALD_ERR_INVALID);
    ck_assert_uint_eq(res.n_targets, 0);
    ck_assert_int_eq(publish_start(pp, (publish_mode)7, &test_alert, tg, ntg,
                                   NULL, &res, on_done, &d),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_ALL, NULL, tg, ntg, NULL,
                                   &res, on_done, &d),
                     HERALD_ERR_INVALID);
    publish_opts_default(&o);
    o.deadline_ms = 0;
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_ALL, &test_alert, tg, ntg,
                                   &o, &res, on_done, &d),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(res.err, HERALD_ERR_INVALID);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_ALL, &test_alert, tg, ntg,
                                   NULL, NULL, on_done, &d),
                     HERALD_ERR_INVALID);
    parallel_destroy(pp);
    pp = NULL;
    ck_assert_int_eq(atomic_load(&d.calls), 0);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 0);
}
END_TEST

/* Fan-outs of the non-blocking test: each its own result, one counter. */
#define N_ASYNC 50
static publish_result async_res[N_ASYNC];
static atomic_int async_completed;
static atomic_int async_ok;

static void on_done_count(void *opaque, herald_err err, publish_result *res)
{
    (void)opaque;
    if (err == HERALD_OK && res->succeeded == 2)
        atomic_fetch_add(&async_ok, 1);
    atomic_fetch_add(&async_completed, 1);
}

START_TEST(test_start_does_not_block)
{
    int completed_after_starts;

    /* Every call waits 1 s for the slow target; its limit lets all of
     * them be in flight at once. */
    add("slow", "/slow1s")->max_concurrency = N_ASYNC;
    add("fast", "/ok");
    atomic_store(&async_completed, 0);
    atomic_store(&async_ok, 0);
    for (int i = 0; i < N_ASYNC; i++) {
        publish_result_init(&async_res[i]);
        ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_MULTIPLE, &test_alert,
                                       tg, ntg, NULL, &async_res[i],
                                       on_done_count, NULL),
                         HERALD_OK);
    }
    /* The calling thread is back from all 50 starts while every fan-out
     * still waits for the slow target. */
    completed_after_starts = atomic_load(&async_completed);
    ck_assert_int_eq(completed_after_starts, 0);
    WAIT_FOR(atomic_load(&async_completed) == N_ASYNC);
    ck_assert_int_eq(atomic_load(&async_ok), N_ASYNC);
    ck_assert_int_eq(http_fixture_count(fx, "/slow1s"), N_ASYNC);
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), N_ASYNC);
    parallel_destroy(pp);
    pp = NULL;
    ck_assert_int_eq(atomic_load(&async_completed), N_ASYNC);
    for (int i = 0; i < N_ASYNC; i++) {
        ck_assert_uint_eq(async_res[i].succeeded, 2);
        publish_result_free(&async_res[i]);
    }
}
END_TEST

START_TEST(test_destroy_completes_pending)
{
    publish_result res;
    async_done d;

    add("slow", "/slow");
    async_done_init(&d);
    publish_result_init(&res);
    ck_assert_int_eq(publish_start(pp, PUBLISH_MODE_MULTIPLE, &test_alert, tg,
                                   ntg, NULL, &res, on_done, &d),
                     HERALD_OK);
    WAIT_FOR(http_fixture_count(fx, "/slow") >= 1);
    ck_assert_int_eq(atomic_load(&d.calls), 0);
    /* Pending at destroy: completed as cancelled before it returns. */
    parallel_destroy(pp);
    pp = NULL;
    ck_assert_int_eq(atomic_load(&d.calls), 1);
    ck_assert_int_eq(d.err, HERALD_ERR_CANCELLED);
    ck_assert_uint_eq(res.failed, 1);
    ck_assert_str_eq(res.targets[0].error, "cancelled");
    ck_assert_str_eq(res.targets[0].error_type, "cancelled");
    publish_result_free(&res);
}
END_TEST

static Suite *parallel_suite(void)
{
    const check_case cases[] = {
        {"opts_defaults", test_opts_defaults},
        {"opts_validation", test_opts_validation},
        {"names", test_names},
        {"result_helpers", test_result_helpers},
        {"result_json", test_result_json},
        {"happy_path", test_happy_path},
        {"debug_logging", test_debug_logging},
        {"partial_success", test_partial_success},
        {"total_failure", test_total_failure},
        {"empty_targets", test_empty_targets},
        {"invalid_input", test_invalid_input},
        {"build_error", test_build_error},
        {"deadline", test_deadline},
        {"late_result_counted", test_late_result_counted},
        {"cancellation", test_cancellation},
        {"retry_not_resent", test_retry_does_not_resend_delivered},
        {"retry_exhausted", test_retry_exhausted},
        {"retry_after", test_retry_after_honoured},
        {"retry_max_elapsed", test_retry_bounded_by_max_elapsed},
        {"all_0", test_all_0},
        {"all_1", test_all_1},
        {"all_10", test_all_10},
        {"all_filtered", test_all_filtered},
        {"strategy_skip_unhealthy", test_strategy_skip_unhealthy},
        {"strategy_skip_degraded", test_strategy_skip_degraded},
        {"strategy_publish_to_all", test_strategy_publish_to_all},
        {"no_healthy", test_no_healthy},
        {"health_fails_open", test_health_monitor_absent_fails_open},
        {"breaker_open_mixed", test_breaker_open_and_mixed},
        {"breaker_half_open", test_breaker_half_open},
        {"breaker_reload", test_breaker_kept_across_reload},
        {"max_concurrency", test_max_concurrency_respected},
        {"max_concurrent_targets", test_max_concurrent_targets},
        {"deadline_waiting_legs", test_deadline_with_waiting_legs},
        {"metrics", test_metrics_exposed},
        {"matcher_limit_metric", test_matcher_limit_metric},
        {"start_happy_path", test_start_happy_path},
        {"start_partial_success", test_start_partial_success},
        {"start_total_failure", test_start_total_failure},
        {"start_all_skipped_inline", test_start_all_skipped_inline},
        {"start_deadline_timer", test_start_deadline_on_timer_thread},
        {"start_cancel", test_start_cancel},
        {"start_invalid", test_start_invalid},
        {"start_does_not_block", test_start_does_not_block},
        {"destroy_completes_pending", test_destroy_completes_pending},
    };
    Suite *s = suite_create("parallel");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    return s;
}

int main(void)
{
    char err[256];
    int rc;

    log_init(LOG_LEVEL_OFF, LOG_FORMAT_TEXT);
    fx = http_fixture_new(rules, CHECK_N_CASES(rules), err, sizeof err);
    if (fx == NULL) {
        fprintf(stderr, "%s\n", err);
        return EXIT_FAILURE;
    }
    rc = check_suite_run(parallel_suite());
    http_fixture_destroy(fx);
    metrics_shutdown();
    return rc;
}
