/*
 * check_options.c: tests of the table-driven command line (core/options).
 *
 * One table with every entry type drives every case: parsing of each
 * type, ranges and their messages, precedence flag > environment >
 * default, the empty environment value, boolean words, HERALD_KAFKA_*
 * properties and -X over them, unknown flags, required flags, the --help
 * text, --print-config and the masked summary. The environment is the
 * process's own: each case sets what it needs and the teardown unsets it.
 */
#include <check.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"

#include "tests/check_main.h"

extern char **environ;

typedef struct t_settings {
    const char *name;
    const char *token;
    const char *renamed;
    int count;
    int64_t wait_ms;
    bool verbose;
    bool split;
    int color;
    options_list props;
    options_list tags;
} t_settings;

static const char *const t_colors[] = {"red", "green", "blue", NULL};
static const int t_color_values[] = {10, 20, 30};

static const options_entry t_entries[] = {
    {.name = "name",
     .short_name = 'n',
     .type = OPTIONS_STRING,
     .offset = offsetof(t_settings, name),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "a name"},
    {.name = "api-token",
     .type = OPTIONS_STRING,
     .offset = offsetof(t_settings, token),
     .flags = OPTIONS_SECRET,
     .arg = "TOKEN",
     .help = "a secret"},
    {.name = "renamed",
     .type = OPTIONS_STRING,
     .offset = offsetof(t_settings, renamed),
     .arg = "X",
     .env = "HERALD_OTHER_NAME",
     .help = "its own variable"},
    {.name = "count",
     .short_name = 'c',
     .type = OPTIONS_INT,
     .offset = offsetof(t_settings, count),
     .arg = "N",
     .min = 1,
     .max = 1000000,
     .help = "an int"},
    {.name = "wait-ms",
     .type = OPTIONS_MS,
     .offset = offsetof(t_settings, wait_ms),
     .arg = "MS",
     .min = 0,
     .max = 86400000000LL,
     .help = "a duration"},
    {.name = "verbose",
     .short_name = 'v',
     .type = OPTIONS_BOOL,
     .offset = offsetof(t_settings, verbose),
     .help = "a switch"},
    {.name = "split",
     .type = OPTIONS_BOOL,
     .offset = offsetof(t_settings, split),
     .neg_name = "no-split",
     .help = "a switch with a negation"},
    {.name = "color",
     .type = OPTIONS_ENUM,
     .offset = offsetof(t_settings, color),
     .arg = "C",
     .words = t_colors,
     .values = t_color_values,
     .help = "an enum"},
    {.name = "tag",
     .short_name = 'T',
     .type = OPTIONS_LIST,
     .offset = offsetof(t_settings, tags),
     .arg = "TAG",
     .help = "a repeatable string"},
    OPTIONS_ENTRY_PROPERTY(t_settings, props),
};

static const options_spec t_spec = {
    .command = "herald test",
    .usage = "Usage: herald test [OPTIONS] [ARG]\n",
    .footer = "The footer.\n",
    OPTIONS_TABLE(t_entries),
    .max_args = 1,
};

static t_settings set;
static options_state st;
static char errstr[1024];

/* Unsets every HERALD_ variable, so the outer environment (ctest's
 * HERALD_SOURCE_DIR, scripts/test's HERALD_KAFKA_PORT) cannot leak in. */
static void t_clear_env(void)
{
    char name[256];
    bool again = true;

    while (again) {
        again = false;
        for (char **e = environ; e && *e; e++) {
            size_t len = strcspn(*e, "=");

            if (strncmp(*e, "HERALD_", 7) != 0 || len >= sizeof name)
                continue;
            memcpy(name, *e, len);
            name[len] = '\0';
            unsetenv(name);
            again = true;
            break;
        }
    }
}

/* The defaults of the test table. */
static void t_defaults(void)
{
    memset(&set, 0, sizeof set);
    set.count = 7;
    set.wait_ms = 1500;
    set.split = true;
    set.color = 20;
}

static void setup(void)
{
    t_clear_env();
    t_defaults();
    memset(&st, 0, sizeof st);
}

static void teardown(void)
{
    options_list_free(&set.props);
    options_list_free(&set.tags);
    options_state_free(&st);
    t_clear_env();
}

/* Parses a NULL-terminated argument vector (argv[0] is added). */
#define PARSE(...) t_parse((const char *[]){"test", __VA_ARGS__, NULL})

static herald_err t_parse(const char **args)
{
    int argc = 0;

    while (args[argc])
        argc++;
    options_list_free(&set.props);
    options_list_free(&set.tags);
    options_state_free(&st);
    t_defaults();
    return options_parse(&t_spec, argc, (char **)args, &set, &st, errstr,
                         sizeof errstr);
}

/* What a printer writes, as a string the caller frees. */
static char *t_help(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    options_help(&t_spec, &set, f);
    fclose(f);
    return text;
}

static char *t_print(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    options_print(&t_spec, &set, &st, f);
    fclose(f);
    return text;
}

START_TEST(test_every_type_from_flags)
{
    ck_assert_int_eq(PARSE("-n", "alpha", "--api-token=s3", "--count", "42",
                           "--wait-ms", "86400000000", "-v", "--no-split",
                           "--color", "blue", "-T", "a", "--tag", "b", "-X",
                           "acks=all", "arg"),
                     HERALD_OK);
    ck_assert_str_eq(set.name, "alpha");
    ck_assert_str_eq(set.token, "s3");
    ck_assert_int_eq(set.count, 42);
    ck_assert_int_eq(set.wait_ms, 86400000000LL);
    ck_assert(set.verbose);
    ck_assert(!set.split);
    ck_assert_int_eq(set.color, 30);
    ck_assert_uint_eq(set.tags.n, 2);
    ck_assert_str_eq(set.tags.items[0], "a");
    ck_assert_str_eq(set.tags.items[1], "b");
    ck_assert_uint_eq(set.props.n, 1);
    ck_assert_str_eq(set.props.items[0], "acks=all");
    ck_assert_ptr_null(set.props.envs[0]);
    ck_assert_int_eq(st.argi, 18);
    ck_assert_int_eq(options_source_of(&t_spec, &st, "count"),
                     OPTIONS_SRC_FLAG);
    ck_assert_int_eq(options_source_of(&t_spec, &st, "renamed"),
                     OPTIONS_SRC_DEFAULT);
    /* The last of a repeated scalar flag wins; --split after --no-split. */
    ck_assert_int_eq(
        PARSE("-n", "a", "-c", "1", "-c", "2", "--no-split", "--split"),
        HERALD_OK);
    ck_assert_int_eq(set.count, 2);
    ck_assert(set.split);
}
END_TEST

START_TEST(test_ranges_and_messages)
{
    ck_assert_int_eq(PARSE("-n", "a", "--count", "1000000"), HERALD_OK);
    ck_assert_int_eq(PARSE("-n", "a", "--count", "1"), HERALD_OK);
    ck_assert_int_eq(PARSE("-n", "a", "--count", "0"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: --count: expected an integer in "
                             "1..1000000, got \"0\"");
    ck_assert_int_eq(PARSE("-n", "a", "-c", "x"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: --count: expected an integer in "
                             "1..1000000, got \"x\"");
    ck_assert_int_eq(PARSE("-n", "a", "-c", "12abc"), HERALD_ERR_INVALID);
    ck_assert_int_eq(PARSE("-n", "a", "-c", ""), HERALD_ERR_INVALID);
    ck_assert_int_eq(PARSE("-n", "a", "-c", "99999999999999999999"),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(PARSE("-n", "a", "--wait-ms", "-1"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: --wait-ms: expected an integer in "
                             "0..86400000000, got \"-1\"");
    ck_assert_int_eq(PARSE("-n", "a", "--color", "pink"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: --color: expected red, green or blue, "
                             "got \"pink\"");
    /* A failed parse leaves the default of what it did not reach. */
    ck_assert_int_eq(set.count, 7);
}
END_TEST

START_TEST(test_env_precedence)
{
    setenv("HERALD_NAME", "from-env", 1);
    setenv("HERALD_COUNT", "99", 1);
    setenv("HERALD_WAIT_MS", "250", 1);
    setenv("HERALD_COLOR", "red", 1);
    setenv("HERALD_OTHER_NAME", "other", 1);
    ck_assert_int_eq(PARSE("--count", "5"), HERALD_OK);
    ck_assert_str_eq(set.name, "from-env");
    ck_assert_int_eq(set.count, 5); /* The flag wins. */
    ck_assert_int_eq(set.wait_ms, 250);
    ck_assert_int_eq(set.color, 10);
    ck_assert_str_eq(set.renamed, "other");
    ck_assert_int_eq(options_source_of(&t_spec, &st, "name"), OPTIONS_SRC_ENV);
    ck_assert_int_eq(options_source_of(&t_spec, &st, "count"),
                     OPTIONS_SRC_FLAG);
    ck_assert_int_eq(options_source_of(&t_spec, &st, "split"),
                     OPTIONS_SRC_DEFAULT);
    ck_assert(set.split); /* The default. */
    /* A bad environment value names the variable. */
    setenv("HERALD_COUNT", "0", 1);
    ck_assert_int_eq(PARSE("-n", "a"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: HERALD_COUNT: expected an integer in "
                             "1..1000000, got \"0\"");
    /* ... unless a flag sets it: then the variable is not read. */
    ck_assert_int_eq(PARSE("-n", "a", "-c", "3"), HERALD_OK);
    ck_assert_int_eq(set.count, 3);
}
END_TEST

START_TEST(test_env_empty_is_empty_value)
{
    setenv("HERALD_NAME", "n", 1);
    setenv("HERALD_API_TOKEN", "", 1);
    ck_assert_int_eq(PARSE("-v"), HERALD_OK);
    ck_assert_ptr_nonnull(set.token);
    ck_assert_str_eq(set.token, "");
    ck_assert_int_eq(options_source_of(&t_spec, &st, "api-token"),
                     OPTIONS_SRC_ENV);
    /* Empty is no integer, and no value for a required flag. */
    setenv("HERALD_COUNT", "", 1);
    ck_assert_int_eq(PARSE("-v"), HERALD_ERR_INVALID);
    unsetenv("HERALD_COUNT");
    setenv("HERALD_NAME", "", 1);
    ck_assert_int_eq(PARSE("-v"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: missing --name (or HERALD_NAME)");
}
END_TEST

START_TEST(test_bool_words)
{
    const char *yes[] = {"true", "1", "yes"};
    const char *no[] = {"false", "0", "no"};

    setenv("HERALD_NAME", "n", 1);
    for (size_t i = 0; i < 3; i++) {
        setenv("HERALD_VERBOSE", yes[i], 1);
        setenv("HERALD_SPLIT", no[i], 1);
        ck_assert_int_eq(PARSE("arg"), HERALD_OK);
        ck_assert(set.verbose);
        ck_assert(!set.split);
    }
    for (size_t i = 0; i < 3; i++) {
        setenv("HERALD_VERBOSE", no[i], 1);
        ck_assert_int_eq(PARSE("arg"), HERALD_OK);
        ck_assert(!set.verbose);
    }
    setenv("HERALD_VERBOSE", "on", 1);
    ck_assert_int_eq(PARSE("arg"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald: HERALD_VERBOSE: expected true, false, "
                             "1, 0, yes or no, got \"on\"");
    /* The flag wins over a false environment value. */
    setenv("HERALD_VERBOSE", "no", 1);
    ck_assert_int_eq(PARSE("--verbose"), HERALD_OK);
    ck_assert(set.verbose);
}
END_TEST

START_TEST(test_kafka_env)
{
    setenv("HERALD_NAME", "n", 1);
    setenv("HERALD_KAFKA_SASL_PASSWORD", "pw", 1);
    setenv("HERALD_KAFKA_SECURITY_PROTOCOL", "SASL_SSL", 1);
    setenv("HERALD_KAFKA_SESSION_TIMEOUT_MS", "10000", 1);
    setenv("HERALD_KAFKA_PORT", "39092", 1); /* integration/kafka's. */
    ck_assert_int_eq(PARSE("-X", "session.timeout.ms=6000"), HERALD_OK);
    ck_assert_uint_eq(set.props.n, 3);
    for (size_t i = 0; i < set.props.n; i++) {
        const char *item = set.props.items[i];

        if (strcmp(item, "sasl.password=pw") == 0)
            ck_assert_str_eq(set.props.envs[i], "HERALD_KAFKA_SASL_PASSWORD");
        else if (strcmp(item, "security.protocol=SASL_SSL") == 0)
            ck_assert_str_eq(set.props.envs[i],
                             "HERALD_KAFKA_SECURITY_PROTOCOL");
        else if (strcmp(item, "session.timeout.ms=6000") == 0)
            ck_assert_ptr_null(set.props.envs[i]); /* -X wins. */
        else
            ck_abort_msg("unexpected property %s", item);
    }
    ck_assert_uint_eq(st.n_ignored, 1);
    ck_assert_str_eq(st.ignored[0], "HERALD_KAFKA_PORT");
    /* An invalid value of a known property is kept: librdkafka reports
     * it when the handle is configured, as for -X. */
    setenv("HERALD_KAFKA_ACKS", "bogus", 1);
    ck_assert_int_eq(PARSE("-v"), HERALD_OK);
    ck_assert_uint_eq(set.props.n, 4);
}
END_TEST

START_TEST(test_usage_errors)
{
    ck_assert_int_eq(PARSE("-n", "a", "--bogus"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: unknown option \"--bogus\"");
    ck_assert_int_eq(PARSE("-n", "a", "-z"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: unknown option \"-z\"");
    ck_assert_int_eq(PARSE("-n", "a", "--count"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: missing the argument of "
                             "\"--count\"");
    ck_assert_int_eq(PARSE("-n", "a", "one", "two"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: unexpected argument \"two\"");
    ck_assert_int_eq(PARSE("-v"), HERALD_ERR_INVALID);
    ck_assert_str_eq(errstr, "herald test: missing --name (or HERALD_NAME)");
    ck_assert_int_eq(PARSE("--verbose=yes", "-n", "a"), HERALD_ERR_INVALID);
}
END_TEST

START_TEST(test_help)
{
    char *text;

    /* --help stops before the environment: dst keeps the defaults. */
    setenv("HERALD_COUNT", "99", 1);
    ck_assert_int_eq(PARSE("--count", "5", "--help"), HERALD_OK);
    ck_assert(st.help);
    ck_assert_int_eq(set.count, 7);
    text = t_help();
    for (size_t i = 0; i < t_spec.n_entries; i++) {
        char var[256];
        char flag[256];

        if (t_entries[i].type == OPTIONS_LIST)
            continue;
        options_env_name(&t_entries[i], var, sizeof var);
        snprintf(flag, sizeof flag, "--%s", t_entries[i].name);
        ck_assert_msg(strstr(text, flag), "help lacks %s", flag);
        if (t_entries[i].type != OPTIONS_KAFKA)
            ck_assert_msg(strstr(text, var), "help lacks %s", var);
    }
    ck_assert_ptr_nonnull(strstr(text, "HERALD_OTHER_NAME"));
    ck_assert_ptr_nonnull(strstr(text, "HERALD_KAFKA_<PROPERTY>"));
    ck_assert_ptr_nonnull(strstr(text, "default 7"));
    ck_assert_ptr_nonnull(strstr(text, "range 1..1000000"));
    ck_assert_ptr_nonnull(strstr(text, "default green"));
    ck_assert_ptr_nonnull(strstr(text, "--split, --no-split"));
    ck_assert_ptr_nonnull(strstr(text, "Usage: herald test"));
    ck_assert_ptr_nonnull(strstr(text, "The footer."));
    for (char *line = text; *line;) {
        size_t len = strcspn(line, "\n");

        ck_assert_msg(len <= 80, "help line over 80 columns: %.*s", (int)len,
                      line);
        line += len + (line[len] == '\n');
    }
    free(text);
}
END_TEST

START_TEST(test_print_and_summary)
{
    char *text;
    buf b;

    setenv("HERALD_API_TOKEN", "t0psecret", 1);
    setenv("HERALD_KAFKA_SASL_PASSWORD", "pw-secret", 1);
    ck_assert_int_eq(
        PARSE("-n", "alpha", "-X", "ssl.key.password=k3y", "-X", "acks=all"),
        HERALD_OK);
    text = t_print();
    ck_assert_ptr_nonnull(strstr(text, "name = \"alpha\"  # flag\n"));
    ck_assert_ptr_nonnull(strstr(text, "api-token = ***  # env "
                                       "HERALD_API_TOKEN\n"));
    ck_assert_ptr_nonnull(strstr(text, "count = 7  # default\n"));
    ck_assert_ptr_nonnull(strstr(text, "color = green  # default\n"));
    ck_assert_ptr_nonnull(strstr(text, "renamed = (unset)  # default\n"));
    ck_assert_ptr_nonnull(strstr(text, "-X sasl.password = ***  # env "
                                       "HERALD_KAFKA_SASL_PASSWORD\n"));
    ck_assert_ptr_nonnull(strstr(text, "-X ssl.key.password = ***  # flag\n"));
    ck_assert_ptr_nonnull(strstr(text, "-X acks = all  # flag\n"));
    ck_assert_ptr_null(strstr(text, "t0psecret"));
    ck_assert_ptr_null(strstr(text, "pw-secret"));
    ck_assert_ptr_null(strstr(text, "k3y"));
    free(text);

    buf_init(&b, 4096);
    ck_assert_int_eq(options_summary(&t_spec, &set, &b), HERALD_OK);
    ck_assert_ptr_nonnull(strstr(buf_str(&b), "name=\"alpha\""));
    ck_assert_ptr_nonnull(strstr(buf_str(&b), "api-token=***"));
    ck_assert_ptr_nonnull(strstr(buf_str(&b), "-X acks=all"));
    ck_assert_ptr_null(strstr(buf_str(&b), "t0psecret"));
    ck_assert_ptr_null(strstr(buf_str(&b), "pw-secret"));
    buf_free(&b);
}
END_TEST

START_TEST(test_kafka_secrets)
{
    const char *secret[] = {"sasl.password",
                            "ssl.key.password",
                            "ssl.key.pem",
                            "ssl.key.location",
                            "ssl.keystore.password",
                            "sasl.jaas.config",
                            "sasl.oauthbearer.client.secret",
                            "sasl.oauthbearer.config",
                            "sasl.kerberos.keytab",
                            "some.token"};
    const char *plain[] = {"bootstrap.servers", "sasl.username",
                           "security.protocol", "ssl.ca.location",
                           "sasl.mechanisms",   "acks"};

    for (size_t i = 0; i < sizeof secret / sizeof *secret; i++)
        ck_assert_msg(options_kafka_is_secret(secret[i]), "%s", secret[i]);
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        ck_assert_msg(!options_kafka_is_secret(plain[i]), "%s", plain[i]);
}
END_TEST

START_TEST(test_env_name_rule)
{
    const options_entry e = {.name = "commit-interval-ms"};
    char var[64];

    options_env_name(&e, var, sizeof var);
    ck_assert_str_eq(var, "HERALD_COMMIT_INTERVAL_MS");
    options_env_name(&t_entries[2], var, sizeof var);
    ck_assert_str_eq(var, "HERALD_OTHER_NAME");
}
END_TEST

int main(void)
{
    const check_case cases[] = {
        {"every_type_from_flags", test_every_type_from_flags},
        {"ranges_and_messages", test_ranges_and_messages},
        {"env_precedence", test_env_precedence},
        {"env_empty_is_empty_value", test_env_empty_is_empty_value},
        {"bool_words", test_bool_words},
        {"kafka_env", test_kafka_env},
        {"usage_errors", test_usage_errors},
        {"help", test_help},
        {"print_and_summary", test_print_and_summary},
        {"kafka_secrets", test_kafka_secrets},
        {"env_name_rule", test_env_name_rule},
    };
    Suite *s = suite_create("options");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    return check_suite_run(s);
}
