/*
 * api.c: the HTTP API server (see api.h) on libmicrohttpd: listening,
 * connections, routing, authorisation and sending replies. The routes and
 * their handlers are in api_routes.c (api.c calls it, never the reverse).
 *
 * Data flow: libmicrohttpd accepts a connection on one of the API threads
 * and calls api_access() several times per request: once with the headers
 * (we route the request, check the method and the bearer token, and
 * allocate an api_request), once per chunk of body (appended to a capped
 * buf), and a last time with no data, when the route's handler
 * (api_routes.c) fills the reply and we send it. Errors found with the
 * headers are answered at once when the client sent "Expect: 100-continue"
 * (it has not sent the body yet); otherwise the body is read and thrown
 * away first, so the client is not reset mid-upload and sees the answer.
 * Request bodies never exceed max_body_bytes in memory. api.c knows
 * nothing of publishers or targets: the worker wires the callbacks (api.h).
 *
 * Slow clients: libmicrohttpd limits connections in all and per client
 * address and their memory; its idle timeout is reset by every byte, so
 * each connection also has a read deadline on the process's timer engine
 * (core/timer.h): armed when the connection opens and again when a request
 * was answered, disarmed once a request is read, and when it passes the
 * socket is shut down (conn_deadline_passed()).
 *
 * Threads: libmicrohttpd's internal thread pool (cfg->threads threads) runs
 * every function here except api_new()/api_destroy(), which run on the main
 * thread, and conn_deadline_passed(), which runs on the timer thread. The
 * server fields are immutable after api_new(), so handlers read them without a
 * lock; the metrics registry has its own locks.
 *
 * Authorisation: with a token, every route but the probes needs it
 * (api_route.access); without one, api_new() refuses a non-loopback
 * address unless told otherwise (api_listen_check()).
 *
 * Specs: RFC 9110 (methods, 401/404/405/413, Allow), RFC 6750 (bearer
 * tokens, WWW-Authenticate).
 */
#include "worker/api_int.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timer.h"

#define API_DEFAULT_LISTEN "127.0.0.1:8080"
/* 1 MiB: an Alertmanager payload with one alert is a few KiB. */
#define API_DEFAULT_MAX_BODY (1024 * 1024)
/* 16 MiB: thousands of series, still far below any memory concern. */
#define API_DEFAULT_MAX_METRICS (16 * 1024 * 1024)
/* Four threads: /metrics and probes stay served while a few publishes
 * wait on slow targets; the machine-wide CPU cost is negligible. */
#define API_DEFAULT_THREADS 4
/* Open connections in all. Large, so that slow clients spread over many
 * addresses cannot take every slot before the read deadline cuts them;
 * each costs at most API_CONNECTION_MEMORY (8 MiB in all) and one
 * descriptor. */
#define API_DEFAULT_MAX_CONNECTIONS 512
/* libmicrohttpd's memory pool per connection (headers and read buffer; the
 * body goes to a capped buf). 16 KiB holds any header set an alert client
 * sends; the library default is 32 KiB. */
#define API_CONNECTION_MEMORY (16 * 1024)
/* Idle seconds before a connection is closed; above the 30 s default
 * publish deadline so a slow publish is not cut off. */
#define API_CONNECTION_TIMEOUT_S 60

/*
 * One open connection, from libmicrohttpd's NOTIFY_CONNECTION STARTED to
 * CLOSED (its socket_context). Its timer shuts the socket down when the
 * request being read is past its deadline; libmicrohttpd then sees the end
 * of the stream on its thread and closes the connection as usual. The fd
 * stays valid while the timer may fire: CLOSED is notified before the
 * socket is closed, and it cancels the timer, waiting for a running
 * callback.
 */
typedef struct api_conn {
    timer_entry deadline; /* Owner: the server. */
    api_server *srv;
    int fd;
    atomic_bool reading; /* A request is being read: the deadline counts. */
} api_conn;

void api_config_init(api_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen = API_DEFAULT_LISTEN;
    cfg->max_body_bytes = API_DEFAULT_MAX_BODY;
    cfg->max_metrics_bytes = API_DEFAULT_MAX_METRICS;
    cfg->threads = API_DEFAULT_THREADS;
    cfg->max_connections = API_DEFAULT_MAX_CONNECTIONS;
    cfg->per_ip_connections = API_DEFAULT_PER_IP_CONNECTIONS;
    cfg->read_deadline_ms = API_DEFAULT_READ_DEADLINE_MS;
}

/* Timer thread: the request was not read in time; cut the connection. */
static void conn_deadline_passed(void *arg)
{
    api_conn *c = arg;

    if (!atomic_load(&c->reading) || c->fd < 0)
        return;
    shutdown(c->fd, SHUT_RDWR);
    metrics_add(c->srv->cut, 1);
}

/* Starts the read deadline of the connection's next request. */
static void conn_reading(api_conn *c)
{
    atomic_store(&c->reading, true);
    /* HERALD_ERR_STATE: armed already (the previous request was answered
     * before it was fully read); its deadline stands. */
    (void)timer_add(c->srv->timer, &c->deadline,
                    herald_now_ms() + c->srv->read_deadline_ms,
                    conn_deadline_passed, c);
}

/* The request on conn is read: its deadline no longer counts. */
static void conn_read_done(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    api_conn *c = info ? info->socket_context : NULL;

    if (!c)
        return;
    atomic_store(&c->reading, false);
    timer_cancel(c->srv->timer, &c->deadline);
}

static void api_conn_notify(void *cls, struct MHD_Connection *conn,
                            void **socket_context,
                            enum MHD_ConnectionNotificationCode toe)
{
    api_server *srv = cls;
    api_conn *c = *socket_context;
    const union MHD_ConnectionInfo *info;

    if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        if (!c)
            return;
        atomic_store(&c->reading, false);
        timer_cancel_wait(srv->timer, &c->deadline);
        free(c);
        *socket_context = NULL;
        return;
    }
    /* Out of memory: the connection goes without a deadline, as before. */
    c = calloc(1, sizeof(*c));
    if (!c)
        return;
    timer_entry_init(&c->deadline, srv);
    c->srv = srv;
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = info ? info->connect_fd : -1;
    *socket_context = c;
    conn_reading(c);
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

    req->route = api_route_find(url);
    if (!req->route) {
        request_fail(req, 404, "no such endpoint");
        return;
    }
    if (req->route->post ? !is_post : !is_get) {
        request_fail(req, 405, "method %.16s not allowed; use %s", method,
                     req->route->post ? "POST" : "GET");
        return;
    }
    if (req->route->access != API_ROUTE_OPEN &&
        !(req->route->access == API_ROUTE_SCRAPE && srv->metrics_public) &&
        !request_authorized(srv, conn)) {
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
    if (rep->status >= 500 && req->route && !req->route->quiet_5xx)
        LOG_WARN("api", LOG_NOFIELDS, "%s answered %d", req->route->path,
                 rep->status);
    return ret;
}

static enum MHD_Result reply_request_error(api_server *srv, api_request *req,
                                           struct MHD_Connection *conn)
{
    api_reply rep = {0, NULL, NULL, 0};

    api_reply_error(&rep, req->status, req->message);
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
        if (req->status && expects_continue(conn)) {
            conn_read_done(conn);
            return reply_request_error(srv, req, conn);
        }
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
    conn_read_done(conn);
    if (req->status)
        return reply_request_error(srv, req, conn);
    req->route->handler(srv, req, &rep);
    return reply_send(srv, req, conn, &rep);
}

static void api_completed(void *cls, struct MHD_Connection *conn,
                          void **con_cls, enum MHD_RequestTerminationCode toe)
{
    api_request *req = *con_cls;
    const union MHD_ConnectionInfo *info;

    /* Answered: the next request on this connection gets its own read
     * deadline, from now (a kept-alive connection idle past it is cut). */
    if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK) {
        info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (info && info->socket_context)
            conn_reading(info->socket_context);
    }
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

bool api_listen_check(const char *listen, const char *token,
                      bool insecure_no_token, char *errstr, size_t errstr_size)
{
    struct sockaddr_storage ss;
    bool ipv6 = false;
    bool loopback = true;

    if (!listen)
        listen = API_DEFAULT_LISTEN;
    if (!listen_parse(listen, &ss, &ipv6, &loopback, errstr, errstr_size))
        return false;
    if (loopback || (token && token[0]) || insecure_no_token)
        return true;
    snprintf(errstr, errstr_size,
             "api listen \"%s\" is not a loopback address and no "
             "--api-token is set: anyone on the network could read the "
             "configuration and send pages; set --api-token "
             "(HERALD_API_TOKEN), or pass --insecure-no-token to accept an "
             "open API",
             listen);
    return false;
}

/* Starts libmicrohttpd's daemon on ss with its thread pool; NULL when it
 * cannot (address in use or not available). */
static struct MHD_Daemon *api_daemon_start(api_server *srv,
                                           const api_config *cfg,
                                           struct sockaddr_storage *ss,
                                           bool ipv6, unsigned int threads)
{
    unsigned int flags;

    /* MHD_USE_AUTO picks epoll on Linux: select() would fail once the
     * process (Kafka and curl sockets) holds descriptors past FD_SETSIZE. */
    flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
            (ipv6 ? MHD_USE_IPv6 : 0);
    /* The logger goes first so that errors about later options reach it. */
    /* The port argument only feeds libmicrohttpd's own messages (the
     * address comes from MHD_OPTION_SOCK_ADDR): give it the real one. */
    return MHD_start_daemon(
        flags,
        ntohs(ipv6 ? ((struct sockaddr_in6 *)ss)->sin6_port
                   : ((struct sockaddr_in *)ss)->sin_port),
        NULL, NULL, api_access, srv, MHD_OPTION_EXTERNAL_LOGGER, api_mhd_log,
        srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)ss,
        /* One thread means no pool (libmicrohttpd warns about a pool of
         * one). */
        MHD_OPTION_THREAD_POOL_SIZE, threads > 1 ? threads : 0u,
        MHD_OPTION_CONNECTION_LIMIT,
        cfg->max_connections ? cfg->max_connections
                             : API_DEFAULT_MAX_CONNECTIONS,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        cfg->per_ip_connections ? cfg->per_ip_connections
                                : API_DEFAULT_PER_IP_CONNECTIONS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)API_CONNECTION_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)API_CONNECTION_TIMEOUT_S,
        MHD_OPTION_NOTIFY_CONNECTION, api_conn_notify, srv,
        MHD_OPTION_NOTIFY_COMPLETED, api_completed, srv, MHD_OPTION_END);
}

api_server *api_new(const api_config *cfg, char *errstr, size_t errstr_size)
{
    api_server *srv = NULL;
    struct sockaddr_storage ss;
    bool ipv6 = false;
    bool loopback = true;
    const union MHD_DaemonInfo *info;
    unsigned int threads;

    if (!cfg) {
        snprintf(errstr, errstr_size, "api: no configuration");
        return NULL;
    }
    if (!api_listen_check(cfg->listen, cfg->token, cfg->insecure_no_token,
                          errstr, errstr_size) ||
        !listen_parse(cfg->listen ? cfg->listen : API_DEFAULT_LISTEN, &ss,
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
    srv->metrics_public = cfg->metrics_public;
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
    srv->cut = metrics_family(
        METRIC_COUNTER, "herald_api_connections_cut_total",
        "API connections closed because a request was not read within the "
        "read deadline.",
        "", NULL, 0);
    srv->read_deadline_ms = cfg->read_deadline_ms
                                ? (int64_t)cfg->read_deadline_ms
                                : API_DEFAULT_READ_DEADLINE_MS;
    srv->timer = timer_shared_acquire(errstr, errstr_size);
    if (!srv->timer)
        goto fail;
    threads = cfg->threads ? cfg->threads : API_DEFAULT_THREADS;
    srv->daemon = api_daemon_start(srv, cfg, &ss, ipv6, threads);
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
                 "--insecure-no-token: the API listens on a non-loopback "
                 "address without a token; /publish, /targets and /stats "
                 "are open to the network");
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
    /* Closing the connections cancels their timers (api_conn_notify()). */
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    if (srv->timer) {
        timer_cancel_owner(srv->timer, srv);
        timer_shared_release();
    }
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
