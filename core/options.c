/*
 * options.c: the table-driven command line (core/options.h).
 *
 * Data flow of options_parse(): (1) getopt_long(), built from the table,
 * records which entry each flag names and its argument, without applying
 * anything, so that --help finds the settings struct still holding the
 * defaults; (2) the environment variable of every entry no flag sets is
 * applied; (3) HERALD_KAFKA_* variables become librdkafka properties;
 * (4) the recorded
 * flags are applied in command-line order, so a flag wins over the
 * environment; (5) a -X property drops the environment's property of the
 * same name; (6) required flags and positional arguments are checked.
 *
 * Threads: options_parse() runs on the main thread (getopt's globals,
 * environ); the printers touch only their arguments.
 */
#include "core/options.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <librdkafka/rdkafka.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

extern char **environ;

const char *const options_log_level_words[] = {
    "debug", "info", "warn", "error", "off", "warning", NULL};
const int options_log_level_values[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO,
                                        LOG_LEVEL_WARN,  LOG_LEVEL_ERROR,
                                        LOG_LEVEL_OFF,   LOG_LEVEL_WARN};
const char *const options_log_format_words[] = {"auto", "json", "text", NULL};
const int options_log_format_values[] = {LOG_FORMAT_AUTO, LOG_FORMAT_JSON,
                                         LOG_FORMAT_TEXT};

#define OPTIONS_ENV_PREFIX "HERALD_"
#define OPTIONS_KAFKA_PREFIX "HERALD_KAFKA_"
/* getopt_long() value of entry i: OPTIONS_VAL + i; of its negation:
 * OPTIONS_NEG + i. Above every short letter. */
#define OPTIONS_VAL 1000
#define OPTIONS_NEG 100000
/* Column of the help text in --help; the flag column before it. */
#define OPTIONS_HELP_COL 30
/* Longest environment variable name or rendered value we format. */
#define OPTIONS_NAME_MAX 256
#define OPTIONS_VALUE_MAX 1024

/* One flag seen on the command line, applied after the environment. */
typedef struct options_seen {
    size_t entry;
    bool negated;
    const char *arg;
} options_seen;

/* State of one options_parse(). */
typedef struct options_ctx {
    const options_spec *spec;
    void *dst;
    options_state *st;
    size_t cap; /* Capacity of every list: argc + environment size. */
    rd_kafka_conf_t *probe; /* Scratch conf asking librdkafka about names. */
    char *errstr;
    size_t errstr_size;
} options_ctx;

static void *options_field(void *dst, const options_entry *e)
{
    return (char *)dst + e->offset;
}

static const void *options_cfield(const void *dst, const options_entry *e)
{
    return (const char *)dst + e->offset;
}

void options_env_name(const options_entry *e, char *out, size_t out_size)
{
    const char *name = e->name;
    size_t n = 0;
    size_t plen = strlen(OPTIONS_ENV_PREFIX);

    if (out_size == 0)
        return;
    if (e->env) {
        snprintf(out, out_size, "%s", e->env);
        return;
    }
    if (plen >= out_size)
        plen = out_size - 1;
    memcpy(out, OPTIONS_ENV_PREFIX, plen);
    n = plen;
    for (; *name && n + 1 < out_size; name++)
        out[n++] = *name == '-' ? '_' : (char)toupper((unsigned char)*name);
    out[n] = '\0';
}

bool options_kafka_is_secret(const char *name)
{
    static const char *const parts[] = {"password", "secret", "token",
                                        "credential"};
    static const char *const exact[] = {
        "sasl.jaas.config", "sasl.oauthbearer.config", "sasl.kerberos.keytab"};

    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        if (strstr(name, parts[i]))
            return true;
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (strcmp(name, exact[i]) == 0)
            return true;
    return strncmp(name, "ssl.key", 7) == 0;
}

/* True when the "name=value" property item holds a secret. */
static bool options_item_is_secret(const char *item)
{
    char name[OPTIONS_NAME_MAX];
    size_t len = strcspn(item, "=");

    if (len >= sizeof name)
        len = sizeof name - 1;
    memcpy(name, item, len);
    name[len] = '\0';
    return options_kafka_is_secret(name);
}

void options_list_free(options_list *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->n; i++) {
        free(list->items[i]);
        free(list->envs[i]);
    }
    free(list->items);
    free(list->envs);
    memset(list, 0, sizeof *list);
}

options_source options_source_of(const options_spec *spec,
                                 const options_state *st, const char *name)
{
    for (size_t i = 0; st->sources && i < spec->n_entries; i++)
        if (strcmp(spec->entries[i].name, name) == 0)
            return st->sources[i];
    return OPTIONS_SRC_DEFAULT;
}

void options_state_free(options_state *st)
{
    if (!st)
        return;
    for (size_t i = 0; i < st->n_owned; i++)
        free(st->owned[i]);
    for (size_t i = 0; i < st->n_ignored; i++)
        free(st->ignored[i]);
    free(st->owned);
    free(st->ignored);
    free(st->sources);
    memset(st, 0, sizeof *st);
}

/* Appends a copy of item (and of env, when not NULL) to a list. */
static herald_err options_list_add(options_ctx *ctx, options_list *list,
                                   const char *item, const char *env)
{
    if (!list->items) {
        list->items = calloc(ctx->cap, sizeof *list->items);
        list->envs = calloc(ctx->cap, sizeof *list->envs);
        if (!list->items || !list->envs)
            return HERALD_ERR_NOMEM;
    }
    if (list->n >= ctx->cap)
        return HERALD_ERR_FULL; /* Cannot happen: cap counts every source. */
    list->items[list->n] = strdup(item);
    list->envs[list->n] = env ? strdup(env) : NULL;
    if (!list->items[list->n] || (env && !list->envs[list->n])) {
        free(list->items[list->n]);
        free(list->envs[list->n]);
        return HERALD_ERR_NOMEM;
    }
    list->n++;
    return HERALD_OK;
}

/* A copy of s owned by st (environment strings may move later). */
static const char *options_own(options_ctx *ctx, const char *s)
{
    char *copy = strdup(s);

    if (!copy)
        return NULL;
    ctx->st->owned[ctx->st->n_owned++] = copy;
    return copy;
}

static int options_enum_index(const options_entry *e, const char *word)
{
    for (int i = 0; e->words[i]; i++)
        if (strcmp(e->words[i], word) == 0)
            return i;
    return -1;
}

/* The words of an enum entry into out: "a, b or c" with sep ", " and
 * last_sep " or ". */
static void options_enum_words(const options_entry *e, const char *sep_mid,
                               const char *last_sep, char *out, size_t out_size)
{
    size_t n = 0;

    out[0] = '\0';
    for (int i = 0; e->words[i] && n < out_size; i++) {
        const char *sep = i == 0 ? "" : e->words[i + 1] ? sep_mid : last_sep;
        int w = snprintf(out + n, out_size - n, "%s%s", sep, e->words[i]);

        if (w < 0)
            break;
        n += (size_t)w;
    }
}

static bool options_bool_word(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes"};
    static const char *const no[] = {"false", "0", "no"};

    for (size_t i = 0; i < 3; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

/*
 * Applies value to entry e. what names the source in messages ("--window"
 * or "HERALD_WINDOW"); env is the variable for list items, else NULL.
 */
static herald_err options_apply(options_ctx *ctx, const options_entry *e,
                                const char *what, const char *value,
                                const char *env)
{
    void *f = options_field(ctx->dst, e);

    switch (e->type) {
    case OPTIONS_STRING: *(const char **)f = value; return HERALD_OK;
    case OPTIONS_INT:
    case OPTIONS_MS: {
        char *end = NULL;
        long long v;

        errno = 0;
        v = strtoll(value, &end, 10);
        if (!value[0] || *end || errno || v < e->min || v > e->max) {
            snprintf(ctx->errstr, ctx->errstr_size,
                     "herald: %s: expected an integer in %" PRId64 "..%" PRId64
                     ", got \"%s\"",
                     what, e->min, e->max, value);
            return HERALD_ERR_INVALID;
        }
        if (e->type == OPTIONS_INT)
            *(int *)f = (int)v;
        else
            *(int64_t *)f = (int64_t)v;
        return HERALD_OK;
    }
    case OPTIONS_BOOL:
        if (!options_bool_word(value, (bool *)f)) {
            snprintf(ctx->errstr, ctx->errstr_size,
                     "herald: %s: expected true, false, 1, 0, yes or no, "
                     "got \"%s\"",
                     what, value);
            return HERALD_ERR_INVALID;
        }
        return HERALD_OK;
    case OPTIONS_ENUM: {
        int i = options_enum_index(e, value);
        char words[OPTIONS_VALUE_MAX];

        if (i < 0) {
            options_enum_words(e, ", ", " or ", words, sizeof words);
            snprintf(ctx->errstr, ctx->errstr_size,
                     "herald: %s: expected %s, got \"%s\"", what, words, value);
            return HERALD_ERR_INVALID;
        }
        *(int *)f = e->values[i];
        return HERALD_OK;
    }
    case OPTIONS_LIST:
    case OPTIONS_KAFKA:
        return options_list_add(ctx, (options_list *)f, value, env);
    }
    return HERALD_ERR_INVALID;
}

/* Step 1: getopt_long() over argv, recording the flags in seen. */
static herald_err options_scan(options_ctx *ctx, int argc, char **argv,
                               options_seen *seen, size_t *n_seen)
{
    const options_spec *spec = ctx->spec;
    struct option *longopts =
        calloc(2 * spec->n_entries + 2, sizeof(*longopts));
    char *shortopts = calloc(2 * spec->n_entries + 4, 1);
    size_t nl = 0;
    size_t ns = 0;
    herald_err err = HERALD_OK;
    int c;

    if (!longopts || !shortopts) {
        err = HERALD_ERR_NOMEM;
        goto out;
    }
    /* ':' first: a missing argument is reported as ':', not '?'. */
    shortopts[ns++] = ':';
    for (size_t i = 0; i < spec->n_entries; i++) {
        const options_entry *e = &spec->entries[i];
        int has_arg = e->type == OPTIONS_BOOL ? no_argument : required_argument;

        longopts[nl++] =
            (struct option){e->name, has_arg, NULL, OPTIONS_VAL + (int)i};
        if (e->neg_name)
            longopts[nl++] = (struct option){e->neg_name, no_argument, NULL,
                                             OPTIONS_NEG + (int)i};
        if (e->short_name) {
            shortopts[ns++] = e->short_name;
            if (has_arg == required_argument)
                shortopts[ns++] = ':';
        }
    }
    longopts[nl++] = (struct option){"help", no_argument, NULL, 'h'};
    shortopts[ns++] = 'h';

    optind = 0; /* Full getopt re-initialisation (GNU). */
    opterr = 0;
    for (;;) {
        options_seen *s = &seen[*n_seen];

        c = getopt_long(argc, argv, shortopts, longopts, NULL);
        if (c == -1)
            break;
        if (c == 'h') {
            ctx->st->help = true;
            goto out;
        }
        if (c == '?' || c == ':') {
            const char *arg = argv[optind - 1];
            char shortflag[3] = {'-', (char)optopt, '\0'};

            if (c == '?' && optopt > 0 && optopt < OPTIONS_VAL)
                arg = shortflag;
            snprintf(
                ctx->errstr, ctx->errstr_size, "%s: %s \"%s\"", spec->command,
                c == ':' ? "missing the argument of" : "unknown option", arg);
            err = HERALD_ERR_INVALID;
            goto out;
        }
        memset(s, 0, sizeof *s);
        if (c >= OPTIONS_NEG) {
            s->entry = (size_t)(c - OPTIONS_NEG);
            s->negated = true;
        } else if (c >= OPTIONS_VAL) {
            s->entry = (size_t)(c - OPTIONS_VAL);
        } else {
            for (size_t i = 0; i < spec->n_entries; i++)
                if (spec->entries[i].short_name == c)
                    s->entry = i;
        }
        s->arg = optarg;
        (*n_seen)++;
    }
    ctx->st->argi = optind;
out:
    free(longopts);
    free(shortopts);
    return err;
}

/*
 * Step 3: HERALD_KAFKA_<NAME>=value becomes the property <name> (lower
 * case, '_' as '.') of the OPTIONS_KAFKA entry e, when librdkafka knows
 * the name.
 */
static herald_err options_kafka_env(options_ctx *ctx, size_t idx)
{
    const options_entry *e = &ctx->spec->entries[idx];
    size_t plen = strlen(OPTIONS_KAFKA_PREFIX);

    for (char **env = environ; env && *env; env++) {
        const char *eq = strchr(*env, '=');
        char var[OPTIONS_NAME_MAX];
        char item[OPTIONS_VALUE_MAX];
        char errbuf[256];
        size_t len;
        size_t n = 0;
        herald_err err;

        if (!eq || strncmp(*env, OPTIONS_KAFKA_PREFIX, plen) != 0)
            continue;
        len = (size_t)(eq - *env);
        if (len == plen || len >= sizeof var)
            continue;
        memcpy(var, *env, len);
        var[len] = '\0';
        for (const char *p = var + plen; *p && n + 1 < sizeof item; p++)
            item[n++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
        item[n] = '\0';
        /* Probing plugin.library.paths would load the plugins. */
        if (strcmp(item, "plugin.library.paths") != 0 &&
            rd_kafka_conf_set(ctx->probe, item, eq + 1, errbuf,
                              sizeof errbuf) == RD_KAFKA_CONF_UNKNOWN) {
            char *copy = strdup(var);

            if (!copy)
                return HERALD_ERR_NOMEM;
            ctx->st->ignored[ctx->st->n_ignored++] = copy;
            continue;
        }
        snprintf(item + n, sizeof item - n, "=%s", eq + 1);
        err = options_apply(ctx, e, var, item, var);
        if (err != HERALD_OK)
            return err;
        ctx->st->sources[idx] = OPTIONS_SRC_ENV;
    }
    return HERALD_OK;
}

/* True when a flag of the command line sets entry i. */
static bool options_flag_given(const options_seen *seen, size_t n_seen,
                               size_t i)
{
    for (size_t j = 0; j < n_seen; j++)
        if (seen[j].entry == i)
            return true;
    return false;
}

/*
 * Step 2 and 3: the environment form of every entry. A scalar that a flag
 * sets is not read from the environment at all, so a stale variable
 * cannot fail a command line that overrides it.
 */
static herald_err options_env(options_ctx *ctx, const options_seen *seen,
                              size_t n_seen)
{
    const options_spec *spec = ctx->spec;

    for (size_t i = 0; i < spec->n_entries; i++) {
        const options_entry *e = &spec->entries[i];
        char var[OPTIONS_NAME_MAX];
        const char *value;
        herald_err err;

        if (e->type == OPTIONS_KAFKA) {
            err = options_kafka_env(ctx, i);
            if (err != HERALD_OK)
                return err;
            continue;
        }
        if ((e->flags & OPTIONS_NOENV) || e->type == OPTIONS_LIST ||
            options_flag_given(seen, n_seen, i))
            continue;
        options_env_name(e, var, sizeof var);
        value = getenv(var);
        if (!value)
            continue;
        value = options_own(ctx, value);
        if (!value)
            return HERALD_ERR_NOMEM;
        err = options_apply(ctx, e, var, value, NULL);
        if (err != HERALD_OK)
            return err;
        ctx->st->sources[i] = OPTIONS_SRC_ENV;
    }
    return HERALD_OK;
}

/* True when the properties "a=..." and "b=..." name the same property. */
static bool options_same_property(const char *a, const char *b)
{
    size_t la = strcspn(a, "=");

    return la == strcspn(b, "=") && strncmp(a, b, la) == 0;
}

/* Step 5: a -X property drops the environment's one of the same name. */
static void options_kafka_dedupe(options_list *list)
{
    size_t out = 0;

    for (size_t i = 0; i < list->n; i++) {
        bool shadowed = false;

        for (size_t j = 0; list->envs[i] && j < list->n && !shadowed; j++)
            shadowed = !list->envs[j] &&
                       options_same_property(list->items[i], list->items[j]);
        if (shadowed) {
            free(list->items[i]);
            free(list->envs[i]);
            continue;
        }
        list->items[out] = list->items[i];
        list->envs[out] = list->envs[i];
        out++;
    }
    list->n = out;
}

/* Step 6: required flags and positional arguments. */
static herald_err options_check(options_ctx *ctx, int argc, char **argv)
{
    const options_spec *spec = ctx->spec;

    for (size_t i = 0; i < spec->n_entries; i++) {
        const options_entry *e = &spec->entries[i];
        const char *v;
        char var[OPTIONS_NAME_MAX];

        if (!(e->flags & OPTIONS_REQUIRED) || e->type != OPTIONS_STRING)
            continue;
        v = *(const char *const *)options_cfield(ctx->dst, e);
        if (v && *v)
            continue;
        options_env_name(e, var, sizeof var);
        snprintf(ctx->errstr, ctx->errstr_size, "%s: missing --%s (or %s)",
                 spec->command, e->name, var);
        return HERALD_ERR_INVALID;
    }
    if (argc - ctx->st->argi > spec->max_args) {
        snprintf(ctx->errstr, ctx->errstr_size,
                 "%s: unexpected argument \"%s\"", spec->command,
                 argv[ctx->st->argi + spec->max_args]);
        return HERALD_ERR_INVALID;
    }
    return HERALD_OK;
}

herald_err options_parse(const options_spec *spec, int argc, char **argv,
                         void *dst, options_state *st, char *errstr,
                         size_t errstr_size)
{
    options_ctx ctx = {spec, dst, st, 0, NULL, errstr, errstr_size};
    options_seen *seen = NULL;
    size_t n_seen = 0;
    size_t n_env = 0;
    herald_err err;

    memset(st, 0, sizeof *st);
    errstr[0] = '\0';
    for (char **env = environ; env && *env; env++)
        n_env++;
    ctx.cap = (size_t)argc + n_env + 1;
    st->sources = calloc(spec->n_entries + 1, sizeof *st->sources);
    st->owned = calloc(spec->n_entries + 1, sizeof *st->owned);
    st->ignored = calloc(n_env + 1, sizeof *st->ignored);
    seen = calloc((size_t)argc + 1, sizeof *seen);
    ctx.probe = rd_kafka_conf_new();
    if (!st->sources || !st->owned || !st->ignored || !seen || !ctx.probe) {
        err = HERALD_ERR_NOMEM;
        goto out;
    }
    err = options_scan(&ctx, argc, argv, seen, &n_seen);
    if (err != HERALD_OK || st->help)
        goto out;
    err = options_env(&ctx, seen, n_seen);
    if (err != HERALD_OK)
        goto out;
    for (size_t i = 0; i < n_seen; i++) {
        const options_entry *e = &spec->entries[seen[i].entry];
        char flag[OPTIONS_NAME_MAX];

        snprintf(flag, sizeof flag, "--%s", e->name);
        if (e->type == OPTIONS_BOOL)
            *(bool *)options_field(dst, e) = !seen[i].negated;
        else
            err = options_apply(&ctx, e, flag, seen[i].arg, NULL);
        if (err != HERALD_OK)
            goto out;
        st->sources[seen[i].entry] = OPTIONS_SRC_FLAG;
    }
    for (size_t i = 0; i < spec->n_entries; i++)
        if (spec->entries[i].type == OPTIONS_KAFKA)
            options_kafka_dedupe(options_field(dst, &spec->entries[i]));
    err = options_check(&ctx, argc, argv);
out:
    if (err == HERALD_ERR_NOMEM)
        snprintf(errstr, errstr_size, "%s: out of memory", spec->command);
    if (ctx.probe)
        rd_kafka_conf_destroy(ctx.probe);
    free(seen);
    return err;
}

int options_cli(const options_spec *spec, int argc, char **argv, void *dst,
                options_state *st)
{
    char errstr[1024];

    if (options_parse(spec, argc, argv, dst, st, errstr, sizeof errstr) !=
        HERALD_OK) {
        fprintf(stderr, "%s\n(see %s --help)\n", errstr, spec->command);
        return 2;
    }
    if (st->help) {
        options_help(spec, dst, stdout);
        return 0;
    }
    return -1;
}

/* The value of a scalar entry as text: "quoted", 42, word, true. */
static void options_value_text(const options_entry *e, const void *dst,
                               bool mask, char *out, size_t out_size)
{
    const void *f = options_cfield(dst, e);

    switch (e->type) {
    case OPTIONS_STRING: {
        const char *s = *(const char *const *)f;

        if (!s)
            snprintf(out, out_size, "(unset)");
        else if (mask && (e->flags & OPTIONS_SECRET) && *s)
            snprintf(out, out_size, "***");
        else
            snprintf(out, out_size, "\"%s\"", s);
        return;
    }
    case OPTIONS_INT: snprintf(out, out_size, "%d", *(const int *)f); return;
    case OPTIONS_MS:
        snprintf(out, out_size, "%" PRId64, *(const int64_t *)f);
        return;
    case OPTIONS_BOOL:
        snprintf(out, out_size, "%s", *(const bool *)f ? "true" : "false");
        return;
    case OPTIONS_ENUM:
        for (int i = 0; e->words[i]; i++) {
            if (e->values[i] == *(const int *)f) {
                snprintf(out, out_size, "%s", e->words[i]);
                return;
            }
        }
        snprintf(out, out_size, "%d", *(const int *)f);
        return;
    case OPTIONS_LIST:
    case OPTIONS_KAFKA: snprintf(out, out_size, "(list)"); return;
    }
}

/* Writes "name = value" of one list item; secrets masked. */
static void options_item_text(const options_entry *e, const char *item,
                              const char *sep, char *out, size_t out_size)
{
    if (e->type == OPTIONS_KAFKA) {
        int len = (int)strcspn(item, "=");
        const char *value = item[len] ? item + len + 1 : "";

        snprintf(out, out_size, "-X %.*s%s%s", len, item, sep,
                 options_item_is_secret(item) ? "***" : value);
    } else {
        snprintf(out, out_size, "%s%s\"%s\"", e->name, sep, item);
    }
}

/* The flag column of --help: "  -b, --brokers LIST". */
static int options_help_flag(const options_entry *e, FILE *out)
{
    int w = 0;

    if (e->short_name)
        w += fprintf(out, "  -%c, ", e->short_name);
    else
        w += fprintf(out, "      ");
    w += fprintf(out, "--%s", e->name);
    if (e->neg_name)
        w += fprintf(out, ", --%s", e->neg_name);
    if (e->arg)
        w += fprintf(out, " %s", e->arg);
    return w;
}

/* Appends one fact to the facts of --help, wrapping before column 80. */
static void options_help_fact(FILE *out, int *col, const char *fact)
{
    int len = (int)strlen(fact);

    if (*col > OPTIONS_HELP_COL + 1 && *col + len + 2 > 79) {
        fprintf(out, ",\n%*s", OPTIONS_HELP_COL + 1, "");
        *col = OPTIONS_HELP_COL + 1;
    } else if (*col > OPTIONS_HELP_COL + 1) {
        *col += fprintf(out, ", ");
    }
    *col += fprintf(out, "%s", fact);
}

/* The facts of --help: "(env HERALD_X, default 1, range 1..9)". */
static void options_help_facts(const options_entry *e, const void *dst,
                               FILE *out)
{
    char fact[OPTIONS_VALUE_MAX + 32];
    char text[OPTIONS_VALUE_MAX];
    int col = OPTIONS_HELP_COL + 1;

    fprintf(out, "%*s(", OPTIONS_HELP_COL, "");
    if (e->type == OPTIONS_LIST) {
        options_help_fact(out, &col, "no environment form");
    } else if (e->type == OPTIONS_KAFKA) {
        options_help_fact(out, &col, "env HERALD_KAFKA_<PROPERTY>");
        options_help_fact(out, &col, "dots as underscores");
    } else if (!(e->flags & OPTIONS_NOENV) && e->type != OPTIONS_LIST) {
        memcpy(fact, "env ", 4);
        options_env_name(e, fact + 4, sizeof fact - 4);
        options_help_fact(out, &col, fact);
    }
    if (e->flags & OPTIONS_REQUIRED)
        options_help_fact(out, &col, "required");
    options_value_text(e, dst, true, text, sizeof text);
    if (e->type != OPTIONS_LIST && e->type != OPTIONS_KAFKA &&
        strcmp(text, "(unset)") != 0) {
        snprintf(fact, sizeof fact, "default %s", text);
        options_help_fact(out, &col, fact);
    }
    if (e->type == OPTIONS_INT || e->type == OPTIONS_MS) {
        snprintf(fact, sizeof fact, "range %" PRId64 "..%" PRId64, e->min,
                 e->max);
        options_help_fact(out, &col, fact);
    } else if (e->type == OPTIONS_ENUM) {
        for (int i = 0; e->words[i]; i++) {
            snprintf(fact, sizeof fact, "%s%s", i ? "" : "one of ",
                     e->words[i]);
            options_help_fact(out, &col, fact);
        }
    } else if (e->type == OPTIONS_BOOL && !(e->flags & OPTIONS_NOENV)) {
        options_help_fact(out, &col, "env: true/false/1/0/yes/no");
    }
    fprintf(out, ")\n");
}

void options_help(const options_spec *spec, const void *dst, FILE *out)
{
    fputs(spec->usage, out);
    fputs("\nOptions:\n", out);
    for (size_t i = 0; i < spec->n_entries; i++) {
        const options_entry *e = &spec->entries[i];
        int w = options_help_flag(e, out);
        const char *h = e->help;

        if (w >= OPTIONS_HELP_COL - 1) {
            fputc('\n', out);
            w = 0;
        }
        fprintf(out, "%*s", OPTIONS_HELP_COL - w, "");
        while (*h) {
            int len = (int)strcspn(h, "\n");

            fprintf(out, "%.*s\n", len, h);
            h += len;
            if (*h == '\n' && *++h)
                fprintf(out, "%*s", OPTIONS_HELP_COL, "");
        }
        options_help_facts(e, dst, out);
    }
    fprintf(out, "  -h, --help%*sthis help\n", OPTIONS_HELP_COL - 12, "");
    if (spec->footer)
        fprintf(out, "\n%s", spec->footer);
}

void options_print(const options_spec *spec, const void *dst,
                   const options_state *st, FILE *out)
{
    for (size_t i = 0; i < spec->n_entries; i++) {
        const options_entry *e = &spec->entries[i];
        char text[OPTIONS_VALUE_MAX];
        char var[OPTIONS_NAME_MAX];

        if (e->type == OPTIONS_LIST || e->type == OPTIONS_KAFKA) {
            const options_list *l = options_cfield(dst, e);

            for (size_t j = 0; j < l->n; j++) {
                options_item_text(e, l->items[j], " = ", text, sizeof text);
                fprintf(out, "%s  # %s%s\n", text, l->envs[j] ? "env " : "",
                        l->envs[j] ? l->envs[j] : "flag");
            }
            continue;
        }
        options_value_text(e, dst, true, text, sizeof text);
        options_env_name(e, var, sizeof var);
        fprintf(out, "%s = %s  # %s%s\n", e->name, text,
                st->sources[i] == OPTIONS_SRC_FLAG  ? "flag"
                : st->sources[i] == OPTIONS_SRC_ENV ? "env "
                                                    : "default",
                st->sources[i] == OPTIONS_SRC_ENV ? var : "");
    }
    for (size_t i = 0; i < st->n_ignored; i++)
        fprintf(out, "# ignored %s: not a librdkafka property\n",
                st->ignored[i]);
}

herald_err options_summary(const options_spec *spec, const void *dst, buf *b)
{
    herald_err err = HERALD_OK;

    for (size_t i = 0; i < spec->n_entries && err == HERALD_OK; i++) {
        const options_entry *e = &spec->entries[i];
        char text[OPTIONS_VALUE_MAX];

        if (e->type == OPTIONS_LIST || e->type == OPTIONS_KAFKA) {
            const options_list *l = options_cfield(dst, e);

            for (size_t j = 0; j < l->n && err == HERALD_OK; j++) {
                options_item_text(e, l->items[j], "=", text, sizeof text);
                err = buf_appendf(b, "%s%s", b->len ? " " : "", text);
            }
            continue;
        }
        options_value_text(e, dst, true, text, sizeof text);
        err = buf_appendf(b, "%s%s=%s", b->len ? " " : "", e->name, text);
    }
    return err;
}

const char *options_dlq_topic_default(char *out, size_t out_size)
{
    const char *topic = getenv("HERALD_TOPIC");

    if (!topic || !*topic)
        return NULL;
    snprintf(out, out_size, "%s.dlq", topic);
    return out;
}
