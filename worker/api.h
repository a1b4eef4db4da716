/*
 * api.h: the HTTP API of the herald worker (libmicrohttpd).
 *
 * Endpoints (issue 3, "HTTP API"):
 *   GET  /metrics          Prometheus text format 0.0.4 (metrics_render()),
 *                          "text/plain; version=0.0.4; charset=utf-8".
 *   GET  /healthz          200 {"status":"ok"} while the process runs.
 *   GET  /readyz           200 {"status":"ready"} when cfg->ready says so,
 *                          503 {"status":"not ready"} otherwise.
 *   GET  /stats            cfg->stats() as JSON.
 *   GET  /targets          cfg->targets() as JSON (the callback masks
 *                          secrets).
 *   POST /publish/multiple {"alert": {...}, "targets": ["name", ...]}
 *   POST /publish/all      {"alert": {...}}
 *   POST /publish/healthy  {"alert": {...}}
 *                          -> cfg->publish(); answers its result JSON.
 * GET routes also answer HEAD. The "alert" member holds one alert in any
 * message form alert_batch_parse() accepts (Alertmanager webhook payload
 * with exactly one alert, one Alertmanager alert, or the snake_case alert of
 * the enriched form, whose "classification" may sit next to "alert" at the
 * top level). Targets are named, never given as URLs.
 *
 * Authorisation: with a token configured, every endpoint except /healthz
 * and /readyz needs "Authorization: Bearer <token>" (compared in constant
 * time); /metrics too, unless cfg->metrics_public opens it for scrapers.
 * Without a token only a loopback address may be listened on, unless
 * cfg->insecure_no_token (api_listen_check()).
 *
 * Errors all use one envelope, {"error": {"code": <status>, "message":
 * "..."}}: 400 malformed body, 401 missing or wrong bearer token (when a
 * token is configured), 404 unknown path
 * or target, 405 wrong method (with an Allow header), 413 body over
 * max_body_bytes, 500/503 for internal failures or missing callbacks.
 *
 * Threads: libmicrohttpd runs an internal thread pool of cfg->threads
 * threads (default 4), each polling the listen socket and running the
 * callbacks below to completion. A pool (not one thread) so that a publish
 * waiting on slow targets (up to its deadline) does not stall /metrics,
 * /healthz or /readyz. Every callback may therefore be called from several
 * API threads at once and must be thread-safe.
 */
#ifndef HERALD_API_H
#define HERALD_API_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "core/alert.h"
#include "core/err.h"

typedef struct api_server api_server;

/* Which publish entry point a POST /publish/... request asks for. */
typedef enum api_publish_mode {
    API_PUBLISH_MULTIPLE = 0, /* The named targets. */
    API_PUBLISH_ALL = 1,      /* Every enabled target. */
    API_PUBLISH_HEALTHY = 2   /* Enabled targets passing the health
                                 strategy. */
} api_publish_mode;

/* Static name of a mode: "multiple", "all", "healthy". Never NULL. */
const char *api_publish_mode_name(api_publish_mode mode);

/*
 * True when the worker is ready to serve (e.g. the consumer joined its group
 * or holds an assignment). Called on an API thread per GET /readyz.
 */
typedef bool (*api_ready_fn)(void *opaque);

/*
 * Publishes a (borrowed for the call) to the targets named in names
 * (n_names entries, borrowed; NULL and 0 unless mode is
 * API_PUBLISH_MULTIPLE). Called on an API thread; may block until the
 * publish deadline. Outputs:
 *   *result: a JSON object (e.g. publish_result_to_json()) the API answers
 *            with, or NULL; the API takes ownership of it.
 *   *http_status: the status to answer with, or 0 to let the API choose:
 *            200 with a result, otherwise one mapped from the returned error
 *            (NOT_FOUND 404, INVALID/PARSE 400, TOO_LARGE 413,
 *            ALL_FAILED 502, TIMEOUT/DEADLINE 504, NO_HEALTHY/NO_ENABLED/
 *            FULL/STATE 503, others 500).
 *   errstr:  a sentence for the error envelope when *result is NULL
 *            ("unknown target \"x\""); never a secret.
 * Returns HERALD_OK or an error; with an error and no result the API answers
 * the error envelope.
 */
typedef herald_err (*api_publish_fn)(void *opaque, api_publish_mode mode,
                                     const alert *a, const char *const *names,
                                     size_t n_names, json_object **result,
                                     int *http_status, char *errstr,
                                     size_t errstr_size);

/*
 * Builds a JSON document (GET /stats, GET /targets). Called on an API
 * thread; the API takes ownership of the result; NULL answers 500.
 */
typedef json_object *(*api_json_fn)(void *opaque);

/* Connections from one client address: a probe, a scraper and a few
 * publishers; one address cannot hold more than this many slots. */
#define API_DEFAULT_PER_IP_CONNECTIONS 8
/* Whole time allowed to read one request, headers and body, from the
 * accept (or the end of the previous request on the connection). Not
 * reset by activity, unlike API_CONNECTION_TIMEOUT_S: a client that sends
 * a header line every few seconds is cut here. 10 s reads a 1 MiB body at
 * 100 KB/s. */
#define API_DEFAULT_READ_DEADLINE_MS 10000

/* Server configuration; api_config_init() fills the defaults. */
typedef struct api_config {
    /* "ADDR:PORT", "[IPv6]:PORT" or "localhost:PORT"; numeric addresses
     * only. Port 0 picks a free port (see api_port()). Borrowed for
     * api_new(). Default "127.0.0.1:8080". */
    const char *listen;
    /* Bearer token every endpoint but the probes requires, or NULL/"" for
     * none. Copied by api_new(); never logged. */
    const char *token;
    bool metrics_public;      /* GET /metrics needs no token (scrapers). */
    bool insecure_no_token;   /* Allow a non-loopback listen without token. */
    size_t max_body_bytes;    /* Request body cap, bytes (default 1 MiB). */
    size_t max_metrics_bytes; /* /metrics answer cap, bytes (default
                                 16 MiB). */
    unsigned int threads;     /* API threads (default 4, at least 1). */
    unsigned int max_connections;    /* Open connections (default 512). */
    unsigned int per_ip_connections; /* From one address (default 8). */
    unsigned int read_deadline_ms;   /* Whole time to read one request,
                                        not reset by activity (default
                                        10000). */
    void *opaque;                    /* Passed to every callback. */
    api_ready_fn ready;              /* NULL: always ready. */
    api_publish_fn publish;          /* NULL: POST /publish/... answers 503. */
    api_json_fn stats;               /* NULL: GET /stats answers 503. */
    api_json_fn targets;             /* NULL: GET /targets answers 503. */
} api_config;

/* Fills cfg with the defaults above and NULL callbacks. */
void api_config_init(api_config *cfg);

/*
 * Checks listen (borrowed; NULL for the default) before anything starts:
 * a valid address, and a token (non-empty) unless the address is loopback
 * or insecure_no_token is set. Returns false with errstr naming the
 * problem; the refusal reads "api listen \"ADDR\" is not a loopback
 * address and no --api-token is set: ...". Any thread.
 */
bool api_listen_check(const char *listen, const char *token,
                      bool insecure_no_token, char *errstr, size_t errstr_size);

/*
 * Starts the server: binds cfg->listen and starts the API threads. Returns
 * the server (caller owns; free with api_destroy()), or NULL with errstr
 * naming the problem (bad listen address, bind failure, out of memory).
 * Registers the herald_api_requests_total metric family. Call from the main
 * thread.
 */
api_server *api_new(const api_config *cfg, char *errstr, size_t errstr_size);

/*
 * Stops accepting, waits for requests in progress (a publish may take until
 * its deadline) and joins the API threads, then frees srv. NULL is a no-op.
 * Call before destroying anything the callbacks use. Main thread.
 */
void api_destroy(api_server *srv);

/* The bound TCP port (useful after listening on port 0). Any thread. */
int api_port(api_server *srv);

#endif
