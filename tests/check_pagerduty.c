/*
 * check_pagerduty.c: unit tests of the PagerDuty target plugin
 * (publishers/pagerduty): golden Events API v2 trigger and resolve events,
 * severity mapping, the 512 KB size limit, and classification.
 */
#include "tests/plugin_fixtures.h"

static const char *const yaml_pd = "targets:\n"
                                   "  - name: pd\n"
                                   "    type: pagerduty\n"
                                   "    url: http://127.0.0.1:9105/\n"
                                   "    routing_key: R0UT1NGKEY\n";

START_TEST(test_trigger_body)
{
    target_set *set = set_from(yaml_pd);
    alert_batch batch;
    http_request req;

    batch_from(firing_json, &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.method, "POST");
    ck_assert_str_eq(req.url, "http://127.0.0.1:9105/v2/enqueue");
    ck_assert_str_eq(header_value(&req, "Content-Type"), "application/json");
    assert_json_eq(
        buf_str(&req.body),
        "{\"routing_key\":\"R0UT1NGKEY\",\"event_action\":\"trigger\","
        "\"dedup_key\":\"a1b2c3d4e5f60718\",\"payload\":{\"summary\":"
        "\"HighLatency: p99 above 2s\",\"source\":\"10.0.0.1:9090\","
        "\"severity\":\"critical\",\"timestamp\":\"2024-05-01T12:00:00Z\","
        "\"component\":\"api\",\"group\":\"eu-1\",\"class\":\"HighLatency\","
        "\"custom_details\":{\"labels\":{\"alertname\":\"HighLatency\","
        "\"cluster\":\"eu-1\",\"instance\":\"10.0.0.1:9090\",\"service\":"
        "\"api\",\"severity\":\"critical\"},\"annotations\":{\"description\":"
        "\"p99 latency is 3.2s\",\"runbook_url\":"
        "\"https://runbooks.example/latency\",\"summary\":"
        "\"p99 above 2s\"}}},\"links\":[{\"href\":"
        "\"http://prometheus.example:9090/graph?g0.expr=up\",\"text\":"
        "\"Source\"},{\"href\":\"https://runbooks.example/latency\","
        "\"text\":\"Runbook\"}]}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_resolve_body)
{
    target_set *set = set_from(yaml_pd);
    alert_batch batch;
    http_request req;

    batch_from(resolved_json, &batch);
    build(set, &batch, &req);
    assert_json_eq(buf_str(&req.body),
                   "{\"routing_key\":\"R0UT1NGKEY\",\"event_action\":"
                   "\"resolve\",\"dedup_key\":\"a1b2c3d4e5f60718\"}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_defaults_minimal_alert)
{
    target_set *set = set_from("targets:\n  - name: pd\n    type: pagerduty\n"
                               "    routing_key: k\n");
    alert_batch batch;
    http_request req;

    batch_from("{\"status\":\"firing\",\"labels\":{\"job\":\"x\"},"
               "\"annotations\":{},\"fingerprint\":\"1\"}",
               &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.url, "https://events.pagerduty.com/v2/enqueue");
    assert_json_eq(buf_str(&req.body),
                   "{\"routing_key\":\"k\",\"event_action\":\"trigger\","
                   "\"dedup_key\":\"0000000000000001\",\"payload\":{"
                   "\"summary\":\"alert 0000000000000001\",\"source\":"
                   "\"herald\",\"severity\":\"error\",\"custom_details\":{"
                   "\"labels\":{\"job\":\"x\"},\"annotations\":{}}}}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_severity_map)
{
    static const struct {
        const char *severity;
        const char *want;
    } cases[] = {
        {"critical", "critical"}, {"CRITICAL", "critical"}, {"error", "error"},
        {"high", "error"},        {"warning", "warning"},   {"info", "info"},
        {"page", "critical"}, /* severity_map */
        {"low", "info"},      /* severity_map */
        {"weird", "warning"}, /* default_severity */
    };
    target_set *set = set_from(
        "targets:\n  - name: pd\n    type: pagerduty\n    routing_key: k\n"
        "    severity_map: {page: critical, low: info}\n"
        "    default_severity: warning\n");

    for (size_t i = 0; i < N_CASES(cases); i++) {
        char json[256];
        alert_batch batch;
        http_request req;
        json_object *body;
        json_object *payload;

        snprintf(json, sizeof(json),
                 "{\"status\":\"firing\",\"labels\":{\"severity\":\"%s\"},"
                 "\"annotations\":{}}",
                 cases[i].severity);
        batch_from(json, &batch);
        build(set, &batch, &req);
        body = json_tokener_parse(buf_str(&req.body));
        payload = json_object_object_get(body, "payload");
        ck_assert_str_eq(
            json_object_get_string(json_object_object_get(payload, "severity")),
            cases[i].want);
        json_object_put(body);
        http_request_free(&req);
        alert_batch_free(&batch);
    }
    targets_release(set);
}
END_TEST

START_TEST(test_size_limit)
{
    /* A 700 KB description and a 2000-byte summary. */
    size_t big = 700 * 1024;
    char *desc = malloc(big + 1);
    char *sum = malloc(2001);
    char *json = malloc(big + 4096);
    target_set *set = set_from(yaml_pd);
    alert_batch batch;
    http_request req;
    json_object *body;
    json_object *payload;
    json_object *ann;
    const char *s;

    memset(desc, 'd', big);
    desc[big] = '\0';
    memset(sum, 's', 2000);
    sum[2000] = '\0';
    snprintf(json, big + 4096,
             "{\"status\":\"firing\",\"labels\":{\"alertname\":\"Big\"},"
             "\"annotations\":{\"description\":\"%s\",\"summary\":\"%s\"}}",
             desc, sum);
    batch_from(json, &batch);
    build(set, &batch, &req);
    ck_assert_uint_lt(req.body.len, 512 * 1024);
    body = json_tokener_parse(buf_str(&req.body));
    ck_assert_ptr_nonnull(body);
    payload = json_object_object_get(body, "payload");
    s = json_object_get_string(json_object_object_get(payload, "summary"));
    ck_assert_uint_eq(strlen(s), 1024);
    ck_assert(strncmp(s, "Big: sss", 8) == 0);
    ck_assert_str_eq(s + 1021, "...");
    ann = json_object_object_get(
        json_object_object_get(payload, "custom_details"), "annotations");
    s = json_object_get_string(json_object_object_get(ann, "description"));
    ck_assert_uint_eq(strlen(s), 1024);
    ck_assert_str_eq(s + 1021, "...");
    json_object_put(body);
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
    free(desc);
    free(sum);
    free(json);
}
END_TEST

START_TEST(test_classify)
{
    static const class_case cases[] = {
        {202, "{\"status\":\"success\"}", NULL, DELIVERY_DELIVERED, -1},
        {400, "{\"status\":\"invalid event\"}", NULL, DELIVERY_GIVE_UP, -1},
        {429, "", NULL, DELIVERY_RETRY, -1},
        {429, "", "5", DELIVERY_RETRY, 5000},
        {500, "", NULL, DELIVERY_RETRY, -1},
        {503, "", NULL, DELIVERY_RETRY, -1},
    };
    target_set *set = set_from(yaml_pd);

    run_class_cases(targets_list(set)[0], cases, N_CASES(cases));
    targets_release(set);
}
END_TEST

int main(void)
{
    static const char *const names[] = {
        "trigger_body", "resolve_body", "defaults_minimal_alert",
        "severity_map", "size_limit",   "classify"};
    const TTest *fns[] = {
        test_trigger_body, test_resolve_body, test_defaults_minimal_alert,
        test_severity_map, test_size_limit,   test_classify};

    return run_suite(make_suite("pagerduty", names, fns, N_CASES(fns)));
}
