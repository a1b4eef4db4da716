/*
 * target.c: the parts of the target model shared by every plugin: HTTP
 * request values, the configured headers and authentication, the default
 * classification of a delivery attempt, and label matching.
 *
 * Data flow: a dispatcher thread asks a plugin to build an http_request for
 * (alert, target), then target_request_apply_common() adds the target's
 * configured headers and auth; the transport sends it and the completion
 * path calls target_classify() on the response, which yields exactly one of
 * delivered, retry later or give up (STYLE.md rule 8).
 *
 * Threads: every function here is pure or works on caller-owned values;
 * targets are immutable, so any thread may call them.
 */
#include "publishers/target.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "publishers/backoff.h"
#include "publishers/matchers.h"
#include "publishers/target_int.h"

void http_request_init(http_request *req, size_t max_body)
{
    memset(req, 0, sizeof(*req));
    snprintf(req->method, sizeof(req->method), "POST");
    buf_init(&req->body, max_body);
}

void http_request_free(http_request *req)
{
    if (!req)
        return;
    free(req->url);
    req->url = NULL;
    for (size_t i = 0; i < req->n_headers; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    req->headers = NULL;
    req->n_headers = 0;
    buf_free(&req->body);
}

/* Adds or, when a header of that name exists, replaces its value. */
static herald_err request_set_header(http_request *req, const char *name,
                                     const char *value, bool secret,
                                     bool replace)
{
    target_header *grown;
    char *n = NULL;
    char *v = NULL;

    if (replace) {
        for (size_t i = 0; i < req->n_headers; i++) {
            if (strcasecmp(req->headers[i].name, name) != 0)
                continue;
            v = strdup(value);
            if (!v)
                return HERALD_ERR_NOMEM;
            free(req->headers[i].value);
            req->headers[i].value = v;
            req->headers[i].secret = secret;
            return HERALD_OK;
        }
    }
    n = strdup(name);
    v = strdup(value);
    grown = realloc(req->headers, (req->n_headers + 1) * sizeof(*grown));
    if (!n || !v || !grown) {
        free(n);
        free(v);
        if (grown)
            req->headers = grown;
        return HERALD_ERR_NOMEM;
    }
    req->headers = grown;
    req->headers[req->n_headers].name = n;
    req->headers[req->n_headers].value = v;
    req->headers[req->n_headers].secret = secret;
    req->n_headers++;
    return HERALD_OK;
}

herald_err http_request_add_header(http_request *req, const char *name,
                                   const char *value)
{
    return request_set_header(req, name, value, false, false);
}

/* RFC 4648 section 4 base64 with padding, for HTTP Basic (RFC 7617). */
static herald_err base64_append(buf *out, const char *in, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *p = (const unsigned char *)in;
    herald_err err = HERALD_OK;
    size_t i;

    for (i = 0; !err && i + 2 < n; i += 3) {
        char q[4] = {tbl[p[i] >> 2], tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                     tbl[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)],
                     tbl[p[i + 2] & 63]};
        err = buf_append(out, q, 4);
    }
    if (!err && n - i == 1) {
        char q[4] = {tbl[p[i] >> 2], tbl[(p[i] & 3) << 4], '=', '='};
        err = buf_append(out, q, 4);
    } else if (!err && n - i == 2) {
        char q[4] = {tbl[p[i] >> 2], tbl[((p[i] & 3) << 4) | (p[i + 1] >> 4)],
                     tbl[(p[i + 1] & 15) << 2], '='};
        err = buf_append(out, q, 4);
    }
    return err;
}

herald_err target_request_apply_common(const target *tgt, http_request *req)
{
    const target_auth *auth = &tgt->auth;
    herald_err err = HERALD_OK;
    buf b;

    for (size_t i = 0; !err && i < tgt->n_headers; i++)
        err =
            request_set_header(req, tgt->headers[i].name, tgt->headers[i].value,
                               tgt->headers[i].secret, true);
    if (err)
        return err;
    /* 64 KiB is far above any real token; it only bounds the buffer. */
    buf_init(&b, 65536);
    switch (auth->kind) {
    case TARGET_AUTH_NONE: break;
    case TARGET_AUTH_BEARER:
        err = buf_appendf(&b, "Bearer %s", auth->token ? auth->token : "");
        if (!err)
            err = request_set_header(req, "Authorization", buf_str(&b), true,
                                     true);
        break;
    case TARGET_AUTH_BASIC: {
        buf cred;

        buf_init(&cred, 65536);
        err = buf_appendf(&cred, "%s:%s", auth->username ? auth->username : "",
                          auth->password ? auth->password : "");
        if (!err)
            err = buf_append_str(&b, "Basic ");
        if (!err)
            err = base64_append(&b, buf_str(&cred), cred.len);
        buf_free(&cred);
        if (!err)
            err = request_set_header(req, "Authorization", buf_str(&b), true,
                                     true);
        break;
    }
    case TARGET_AUTH_HEADER:
        if (auth->header_name)
            err = request_set_header(
                req, auth->header_name,
                auth->header_value ? auth->header_value : "", true, true);
        break;
    }
    buf_free(&b);
    return err;
}

static void outcome_set(delivery_outcome *out, delivery_verdict verdict,
                        const char *error_type, const char *fmt,
                        const char *detail, long status)
{
    out->verdict = verdict;
    out->error_type = error_type;
    if (fmt)
        snprintf(out->error, sizeof(out->error), fmt, status,
                 detail ? detail : "");
    else
        out->error[0] = '\0';
}

/* Copies the first line of a response body into a short, printable text. */
static void body_excerpt(const http_response *resp, char *dst, size_t n)
{
    size_t j = 0;

    if (!resp->body || n == 0) {
        if (n)
            dst[0] = '\0';
        return;
    }
    for (size_t i = 0; i < resp->body_len && j + 1 < n && j < 120; i++) {
        unsigned char c = (unsigned char)resp->body[i];

        if (c == '\n' || c == '\r')
            break;
        dst[j++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    dst[j] = '\0';
}

void target_classify_default(const http_response *resp, delivery_outcome *out)
{
    char excerpt[128];
    long st = resp->status;

    out->retry_after_ms = -1;
    if (resp->transport_error != 0 || st == 0) {
        const char *type = "connect";

        switch (resp->transport_error) {
        case CURLE_OPERATION_TIMEDOUT: type = "timeout"; break;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY: type = "dns"; break;
        case CURLE_COULDNT_CONNECT: type = "connect"; break;
        default: type = resp->transport_error ? "other" : "connect"; break;
        }
        out->verdict = DELIVERY_RETRY;
        out->error_type = type;
        snprintf(out->error, sizeof(out->error), "transport error %d: %s",
                 resp->transport_error,
                 resp->error ? resp->error : "no response");
        return;
    }
    body_excerpt(resp, excerpt, sizeof(excerpt));
    if (st >= 200 && st < 300) {
        outcome_set(out, DELIVERY_DELIVERED, NULL, NULL, NULL, st);
        return;
    }
    if (st == 408 || st == 429 || (st >= 500 && st < 600)) {
        outcome_set(out, DELIVERY_RETRY,
                    st == 429   ? "rate_limited"
                    : st == 408 ? "http_4xx"
                                : "http_5xx",
                    "HTTP %ld: %s", excerpt, st);
        if (resp->retry_after) {
            int64_t ms =
                backoff_parse_retry_after(resp->retry_after, time(NULL));

            if (ms >= 0)
                out->retry_after_ms = (int)ms;
        }
        return;
    }
    outcome_set(out, DELIVERY_GIVE_UP,
                (st >= 400 && st < 500) ? "http_4xx" : "other", "HTTP %ld: %s",
                excerpt, st);
}

void target_classify(const target *tgt, const http_response *resp,
                     delivery_outcome *out)
{
    if (tgt && tgt->plugin && tgt->plugin->classify)
        tgt->plugin->classify(tgt, resp, out);
    else
        target_classify_default(resp, out);
}

bool target_matches(const target *tgt, const alert *a)
{
    return matchers_match_all(tgt->matchers, tgt->n_matchers, &a->labels);
}

/* ------------------------------------------------------------------ */
/* Helpers for plugins (target_int.h)                                  */
/* ------------------------------------------------------------------ */

json_object *target_kvs_json(const alert_kvs *kvs)
{
    json_object *o = json_object_new_object();

    for (size_t i = 0; o && kvs && i < kvs->n; i++) {
        json_object *v = json_object_new_string(kvs->items[i].value);

        if (!v || json_object_object_add(o, kvs->items[i].name, v)) {
            json_object_put(v);
            json_object_put(o);
            return NULL;
        }
    }
    return o;
}

herald_err target_body_json(http_request *req, json_object *obj,
                            const char *content_type)
{
    const char *s;
    herald_err err;

    s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                                JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return HERALD_ERR_NOMEM;
    buf_reset(&req->body);
    err = buf_append_str(&req->body, s);
    if (err)
        return err;
    return request_set_header(req, "Content-Type", content_type, false, true);
}

herald_err target_request_set_url(http_request *req, const char *base,
                                  const char *suffix)
{
    size_t n = strlen(base);
    buf b;

    while (n > 0 && base[n - 1] == '/' && suffix && *suffix == '/')
        n--;
    buf_init(&b, n + strlen(suffix ? suffix : "") + 1);
    if (buf_append(&b, base, n) || buf_append_str(&b, suffix ? suffix : "")) {
        buf_free(&b);
        return HERALD_ERR_NOMEM;
    }
    free(req->url);
    req->url = buf_steal(&b);
    return req->url ? HERALD_OK : HERALD_ERR_NOMEM;
}

size_t target_utf8_cut(const char *s, size_t max)
{
    size_t n = strlen(s);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

json_object *target_json_string_cut(const char *s, size_t max)
{
    size_t n = strlen(s);
    json_object *o;
    char *tmp;

    if (n <= max)
        return json_object_new_string(s);
    n = target_utf8_cut(s, max >= 3 ? max - 3 : 0);
    tmp = malloc(n + 4);
    if (!tmp)
        return NULL;
    memcpy(tmp, s, n);
    memcpy(tmp + n, "...", 4);
    o = json_object_new_string(tmp);
    free(tmp);
    return o;
}
