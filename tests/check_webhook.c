/*
 * check_webhook.c: unit tests of the webhook target plugin
 * (publishers/webhook): golden Alertmanager v4 and raw bodies, the
 * Idempotency-Key header, configured headers and auth, classification.
 */
#include "tests/plugin_fixtures.h"

static const char *const yaml_am = "targets:\n"
                                   "  - name: ops-webhook\n"
                                   "    type: webhook\n"
                                   "    url: http://127.0.0.1:9101/alerts\n"
                                   "    headers: {X-Env: demo}\n"
                                   "    auth: {type: bearer, token: tok}\n";

START_TEST(test_alertmanager_body)
{
    target_set *set = set_from(yaml_am);
    alert_batch batch;
    http_request req;

    batch_from(firing_json, &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.method, "POST");
    ck_assert_str_eq(req.url, "http://127.0.0.1:9101/alerts");
    assert_json_eq(
        buf_str(&req.body),
        "{\"receiver\":\"ops-webhook\",\"status\":\"firing\",\"alerts\":[{"
        "\"status\":\"firing\",\"labels\":{\"alertname\":\"HighLatency\","
        "\"cluster\":\"eu-1\",\"instance\":\"10.0.0.1:9090\",\"service\":"
        "\"api\",\"severity\":\"critical\"},\"annotations\":{\"description\":"
        "\"p99 latency is 3.2s\",\"runbook_url\":"
        "\"https://runbooks.example/latency\",\"summary\":\"p99 above 2s\"},"
        "\"startsAt\":\"2024-05-01T12:00:00Z\",\"endsAt\":"
        "\"0001-01-01T00:00:00Z\",\"generatorURL\":"
        "\"http://prometheus.example:9090/graph?g0.expr=up\",\"fingerprint\":"
        "\"a1b2c3d4e5f60718\"}],\"groupLabels\":{},\"commonLabels\":{"
        "\"alertname\":\"HighLatency\",\"cluster\":\"eu-1\",\"instance\":"
        "\"10.0.0.1:9090\",\"service\":\"api\",\"severity\":\"critical\"},"
        "\"commonAnnotations\":{\"description\":\"p99 latency is 3.2s\","
        "\"runbook_url\":\"https://runbooks.example/latency\",\"summary\":"
        "\"p99 above 2s\"},\"externalURL\":\"\",\"version\":\"4\","
        "\"groupKey\":\"{}:{fingerprint=\\\"a1b2c3d4e5f60718\\\"}\","
        "\"truncatedAlerts\":0}");
    ck_assert_str_eq(header_value(&req, "Content-Type"), "application/json");
    ck_assert_str_eq(header_value(&req, "X-Env"), "demo");
    ck_assert_str_eq(header_value(&req, "Authorization"), "Bearer tok");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_group_context)
{
    static const char *const payload =
        "{\"version\":\"4\",\"receiver\":\"team-x\",\"status\":\"resolved\","
        "\"groupKey\":\"{}:{alertname=\\\"Down\\\"}\",\"externalURL\":"
        "\"http://am.example:9093\",\"groupLabels\":{\"alertname\":\"Down\"},"
        "\"commonLabels\":{},\"commonAnnotations\":{},\"truncatedAlerts\":0,"
        "\"alerts\":[{\"status\":\"resolved\",\"labels\":{\"alertname\":"
        "\"Down\"},\"annotations\":{},\"startsAt\":\"2024-05-01T12:00:00Z\","
        "\"endsAt\":\"2024-05-01T12:05:00Z\",\"generatorURL\":\"\","
        "\"fingerprint\":\"00000000000000ff\"}]}";
    target_set *set = set_from(yaml_am);
    alert_batch batch;
    http_request req;

    batch_from(payload, &batch);
    build(set, &batch, &req);
    assert_json_eq(
        buf_str(&req.body),
        "{\"receiver\":\"team-x\",\"status\":\"resolved\",\"alerts\":[{"
        "\"status\":\"resolved\",\"labels\":{\"alertname\":\"Down\"},"
        "\"annotations\":{},\"startsAt\":\"2024-05-01T12:00:00Z\",\"endsAt\":"
        "\"2024-05-01T12:05:00Z\",\"generatorURL\":\"\",\"fingerprint\":"
        "\"00000000000000ff\"}],\"groupLabels\":{},\"commonLabels\":{"
        "\"alertname\":\"Down\"},\"commonAnnotations\":{},\"externalURL\":"
        "\"http://am.example:9093\",\"version\":\"4\",\"groupKey\":"
        "\"{}:{alertname=\\\"Down\\\"}\",\"truncatedAlerts\":0}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_raw_body)
{
    target_set *set = set_from("targets:\n  - name: raw\n    type: webhook\n"
                               "    url: http://127.0.0.1:9102/alerts\n"
                               "    format: raw\n");
    alert_batch batch;
    http_request req;

    batch_from(firing_json, &batch);
    build(set, &batch, &req);
    assert_json_eq(buf_str(&req.body), firing_json);
    ck_assert_str_eq(header_value(&req, "Content-Type"), "application/json");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

/* The Idempotency-Key of the set's first target for json. */
static void key_for(target_set *set, size_t idx, const char *json, char out[64])
{
    const target *tgt = targets_list(set)[idx];
    alert_batch batch;
    http_request req;
    char err[256];
    const char *key;

    batch_from(json, &batch);
    http_request_init(&req, 1 << 20);
    ck_assert_int_eq(tgt->plugin->build_request(tgt, &batch.alerts[0], &req,
                                                err, sizeof(err)),
                     HERALD_OK);
    key = header_value(&req, "Idempotency-Key");
    ck_assert_ptr_nonnull(key);
    ck_assert_uint_eq(strlen(key), 16);
    ck_assert_uint_eq(strspn(key, "0123456789abcdef"), 16);
    snprintf(out, 64, "%s", key);
    http_request_free(&req);
    alert_batch_free(&batch);
}

START_TEST(test_idempotency_key)
{
    target_set *set = set_from(
        "targets:\n  - name: one\n    type: webhook\n    url: http://h/\n"
        "  - name: two\n    type: webhook\n    url: http://h/\n");
    char k1[64];
    char k1_again[64];
    char k_resolved[64];
    char k_other_target[64];
    char k_other_start[64];
    char *later = strdup(firing_json);

    memcpy(strstr(later, "12:00:00Z"), "13", 2);
    key_for(set, 0, firing_json, k1);
    key_for(set, 0, firing_json, k1_again);
    key_for(set, 0, resolved_json, k_resolved);
    key_for(set, 1, firing_json, k_other_target);
    key_for(set, 0, later, k_other_start);
    ck_assert_str_eq(k1, k1_again);
    ck_assert_str_ne(k1, k_resolved);
    ck_assert_str_ne(k1, k_other_target);
    ck_assert_str_ne(k1, k_other_start);
    free(later);
    targets_release(set);
}
END_TEST

START_TEST(test_classify)
{
    static const class_case cases[] = {
        {200, "", NULL, DELIVERY_DELIVERED, -1},
        {204, "", NULL, DELIVERY_DELIVERED, -1},
        {400, "bad", NULL, DELIVERY_GIVE_UP, -1},
        {409, "dup", NULL, DELIVERY_GIVE_UP, -1},
        {408, "", NULL, DELIVERY_RETRY, -1},
        {429, "", "3", DELIVERY_RETRY, 3000},
        {502, "", NULL, DELIVERY_RETRY, -1},
    };
    target_set *set = set_from(yaml_am);

    run_class_cases(targets_list(set)[0], cases, N_CASES(cases));
    targets_release(set);
}
END_TEST

int main(void)
{
    static const char *const names[] = {"alertmanager_body", "group_context",
                                        "raw_body", "idempotency_key",
                                        "classify"};
    const TTest *fns[] = {test_alertmanager_body, test_group_context,
                          test_raw_body, test_idempotency_key, test_classify};

    return run_suite(make_suite("webhook", names, fns, N_CASES(fns)));
}
