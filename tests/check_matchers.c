/*
 * check_matchers.c: unit tests of publishers/matchers (Alertmanager label
 * matcher parsing and matching) and target_matches().
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/matchers.h"

static alert_kv kv_items[] = {
    {"alertname", "HighLatency"},
    {"env", "prod"},
    {"severity", "critical"},
};
static const alert_kvs labels = {kv_items, 3};

/* Parses text, expecting success, and returns the result of matching. */
static bool match_text(const char *text)
{
    target_matcher m;
    char why[256];
    bool ok;

    ck_assert_int_eq(matcher_parse(text, &m, why, sizeof(why)), HERALD_OK);
    ok = matchers_match_all(&m, 1, &labels);
    matcher_free(&m);
    return ok;
}

START_TEST(test_parse_forms)
{
    static const struct {
        const char *text;
        const char *name;
        target_match_op op;
        const char *value;
    } cases[] = {
        {"severity=critical", "severity", TARGET_MATCH_EQ, "critical"},
        {"severity = \"critical\"", "severity", TARGET_MATCH_EQ, "critical"},
        {"env!=\"dev\"", "env", TARGET_MATCH_NE, "dev"},
        {"team=~\"ops|sre\"", "team", TARGET_MATCH_RE, "ops|sre"},
        {"team!~ops.*", "team", TARGET_MATCH_NRE, "ops.*"},
        {"msg=\"say \\\"hi\\\"\\n\"", "msg", TARGET_MATCH_EQ, "say \"hi\"\n"},
        {"empty=\"\"", "empty", TARGET_MATCH_EQ, ""},
        {"_x1=~\"a\\.b\"", "_x1", TARGET_MATCH_RE, "a\\.b"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        target_matcher m;
        char why[256];

        ck_assert_msg(matcher_parse(cases[i].text, &m, why, sizeof(why)) ==
                          HERALD_OK,
                      "%s: %s", cases[i].text, why);
        ck_assert_str_eq(m.name, cases[i].name);
        ck_assert_int_eq(m.op, cases[i].op);
        ck_assert_str_eq(m.value, cases[i].value);
        ck_assert(m.re_compiled == (cases[i].op == TARGET_MATCH_RE ||
                                    cases[i].op == TARGET_MATCH_NRE));
        matcher_free(&m);
    }
}
END_TEST

START_TEST(test_parse_errors)
{
    static const struct {
        const char *text;
        const char *why;
    } cases[] = {
        {"", "must start with a label name"},
        {"1abc=x", "must start with a label name"},
        {"severity", "needs one of the operators"},
        {"severity>x", "needs one of the operators"},
        {"a=\"unterminated", "unterminated quoted matcher value"},
        {"a=\"x\" trailing", "unexpected text after the quoted"},
        {"a=~\"(\"", "bad regex \"(\""},
        {"a=b\"c", "unexpected '\"'"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        target_matcher m;
        char why[256] = "";

        ck_assert_int_eq(matcher_parse(cases[i].text, &m, why, sizeof(why)),
                         HERALD_ERR_CONFIG);
        ck_assert_msg(strstr(why, cases[i].why) != NULL, "%s: got '%s'",
                      cases[i].text, why);
        ck_assert_ptr_null(m.name);
        ck_assert_ptr_null(m.value);
        matcher_free(&m);
    }
}
END_TEST

START_TEST(test_match_semantics)
{
    /* Equality and inequality. */
    ck_assert(match_text("severity=\"critical\""));
    ck_assert(!match_text("severity=\"warning\""));
    ck_assert(match_text("severity!=\"warning\""));
    ck_assert(!match_text("severity!=\"critical\""));
    /* Regexes are anchored at both ends. */
    ck_assert(match_text("severity=~\"crit.*\""));
    ck_assert(!match_text("severity=~\"crit\""));
    ck_assert(!match_text("severity=~\"ritical\""));
    ck_assert(match_text("severity=~\"warning|critical\""));
    ck_assert(!match_text("severity!~\"warning|critical\""));
    ck_assert(match_text("severity!~\"crit\""));
    /* A missing label is the empty string. */
    ck_assert(match_text("team=\"\""));
    ck_assert(!match_text("team=\"ops\""));
    ck_assert(match_text("team!=\"ops\""));
    ck_assert(match_text("team=~\".*\""));
    ck_assert(!match_text("team=~\".+\""));
    ck_assert(match_text("team!~\".+\""));
}
END_TEST

START_TEST(test_match_all)
{
    target_matcher ms[2];
    char why[256];

    ck_assert_int_eq(matcher_parse("env=prod", &ms[0], why, sizeof(why)), 0);
    ck_assert_int_eq(
        matcher_parse("severity=~\"critical|error\"", &ms[1], why, sizeof(why)),
        0);
    ck_assert(matchers_match_all(ms, 2, &labels));
    ck_assert(matchers_match_all(ms, 0, &labels));
    matcher_free(&ms[0]);
    ck_assert_int_eq(matcher_parse("env=dev", &ms[0], why, sizeof(why)), 0);
    ck_assert(!matchers_match_all(ms, 2, &labels));

    /* target_matches() uses the target's matchers on the alert's labels. */
    {
        target tgt;
        alert a;

        memset(&tgt, 0, sizeof(tgt));
        memset(&a, 0, sizeof(a));
        a.labels = labels;
        tgt.matchers = ms;
        tgt.n_matchers = 2;
        ck_assert(!target_matches(&tgt, &a));
        tgt.n_matchers = 1;
        tgt.matchers = &ms[1];
        ck_assert(target_matches(&tgt, &a));
        tgt.n_matchers = 0;
        ck_assert(target_matches(&tgt, &a));
    }
    matcher_free(&ms[0]);
    matcher_free(&ms[1]);
    matcher_free(NULL);
}
END_TEST

START_TEST(test_format_roundtrip)
{
    static const char *const texts[] = {"a=b", "a!=\"x \\\"y\\\"\"",
                                        "a=~\"x|y\"", "a!~\"\\\\d\""};

    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        target_matcher m;
        target_matcher m2;
        char why[256];
        buf b;

        buf_init(&b, 1024);
        ck_assert_int_eq(matcher_parse(texts[i], &m, why, sizeof(why)), 0);
        ck_assert_int_eq(matcher_format(&m, &b), 0);
        ck_assert_int_eq(matcher_parse(buf_str(&b), &m2, why, sizeof(why)), 0);
        ck_assert_str_eq(m.name, m2.name);
        ck_assert_int_eq(m.op, m2.op);
        ck_assert_str_eq(m.value, m2.value);
        matcher_free(&m);
        matcher_free(&m2);
        buf_free(&b);
    }
}
END_TEST

static Suite *matchers_suite(void)
{
    Suite *s = suite_create("matchers");
    TCase *tc;

    tc = tcase_create("parse_forms");
    tcase_add_test(tc, test_parse_forms);
    suite_add_tcase(s, tc);
    tc = tcase_create("parse_errors");
    tcase_add_test(tc, test_parse_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("match_semantics");
    tcase_add_test(tc, test_match_semantics);
    suite_add_tcase(s, tc);
    tc = tcase_create("match_all");
    tcase_add_test(tc, test_match_all);
    suite_add_tcase(s, tc);
    tc = tcase_create("format_roundtrip");
    tcase_add_test(tc, test_format_roundtrip);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(matchers_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
