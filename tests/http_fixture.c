/*
 * http_fixture.c: the tests' in-process HTTP receiver (http_fixture.h).
 *
 * Data flow: a client connects to 127.0.0.1:<port>; libmicrohttpd accepts
 * (fx_notify counts the connection) and calls fx_answer once when the
 * request's headers arrived, once per chunk of body (which is read and
 * dropped) and once more when the body is complete. On that last call the
 * path's rule is looked up, the arrival counted, the rule's delay slept,
 * and the response queued.
 *
 * Threads: the daemon's listening thread and one thread per connection run
 * fx_notify and fx_answer; any test thread reads the counters. The rules
 * are written only by http_fixture_new, before the daemon starts, so the
 * daemon threads read them without a lock; every counter is atomic.
 */
#include "tests/http_fixture.h"
#include "core/clock.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "publishers/breaker.h"
#include "publishers/matchers.h"

/* One rule with its counters. */
typedef struct fx_path {
    http_fixture_rule rule; /* Strings owned (copied). */
    char *body;             /* rule.body_bytes 'x' bytes, or NULL. */
    atomic_int count;
    atomic_int current;
    atomic_int max_current;
    atomic_llong first_ms;
    atomic_llong last_ms;
} fx_path;

struct http_fixture {
    struct MHD_Daemon *daemon;
    int port;
    fx_path *paths;
    size_t n_paths;
    atomic_int connections;
};

/* The body of rules without body_bytes. */
static char ok_body[] = "ok";

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static fx_path *fx_find(const http_fixture *fx, const char *path)
{
    for (size_t i = 0; i < fx->n_paths; i++)
        if (strcmp(fx->paths[i].rule.path, path) == 0)
            return &fx->paths[i];
    return NULL;
}

/* Counts one arrival on p; returns its number since the last reset. */
static int fx_arrive(fx_path *p)
{
    long long now = (long long)herald_now_ms();
    long long zero = 0;
    int n = atomic_fetch_add(&p->count, 1) + 1;
    int cur = atomic_fetch_add(&p->current, 1) + 1;
    int max = atomic_load(&p->max_current);

    while (cur > max &&
           !atomic_compare_exchange_weak(&p->max_current, &max, cur))
        ;
    atomic_compare_exchange_strong(&p->first_ms, &zero, now);
    atomic_store(&p->last_ms, now);
    return n;
}

static void fx_notify(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                      enum MHD_ConnectionNotificationCode toe)
{
    http_fixture *fx = cls;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&fx->connections, 1);
}

static enum MHD_Result fx_answer(void *cls, struct MHD_Connection *conn,
                                 const char *url, const char *method,
                                 const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls)
{
    static int started;
    http_fixture *fx = cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    fx_path *p;
    unsigned int status = MHD_HTTP_NOT_FOUND;
    bool rule_status = false;

    /* First call: headers only. Middle calls: body chunks, dropped. */
    if (*req_cls == NULL) {
        *req_cls = &started;
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    p = fx_find(fx, url);
    if (p != NULL) {
        int n = fx_arrive(p);

        rule_status = p->rule.times == 0 || n <= p->rule.times;
        status = rule_status && p->rule.status ? p->rule.status : MHD_HTTP_OK;
        if (p->rule.delay_ms > 0)
            sleep_ms(p->rule.delay_ms);
        atomic_fetch_sub(&p->current, 1);
    }
    if (p != NULL && p->body != NULL)
        resp = MHD_create_response_from_buffer(p->rule.body_bytes, p->body,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp =
            MHD_create_response_from_buffer(2, ok_body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    if (rule_status && p->rule.retry_after != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
                                p->rule.retry_after);
    if (p != NULL && p->rule.location != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
                                p->rule.location);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Copies s into *dst (NULL stays NULL); false when memory runs out. */
static bool fx_strdup(const char **dst, const char *s)
{
    *dst = NULL;
    if (s == NULL)
        return true;
    *dst = strdup(s);
    return *dst != NULL;
}

http_fixture *http_fixture_new(const http_fixture_rule *rules, size_t n_rules,
                               char *errstr, size_t errstr_size)
{
    http_fixture *fx = calloc(1, sizeof *fx);
    struct sockaddr_in sin;
    const union MHD_DaemonInfo *info;

    if (fx == NULL)
        goto nomem;
    if (n_rules > 0) {
        fx->paths = calloc(n_rules, sizeof *fx->paths);
        if (fx->paths == NULL)
            goto nomem;
    }
    for (size_t i = 0; i < n_rules; i++) {
        fx_path *p = &fx->paths[i];

        if (rules[i].path == NULL || rules[i].path[0] != '/') {
            snprintf(errstr, errstr_size,
                     "http fixture rule %zu: path must start with '/'", i);
            goto fail;
        }
        fx->n_paths = i + 1;
        p->rule = rules[i];
        if (!fx_strdup(&p->rule.path, rules[i].path) ||
            !fx_strdup(&p->rule.retry_after, rules[i].retry_after) ||
            !fx_strdup(&p->rule.location, rules[i].location))
            goto nomem;
        if (p->rule.body_bytes > 0) {
            p->body = malloc(p->rule.body_bytes);
            if (p->body == NULL)
                goto nomem;
            memset(p->body, 'x', p->rule.body_bytes);
        }
    }
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fx->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, fx_answer, fx, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_NOTIFY_CONNECTION, fx_notify, fx, MHD_OPTION_END);
    if (fx->daemon == NULL) {
        snprintf(errstr, errstr_size,
                 "http fixture: cannot start libmicrohttpd on 127.0.0.1");
        goto fail;
    }
    info = MHD_get_daemon_info(fx->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0) {
        snprintf(errstr, errstr_size, "http fixture: no bound port");
        goto fail;
    }
    fx->port = info->port;
    return fx;

nomem:
    snprintf(errstr, errstr_size, "http fixture: out of memory");
fail:
    http_fixture_destroy(fx);
    return NULL;
}

void http_fixture_destroy(http_fixture *fx)
{
    if (fx == NULL)
        return;
    if (fx->daemon != NULL)
        MHD_stop_daemon(fx->daemon);
    for (size_t i = 0; i < fx->n_paths; i++) {
        free((char *)fx->paths[i].rule.path);
        free((char *)fx->paths[i].rule.retry_after);
        free((char *)fx->paths[i].rule.location);
        free(fx->paths[i].body);
    }
    free(fx->paths);
    free(fx);
}

int http_fixture_port(const http_fixture *fx)
{
    return fx->port;
}

char *http_fixture_url(const http_fixture *fx, const char *path, char *out,
                       size_t out_size)
{
    snprintf(out, out_size, "http://127.0.0.1:%d%s", fx->port, path);
    return out;
}

int http_fixture_closed_port(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port = 0;

    if (fd < 0)
        return 0;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0 &&
        getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
        port = ntohs(sin.sin_port);
    close(fd);
    return port;
}

void http_fixture_reset(http_fixture *fx)
{
    for (size_t i = 0; i < fx->n_paths; i++) {
        fx_path *p = &fx->paths[i];

        atomic_store(&p->count, 0);
        atomic_store(&p->max_current, 0);
        atomic_store(&p->first_ms, 0);
        atomic_store(&p->last_ms, 0);
    }
    atomic_store(&fx->connections, 0);
}

int http_fixture_count(const http_fixture *fx, const char *path)
{
    fx_path *p = fx_find(fx, path);

    return p ? atomic_load(&p->count) : -1;
}

int http_fixture_max_concurrent(const http_fixture *fx, const char *path)
{
    fx_path *p = fx_find(fx, path);

    return p ? atomic_load(&p->max_current) : -1;
}

int64_t http_fixture_first_ms(const http_fixture *fx, const char *path)
{
    fx_path *p = fx_find(fx, path);

    return p ? (int64_t)atomic_load(&p->first_ms) : 0;
}

int64_t http_fixture_last_ms(const http_fixture *fx, const char *path)
{
    fx_path *p = fx_find(fx, path);

    return p ? (int64_t)atomic_load(&p->last_ms) : 0;
}

int http_fixture_connections(const http_fixture *fx)
{
    return atomic_load(&fx->connections);
}

/* ------------------------------------------------------------------ */
/* The test target plugin                                               */
/* ------------------------------------------------------------------ */

static herald_err fx_build(const target *tgt, const alert *a, http_request *req,
                           char *errstr, size_t errstr_size)
{
    herald_err err;

    if (strstr(tgt->url, "/build-error") != NULL) {
        snprintf(errstr, errstr_size, "test plugin refuses to build");
        return HERALD_ERR_INVALID;
    }
    req->url = strdup(tgt->url);
    if (req->url == NULL)
        return HERALD_ERR_NOMEM;
    err = http_request_add_header(req, "Content-Type", "text/plain");
    if (err != HERALD_OK)
        return err;
    return buf_append_str(&req->body, a->fingerprint);
}

static const target_key fx_keys[] = {{NULL, 0, 0, NULL, NULL, false, NULL}};

const target_plugin http_fixture_plugin = {
    .name = "test",
    .keys = fx_keys,
    .build_request = fx_build,
};

target *http_fixture_target_new(const char *name, const char *url)
{
    target *tgt = calloc(1, sizeof *tgt);

    if (tgt == NULL)
        return NULL;
    tgt->name = strdup(name);
    tgt->url = strdup(url);
    if (tgt->name == NULL || tgt->url == NULL) {
        http_fixture_target_destroy(tgt);
        return NULL;
    }
    tgt->plugin = &http_fixture_plugin;
    tgt->enabled = true;
    tgt->timeout_ms = 5000;
    /* One attempt: a test that wants retries asks for them; short backoff
     * so that those tests stay quick. */
    tgt->retry.max_attempts = 1;
    tgt->retry.initial_backoff_ms = 10;
    tgt->retry.max_backoff_ms = 50;
    tgt->retry.max_elapsed_ms = 60000;
    tgt->max_concurrency = 16;
    tgt->rate_burst = 1;
    tgt->tls_verify = true;
    tgt->health.unhealthy_after = 3;
    tgt->health.degraded_latency_ms = 1000;
    tgt->health.interval_ms = 10000;
    tgt->health.timeout_ms = 2000;
    breaker_config_default(&tgt->breaker);
    return tgt;
}

void http_fixture_target_destroy(target *tgt)
{
    if (tgt == NULL)
        return;
    matchers_free(tgt->matchers, tgt->n_matchers);
    free(tgt->name);
    free(tgt->url);
    free(tgt);
}
