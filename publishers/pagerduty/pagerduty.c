/*
 * pagerduty.c: the PagerDuty target type, PagerDuty Events API v2.
 *
 * Follows PagerDuty's "Events API v2 Overview" and "Send an Alert Event"
 * (https://developer.pagerduty.com/docs/events-api-v2/overview/,
 * https://developer.pagerduty.com/api-reference/368ae3d938c9e-send-an-event-to-pager-duty):
 * POST <base>/v2/enqueue, Content-Type application/json, body
 *   {routing_key, event_action: "trigger", dedup_key,
 *    payload: {summary, source, severity, timestamp, component, group,
 *              class, custom_details}, links: [{href, text}]}
 * for a firing alert, and {routing_key, event_action: "resolve", dedup_key}
 * for a resolved one (resolve events need no payload). dedup_key is the
 * alert fingerprint, so whichever replica delivers the resolve closes the
 * incident another replica triggered, with no state kept here.
 *
 * payload.summary is at most 1024 characters (PagerDuty's limit);
 * severity is one of critical, error, warning, info, taken from the alert
 * severity (classification, else the severity label) through severity_map,
 * then the built-in mapping (critical, error/high, warning, info), then
 * default_severity. The whole event must stay under 512 KB, PagerDuty's
 * event size limit: when it does not, annotation values are cut, then
 * annotations and finally labels are left out of custom_details; the send
 * never fails for size.
 *
 * Classification: the default rules, which match PagerDuty's answers:
 * 202 Accepted delivers, 400 Bad Request (invalid event) gives up, 429 Too
 * Many Requests and 5xx retry.
 *
 * Threads: pure functions of (target, alert); any thread.
 */
#include "publishers/pagerduty/pagerduty.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "publishers/target_int.h"

#define PD_DEFAULT_BASE "https://events.pagerduty.com"
/* PagerDuty rejects events larger than 512 KB; keep 1 KiB of margin. */
#define PD_MAX_EVENT_BYTES (512 * 1024 - 1024)
/* Length of payload.summary accepted by PagerDuty. */
#define PD_SUMMARY_MAX 1024
/* First truncation step: each annotation value cut to this many bytes. */
#define PD_ANNOTATION_CUT 1024

typedef struct pagerduty_config {
    char *routing_key;
    alert_kvs severity_map; /* Alert severity -> PagerDuty severity. */
    char *default_severity;
    char *source;          /* Fallback source. */
    char *source_label;    /* Label giving payload.source. */
    char *component_label; /* Label giving payload.component. */
    char *group_label;     /* Label giving payload.group. */
    char *class_label;     /* Label giving payload.class. */
} pagerduty_config;

static const char *const pd_severities[] = {"critical", "error", "warning",
                                            "info", NULL};

static const target_key pagerduty_keys[] = {
    {"routing_key", TARGET_KEY_SECRET, offsetof(pagerduty_config, routing_key),
     NULL, NULL, true,
     "Integration key of the PagerDuty service (Events API v2)."},
    {"severity_map", TARGET_KEY_MAP, offsetof(pagerduty_config, severity_map),
     NULL, NULL, false,
     "Alert severity -> critical|error|warning|info, before the built-in "
     "mapping."},
    {"default_severity", TARGET_KEY_ENUM,
     offsetof(pagerduty_config, default_severity), "error", pd_severities,
     false, "Severity when the alert's severity maps to nothing."},
    {"source", TARGET_KEY_STRING, offsetof(pagerduty_config, source), "herald",
     NULL, false, "payload.source when the source_label is missing."},
    {"source_label", TARGET_KEY_STRING,
     offsetof(pagerduty_config, source_label), "instance", NULL, false,
     "Label copied to payload.source."},
    {"component_label", TARGET_KEY_STRING,
     offsetof(pagerduty_config, component_label), "service", NULL, false,
     "Label copied to payload.component."},
    {"group_label", TARGET_KEY_STRING, offsetof(pagerduty_config, group_label),
     "cluster", NULL, false, "Label copied to payload.group."},
    {"class_label", TARGET_KEY_STRING, offsetof(pagerduty_config, class_label),
     "alertname", NULL, false, "Label copied to payload.class."},
    {NULL, 0, 0, NULL, NULL, false, NULL}};

static bool pd_severity_ok(const char *s)
{
    for (int i = 0; pd_severities[i]; i++)
        if (strcmp(pd_severities[i], s) == 0)
            return true;
    return false;
}

static herald_err pagerduty_config_finish(target *tgt, char *errstr,
                                          size_t errstr_size)
{
    const pagerduty_config *cfg = tgt->type_config;

    for (size_t i = 0; i < cfg->severity_map.n; i++) {
        if (!pd_severity_ok(cfg->severity_map.items[i].value)) {
            snprintf(errstr, errstr_size,
                     "severity_map.%s: expected one of critical, error, "
                     "warning, info, got \"%s\"",
                     cfg->severity_map.items[i].name,
                     cfg->severity_map.items[i].value);
            return HERALD_ERR_CONFIG;
        }
    }
    if (!tgt->url) {
        tgt->url = strdup(PD_DEFAULT_BASE);
        if (!tgt->url)
            return HERALD_ERR_NOMEM;
    }
    return HERALD_OK;
}

/* The PagerDuty severity of an alert (see top of file). */
static const char *pd_severity(const pagerduty_config *cfg, const alert *a)
{
    const char *sev = alert_severity(a);

    if (sev) {
        for (size_t i = 0; i < cfg->severity_map.n; i++)
            if (strcasecmp(cfg->severity_map.items[i].name, sev) == 0)
                return cfg->severity_map.items[i].value;
        if (strcasecmp(sev, "critical") == 0)
            return "critical";
        if (strcasecmp(sev, "error") == 0 || strcasecmp(sev, "high") == 0)
            return "error";
        if (strcasecmp(sev, "warning") == 0)
            return "warning";
        if (strcasecmp(sev, "info") == 0)
            return "info";
    }
    return cfg->default_severity;
}

static void add_label_field(json_object *obj, const char *key, const alert *a,
                            const char *label)
{
    const char *v = label ? alert_kvs_get(&a->labels, label) : NULL;

    if (v && *v)
        json_object_object_add(obj, key, json_object_new_string(v));
}

static void add_link(json_object *links, const char *href, const char *text)
{
    json_object *l;

    if (!href || !*href)
        return;
    l = json_object_new_object();
    json_object_object_add(l, "href", json_object_new_string(href));
    json_object_object_add(l, "text", json_object_new_string(text));
    json_object_array_add(links, l);
}

/* The summary text: "<alertname>: <summary>" or whichever exists. */
static json_object *pd_summary(const alert *a)
{
    const char *name = alert_kvs_get(&a->labels, "alertname");
    const char *what = alert_kvs_get(&a->annotations, "summary");
    json_object *o;
    buf b;

    if (!what)
        what = alert_kvs_get(&a->annotations, "description");
    buf_init(&b, PD_SUMMARY_MAX * 2 + 16);
    if (name && what)
        buf_appendf(&b, "%.1024s: %.1024s", name, what);
    else if (name || what)
        buf_appendf(&b, "%.1024s", name ? name : what);
    else
        buf_appendf(&b, "alert %s", a->fingerprint);
    o = target_json_string_cut(buf_str(&b), PD_SUMMARY_MAX);
    buf_free(&b);
    return o;
}

/* custom_details at a truncation level: 0 all, 1 annotation values cut,
 * 2 annotations left out, 3 labels left out too. */
static json_object *pd_details(const alert *a, int level)
{
    json_object *d = json_object_new_object();
    json_object *ann;

    if (!d)
        return NULL;
    json_object_object_add(
        d, "labels",
        level >= 3 ? json_object_new_string("left out: event over 512 KB")
                   : target_kvs_json(&a->labels));
    if (level >= 2) {
        json_object_object_add(
            d, "annotations",
            json_object_new_string("left out: event over 512 KB"));
        return d;
    }
    ann = json_object_new_object();
    for (size_t i = 0; ann && i < a->annotations.n; i++)
        json_object_object_add(
            ann, a->annotations.items[i].name,
            level >= 1 ? target_json_string_cut(a->annotations.items[i].value,
                                                PD_ANNOTATION_CUT)
                       : json_object_new_string(a->annotations.items[i].value));
    json_object_object_add(d, "annotations", ann);
    return d;
}

static json_object *pd_event(const target *tgt, const alert *a, int level)
{
    const pagerduty_config *cfg = tgt->type_config;
    json_object *root = json_object_new_object();
    json_object *payload;
    json_object *links;
    const char *src;

    if (!root)
        return NULL;
    json_object_object_add(root, "routing_key",
                           json_object_new_string(cfg->routing_key));
    json_object_object_add(
        root, "event_action",
        json_object_new_string(a->status == ALERT_STATUS_RESOLVED ? "resolve"
                                                                  : "trigger"));
    json_object_object_add(root, "dedup_key",
                           json_object_new_string(a->fingerprint));
    if (a->status == ALERT_STATUS_RESOLVED)
        return root;
    payload = json_object_new_object();
    links = json_object_new_array();
    src =
        cfg->source_label ? alert_kvs_get(&a->labels, cfg->source_label) : NULL;
    json_object_object_add(payload, "summary", pd_summary(a));
    json_object_object_add(
        payload, "source",
        json_object_new_string(src && *src ? src : cfg->source));
    json_object_object_add(payload, "severity",
                           json_object_new_string(pd_severity(cfg, a)));
    if (a->starts_at)
        json_object_object_add(payload, "timestamp",
                               json_object_new_string(a->starts_at));
    add_label_field(payload, "component", a, cfg->component_label);
    add_label_field(payload, "group", a, cfg->group_label);
    add_label_field(payload, "class", a, cfg->class_label);
    json_object_object_add(payload, "custom_details", pd_details(a, level));
    json_object_object_add(root, "payload", payload);
    add_link(links, a->generator_url, "Source");
    add_link(links, alert_kvs_get(&a->annotations, "runbook_url"), "Runbook");
    if (json_object_array_length(links) > 0)
        json_object_object_add(root, "links", links);
    else
        json_object_put(links);
    return root;
}

static herald_err pagerduty_build_request(const target *tgt, const alert *a,
                                          http_request *req, char *errstr,
                                          size_t errstr_size)
{
    herald_err err = HERALD_OK;

    err = target_request_set_url(req, tgt->url, "/v2/enqueue");
    if (err)
        return err;
    snprintf(req->method, sizeof(req->method), "POST");
    for (int level = 0; level <= 3; level++) {
        json_object *ev = pd_event(tgt, a, level);
        const char *s;

        if (!ev)
            return HERALD_ERR_NOMEM;
        s = json_object_to_json_string_ext(
            ev, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        if (level < 3 && s && strlen(s) > PD_MAX_EVENT_BYTES) {
            json_object_put(ev);
            continue;
        }
        err = target_body_json(req, ev, "application/json");
        json_object_put(ev);
        break;
    }
    if (err == HERALD_ERR_TOO_LARGE)
        snprintf(errstr, errstr_size,
                 "the pagerduty event exceeds the body cap of %zu bytes",
                 req->body.max);
    if (!err)
        err = target_request_apply_common(tgt, req);
    return err;
}

const target_plugin pagerduty_plugin = {
    .name = "pagerduty",
    .keys = pagerduty_keys,
    .config_size = sizeof(pagerduty_config),
    .config_finish = pagerduty_config_finish,
    .config_free = NULL,
    .build_request = pagerduty_build_request,
    .classify = NULL, /* The default rules are PagerDuty's. */
};
