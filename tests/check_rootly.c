/*
 * check_rootly.c: unit tests of the Rootly target plugin
 * (publishers/rootly): golden JSON:API create and resolve bodies keyed by
 * the fingerprint, headers, options, and classification.
 */
#include "tests/plugin_fixtures.h"

static const char *const yaml_ro = "targets:\n"
                                   "  - name: ro\n"
                                   "    type: rootly\n"
                                   "    url: http://127.0.0.1:9106\n"
                                   "    token: r00tly\n";

START_TEST(test_create_body)
{
    target_set *set = set_from(yaml_ro);
    alert_batch batch;
    http_request req;

    batch_from(firing_json, &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.method, "POST");
    ck_assert_str_eq(req.url, "http://127.0.0.1:9106/v1/alerts");
    ck_assert_str_eq(header_value(&req, "Content-Type"),
                     "application/vnd.api+json");
    ck_assert_str_eq(header_value(&req, "Accept"), "application/vnd.api+json");
    ck_assert_str_eq(header_value(&req, "Authorization"), "Bearer r00tly");
    assert_json_eq(
        buf_str(&req.body),
        "{\"data\":{\"type\":\"alerts\",\"attributes\":{\"source\":"
        "\"rootly\",\"summary\":\"HighLatency: p99 above 2s\","
        "\"description\":\"p99 latency is 3.2s\",\"status\":\"open\","
        "\"started_at\":\"2024-05-01T12:00:00Z\",\"external_id\":"
        "\"a1b2c3d4e5f60718\",\"external_url\":"
        "\"http://prometheus.example:9090/graph?g0.expr=up\","
        "\"deduplication_key\":\"a1b2c3d4e5f60718\",\"labels\":["
        "{\"key\":\"alertname\",\"value\":\"HighLatency\"},{\"key\":"
        "\"cluster\",\"value\":\"eu-1\"},{\"key\":\"instance\",\"value\":"
        "\"10.0.0.1:9090\"},{\"key\":\"service\",\"value\":\"api\"},"
        "{\"key\":\"severity\",\"value\":\"critical\"}],\"data\":{"
        "\"fingerprint\":\"a1b2c3d4e5f60718\",\"status\":\"firing\","
        "\"labels\":{\"alertname\":\"HighLatency\",\"cluster\":\"eu-1\","
        "\"instance\":\"10.0.0.1:9090\",\"service\":\"api\",\"severity\":"
        "\"critical\"},\"annotations\":{\"description\":"
        "\"p99 latency is 3.2s\",\"runbook_url\":"
        "\"https://runbooks.example/latency\",\"summary\":"
        "\"p99 above 2s\"}}}}}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_resolve_body)
{
    target_set *set =
        set_from("targets:\n  - name: ro\n    type: rootly\n    token: t\n"
                 "    source: alertmanager\n"
                 "    notification_target_type: EscalationPolicy\n"
                 "    notification_target_id: ep-1\n"
                 "    alert_urgency_id: urg-1\n");
    alert_batch batch;
    http_request req;

    batch_from(resolved_json, &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.url, "https://api.rootly.com/v1/alerts");
    /* The same deduplication key resolves what any replica created. */
    assert_json_eq(
        buf_str(&req.body),
        "{\"data\":{\"type\":\"alerts\",\"attributes\":{\"source\":"
        "\"alertmanager\",\"summary\":\"HighLatency: p99 above 2s\","
        "\"status\":\"resolved\",\"started_at\":\"2024-05-01T12:00:00Z\","
        "\"ended_at\":\"2024-05-01T12:30:00Z\",\"external_id\":"
        "\"a1b2c3d4e5f60718\",\"deduplication_key\":\"a1b2c3d4e5f60718\","
        "\"labels\":[{\"key\":\"alertname\",\"value\":\"HighLatency\"},"
        "{\"key\":\"cluster\",\"value\":\"eu-1\"},{\"key\":\"instance\","
        "\"value\":\"10.0.0.1:9090\"},{\"key\":\"service\",\"value\":"
        "\"api\"},{\"key\":\"severity\",\"value\":\"critical\"}],\"data\":{"
        "\"fingerprint\":\"a1b2c3d4e5f60718\",\"status\":\"resolved\","
        "\"labels\":{\"alertname\":\"HighLatency\",\"cluster\":\"eu-1\","
        "\"instance\":\"10.0.0.1:9090\",\"service\":\"api\",\"severity\":"
        "\"critical\"},\"annotations\":{\"summary\":\"p99 above 2s\"}},"
        "\"notification_target_type\":\"EscalationPolicy\","
        "\"notification_target_id\":\"ep-1\",\"alert_urgency_id\":"
        "\"urg-1\"}}}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_config_errors)
{
    target_set *set = (target_set *)1;
    char err[512];

    ck_assert_int_eq(
        targets_load_string("targets:\n  - name: ro\n    type: rootly\n"
                            "    token: t\n"
                            "    notification_target_id: x\n",
                            "t.yaml", &set, err, sizeof(err)),
        HERALD_ERR_CONFIG);
    ck_assert_str_eq(err, "t.yaml:2:5: targets[0]: notification_target_type "
                          "and notification_target_id must be set together");
    ck_assert_int_eq(
        targets_load_string("targets:\n  - name: ro\n    type: rootly\n",
                            "t.yaml", &set, err, sizeof(err)),
        HERALD_ERR_CONFIG);
    ck_assert_str_eq(err, "t.yaml:2:5: targets[0]: token: missing required "
                          "key for type rootly");
}
END_TEST

START_TEST(test_classify)
{
    static const class_case cases[] = {
        {201, "{\"data\":{}}", NULL, DELIVERY_DELIVERED, -1},
        {200, "", NULL, DELIVERY_DELIVERED, -1},
        {401, "", NULL, DELIVERY_GIVE_UP, -1},
        {404, "", NULL, DELIVERY_GIVE_UP, -1},
        {422, "{\"errors\":[]}", NULL, DELIVERY_GIVE_UP, -1},
        {429, "", "1", DELIVERY_RETRY, 1000},
        {500, "", NULL, DELIVERY_RETRY, -1},
    };
    target_set *set = set_from(yaml_ro);

    run_class_cases(targets_list(set)[0], cases, N_CASES(cases));
    targets_release(set);
}
END_TEST

int main(void)
{
    static const char *const names[] = {"create_body", "resolve_body",
                                        "config_errors", "classify"};
    const TTest *fns[] = {test_create_body, test_resolve_body,
                          test_config_errors, test_classify};

    return run_suite(make_suite("rootly", names, fns, N_CASES(fns)));
}
