/*
 * webhook.c: the generic webhook target type.
 *
 * Follows the Alertmanager webhook receiver format, version 4
 * (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config):
 * the body is {receiver, status, alerts[], groupLabels, commonLabels,
 * commonAnnotations, externalURL, version: "4", groupKey, truncatedAlerts},
 * each alert {status, labels, annotations, startsAt, endsAt, generatorURL,
 * fingerprint}. herald delivers one alert per request, so alerts[] holds
 * exactly that alert, commonLabels/commonAnnotations are its own labels and
 * annotations, and groupLabels is empty unless the job came from an
 * Alertmanager payload (then receiver, externalURL and groupKey are copied
 * from it). `format: raw` sends the alert object exactly as it was received
 * (alert.raw_json) instead.
 *
 * Every request carries an Idempotency-Key header (the header name of the
 * IETF httpapi "Idempotency-Key" draft) that is the same for every attempt
 * and every replica delivering the same (fingerprint, status, startsAt,
 * target): 16 hex digits of FNV-1a 64 over those four strings, each followed
 * by a NUL byte. Receivers can use it to drop duplicates of at-least-once
 * delivery.
 *
 * Classification: the default rules (target_classify_default).
 * Threads: pure functions of (target, alert); any thread.
 */
#include "publishers/webhook/webhook.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "publishers/target_int.h"

/* The zero time Alertmanager writes for an unset endsAt. */
#define AM_ZERO_TIME "0001-01-01T00:00:00Z"

typedef struct webhook_config {
    char *format;   /* "alertmanager" or "raw". */
    char *receiver; /* Receiver name in the body, or NULL. */
} webhook_config;

static const char *const webhook_formats[] = {"alertmanager", "raw", NULL};

static const target_key webhook_keys[] = {
    {"format", TARGET_KEY_ENUM, offsetof(webhook_config, format),
     "alertmanager", webhook_formats, false,
     "alertmanager (webhook v4 body) or raw (the alert as received)."},
    {"receiver", TARGET_KEY_STRING, offsetof(webhook_config, receiver), NULL,
     NULL, false,
     "Receiver name in the body; default the payload's receiver, else the "
     "target name."},
    {NULL, 0, 0, NULL, NULL, false, NULL}};

static herald_err webhook_config_finish(target *tgt, char *errstr,
                                        size_t errstr_size)
{
    if (!tgt->url) {
        snprintf(errstr, errstr_size,
                 "url: missing required key for type "
                 "webhook");
        return HERALD_ERR_CONFIG;
    }
    return HERALD_OK;
}

/* FNV-1a 64 of the (fingerprint, status, startsAt, target) tuple. */
static void webhook_idempotency_key(const target *tgt, const alert *a,
                                    char out[17])
{
    const char *parts[4] = {a->fingerprint, alert_status_name(a->status),
                            a->starts_at ? a->starts_at : "", tgt->name};
    uint64_t h = 14695981039346656037ULL;

    for (int i = 0; i < 4; i++) {
        for (const unsigned char *p = (const unsigned char *)parts[i]; *p;
             p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
        /* The NUL separator byte: XOR with 0, then multiply. */
        h *= 1099511628211ULL;
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

static json_object *str_or(const char *s, const char *def)
{
    return json_object_new_string(s ? s : def);
}

static json_object *webhook_body(const target *tgt, const alert *a)
{
    const webhook_config *cfg = tgt->type_config;
    const char *status = alert_status_name(a->status);
    json_object *root = json_object_new_object();
    json_object *alerts = json_object_new_array();
    json_object *one = json_object_new_object();
    char group_key[64];

    if (!root || !alerts || !one) {
        json_object_put(root);
        json_object_put(alerts);
        json_object_put(one);
        return NULL;
    }
    json_object_object_add(one, "status", json_object_new_string(status));
    json_object_object_add(one, "labels", target_kvs_json(&a->labels));
    json_object_object_add(one, "annotations",
                           target_kvs_json(&a->annotations));
    json_object_object_add(one, "startsAt", str_or(a->starts_at, AM_ZERO_TIME));
    json_object_object_add(one, "endsAt", str_or(a->ends_at, AM_ZERO_TIME));
    json_object_object_add(one, "generatorURL", str_or(a->generator_url, ""));
    json_object_object_add(one, "fingerprint",
                           json_object_new_string(a->fingerprint));
    json_object_array_add(alerts, one);

    /* Without a group from Alertmanager, the alert is its own group. */
    snprintf(group_key, sizeof(group_key), "{}:{fingerprint=\"%s\"}",
             a->fingerprint);
    json_object_object_add(root, "receiver",
                           json_object_new_string(cfg->receiver ? cfg->receiver
                                                  : a->receiver ? a->receiver
                                                                : tgt->name));
    json_object_object_add(root, "status", json_object_new_string(status));
    json_object_object_add(root, "alerts", alerts);
    json_object_object_add(root, "groupLabels", json_object_new_object());
    json_object_object_add(root, "commonLabels", target_kvs_json(&a->labels));
    json_object_object_add(root, "commonAnnotations",
                           target_kvs_json(&a->annotations));
    json_object_object_add(root, "externalURL", str_or(a->external_url, ""));
    json_object_object_add(root, "version", json_object_new_string("4"));
    json_object_object_add(root, "groupKey", str_or(a->group_key, group_key));
    json_object_object_add(root, "truncatedAlerts", json_object_new_int(0));
    return root;
}

static herald_err webhook_build_request(const target *tgt, const alert *a,
                                        http_request *req, char *errstr,
                                        size_t errstr_size)
{
    const webhook_config *cfg = tgt->type_config;
    char key[17];
    herald_err err;

    err = target_request_set_url(req, tgt->url, "");
    if (err)
        return err;
    snprintf(req->method, sizeof(req->method), "POST");
    if (strcmp(cfg->format, "raw") == 0) {
        if (!a->raw_json) {
            snprintf(errstr, errstr_size, "the alert has no raw form");
            return HERALD_ERR_INVALID;
        }
        buf_reset(&req->body);
        err = buf_append_str(&req->body, a->raw_json);
        if (!err)
            err = http_request_add_header(req, "Content-Type",
                                          "application/json");
    } else {
        json_object *body = webhook_body(tgt, a);

        if (!body)
            return HERALD_ERR_NOMEM;
        err = target_body_json(req, body, "application/json");
        json_object_put(body);
    }
    if (err == HERALD_ERR_TOO_LARGE)
        snprintf(errstr, errstr_size, "the webhook body exceeds %zu bytes",
                 req->body.max);
    if (err)
        return err;
    webhook_idempotency_key(tgt, a, key);
    err = http_request_add_header(req, "Idempotency-Key", key);
    if (!err)
        err = target_request_apply_common(tgt, req);
    return err;
}

const target_plugin webhook_plugin = {
    .name = "webhook",
    .keys = webhook_keys,
    .config_size = sizeof(webhook_config),
    .config_finish = webhook_config_finish,
    .config_free = NULL,
    .build_request = webhook_build_request,
    .classify = NULL,
};
