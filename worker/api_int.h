/*
 * api_int.h: what worker/api.c (the HTTP server: connections, routing,
 * authorisation, sending) and worker/api_routes.c (the route handlers and
 * the replies they build) share. Private to the API. api.c calls
 * api_routes.c (api_route_find(), api_reply_error() and the handlers
 * through the route table); api_routes.c never calls api.c.
 */
#ifndef HERALD_API_INT_H
#define HERALD_API_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/metrics.h"
#include "worker/api.h"

/* Most target names in one /publish/multiple request. */
#define API_MAX_NAMES 256
/* Deepest JSON nesting accepted in a request body. */
#define API_MAX_DEPTH 32

#define CT_JSON "application/json"
#define CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

struct api_server {
    struct MHD_Daemon *daemon;
    char *token; /* NULL when no endpoint needs a token. */
    size_t token_len;
    bool metrics_public; /* GET /metrics needs no token. */
    size_t max_body_bytes;
    size_t max_metrics_bytes;
    void *opaque;
    api_ready_fn ready;
    api_publish_fn publish;
    api_json_fn stats;
    api_json_fn targets;
    metric *requests;           /* herald_api_requests_total{path,code}. */
    metric *cut;                /* herald_api_connections_cut_total. */
    struct herald_timer *timer; /* The shared engine; one reference. */
    int64_t read_deadline_ms;
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

/* Who may call a route when a token is configured. */
typedef enum api_route_access {
    API_ROUTE_TOKEN = 0, /* The bearer token. */
    API_ROUTE_OPEN = 1,  /* Anyone: the probes (a kubelet has no token). */
    API_ROUTE_SCRAPE = 2 /* The token, or anyone with metrics_public. */
} api_route_access;

typedef void (*api_handler)(api_server *srv, api_request *req, api_reply *rep);

typedef struct api_route {
    const char *path;
    bool post; /* POST route; otherwise GET (and HEAD). */
    api_handler handler;
    api_publish_mode mode;   /* POST /publish/... only. */
    api_route_access access; /* Who may call it when a token is set. */
    bool quiet_5xx;          /* A 5xx is routine (a not-ready /readyz during
                                start-up): not worth a warning. */
} api_route;

/* Per-request state, freed by api_completed(). */
struct api_request {
    const api_route *route; /* NULL for an unknown path. */
    int status;             /* Non-zero: answer this error. */
    char message[160];      /* Error message with status. */
    bool replied;           /* A response was queued. */
    buf body;
};

/*
 * The route of a request path (url, borrowed), or NULL for an unknown one.
 * The route is static. Any thread.
 */
const api_route *api_route_find(const char *url);

/*
 * Fills rep with the error envelope {"error":{"code","message"}} (message
 * borrowed for the call; copied). On out of memory rep holds a fixed 500
 * answer (or no body). Any thread.
 */
void api_reply_error(api_reply *rep, int status, const char *message);

#endif
