/*
 * check_slack.c: unit tests of the Slack target plugin (publishers/slack):
 * golden incoming-webhook bodies, icon and channel overrides, the default
 * rate limit, Slack's documented answers, and the escaping of &, < and >
 * in every value taken from an alert.
 */
#include "tests/plugin_fixtures.h"

static const char *const yaml_full =
    "targets:\n"
    "  - name: slack-alerts\n"
    "    type: slack\n"
    "    url: http://127.0.0.1:9104/services/T0/B0/x\n"
    "    channel: '#alerts'\n"
    "    username: herald\n"
    "    icon: ':rotating_light:'\n";

START_TEST(test_firing_body)
{
    target_set *set = set_from(yaml_full);
    alert_batch batch;
    http_request req;

    batch_from(firing_json, &batch);
    build(set, &batch, &req);
    ck_assert_str_eq(req.method, "POST");
    ck_assert_str_eq(req.url, "http://127.0.0.1:9104/services/T0/B0/x");
    ck_assert_str_eq(header_value(&req, "Content-Type"), "application/json");
    assert_json_eq(
        buf_str(&req.body),
        "{\"channel\":\"#alerts\",\"username\":\"herald\",\"icon_emoji\":"
        "\":rotating_light:\",\"text\":\"[FIRING] HighLatency\","
        "\"attachments\":[{\"fallback\":\"[FIRING] HighLatency\",\"color\":"
        "\"#d00000\",\"title\":\"[FIRING] HighLatency\",\"title_link\":"
        "\"http://prometheus.example:9090/graph?g0.expr=up\",\"fields\":["
        "{\"title\":\"Severity\",\"value\":\"critical\",\"short\":true},"
        "{\"title\":\"Summary\",\"value\":\"p99 above 2s\",\"short\":false},"
        "{\"title\":\"Description\",\"value\":\"p99 latency is 3.2s\","
        "\"short\":false},{\"title\":\"Runbook\",\"value\":"
        "\"https://runbooks.example/latency\",\"short\":false},{\"title\":"
        "\"Labels\",\"value\":\"alertname=HighLatency\\ncluster=eu-1\\n"
        "instance=10.0.0.1:9090\\nservice=api\\nseverity=critical\","
        "\"short\":false}],\"footer\":\"herald\"}]}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_resolved_body)
{
    target_set *set = set_from("targets:\n  - name: s\n    type: slack\n"
                               "    url: http://127.0.0.1:9104/hook\n"
                               "    icon: https://img.example/h.png\n");
    alert_batch batch;
    http_request req;

    batch_from(resolved_json, &batch);
    build(set, &batch, &req);
    /* Resolved is green; no title_link without a generator URL. */
    assert_json_eq(
        buf_str(&req.body),
        "{\"icon_url\":\"https://img.example/h.png\",\"text\":"
        "\"[RESOLVED] HighLatency\",\"attachments\":[{\"fallback\":"
        "\"[RESOLVED] HighLatency\",\"color\":\"#2eb886\",\"title\":"
        "\"[RESOLVED] HighLatency\",\"fields\":[{\"title\":\"Severity\","
        "\"value\":\"critical\",\"short\":true},{\"title\":\"Summary\","
        "\"value\":\"p99 above 2s\",\"short\":false},{\"title\":\"Labels\","
        "\"value\":\"alertname=HighLatency\\ncluster=eu-1\\n"
        "instance=10.0.0.1:9090\\nservice=api\\nseverity=critical\","
        "\"short\":false}],\"footer\":\"herald\"}]}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

START_TEST(test_colors)
{
    static const struct {
        const char *severity;
        const char *color;
    } cases[] = {{"critical", "#d00000"}, {"error", "#e8590c"},
                 {"high", "#e8590c"},     {"warning", "#f2c744"},
                 {"info", "#439fe0"},     {"whatever", "#808080"}};
    target_set *set = set_from(yaml_full);

    for (size_t i = 0; i < N_CASES(cases); i++) {
        char json[512];
        alert_batch batch;
        http_request req;
        json_object *body;
        json_object *att;

        snprintf(json, sizeof(json),
                 "{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\","
                 "\"severity\":\"%s\"},\"annotations\":{}}",
                 cases[i].severity);
        batch_from(json, &batch);
        build(set, &batch, &req);
        body = json_tokener_parse(buf_str(&req.body));
        att = json_object_array_get_idx(
            json_object_object_get(body, "attachments"), 0);
        ck_assert_str_eq(
            json_object_get_string(json_object_object_get(att, "color")),
            cases[i].color);
        json_object_put(body);
        http_request_free(&req);
        alert_batch_free(&batch);
    }
    targets_release(set);
}
END_TEST

START_TEST(test_classify)
{
    static const class_case cases[] = {
        {200, "ok", NULL, DELIVERY_DELIVERED, -1},
        {200, "ok\n", NULL, DELIVERY_DELIVERED, -1},
        {200, "no_text", NULL, DELIVERY_GIVE_UP, -1},
        {400, "invalid_payload", NULL, DELIVERY_GIVE_UP, -1},
        {403, "action_prohibited", NULL, DELIVERY_GIVE_UP, -1},
        {404, "channel_not_found", NULL, DELIVERY_GIVE_UP, -1},
        {410, "channel_is_archived", NULL, DELIVERY_GIVE_UP, -1},
        {429, "rate_limited", "30", DELIVERY_RETRY, 30000},
        {500, "rollup_error", NULL, DELIVERY_RETRY, -1},
        {503, "", NULL, DELIVERY_RETRY, -1},
    };
    target_set *set = set_from(yaml_full);

    run_class_cases(targets_list(set)[0], cases, N_CASES(cases));
    targets_release(set);
}
END_TEST

START_TEST(test_rate_default)
{
    target_set *set =
        set_from("targets:\n  - name: a\n    type: slack\n    url: http://h/\n"
                 "  - name: b\n    type: slack\n    url: http://h/\n"
                 "    rate_limit: {per_second: 3, burst: 2}\n");

    ck_assert(targets_find(set, "a")->rate_per_sec == 1.0);
    ck_assert_int_eq(targets_find(set, "a")->rate_burst, 1);
    ck_assert(targets_find(set, "b")->rate_per_sec == 3.0);
    targets_release(set);
}
END_TEST

/* Slack's control characters in alert values are sent as entities:
 * <!channel> must not ping, <@U123> must not mention, <https://x|y> must
 * not become a link, & stays a literal. */
START_TEST(test_escaping)
{
    static const char *json =
        "{\"status\":\"firing\",\"labels\":{\"alertname\":\"Disk<db1>\","
        "\"severity\":\"critical&high\",\"team\":\"<!here>\"},"
        "\"annotations\":{\"summary\":\"<!channel> disk full\","
        "\"description\":\"ask <@U123> or see <https://x|y> & co\","
        "\"runbook_url\":\"https://r.example/?a=1&b=<2>\"},"
        "\"generatorURL\":\"http://p.example/graph?a=1&b=2\","
        "\"fingerprint\":\"a1b2c3d4e5f60718\"}";
    target_set *set = set_from("targets:\n  - name: s\n    type: slack\n"
                               "    url: http://127.0.0.1:9104/hook\n");
    alert_batch batch;
    http_request req;

    batch_from(json, &batch);
    build(set, &batch, &req);
    assert_json_eq(
        buf_str(&req.body),
        "{\"text\":\"[FIRING] Disk&lt;db1&gt;\",\"attachments\":[{"
        "\"fallback\":\"[FIRING] Disk&lt;db1&gt;\",\"color\":\"#808080\","
        "\"title\":\"[FIRING] Disk&lt;db1&gt;\",\"title_link\":"
        "\"http://p.example/graph?a=1&b=2\",\"fields\":["
        "{\"title\":\"Severity\",\"value\":\"critical&amp;high\","
        "\"short\":true},"
        "{\"title\":\"Summary\",\"value\":\"&lt;!channel&gt; disk full\","
        "\"short\":false},"
        "{\"title\":\"Description\",\"value\":\"ask &lt;@U123&gt; or see "
        "&lt;https://x|y&gt; &amp; co\",\"short\":false},"
        "{\"title\":\"Runbook\",\"value\":"
        "\"https://r.example/?a=1&amp;b=&lt;2&gt;\",\"short\":false},"
        "{\"title\":\"Labels\",\"value\":\"alertname=Disk&lt;db1&gt;\\n"
        "severity=critical&amp;high\\nteam=&lt;!here&gt;\","
        "\"short\":false}],\"footer\":\"herald\"}]}");
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

/* A long value is cut before it is escaped: never inside an entity. */
START_TEST(test_escaping_cut)
{
    char json[8192];
    char amps[2101];
    target_set *set = set_from("targets:\n  - name: s\n    type: slack\n"
                               "    url: http://127.0.0.1:9104/hook\n");
    alert_batch batch;
    http_request req;
    json_object *root;
    json_object *fields;
    json_object *f;
    const char *v;

    memset(amps, '&', 2100);
    amps[2100] = '\0';
    snprintf(json, sizeof(json),
             "{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"},"
             "\"annotations\":{\"summary\":\"%s\"}}",
             amps);
    batch_from(json, &batch);
    build(set, &batch, &req);
    root = json_tokener_parse(buf_str(&req.body));
    ck_assert_ptr_nonnull(root);
    fields = json_object_object_get(
        json_object_array_get_idx(json_object_object_get(root, "attachments"),
                                  0),
        "fields");
    f = json_object_array_get_idx(fields, 0);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(f, "title")),
                     "Summary");
    v = json_object_get_string(json_object_object_get(f, "value"));
    /* 1997 characters (2000 minus the marker), each as "&amp;". */
    ck_assert_uint_eq(strlen(v), 1997 * 5 + 3);
    ck_assert_int_eq(strncmp(v, "&amp;&amp;", 10), 0);
    ck_assert_str_eq(v + 1997 * 5, "...");
    json_object_put(root);
    http_request_free(&req);
    alert_batch_free(&batch);
    targets_release(set);
}
END_TEST

int main(void)
{
    static const char *const names[] = {
        "firing_body",  "resolved_body", "colors",      "classify",
        "rate_default", "escaping",      "escaping_cut"};
    const TTest *fns[] = {test_firing_body, test_resolved_body, test_colors,
                          test_classify,    test_rate_default,  test_escaping,
                          test_escaping_cut};

    return run_suite(make_suite("slack", names, fns, N_CASES(fns)));
}
