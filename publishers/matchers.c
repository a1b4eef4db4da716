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
 * The grammar follows Alertmanager's matcher syntax
 * (https://prometheus.io/docs/alerting/latest/configuration/#matcher):
 * a label name ([a-zA-Z_][a-zA-Z0-9_]*), optional spaces, one of the
 * operators =, !=, =~, !~, optional spaces, and a value that is either
 * double-quoted (escapes \" \\ \n) or bare (the rest of the string, with
 * surrounding spaces removed).
 */
#include "publishers/matchers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool name_start(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
    return name_start(c) || (c >= '0' && c <= '9');
}

static const char *skip_spaces(const char *p)
{
    while (*p == ' ' || *p == '\t')
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
 * Reads the value starting at p into a new string. Quoted values end at
 * the closing quote, which must be the last non-space character.
 */
static herald_err parse_value(const char *p, char **out, char *errstr,
                              size_t errstr_size)
{
    buf b;
    herald_err err = HERALD_OK;
    size_t n;

    buf_init(&b, strlen(p) + 1);
    if (*p != '"') {
        n = strlen(p);
        while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'))
            n--;
        if (n > 0 && memchr(p, '"', n)) {
            snprintf(errstr, errstr_size,
                     "unexpected '\"' in unquoted matcher value");
            err = HERALD_ERR_CONFIG;
            goto out;
        }
        err = buf_append(&b, p, n);
        goto out;
    }
    p++;
    for (;;) {
        char c = *p;

        if (c == '\0') {
            snprintf(errstr, errstr_size, "unterminated quoted matcher value");
            err = HERALD_ERR_CONFIG;
            goto out;
        }
        if (c == '"')
            break;
        if (c == '\\') {
            p++;
            if (*p == 'n')
                c = '\n';
            else if (*p == '"' || *p == '\\')
                c = *p;
            else {
                /* Keep unknown escapes as written: regexes need them. */
                err = buf_append(&b, "\\", 1);
                if (err)
                    goto out;
                if (*p == '\0')
                    continue;
                c = *p;
            }
        }
        err = buf_append(&b, &c, 1);
        if (err)
            goto out;
        p++;
    }
    p = skip_spaces(p + 1);
    if (*p != '\0') {
        snprintf(errstr, errstr_size,
                 "unexpected text after the quoted matcher value: \"%s\"", p);
        err = HERALD_ERR_CONFIG;
    }
out:
    if (err) {
        buf_free(&b);
        return err;
    }
    *out = buf_steal(&b);
    return *out ? HERALD_OK : HERALD_ERR_NOMEM;
}

herald_err matcher_parse(const char *text, target_matcher *out, char *errstr,
                         size_t errstr_size)
{
    const char *p = skip_spaces(text);
    const char *name_end;
    herald_err err;
    char *anchored = NULL;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!name_start(*p)) {
        snprintf(errstr, errstr_size,
                 "matcher \"%s\" must start with a label name", text);
        return HERALD_ERR_CONFIG;
    }
    name_end = p;
    while (name_char(*name_end))
        name_end++;
    out->name = strndup(p, (size_t)(name_end - p));
    if (!out->name)
        return HERALD_ERR_NOMEM;
    p = skip_spaces(name_end);
    if (p[0] == '=' && p[1] == '~') {
        out->op = TARGET_MATCH_RE;
        p += 2;
    } else if (p[0] == '!' && p[1] == '~') {
        out->op = TARGET_MATCH_NRE;
        p += 2;
    } else if (p[0] == '!' && p[1] == '=') {
        out->op = TARGET_MATCH_NE;
        p += 2;
    } else if (p[0] == '=') {
        out->op = TARGET_MATCH_EQ;
        p += 1;
    } else {
        snprintf(errstr, errstr_size,
                 "matcher \"%s\" needs one of the operators =, !=, =~, !~ "
                 "after the label name",
                 text);
        err = HERALD_ERR_CONFIG;
        goto fail;
    }
    err = parse_value(skip_spaces(p), &out->value, errstr, errstr_size);
    if (err)
        goto fail;
    if (out->op == TARGET_MATCH_RE || out->op == TARGET_MATCH_NRE) {
        size_t n = strlen(out->value) + 5;

        anchored = malloc(n);
        if (!anchored) {
            err = HERALD_ERR_NOMEM;
            goto fail;
        }
        snprintf(anchored, n, "^(%s)$", out->value);
        rc = regcomp(&out->re, anchored, REG_EXTENDED | REG_NOSUB);
        if (rc != 0) {
            char why[128];

            regerror(rc, &out->re, why, sizeof(why));
            snprintf(errstr, errstr_size, "bad regex \"%s\": %s", out->value,
                     why);
            err = HERALD_ERR_CONFIG;
            goto fail;
        }
        out->re_compiled = true;
    }
    free(anchored);
    return HERALD_OK;
fail:
    free(anchored);
    matcher_free(out);
    return err;
}

void matcher_free(target_matcher *m)
{
    if (!m)
        return;
    free(m->name);
    free(m->value);
    if (m->re_compiled)
        regfree(&m->re);
    memset(m, 0, sizeof(*m));
}

bool matcher_match(const target_matcher *m, const char *value)
{
    const char *v = value ? value : "";

    switch (m->op) {
    case TARGET_MATCH_EQ: return strcmp(v, m->value) == 0;
    case TARGET_MATCH_NE: return strcmp(v, m->value) != 0;
    case TARGET_MATCH_RE:
        return m->re_compiled && regexec(&m->re, v, 0, NULL, 0) == 0;
    case TARGET_MATCH_NRE:
        return m->re_compiled && regexec(&m->re, v, 0, NULL, 0) != 0;
    }
    return false;
}

bool matchers_match_all(const target_matcher *ms, size_t n,
                        const alert_kvs *labels)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = labels ? alert_kvs_get(labels, ms[i].name) : NULL;

        if (!matcher_match(&ms[i], v))
            return false;
    }
    return true;
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
