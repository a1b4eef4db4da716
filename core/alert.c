/*
 * alert.c: parses job messages into alert batches (see alert.h).
 *
 * Data flow: message bytes -> size check -> json-c tokener (strict, UTF-8
 * validated, depth-limited) -> form detection -> typed extraction with a
 * JSON-path error for every wrong type -> fingerprints computed where
 * missing. Pure functions: any thread; no shared state.
 */
#include "core/alert.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALERT_DEFAULT_MAX_BYTES (1024 * 1024)
#define ALERT_DEFAULT_MAX_DEPTH 32
#define ALERT_DEFAULT_MAX_ALERTS 1000

/* Prometheus model.SeparatorByte and the FNV-1a 64 parameters. */
#define FP_SEPARATOR 0xff
#define FNV64_OFFSET 14695981039346656037ULL
#define FNV64_PRIME 1099511628211ULL

static const char *const alert_reason_names[] = {
    "none",           "null_value", "oversize",   "not_utf8", "not_json",
    "truncated_json", "too_deep",   "wrong_type", "no_alerts"};

const char *alert_reason_name(alert_reason reason)
{
    if ((size_t)reason >=
        sizeof(alert_reason_names) / sizeof(alert_reason_names[0]))
        return "unknown";
    return alert_reason_names[reason];
}

void alert_limits_default(alert_limits *lim)
{
    lim->max_bytes = ALERT_DEFAULT_MAX_BYTES;
    lim->max_depth = ALERT_DEFAULT_MAX_DEPTH;
    lim->max_alerts = ALERT_DEFAULT_MAX_ALERTS;
}

const char *alert_status_name(alert_status status)
{
    return status == ALERT_STATUS_RESOLVED ? "resolved" : "firing";
}

const char *alert_kvs_get(const alert_kvs *kvs, const char *name)
{
    for (size_t i = 0; i < kvs->n; i++) {
        if (strcmp(kvs->items[i].name, name) == 0)
            return kvs->items[i].value;
    }
    return NULL;
}

const char *alert_severity(const alert *a)
{
    if (a->classification_severity && a->classification_severity[0])
        return a->classification_severity;
    return alert_kvs_get(&a->labels, "severity");
}

int alert_priority(const alert *a)
{
    const char *sev;

    if (a->status == ALERT_STATUS_RESOLVED)
        return 4;
    sev = alert_severity(a);
    if (!sev)
        return 2;
    if (strcasecmp(sev, "critical") == 0 || strcasecmp(sev, "page") == 0)
        return 0;
    if (strcasecmp(sev, "error") == 0 || strcasecmp(sev, "high") == 0)
        return 1;
    if (strcasecmp(sev, "info") == 0 || strcasecmp(sev, "none") == 0 ||
        strcasecmp(sev, "low") == 0)
        return 3;
    return 2;
}

static int kv_cmp(const void *x, const void *y)
{
    const alert_kv *a = x;
    const alert_kv *b = y;

    return strcmp(a->name, b->name);
}

void alert_fingerprint(const alert_kvs *labels, char out[ALERT_FINGERPRINT_LEN])
{
    uint64_t h = FNV64_OFFSET;
    const alert_kv **sorted = NULL;
    size_t n = labels->n;

    /* Sort pointers, not the set: the caller's set stays untouched. */
    if (n) {
        sorted = malloc(n * sizeof(*sorted));
        if (!sorted) {
            snprintf(out, ALERT_FINGERPRINT_LEN, "%016llx",
                     (unsigned long long)h);
            return;
        }
        for (size_t i = 0; i < n; i++)
            sorted[i] = &labels->items[i];
        for (size_t i = 1; i < n; i++) {
            const alert_kv *cur = sorted[i];
            size_t j = i;

            while (j > 0 && strcmp(sorted[j - 1]->name, cur->name) > 0) {
                sorted[j] = sorted[j - 1];
                j--;
            }
            sorted[j] = cur;
        }
    }
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p;

        for (p = (const unsigned char *)sorted[i]->name; *p; p++) {
            h ^= *p;
            h *= FNV64_PRIME;
        }
        h ^= FP_SEPARATOR;
        h *= FNV64_PRIME;
        for (p = (const unsigned char *)sorted[i]->value; *p; p++) {
            h ^= *p;
            h *= FNV64_PRIME;
        }
        h ^= FP_SEPARATOR;
        h *= FNV64_PRIME;
    }
    free(sorted);
    snprintf(out, ALERT_FINGERPRINT_LEN, "%016llx", (unsigned long long)h);
}

/* Parse context: limits, error text and the reason kind of the first error. */
typedef struct parse_ctx {
    char *errstr;
    size_t errstr_size;
    alert_reason reason;
} parse_ctx;

static herald_err parse_fail(parse_ctx *ctx, alert_reason reason,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static herald_err parse_fail(parse_ctx *ctx, alert_reason reason,
                             const char *fmt, ...)
{
    va_list ap;

    ctx->reason = reason;
    if (ctx->errstr && ctx->errstr_size) {
        va_start(ap, fmt);
        vsnprintf(ctx->errstr, ctx->errstr_size, fmt, ap);
        va_end(ap);
    }
    return reason == ALERT_REASON_OVERSIZE ? HERALD_ERR_TOO_LARGE
                                           : HERALD_ERR_PARSE;
}

static const char *json_type_label(json_object *o)
{
    return o ? json_type_to_name(json_object_get_type(o)) : "null";
}

/* True when a JSON string holds a NUL character (C strings stop there). */
static bool has_nul(json_object *str)
{
    return (size_t)json_object_get_string_len(str) !=
           strlen(json_object_get_string(str));
}

/* Copies an optional string member; a present non-string is an error. */
static herald_err get_opt_string(parse_ctx *ctx, json_object *obj,
                                 const char *key, const char *path, char **out)
{
    json_object *v;

    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v) || !v)
        return HERALD_OK;
    if (!json_object_is_type(v, json_type_string))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%s%s: expected a string, got %s", path, key,
                          json_type_label(v));
    if (has_nul(v))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%s%s: the string contains a NUL character", path,
                          key);
    *out = strdup(json_object_get_string(v));
    return *out ? HERALD_OK : HERALD_ERR_NOMEM;
}

void alert_kvs_free(alert_kvs *kvs)
{
    for (size_t i = 0; i < kvs->n; i++) {
        free(kvs->items[i].name);
        free(kvs->items[i].value);
    }
    free(kvs->items);
    kvs->items = NULL;
    kvs->n = 0;
}

/* Reads an object of string values into a sorted set. Absent is empty. */
static herald_err get_kvs(parse_ctx *ctx, json_object *obj, const char *key,
                          const char *path, bool required, alert_kvs *out)
{
    json_object *v;
    size_t n;
    size_t i = 0;

    out->items = NULL;
    out->n = 0;
    if (!json_object_object_get_ex(obj, key, &v) || !v) {
        if (required)
            return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                              "%s%s: missing (expected an object of "
                              "strings)",
                              path, key);
        return HERALD_OK;
    }
    if (!json_object_is_type(v, json_type_object))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%s%s: expected an object, got %s", path, key,
                          json_type_label(v));
    n = (size_t)json_object_object_length(v);
    if (n == 0)
        return HERALD_OK;
    out->items = calloc(n, sizeof(*out->items));
    if (!out->items)
        return HERALD_ERR_NOMEM;
    json_object_object_foreach(v, name, val)
    {
        if (!val || !json_object_is_type(val, json_type_string)) {
            out->n = i;
            alert_kvs_free(out);
            return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                              "%s%s.%s: expected a string, got %s", path, key,
                              name, json_type_label(val));
        }
        if (has_nul(val)) {
            /* A NUL would cut the value short and give the alert the
             * fingerprint of another label set. */
            out->n = i;
            alert_kvs_free(out);
            return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                              "%s%s.%s: the string contains a NUL character",
                              path, key, name);
        }
        out->items[i].name = strdup(name);
        out->items[i].value = strdup(json_object_get_string(val));
        i++;
        out->n = i;
        if (!out->items[i - 1].name || !out->items[i - 1].value) {
            alert_kvs_free(out);
            return HERALD_ERR_NOMEM;
        }
    }
    qsort(out->items, out->n, sizeof(*out->items), kv_cmp);
    return HERALD_OK;
}

static herald_err get_status(parse_ctx *ctx, json_object *obj, const char *path,
                             alert_status *out)
{
    json_object *v;
    const char *s;

    *out = ALERT_STATUS_FIRING;
    if (!json_object_object_get_ex(obj, "status", &v) || !v)
        return HERALD_OK;
    if (!json_object_is_type(v, json_type_string))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%sstatus: expected \"firing\" or \"resolved\", "
                          "got %s",
                          path, json_type_label(v));
    s = json_object_get_string(v);
    if (strcmp(s, "firing") == 0)
        *out = ALERT_STATUS_FIRING;
    else if (strcmp(s, "resolved") == 0)
        *out = ALERT_STATUS_RESOLVED;
    else
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%sstatus: expected \"firing\" or \"resolved\", "
                          "got \"%.64s\"",
                          path, s);
    return HERALD_OK;
}

static bool is_fingerprint(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 16)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
              (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static void alert_free(alert *a)
{
    alert_kvs_free(&a->labels);
    alert_kvs_free(&a->annotations);
    free(a->starts_at);
    free(a->ends_at);
    free(a->generator_url);
    free(a->receiver);
    free(a->external_url);
    free(a->group_key);
    free(a->classification_severity);
    free(a->classification_reasoning);
    free(a->raw_json);
    memset(a, 0, sizeof(*a));
}

/* Sets a->fingerprint from fp (given) or computes it from the labels. */
static herald_err set_fingerprint(parse_ctx *ctx, alert *a, const char *fp,
                                  const char *path)
{
    if (fp) {
        if (!is_fingerprint(fp))
            return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                              "%sfingerprint: expected up to 16 hex "
                              "digits, got \"%.32s\"",
                              path, fp);
        /* Normalise to 16 lower-case digits, as Alertmanager prints. */
        snprintf(a->fingerprint, sizeof(a->fingerprint), "%016llx",
                 strtoull(fp, NULL, 16));
        a->fingerprint_computed = false;
        return HERALD_OK;
    }
    alert_fingerprint(&a->labels, a->fingerprint);
    a->fingerprint_computed = true;
    return HERALD_OK;
}

/* Form 1 item and form 2: one alert in Alertmanager's camelCase form. */
static herald_err parse_am_alert(parse_ctx *ctx, json_object *obj,
                                 const char *path, alert *a)
{
    herald_err err;
    char *fp = NULL;

    if (!json_object_is_type(obj, json_type_object))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "%s: expected an object, got %s",
                          path[0] ? path : "alert", json_type_label(obj));
    err = get_status(ctx, obj, path, &a->status);
    if (!err)
        err = get_kvs(ctx, obj, "labels", path, true, &a->labels);
    if (!err && a->labels.n == 0)
        err = parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                         "%slabels: an alert needs at least one label", path);
    if (!err)
        err = get_kvs(ctx, obj, "annotations", path, false, &a->annotations);
    if (!err)
        err = get_opt_string(ctx, obj, "startsAt", path, &a->starts_at);
    if (!err)
        err = get_opt_string(ctx, obj, "endsAt", path, &a->ends_at);
    if (!err)
        err = get_opt_string(ctx, obj, "generatorURL", path, &a->generator_url);
    if (!err)
        err = get_opt_string(ctx, obj, "fingerprint", path, &fp);
    if (!err)
        err = set_fingerprint(ctx, a, fp, path);
    free(fp);
    a->classification_confidence = -1;
    return err;
}

/* Form 3: {"alert": {snake_case...}, "classification": {...}}. */
static herald_err parse_enriched(parse_ctx *ctx, json_object *root, alert *a)
{
    json_object *obj;
    json_object *cls;
    json_object *v;
    char *fp = NULL;
    char *name = NULL;
    herald_err err;

    json_object_object_get_ex(root, "alert", &obj);
    if (!obj || !json_object_is_type(obj, json_type_object))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "alert: expected an object, got %s",
                          json_type_label(obj));
    err = get_status(ctx, obj, "alert.", &a->status);
    if (!err)
        err = get_kvs(ctx, obj, "labels", "alert.", false, &a->labels);
    if (!err)
        err =
            get_kvs(ctx, obj, "annotations", "alert.", false, &a->annotations);
    if (!err)
        err = get_opt_string(ctx, obj, "starts_at", "alert.", &a->starts_at);
    if (!err)
        err = get_opt_string(ctx, obj, "ends_at", "alert.", &a->ends_at);
    if (!err)
        err = get_opt_string(ctx, obj, "generator_url", "alert.",
                             &a->generator_url);
    if (!err)
        err = get_opt_string(ctx, obj, "alert_name", "alert.", &name);
    if (!err)
        err = get_opt_string(ctx, obj, "fingerprint", "alert.", &fp);
    if (!err && name && !alert_kvs_get(&a->labels, "alertname")) {
        /* alert_name stands for the alertname label when that is absent. */
        alert_kv *items =
            realloc(a->labels.items, (a->labels.n + 1) * sizeof(*items));

        if (!items) {
            err = HERALD_ERR_NOMEM;
        } else {
            a->labels.items = items;
            items[a->labels.n].name = strdup("alertname");
            items[a->labels.n].value = name;
            name = NULL;
            a->labels.n++;
            if (!items[a->labels.n - 1].name)
                err = HERALD_ERR_NOMEM;
            qsort(items, a->labels.n, sizeof(*items), kv_cmp);
        }
    }
    if (!err && a->labels.n == 0)
        err = parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                         "alert.labels: an alert needs at least one label "
                         "or an alert_name");
    if (!err)
        err = set_fingerprint(ctx, a, fp, "alert.");
    a->classification_confidence = -1;
    if (!err && json_object_object_get_ex(root, "classification", &cls) &&
        cls) {
        if (!json_object_is_type(cls, json_type_object)) {
            err = parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                             "classification: expected an object, got %s",
                             json_type_label(cls));
        } else {
            err = get_opt_string(ctx, cls, "severity", "classification.",
                                 &a->classification_severity);
            if (!err)
                err = get_opt_string(ctx, cls, "reasoning", "classification.",
                                     &a->classification_reasoning);
            if (!err && json_object_object_get_ex(cls, "confidence", &v) && v) {
                if (json_object_is_type(v, json_type_double) ||
                    json_object_is_type(v, json_type_int))
                    a->classification_confidence = json_object_get_double(v);
                else
                    err = parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                                     "classification.confidence: expected "
                                     "a number, got %s",
                                     json_type_label(v));
            }
        }
    }
    free(fp);
    free(name);
    return err;
}

static herald_err set_raw(alert *a, json_object *obj)
{
    const char *s = json_object_to_json_string_ext(
        obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    a->raw_json = strdup(s ? s : "{}");
    return a->raw_json ? HERALD_OK : HERALD_ERR_NOMEM;
}

static herald_err copy_group(const alert_batch *batch, alert *a)
{
    if (batch->receiver && !(a->receiver = strdup(batch->receiver)))
        return HERALD_ERR_NOMEM;
    if (batch->external_url && !(a->external_url = strdup(batch->external_url)))
        return HERALD_ERR_NOMEM;
    if (batch->group_key && !(a->group_key = strdup(batch->group_key)))
        return HERALD_ERR_NOMEM;
    return HERALD_OK;
}

/* Form 1: the Alertmanager webhook payload. */
static herald_err parse_webhook(parse_ctx *ctx, json_object *root,
                                const alert_limits *lim, alert_batch *batch)
{
    json_object *arr;
    json_object *v;
    herald_err err;
    size_t n;

    batch->form = 1;
    if (json_object_object_get_ex(root, "version", &v) && v &&
        !json_object_is_type(v, json_type_string))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "version: expected a string (\"4\"), got %s",
                          json_type_label(v));
    json_object_object_get_ex(root, "alerts", &arr);
    if (!arr || !json_object_is_type(arr, json_type_array))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "alerts: expected an array, got %s",
                          json_type_label(arr));
    n = json_object_array_length(arr);
    if (n == 0)
        return parse_fail(ctx, ALERT_REASON_NO_ALERTS,
                          "alerts: the array is empty");
    if (n > lim->max_alerts)
        return parse_fail(ctx, ALERT_REASON_OVERSIZE,
                          "alerts: %zu alerts, more than the limit of %zu", n,
                          lim->max_alerts);
    err = get_opt_string(ctx, root, "receiver", "", &batch->receiver);
    if (!err)
        err = get_status(ctx, root, "", &batch->status);
    if (!err)
        err =
            get_kvs(ctx, root, "groupLabels", "", false, &batch->group_labels);
    if (!err)
        err = get_kvs(ctx, root, "commonLabels", "", false,
                      &batch->common_labels);
    if (!err)
        err = get_kvs(ctx, root, "commonAnnotations", "", false,
                      &batch->common_annotations);
    if (!err)
        err =
            get_opt_string(ctx, root, "externalURL", "", &batch->external_url);
    if (!err)
        err = get_opt_string(ctx, root, "groupKey", "", &batch->group_key);
    if (!err && json_object_object_get_ex(root, "truncatedAlerts", &v) && v) {
        if (!json_object_is_type(v, json_type_int))
            err = parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                             "truncatedAlerts: expected an integer, got %s",
                             json_type_label(v));
        else
            batch->truncated_alerts = json_object_get_int(v);
    }
    if (err)
        return err;
    batch->alerts = calloc(n, sizeof(*batch->alerts));
    if (!batch->alerts)
        return HERALD_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        json_object *item = json_object_array_get_idx(arr, i);
        char path[48];

        snprintf(path, sizeof(path), "alerts[%zu].", i);
        batch->n = i + 1;
        if (!item || !json_object_is_type(item, json_type_object))
            return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                              "alerts[%zu]: expected an object, got %s", i,
                              json_type_label(item));
        err = parse_am_alert(ctx, item, path, &batch->alerts[i]);
        if (!err)
            err = copy_group(batch, &batch->alerts[i]);
        if (!err)
            err = set_raw(&batch->alerts[i], item);
        if (err)
            return err;
    }
    return HERALD_OK;
}

static herald_err parse_root(parse_ctx *ctx, json_object *root,
                             const alert_limits *lim, alert_batch *batch)
{
    json_object *v;
    herald_err err;

    if (!json_object_is_type(root, json_type_object))
        return parse_fail(ctx, ALERT_REASON_WRONG_TYPE,
                          "message: expected a JSON object, got %s",
                          json_type_label(root));
    if (json_object_object_get_ex(root, "alerts", &v))
        return parse_webhook(ctx, root, lim, batch);
    batch->alerts = calloc(1, sizeof(*batch->alerts));
    if (!batch->alerts)
        return HERALD_ERR_NOMEM;
    batch->n = 1;
    if (json_object_object_get_ex(root, "alert", &v)) {
        batch->form = 3;
        err = parse_enriched(ctx, root, &batch->alerts[0]);
        if (!err)
            err = set_raw(&batch->alerts[0], v);
    } else if (json_object_object_get_ex(root, "labels", &v)) {
        batch->form = 2;
        err = parse_am_alert(ctx, root, "", &batch->alerts[0]);
        if (!err)
            err = set_raw(&batch->alerts[0], root);
    } else {
        err = parse_fail(ctx, ALERT_REASON_NO_ALERTS,
                         "message: no alerts: expected \"alerts\" (an "
                         "Alertmanager payload), \"labels\" (one alert) or "
                         "\"alert\" (an enriched alert)");
    }
    if (!err)
        batch->status = batch->alerts[0].status;
    return err;
}

herald_err alert_batch_parse(const char *data, size_t len,
                             const alert_limits *lim_in, alert_batch *out,
                             alert_reason *reason, char *errstr,
                             size_t errstr_size)
{
    alert_limits lim;
    parse_ctx ctx = {errstr, errstr_size, ALERT_REASON_NONE};
    json_tokener *tok = NULL;
    json_object *root = NULL;
    enum json_tokener_error jerr;
    bool consumed_all = false;
    herald_err err;

    memset(out, 0, sizeof(*out));
    if (errstr && errstr_size)
        errstr[0] = '\0';
    if (lim_in)
        lim = *lim_in;
    else
        alert_limits_default(&lim);
    if (!data) {
        err = parse_fail(&ctx, ALERT_REASON_NULL_VALUE,
                         "message: the value is null (a tombstone), "
                         "expected a JSON alert");
        goto done;
    }
    if (len > lim.max_bytes) {
        err = parse_fail(&ctx, ALERT_REASON_OVERSIZE,
                         "message: %zu bytes, more than the limit of %zu", len,
                         lim.max_bytes);
        goto done;
    }
    if (len > (size_t)INT32_MAX) {
        err = parse_fail(&ctx, ALERT_REASON_OVERSIZE, "message: too large");
        goto done;
    }
    /* json-c counts the top-level value as depth 1. */
    tok = json_tokener_new_ex(lim.max_depth + 1);
    if (!tok) {
        err = HERALD_ERR_NOMEM;
        goto done;
    }
    json_tokener_set_flags(tok,
                           JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, data, (int)len);
    jerr = json_tokener_get_error(tok);
    if (jerr == json_tokener_continue && len > 0) {
        consumed_all = true;
        /* A bare literal or number at the very end ("null", "42") is only
         * complete once the tokener sees the end: feed the terminator. */
        root = json_tokener_parse_ex(tok, "", 1);
        jerr = json_tokener_get_error(tok);
        if (jerr != json_tokener_success)
            jerr = json_tokener_continue;
    }
    if (jerr == json_tokener_continue || (len == 0 && !root)) {
        err = parse_fail(
            &ctx, len == 0 ? ALERT_REASON_NOT_JSON : ALERT_REASON_TRUNCATED,
            "message: %s JSON at byte %zu", len == 0 ? "empty" : "truncated",
            len);
        goto done;
    }
    if (jerr != json_tokener_success) {
        size_t at = json_tokener_get_parse_end(tok);
        alert_reason r = ALERT_REASON_NOT_JSON;

        if (jerr == json_tokener_error_depth)
            r = ALERT_REASON_TOO_DEEP;
        else if (jerr == json_tokener_error_parse_utf8_string)
            r = ALERT_REASON_NOT_UTF8;
        err = parse_fail(&ctx, r, "message: %s at byte %zu%s",
                         json_tokener_error_desc(jerr), at,
                         r == ALERT_REASON_TOO_DEEP ? " (nesting limit)" : "");
        goto done;
    }
    if (!consumed_all && json_tokener_get_parse_end(tok) < len) {
        size_t at = json_tokener_get_parse_end(tok);

        while (at < len && (data[at] == ' ' || data[at] == '\n' ||
                            data[at] == '\r' || data[at] == '\t'))
            at++;
        if (at < len) {
            err = parse_fail(&ctx, ALERT_REASON_NOT_JSON,
                             "message: unexpected data after the JSON "
                             "value at byte %zu",
                             at);
            goto done;
        }
    }
    if (!root) {
        err = parse_fail(&ctx, ALERT_REASON_NULL_VALUE,
                         "message: the JSON value is null, expected an "
                         "object");
        goto done;
    }
    err = parse_root(&ctx, root, &lim, out);
done:
    if (err) {
        alert_batch_free(out);
        if (ctx.reason == ALERT_REASON_NONE)
            ctx.reason = ALERT_REASON_WRONG_TYPE;
        if (err == HERALD_ERR_NOMEM && errstr && errstr_size)
            snprintf(errstr, errstr_size, "message: out of memory");
    }
    if (reason)
        *reason = err ? ctx.reason : ALERT_REASON_NONE;
    json_object_put(root);
    if (tok)
        json_tokener_free(tok);
    return err;
}

void alert_batch_free(alert_batch *batch)
{
    if (!batch)
        return;
    for (size_t i = 0; i < batch->n; i++)
        alert_free(&batch->alerts[i]);
    free(batch->alerts);
    free(batch->receiver);
    alert_kvs_free(&batch->group_labels);
    alert_kvs_free(&batch->common_labels);
    alert_kvs_free(&batch->common_annotations);
    free(batch->external_url);
    free(batch->group_key);
    memset(batch, 0, sizeof(*batch));
}
