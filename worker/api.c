/*
 * api.c: the HTTP API server (see api.h) on libmicrohttpd.
 *
 * Data flow: libmicrohttpd accepts a connection on one of the API threads
 * and calls api_access() several times per request: once with the headers
 * (we route the request, check the method and the bearer token, and
 * allocate an api_request), once per chunk of body (appended to a capped
 * buf), and a last time with no data, when we answer. Errors found with the
 * headers are answered at once when the client sent "Expect: 100-continue"
 * (it has not sent the body yet); otherwise the body is read and thrown
 * away first, so the client is not reset mid-upload and sees the answer.
 * Request bodies never exceed max_body_bytes in memory. POST bodies are
 * parsed with json-c, the alert with alert_batch_parse(), and handed to the
 * worker's publish callback; GET /stats and /targets call the worker's JSON
 * callbacks. api.c knows nothing of publishers or targets: the worker wires
 * the callbacks (api.h).
 *
 * Threads: libmicrohttpd's internal thread pool (cfg->threads threads) runs
 * every function here except api_new()/api_destroy(), which run on the main
 * thread. The server fields are immutable after api_new(), so handlers read
 * them without a lock; the metrics registry has its own locks.
 *
 * Specs: RFC 9110 (methods, 401/404/405/413, Allow), RFC 6750 (bearer
 * tokens, WWW-Authenticate), Prometheus text exposition format 0.0.4.
 */
#include "worker/api.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"

#define API_DEFAULT_LISTEN "127.0.0.1:8080"
/* 1 MiB: an Alertmanager payload with one alert is a few KiB. */
#define API_DEFAULT_MAX_BODY (1024 * 1024)
/* 16 MiB: thousands of series, still far below any memory concern. */
#define API_DEFAULT_MAX_METRICS (16 * 1024 * 1024)
/* Four threads: /metrics and probes stay served while a few publishes
 * wait on slow targets; the machine-wide CPU cost is negligible. */
#define API_DEFAULT_THREADS 4
#define API_DEFAULT_MAX_CONNECTIONS 64
/* Most target names in one /publish/multiple request. */
#define API_MAX_NAMES 256
/* Deepest JSON nesting accepted in a request body. */
#define API_MAX_DEPTH 32
/* Idle seconds before a connection is closed; above the 30 s default
 * publish deadline so a slow publish is not cut off. */
#define API_CONNECTION_TIMEOUT_S 60

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct api_server {
    struct MHD_Daemon *daemon;
    char *token; /* NULL when POST needs no token. */
    size_t token_len;
    size_t max_body_bytes;
    size_t max_metrics_bytes;
    void *opaque;
    api_ready_fn ready;
    api_publish_fn publish;
    api_json_fn stats;
    api_json_fn targets;
    metric *requests; /* herald_api_requests_total{path,code}. */
    int port;
};

typedef struct api_request api_request;
typedef struct api_reply api_reply;

/* What a handler answers. body is owned (malloc) or NULL. */
struct api_reply {
    int status;
    const char *content_type;
    char *body;
    size_t len;
};

typedef void (*api_handler)(api_server *srv, api_request *req, api_reply *rep);

typedef struct api_route {
    const char *path;
    bool post; /* POST route; otherwise GET (and HEAD). */
    api_handler handler;
    api_publish_mode mode; /* POST /publish/... only. */
} api_route;

/* Per-request state, freed by api_completed(). */
struct api_request {
    const api_route *route; /* NULL for an unknown path. */
    int status;             /* Non-zero: answer this error. */
    char message[160];      /* Error message with status. */
    bool replied;           /* A response was queued. */
    buf body;
};

static void handle_metrics(api_server *srv, api_request *req, api_reply *rep);
static void handle_healthz(api_server *srv, api_request *req, api_reply *rep);
static void handle_readyz(api_server *srv, api_request *req, api_reply *rep);
static void handle_stats(api_server *srv, api_request *req, api_reply *rep);
static void handle_targets(api_server *srv, api_request *req, api_reply *rep);
static void handle_publish(api_server *srv, api_request *req, api_reply *rep);

static const api_route routes[] = {
    {"/metrics", false, handle_metrics, API_PUBLISH_ALL},
    {"/healthz", false, handle_healthz, API_PUBLISH_ALL},
    {"/readyz", false, handle_readyz, API_PUBLISH_ALL},
    {"/stats", false, handle_stats, API_PUBLISH_ALL},
    {"/targets", false, handle_targets, API_PUBLISH_ALL},
    {"/publish/multiple", true, handle_publish, API_PUBLISH_MULTIPLE},
    {"/publish/all", true, handle_publish, API_PUBLISH_ALL},
    {"/publish/healthy", true, handle_publish, API_PUBLISH_HEALTHY},
};

const char *api_publish_mode_name(api_publish_mode mode)
{
    switch (mode) {
    case API_PUBLISH_MULTIPLE: return "multiple";
    case API_PUBLISH_ALL: return "all";
    case API_PUBLISH_HEALTHY: return "healthy";
    }
    return "unknown";
}

void api_config_init(api_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = API_DEFAULT_LISTEN;
    cfg->max_body_bytes = API_DEFAULT_MAX_BODY;
    cfg->max_metrics_bytes = API_DEFAULT_MAX_METRICS;
    cfg->threads = API_DEFAULT_THREADS;
    cfg->max_connections = API_DEFAULT_MAX_CONNECTIONS;
}

/* Sets the request's error unless one is already set. */
static void request_fail(api_request *req, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void request_fail(api_request *req, int status, const char *fmt, ...)
{
    va_list ap;

    if (req->status)
        return;
    req->status = status;
    va_start(ap, fmt);
    vsnprintf(req->message, sizeof(req->message), fmt, ap);
    va_end(ap);
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

/* Fills rep with the error envelope {"error":{"code","message"}}. */
static void reply_error(api_reply *rep, int status, const char *message)
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
        reply_error(rep, 500, herald_err2str(err));
        return;
    }
    rep->len = out.len;
    rep->body = buf_steal(&out);
    buf_free(&out);
    if (!rep->body) {
        reply_error(rep, 500, "out of memory");
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
        reply_error(rep, 503, msg);
        return;
    }
    doc = fn(srv->opaque);
    if (!doc) {
        snprintf(msg, sizeof(msg), "could not build the %s", what);
        reply_error(rep, 500, msg);
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
        reply_error(rep, 500, "out of memory");
        return NULL;
    }
    if (len == 0) {
        reply_error(rep, 400, "request body is empty; expected a JSON object");
        goto done;
    }
    root = json_tokener_parse_ex(tok, data, (int)len);
    jerr = json_tokener_get_error(tok);
    used = json_tokener_get_parse_end(tok);
    if (jerr == json_tokener_continue) {
        reply_error(rep, 400, "request body: truncated JSON");
        goto fail;
    }
    if (jerr != json_tokener_success) {
        snprintf(msg, sizeof(msg), "request body: invalid JSON at byte %zu: %s",
                 used, json_tokener_error_desc(jerr));
        reply_error(rep, 400, msg);
        goto fail;
    }
    while (used < len && strchr(" \t\r\n", data[used]))
        used++;
    if (used != len) {
        snprintf(msg, sizeof(msg),
                 "request body: unexpected data after the JSON value at "
                 "byte %zu",
                 used);
        reply_error(rep, 400, msg);
        goto fail;
    }
    if (!json_object_is_type(root, json_type_object)) {
        reply_error(rep, 400, "request body: expected a JSON object");
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
        reply_error(rep, 400, "targets: required, an array of target names");
        return -1;
    }
    if (mode != API_PUBLISH_MULTIPLE) {
        reply_error(rep, 400, "targets: only allowed on /publish/multiple");
        return -1;
    }
    if (!json_object_is_type(arr, json_type_array)) {
        reply_error(rep, 400, "targets: expected an array of target names");
        return -1;
    }
    n = json_object_array_length(arr);
    if (n == 0 || n > API_MAX_NAMES) {
        snprintf(msg, sizeof(msg),
                 "targets: expected 1 to %d target names, got %zu",
                 API_MAX_NAMES, n);
        reply_error(rep, 400, msg);
        return -1;
    }
    for (i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(s, json_type_string) ||
            json_object_get_string_len(s) == 0) {
            snprintf(msg, sizeof(msg),
                     "targets[%zu]: expected a non-empty target name", i);
            reply_error(rep, 400, msg);
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
        reply_error(rep, 400, "alert: required, a JSON object");
        return NULL;
    }
    if (json_object_object_get_ex(root, "classification", &cls) ||
        alert_is_snake_case(a)) {
        env = json_object_new_object();
        if (!env || json_object_object_add(env, "alert", json_object_get(a)) ||
            (cls && json_object_object_add(env, "classification",
                                           json_object_get(cls)))) {
            json_object_put(env);
            reply_error(rep, 500, "out of memory");
            return NULL;
        }
        a = env;
    }
    s = json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN);
    if (s)
        text = strdup(s);
    json_object_put(env);
    if (!text)
        reply_error(rep, 500, "out of memory");
    return text;
}

static void handle_publish(api_server *srv, api_request *req, api_reply *rep)
{
    const char *names[API_MAX_NAMES];
    json_object *root = NULL;
    json_object *result = NULL;
    alert_batch batch;
    alert_limits lim;
    alert_reason reason = ALERT_REASON_NONE;
    herald_err err;
    char errstr[256] = "";
    char msg[320];
    char *text = NULL;
    int n_names;
    int status = 0;

    memset(&batch, 0, sizeof(batch));
    if (!srv->publish) {
        reply_error(rep, 503, "publishing is not available");
        return;
    }
    root = body_parse(req, rep);
    if (!root)
        goto done;
    json_object_object_foreach(root, key, val)
    {
        (void)val;
        if (strcmp(key, "alert") != 0 && strcmp(key, "targets") != 0 &&
            strcmp(key, "classification") != 0) {
            snprintf(msg, sizeof(msg), "%.64s: unknown field", key);
            reply_error(rep, 400, msg);
            goto done;
        }
    }
    n_names = names_parse(root, req->route->mode, names, rep);
    if (n_names < 0)
        goto done;
    text = alert_text(root, rep);
    if (!text)
        goto done;
    alert_limits_default(&lim);
    lim.max_bytes = srv->max_body_bytes;
    lim.max_depth = API_MAX_DEPTH;
    err = alert_batch_parse(text, strlen(text), &lim, &batch, &reason, errstr,
                            sizeof(errstr));
    if (err) {
        snprintf(msg, sizeof(msg), "alert: %s (%s)", errstr,
                 alert_reason_name(reason));
        reply_error(rep, err == HERALD_ERR_NOMEM ? 500 : 400, msg);
        goto done;
    }
    if (batch.n != 1) {
        snprintf(msg, sizeof(msg),
                 "alert: a request publishes exactly one alert, got %zu",
                 batch.n);
        reply_error(rep, 400, msg);
        goto done;
    }
    errstr[0] = '\0';
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
    reply_error(rep, status,
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
    free(text);
    json_object_put(root);
}

/* Compares the given token with the configured one in time that depends
 * only on the configured token's length. */
static bool token_equal(const char *given, size_t given_len, const char *want,
                        size_t want_len)
{
    volatile unsigned char diff = given_len != want_len;
    size_t i;

    for (i = 0; i < want_len; i++) {
        unsigned char g = i < given_len ? (unsigned char)given[i] : 0;
        diff |= g ^ (unsigned char)want[i];
    }
    return diff == 0;
}

/* True when the request carries "Authorization: Bearer <token>" (RFC 6750;
 * the scheme name is case-insensitive). */
static bool request_authorized(api_server *srv, struct MHD_Connection *conn)
{
    const char *h;

    if (!srv->token)
        return true;
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                    MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    return token_equal(h, strlen(h), srv->token, srv->token_len);
}

/* Routes a request from its headers; sets req->route and any early error. */
static void request_route(api_server *srv, api_request *req,
                          struct MHD_Connection *conn, const char *url,
                          const char *method)
{
    bool is_get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                  strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool is_post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    const char *clen;
    size_t i;

    for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        if (strcmp(url, routes[i].path) == 0) {
            req->route = &routes[i];
            break;
        }
    }
    if (!req->route) {
        request_fail(req, 404, "no such endpoint");
        return;
    }
    if (req->route->post ? !is_post : !is_get) {
        request_fail(req, 405, "method %.16s not allowed; use %s", method,
                     req->route->post ? "POST" : "GET");
        return;
    }
    if (req->route->post && !request_authorized(srv, conn)) {
        request_fail(req, 401, "missing or invalid bearer token");
        return;
    }
    clen = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                       MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (clen && strtoull(clen, NULL, 10) > srv->max_body_bytes)
        request_fail(req, 413, "request body larger than %zu bytes",
                     srv->max_body_bytes);
}

/* Queues rep on conn (takes rep->body), with the headers its status needs. */
static enum MHD_Result reply_send(api_server *srv, api_request *req,
                                  struct MHD_Connection *conn, api_reply *rep)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    char code[8];

    resp = MHD_create_response_from_buffer(rep->len, rep->body,
                                           MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(rep->body);
        return MHD_NO;
    }
    rep->body = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rep->content_type ? rep->content_type : CT_JSON);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (rep->status == 405 && req->route)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW,
                                req->route->post ? "POST" : "GET, HEAD");
    if (rep->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"herald\"");
    ret = MHD_queue_response(conn, (unsigned int)rep->status, resp);
    MHD_destroy_response(resp);
    req->replied = true;
    snprintf(code, sizeof(code), "%d", rep->status);
    metrics_add(srv->requests, 1, req->route ? req->route->path : "other",
                code);
    /* A not-ready /readyz is routine during start-up: not worth a warning. */
    if (rep->status >= 500 && req->route &&
        req->route->handler != handle_readyz)
        LOG_WARN("api", LOG_NOFIELDS, "%s answered %d", req->route->path,
                 rep->status);
    return ret;
}

static enum MHD_Result reply_request_error(api_server *srv, api_request *req,
                                           struct MHD_Connection *conn)
{
    api_reply rep = {0, NULL, NULL, 0};

    reply_error(&rep, req->status, req->message);
    return reply_send(srv, req, conn, &rep);
}

static bool expects_continue(struct MHD_Connection *conn)
{
    const char *e = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_EXPECT);

    return e && strcasecmp(e, "100-continue") == 0;
}

static enum MHD_Result api_access(void *cls, struct MHD_Connection *conn,
                                  const char *url, const char *method,
                                  const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    api_server *srv = cls;
    api_request *req = *con_cls;
    api_reply rep = {0, NULL, NULL, 0};
    herald_err err;

    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        buf_init(&req->body, srv->max_body_bytes);
        *con_cls = req;
        request_route(srv, req, conn, url, method);
        /* The client waits for "100 Continue" before sending the body:
         * answer the error now instead. */
        if (req->status && expects_continue(conn))
            return reply_request_error(srv, req, conn);
        return MHD_YES;
    }
    if (req->replied) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!req->status) {
            err = buf_append(&req->body, upload_data, *upload_data_size);
            if (err == HERALD_ERR_TOO_LARGE)
                request_fail(req, 413, "request body larger than %zu bytes",
                             srv->max_body_bytes);
            else if (err)
                request_fail(req, 500, "out of memory");
            if (err)
                buf_free(&req->body);
        }
        *upload_data_size = 0; /* Consumed, or read and dropped. */
        return MHD_YES;
    }
    if (req->status)
        return reply_request_error(srv, req, conn);
    req->route->handler(srv, req, &rep);
    return reply_send(srv, req, conn, &rep);
}

static void api_completed(void *cls, struct MHD_Connection *conn,
                          void **con_cls, enum MHD_RequestTerminationCode toe)
{
    api_request *req = *con_cls;

    if (!req)
        return;
    buf_free(&req->body);
    free(req);
    *con_cls = NULL;
}

static void api_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256];
    size_t n;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_WARN("api", LOG_NOFIELDS, "libmicrohttpd: %s", msg);
}

/*
 * Parses "ADDR:PORT", "[IPv6]:PORT" or "localhost:PORT" into ss. Returns
 * false with errstr filled.
 */
static bool listen_parse(const char *listen, struct sockaddr_storage *ss,
                         bool *ipv6, bool *loopback, char *errstr,
                         size_t errstr_size)
{
    const char *colon = strrchr(listen, ':');
    char host[64];
    size_t hlen;
    char *end;
    unsigned long port;

    if (!colon || colon == listen) {
        snprintf(errstr, errstr_size, "api listen \"%s\": expected ADDR:PORT",
                 listen);
        return false;
    }
    hlen = (size_t)(colon - listen);
    if (listen[0] == '[' && hlen >= 2 && listen[hlen - 1] == ']') {
        listen++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        snprintf(errstr, errstr_size, "api listen: address too long");
        return false;
    }
    memcpy(host, listen, hlen);
    host[hlen] = '\0';
    port = strtoul(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || port > 65535) {
        snprintf(errstr, errstr_size,
                 "api listen \"%s\": port must be 0 to 65535", colon + 1);
        return false;
    }
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    memset(ss, 0, sizeof(*ss));
    {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
            *ipv6 = false;
            *loopback = (ntohl(sin->sin_addr.s_addr) >> 24) == 127;
            return true;
        }
        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
            *ipv6 = true;
            *loopback = IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr);
            return true;
        }
    }
    snprintf(errstr, errstr_size,
             "api listen \"%s\": not a numeric IPv4 or IPv6 address", host);
    return false;
}

api_server *api_new(const api_config *cfg, char *errstr, size_t errstr_size)
{
    api_server *srv = NULL;
    struct sockaddr_storage ss;
    bool ipv6 = false;
    bool loopback = true;
    const union MHD_DaemonInfo *info;
    unsigned int flags;
    unsigned int threads;

    if (!cfg) {
        snprintf(errstr, errstr_size, "api: no configuration");
        return NULL;
    }
    if (!listen_parse(cfg->listen ? cfg->listen : API_DEFAULT_LISTEN, &ss,
                      &ipv6, &loopback, errstr, errstr_size))
        return NULL;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        goto nomem;
    if (cfg->token && cfg->token[0]) {
        srv->token = strdup(cfg->token);
        if (!srv->token)
            goto nomem;
        srv->token_len = strlen(srv->token);
    }
    srv->max_body_bytes =
        cfg->max_body_bytes ? cfg->max_body_bytes : API_DEFAULT_MAX_BODY;
    srv->max_metrics_bytes = cfg->max_metrics_bytes ? cfg->max_metrics_bytes
                                                    : API_DEFAULT_MAX_METRICS;
    srv->opaque = cfg->opaque;
    srv->ready = cfg->ready;
    srv->publish = cfg->publish;
    srv->stats = cfg->stats;
    srv->targets = cfg->targets;
    srv->requests = metrics_family(
        METRIC_COUNTER, "herald_api_requests_total",
        "HTTP API requests by endpoint and status code.", "path,code", NULL, 0);
    threads = cfg->threads ? cfg->threads : API_DEFAULT_THREADS;
    /* MHD_USE_AUTO picks epoll on Linux: select() would fail once the
     * process (Kafka and curl sockets) holds descriptors past FD_SETSIZE. */
    flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
            (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger goes first so that errors about later options reach it. */
    /* The port argument only feeds libmicrohttpd's own messages (the
     * address comes from MHD_OPTION_SOCK_ADDR): give it the real one. */
    srv->daemon = MHD_start_daemon(
        flags,
        ntohs(ipv6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                   : ((struct sockaddr_in *)&ss)->sin_port),
        NULL, NULL, api_access, srv, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log,
        srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        /* One thread means no pool (libmicrohttpd warns about a pool of
         * one). */
        MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
        MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections ? cfg->max_connections
                             : API_DEFAULT_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, srv, MHD_OPTION_END);
    if (!srv->daemon) {
        snprintf(errstr, errstr_size,
                 "api listen \"%s\": could not start the HTTP server (address "
                 "in use or not available)",
                 cfg->listen ? cfg->listen : API_DEFAULT_LISTEN);
        goto fail;
    }
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    srv->port = info ? (int)info->port : -1;
    if (!loopback && !srv->token)
        LOG_WARN("api", LOG_NOFIELDS,
                 "the API listens on a non-loopback address without a "
                 "token: POST /publish is open to the network");
    LOG_INFO("api", LOG_NOFIELDS, "listening on port %d with %u threads",
             srv->port, threads);
    return srv;
nomem:
    snprintf(errstr, errstr_size, "api: out of memory");
fail:
    api_destroy(srv);
    return NULL;
}

void api_destroy(api_server *srv)
{
    if (!srv)
        return;
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    if (srv->token) {
        /* Do not leave the secret in freed memory. */
        volatile char *p = srv->token;
        size_t i;
        for (i = 0; i < srv->token_len; i++)
            p[i] = 0;
        free(srv->token);
    }
    free(srv);
}

int api_port(api_server *srv)
{
    return srv ? srv->port : -1;
}
