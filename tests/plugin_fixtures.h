/*
 * plugin_fixtures.h: fixtures shared by the target-plugin tests
 * (check_webhook.c, check_slack.c, check_pagerduty.c, check_rootly.c):
 * alerts parsed from JSON, targets loaded from YAML, golden comparison of
 * JSON bodies (json_object_equal, so key order does not matter) and
 * classification tables. Included once per test program: static functions.
 */
#ifndef HERALD_PLUGIN_FIXTURES_H
#define HERALD_PLUGIN_FIXTURES_H

#include <check.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/alert.h"
#include "publishers/targets.h"

/* Shared by the plugin tests: alerts from JSON, targets from YAML, golden
 * comparison of JSON bodies. */
static const char *const firing_json =
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"HighLatency\","
    "\"severity\":\"critical\",\"service\":\"api\",\"instance\":"
    "\"10.0.0.1:9090\",\"cluster\":\"eu-1\"},\"annotations\":{\"summary\":"
    "\"p99 above 2s\",\"description\":\"p99 latency is 3.2s\","
    "\"runbook_url\":\"https://runbooks.example/latency\"},\"startsAt\":"
    "\"2024-05-01T12:00:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
    "\"generatorURL\":\"http://prometheus.example:9090/graph?g0.expr=up\","
    "\"fingerprint\":\"a1b2c3d4e5f60718\"}";

static const char *const resolved_json =
    "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"HighLatency\","
    "\"severity\":\"critical\",\"service\":\"api\",\"instance\":"
    "\"10.0.0.1:9090\",\"cluster\":\"eu-1\"},\"annotations\":{\"summary\":"
    "\"p99 above 2s\"},\"startsAt\":\"2024-05-01T12:00:00Z\",\"endsAt\":"
    "\"2024-05-01T12:30:00Z\",\"generatorURL\":\"\","
    "\"fingerprint\":\"a1b2c3d4e5f60718\"}";

static void batch_from(const char *json, alert_batch *batch)
{
    alert_limits lim;
    alert_reason reason;
    char err[256] = "";

    alert_limits_default(&lim);
    memset(batch, 0, sizeof(*batch));
    ck_assert_msg(alert_batch_parse(json, strlen(json), &lim, batch, &reason,
                                    err, sizeof(err)) == HERALD_OK,
                  "alert: %s", err);
    ck_assert_uint_ge(batch->n, 1);
}

static target_set *set_from(const char *yaml)
{
    target_set *set = NULL;
    char err[512] = "";

    ck_assert_msg(targets_load_string(yaml, "t.yaml", &set, err, sizeof(err)) ==
                      HERALD_OK,
                  "targets: %s", err);
    return set;
}

/* Builds the request of the set's first target for the batch's first
 * alert; the caller frees req. */
static void build(target_set *set, const alert_batch *batch, http_request *req)
{
    const target *tgt = targets_list(set)[0];
    char err[256] = "";

    http_request_init(req, 1024 * 1024);
    ck_assert_msg(tgt->plugin->build_request(tgt, &batch->alerts[0], req, err,
                                             sizeof(err)) == HERALD_OK,
                  "build: %s", err);
}

static void assert_json_eq(const char *got, const char *want)
{
    json_object *g = json_tokener_parse(got);
    json_object *w = json_tokener_parse(want);

    ck_assert_msg(g != NULL, "body is not JSON: %s", got);
    ck_assert_msg(w != NULL, "golden is not JSON: %s", want);
    ck_assert_msg(json_object_equal(g, w), "body differs:\n got: %s\nwant: %s",
                  json_object_to_json_string_ext(g, JSON_C_TO_STRING_PLAIN),
                  json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
    json_object_put(g);
    json_object_put(w);
}

static const char *header_value(const http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

typedef struct class_case {
    long status;
    const char *body;
    const char *retry_after;
    delivery_verdict verdict;
    int retry_after_ms;
} class_case;

static void run_class_cases(const target *tgt, const class_case *cases,
                            size_t n)
{
    for (size_t i = 0; i < n; i++) {
        http_response resp = {0};
        delivery_outcome out;

        resp.status = cases[i].status;
        resp.body = cases[i].body;
        resp.body_len = strlen(cases[i].body);
        resp.retry_after = cases[i].retry_after;
        target_classify(tgt, &resp, &out);
        ck_assert_msg(out.verdict == cases[i].verdict,
                      "HTTP %ld \"%s\": verdict %d, want %d", cases[i].status,
                      cases[i].body, out.verdict, cases[i].verdict);
        ck_assert_int_eq(out.retry_after_ms, cases[i].retry_after_ms);
        ck_assert(out.verdict == DELIVERY_DELIVERED
                      ? out.error_type == NULL && out.error[0] == '\0'
                      : out.error_type != NULL && out.error[0] != '\0');
    }
}

#define N_CASES(a) (sizeof(a) / sizeof((a)[0]))

static Suite *make_suite(const char *name, const char *const *names,
                         const TTest *const *fns, size_t n)
{
    Suite *s = suite_create(name);

    for (size_t i = 0; i < n; i++) {
        TCase *tc = tcase_create(names[i]);

        tcase_add_test(tc, fns[i]);
        suite_add_tcase(s, tc);
    }
    return s;
}

static int run_suite(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
