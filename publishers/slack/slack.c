/*
 * slack.c: the Slack target type, posting to a Slack incoming webhook.
 *
 * Follows Slack's "Sending messages using incoming webhooks"
 * (https://api.slack.com/messaging/webhooks) and the legacy secondary
 * attachments reference
 * (https://api.slack.com/reference/messaging/attachments): the body is {text,
 * attachments: [{fallback, color, title, title_link, fields: [{title, value,
 * short}], footer}]} plus the optional channel, username and icon_emoji /
 * icon_url overrides (honoured by legacy webhooks, ignored by app webhooks,
 * which are bound to one channel).
 *
 * Message: text and title "[FIRING] <alertname>" or "[RESOLVED] <alertname>",
 * title_link the generator URL, colour by severity (resolved is green),
 * fields Severity, Summary, Description, Runbook (annotation runbook_url)
 * and Labels ("name=value" lines).
 *
 * Escaping (Slack's "Formatting text for app surfaces", "Escaping text"):
 * Slack reads &, < and > as control characters, so `<!channel>` in an
 * annotation would ping a whole channel and `<db1>` would become a link.
 * Every text taken from an alert is sent with them as &amp;, &lt; and
 * &gt; (slack_text()). herald writes no Slack markup of its own today;
 * title_link is a URL field, which Slack does not parse for markup.
 *
 * Classification (Slack's webhook errors page, "Handling errors"): success
 * is HTTP 200 with the body "ok"; 400 invalid_payload / no_text, 403
 * action_prohibited / invalid_token, 404 channel_not_found / no_service,
 * 410 channel_is_archived give up; 429 waits for Retry-After; 5xx retries.
 * A 2xx answer with another body gives up: Slack did not accept it.
 *
 * Rate: Slack allows about one message per second per incoming webhook
 * (https://api.slack.com/docs/rate-limits), so a slack target without
 * rate_limit.per_second gets 1/s.
 *
 * Threads: pure functions of (target, alert); any thread.
 */
#include "publishers/slack/slack.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "publishers/target_int.h"

typedef struct slack_config {
    char *channel;  /* "#ops" or a channel id, or NULL. */
    char *username; /* Display name override, or NULL. */
    char *icon;     /* ":emoji:" or an http(s) image URL, or NULL. */
} slack_config;

static const target_key slack_keys[] = {
    {"channel", TARGET_KEY_STRING, offsetof(slack_config, channel), NULL, NULL,
     false, "Channel override (legacy webhooks only)."},
    {"username", TARGET_KEY_STRING, offsetof(slack_config, username), NULL,
     NULL, false, "Bot name override (legacy webhooks only)."},
    {"icon", TARGET_KEY_STRING, offsetof(slack_config, icon), NULL, NULL, false,
     "\":emoji:\" (icon_emoji) or an image URL (icon_url)."},
    {NULL, 0, 0, NULL, NULL, false, NULL}};

/* Slack's attachment text is cut well before Slack's own limits so one
 * huge annotation cannot make the request fail. */
#define SLACK_FIELD_MAX 2000

static herald_err slack_config_finish(target *tgt, char *errstr,
                                      size_t errstr_size)
{
    const slack_config *cfg = tgt->type_config;

    if (!tgt->url) {
        snprintf(errstr, errstr_size,
                 "url: missing required key for type "
                 "slack (the incoming webhook URL)");
        return HERALD_ERR_CONFIG;
    }
    if (cfg->icon && cfg->icon[0] && cfg->icon[0] != ':' &&
        strncasecmp(cfg->icon, "http://", 7) != 0 &&
        strncasecmp(cfg->icon, "https://", 8) != 0) {
        snprintf(errstr, errstr_size,
                 "icon: expected \":emoji:\" or an http(s) URL, got \"%s\"",
                 cfg->icon);
        return HERALD_ERR_CONFIG;
    }
    if (tgt->rate_per_sec < 0)
        tgt->rate_per_sec = 1.0;
    return HERALD_OK;
}

/* Colour of the attachment bar. */
static const char *slack_color(const alert *a)
{
    const char *sev = alert_severity(a);

    if (a->status == ALERT_STATUS_RESOLVED)
        return "#2eb886";
    if (!sev)
        return "#808080";
    if (strcasecmp(sev, "critical") == 0)
        return "#d00000";
    if (strcasecmp(sev, "error") == 0 || strcasecmp(sev, "high") == 0)
        return "#e8590c";
    if (strcasecmp(sev, "warning") == 0)
        return "#f2c744";
    if (strcasecmp(sev, "info") == 0)
        return "#439fe0";
    return "#808080";
}

/*
 * s as a JSON string for a Slack text field: cut to max bytes (never
 * inside a UTF-8 sequence, with "..." when cut) and then escaped, so that
 * no entity is cut in half. NULL when out of memory.
 */
static json_object *slack_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    size_t cut = n <= max ? n : target_utf8_cut(s, max >= 3 ? max - 3 : 0);
    size_t from = 0;
    json_object *o = NULL;
    herald_err err = HERALD_OK;
    buf b;

    /* At most 5 bytes ("&amp;") per byte, plus the "...". */
    buf_init(&b, 5 * cut + 4);
    for (size_t i = 0; !err && i <= cut; i++) {
        const char *ent = NULL;

        if (i < cut && s[i] == '&')
            ent = "&amp;";
        else if (i < cut && s[i] == '<')
            ent = "&lt;";
        else if (i < cut && s[i] == '>')
            ent = "&gt;";
        else if (i < cut)
            continue;
        err = buf_append(&b, s + from, i - from);
        if (!err && ent)
            err = buf_append_str(&b, ent);
        from = i + 1;
    }
    if (!err && cut < n)
        err = buf_append_str(&b, "...");
    if (!err)
        o = json_object_new_string_len(buf_str(&b), (int)b.len);
    buf_free(&b);
    return o;
}

static herald_err add_field(json_object *fields, const char *title,
                            const char *value, bool is_short)
{
    json_object *f;

    if (!value || !*value)
        return HERALD_OK;
    f = json_object_new_object();
    if (!f)
        return HERALD_ERR_NOMEM;
    json_object_object_add(f, "title", json_object_new_string(title));
    json_object_object_add(f, "value", slack_text(value, SLACK_FIELD_MAX));
    json_object_object_add(f, "short", json_object_new_boolean(is_short));
    json_object_array_add(fields, f);
    return HERALD_OK;
}

static herald_err slack_build_request(const target *tgt, const alert *a,
                                      http_request *req, char *errstr,
                                      size_t errstr_size)
{
    const slack_config *cfg = tgt->type_config;
    const char *name = alert_kvs_get(&a->labels, "alertname");
    json_object *root = json_object_new_object();
    json_object *att = json_object_new_object();
    json_object *atts = json_object_new_array();
    json_object *fields = json_object_new_array();
    herald_err err = HERALD_ERR_NOMEM;
    char title[512];
    buf labels;

    buf_init(&labels, 65536);
    if (!root || !att || !atts || !fields)
        goto out;
    if (name)
        snprintf(title, sizeof(title), "[%s] %s",
                 a->status == ALERT_STATUS_RESOLVED ? "RESOLVED" : "FIRING",
                 name);
    else
        snprintf(title, sizeof(title), "[%s] alert %s",
                 a->status == ALERT_STATUS_RESOLVED ? "RESOLVED" : "FIRING",
                 a->fingerprint);
    if (cfg->channel)
        json_object_object_add(root, "channel",
                               json_object_new_string(cfg->channel));
    if (cfg->username)
        json_object_object_add(root, "username",
                               json_object_new_string(cfg->username));
    if (cfg->icon && cfg->icon[0])
        json_object_object_add(root,
                               cfg->icon[0] == ':' ? "icon_emoji" : "icon_url",
                               json_object_new_string(cfg->icon));
    json_object_object_add(root, "text", slack_text(title, sizeof(title)));

    for (size_t i = 0; i < a->labels.n; i++) {
        if (buf_appendf(&labels, "%s%s=%s", i ? "\n" : "",
                        a->labels.items[i].name,
                        a->labels.items[i].value) != HERALD_OK)
            break; /* Capped: show what fits. */
    }
    err = add_field(fields, "Severity", alert_severity(a), true);
    if (!err)
        err = add_field(fields, "Summary",
                        alert_kvs_get(&a->annotations, "summary"), false);
    if (!err)
        err = add_field(fields, "Description",
                        alert_kvs_get(&a->annotations, "description"), false);
    if (!err)
        err = add_field(fields, "Runbook",
                        alert_kvs_get(&a->annotations, "runbook_url"), false);
    if (!err)
        err = add_field(fields, "Labels", buf_str(&labels), false);
    if (err)
        goto out;
    json_object_object_add(att, "fallback", slack_text(title, sizeof(title)));
    json_object_object_add(att, "color",
                           json_object_new_string(slack_color(a)));
    json_object_object_add(att, "title", slack_text(title, sizeof(title)));
    if (a->generator_url && a->generator_url[0])
        json_object_object_add(att, "title_link",
                               json_object_new_string(a->generator_url));
    json_object_object_add(att, "fields", fields);
    fields = NULL;
    json_object_object_add(att, "footer", json_object_new_string("herald"));
    json_object_array_add(atts, att);
    att = NULL;
    json_object_object_add(root, "attachments", atts);
    atts = NULL;

    err = target_request_set_url(req, tgt->url, "");
    snprintf(req->method, sizeof(req->method), "POST");
    if (!err)
        err = target_body_json(req, root, "application/json");
    if (err == HERALD_ERR_TOO_LARGE)
        snprintf(errstr, errstr_size, "the slack body exceeds %zu bytes",
                 req->body.max);
    if (!err)
        err = target_request_apply_common(tgt, req);
out:
    buf_free(&labels);
    json_object_put(root);
    json_object_put(att);
    json_object_put(atts);
    json_object_put(fields);
    return err;
}

static void slack_classify(const target *tgt, const http_response *resp,
                           delivery_outcome *out)
{
    target_classify_default(resp, out);
    if (out->verdict == DELIVERY_DELIVERED) {
        size_t n = resp->body ? resp->body_len : 0;
        const char *b = resp->body ? resp->body : "";

        while (n > 0 &&
               (b[n - 1] == '\n' || b[n - 1] == '\r' || b[n - 1] == ' '))
            n--;
        if (n == 2 && memcmp(b, "ok", 2) == 0)
            return;
        out->verdict = DELIVERY_GIVE_UP;
        out->error_type = "body";
        snprintf(out->error, sizeof(out->error),
                 "HTTP %ld without the \"ok\" body Slack sends on success: "
                 "%.120s",
                 resp->status, b);
    }
}

const target_plugin slack_plugin = {
    .name = "slack",
    .keys = slack_keys,
    .config_size = sizeof(slack_config),
    .config_finish = slack_config_finish,
    .config_free = NULL,
    .build_request = slack_build_request,
    .classify = slack_classify,
};
