/*
 * targets_load.c: the targets.yaml loader (see targets.h).
 *
 * Data flow: targets_load() reads the file, libyaml's document API builds
 * the node tree (every node keeps its start mark, so messages can name
 * file:line:col), and each entry of `targets:` is decoded into a target by
 * walking two static schema tables: the generic keys (targets_schema.c)
 * and the plugin's per-type keys (target_plugin.keys). Built-in defaults
 * come from the same tables, then the `defaults:` mapping, then the
 * target's own mapping. ${VAR} references are expanded from the
 * environment and remembered, so those values are printed masked.
 *
 * Threads: loading runs on whichever thread calls it (main at start, the
 * reload path later) and touches no shared state.
 */
#include "publishers/targets.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#include "core/buf.h"
#include "publishers/matchers.h"
#include "publishers/plugins.h"
#include "publishers/targets_int.h"

static herald_err meta_add_env(tmeta *m, const void *field)
{
    const void **grown;

    if (targets_meta_is_env(m, field))
        return HERALD_OK;
    if (m->n_env == m->cap_env) {
        size_t ncap = m->cap_env ? m->cap_env * 2 : 8;

        grown = realloc(m->env_fields, ncap * sizeof(*grown));
        if (!grown)
            return HERALD_ERR_NOMEM;
        m->env_fields = grown;
        m->cap_env = ncap;
    }
    m->env_fields[m->n_env++] = field;
    return HERALD_OK;
}

typedef struct lctx {
    yaml_document_t *doc;
    const char *file;
    char *errstr;
    size_t errstr_size;
    bool failed;
    /* Per target: */
    tmeta *meta;
    bool env_missing;  /* A ${VAR} was unset in this target. */
    bool last_missing; /* The last expand() met an unset ${VAR}. */
    char env_msg[512]; /* The first such error, formatted. */
    const target_plugin *plugin;
    bool seen_type_key[32]; /* Per-type keys given, by index. */
} lctx;

static const char *node_kind(const yaml_node_t *node)
{
    switch (node->type) {
    case YAML_MAPPING_NODE: return "a mapping";
    case YAML_SEQUENCE_NODE: return "a list";
    default: return "nothing";
    }
}

/* Formats "FILE:LINE:COL: PATH: message" into errstr (first error only). */
static herald_err fail_at(lctx *c, const yaml_node_t *node, const char *path,
                          const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static herald_err fail_at(lctx *c, const yaml_node_t *node, const char *path,
                          const char *fmt, ...)
{
    char msg[512];
    va_list ap;

    if (c->failed)
        return HERALD_ERR_CONFIG;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    snprintf(c->errstr, c->errstr_size, "%s:%lu:%lu: %s%s%s", c->file,
             node ? (unsigned long)node->start_mark.line + 1 : 1UL,
             node ? (unsigned long)node->start_mark.column + 1 : 1UL,
             path ? path : "", path && *path ? ": " : "", msg);
    c->failed = true;
    return HERALD_ERR_CONFIG;
}

static yaml_node_t *node_get(lctx *c, int idx)
{
    return yaml_document_get_node(c->doc, idx);
}

static const char *scalar(const yaml_node_t *node)
{
    return node->type == YAML_SCALAR_NODE
               ? (const char *)node->data.scalar.value
               : NULL;
}

/* Checks that a mapping has no key twice (libyaml does not). */
static herald_err check_dup_keys(lctx *c, yaml_node_t *map, const char *path)
{
    yaml_node_pair_t *a;
    yaml_node_pair_t *b;

    for (a = map->data.mapping.pairs.start; a < map->data.mapping.pairs.top;
         a++) {
        yaml_node_t *ka = node_get(c, a->key);

        if (!scalar(ka))
            return fail_at(c, ka, path, "mapping keys must be strings");
        for (b = map->data.mapping.pairs.start; b < a; b++) {
            yaml_node_t *kb = node_get(c, b->key);

            if (strcmp(scalar(ka), scalar(kb)) == 0)
                return fail_at(c, ka, path, "duplicate key \"%s\"", scalar(ka));
        }
    }
    return HERALD_OK;
}

static bool is_var_start(char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool is_var_char(char ch)
{
    return is_var_start(ch) || (ch >= '0' && ch <= '9');
}

/*
 * Expands ${VAR} and $$ in the scalar node's text into a new string.
 * *from_env tells whether a variable was used. An unset variable is
 * recorded in c->env_missing (the target's `enabled` decides later whether
 * it is an error) and expands to "".
 */
static herald_err expand(lctx *c, yaml_node_t *node, const char *path,
                         char **out, bool *from_env)
{
    const char *p = scalar(node);
    herald_err err = HERALD_OK;
    buf b;

    *out = NULL;
    *from_env = false;
    c->last_missing = false;
    buf_init(&b, TARGETS_MAX_FILE_BYTES);
    while (!err && *p) {
        const char *end;
        char name[256];
        const char *val;

        if (p[0] != '$' || (p[1] != '{' && p[1] != '$')) {
            err = buf_append(&b, p, 1);
            p++;
            continue;
        }
        if (p[1] == '$') {
            err = buf_append(&b, "$", 1);
            p += 2;
            continue;
        }
        end = p + 2;
        if (!is_var_start(*end)) {
            err = fail_at(c, node, path,
                          "bad ${...}: expected a variable name in \"%s\"",
                          scalar(node));
            break;
        }
        while (is_var_char(*end))
            end++;
        if (*end != '}' || (size_t)(end - p - 2) >= sizeof(name)) {
            err = fail_at(c, node, path, "unterminated ${ in \"%s\"",
                          scalar(node));
            break;
        }
        memcpy(name, p + 2, (size_t)(end - p - 2));
        name[end - p - 2] = '\0';
        *from_env = true;
        val = getenv(name);
        if (!val) {
            if (!c->env_missing)
                snprintf(c->env_msg, sizeof(c->env_msg),
                         "%s:%lu:%lu: %s: environment variable %s is not set",
                         c->file, (unsigned long)node->start_mark.line + 1,
                         (unsigned long)node->start_mark.column + 1, path,
                         name);
            c->env_missing = true;
            c->last_missing = true;
            val = "";
        }
        err = buf_append_str(&b, val);
        p = end + 1;
    }
    if (err == HERALD_ERR_TOO_LARGE)
        err = fail_at(c, node, path, "value too long");
    if (err) {
        buf_free(&b);
        return err;
    }
    *out = buf_steal(&b);
    return *out ? HERALD_OK : HERALD_ERR_NOMEM;
}

/* Reads a scalar with ${ENV} expanded; records env use in meta. */
static herald_err read_text(lctx *c, yaml_node_t *node, const char *path,
                            const char *what, const void *field, char **out,
                            bool *from_env_out)
{
    bool from_env = false;
    herald_err err;

    if (!scalar(node))
        return fail_at(c, node, path, "expected %s, got %s", what,
                       node_kind(node));
    err = expand(c, node, path, out, &from_env);
    if (!err && from_env && c->meta && field)
        err = meta_add_env(c->meta, field);
    *from_env_out = from_env;
    return err;
}

static herald_err text_to_int(const char *s, double min, double max, int *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < (long)min || v > (long)max)
        return HERALD_ERR_INVALID;
    *out = (int)v;
    return HERALD_OK;
}

static herald_err text_to_double(const char *s, double min, double max,
                                 double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return HERALD_ERR_INVALID;
    *out = v;
    return HERALD_OK;
}

static herald_err text_to_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on", NULL};
    static const char *const no[] = {"false", "no", "off", NULL};

    for (int i = 0; yes[i]; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return HERALD_OK;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return HERALD_OK;
        }
    }
    return HERALD_ERR_INVALID;
}

static void path_fmt(char *dst, size_t n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int enum_index(const char *const *allowed, const char *s)
{
    for (int i = 0; allowed[i]; i++)
        if (strcmp(allowed[i], s) == 0)
            return i;
    return -1;
}

static void enum_list(const char *const *allowed, char *dst, size_t n)
{
    size_t len = 0;

    dst[0] = '\0';
    for (int i = 0; allowed[i] && len + 1 < n; i++) {
        path_fmt(dst + len, n - len, "%s%s", i ? ", " : "", allowed[i]);
        len += strlen(dst + len);
    }
}

/* Checks an http(s) URL with libcurl's parser. Returns NULL or a reason. */
static const char *url_problem(const char *s)
{
    CURLU *h = curl_url();
    char *scheme = NULL;
    char *host = NULL;
    const char *why = NULL;

    if (!h)
        return "out of memory";
    if (!strstr(s, "://") || strstr(s, "://")[3] == '/')
        why = "the URL has no host (expected scheme://host[:port]/path)";
    else if (curl_url_set(h, CURLUPART_URL, s, 0) != CURLUE_OK)
        why = "not a valid URL";
    else if (curl_url_get(h, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
             (strcasecmp(scheme, "http") != 0 &&
              strcasecmp(scheme, "https") != 0))
        why = "the URL scheme must be http or https";
    else if (curl_url_get(h, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0])
        why = "the URL has no host";
    curl_free(scheme);
    curl_free(host);
    curl_url_cleanup(h);
    return why;
}

/* Formats a key path; long paths are cut (they only feed messages). */
static void path_fmt(char *dst, size_t n, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(dst, n, fmt, ap);
    va_end(ap);
}

static void join_path(char *dst, size_t n, const char *base, const char *key)
{
    path_fmt(dst, n, "%s%s%s", base, *base ? "." : "", key);
}

/* Decodes one scalar value of a generic key into tgt. */
static herald_err set_gen_scalar(lctx *c, void *base, const gkey *k,
                                 yaml_node_t *val, const char *path)
{
    void *field = (char *)base + k->offset;
    char *text = NULL;
    char expect[256];
    herald_err err = HERALD_OK;
    const char *what = "a string";
    const char *shown;
    bool from_env = false;

    switch (k->type) {
    case G_INT: what = "an integer"; break;
    case G_BOOL: what = "a boolean (true or false)"; break;
    case G_DOUBLE: what = "a number"; break;
    default: break;
    }
    err = read_text(c, val, path, what, field, &text, &from_env);
    if (err)
        return err;
    /* Values from the environment are secrets: never quoted in errors. */
    shown = from_env ? "***" : text;
    /* A value emptied by an unset variable is left unchecked: for an
     * enabled target the loader reports the variable afterwards. */
    if (c->last_missing && !text[0] && k->type != G_INT && k->type != G_BOOL &&
        k->type != G_DOUBLE && k->type != G_ENUM && k->type != G_AUTH_KIND) {
        char **sp = field;

        free(*sp);
        *sp = text;
        return HERALD_OK;
    }
    switch (k->type) {
    case G_STRING:
    case G_SECRET:
    case G_URL: {
        char **sp = field;
        const char *why;

        if (k->type == G_URL && (why = url_problem(text)) != NULL) {
            err = fail_at(c, val, path, "%s, got \"%s\"", why, shown);
            break;
        }
        free(*sp);
        *sp = text;
        text = NULL;
        break;
    }
    case G_INT:
        if (text_to_int(text, -INT_MAXV, INT_MAXV, field)) {
            err =
                fail_at(c, val, path, "expected an integer, got \"%s\"", shown);
        } else if (text_to_int(text, k->min, k->max, field)) {
            if (k->max >= INT_MAXV)
                snprintf(expect, sizeof(expect), "an integer >= %.0f", k->min);
            else
                snprintf(expect, sizeof(expect),
                         "an integer between %.0f and %.0f", k->min, k->max);
            err =
                fail_at(c, val, path, "expected %s, got \"%s\"", expect, shown);
        }
        break;
    case G_DOUBLE:
        if (text_to_double(text, -HUGE_VAL, HUGE_VAL, field))
            err = fail_at(c, val, path, "expected a number, got \"%s\"", shown);
        else if (text_to_double(text, k->min, k->max, field))
            err = fail_at(c, val, path,
                          "expected a number between %g and %g, got \"%s\"",
                          k->min, k->max, shown);
        break;
    case G_BOOL:
        if (text_to_bool(text, field))
            err = fail_at(c, val, path,
                          "expected a boolean (true or false), got \"%s\"",
                          shown);
        break;
    case G_ENUM:
    case G_AUTH_KIND: {
        int idx = enum_index(k->allowed, text);

        if (idx < 0) {
            enum_list(k->allowed, expect, sizeof(expect));
            err = fail_at(c, val, path, "expected one of %s, got \"%s\"",
                          expect, shown);
        } else if (k->type == G_AUTH_KIND) {
            *(target_auth_kind *)field = (target_auth_kind)idx;
        } else {
            char **sp = field;

            free(*sp);
            *sp = text;
            text = NULL;
        }
        break;
    }
    default: err = fail_at(c, val, path, "internal: bad key type"); break;
    }
    free(text);
    return err;
}

static bool header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        /* RFC 9110 token characters. */
        if (ch <= 32 || ch >= 127 || strchr("\"(),/:;<=>?@[\\]{}", ch))
            return false;
    }
    return true;
}

/* One pair of a mapping of strings, its value expanded. value is owned by
 * the callee (freed or kept); path names the pair for messages. */
typedef herald_err (*string_pair_fn)(lctx *c, yaml_node_t *kn, const char *name,
                                     yaml_node_t *vn, const char *path,
                                     char *value, bool from_env, void *arg);

/*
 * Walks a mapping whose values are strings (${ENV} expanded): refuses
 * anything but a mapping ("expected <what>, got ..."), duplicate and
 * non-string keys, and non-string values, then calls fn for each pair in
 * file order. Stops at the first error fn returns.
 */
static herald_err walk_string_map(lctx *c, yaml_node_t *map, const char *path,
                                  const char *what, string_pair_fn fn,
                                  void *arg)
{
    yaml_node_pair_t *pr;
    herald_err err;

    if (map->type != YAML_MAPPING_NODE)
        return fail_at(c, map, path, "expected %s, got %s", what,
                       scalar(map) ? "a string" : node_kind(map));
    err = check_dup_keys(c, map, path);
    if (err)
        return err;
    for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = node_get(c, pr->key);
        yaml_node_t *vn = node_get(c, pr->value);
        const char *name = scalar(kn);
        char vpath[256];
        char *value = NULL;
        bool from_env = false;

        path_fmt(vpath, sizeof(vpath), "%s.%s", path, name);
        if (!scalar(vn))
            return fail_at(c, vn, vpath, "expected a string, got %s",
                           node_kind(vn));
        err = expand(c, vn, vpath, &value, &from_env);
        if (err)
            return err;
        err = fn(c, kn, name, vn, vpath, value, from_env, arg);
        if (err)
            return err;
    }
    return HERALD_OK;
}

/* Sets one header of the target (arg); a later one replaces an earlier one
 * of the same name, compared without case (RFC 9110 5.1). */
static herald_err header_pair(lctx *c, yaml_node_t *kn, const char *hname,
                              yaml_node_t *vn, const char *hpath, char *value,
                              bool from_env, void *arg)
{
    target *tgt = arg;
    size_t i;

    if (!header_name_ok(hname)) {
        free(value);
        return fail_at(c, kn, hpath, "not a valid header name");
    }
    if (strpbrk(value, "\r\n")) {
        free(value);
        return fail_at(c, vn, hpath,
                       "header values may not contain line breaks");
    }
    for (i = 0; i < tgt->n_headers; i++)
        if (strcasecmp(tgt->headers[i].name, hname) == 0)
            break;
    if (i == tgt->n_headers) {
        target_header *grown = realloc(tgt->headers, (i + 1) * sizeof(*grown));
        char *n = strdup(hname);

        if (!grown || !n) {
            if (grown)
                tgt->headers = grown;
            free(n);
            free(value);
            return HERALD_ERR_NOMEM;
        }
        tgt->headers = grown;
        tgt->headers[i].name = n;
        tgt->headers[i].value = NULL;
        tgt->n_headers++;
    }
    free(tgt->headers[i].value);
    tgt->headers[i].value = value;
    tgt->headers[i].secret = from_env;
    return HERALD_OK;
}

static herald_err parse_headers(lctx *c, target *tgt, yaml_node_t *map,
                                const char *path)
{
    return walk_string_map(c, map, path, "a mapping of header names to values",
                           header_pair, tgt);
}

/*
 * A `matchers:` list. Each entry is one matcher or a list form
 * (`{a="b", c=~"d"}`), so an entry may give several matchers; they all
 * join the target's matchers, which must all match.
 */
static herald_err parse_matchers(lctx *c, target *tgt, yaml_node_t *seq,
                                 const char *path)
{
    size_t n;
    herald_err err = HERALD_OK;

    if (seq->type != YAML_SEQUENCE_NODE)
        return fail_at(c, seq, path,
                       "expected a list of matcher strings, got %s",
                       scalar(seq) ? "a string" : node_kind(seq));
    targets_matchers_free(tgt);
    n = (size_t)(seq->data.sequence.items.top - seq->data.sequence.items.start);
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_get(c, seq->data.sequence.items.start[i]);
        char ipath[256];
        char why[1024];
        char *text = NULL;
        bool from_env;
        target_matcher *ms = NULL;
        target_matcher *all;
        size_t k = 0;

        path_fmt(ipath, sizeof(ipath), "%s[%zu]", path, i);
        if (!scalar(item))
            return fail_at(c, item, ipath, "expected a matcher string, got %s",
                           node_kind(item));
        err = expand(c, item, ipath, &text, &from_env);
        if (err)
            return err;
        err = matchers_parse(text, &ms, &k, why, sizeof(why));
        free(text);
        if (err == HERALD_ERR_CONFIG)
            return fail_at(c, item, ipath, "%s", why);
        if (err)
            return err;
        if (k == 0)
            continue;
        all = calloc(tgt->n_matchers + k, sizeof(*all));
        if (!all) {
            matchers_free(ms, k);
            return HERALD_ERR_NOMEM;
        }
        /* The matchers move into the new array; only the arrays are freed. */
        if (tgt->n_matchers)
            memcpy(all, tgt->matchers, tgt->n_matchers * sizeof(*all));
        memcpy(all + tgt->n_matchers, ms, k * sizeof(*all));
        free(tgt->matchers);
        free(ms);
        tgt->matchers = all;
        tgt->n_matchers += k;
    }
    return HERALD_OK;
}

static const gkey *gkey_find(const gkey *keys, const char *name)
{
    for (const gkey *k = keys; k->key; k++)
        if (strcmp(k->key, name) == 0)
            return k;
    return NULL;
}

static void auth_reset(target *tgt)
{
    target_auth *a = &tgt->auth;

    free(a->token);
    free(a->username);
    free(a->password);
    free(a->header_name);
    free(a->header_value);
    memset(a, 0, sizeof(*a));
}

static herald_err check_auth(lctx *c, target *tgt, yaml_node_t *map,
                             const char *path)
{
    const target_auth *a = &tgt->auth;
    const char *missing = NULL;

    switch (a->kind) {
    case TARGET_AUTH_NONE: break;
    case TARGET_AUTH_BEARER:
        if (!a->token)
            missing = "token";
        break;
    case TARGET_AUTH_BASIC:
        if (!a->username)
            missing = "username";
        break;
    case TARGET_AUTH_HEADER:
        if (!a->header_name)
            missing = "header";
        else if (!a->header_value)
            missing = "value";
        else if (!header_name_ok(a->header_name))
            return fail_at(c, map, path, "header: not a valid header name");
        break;
    }
    if (missing) {
        char kpath[256];

        join_path(kpath, sizeof(kpath), path, missing);
        return fail_at(c, map, kpath, "missing required key for auth type %s",
                       targets_auth_kinds[a->kind]);
    }
    return HERALD_OK;
}

static herald_err set_type_key(lctx *c, target *tgt, const target_key *k,
                               yaml_node_t *val, const char *path);

/*
 * Decodes a mapping of generic keys (and, when c->plugin is set and keys
 * is targets_gen_keys, the plugin's per-type keys) into tgt.
 */
static herald_err parse_mapping(lctx *c, target *tgt, yaml_node_t *map,
                                const gkey *keys, const char *path,
                                bool in_defaults)
{
    yaml_node_pair_t *pr;
    herald_err err;

    if (map->type != YAML_MAPPING_NODE)
        return fail_at(c, map, path, "expected a mapping, got %s",
                       scalar(map) ? "a string" : node_kind(map));
    err = check_dup_keys(c, map, path);
    if (err)
        return err;
    for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = node_get(c, pr->key);
        yaml_node_t *vn = node_get(c, pr->value);
        const char *key = scalar(kn);
        const gkey *k;
        char kpath[256];

        if (!key)
            return fail_at(c, kn, path, "mapping keys must be strings");
        k = gkey_find(keys, key);
        join_path(kpath, sizeof(kpath), path, key);
        if (keys == targets_gen_keys && k && strcmp(key, "type") == 0) {
            if (in_defaults)
                return fail_at(c, kn, kpath, "not allowed in defaults");
            continue; /* Read before the mapping, to find the plugin. */
        }
        if (keys == targets_gen_keys && k && in_defaults &&
            strcmp(key, "name") == 0)
            return fail_at(c, kn, kpath, "not allowed in defaults");
        if (!k) {
            const target_key *tk = NULL;

            for (const target_key *t =
                     c->plugin && keys == targets_gen_keys && !in_defaults
                         ? c->plugin->keys
                         : NULL;
                 t && t->key; t++)
                if (strcmp(t->key, key) == 0)
                    tk = t;
            if (!tk)
                return fail_at(c, kn, kpath, "unknown key");
            err = set_type_key(c, tgt, tk, vn, kpath);
            if (err)
                return err;
            c->seen_type_key[tk - c->plugin->keys] = true;
            continue;
        }
        switch (k->type) {
        case G_SECTION:
            if (k->section == targets_auth_keys)
                auth_reset(tgt);
            err = parse_mapping(c, tgt, vn, k->section, kpath, in_defaults);
            if (!err && k->section == targets_auth_keys)
                err = check_auth(c, tgt, vn, kpath);
            break;
        case G_HEADERS: err = parse_headers(c, tgt, vn, kpath); break;
        case G_MATCHERS: err = parse_matchers(c, tgt, vn, kpath); break;
        default: err = set_gen_scalar(c, tgt, k, vn, kpath); break;
        }
        if (err)
            return err;
    }
    return HERALD_OK;
}

/* Adds one pair to the label set (arg), kept sorted by name. The walk
 * refused duplicate names, and the array has room for every pair. */
static herald_err kvs_pair(lctx *c, yaml_node_t *kn, const char *name,
                           yaml_node_t *vn, const char *path, char *value,
                           bool from_env, void *arg)
{
    alert_kvs *kvs = arg;
    alert_kv *kv;
    size_t j;

    /* Insertion sort keeps the set ordered by name. */
    for (j = kvs->n; j > 0 && strcmp(kvs->items[j - 1].name, name) > 0; j--)
        kvs->items[j] = kvs->items[j - 1];
    kv = &kvs->items[j];
    kv->name = strdup(name);
    kv->value = value;
    kvs->n++;
    return kv->name ? HERALD_OK : HERALD_ERR_NOMEM;
}

static herald_err parse_map_kvs(lctx *c, alert_kvs *kvs, yaml_node_t *map,
                                const char *path)
{
    size_t n;

    alert_kvs_free(kvs);
    if (map->type == YAML_MAPPING_NODE) {
        n = (size_t)(map->data.mapping.pairs.top -
                     map->data.mapping.pairs.start);
        if (n > 0) {
            kvs->items = calloc(n, sizeof(*kvs->items));
            if (!kvs->items)
                return HERALD_ERR_NOMEM;
        }
    }
    return walk_string_map(c, map, path, "a mapping", kvs_pair, kvs);
}

static herald_err set_type_key(lctx *c, target *tgt, const target_key *k,
                               yaml_node_t *val, const char *path)
{
    void *field = (char *)tgt->type_config + k->offset;
    gkey g;

    if (k->type == TARGET_KEY_MAP)
        return parse_map_kvs(c, field, val, path);
    memset(&g, 0, sizeof(g));
    g.key = k->key;
    g.allowed = k->allowed;
    g.min = -INT_MAXV;
    g.max = INT_MAXV;
    switch (k->type) {
    case TARGET_KEY_INT:
        g.type = G_INT;
        g.min = 0;
        break;
    case TARGET_KEY_BOOL: g.type = G_BOOL; break;
    case TARGET_KEY_ENUM: g.type = G_ENUM; break;
    case TARGET_KEY_SECRET: g.type = G_SECRET; break;
    default: g.type = G_STRING; break;
    }
    /* The generic decoder, with offsets into type_config. */
    g.offset = k->offset;
    return set_gen_scalar(c, tgt->type_config, &g, val, path);
}

/* Applies the built-in defaults of a generic table. */
static herald_err apply_gen_defaults(target *tgt, const gkey *keys)
{
    for (const gkey *k = keys; k->key; k++) {
        void *field = (char *)tgt + k->offset;

        if (k->type == G_SECTION) {
            herald_err err = apply_gen_defaults(tgt, k->section);

            if (err)
                return err;
            continue;
        }
        if (!k->def)
            continue;
        switch (k->type) {
        case G_INT: text_to_int(k->def, k->min, k->max, field); break;
        case G_DOUBLE: text_to_double(k->def, k->min, k->max, field); break;
        case G_BOOL: text_to_bool(k->def, field); break;
        case G_AUTH_KIND:
            *(target_auth_kind *)field =
                (target_auth_kind)enum_index(k->allowed, k->def);
            break;
        default:
            *(char **)field = strdup(k->def);
            if (!*(char **)field)
                return HERALD_ERR_NOMEM;
            break;
        }
    }
    return HERALD_OK;
}

static herald_err apply_type_defaults(target *tgt)
{
    for (const target_key *k = tgt->plugin->keys; k && k->key; k++) {
        void *field = (char *)tgt->type_config + k->offset;

        if (!k->def)
            continue;
        switch (k->type) {
        case TARGET_KEY_INT:
            text_to_int(k->def, -INT_MAXV, INT_MAXV, field);
            break;
        case TARGET_KEY_BOOL: text_to_bool(k->def, field); break;
        case TARGET_KEY_MAP: break;
        default:
            *(char **)field = strdup(k->def);
            if (!*(char **)field)
                return HERALD_ERR_NOMEM;
            break;
        }
    }
    return HERALD_OK;
}

static yaml_node_t *map_get(lctx *c, yaml_node_t *map, const char *key,
                            yaml_node_t **key_node)
{
    yaml_node_pair_t *pr;

    if (map->type != YAML_MAPPING_NODE)
        return NULL;
    for (pr = map->data.mapping.pairs.start; pr < map->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = node_get(c, pr->key);

        if (scalar(kn) && strcmp(scalar(kn), key) == 0) {
            if (key_node)
                *key_node = kn;
            return node_get(c, pr->value);
        }
    }
    return NULL;
}

static bool dns_label_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '-'))
            return false;
    return true;
}

static herald_err parse_target(lctx *c, yaml_node_t *node,
                               yaml_node_t *defaults, size_t idx, target **out,
                               tmeta *meta)
{
    char path[64];
    char why[512];
    char kinds[128];
    yaml_node_t *tn;
    yaml_node_t *nn;
    const target_plugin *plugin;
    target *tgt = NULL;
    herald_err err;
    size_t i;

    path_fmt(path, sizeof(path), "targets[%zu]", idx);
    *out = NULL;
    if (node->type != YAML_MAPPING_NODE)
        return fail_at(c, node, path, "expected a mapping, got %s",
                       scalar(node) ? "a string" : node_kind(node));
    err = check_dup_keys(c, node, path);
    if (err)
        return err;
    tn = map_get(c, node, "type", NULL);
    kinds[0] = '\0';
    for (i = 0; i < plugins_count(); i++)
        snprintf(kinds + strlen(kinds), sizeof(kinds) - strlen(kinds), "%s%s",
                 i ? ", " : "", plugins_get(i)->name);
    if (!tn)
        return fail_at(c, node, path, "type: missing required key (one of %s)",
                       kinds);
    plugin = scalar(tn) ? plugins_find(scalar(tn)) : NULL;
    if (!plugin) {
        char tpath[80];

        path_fmt(tpath, sizeof(tpath), "%s.type", path);
        if (!scalar(tn))
            return fail_at(c, tn, tpath, "expected one of %s, got %s", kinds,
                           node_kind(tn));
        return fail_at(c, tn, tpath, "expected one of %s, got \"%s\"", kinds,
                       scalar(tn));
    }
    tgt = calloc(1, sizeof(*tgt));
    if (!tgt)
        return HERALD_ERR_NOMEM;
    tgt->plugin = plugin;
    tgt->type_config = calloc(1, plugin->config_size ? plugin->config_size : 1);
    tgt->source_file = strdup(c->file);
    if (!tgt->type_config || !tgt->source_file) {
        err = HERALD_ERR_NOMEM;
        goto fail;
    }
    tgt->source_line = (int)node->start_mark.line + 1;
    meta->line = tgt->source_line;
    meta->col = (int)node->start_mark.column + 1;
    c->meta = meta;
    c->plugin = plugin;
    c->env_missing = false;
    memset(c->seen_type_key, 0, sizeof(c->seen_type_key));
    err = apply_gen_defaults(tgt, targets_gen_keys);
    if (!err)
        err = apply_type_defaults(tgt);
    if (err)
        goto fail;
    tgt->rate_per_sec = -1; /* Unset: the plugin may pick a default. */
    if (defaults) {
        err =
            parse_mapping(c, tgt, defaults, targets_gen_keys, "defaults", true);
        if (err)
            goto fail;
    }
    err = parse_mapping(c, tgt, node, targets_gen_keys, path, false);
    if (err)
        goto fail;
    nn = map_get(c, node, "name", NULL);
    if (!nn) {
        err = fail_at(c, node, path, "name: missing required key");
        goto fail;
    }
    if (!dns_label_ok(tgt->name)) {
        char npath[80];

        path_fmt(npath, sizeof(npath), "%s.name", path);
        err = fail_at(c, nn, npath,
                      "expected a name of 1 to 63 characters a-z, 0-9 and "
                      "'-', not starting or ending with '-', got \"%s\"",
                      tgt->name);
        goto fail;
    }
    for (const target_key *k = plugin->keys; k && k->key; k++) {
        if (k->required && !c->seen_type_key[k - plugin->keys]) {
            err = fail_at(c, node, path,
                          "%s: missing required key for type "
                          "%s",
                          k->key, plugin->name);
            goto fail;
        }
    }
    if (c->env_missing && tgt->enabled) {
        if (!c->failed)
            snprintf(c->errstr, c->errstr_size, "%s", c->env_msg);
        c->failed = true;
        err = HERALD_ERR_CONFIG;
        goto fail;
    }
    if (plugin->config_finish) {
        why[0] = '\0';
        err = plugin->config_finish(tgt, why, sizeof(why));
        if (err) {
            if (err == HERALD_ERR_CONFIG)
                fail_at(c, node, path, "%s", why);
            goto fail;
        }
    }
    if (tgt->rate_per_sec < 0)
        tgt->rate_per_sec = 0;
    *out = tgt;
    return HERALD_OK;
fail:
    targets_target_destroy(tgt);
    if (!c->failed && err == HERALD_ERR_CONFIG)
        fail_at(c, node, path, "invalid target");
    return err;
}

static herald_err load_document(lctx *c, target_set *set)
{
    yaml_node_t *root = yaml_document_get_root_node(c->doc);
    yaml_node_t *defaults;
    yaml_node_t *list;
    yaml_node_pair_t *pr;
    herald_err err;
    size_t n;

    if (!root || (root->type == YAML_SCALAR_NODE && !*scalar(root)))
        return fail_at(c, NULL, "",
                       "the document is empty; expected a mapping with a "
                       "\"targets\" list");
    if (root->type != YAML_MAPPING_NODE)
        return fail_at(c, root, "",
                       "expected a mapping with a \"targets\" "
                       "list, got %s",
                       scalar(root) ? "a string" : node_kind(root));
    err = check_dup_keys(c, root, "");
    if (err)
        return err;
    for (pr = root->data.mapping.pairs.start; pr < root->data.mapping.pairs.top;
         pr++) {
        yaml_node_t *kn = node_get(c, pr->key);

        if (strcmp(scalar(kn), "defaults") != 0 &&
            strcmp(scalar(kn), "targets") != 0)
            return fail_at(c, kn, scalar(kn),
                           "unknown key (expected defaults or targets)");
    }
    defaults = map_get(c, root, "defaults", NULL);
    list = map_get(c, root, "targets", NULL);
    if (defaults && defaults->type == YAML_SCALAR_NODE && !*scalar(defaults))
        defaults = NULL;
    if (defaults) {
        /* Validate defaults once even when no target uses them. */
        target probe;
        tmeta scratch = {0};

        memset(&probe, 0, sizeof(probe));
        c->meta = &scratch;
        c->plugin = NULL;
        c->env_missing = false;
        err = parse_mapping(c, &probe, defaults, targets_gen_keys, "defaults",
                            true);
        targets_free_gen_fields(&probe, targets_gen_keys);
        targets_headers_free(&probe);
        targets_matchers_free(&probe);
        free(scratch.env_fields);
        c->meta = NULL;
        if (err)
            return err;
    }
    if (!list)
        return fail_at(c, root, "targets", "missing required key");
    if (list->type == YAML_SCALAR_NODE && !*scalar(list))
        return HERALD_OK; /* "targets:" with nothing: no targets. */
    if (list->type != YAML_SEQUENCE_NODE)
        return fail_at(c, list, "targets", "expected a list, got %s",
                       scalar(list) ? "a string" : node_kind(list));
    n = (size_t)(list->data.sequence.items.top -
                 list->data.sequence.items.start);
    set->items = calloc(n ? n : 1, sizeof(*set->items));
    set->meta = calloc(n ? n : 1, sizeof(*set->meta));
    if (!set->items || !set->meta)
        return HERALD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = node_get(c, list->data.sequence.items.start[i]);
        target *tgt;

        err = parse_target(c, item, defaults, i, &tgt, &set->meta[set->n]);
        if (err) {
            free(set->meta[set->n].env_fields);
            memset(&set->meta[set->n], 0, sizeof(set->meta[set->n]));
            return err;
        }
        for (size_t j = 0; j < set->n; j++) {
            if (strcmp(set->items[j]->name, tgt->name) == 0) {
                yaml_node_t *nn = map_get(c, item, "name", NULL);
                char npath[64];

                path_fmt(npath, sizeof(npath), "targets[%zu].name", i);
                targets_target_destroy(tgt);
                free(set->meta[set->n].env_fields);
                memset(&set->meta[set->n], 0, sizeof(set->meta[set->n]));
                return fail_at(c, nn, npath,
                               "duplicate name \"%s\" (first defined at "
                               "line %d)",
                               set->items[j]->name, set->meta[j].line);
            }
        }
        set->items[set->n++] = tgt;
    }
    return HERALD_OK;
}

herald_err targets_load_string(const char *yaml, const char *name_for_errors,
                               target_set **out, char *errstr,
                               size_t errstr_size)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    bool parser_ok = false;
    bool doc_ok = false;
    target_set *set = NULL;
    herald_err err = HERALD_OK;
    lctx c;

    *out = NULL;
    if (errstr_size)
        errstr[0] = '\0';
    memset(&c, 0, sizeof(c));
    c.file = name_for_errors ? name_for_errors : "<string>";
    c.errstr = errstr;
    c.errstr_size = errstr_size;
    c.doc = &doc;
    set = calloc(1, sizeof(*set));
    if (!set || !yaml_parser_initialize(&parser)) {
        free(set);
        return HERALD_ERR_NOMEM;
    }
    parser_ok = true;
    atomic_init(&set->refs, 1);
    set->source = strdup(c.file);
    if (!set->source) {
        err = HERALD_ERR_NOMEM;
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml,
                                 strlen(yaml));
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(errstr, errstr_size, "%s:%lu:%lu: YAML syntax error: %s%s%s",
                 c.file, (unsigned long)parser.problem_mark.line + 1,
                 (unsigned long)parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "unknown",
                 parser.context ? " " : "",
                 parser.context ? parser.context : "");
        err = HERALD_ERR_CONFIG;
        goto out;
    }
    doc_ok = true;
    err = load_document(&c, set);
    if (!err) {
        /* One document only: a second one ("---") would be ignored. */
        yaml_document_t next;

        if (!yaml_parser_load(&parser, &next)) {
            snprintf(errstr, errstr_size, "%s:%lu:%lu: YAML syntax error: %s",
                     c.file, (unsigned long)parser.problem_mark.line + 1,
                     (unsigned long)parser.problem_mark.column + 1,
                     parser.problem ? parser.problem : "unknown");
            err = HERALD_ERR_CONFIG;
        } else {
            yaml_node_t *root = yaml_document_get_root_node(&next);

            if (root) {
                snprintf(errstr, errstr_size,
                         "%s:%lu:%lu: a second YAML document: targets.yaml "
                         "holds one document",
                         c.file, (unsigned long)root->start_mark.line + 1,
                         (unsigned long)root->start_mark.column + 1);
                err = HERALD_ERR_CONFIG;
            }
            yaml_document_delete(&next);
        }
    }
out:
    if (doc_ok)
        yaml_document_delete(&doc);
    if (parser_ok)
        yaml_parser_delete(&parser);
    if (err) {
        if (err != HERALD_ERR_CONFIG && errstr_size && !errstr[0])
            snprintf(errstr, errstr_size, "%s: %s", c.file,
                     herald_err2str(err));
        targets_set_free(set);
        return err;
    }
    *out = set;
    return HERALD_OK;
}

herald_err targets_load(const char *path, target_set **out, char *errstr,
                        size_t errstr_size)
{
    FILE *f;
    buf b;
    char chunk[8192];
    size_t n;
    herald_err err = HERALD_OK;

    *out = NULL;
    f = fopen(path, "rb");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path,
                 strerror(errno));
        return HERALD_ERR_IO;
    }
    buf_init(&b, TARGETS_MAX_FILE_BYTES);
    while (!err && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        err = buf_append(&b, chunk, n);
    if (!err && ferror(f))
        err = HERALD_ERR_IO;
    fclose(f);
    if (err) {
        snprintf(errstr, errstr_size, "%s: %s", path,
                 err == HERALD_ERR_TOO_LARGE ? "file larger than 4 MiB"
                                             : "read failed");
        buf_free(&b);
        return err == HERALD_ERR_NOMEM ? err : HERALD_ERR_IO;
    }
    err = targets_load_string(buf_str(&b), path, out, errstr, errstr_size);
    buf_free(&b);
    return err;
}
