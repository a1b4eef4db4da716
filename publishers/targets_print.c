/*
 * targets_print.c: the masked view of a loaded target set, as JSON (GET
 * /targets), as YAML (herald check-config), the routing of a label set
 * (herald check-config --route), and the Markdown reference of the schema
 * (docs/TARGETS.md).
 *
 * Masking: fields typed as secrets, values that came from ${ENV}, header
 * values except harmless_headers, and in URLs the userinfo, the query and
 * the path of webhook hosts whose path is the credential (core/mask.h) are
 * printed as "***".
 *
 * Threads: reads an immutable set; any thread holding a reference.
 */
#include "publishers/targets.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/mask.h"

#include "publishers/matchers.h"
#include "publishers/plugins.h"
#include "publishers/targets_int.h"

/* Header values shown as they are: media types, client names and
 * caching, never credentials. Every other header value is masked, since
 * services put keys in headers of any name (X-Api-Key, X-Auth-Token...). */
static const char *const harmless_headers[] = {
    "Accept",          "Accept-Charset", "Accept-Encoding",
    "Accept-Language", "Cache-Control",  "Content-Language",
    "Content-Type",    "User-Agent",     NULL};

static bool header_harmless(const char *name)
{
    for (size_t i = 0; harmless_headers[i]; i++) {
        if (strcasecmp(name, harmless_headers[i]) == 0)
            return true;
    }
    return false;
}

/* A URL with its secrets masked (core/mask.h); "***" when it came from
 * ${ENV}. */
static json_object *url_json(const char *url, bool from_env)
{
    json_object *o;
    buf b;

    if (!url)
        return NULL;
    if (from_env)
        return json_object_new_string(MASK);
    buf_init(&b, strlen(url) + 64);
    o = json_object_new_string(mask_urls(url, &b) == HERALD_OK ? buf_str(&b)
                                                               : MASK);
    buf_free(&b);
    return o;
}

static json_object *str_json(const char *s, bool masked)
{
    if (!s)
        return NULL;
    return json_object_new_string(masked && *s ? MASK : s);
}

static herald_err gen_json(const target *tgt, const tmeta *m, const gkey *keys,
                           json_object *obj)
{
    for (const gkey *k = keys; k->key; k++) {
        const void *field = (const char *)tgt + k->offset;
        json_object *v = NULL;

        switch (k->type) {
        case G_STRING:
        case G_ENUM:
            if (keys == targets_gen_keys && strcmp(k->key, "type") == 0)
                v = json_object_new_string(tgt->plugin->name);
            else
                v = str_json(*(char *const *)field,
                             targets_meta_is_env(m, field));
            break;
        case G_SECRET: v = str_json(*(char *const *)field, true); break;
        case G_URL:
            v = url_json(*(char *const *)field, targets_meta_is_env(m, field));
            break;
        case G_INT: v = json_object_new_int(*(const int *)field); break;
        case G_BOOL: v = json_object_new_boolean(*(const bool *)field); break;
        case G_DOUBLE:
            v = json_object_new_double(*(const double *)field);
            break;
        case G_AUTH_KIND:
            v = json_object_new_string(
                targets_auth_kinds[*(const target_auth_kind *)field]);
            break;
        case G_SECTION:
            if (k->section == targets_auth_keys &&
                tgt->auth.kind == TARGET_AUTH_NONE)
                break;
            v = json_object_new_object();
            if (v && gen_json(tgt, m, k->section, v)) {
                json_object_put(v);
                return HERALD_ERR_NOMEM;
            }
            break;
        case G_HEADERS:
            v = json_object_new_object();
            for (size_t i = 0; v && i < tgt->n_headers; i++)
                json_object_object_add(
                    v, tgt->headers[i].name,
                    str_json(tgt->headers[i].value,
                             tgt->headers[i].secret ||
                                 !header_harmless(tgt->headers[i].name)));
            break;
        case G_MATCHERS:
            v = json_object_new_array();
            for (size_t i = 0; v && i < tgt->n_matchers; i++) {
                buf b;

                buf_init(&b, 65536);
                if (matcher_format(&tgt->matchers[i], &b) == HERALD_OK)
                    json_object_array_add(v,
                                          json_object_new_string(buf_str(&b)));
                buf_free(&b);
            }
            break;
        }
        if (v)
            json_object_object_add(obj, k->key, v);
    }
    return HERALD_OK;
}

static void type_json(const target *tgt, const tmeta *m, json_object *obj)
{
    for (const target_key *k = tgt->plugin->keys; k && k->key; k++) {
        const void *field = (const char *)tgt->type_config + k->offset;
        bool env = targets_meta_is_env(m, field);
        json_object *v = NULL;

        switch (k->type) {
        case TARGET_KEY_STRING:
        case TARGET_KEY_ENUM: v = str_json(*(char *const *)field, env); break;
        case TARGET_KEY_SECRET:
            v = str_json(*(char *const *)field, true);
            break;
        case TARGET_KEY_INT:
            v = json_object_new_int(*(const int *)field);
            break;
        case TARGET_KEY_BOOL:
            v = json_object_new_boolean(*(const bool *)field);
            break;
        case TARGET_KEY_MAP: {
            const alert_kvs *kvs = field;

            v = json_object_new_object();
            for (size_t i = 0; v && i < kvs->n; i++)
                json_object_object_add(v, kvs->items[i].name,
                                       str_json(kvs->items[i].value, env));
            break;
        }
        }
        if (v)
            json_object_object_add(obj, k->key, v);
    }
}

herald_err targets_to_json(const target_set *set, json_object **out)
{
    json_object *arr = json_object_new_array();

    *out = NULL;
    if (!arr)
        return HERALD_ERR_NOMEM;
    for (size_t i = 0; set && i < set->n; i++) {
        json_object *obj = json_object_new_object();

        if (!obj ||
            gen_json(set->items[i], &set->meta[i], targets_gen_keys, obj)) {
            json_object_put(obj);
            json_object_put(arr);
            return HERALD_ERR_NOMEM;
        }
        type_json(set->items[i], &set->meta[i], obj);
        json_object_array_add(arr, obj);
    }
    *out = arr;
    return HERALD_OK;
}

/* Writes a JSON value as YAML (strings double-quoted, JSON escapes are
 * valid YAML double-quoted escapes). */
static void yaml_emit(FILE *out, json_object *v, int indent, bool in_list);

static void yaml_emit_scalar(FILE *out, json_object *v)
{
    fputs(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN |
                                                JSON_C_TO_STRING_NOSLASHESCAPE),
          out);
}

static bool is_container(json_object *v)
{
    return json_object_is_type(v, json_type_object) ||
           json_object_is_type(v, json_type_array);
}

static bool is_empty(json_object *v)
{
    if (json_object_is_type(v, json_type_object))
        return json_object_object_length(v) == 0;
    if (json_object_is_type(v, json_type_array))
        return json_object_array_length(v) == 0;
    return false;
}

static void yaml_emit(FILE *out, json_object *v, int indent, bool in_list)
{
    bool first = true;

    if (json_object_is_type(v, json_type_object)) {
        json_object_object_foreach(v, key, val)
        {
            if (!(in_list && first))
                fprintf(out, "%*s", indent, "");
            first = false;
            fprintf(out, "%s:", key);
            if (is_container(val) && !is_empty(val)) {
                fputc('\n', out);
                yaml_emit(out, val, indent + 2, false);
            } else {
                fputc(' ', out);
                yaml_emit_scalar(out, val);
                fputc('\n', out);
            }
        }
        return;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
        json_object *item = json_object_array_get_idx(v, i);

        fprintf(out, "%*s- ", indent, "");
        if (is_container(item) && !is_empty(item)) {
            yaml_emit(out, item, indent + 2, true);
        } else {
            yaml_emit_scalar(out, item);
            fputc('\n', out);
        }
    }
}

herald_err targets_print(const target_set *set, FILE *out)
{
    json_object *arr;
    herald_err err = targets_to_json(set, &arr);

    if (err)
        return err;
    fprintf(out, "# Effective targets of %s (secrets shown as %s).\n",
            set && set->source ? set->source : "<none>", MASK);
    if (json_object_array_length(arr) == 0) {
        fputs("targets: []\n", out);
    } else {
        fputs("targets:\n", out);
        yaml_emit(out, arr, 2, false);
    }
    json_object_put(arr);
    return ferror(out) ? HERALD_ERR_IO : HERALD_OK;
}

static const char *gtype_name(const gkey *k)
{
    switch (k->type) {
    case G_STRING: return "string";
    case G_SECRET: return "secret string";
    case G_URL: return "URL";
    case G_INT: return "integer";
    case G_BOOL: return "boolean";
    case G_DOUBLE: return "number";
    case G_ENUM:
    case G_AUTH_KIND: return "enum";
    case G_SECTION: return "mapping";
    case G_HEADERS: return "mapping";
    case G_MATCHERS: return "list of strings";
    }
    return "?";
}

/* Writes a Markdown table cell, escaping the column separator. */
static void md_cell(FILE *out, const char *text)
{
    fputs(" ", out);
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == '|')
            fputc('\\', out);
        fputc(*p, out);
    }
    fputs(" |", out);
}

static void md_gen(FILE *out, const gkey *keys, const char *prefix)
{
    for (const gkey *k = keys; k->key; k++) {
        char full[128];

        snprintf(full, sizeof(full), "%s%s%s", prefix, *prefix ? "." : "",
                 k->key);
        if (k->type == G_SECTION) {
            md_gen(out, k->section, full);
            continue;
        }
        fprintf(out, "| `%s` | %s |", full, gtype_name(k));
        md_cell(out, k->def);
        md_cell(out, k->help);
        fputc('\n', out);
    }
}

herald_err targets_schema_markdown(FILE *out)
{
    static const char *const tk_names[] = {
        "string", "secret string", "integer", "boolean", "enum", "mapping"};

    fputs("| Key | Type | Default | Meaning |\n|---|---|---|---|\n", out);
    md_gen(out, targets_gen_keys, "");
    for (size_t i = 0; i < plugins_count(); i++) {
        const target_plugin *p = plugins_get(i);

        fprintf(out, "\nPer-type keys of `%s`:\n\n", p->name);
        fputs("| Key | Type | Default | Required | Meaning |\n"
              "|---|---|---|---|---|\n",
              out);
        for (const target_key *k = p->keys; k && k->key; k++) {
            fprintf(out, "| `%s` | %s |", k->key, tk_names[k->type]);
            md_cell(out, k->def);
            fprintf(out, " %s |", k->required ? "yes" : "no");
            md_cell(out, k->help);
            fputc('\n', out);
        }
    }
    return ferror(out) ? HERALD_ERR_IO : HERALD_OK;
}

/* Appends why tgt does not take an alert with labels, or "". */
static herald_err route_why(const target *tgt, const alert_kvs *labels,
                            buf *why)
{
    size_t i;
    const char *v;
    herald_err err;

    if (!tgt->enabled)
        return buf_append_str(why, "disabled (enabled: false)");
    i = matchers_first_failed(tgt->matchers, tgt->n_matchers, labels);
    if (i == tgt->n_matchers)
        return HERALD_OK;
    err = buf_append_str(why, "matcher ");
    if (!err)
        err = matcher_format(&tgt->matchers[i], why);
    if (err)
        return err;
    v = alert_kvs_get(labels, tgt->matchers[i].name);
    if (!v)
        return buf_appendf(why, " does not match: label %s is not set",
                           tgt->matchers[i].name);
    return buf_appendf(why, " does not match: %s is \"%s\"",
                       tgt->matchers[i].name, v);
}

herald_err targets_route(const target_set *set, const alert_kvs *labels,
                         FILE *out, size_t *n_taken)
{
    herald_err err = HERALD_OK;
    buf why;

    *n_taken = 0;
    buf_init(&why, 64 * 1024);
    for (size_t i = 0; !err && i < set->n; i++) {
        const target *tgt = set->items[i];

        buf_reset(&why);
        err = route_why(tgt, labels, &why);
        if (err)
            break;
        if (why.len == 0) {
            (*n_taken)++;
            if (fprintf(out, "%s: receives the alert\n", tgt->name) < 0)
                err = HERALD_ERR_IO;
        } else if (fprintf(out, "%s: does not: %s\n", tgt->name,
                           buf_str(&why)) < 0) {
            err = HERALD_ERR_IO;
        }
    }
    if (!err && fprintf(out, "%zu of %zu targets receive the alert\n", *n_taken,
                        set->n) < 0)
        err = HERALD_ERR_IO;
    buf_free(&why);
    return err;
}
