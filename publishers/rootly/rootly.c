/*
 * rootly.c: the Rootly target type, Rootly API v1 alerts (JSON:API).
 *
 * Follows Rootly's API reference, "Creates an alert"
 * (https://docs.rootly.com/api-reference/alerts/creates-an-alert) and
 * "Alert Deduplication" (https://docs.rootly.com/alerts/alert-deduplication):
 * POST <base>/v1/alerts with Content-Type application/vnd.api+json and
 * Authorization: Bearer <token>, body
 *   {"data": {"type": "alerts", "attributes": {source, summary,
 *    description, status, started_at, ended_at, external_id, external_url,
 *    deduplication_key, labels: [{key, value}], data: {...},
 *    notification_target_type, notification_target_id, alert_urgency_id}}}
 *
 * Resolving statelessly. Rootly's "Resolves an alert" endpoint
 * (POST /v1/alerts/{id}/resolve) needs Rootly's alert id, which only the
 * replica that created the alert saw in its answer; keeping an id cache
 * would break as soon as another replica (or a restarted one) handles the
 * resolved message. Instead every event, firing or resolved, is a create
 * call carrying deduplication_key = external_id = the alert fingerprint:
 * Rootly collapses events with the same deduplication key onto the open
 * alert, and an event with status "resolved" (and ended_at) resolves it.
 * Any replica can therefore resolve what another created, and a retried
 * create is absorbed by deduplication instead of paging twice.
 *
 * Status on firing is "open" (Rootly's routing moves it to "triggered"
 * when a rule assigns a notification target), or "triggered" when
 * notification_target_type and _id are configured on the target.
 *
 * Classification: the default rules (Rootly answers 201 Created; 401, 403,
 * 404 and 422 validation errors give up; 429 and 5xx retry).
 *
 * Threads: pure functions of (target, alert); any thread.
 */
#include "publishers/rootly/rootly.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/target_int.h"

#define ROOTLY_DEFAULT_BASE "https://api.rootly.com"
#define ROOTLY_MEDIA_TYPE "application/vnd.api+json"
/* Cut of summary and description: readable, and far from any body cap. */
#define ROOTLY_TEXT_MAX 8192

typedef struct rootly_config {
    char *token;
    char *source;
    char *notification_target_type;
    char *notification_target_id;
    char *alert_urgency_id;
} rootly_config;

static const target_key rootly_keys[] = {
    {"token", TARGET_KEY_SECRET, offsetof(rootly_config, token), NULL, NULL,
     true, "Rootly API key, sent as a bearer token."},
    {"source", TARGET_KEY_STRING, offsetof(rootly_config, source), "rootly",
     NULL, false, "Alert source attribute (a value of Rootly's source enum)."},
    {"notification_target_type", TARGET_KEY_STRING,
     offsetof(rootly_config, notification_target_type), NULL, NULL, false,
     "Who to page, e.g. User, Group, EscalationPolicy, Service."},
    {"notification_target_id", TARGET_KEY_STRING,
     offsetof(rootly_config, notification_target_id), NULL, NULL, false,
     "Id of the notification target."},
    {"alert_urgency_id", TARGET_KEY_STRING,
     offsetof(rootly_config, alert_urgency_id), NULL, NULL, false,
     "Id of the alert urgency."},
    {NULL, 0, 0, NULL, NULL, false, NULL}};

static herald_err rootly_config_finish(target *tgt, char *errstr,
                                       size_t errstr_size)
{
    const rootly_config *cfg = tgt->type_config;

    if (!cfg->notification_target_type != !cfg->notification_target_id) {
        snprintf(errstr, errstr_size,
                 "notification_target_type and notification_target_id must "
                 "be set together");
        return HERALD_ERR_CONFIG;
    }
    if (!tgt->url) {
        tgt->url = strdup(ROOTLY_DEFAULT_BASE);
        if (!tgt->url)
            return HERALD_ERR_NOMEM;
    }
    return HERALD_OK;
}

static void add_str(json_object *obj, const char *key, const char *v)
{
    if (v && *v)
        json_object_object_add(obj, key, json_object_new_string(v));
}

static json_object *rootly_body(const target *tgt, const alert *a)
{
    const rootly_config *cfg = tgt->type_config;
    const char *name = alert_kvs_get(&a->labels, "alertname");
    const char *summary = alert_kvs_get(&a->annotations, "summary");
    const char *desc = alert_kvs_get(&a->annotations, "description");
    json_object *root = json_object_new_object();
    json_object *data = json_object_new_object();
    json_object *attrs = json_object_new_object();
    json_object *labels = json_object_new_array();
    json_object *extra = json_object_new_object();
    bool resolved = a->status == ALERT_STATUS_RESOLVED;
    char title[1200];

    if (!root || !data || !attrs || !labels || !extra) {
        json_object_put(root);
        json_object_put(data);
        json_object_put(attrs);
        json_object_put(labels);
        json_object_put(extra);
        return NULL;
    }
    if (name && summary)
        snprintf(title, sizeof(title), "%.500s: %.600s", name, summary);
    else if (name || summary)
        snprintf(title, sizeof(title), "%.1100s", name ? name : summary);
    else
        snprintf(title, sizeof(title), "alert %s", a->fingerprint);

    json_object_object_add(attrs, "source",
                           json_object_new_string(cfg->source));
    json_object_object_add(attrs, "summary",
                           target_json_string_cut(title, ROOTLY_TEXT_MAX));
    if (desc)
        json_object_object_add(attrs, "description",
                               target_json_string_cut(desc, ROOTLY_TEXT_MAX));
    json_object_object_add(attrs, "status",
                           json_object_new_string(resolved ? "resolved"
                                                  : cfg->notification_target_id
                                                      ? "triggered"
                                                      : "open"));
    add_str(attrs, "started_at", a->starts_at);
    if (resolved)
        add_str(attrs, "ended_at", a->ends_at);
    json_object_object_add(attrs, "external_id",
                           json_object_new_string(a->fingerprint));
    add_str(attrs, "external_url", a->generator_url);
    json_object_object_add(attrs, "deduplication_key",
                           json_object_new_string(a->fingerprint));
    for (size_t i = 0; i < a->labels.n; i++) {
        json_object *kv = json_object_new_object();

        json_object_object_add(kv, "key",
                               json_object_new_string(a->labels.items[i].name));
        json_object_object_add(
            kv, "value", json_object_new_string(a->labels.items[i].value));
        json_object_array_add(labels, kv);
    }
    json_object_object_add(attrs, "labels", labels);
    json_object_object_add(extra, "fingerprint",
                           json_object_new_string(a->fingerprint));
    json_object_object_add(
        extra, "status", json_object_new_string(alert_status_name(a->status)));
    json_object_object_add(extra, "labels", target_kvs_json(&a->labels));
    json_object_object_add(extra, "annotations",
                           target_kvs_json(&a->annotations));
    json_object_object_add(attrs, "data", extra);
    add_str(attrs, "notification_target_type", cfg->notification_target_type);
    add_str(attrs, "notification_target_id", cfg->notification_target_id);
    add_str(attrs, "alert_urgency_id", cfg->alert_urgency_id);
    json_object_object_add(data, "type", json_object_new_string("alerts"));
    json_object_object_add(data, "attributes", attrs);
    json_object_object_add(root, "data", data);
    return root;
}

static herald_err rootly_build_request(const target *tgt, const alert *a,
                                       http_request *req, char *errstr,
                                       size_t errstr_size)
{
    const rootly_config *cfg = tgt->type_config;
    json_object *body;
    herald_err err;
    buf auth;

    err = target_request_set_url(req, tgt->url, "/v1/alerts");
    if (err)
        return err;
    snprintf(req->method, sizeof(req->method), "POST");
    body = rootly_body(tgt, a);
    if (!body)
        return HERALD_ERR_NOMEM;
    err = target_body_json(req, body, ROOTLY_MEDIA_TYPE);
    json_object_put(body);
    if (err == HERALD_ERR_TOO_LARGE)
        snprintf(errstr, errstr_size, "the rootly body exceeds %zu bytes",
                 req->body.max);
    if (err)
        return err;
    err = http_request_add_header(req, "Accept", ROOTLY_MEDIA_TYPE);
    buf_init(&auth, 65536);
    if (!err)
        err = buf_appendf(&auth, "Bearer %s", cfg->token ? cfg->token : "");
    if (!err)
        err = http_request_add_header(req, "Authorization", buf_str(&auth));
    buf_free(&auth);
    if (!err)
        err = target_request_apply_common(tgt, req);
    return err;
}

const target_plugin rootly_plugin = {
    .name = "rootly",
    .keys = rootly_keys,
    .config_size = sizeof(rootly_config),
    .config_finish = rootly_config_finish,
    .config_free = NULL,
    .build_request = rootly_build_request,
    .classify = NULL, /* The default rules match Rootly's answers. */
};
