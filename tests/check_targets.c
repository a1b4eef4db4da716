/*
 * check_targets.c: unit tests of publishers/targets (targets.yaml loading,
 * defaults, ${ENV} expansion, errors with file:line:col, masked output,
 * reload) and of the shared target helpers in publishers/target.c (common
 * headers and auth, default classification).
 */
#include <check.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "publishers/targets.h"

#define T_OK(yaml) load_ok(yaml)

static target_set *load_ok(const char *yaml)
{
    target_set *set = NULL;
    char err[512] = "";

    ck_assert_msg(targets_load_string(yaml, "t.yaml", &set, err, sizeof(err)) ==
                      HERALD_OK,
                  "unexpected error: %s", err);
    ck_assert_ptr_nonnull(set);
    return set;
}

static void load_fails(const char *yaml, const char *expected)
{
    target_set *set = (target_set *)1;
    char err[512] = "";

    ck_assert_int_eq(
        targets_load_string(yaml, "t.yaml", &set, err, sizeof(err)),
        HERALD_ERR_CONFIG);
    ck_assert_ptr_null(set);
    ck_assert_str_eq(err, expected);
}

static const char *const hdr_minimal =
    "targets:\n"
    "  - name: a\n"
    "    type: webhook\n"
    "    url: http://127.0.0.1:9101/alerts\n";

START_TEST(test_builtin_defaults)
{
    target_set *set = T_OK(hdr_minimal);
    target *tgt;

    ck_assert_uint_eq(targets_count(set), 1);
    tgt = targets_list(set)[0];
    ck_assert_ptr_eq(targets_find(set, "a"), tgt);
    ck_assert_ptr_null(targets_find(set, "b"));
    ck_assert_str_eq(tgt->name, "a");
    ck_assert_str_eq(tgt->plugin->name, "webhook");
    ck_assert_str_eq(tgt->url, "http://127.0.0.1:9101/alerts");
    ck_assert(tgt->enabled);
    ck_assert_int_eq(tgt->timeout_ms, 5000);
    ck_assert_int_eq(tgt->retry.max_attempts, 3);
    ck_assert_int_eq(tgt->retry.initial_backoff_ms, 200);
    ck_assert_int_eq(tgt->retry.max_backoff_ms, 10000);
    ck_assert_int_eq(tgt->retry.max_elapsed_ms, 60000);
    ck_assert_int_eq(tgt->max_concurrency, 16);
    ck_assert(tgt->rate_per_sec == 0);
    ck_assert_int_eq(tgt->rate_burst, 1);
    ck_assert(tgt->tls_verify);
    ck_assert_ptr_null(tgt->tls_ca_file);
    ck_assert(tgt->health.enabled);
    ck_assert_str_eq(tgt->health.method, "TCP");
    ck_assert_int_eq(tgt->health.interval_ms, 10000);
    ck_assert_int_eq(tgt->health.timeout_ms, 2000);
    ck_assert_int_eq(tgt->health.degraded_latency_ms, 1000);
    ck_assert_int_eq(tgt->health.unhealthy_after, 3);
    ck_assert_int_eq(tgt->breaker.failure_threshold, 5);
    ck_assert_int_eq(tgt->breaker.open_timeout_ms, 30000);
    ck_assert_int_eq(tgt->breaker.half_open_probes, 1);
    ck_assert_int_eq(tgt->breaker.success_threshold, 2);
    ck_assert_int_eq(tgt->auth.kind, TARGET_AUTH_NONE);
    ck_assert_uint_eq(tgt->n_headers, 0);
    ck_assert_uint_eq(tgt->n_matchers, 0);
    ck_assert_str_eq(tgt->source_file, "t.yaml");
    ck_assert_int_eq(tgt->source_line, 2);
    ck_assert_str_eq(targets_source(set), "t.yaml");
    targets_release(set);
}
END_TEST

START_TEST(test_defaults_section)
{
    target_set *set =
        T_OK("defaults:\n"
             "  timeout_ms: 1500\n"
             "  retry: {max_attempts: 5, initial_backoff_ms: 50}\n"
             "  headers: {X-Env: prod, X-Team: core}\n"
             "  matchers: ['env=prod']\n"
             "  auth: {type: bearer, token: t0}\n"
             "targets:\n"
             "  - name: a\n"
             "    type: webhook\n"
             "    url: http://127.0.0.1:9101/alerts\n"
             "  - name: b\n"
             "    type: webhook\n"
             "    url: https://127.0.0.1:9102/alerts\n"
             "    timeout_ms: 900\n"
             "    retry: {max_attempts: 2}\n"
             "    headers: {x-team: edge}\n"
             "    matchers: ['severity=~\"critical|error\"', 'team!=\"x\"']\n"
             "    auth: {type: basic, username: u, password: p}\n"
             "    rate_limit: {per_second: 2.5, burst: 4}\n"
             "    tls: {verify: false, ca_file: /etc/ca.pem}\n"
             "    enabled: no\n"
             "    format: raw\n");
    target *a = targets_find(set, "a");
    target *b = targets_find(set, "b");

    ck_assert_int_eq(a->timeout_ms, 1500);
    ck_assert_int_eq(a->retry.max_attempts, 5);
    ck_assert_int_eq(a->retry.initial_backoff_ms, 50);
    ck_assert_int_eq(a->retry.max_backoff_ms, 10000);
    ck_assert_uint_eq(a->n_headers, 2);
    ck_assert_uint_eq(a->n_matchers, 1);
    ck_assert_int_eq(a->auth.kind, TARGET_AUTH_BEARER);
    ck_assert_str_eq(a->auth.token, "t0");
    ck_assert(a->enabled);

    ck_assert_int_eq(b->timeout_ms, 900);
    /* Sections merge key by key. */
    ck_assert_int_eq(b->retry.max_attempts, 2);
    ck_assert_int_eq(b->retry.initial_backoff_ms, 50);
    /* Headers merge by name, case-insensitively; the target wins. */
    ck_assert_uint_eq(b->n_headers, 2);
    ck_assert_str_eq(b->headers[0].name, "X-Env");
    ck_assert_str_eq(b->headers[1].value, "edge");
    /* Matchers and auth are replaced as a whole. */
    ck_assert_uint_eq(b->n_matchers, 2);
    ck_assert_str_eq(b->matchers[0].name, "severity");
    ck_assert_int_eq(b->auth.kind, TARGET_AUTH_BASIC);
    ck_assert_ptr_null(b->auth.token);
    ck_assert_str_eq(b->auth.username, "u");
    ck_assert(b->rate_per_sec == 2.5);
    ck_assert_int_eq(b->rate_burst, 4);
    ck_assert(!b->tls_verify);
    ck_assert_str_eq(b->tls_ca_file, "/etc/ca.pem");
    ck_assert(!b->enabled);
    targets_release(set);
}
END_TEST

START_TEST(test_type_defaults)
{
    target_set *set = T_OK("targets:\n"
                           "  - name: s1\n"
                           "    type: slack\n"
                           "    url: http://127.0.0.1:9104/hook\n"
                           "  - name: s2\n"
                           "    type: slack\n"
                           "    url: http://127.0.0.1:9104/hook\n"
                           "    rate_limit: {per_second: 0}\n"
                           "  - name: pd\n"
                           "    type: pagerduty\n"
                           "    routing_key: abc\n"
                           "  - name: ro\n"
                           "    type: rootly\n"
                           "    token: tok\n"
                           "  - name: empty-targets-are-fine\n"
                           "    type: webhook\n"
                           "    url: http://127.0.0.1:1\n");

    /* Slack defaults to one message a second unless rate_limit says. */
    ck_assert(targets_find(set, "s1")->rate_per_sec == 1.0);
    ck_assert(targets_find(set, "s2")->rate_per_sec == 0);
    ck_assert_str_eq(targets_find(set, "pd")->url,
                     "https://events.pagerduty.com");
    ck_assert_str_eq(targets_find(set, "ro")->url, "https://api.rootly.com");
    targets_release(set);
}
END_TEST

START_TEST(test_errors)
{
    static const struct {
        const char *yaml;
        const char *err;
    } cases[] = {
        /* Unknown key. */
        {"targets:\n  - name: a\n    type: webhook\n"
         "    url: http://127.0.0.1:1/\n    retyr: {}\n",
         "t.yaml:5:5: targets[0].retyr: unknown key"},
        /* Unknown key inside a section. */
        {"targets:\n  - name: a\n    type: webhook\n"
         "    url: http://127.0.0.1:1/\n    retry:\n      max_attempt: 2\n",
         "t.yaml:6:7: targets[0].retry.max_attempt: unknown key"},
        /* Wrong type: integer. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "  - name: b\n    type: webhook\n    url: http://h/\n"
         "  - name: c\n    type: webhook\n    url: http://h/\n"
         "    retry: {max_attempts: x}\n",
         "t.yaml:11:27: targets[2].retry.max_attempts: expected an integer, "
         "got \"x\""},
        /* Integer out of range. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    retry: {max_attempts: 0}\n",
         "t.yaml:5:27: targets[0].retry.max_attempts: expected an integer "
         "between 1 and 100, got \"0\""},
        /* Wrong type: boolean. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    enabled: maybe\n",
         "t.yaml:5:14: targets[0].enabled: expected a boolean (true or "
         "false), got \"maybe\""},
        /* Wrong type: mapping where a scalar is expected. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    timeout_ms: {a: 1}\n",
         "t.yaml:5:17: targets[0].timeout_ms: expected an integer, got a "
         "mapping"},
        /* Wrong type: number. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    rate_limit: {per_second: fast}\n",
         "t.yaml:5:30: targets[0].rate_limit.per_second: expected a number, "
         "got \"fast\""},
        /* Enum. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    format: xml\n",
         "t.yaml:5:13: targets[0].format: expected one of alertmanager, raw, "
         "got \"xml\""},
        /* Unknown type. */
        {"targets:\n  - name: a\n    type: email\n",
         "t.yaml:3:11: targets[0].type: expected one of webhook, slack, "
         "pagerduty, rootly, got \"email\""},
        /* Duplicate names. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "  - name: a\n    type: webhook\n    url: http://h/\n",
         "t.yaml:5:11: targets[1].name: duplicate name \"a\" (first defined "
         "at line 2)"},
        /* Bad names. */
        {"targets:\n  - name: Ops_Hook\n    type: webhook\n    url: "
         "http://h/\n",
         "t.yaml:2:11: targets[0].name: expected a name of 1 to 63 "
         "characters a-z, 0-9 and '-', not starting or ending with '-', got "
         "\"Ops_Hook\""},
        /* Bad URLs. */
        /* No host: libcurl alone would read "http:///x" as host x. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http:///x\n",
         "t.yaml:4:10: targets[0].url: the URL has no host (expected "
         "scheme://host[:port]/path), got \"http:///x\""},
        /* A second document would be ignored. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "---\ntargets: []\n",
         "t.yaml:6:1: a second YAML document: targets.yaml holds one "
         "document"},
        {"targets:\n  - name: a\n    type: webhook\n    url: ftp://h/x\n",
         "t.yaml:4:10: targets[0].url: the URL scheme must be http or "
         "https, got \"ftp://h/x\""},
        {"targets:\n  - name: a\n    type: webhook\n    url: \"http://\"\n",
         "t.yaml:4:10: targets[0].url: not a valid URL, got \"http://\""},
        /* Bad regex. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    matchers:\n      - env=prod\n      - 'team=~\"(\"'\n",
         "t.yaml:7:9: targets[0].matchers[1]: regex \"(\": missing closing "
         "parenthesis"},
        /* A construct RE2 does not have, with its position. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    matchers:\n      - '{env=prod, team=~\"a\\\\1\"}'\n",
         "t.yaml:6:9: targets[0].matchers[0]: matcher 2 of the list: regex "
         "\"a\\1\": backreference at position 2 is not RE2 syntax"},
        /* Missing required keys. */
        {"targets:\n  - type: webhook\n    url: http://h/\n",
         "t.yaml:2:5: targets[0]: name: missing required key"},
        {"targets:\n  - name: a\n    url: http://h/\n",
         "t.yaml:2:5: targets[0]: type: missing required key (one of "
         "webhook, slack, pagerduty, rootly)"},
        {"targets:\n  - name: a\n    type: webhook\n",
         "t.yaml:2:5: targets[0]: url: missing required key for type "
         "webhook"},
        {"targets:\n  - name: pd\n    type: pagerduty\n",
         "t.yaml:2:5: targets[0]: routing_key: missing required key for "
         "type pagerduty"},
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    auth:\n      type: bearer\n",
         "t.yaml:6:7: targets[0].auth.token: missing required key for auth "
         "type bearer"},
        {"defaults:\n  retry: {max_attempts: 2}\n",
         "t.yaml:1:1: targets: missing required key"},
        /* Missing secrets in an enabled target. */
        {"targets:\n  - name: pd\n    type: pagerduty\n"
         "    routing_key: ${HERALD_TEST_UNSET_VAR}\n",
         "t.yaml:4:18: targets[0].routing_key: environment variable "
         "HERALD_TEST_UNSET_VAR is not set"},
        /* Duplicate keys, structure and syntax. */
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    url: http://i/\n",
         "t.yaml:5:5: targets[0]: duplicate key \"url\""},
        {"targets:\n  - just a string\n",
         "t.yaml:2:5: targets[0]: expected a mapping, got a string"},
        {"targets: {a: 1}\n",
         "t.yaml:1:10: targets: expected a list, got a mapping"},
        {"target:\n  - name: a\n",
         "t.yaml:1:1: target: unknown key (expected defaults or targets)"},
        {"defaults:\n  name: x\ntargets: []\n",
         "t.yaml:2:3: defaults.name: not allowed in defaults"},
        {"defaults:\n  format: raw\ntargets: []\n",
         "t.yaml:2:3: defaults.format: unknown key"},
        {"targets:\n  - name: a\n    type: webhook\n    url: http://h/\n"
         "    headers: {\"Bad Header\": x}\n",
         "t.yaml:5:15: targets[0].headers.Bad Header: not a valid header "
         "name"},
        {"targets:\n  - name: a\n    type: [webhook\n",
         "t.yaml:4:1: YAML syntax error: did not find expected ',' or ']' "
         "while parsing a flow sequence"},
        {"", "t.yaml:1:1: the document is empty; expected a mapping with a "
             "\"targets\" list"},
        {"targets:\n  - name: s\n    type: slack\n"
         "    url: http://h/\n    icon: smile\n",
         "t.yaml:2:5: targets[0]: icon: expected \":emoji:\" or an http(s) "
         "URL, got \"smile\""},
        {"targets:\n  - name: pd\n    type: pagerduty\n    routing_key: k\n"
         "    severity_map: {p1: urgent}\n",
         "t.yaml:2:5: targets[0]: severity_map.p1: expected one of "
         "critical, error, warning, info, got \"urgent\""},
    };

    unsetenv("HERALD_TEST_UNSET_VAR");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        load_fails(cases[i].yaml, cases[i].err);
}
END_TEST

START_TEST(test_env_expansion)
{
    target_set *set;
    target *tgt;

    setenv("HERALD_TEST_TOKEN", "s3cr3t-token", 1);
    setenv("HERALD_TEST_HOST", "127.0.0.1:9101", 1);
    unsetenv("HERALD_TEST_UNSET_VAR");
    set = T_OK(
        "targets:\n"
        "  - name: a\n"
        "    type: webhook\n"
        "    url: http://${HERALD_TEST_HOST}/alerts\n"
        "    headers: {X-Price: \"$$5\", X-Key: \"k-${HERALD_TEST_TOKEN}\"}\n"
        "    auth: {type: bearer, token: \"${HERALD_TEST_TOKEN}\"}\n"
        "  - name: off\n"
        "    type: pagerduty\n"
        "    enabled: false\n"
        "    routing_key: ${HERALD_TEST_UNSET_VAR}\n");
    tgt = targets_find(set, "a");
    ck_assert_str_eq(tgt->url, "http://127.0.0.1:9101/alerts");
    ck_assert_str_eq(tgt->auth.token, "s3cr3t-token");
    ck_assert_str_eq(tgt->headers[0].value, "$5");
    ck_assert(!tgt->headers[0].secret);
    ck_assert_str_eq(tgt->headers[1].value, "k-s3cr3t-token");
    ck_assert(tgt->headers[1].secret);
    /* A disabled target may miss its secrets. */
    ck_assert(!targets_find(set, "off")->enabled);
    targets_release(set);

    /* A value from the environment is never quoted in a message. */
    setenv("HERALD_TEST_BAD_URL", "ftp://user:pw@h/", 1);
    load_fails("targets:\n  - name: a\n    type: webhook\n"
               "    url: ${HERALD_TEST_BAD_URL}\n",
               "t.yaml:4:10: targets[0].url: the URL scheme must be http or "
               "https, got \"***\"");
    load_fails("targets:\n  - name: a\n    type: webhook\n"
               "    url: http://h/${-X}\n",
               "t.yaml:4:10: targets[0].url: bad ${...}: expected a variable "
               "name in \"http://h/${-X}\"");
    load_fails("targets:\n  - name: a\n    type: webhook\n"
               "    url: http://h/${OPEN\n",
               "t.yaml:4:10: targets[0].url: unterminated ${ in "
               "\"http://h/${OPEN\"");
}
END_TEST

/* Reads everything f printed into a new string. */
static char *print_set(const target_set *set)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(targets_print(set, f), HERALD_OK);
    fclose(f);
    return text;
}

/* Asserts that neither the JSON nor the printed view holds a secret. */
static void assert_no_secrets(const char *js, const char *text,
                              const char *const *secrets, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(!strstr(js, secrets[i]), "json leaks %s", secrets[i]);
        ck_assert_msg(!strstr(text, secrets[i]), "print leaks %s", secrets[i]);
    }
}

START_TEST(test_literal_secrets_masked)
{
    static const char *const secrets[] = {
        "leakuser",     "leakpw",       "leakquery",   "leakslackpath",
        "leakauthhdr",  "leakapikey",   "leakbearer",  "leakbasic",
        "leakhdrvalue", "leakhealthpw", "leakrouting", "leakrootly",
        "leaktelegram"};
    target_set *set;
    json_object *arr;
    json_object *hdrs;
    const char *js;
    char *text;

    /* Literal secrets of every kind, none from ${ENV}. */
    set = T_OK(
        "targets:\n"
        "  - name: a\n"
        "    type: webhook\n"
        "    url: http://leakuser:leakpw@127.0.0.1:9101/a?token=leakquery\n"
        "    headers: {Authorization: 'Bearer leakauthhdr', X-Api-Key: "
        "leakapikey, Content-Type: application/json}\n"
        "    auth: {type: bearer, token: leakbearer}\n"
        "    health: {method: GET, url: "
        "'http://h:leakhealthpw@127.0.0.1:9101/h'}\n"
        "  - name: b\n"
        "    type: webhook\n"
        "    url: https://api.telegram.org/botleaktelegram/sendMessage\n"
        "    auth: {type: basic, username: bob, password: leakbasic}\n"
        "  - name: c\n"
        "    type: webhook\n"
        "    url: http://127.0.0.1:9101/c\n"
        "    auth: {type: header, header: X-Token, value: leakhdrvalue}\n"
        "  - name: s\n"
        "    type: slack\n"
        "    url: https://hooks.slack.com/services/T0/B0/leakslackpath\n"
        "  - name: pd\n"
        "    type: pagerduty\n"
        "    routing_key: leakrouting\n"
        "  - name: ro\n"
        "    type: rootly\n"
        "    token: leakrootly\n");
    ck_assert_int_eq(targets_to_json(set, &arr), HERALD_OK);
    js = json_object_to_json_string(arr);
    text = print_set(set);
    assert_no_secrets(js, text, secrets, sizeof(secrets) / sizeof(secrets[0]));
    /* Harmless headers stay readable. */
    ck_assert(json_object_object_get_ex(json_object_array_get_idx(arr, 0),
                                        "headers", &hdrs));
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(hdrs, "Content-Type")),
        "application/json");
    ck_assert_ptr_nonnull(strstr(js, "hooks.slack.com"));
    free(text);
    json_object_put(arr);
    targets_release(set);
}
END_TEST

START_TEST(test_masked_output)
{
    target_set *set;
    json_object *arr;
    json_object *o;
    json_object *v;
    const char *js;
    char *text;

    setenv("HERALD_TEST_TOKEN", "s3cr3t-token", 1);
    setenv("HERALD_TEST_URL", "http://127.0.0.1:9104/services/T0/B0/XyZ", 1);
    set = T_OK(
        "targets:\n"
        "  - name: a\n"
        "    type: webhook\n"
        "    url: http://user:pw-secret@127.0.0.1:9101/alerts?key=qsecret\n"
        "    headers: {X-Key: \"${HERALD_TEST_TOKEN}\", X-Plain: vis}\n"
        "    auth: {type: basic, username: bob, password: hunter2}\n"
        "    matchers: ['severity=~\"critical|error\"']\n"
        "  - name: s\n"
        "    type: slack\n"
        "    url: ${HERALD_TEST_URL}\n"
        "    channel: '#ops'\n"
        "  - name: pd\n"
        "    type: pagerduty\n"
        "    routing_key: pd-routing-secret\n"
        "    severity_map: {p1: critical}\n"
        "  - name: ro\n"
        "    type: rootly\n"
        "    token: rootly-secret\n");
    ck_assert_int_eq(targets_to_json(set, &arr), HERALD_OK);
    js = json_object_to_json_string(arr);
    text = print_set(set);
    {
        static const char *const secrets[] = {
            "s3cr3t-token", "pw-secret",         "qsecret",      "hunter2",
            "XyZ",          "pd-routing-secret", "rootly-secret"};

        assert_no_secrets(js, text, secrets,
                          sizeof(secrets) / sizeof(secrets[0]));
    }
    o = json_object_array_get_idx(arr, 0);
    ck_assert(json_object_object_get_ex(o, "url", &v));
    ck_assert_str_eq(json_object_get_string(v),
                     "http://***@127.0.0.1:9101/alerts?***");
    ck_assert(json_object_object_get_ex(o, "headers", &v));
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(v, "X-Plain")), "***");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(v, "X-Key")),
                     "***");
    ck_assert(json_object_object_get_ex(o, "auth", &v));
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(v, "username")), "bob");
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(v, "password")), "***");
    ck_assert(json_object_object_get_ex(o, "matchers", &v));
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(v, 0)),
                     "severity=~\"critical|error\"");
    ck_assert(json_object_object_get_ex(o, "retry", &v));
    ck_assert_int_eq(
        json_object_get_int(json_object_object_get(v, "max_attempts")), 3);
    o = json_object_array_get_idx(arr, 1);
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "url")),
                     "***");
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(o, "channel")), "#ops");
    o = json_object_array_get_idx(arr, 2);
    ck_assert_str_eq(
        json_object_get_string(json_object_object_get(o, "routing_key")),
        "***");
    ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "type")),
                     "pagerduty");
    /* The printed form is YAML that loads again. */
    ck_assert(strstr(text, "targets:\n  - name: \"a\"\n") != NULL);
    ck_assert(strstr(text, "    retry:\n      max_attempts: 3\n") != NULL);
    json_object_put(arr);
    free(text);
    targets_release(set);
}
END_TEST

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

START_TEST(test_reload)
{
    char path[] = "/tmp/check_targets_XXXXXX";
    int fd = mkstemp(path);
    targets_registry *reg;
    target_set *set = NULL;
    target_set *inflight;
    target_set *cur;
    struct timespec mtime = {0, 0};
    char err[512];

    ck_assert_int_ge(fd, 0);
    close(fd);
    write_file(path, hdr_minimal);
    ck_assert(targets_file_changed(path, &mtime));
    ck_assert(!targets_file_changed(path, &mtime));
    ck_assert_int_eq(targets_load(path, &set, err, sizeof(err)), HERALD_OK);
    reg = targets_registry_new(set);
    ck_assert_ptr_nonnull(reg);

    /* A job in flight holds the set it started with. */
    inflight = targets_registry_current(reg);
    ck_assert_ptr_eq(inflight, set);

    /* A bad file keeps the old set. */
    write_file(path, "targets:\n  - name: a\n    type: webhook\n"
                     "    url: http://h/\n    timeout_ms: soon\n");
    ck_assert_int_eq(targets_registry_reload(reg, path, err, sizeof(err)),
                     HERALD_ERR_CONFIG);
    ck_assert(strstr(err, ":5:17: targets[0].timeout_ms: expected an "
                          "integer, got \"soon\"") != NULL);
    cur = targets_registry_current(reg);
    ck_assert_ptr_eq(cur, set);
    targets_release(cur);

    /* A good file is swapped in; target "a" is removed while in flight. */
    write_file(path, "targets:\n  - name: b\n    type: webhook\n"
                     "    url: http://127.0.0.1:9102/alerts\n");
    ck_assert_int_eq(targets_registry_reload(reg, path, err, sizeof(err)),
                     HERALD_OK);
    cur = targets_registry_current(reg);
    ck_assert_ptr_ne(cur, inflight);
    ck_assert_ptr_nonnull(targets_find(cur, "b"));
    ck_assert_ptr_null(targets_find(cur, "a"));
    /* The old set is still whole for its holder. */
    ck_assert_str_eq(targets_find(inflight, "a")->url,
                     "http://127.0.0.1:9101/alerts");
    targets_release(inflight);
    targets_release(cur);

    /* Unreadable files are I/O errors. */
    unlink(path);
    ck_assert_int_eq(targets_registry_reload(reg, path, err, sizeof(err)),
                     HERALD_ERR_IO);
    ck_assert(!targets_file_changed(path, &mtime));
    targets_registry_destroy(reg);
    targets_registry_destroy(NULL);
    targets_release(NULL);
}
END_TEST

/* Readers acquire the current set while the main thread swaps sets. */
typedef struct reader_arg {
    targets_registry *reg;
    atomic_int *stop;
    long reads;
} reader_arg;

static void *reader_main(void *opaque)
{
    reader_arg *ra = opaque;

    while (!atomic_load(ra->stop)) {
        target_set *set = targets_registry_current(ra->reg);

        /* Every set seen is whole: one target with a name and a URL. */
        if (targets_count(set) != 1 || !targets_list(set)[0]->url)
            abort();
        targets_release(set);
        ra->reads++;
    }
    return NULL;
}

START_TEST(test_registry_threads)
{
    targets_registry *reg = targets_registry_new(T_OK(hdr_minimal));
    atomic_int stop = 0;
    reader_arg ra[3];
    pthread_t th[3];

    for (int i = 0; i < 3; i++) {
        ra[i].reg = reg;
        ra[i].stop = &stop;
        ra[i].reads = 0;
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    }
    for (int i = 0; i < 200; i++)
        targets_registry_swap(reg, T_OK(hdr_minimal));
    atomic_store(&stop, 1);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    targets_registry_destroy(reg);
}
END_TEST

/* List forms expand to several matchers, and targets_route() says for
 * every target whether it takes an alert and why not. */
START_TEST(test_route)
{
    static const char *yaml =
        "targets:\n"
        "  - name: ops\n"
        "    type: webhook\n"
        "    url: http://h/1\n"
        "    matchers:\n"
        "      - '{instance=~\"host\\d+\", severity=\"critical\"}'\n"
        "      - env!=dev\n"
        "  - name: off\n"
        "    type: webhook\n"
        "    url: http://h/2\n"
        "    enabled: false\n"
        "  - name: db\n"
        "    type: webhook\n"
        "    url: http://h/3\n"
        "    matchers: ['team=~\"db|web\"']\n";
    alert_kv kv[] = {{"instance", "host12"}, {"severity", "critical"}};
    alert_kvs labels = {kv, 2};
    target_set *set = load_ok(yaml);
    char *text = NULL;
    size_t len = 0;
    size_t taken = 99;
    FILE *out;

    ck_assert_uint_eq(targets_list(set)[0]->n_matchers, 3);
    out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(targets_route(set, &labels, out, &taken), HERALD_OK);
    fclose(out);
    ck_assert_uint_eq(taken, 1);
    ck_assert_str_eq(text,
                     "ops: receives the alert\n"
                     "off: does not: disabled (enabled: false)\n"
                     "db: does not: matcher team=~\"db|web\" does not match: "
                     "label team is not set\n"
                     "1 of 3 targets receive the alert\n");
    free(text);

    kv[0].value = "hostdd";
    text = NULL;
    out = open_memstream(&text, &len);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(targets_route(set, &labels, out, &taken), HERALD_OK);
    fclose(out);
    ck_assert_uint_eq(taken, 0);
    ck_assert_msg(strstr(text, "ops: does not: matcher instance=~"
                               "\"host\\\\d+\" does not match: instance is "
                               "\"hostdd\"\n") != NULL,
                  "got %s", text);
    ck_assert_msg(strstr(text, "0 of 3 targets receive the alert\n") != NULL,
                  "got %s", text);
    free(text);
    targets_release(set);
}
END_TEST

START_TEST(test_shipped_example)
{
    const char *dir = getenv("HERALD_SOURCE_DIR");
    char path[1024];
    target_set *set = NULL;
    char err[512] = "";

    snprintf(path, sizeof(path), "%s/targets.yaml", dir ? dir : ".");
    unsetenv("SLACK_WEBHOOK_URL");
    unsetenv("PAGERDUTY_ROUTING_KEY");
    unsetenv("ROOTLY_API_TOKEN");
    ck_assert_msg(targets_load(path, &set, err, sizeof(err)) == HERALD_OK, "%s",
                  err);
    ck_assert_ptr_nonnull(targets_find(set, "ops-webhook"));
    ck_assert_ptr_nonnull(targets_find(set, "audit-webhook"));
    ck_assert_ptr_nonnull(targets_find(set, "team-webhook"));
    /* The vendor examples ship disabled, their secrets unset. */
    for (size_t i = 0; i < targets_count(set); i++) {
        target *tgt = targets_list(set)[i];

        if (strcmp(tgt->plugin->name, "webhook") != 0)
            ck_assert(!tgt->enabled);
    }
    targets_release(set);
}
END_TEST

START_TEST(test_schema_markdown)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    ck_assert_int_eq(targets_schema_markdown(f), HERALD_OK);
    fclose(f);
    ck_assert(strstr(text, "| `retry.max_attempts` | integer | 3 |") != NULL);
    ck_assert(strstr(text, "| `routing_key` | secret string |  | yes |") !=
              NULL);
    free(text);
}
END_TEST

static const char *header_value(const http_request *req, const char *name)
{
    for (size_t i = 0; i < req->n_headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

START_TEST(test_request_common)
{
    static const struct {
        const char *auth;
        const char *header;
        const char *value;
    } cases[] = {
        {"{type: bearer, token: abc}", "Authorization", "Bearer abc"},
        /* RFC 7617's example credentials. */
        {"{type: basic, username: Aladdin, password: open sesame}",
         "Authorization", "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="},
        {"{type: basic, username: a}", "Authorization", "Basic YTo="},
        {"{type: header, header: X-Api-Key, value: k1}", "X-Api-Key", "k1"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[512];
        target_set *set;
        http_request req;

        snprintf(yaml, sizeof(yaml),
                 "targets:\n  - name: a\n    type: webhook\n"
                 "    url: http://h/\n    headers: {X-One: \"1\", "
                 "Content-Type: text/x}\n    auth: %s\n",
                 cases[i].auth);
        set = T_OK(yaml);
        http_request_init(&req, 1024);
        ck_assert_int_eq(
            http_request_add_header(&req, "content-type", "application/json"),
            HERALD_OK);
        ck_assert_int_eq(
            target_request_apply_common(targets_list(set)[0], &req), HERALD_OK);
        /* Applying twice changes nothing: headers are replaced by name. */
        ck_assert_int_eq(
            target_request_apply_common(targets_list(set)[0], &req), HERALD_OK);
        ck_assert_uint_eq(req.n_headers, 3);
        ck_assert_str_eq(header_value(&req, "X-One"), "1");
        ck_assert_str_eq(header_value(&req, "Content-Type"), "text/x");
        ck_assert_str_eq(header_value(&req, cases[i].header), cases[i].value);
        http_request_free(&req);
        targets_release(set);
    }
}
END_TEST

START_TEST(test_classify_default)
{
    static const struct {
        long status;
        int transport_error;
        const char *retry_after;
        delivery_verdict verdict;
        const char *type;
        int retry_after_ms;
    } cases[] = {
        {200, 0, NULL, DELIVERY_DELIVERED, NULL, -1},
        {202, 0, NULL, DELIVERY_DELIVERED, NULL, -1},
        {204, 0, NULL, DELIVERY_DELIVERED, NULL, -1},
        {301, 0, NULL, DELIVERY_GIVE_UP, "other", -1},
        {400, 0, NULL, DELIVERY_GIVE_UP, "http_4xx", -1},
        {401, 0, NULL, DELIVERY_GIVE_UP, "http_4xx", -1},
        {404, 0, NULL, DELIVERY_GIVE_UP, "http_4xx", -1},
        {408, 0, NULL, DELIVERY_RETRY, "http_4xx", -1},
        {429, 0, "7", DELIVERY_RETRY, "rate_limited", 7000},
        {429, 0, "soon", DELIVERY_RETRY, "rate_limited", -1},
        {429, 0, "100000", DELIVERY_RETRY, "rate_limited", 300000},
        {500, 0, NULL, DELIVERY_RETRY, "http_5xx", -1},
        {503, 0, "2", DELIVERY_RETRY, "http_5xx", 2000},
        {0, 28, NULL, DELIVERY_RETRY, "timeout", -1},
        {0, 6, NULL, DELIVERY_RETRY, "dns", -1},
        {0, 7, NULL, DELIVERY_RETRY, "connect", -1},
        {0, 56, NULL, DELIVERY_RETRY, "other", -1},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        http_response resp = {0};
        delivery_outcome out;

        resp.status = cases[i].status;
        resp.transport_error = cases[i].transport_error;
        resp.body = "nope\nmore";
        resp.body_len = 9;
        resp.retry_after = cases[i].retry_after;
        target_classify(NULL, &resp, &out);
        ck_assert_msg(out.verdict == cases[i].verdict, "case %zu", i);
        if (cases[i].type)
            ck_assert_str_eq(out.error_type, cases[i].type);
        else
            ck_assert_ptr_null(out.error_type);
        ck_assert_int_eq(out.retry_after_ms, cases[i].retry_after_ms);
        if (cases[i].verdict == DELIVERY_DELIVERED)
            ck_assert_str_eq(out.error, "");
        else if (cases[i].status)
            ck_assert(strstr(out.error, "nope") && !strstr(out.error, "more"));
    }
}
END_TEST

static Suite *targets_suite(void)
{
    Suite *s = suite_create("targets");
    struct {
        const char *name;
        const TTest *fn;
    } tcs[] = {
        {"builtin_defaults", test_builtin_defaults},
        {"defaults_section", test_defaults_section},
        {"type_defaults", test_type_defaults},
        {"errors", test_errors},
        {"env_expansion", test_env_expansion},
        {"masked_output", test_masked_output},
        {"literal_secrets_masked", test_literal_secrets_masked},
        {"reload", test_reload},
        {"registry_threads", test_registry_threads},
        {"route", test_route},
        {"shipped_example", test_shipped_example},
        {"schema_markdown", test_schema_markdown},
        {"request_common", test_request_common},
        {"classify_default", test_classify_default},
    };

    for (size_t i = 0; i < sizeof(tcs) / sizeof(tcs[0]); i++) {
        TCase *tc = tcase_create(tcs[i].name);

        tcase_add_test(tc, tcs[i].fn);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(targets_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
