/*
 * matchers.c: parsing and evaluation of Alertmanager-style label matchers
 * (see matchers.h).
 *
 * Data flow: the targets.yaml loader calls matcher_parse() once per string
 * of a target's `matchers:` list; the compiled matchers live in the target
 * until the target set is freed. The ParallelPublisher calls
 * target_matches() (publishers/target.c), which calls matchers_match_all(),
 * for every (alert, target) pair, from dispatcher threads.
 *
 * The grammar is Alertmanager's (pkg/labels ParseMatchers and
 * ParseMatcher): see matchers.h. Regexes go to publishers/re2.
 */
#include "publishers/matchers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/re2.h"

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           c == ':';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

/* Go's \s, which Alertmanager's matcher regex uses around the tokens. */
static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r';
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

const char *matcher_op_name(target_match_op op)
{
    switch (op) {
    case TARGET_MATCH_EQ: return "=";
    case TARGET_MATCH_NE: return "!=";
    case TARGET_MATCH_RE: return "=~";
    case TARGET_MATCH_NRE: return "!~";
    }
    return "?";
}

/*
 * Unescapes the raw value p..end (spaces already trimmed) as Alertmanager
 * does: an optional opening quote that then needs its closing quote as the
 * last character, \" \\ and \n escapes, other backslashes kept.
 */
static herald_err parse_value(const char *p, const char *end, char **out,
                              char *errstr, size_t errstr_size)
{
    buf b;
    herald_err err = HERALD_OK;
    bool quoted = p < end && *p == '"';
    const char *raw = p;

    buf_init(&b, (size_t)(end - p) + 1);
    if (quoted)
        p++;
    for (; !err && p < end; p++) {
        char c = *p;

        if (c == '\\' && p + 1 < end) {
            p++;
            if (*p == 'n')
                err = buf_append(&b, "\n", 1);
            else if (*p == '"' || *p == '\\')
                err = buf_append(&b, p, 1);
            else
                err = buf_append(&b, p - 1, 2);
            continue;
        }
        if (c == '"') {
            if (!quoted || p + 1 < end)
                break;
            quoted = false;
            continue;
        }
        err = buf_append(&b, &c, 1);
    }
    if (!err && (p < end || quoted)) {
        snprintf(errstr, errstr_size,
                 "matcher value contains an unescaped double quote: %.*s",
                 (int)(end - raw), raw);
        err = HERALD_ERR_CONFIG;
    }
    if (!err) {
        *out = buf_steal(&b);
        if (!*out)
            err = HERALD_ERR_NOMEM;
    }
    buf_free(&b);
    return err;
}

/* One matcher from text..end (not NUL-terminated). */
static herald_err parse_one(const char *text, const char *end,
                            target_matcher *out, char *errstr,
                            size_t errstr_size)
{
    const char *p = skip_spaces(text, end);
    const char *name_end = p;
    herald_err err;
    int len = (int)(end - text);

    memset(out, 0, sizeof(*out));
    if (p == end || !name_start(*p)) {
        snprintf(errstr, errstr_size,
                 "matcher \"%.*s\" must start with a label name", len, text);
        return HERALD_ERR_CONFIG;
    }
    while (name_end < end && name_char(*name_end))
        name_end++;
    out->name = strndup(p, (size_t)(name_end - p));
    if (!out->name)
        return HERALD_ERR_NOMEM;
    p = skip_spaces(name_end, end);
    if (end - p >= 2 && p[0] == '=' && p[1] == '~') {
        out->op = TARGET_MATCH_RE;
        p += 2;
    } else if (end - p >= 2 && p[0] == '!' && p[1] == '~') {
        out->op = TARGET_MATCH_NRE;
        p += 2;
    } else if (end - p >= 2 && p[0] == '!' && p[1] == '=') {
        out->op = TARGET_MATCH_NE;
        p += 2;
    } else if (p < end && p[0] == '=') {
        out->op = TARGET_MATCH_EQ;
        p += 1;
    } else {
        snprintf(errstr, errstr_size,
                 "matcher \"%.*s\" needs one of the operators =, !=, =~, !~ "
                 "after the label name",
                 len, text);
        err = HERALD_ERR_CONFIG;
        goto fail;
    }
    p = skip_spaces(p, end);
    while (end > p && is_space(end[-1]))
        end--;
    err = parse_value(p, end, &out->value, errstr, errstr_size);
    if (err)
        goto fail;
    if (out->op == TARGET_MATCH_RE || out->op == TARGET_MATCH_NRE) {
        char why[256];

        err = re2_compile(out->value, &out->re, why, sizeof(why));
        if (err) {
            size_t n = strlen(out->value);

            /* A long regex is shown by its start only. */
            snprintf(errstr, errstr_size, "regex \"%.*s%s\": %s",
                     n > 200 ? 200 : (int)n, out->value, n > 200 ? "..." : "",
                     why);
            goto fail;
        }
    }
    return HERALD_OK;
fail:
    matcher_free(out);
    return err;
}

herald_err matcher_parse(const char *text, target_matcher *out, char *errstr,
                         size_t errstr_size)
{
    return parse_one(text, text + strlen(text), out, errstr, errstr_size);
}

void matcher_free(target_matcher *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->value);
    re2_destroy(m->re);
    memset(m, 0, sizeof(*m));
}

/*
 * The end of the list token starting at p: the next comma outside double
 * quotes (a quote escaped with a backslash does not count), or end.
 */
static const char *token_end(const char *p, const char *end)
{
    bool quoted = false;
    bool escaped = false;

    for (; p < end; p++) {
        if (*p == ',' && !quoted)
            return p;
        if (*p == '"' && !escaped)
            quoted = !quoted;
        escaped = *p == '\\' && !escaped;
    }
    return end;
}

herald_err matchers_parse(const char *text, target_matcher **out, size_t *n,
                          char *errstr, size_t errstr_size)
{
    const char *p = skip_spaces(text, text + strlen(text));
    const char *end = p + strlen(p);
    target_matcher *ms = NULL;
    size_t count = 1;
    size_t k = 0;
    herald_err err = HERALD_OK;

    *out = NULL;
    *n = 0;
    while (end > p && is_space(end[-1]))
        end--;
    if (p < end && *p == '{')
        p++;
    if (end > p && end[-1] == '}')
        end--;
    for (const char *q = p; q < end; q++)
        count += *q == ',';
    ms = calloc(count, sizeof(*ms));
    if (!ms)
        return HERALD_ERR_NOMEM;
    while (p < end) {
        const char *t = token_end(p, end);
        char why[512];

        /* A trailing comma (and spaces) ends the list. */
        if (t == end && skip_spaces(p, end) == end)
            break;
        err = parse_one(p, t, &ms[k], why, sizeof(why));
        if (err) {
            if (k > 0 || t != end)
                snprintf(errstr, errstr_size, "matcher %zu of the list: %s",
                         k + 1, why);
            else
                snprintf(errstr, errstr_size, "%s", why);
            break;
        }
        k++;
        if (t == end)
            break;
        p = t + 1;
        if (p == end) {
            /* "a=b," : Go's split leaves no token after the comma. */
            break;
        }
    }
    if (err) {
        matchers_free(ms, k);
        return err;
    }
    if (k == 0) {
        free(ms);
        ms = NULL;
    }
    *out = ms;
    *n = k;
    return HERALD_OK;
}

void matchers_free(target_matcher *ms, size_t n)
{
    if (!ms)
        return;
    for (size_t i = 0; i < n; i++)
        matcher_free(&ms[i]);
    free(ms);
}

bool matcher_match(const target_matcher *m, const char *value)
{
    const char *v = value ? value : "";

    switch (m->op) {
    case TARGET_MATCH_EQ: return strcmp(v, m->value) == 0;
    case TARGET_MATCH_NE: return strcmp(v, m->value) != 0;
    case TARGET_MATCH_RE: return m->re && re2_match(m->re, v, strlen(v));
    case TARGET_MATCH_NRE: return m->re && !re2_match(m->re, v, strlen(v));
    }
    return false;
}

size_t matchers_first_failed(const target_matcher *ms, size_t n,
                             const alert_kvs *labels)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = labels ? alert_kvs_get(labels, ms[i].name) : NULL;

        if (!matcher_match(&ms[i], v))
            return i;
    }
    return n;
}

bool matchers_match_all(const target_matcher *ms, size_t n,
                        const alert_kvs *labels)
{
    return matchers_first_failed(ms, n, labels) == n;
}

herald_err matcher_format(const target_matcher *m, buf *out)
{
    herald_err err;

    err = buf_appendf(out, "%s%s\"", m->name, matcher_op_name(m->op));
    for (const char *p = m->value; !err && *p; p++) {
        if (*p == '"' || *p == '\\')
            err = buf_appendf(out, "\\%c", *p);
        else if (*p == '\n')
            err = buf_append_str(out, "\\n");
        else
            err = buf_append(out, p, 1);
    }
    if (!err)
        err = buf_append_str(out, "\"");
    return err;
}
