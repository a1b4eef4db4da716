/*
 * check_alert.c: the message parser (core/alert.c): every input form,
 * every poison kind with its reason and field path, and fingerprints as
 * Prometheus computes them. The fingerprint vectors were produced with
 * prometheus/common model.LabelSet.Fingerprint().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alert.h"

static herald_err parse(const char *s, alert_batch *b, alert_reason *r,
                        char *err, size_t n)
{
    return alert_batch_parse(s, s ? strlen(s) : 0, NULL, b, r, err, n);
}

START_TEST(test_fingerprint_vectors)
{
    static const struct {
        alert_kv kv[4];
        size_t n;
        const char *fp;
    } vec[] = {
        {{{0}}, 0, "cbf29ce484222325"},
        {{{"alertname", "HighCPU"}}, 1, "b5160f6bd9249a48"},
        {{{"severity", "critical"},
          {"instance", "db-1:9100"},
          {"alertname", "HighCPU"}},
         3,
         "97ac2175406f323f"},
        {{{"job", "api"},
          {"alertname", "Down"},
          {"zone", "eu-west-1"},
          {"env", "prod"}},
         4,
         "c86d96d5ded27ec3"},
        {{{"a", "\xc3\xbc\xe2\x82\xac"}, {"b", ""}}, 2, "dd3f3fd60fa5139d"},
    };

    for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        alert_kvs kvs = {(alert_kv *)vec[i].kv, vec[i].n};
        char fp[ALERT_FINGERPRINT_LEN];

        alert_fingerprint(&kvs, fp);
        ck_assert_str_eq(fp, vec[i].fp);
    }
}
END_TEST

START_TEST(test_form_webhook)
{
    const char *msg =
        "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"Down\\\"}\","
        "\"truncatedAlerts\":0,\"status\":\"firing\",\"receiver\":\"ops\","
        "\"groupLabels\":{\"alertname\":\"Down\"},"
        "\"commonLabels\":{\"alertname\":\"Down\",\"job\":\"api\"},"
        "\"commonAnnotations\":{\"summary\":\"api down\"},"
        "\"externalURL\":\"http://am:9093\",\"alerts\":["
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"Down\","
        "\"job\":\"api\",\"zone\":\"eu-west-1\",\"env\":\"prod\"},"
        "\"annotations\":{\"summary\":\"api down\"},"
        "\"startsAt\":\"2026-11-29T09:00:00Z\","
        "\"endsAt\":\"0001-01-01T00:00:00Z\","
        "\"generatorURL\":\"http://prom/graph\"},"
        "{\"status\":\"resolved\",\"labels\":{\"alertname\":\"Down\"},"
        "\"fingerprint\":\"0123456789ABCDEF\"}]}";
    alert_batch b;
    alert_reason r;
    char err[256];

    ck_assert_int_eq(parse(msg, &b, &r, err, sizeof(err)), HERALD_OK);
    ck_assert_int_eq(r, ALERT_REASON_NONE);
    ck_assert_int_eq(b.form, 1);
    ck_assert_uint_eq(b.n, 2);
    ck_assert_str_eq(b.receiver, "ops");
    ck_assert_str_eq(b.external_url, "http://am:9093");
    ck_assert_str_eq(alert_kvs_get(&b.common_labels, "job"), "api");
    ck_assert_str_eq(b.alerts[0].fingerprint, "c86d96d5ded27ec3");
    ck_assert(b.alerts[0].fingerprint_computed);
    ck_assert_str_eq(b.alerts[0].starts_at, "2026-11-29T09:00:00Z");
    ck_assert_str_eq(b.alerts[0].generator_url, "http://prom/graph");
    ck_assert_str_eq(b.alerts[0].receiver, "ops");
    ck_assert_str_eq(alert_kvs_get(&b.alerts[0].annotations, "summary"),
                     "api down");
    /* Labels come out sorted by name. */
    ck_assert_str_eq(b.alerts[0].labels.items[0].name, "alertname");
    ck_assert_str_eq(b.alerts[0].labels.items[3].name, "zone");
    ck_assert_int_eq(b.alerts[1].status, ALERT_STATUS_RESOLVED);
    ck_assert_str_eq(b.alerts[1].fingerprint, "0123456789abcdef");
    ck_assert(!b.alerts[1].fingerprint_computed);
    ck_assert_ptr_nonnull(strstr(b.alerts[1].raw_json, "0123456789ABCDEF"));
    alert_batch_free(&b);
}
END_TEST

START_TEST(test_form_single)
{
    const char *msg = "{\"status\":\"firing\",\"labels\":{\"alertname\":"
                      "\"HighCPU\",\"severity\":\"critical\","
                      "\"instance\":\"db-1:9100\"},\"annotations\":{}}";
    alert_batch b;
    alert_reason r;
    char err[256];

    ck_assert_int_eq(parse(msg, &b, &r, err, sizeof(err)), HERALD_OK);
    ck_assert_int_eq(b.form, 2);
    ck_assert_uint_eq(b.n, 1);
    ck_assert_str_eq(b.alerts[0].fingerprint, "97ac2175406f323f");
    ck_assert_str_eq(alert_severity(&b.alerts[0]), "critical");
    ck_assert_int_eq(alert_priority(&b.alerts[0]), 0);
    ck_assert_ptr_null(b.alerts[0].receiver);
    alert_batch_free(&b);
}
END_TEST

START_TEST(test_form_enriched)
{
    const char *msg =
        "{\"alert\":{\"fingerprint\":\"b5160f6bd9249a48\","
        "\"alert_name\":\"HighCPU\",\"status\":\"resolved\","
        "\"labels\":{\"instance\":\"a\"},\"annotations\":{\"summary\":\"s\"},"
        "\"starts_at\":\"2026-11-29T09:00:00Z\","
        "\"ends_at\":\"2026-11-29T10:00:00Z\","
        "\"generator_url\":\"http://g\"},"
        "\"classification\":{\"severity\":\"warning\",\"confidence\":0.9,"
        "\"reasoning\":\"r\",\"recommendations\":[\"x\"]}}";
    alert_batch b;
    alert_reason r;
    char err[256];

    ck_assert_int_eq(parse(msg, &b, &r, err, sizeof(err)), HERALD_OK);
    ck_assert_int_eq(b.form, 3);
    ck_assert_str_eq(b.alerts[0].fingerprint, "b5160f6bd9249a48");
    ck_assert_str_eq(alert_kvs_get(&b.alerts[0].labels, "alertname"),
                     "HighCPU");
    ck_assert_int_eq(b.alerts[0].status, ALERT_STATUS_RESOLVED);
    ck_assert_str_eq(alert_severity(&b.alerts[0]), "warning");
    ck_assert(b.alerts[0].classification_confidence > 0.89);
    ck_assert_str_eq(b.alerts[0].ends_at, "2026-11-29T10:00:00Z");
    ck_assert_int_eq(alert_priority(&b.alerts[0]), 4);
    alert_batch_free(&b);
}
END_TEST

/* Every poison kind gives its reason and a message naming the field. */
START_TEST(test_poison_kinds)
{
    static const struct {
        const char *msg;
        alert_reason reason;
        const char *in_err;
    } cases[] = {
        {NULL, ALERT_REASON_NULL_VALUE, "null"},
        {"", ALERT_REASON_NOT_JSON, "empty"},
        {"not json", ALERT_REASON_NOT_JSON, "byte"},
        {"{\"labels\":{\"a\":", ALERT_REASON_TRUNCATED, "truncated"},
        {"{\"labels\":{\"a\":\"\xff\xfe\"}}", ALERT_REASON_NOT_UTF8, "byte"},
        {"{\"x\":1}", ALERT_REASON_NO_ALERTS, "no alerts"},
        {"{\"alerts\":[]}", ALERT_REASON_NO_ALERTS, "alerts"},
        {"[1,2]", ALERT_REASON_WRONG_TYPE, "expected a JSON object"},
        {"null", ALERT_REASON_NULL_VALUE, "null"},
        {"{\"alerts\":{}}", ALERT_REASON_WRONG_TYPE, "alerts: expected"},
        {"{\"alerts\":[{\"labels\":{\"a\":1}}]}", ALERT_REASON_WRONG_TYPE,
         "alerts[0].labels.a: expected a string"},
        {"{\"alerts\":[{\"labels\":{\"a\":\"b\"}},3]}", ALERT_REASON_WRONG_TYPE,
         "alerts[1]: expected an object"},
        {"{\"labels\":{\"a\":\"b\"},\"status\":\"weird\"}",
         ALERT_REASON_WRONG_TYPE, "status"},
        {"{\"labels\":{}}", ALERT_REASON_WRONG_TYPE, "at least one label"},
        {"{\"labels\":{\"a\":\"b\"},\"fingerprint\":\"xyz\"}",
         ALERT_REASON_WRONG_TYPE, "fingerprint"},
        {"{\"labels\":{\"a\":\"b\"}} trailing", ALERT_REASON_NOT_JSON,
         "byte 2"},
        {"{\"alert\":\"x\"}", ALERT_REASON_WRONG_TYPE, "alert: expected"},
        {"{\"labels\":{\"alertname\":\"Nul\\u0000Byte\"}}",
         ALERT_REASON_WRONG_TYPE, "labels.alertname: the string contains"},
        {"{\"labels\":{\"a\":\"b\"},\"generatorURL\":\"x\\u0000y\"}",
         ALERT_REASON_WRONG_TYPE, "generatorURL: the string contains"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        alert_batch b;
        alert_reason r;
        char err[256];
        herald_err e = parse(cases[i].msg, &b, &r, err, sizeof(err));

        ck_assert_msg(e != HERALD_OK, "case %zu parsed", i);
        ck_assert_msg(r == cases[i].reason, "case %zu: reason %s, want %s", i,
                      alert_reason_name(r), alert_reason_name(cases[i].reason));
        ck_assert_msg(strstr(err, cases[i].in_err) != NULL,
                      "case %zu: error \"%s\" lacks \"%s\"", i, err,
                      cases[i].in_err);
        ck_assert_uint_eq(b.n, 0);
        alert_batch_free(&b);
    }
}
END_TEST

START_TEST(test_limits)
{
    alert_limits lim;
    alert_batch b;
    alert_reason r;
    char err[256];
    char deep[256];
    const char *msg = "{\"labels\":{\"alertname\":\"x\"}}";
    size_t i;

    alert_limits_default(&lim);
    lim.max_bytes = 10;
    ck_assert_int_eq(
        alert_batch_parse(msg, strlen(msg), &lim, &b, &r, err, sizeof(err)),
        HERALD_ERR_TOO_LARGE);
    ck_assert_int_eq(r, ALERT_REASON_OVERSIZE);

    alert_limits_default(&lim);
    lim.max_depth = 4;
    /* Depth 5: {"labels":{"a":[[[1]]]}} nests object, object, 3 arrays. */
    snprintf(deep, sizeof(deep), "{\"labels\":{\"a\":[[[1]]]}}");
    ck_assert_int_eq(
        alert_batch_parse(deep, strlen(deep), &lim, &b, &r, err, sizeof(err)),
        HERALD_ERR_PARSE);
    ck_assert_int_eq(r, ALERT_REASON_TOO_DEEP);
    /* At the limit it parses (and then fails on the type, not depth). */
    lim.max_depth = 5;
    alert_batch_parse(deep, strlen(deep), &lim, &b, &r, err, sizeof(err));
    ck_assert_int_eq(r, ALERT_REASON_WRONG_TYPE);

    alert_limits_default(&lim);
    lim.max_alerts = 2;
    {
        char many[512] = "{\"alerts\":[";

        for (i = 0; i < 3; i++)
            strcat(many, i ? ",{\"labels\":{\"a\":\"b\"}}"
                           : "{\"labels\":{\"a\":\"b\"}}");
        strcat(many, "]}");
        ck_assert_int_eq(alert_batch_parse(many, strlen(many), &lim, &b, &r,
                                           err, sizeof(err)),
                         HERALD_ERR_TOO_LARGE);
        ck_assert_int_eq(r, ALERT_REASON_OVERSIZE);
    }
}
END_TEST

START_TEST(test_priority)
{
    alert a;
    alert_kv kv = {"severity", "info"};

    memset(&a, 0, sizeof(a));
    ck_assert_int_eq(alert_priority(&a), 2);
    a.labels.items = &kv;
    a.labels.n = 1;
    ck_assert_int_eq(alert_priority(&a), 3);
    a.status = ALERT_STATUS_RESOLVED;
    ck_assert_int_eq(alert_priority(&a), 4);
    ck_assert_str_eq(alert_status_name(a.status), "resolved");
}
END_TEST

static Suite *alert_suite(void)
{
    Suite *s = suite_create("alert");
    struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"fingerprint", test_fingerprint_vectors},
        {"form_webhook", test_form_webhook},
        {"form_single", test_form_single},
        {"form_enriched", test_form_enriched},
        {"poison", test_poison_kinds},
        {"limits", test_limits},
        {"priority", test_priority},
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
    SRunner *sr = srunner_create(alert_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
