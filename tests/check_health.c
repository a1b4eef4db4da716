/*
 * check_health.c: the health monitor (publishers/health.c). TCP probes
 * against the HTTP fixture's port (tests/http_fixture.h) and a closed
 * port; HTTP GET and HEAD probes against the fixture answering 200, 500,
 * 302 or slowly; passive results; unknown for unmonitored names; state
 * kept across health_set_targets; the probe thread probing on its own and
 * being stopped while running. Probes are driven with health_probe_all();
 * the thread's results are awaited with a bounded poll loop (WAIT_FOR).
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/metrics.h"
#include "publishers/breaker.h"
#include "publishers/health.h"
#include "tests/check_main.h"
#include "tests/http_fixture.h"

/*
 * How long the slow endpoint takes, and the latency judged degraded where
 * a test wants slowness to count; elsewhere the threshold is LENIENT_MS,
 * so that a loaded machine (sanitizers, parallel builds) cannot turn a
 * healthy loopback answer into a degraded one.
 */
#define SLOW_MS 300
#define DEGRADED_MS 100
#define LENIENT_MS 5000

/* /ok 200, /fail 500, /slow 200 after SLOW_MS, /moved 302 to /ok. */
static const http_fixture_rule rules[] = {
    {.path = "/ok"},
    {.path = "/fail", .status = 500},
    {.path = "/slow", .delay_ms = SLOW_MS},
    {.path = "/moved", .status = 302, .location = "/ok"},
};

/* A target filled with what the monitor reads. */
struct tgt_holder {
    target tgt;
    char name[64];
    char url[128];
    char method[8];
};

static void tgt_make(struct tgt_holder *th, const char *name, const char *url,
                     const char *method)
{
    memset(th, 0, sizeof(*th));
    snprintf(th->name, sizeof(th->name), "%s", name);
    snprintf(th->url, sizeof(th->url), "%s", url);
    snprintf(th->method, sizeof(th->method), "%s", method);
    th->tgt.name = th->name;
    th->tgt.url = th->url;
    th->tgt.enabled = true;
    th->tgt.tls_verify = true;
    th->tgt.health.enabled = true;
    th->tgt.health.method = th->method;
    th->tgt.health.interval_ms = 10000;
    th->tgt.health.timeout_ms = 5000;
    th->tgt.health.degraded_latency_ms = LENIENT_MS;
    th->tgt.health.unhealthy_after = 3;
}

/* A fixture serving rules; the test destroys it. */
static http_fixture *fixture_start(void)
{
    char err[256] = "";
    http_fixture *fx =
        http_fixture_new(rules, CHECK_N_CASES(rules), err, sizeof(err));

    ck_assert_msg(fx != NULL, "%s", err);
    return fx;
}

static health *monitor_new(bool thread)
{
    char err[256] = "";
    health *h = health_new(thread, err, sizeof(err));

    ck_assert_msg(h != NULL, "health_new: %s", err);
    return h;
}

/* Value of the metric line starting with prefix, or -1 when absent. */
static double metric_value(const char *prefix)
{
    buf out;
    double v = -1.0;
    const char *p;
    size_t n = strlen(prefix);

    buf_init(&out, 1 << 22);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    p = buf_str(&out);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    buf_free(&out);
    return v;
}

START_TEST(test_tcp_healthy)
{
    struct tgt_holder a;
    target *list[1];
    char url[128];
    http_fixture *fx = fixture_start();
    health *h = monitor_new(false);

    tgt_make(&a, "tcp_up", http_fixture_url(fx, "/hook", url, sizeof(url)),
             "TCP");
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    ck_assert_int_eq(health_get(h, "tcp_up"), HEALTH_UNKNOWN);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_up"), HEALTH_HEALTHY);
    ck_assert(metric_value("herald_target_health{target=\"tcp_up\"}") == 1.0);
    ck_assert(metric_value("herald_health_probes_total{target=\"tcp_up\","
                           "result=\"success\"}") == 1.0);

    /* A scheme curl does not know works when the URL names the port. */
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", http_fixture_port(fx));
    tgt_make(&a, "tcp_scheme", url, "TCP");
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_scheme"), HEALTH_HEALTHY);
    health_destroy(h);
    http_fixture_destroy(fx);
}
END_TEST

START_TEST(test_tcp_closed_port)
{
    struct tgt_holder a;
    struct tgt_holder bad;
    target *list[2];
    char url[128];
    health *h = monitor_new(false);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/",
             http_fixture_closed_port());
    tgt_make(&a, "tcp_down", url, "TCP");
    /* A URL without a usable host fails as well. */
    tgt_make(&bad, "tcp_bad_url", "not a url", "TCP");
    list[0] = &a.tgt;
    list[1] = &bad.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    /* Fewer than unhealthy_after failures: degraded, not unhealthy. */
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_DEGRADED);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_DEGRADED);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "tcp_bad_url"), HEALTH_UNHEALTHY);
    ck_assert(metric_value("herald_target_health{target=\"tcp_down\"}") == 3.0);
    ck_assert(metric_value("herald_health_probes_total{target=\"tcp_down\","
                           "result=\"failure\"}") == 3.0);
    health_destroy(h);
}
END_TEST

START_TEST(test_http_probes)
{
    struct tgt_holder t[5];
    target *list[5];
    char url[128];
    http_fixture *fx = fixture_start();
    health *h = monitor_new(false);

    tgt_make(&t[0], "http_ok", http_fixture_url(fx, "/ok", url, sizeof(url)),
             "GET");
    tgt_make(&t[1], "http_head", url, "HEAD");
    tgt_make(&t[2], "http_fail",
             http_fixture_url(fx, "/fail", url, sizeof(url)), "GET");
    tgt_make(&t[3], "http_slow",
             http_fixture_url(fx, "/slow", url, sizeof(url)), "GET");
    t[3].tgt.health.degraded_latency_ms = DEGRADED_MS;
    /* The probe URL may differ from the target URL; 3xx counts as up. */
    tgt_make(&t[4], "http_moved",
             http_fixture_url(fx, "/fail", url, sizeof(url)), "GET");
    t[4].tgt.health.url = http_fixture_url(fx, "/moved", url, sizeof(url));
    for (int i = 0; i < 5; i++)
        list[i] = &t[i].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 5), HERALD_OK);

    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "http_ok"), HEALTH_HEALTHY);
    ck_assert_int_eq(health_get(h, "http_head"), HEALTH_HEALTHY);
    ck_assert_int_eq(health_get(h, "http_fail"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_slow"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_moved"), HEALTH_HEALTHY);
    health_probe_all(h);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "http_fail"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "http_slow"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_ok"), HEALTH_HEALTHY);
    ck_assert(metric_value("herald_health_probes_total{target=\"http_ok\","
                           "result=\"success\"}") == 3.0);
    health_destroy(h);
    http_fixture_destroy(fx);
}
END_TEST

START_TEST(test_passive)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(false);

    /* No active probes: only deliveries count. */
    tgt_make(&a, "passive", "http://127.0.0.1:1/", "TCP");
    a.tgt.health.enabled = false;
    a.tgt.health.degraded_latency_ms = DEGRADED_MS;
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_UNKNOWN);

    health_record(h, "passive", true, 5.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* A slow success is degraded; a fast one after it is healthy. */
    health_record(h, "passive", true, DEGRADED_MS + 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", true, DEGRADED_MS - 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* Failures: degraded, then unhealthy at unhealthy_after in a row. */
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_UNHEALTHY);
    /* One success ends unhealthy; the recent failures keep it degraded
     * until five results in a row succeeded. */
    for (int i = 0; i < 4; i++) {
        health_record(h, "passive", true, 1.0);
        ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    }
    health_record(h, "passive", true, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* Passive results are not probes. */
    ck_assert(metric_value("herald_health_probes_total{target=\"passive\","
                           "result=\"success\"}") == -1.0);
    health_destroy(h);
}
END_TEST

START_TEST(test_unknown)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(false);

    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    /* Results for names not monitored are ignored. */
    health_record(h, "nobody", false, 1.0);
    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    tgt_make(&a, "someone", "http://127.0.0.1:1/", "TCP");
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    ck_assert_int_eq(health_get(h, "someone"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(NULL, "someone"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, NULL), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_set_targets(h, NULL, 1), HERALD_ERR_INVALID);
    ck_assert_str_eq(health_status_name(HEALTH_UNKNOWN), "unknown");
    ck_assert_str_eq(health_status_name(HEALTH_HEALTHY), "healthy");
    ck_assert_str_eq(health_status_name(HEALTH_DEGRADED), "degraded");
    ck_assert_str_eq(health_status_name(HEALTH_UNHEALTHY), "unhealthy");
    health_record(NULL, "someone", true, 1.0);
    health_probe_all(NULL);
    health_destroy(h);
    health_destroy(NULL);
}
END_TEST

START_TEST(test_set_targets_keeps_state)
{
    struct tgt_holder first[2];
    struct tgt_holder second[2];
    target *list[2];
    health *h = monitor_new(false);

    tgt_make(&first[0], "stays", "http://127.0.0.1:1/", "TCP");
    tgt_make(&first[1], "goes", "http://127.0.0.1:1/", "TCP");
    first[0].tgt.health.enabled = false;
    first[1].tgt.health.enabled = false;
    list[0] = &first[0].tgt;
    list[1] = &first[1].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    for (int i = 0; i < 3; i++)
        health_record(h, "stays", false, 1.0);
    health_record(h, "goes", true, 1.0);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "goes"), HEALTH_HEALTHY);

    /* A reload: new target objects, one name kept, one new. */
    tgt_make(&second[0], "stays", "http://127.0.0.1:2/", "TCP");
    tgt_make(&second[1], "new", "http://127.0.0.1:2/", "TCP");
    second[0].tgt.health.enabled = false;
    second[1].tgt.health.enabled = false;
    memset(first, 0, sizeof(first));
    list[0] = &second[0].tgt;
    list[1] = &second[1].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "new"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, "goes"), HEALTH_UNKNOWN);
    ck_assert(metric_value("herald_target_health{target=\"goes\"}") == -1.0);
    ck_assert(metric_value("herald_target_health{target=\"stays\"}") == 3.0);
    /* The kept counters go on: one success leaves unhealthy. */
    health_record(h, "stays", true, 1.0);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_DEGRADED);

    /* An empty set forgets everything. */
    ck_assert_int_eq(health_set_targets(h, NULL, 0), HERALD_OK);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNKNOWN);
    health_destroy(h);
}
END_TEST

START_TEST(test_thread_probes)
{
    struct tgt_holder a;
    struct tgt_holder off;
    target *list[2];
    char url[128];
    http_fixture *fx = fixture_start();
    health *h = monitor_new(true);

    tgt_make(&a, "threaded", http_fixture_url(fx, "/", url, sizeof(url)),
             "TCP");
    a.tgt.health.interval_ms = 10;
    /* A disabled target is never probed. */
    tgt_make(&off, "disabled", url, "TCP");
    off.tgt.enabled = false;
    off.tgt.health.interval_ms = 10;
    list[0] = &a.tgt;
    list[1] = &off.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    WAIT_FOR(health_get(h, "threaded") == HEALTH_HEALTHY);
    /* The thread keeps probing: closing the port makes it unhealthy. */
    http_fixture_destroy(fx);
    WAIT_FOR(health_get(h, "threaded") == HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "disabled"), HEALTH_UNKNOWN);
    /* Destroyed while the thread runs and probes. */
    health_destroy(h);
}
END_TEST

START_TEST(test_thread_destroy_idle)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(true);

    /* Idle thread (nothing due for a long time) stops at once. */
    tgt_make(&a, "idle", "http://127.0.0.1:1/", "TCP");
    a.tgt.health.enabled = false;
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_destroy(h);
    health_destroy(monitor_new(true));
}
END_TEST

static Suite *health_suite(void)
{
    const check_case cases[] = {
        {"tcp_healthy", test_tcp_healthy},
        {"tcp_closed_port", test_tcp_closed_port},
        {"http_probes", test_http_probes},
        {"passive", test_passive},
        {"unknown", test_unknown},
        {"set_targets_keeps_state", test_set_targets_keeps_state},
        {"thread_probes", test_thread_probes},
        {"thread_destroy_idle", test_thread_destroy_idle},
    };
    Suite *s = suite_create("health");

    check_suite_add(s, cases, CHECK_N_CASES(cases), NULL, NULL);
    return s;
}

int main(void)
{
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    rc = check_suite_run(health_suite());
    metrics_shutdown();
    curl_global_cleanup();
    return rc;
}
