/*
 * check_matchers.c: unit tests of publishers/matchers (Alertmanager label
 * matcher parsing and matching) and target_matches().
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/matchers.h"
#include "publishers/re2.h"

static alert_kv kv_items[] = {
    {"alertname", "HighLatency"},
    {"env", "prod"},
    {"severity", "critical"},
};
static const alert_kvs labels = {kv_items, 3};

/* Parses text, expecting success, and returns the result of matching ls. */
static bool match_text_on(const char *text, const alert_kvs *ls)
{
    target_matcher m;
    char why[256];
    bool ok;

    ck_assert_msg(matcher_parse(text, &m, why, sizeof(why)) == HERALD_OK,
                  "%s: %s", text, why);
    ok = matchers_match_all(&m, 1, ls);
    matcher_free(&m);
    return ok;
}

static bool match_text(const char *text)
{
    return match_text_on(text, &labels);
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
        ck_assert((m.re != NULL) == (cases[i].op == TARGET_MATCH_RE ||
                                     cases[i].op == TARGET_MATCH_NRE));
        matcher_free(&m);
    }
}
END_TEST

/* An input that must be refused, and a part of the message it must get. */
typedef struct error_case {
    const char *text;
    const char *why;
} error_case;

/* Asserts that c was refused as a configuration error with c->why. */
static void assert_refused(const error_case *c, herald_err got, const char *why)
{
    ck_assert_int_eq(got, HERALD_ERR_CONFIG);
    ck_assert_msg(strstr(why, c->why) != NULL, "%s: got '%s'", c->text, why);
}

START_TEST(test_parse_errors)
{
    static const error_case cases[] = {
        {"", "must start with a label name"},
        {"1abc=x", "must start with a label name"},
        {"severity", "needs one of the operators"},
        {"severity>x", "needs one of the operators"},
        {"a=\"unterminated", "unescaped double quote"},
        {"a=\"x\" trailing", "unescaped double quote"},
        {"a=\"", "unescaped double quote"},
        {"a=~\"(\"", "regex \"(\": missing closing parenthesis"},
        {"a=b\"c", "unescaped double quote"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        target_matcher m;
        char why[256] = "";

        assert_refused(&cases[i],
                       matcher_parse(cases[i].text, &m, why, sizeof(why)), why);
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

/* Compiles re as a matcher on "v" and matches value against it. */
static bool re_match(const char *re, const char *value)
{
    alert_kv kv = {"v", (char *)value};
    alert_kvs ls = {&kv, 1};
    char text[256];

    snprintf(text, sizeof(text), "v=~\"%s\"", re);
    return match_text_on(text, &ls);
}

START_TEST(test_re2_dialect)
{
    static const struct {
        const char *re;
        const char *value;
        bool matches;
    } cases[] = {
        {"host\\d+", "host12", true},
        {"host\\d+", "hostdd", false},
        {"host\\d+", "host12x", false},
        {"(?i)critical", "CRITICAL", true},
        {"(?i)critical", "Critical", true},
        {"critical", "CRITICAL", false},
        {"(?:a|b)", "b", true},
        {"(?:a|b)", "ab", false},
        {"a|b", "a", true},
        {"a|b", "ab", false},
        {"(?P<n>x)y", "xy", true},
        {"x{2,3}", "xxx", true},
        {"x{2,3}", "xxxx", false},
        {"a{,2}", "a{,2}", true},
        {"[[:digit:]]+\\.[^.]", "12.x", true},
        {"\\pL+", "abc", true},
        {"\\x41\\x{42}", "AB", true},
        {"\\Qa.b\\E", "a.b", true},
        {"\\Qa.b\\E", "axb", false},
        /* \d, \w are ASCII only, as in RE2. */
        {"\\d", "\xd9\xa3", false},
        {".", "\xc3\xa9", true},
        /* RE2's \v is the vertical tab; \s leaves it out. */
        {"\\v", "\v", true},
        {"\\v", "\n", false},
        {"\\s", "\v", false},
        {"\\s", "\t", true},
        {"\\S", "x", true},
        {"\\S", " ", false},
        {"[\\s]", "\r", true},
        {"[\\s]", "\v", false},
        /* $ is the end of text only, not before a final line feed. */
        {"a$", "a\n", false},
        {"(?s)a.b", "a\nb", true},
        {"a.b", "a\nb", false},
        /* Lazy quantifiers are RE2. */
        {"a+?b*?", "aab", true},
        /* Invalid UTF-8 in a label value is no match, not an error. */
        {"a.", "a\xff", false},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        ck_assert_msg(re_match(cases[i].re, cases[i].value) == cases[i].matches,
                      "%s on %s", cases[i].re, cases[i].value);
}
END_TEST

START_TEST(test_re2_refused)
{
    static const error_case cases[] = {
        {"(a)\\1", "backreference at position 4 is not RE2"},
        {"x\\9", "backreference at position 2 "},
        {"(?<n>a)\\k<n>", "backreference \\k or \\g at position 8 "},
        {"a\\g1", "backreference \\k or \\g at position 2"},
        {"(?P<n>a)(?P=n)", "named backreference \"(?P=\" at position 9"},
        {"x(?=y)", "lookahead \"(?=\" at position 2 is not RE2"},
        {"x(?!y)", "negative lookahead \"(?!\" at position 2"},
        {"(?<=y)x", "lookbehind \"(?<=\" at position 1"},
        {"(?<!y)x", "negative lookbehind \"(?<!\" at position 1"},
        {"ab*+", "possessive quantifier at position 4"},
        {"a++", "possessive quantifier at position 3"},
        {"a?+", "possessive quantifier at position 3"},
        {"a{2}+", "possessive quantifier at position 5"},
        {"a(?>bc)", "atomic group \"(?>\" at position 2"},
        {"(a(?R))", "recursion at position 3"},
        {"(a(?1))", "recursion at position 3"},
        {"(a(?-1))", "recursion at position 3"},
        {"(?&n)", "recursion at position 1"},
        {"(?P>n)", "recursion \"(?P>\" at position 1"},
        {"a\\C", "\\C (one code unit) at position 2"},
        {"(?(1)a|b)", "conditional \"(?(\" at position 1"},
        {"(*ACCEPT)a", "backtracking verb \"(*\" at position 1"},
        {"(?C1)a", "callout \"(?C\" at position 1"},
        {"(?|a)", "branch reset \"(?|\" at position 1"},
        {"(?#c)a", "comment \"(?#\" at position 1"},
        {"(?x)a", "this flag (RE2 has i, m, s, U) at position 3"},
        {"(?ix)a", "this flag (RE2 has i, m, s, U) at position 4"},
        {"a\\Kb", "this escape at position 2"},
        {"a\\R", "this escape at position 2"},
        {"\\X", "this escape at position 1"},
        {"a\\Z", "this escape at position 2"},
        {"a\\h", "this escape at position 2"},
        {"[\\b]", "this escape inside a character class at position 2"},
        {"a**", "nested repetition operator at position 3"},
        {"a{1001}", "repeat count above 1000 at position 2"},
        {"a{2,1001}", "repeat count above 1000 at position 2"},
        {"a{99999999999999999999}", "repeat count above 1000 at position 2"},
        {"a{3,2}", "repeat {n,m} with m < n at position 2"},
        {"*a", "repetition operator with nothing to repeat at position 1"},
        {"a\\", "trailing backslash at position 2"},
        {"[a", "missing ] for the character class at position 1"},
        {"[[:foo:]]", "unknown POSIX character class at position 2"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        re2_regex *re = (re2_regex *)&i;
        char why[256] = "";

        assert_refused(&cases[i],
                       re2_compile(cases[i].text, &re, why, sizeof(why)), why);
        ck_assert_ptr_null(re);
    }
}
END_TEST

START_TEST(test_re2_large)
{
    size_t n = 1024 * 1024;
    char *big = malloc(n + 1);
    char why[256] = "";
    char plus[64] = "";
    char value[128];
    re2_regex *re = NULL;

    /* A 1 MB regex is refused before PCRE2 sees it. */
    ck_assert_ptr_nonnull(big);
    memset(big, 'a', n);
    big[n] = '\0';
    ck_assert_int_eq(re2_compile(big, &re, why, sizeof(why)),
                     HERALD_ERR_CONFIG);
    ck_assert_ptr_null(re);
    ck_assert_msg(strstr(why, "1048576 bytes long, the limit is 65536"),
                  "got '%s'", why);
    free(big);

    /* The 22-'+' regex that took glibc 11 s compiles and matches right. */
    for (int i = 0; i < 22; i++)
        strcat(plus, "a+");
    ck_assert_int_eq(re2_compile(plus, &re, why, sizeof(why)), HERALD_OK);
    memset(value, 'a', 22);
    ck_assert(re2_match(re, value, 22));
    ck_assert(!re2_match(re, value, 21));
    memset(value, 'a', sizeof(value));
    value[sizeof(value) - 1] = 'b';
    ck_assert(!re2_match(re, value, sizeof(value)));
    re2_destroy(re);

    /* A pattern that backtracks explosively elsewhere gets its answer
     * without hitting a limit. */
    {
        uint64_t hits = re2_limit_hits();

        ck_assert_int_eq(re2_compile("(x+x+)+y", &re, why, sizeof(why)),
                         HERALD_OK);
        memset(value, 'x', sizeof(value));
        ck_assert(!re2_match(re, value, sizeof(value)));
        value[sizeof(value) - 1] = 'y';
        ck_assert(re2_match(re, value, sizeof(value)));
        ck_assert_uint_eq(re2_limit_hits(), hits);
        re2_destroy(re);
    }

    /* More live states than the DFA workspace holds: a limit, counted,
     * and no match (so !~ holds). */
    {
        static char many[3000];
        uint64_t hits = re2_limit_hits();
        target_matcher m;

        memset(many, 'a', sizeof(many) - 1);
        ck_assert_int_eq(matcher_parse("v!~\"(?:a{0,1000}){8}(?:b|c)\"", &m,
                                       why, sizeof(why)),
                         HERALD_OK);
        ck_assert(matcher_match(&m, many));
        ck_assert_uint_eq(re2_limit_hits(), hits + 1);
        ck_assert(matcher_match(&m, "aax"));
        ck_assert(!matcher_match(&m, "aab"));
        ck_assert_uint_eq(re2_limit_hits(), hits + 1);
        matcher_free(&m);
    }
    re2_destroy(NULL);
}
END_TEST

START_TEST(test_list_forms)
{
    static const struct {
        const char *text;
        size_t n;
        bool matches; /* Against the test labels. */
    } cases[] = {
        {"{severity=\"critical\", env=~\"prod|staging\"}", 2, true},
        {"severity=\"critical\", env=~\"prod|staging\"", 2, true},
        {"{severity=\"critical\",env!=prod,}", 2, false},
        {"severity=critical, ", 1, true},
        {"{msg=\"a, b\", env=prod}", 2, false},
        {"{msg=~\"a\\\", b\"}", 1, false},
        {"{}", 0, true},
        {"", 0, true},
        {"alertname=HighLatency", 1, true},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        target_matcher *ms = NULL;
        size_t n = 99;
        char why[512];

        ck_assert_msg(matchers_parse(cases[i].text, &ms, &n, why,
                                     sizeof(why)) == HERALD_OK,
                      "%s: %s", cases[i].text, why);
        ck_assert_uint_eq(n, cases[i].n);
        ck_assert_msg(matchers_match_all(ms, n, &labels) == cases[i].matches,
                      "%s", cases[i].text);
        matchers_free(ms, n);
    }
    {
        target_matcher *ms = NULL;
        size_t n = 0;
        char why[512];

        ck_assert_int_eq(matchers_parse("{msg=\"a, b\", x=~\"q\"}", &ms, &n,
                                        why, sizeof(why)),
                         HERALD_OK);
        ck_assert_str_eq(ms[0].value, "a, b");
        ck_assert_uint_eq(matchers_first_failed(ms, n, &labels), 0);
        matchers_free(ms, n);
        ck_assert_int_eq(matchers_parse("a=b,,c=d", &ms, &n, why, sizeof(why)),
                         HERALD_ERR_CONFIG);
        ck_assert_ptr_null(ms);
        ck_assert_uint_eq(n, 0);
        ck_assert_msg(strstr(why, "matcher 2 of the list: matcher \"\" must "
                                  "start with a label name"),
                      "got '%s'", why);
        ck_assert_int_eq(
            matchers_parse("{a=b, c=~\"x(?=y)\"}", &ms, &n, why, sizeof(why)),
            HERALD_ERR_CONFIG);
        ck_assert_msg(strstr(why, "matcher 2 of the list: regex \"x(?=y)\": "
                                  "lookahead \"(?=\" at position 2"),
                      "got '%s'", why);
        matchers_free(NULL, 3);
    }
}
END_TEST

START_TEST(test_escapes)
{
    static const struct {
        const char *text;
        const char *value;
    } cases[] = {
        {"a=\"x\\\"y\"", "x\"y"},
        {"a=\"x\\\\y\"", "x\\y"},
        {"a=\"x\\ny\"", "x\ny"},
        {"a=\"x\\dy\"", "x\\dy"},
        {"a=x\\ny", "x\ny"},
        {"a=x\\", "x\\"},
        {"a=\"\"", ""},
        {"a=", ""},
        {"  a  =~  \"b c\"  ", "b c"},
        {"a=\"\xc3\xa9\"", "\xc3\xa9"},
        {"job:rate=\"x\"", "x"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        target_matcher m;
        char why[256];

        ck_assert_msg(matcher_parse(cases[i].text, &m, why, sizeof(why)) ==
                          HERALD_OK,
                      "%s: %s", cases[i].text, why);
        ck_assert_str_eq(m.value, cases[i].value);
        matcher_free(&m);
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
    tc = tcase_create("re2_dialect");
    tcase_add_test(tc, test_re2_dialect);
    suite_add_tcase(s, tc);
    tc = tcase_create("re2_refused");
    tcase_add_test(tc, test_re2_refused);
    suite_add_tcase(s, tc);
    tc = tcase_create("re2_large");
    tcase_add_test(tc, test_re2_large);
    suite_add_tcase(s, tc);
    tc = tcase_create("list_forms");
    tcase_add_test(tc, test_list_forms);
    suite_add_tcase(s, tc);
    tc = tcase_create("escapes");
    tcase_add_test(tc, test_escapes);
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
