/*
 * api_routes.c: the routes of the HTTP API (api.h) and their handlers.
 *
 * Data flow: api.c finds a request's route (api_route_find()) from its
 * headers and, once the body is read, calls the route's handler, which
 * fills an api_reply: /metrics renders the registry (capped at
 * max_metrics_bytes), /healthz and /readyz answer a status, /stats and
 * /targets call the worker's JSON callbacks, POST /publish/... parses the
 * body with json-c (depth capped), reads "targets" and the alert (any
 * message form alert_batch_parse() accepts), hands it to the worker's
 * publish callback and answers its result or an error envelope. api.c then
 * sends the reply.
 *
 * Threads: libmicrohttpd's API threads, several at once; handlers read
 * the immutable server fields without a lock. Calls no function of api.c.
 *
 * Specs: RFC 9110 (status codes), Prometheus text exposition format 0.0.4.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "worker/api_int.h"

static void handle_metrics(api_server *srv, api_request *req, api_reply *rep);
static void handle_healthz(api_server *srv, api_request *req, api_reply *rep);
static void handle_readyz(api_server *srv, api_request *req, api_reply *rep);
static void handle_stats(api_server *srv, api_request *req, api_reply *rep);
static void handle_targets(api_server *srv, api_request *req, api_reply *rep);
static void handle_publish(api_server *srv, api_request *req, api_reply *rep);

static const api_route routes[] = {
    {"/metrics", false, handle_metrics, API_PUBLISH_ALL, API_ROUTE_SCRAPE,
     false},
    {"/healthz", false, handle_healthz, API_PUBLISH_ALL, API_ROUTE_OPEN, false},
    {"/readyz", false, handle_readyz, API_PUBLISH_ALL, API_ROUTE_OPEN, true},
    {"/stats", false, handle_stats, API_PUBLISH_ALL, API_ROUTE_TOKEN, false},
    {"/targets", false, handle_targets, API_PUBLISH_ALL, API_ROUTE_TOKEN,
     false},
    {"/publish/multiple", true, handle_publish, API_PUBLISH_MULTIPLE,
     API_ROUTE_TOKEN, false},
    {"/publish/all", true, handle_publish, API_PUBLISH_ALL, API_ROUTE_TOKEN,
     false},
    {"/publish/healthy", true, handle_publish, API_PUBLISH_HEALTHY,
     API_ROUTE_TOKEN, false},
};

const api_route *api_route_find(const char *url)
{
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0)
            return &routes[i];
    }
    return NULL;
}

const char *api_publish_mode_name(api_publish_mode mode)
{
    switch (mode) {
    case API_PUBLISH_MULTIPLE: return "multiple";
    case API_PUBLISH_ALL: return "all";
    case API_PUBLISH_HEALTHY: return "healthy";
    }
    return "unknown";
}

/* Serialises obj into rep (takes ownership of obj). */
static void reply_json(api_reply *rep, int status, json_object *obj)
{
    const char *s = NULL;

    if (obj)
        s = json_object_to_json_string_ext(
            obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
    rep->body = s ? strdup(s) : NULL;
    json_object_put(obj);
    if (!rep->body) {
        /* Out of memory: a fixed answer needs no allocation to build. */
        static const char oom[] =
            "{\"error\":{\"code\":500,\"message\":\"out of memory\"}}";
        rep->status = 500;
        rep->content_type = CT_JSON;
        rep->len = 0;
        rep->body = malloc(sizeof(oom));
        if (rep->body) {
            memcpy(rep->body, oom, sizeof(oom));
            rep->len = sizeof(oom) - 1;
        }
        return;
    }
    rep->status = status;
    rep->content_type = CT_JSON;
    rep->len = strlen(rep->body);
}

void api_reply_error(api_reply *rep, int status, const char *message)
{
    json_object *root = json_object_new_object();
    json_object *e = json_object_new_object();

    if (root && e &&
        json_object_object_add(e, "code", json_object_new_int(status)) == 0 &&
        json_object_object_add(e, "message", json_object_new_string(message)) ==
            0 &&
        json_object_object_add(root, "error", e) == 0) {
        reply_json(rep, status, root);
        return;
    }
    json_object_put(e);
    json_object_put(root);
    reply_json(rep, 500, NULL);
}

static void reply_status(api_reply *rep, int status, const char *text)
{
    json_object *o = json_object_new_object();

    if (o)
        json_object_object_add(o, "status", json_object_new_string(text));
    reply_json(rep, status, o);
}

static void handle_metrics(api_server *srv, api_request *req, api_reply *rep)
{
    herald_err err;
    buf out;

    buf_init(&out, srv->max_metrics_bytes);
    err = metrics_render(&out);
    if (err) {
        buf_free(&out);
        api_reply_error(rep, 500, herald_err2str(err));
        return;
    }
    rep->len = out.len;
    rep->body = buf_steal(&out);
    buf_free(&out);
    if (!rep->body) {
        api_reply_error(rep, 500, "out of memory");
        return;
    }
    rep->status = 200;
    rep->content_type = CT_METRICS;
}

static void handle_healthz(api_server *srv, api_request *req, api_reply *rep)
{
    reply_status(rep, 200, "ok");
}

static void handle_readyz(api_server *srv, api_request *req, api_reply *rep)
{
    if (!srv->ready || srv->ready(srv->opaque))
        reply_status(rep, 200, "ready");
    else
        reply_status(rep, 503, "not ready");
}

static void reply_document(api_server *srv, api_reply *rep, api_json_fn fn,
                           const char *what)
{
    json_object *doc;
    char msg[64];

    if (!fn) {
        snprintf(msg, sizeof(msg), "%s are not available", what);
        api_reply_error(rep, 503, msg);
        return;
    }
    doc = fn(srv->opaque);
    if (!doc) {
        snprintf(msg, sizeof(msg), "could not build the %s", what);
        api_reply_error(rep, 500, msg);
        return;
    }
    reply_json(rep, 200, doc);
}

static void handle_stats(api_server *srv, api_request *req, api_reply *rep)
{
    reply_document(srv, rep, srv->stats, "stats");
}

static void handle_targets(api_server *srv, api_request *req, api_reply *rep)
{
    reply_document(srv, rep, srv->targets, "targets");
}

/* The HTTP status for a publish error without an explicit one. */
static int publish_err_status(herald_err err)
{
    switch (err) {
    case HERALD_OK: return 200;
    case HERALD_ERR_INVALID:
    case HERALD_ERR_PARSE: return 400;
    case HERALD_ERR_NOT_FOUND: return 404;
    case HERALD_ERR_TOO_LARGE: return 413;
    case HERALD_ERR_ALL_FAILED: return 502;
    case HERALD_ERR_TIMEOUT:
    case HERALD_ERR_DEADLINE: return 504;
    case HERALD_ERR_NO_HEALTHY:
    case HERALD_ERR_NO_ENABLED:
    case HERALD_ERR_FULL:
    case HERALD_ERR_STATE: return 503;
    default: return 500;
    }
}

/*
 * Parses the request body into a JSON object. Returns NULL and fills the
 * 400 reply when it is not one JSON object.
 */
static json_object *body_parse(api_request *req, api_reply *rep)
{
    json_tokener *tok = json_tokener_new_ex(API_MAX_DEPTH);
    json_object *root = NULL;
    enum json_tokener_error jerr;
    const char *data = buf_str(&req->body);
    size_t len = req->body.len;
    size_t used;
    char msg[128];

    if (!tok) {
        api_reply_error(rep, 500, "out of memory");
        return NULL;
    }
    if (len == 0) {
        api_reply_error(rep, 400,
                        "request body is empty; expected a JSON object");
        goto done;
    }
    root = json_tokener_parse_ex(tok, data, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        api_reply_error(rep, 400, "request body: truncated JSON");
        goto fail;
    }
    if (jerr != json_tokener_success) {
        snprintf(msg, sizeof(msg), "request body: invalid JSON at byte %zu: %s",
                 used, json_tokener_error_desc(jerr));
        api_reply_error(rep, 400, msg);
        goto fail;
    }
    while (used < len && strchr(" \t\r\n", data[used]))
        used++;
    if (used != len) {
        snprintf(msg, sizeof(msg),
                 "request body: unexpected data after the JSON value at "
                 "byte %zu",
                 used);
        api_reply_error(rep, 400, msg);
        goto fail;
    }
    if (!json_object_is_type(root, json_type_object)) {
        api_reply_error(rep, 400, "request body: expected a JSON object");
        goto fail;
    }
    goto done;
fail:
    json_object_put(root);
    root = NULL;
done:
    json_tokener_free(tok);
    return root;
}

/*
 * Reads "targets" into names (borrowed from root). Returns the count, or -1
 * after filling a 400 reply.
 */
static int names_parse(json_object *root, api_publish_mode mode,
                       const char **names, api_reply *rep)
{
    json_object *arr;
    size_t n;
    size_t i;
    char msg[128];

    if (!json_object_object_get_ex(root, "targets", &arr)) {
        if (mode != API_PUBLISH_MULTIPLE)
            return 0;
        api_reply_error(rep, 400,
                        "targets: required, an array of target names");
        return -1;
    }
    if (mode != API_PUBLISH_MULTIPLE) {
        api_reply_error(rep, 400, "targets: only allowed on /publish/multiple");
        return -1;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        api_reply_error(rep, 400, "targets: expected an array of target names");
        return -1;
    }
    n = json_object_array_length(arr);
    if (n == 0 || n > API_MAX_NAMES) {
        snprintf(msg, sizeof(msg),
                 "targets: expected 1 to %d target names, got %zu",
                 API_MAX_NAMES, n);
        api_reply_error(rep, 400, msg);
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(s, json_type_string) ||
            json_object_get_string_len(s) == 0) {
            snprintf(msg, sizeof(msg),
                     "targets[%zu]: expected a non-empty target name", i);
            api_reply_error(rep, 400, msg);
            return -1;
        }
        names[i] = json_object_get_string(s);
    }
    return (int)n;
}

/*
 * True when a is the snake_case alert of the enriched form (form 3), not an
 * Alertmanager alert (form 2) or payload (form 1): it carries one of the
 * snake_case keys and neither "alerts" nor a nested "alert".
 */
static bool alert_is_snake_case(json_object *a)
{
    static const char *const keys[] = {"alert_name", "starts_at", "ends_at",
                                       "generator_url"};
    size_t i;

    if (json_object_object_get_ex(a, "alerts", NULL) ||
        json_object_object_get_ex(a, "alert", NULL))
        return false;
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        if (json_object_object_get_ex(a, keys[i], NULL))
            return true;
    }
    return false;
}

/*
 * The message text handed to alert_batch_parse(): the "alert" member as it
 * is (an Alertmanager alert, an Alertmanager payload, or an enriched
 * envelope), or the enriched form {"alert", "classification"} when
 * "classification" sits next to it or the alert is in snake_case. Caller
 * frees. NULL after filling a reply.
 */
static char *alert_text(json_object *root, api_reply *rep)
{
    json_object *a;
    json_object *cls = NULL;
    json_object *env = NULL;
    const char *s;
    char *text = NULL;

    if (!json_object_object_get_ex(root, "alert", &a) ||
        !json_object_is_type(a, json_type_object)) {
        api_reply_error(rep, 400, "alert: required, a JSON object");
        return NULL;
    }
    if (json_object_object_get_ex(root, "classification", &cls) ||
        alert_is_snake_case(a)) {
        env = json_object_new_object();
        if (!env || json_object_object_add(env, "alert", json_object_get(a)) ||
            (cls && json_object_object_add(env, "classification",
                                           json_object_get(cls)))) {
            json_object_put(env);
            api_reply_error(rep, 500, "out of memory");
            return NULL;
        }
        a = env;
    }
    s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    if (s)
        text = strdup(s);
    json_object_put(env);
    if (!text)
        api_reply_error(rep, 500, "out of memory");
    return text;
}

/* Rejects members other than "alert", "targets" and "classification";
 * false after filling a 400 reply. */
static bool publish_fields_check(json_object *root, api_reply *rep)
{
    char msg[320];

    json_object_object_foreach(root, key, val)
    {
        (void)val;
        if (strcmp(key, "alert") != 0 && strcmp(key, "targets") != 0 &&
            strcmp(key, "classification") != 0) {
            snprintf(msg, sizeof(msg), "%.64s: unknown field", key);
            api_reply_error(rep, 400, msg);
            return false;
        }
    }
    return true;
}

/*
 * Reads a publish request's body: *root (caller frees with
 * json_object_put(), also on failure), the target names (borrowed from
 * *root) and exactly one alert in *batch (caller frees). Returns the number
 * of names, or -1 after filling an error reply.
 */
static int publish_request_read(api_server *srv, api_request *req,
                                api_reply *rep, json_object **root,
                                const char **names, alert_batch *batch)
{
    alert_limits lim;
    alert_reason reason = ALERT_REASON_NONE;
    herald_err err;
    char errstr[256] = "";
    char msg[320];
    char *text;
    int n_names;

    *root = body_parse(req, rep);
    if (!*root || !publish_fields_check(*root, rep))
        return -1;
    n_names = names_parse(*root, req->route->mode, names, rep);
    if (n_names < 0)
        return -1;
    text = alert_text(*root, rep);
    if (!text)
        return -1;
    alert_limits_default(&lim);
    lim.max_bytes = srv->max_body_bytes;
    lim.max_depth = API_MAX_DEPTH;
    err = alert_batch_parse(text, strlen(text), &lim, batch, &reason, errstr,
                            sizeof(errstr));
    free(text);
    if (err) {
        snprintf(msg, sizeof(msg), "alert: %s (%s)", errstr,
                 alert_reason_name(reason));
        api_reply_error(rep, err == HERALD_ERR_NOMEM ? 500 : 400, msg);
        return -1;
    }
    if (batch->n != 1) {
        snprintf(msg, sizeof(msg),
                 "alert: a request publishes exactly one alert, got %zu",
                 batch->n);
        api_reply_error(rep, 400, msg);
        return -1;
    }
    return n_names;
}

static void handle_publish(api_server *srv, api_request *req, api_reply *rep)
{
    const char *names[API_MAX_NAMES];
    json_object *root = NULL;
    json_object *result = NULL;
    alert_batch batch;
    herald_err err;
    char errstr[256] = "";
    int n_names;
    int status = 0;

    memset(&batch, 0, sizeof(batch));
    if (!srv->publish) {
        api_reply_error(rep, 503, "publishing is not available");
        return;
    }
    n_names = publish_request_read(srv, req, rep, &root, names, &batch);
    if (n_names < 0)
        goto done;
    err = srv->publish(srv->opaque, req->route->mode, &batch.alerts[0],
                       n_names ? names : NULL, (size_t)n_names, &result,
                       &status, errstr, sizeof(errstr));
    if (result) {
        if (status < 200 || status > 599)
            status = publish_err_status(err);
        reply_json(rep, status, result);
        result = NULL;
        goto done;
    }
    if (status < 400 || status > 599)
        status = err ? publish_err_status(err) : 500;
    api_reply_error(rep, status,
                    errstr[0] ? errstr
                              : (err ? herald_err2str(err)
                                     : "the publish produced no result"));
done:
    LOG_DEBUG("api",
              (&(log_fields){NULL, NULL, -1, -1,
                             batch.n ? batch.alerts[0].fingerprint : NULL}),
              "publish %s answered %d", api_publish_mode_name(req->route->mode),
              rep->status);
    alert_batch_free(&batch);
    json_object_put(root);
}
