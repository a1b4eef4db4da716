/*
 * check_transport.c: the HTTP transport (publishers/transport.h) against an
 * in-process libmicrohttpd receiver on 127.0.0.1.
 *
 * Paths: /ok 200 "ok"; /retry 429 with Retry-After: 7; /big a 100 000-byte
 * body; /slow 200 after 500 ms; /gate 200 after 50 ms, counting concurrent
 * requests. New connections are counted to show keep-alive reuse.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "publishers/transport.h"
#include "worker/log.h"

enum { P_OK, P_RETRY, P_BIG, P_SLOW, P_GATE, P_N };
static const char *const srv_paths[P_N] = {"/ok", "/retry", "/big", "/slow",
                                           "/gate"};
#define BIG_LEN 100000

static struct {
    struct MHD_Daemon *d;
    int port;
    int closed_port;
    atomic_int count[P_N];
    atomic_int current;
    atomic_int max_current;
    atomic_int connections;
    atomic_llong first_ms;
    char *big;
} srv;

static long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

static void srv_notify(void *cls, struct MHD_Connection *c, void **socket_ctx,
                       enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)c;
    (void)socket_ctx;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&srv.connections, 1);
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    static int marker;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned int status = 200;
    int p;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    for (p = 0; p < P_N; p++)
        if (strcmp(url, srv_paths[p]) == 0)
            break;
    if (p < P_N) {
        long long zero = 0;

        atomic_fetch_add(&srv.count[p], 1);
        atomic_compare_exchange_strong(&srv.first_ms, &zero, mono_ms());
    }
    if (p == P_SLOW)
        sleep_ms(500);
    if (p == P_GATE) {
        int cur = atomic_fetch_add(&srv.current, 1) + 1;
        int max = atomic_load(&srv.max_current);

        while (cur > max &&
               !atomic_compare_exchange_weak(&srv.max_current, &max, cur))
            ;
        sleep_ms(50);
        atomic_fetch_sub(&srv.current, 1);
    }
    if (p == P_BIG)
        resp = MHD_create_response_from_buffer(BIG_LEN, srv.big,
                                               MHD_RESPMEM_PERSISTENT);
    else
        resp = MHD_create_response_from_buffer(2, (void *)"ok",
                                               MHD_RESPMEM_PERSISTENT);
    if (p == P_RETRY) {
        status = 429;
        MHD_add_response_header(resp, "Retry-After", "7");
    }
    if (p == P_N)
        status = 404;
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void srv_start(void)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd;

    srv.big = malloc(BIG_LEN);
    memset(srv.big, 'x', BIG_LEN);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, srv_handler, NULL, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_NOTIFY_CONNECTION, srv_notify, NULL, MHD_OPTION_END);
    if (!srv.d) {
        fprintf(stderr, "cannot start the test receiver\n");
        exit(1);
    }
    srv.port = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT)->port;
    /* A port nobody listens on: bound, read, closed. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    bind(fd, (struct sockaddr *)&sin, sizeof sin);
    getsockname(fd, (struct sockaddr *)&sin, &len);
    srv.closed_port = ntohs(sin.sin_port);
    close(fd);
}

/* ------------------------------------------------------------------ */
/* Completion records                                                   */
/* ------------------------------------------------------------------ */

typedef struct rec {
    atomic_bool done;
    long status;
    int transport_error;
    char error[128];
    size_t body_len;
    char body[8];
    char retry_after[32];
    bool has_retry_after;
    double duration_ms;
    long long at_ms;
} rec;

static void rec_cb(void *opaque, const http_response *resp)
{
    rec *r = opaque;

    r->status = resp->status;
    r->transport_error = resp->transport_error;
    snprintf(r->error, sizeof r->error, "%s", resp->error ? resp->error : "");
    r->body_len = resp->body_len;
    snprintf(r->body, sizeof r->body, "%s", resp->body ? resp->body : "");
    r->has_retry_after = resp->retry_after != NULL;
    if (resp->retry_after)
        snprintf(r->retry_after, sizeof r->retry_after, "%s",
                 resp->retry_after);
    r->duration_ms = resp->duration_ms;
    r->at_ms = mono_ms();
    atomic_store(&r->done, true);
}

#define WAIT_FOR(cond)                                                         \
    do {                                                                       \
        long long until_ = mono_ms() + 5000;                                   \
        while (!(cond) && mono_ms() < until_)                                  \
            sleep_ms(1);                                                       \
        ck_assert_msg((cond), "timed out waiting for " #cond);                 \
    } while (0)

static transport *tp;
static target tgt;
static char url_buf[128];

static void setup(void)
{
    char err[256];

    for (int i = 0; i < P_N; i++)
        atomic_store(&srv.count[i], 0);
    atomic_store(&srv.current, 0);
    atomic_store(&srv.max_current, 0);
    atomic_store(&srv.connections, 0);
    atomic_store(&srv.first_ms, 0);
    tp = transport_new(NULL, err, sizeof err);
    ck_assert_msg(tp != NULL, "%s", err);
    memset(&tgt, 0, sizeof tgt);
    tgt.name = "t";
    tgt.enabled = true;
    tgt.timeout_ms = 5000;
    tgt.max_concurrency = 16;
    tgt.rate_burst = 1;
    tgt.tls_verify = true;
}

static void teardown(void)
{
    transport_destroy(tp);
    tp = NULL;
}

/* A POST request to path on the test receiver (or a closed port). */
static void mk_req(http_request *req, const char *path)
{
    if (strcmp(path, "refused") == 0)
        snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d/ok",
                 srv.closed_port);
    else
        snprintf(url_buf, sizeof url_buf, "http://127.0.0.1:%d%s", srv.port,
                 path);
    http_request_init(req, 1024);
    req->url = strdup(url_buf);
    ck_assert_int_eq(http_request_add_header(req, "X-Test", "1"), HERALD_OK);
    ck_assert_int_eq(buf_append_str(&req->body, "hello"), HERALD_OK);
}

static void submit(const char *path, int64_t not_before, rec *r)
{
    http_request req;

    mk_req(&req, path);
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, not_before, rec_cb, r),
                     HERALD_OK);
    /* Ownership moved: the caller's struct is empty. */
    ck_assert_ptr_null(req.url);
    http_request_free(&req);
}

START_TEST(test_config_defaults)
{
    transport_config cfg;
    char err[128];

    transport_config_default(&cfg);
    ck_assert_int_eq(cfg.n_threads, 2);
    ck_assert_uint_eq(cfg.max_response_body, 64 * 1024);
    cfg.n_threads = 0;
    ck_assert_ptr_null(transport_new(&cfg, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "n_threads"));
    transport_config_default(&cfg);
    cfg.max_response_body = 0;
    ck_assert_ptr_null(transport_new(&cfg, err, sizeof err));
    transport_destroy(NULL);
    ck_assert_uint_eq(transport_pending(NULL), 0);
}
END_TEST

START_TEST(test_ok)
{
    rec r = {0};

    submit("/ok", 0, &r);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.transport_error, 0);
    ck_assert_str_eq(r.body, "ok");
    ck_assert_uint_eq(r.body_len, 2);
    ck_assert(!r.has_retry_after);
    ck_assert(r.duration_ms >= 0.0);
    WAIT_FOR(transport_pending(tp) == 0);
}
END_TEST

START_TEST(test_methods)
{
    rec r1 = {0};
    rec r2 = {0};
    rec r3 = {0};
    http_request req;

    mk_req(&req, "/ok");
    snprintf(req.method, sizeof req.method, "GET");
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, rec_cb, &r1),
                     HERALD_OK);
    mk_req(&req, "/ok");
    snprintf(req.method, sizeof req.method, "PUT");
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, rec_cb, &r2),
                     HERALD_OK);
    mk_req(&req, "/ok");
    snprintf(req.method, sizeof req.method, "HEAD");
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, rec_cb, &r3),
                     HERALD_OK);
    WAIT_FOR(atomic_load(&r1.done) && atomic_load(&r2.done) &&
             atomic_load(&r3.done));
    ck_assert_int_eq(r1.status, 200);
    ck_assert_int_eq(r2.status, 200);
    ck_assert_int_eq(r3.status, 200);
    ck_assert_uint_eq(r3.body_len, 0);
}
END_TEST

START_TEST(test_retry_after_captured)
{
    rec r = {0};

    submit("/retry", 0, &r);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 429);
    ck_assert(r.has_retry_after);
    ck_assert_str_eq(r.retry_after, "7");
}
END_TEST

START_TEST(test_body_capped)
{
    transport_config cfg;
    char err[128];
    rec r = {0};

    transport_destroy(tp);
    transport_config_default(&cfg);
    cfg.max_response_body = 1000;
    cfg.n_threads = 1;
    tp = transport_new(&cfg, err, sizeof err);
    ck_assert_ptr_nonnull(tp);
    submit("/big", 0, &r);
    WAIT_FOR(atomic_load(&r.done));
    /* The rest was read and discarded: the transfer still succeeded. */
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_eq(r.transport_error, 0);
    ck_assert_uint_eq(r.body_len, 1000);
}
END_TEST

START_TEST(test_connection_refused)
{
    rec r = {0};

    submit("refused", 0, &r);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.transport_error, CURLE_COULDNT_CONNECT);
    ck_assert_str_ne(r.error, "");
}
END_TEST

START_TEST(test_tls_failure)
{
    rec r = {0};
    http_request req;

    /* HTTPS to a plain HTTP receiver: the TLS handshake fails, reported
     * as a transport error; the CA file setting is passed through. */
    tgt.tls_ca_file = "/nonexistent/ca.pem";
    mk_req(&req, "/ok");
    free(req.url);
    snprintf(url_buf, sizeof url_buf, "https://127.0.0.1:%d/ok", srv.port);
    req.url = strdup(url_buf);
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, rec_cb, &r),
                     HERALD_OK);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_ne(r.transport_error, 0);
}
END_TEST

START_TEST(test_timeout)
{
    rec r = {0};

    tgt.timeout_ms = 100;
    submit("/slow", 0, &r);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.transport_error, CURLE_OPERATION_TIMEDOUT);
}
END_TEST

START_TEST(test_not_before)
{
    rec r = {0};
    long long t0 = mono_ms();

    /* Sent no earlier than 200 ms from now. */
    submit("/ok", (int64_t)t0 + 200, &r);
    ck_assert_uint_eq(transport_pending(tp), 1);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(atomic_load(&srv.first_ms) - t0, 199);
}
END_TEST

START_TEST(test_keepalive_reuse)
{
    for (int i = 0; i < 5; i++) {
        rec r = {0};

        submit("/ok", 0, &r);
        WAIT_FOR(atomic_load(&r.done));
        ck_assert_int_eq(r.status, 200);
    }
    /* Five requests one after another over one connection. */
    ck_assert_int_eq(atomic_load(&srv.count[P_OK]), 5);
    ck_assert_int_eq(atomic_load(&srv.connections), 1);
}
END_TEST

START_TEST(test_max_concurrency)
{
    enum { N = 8 };
    rec r[N];
    rec other = {0};
    target tgt2;

    memset(r, 0, sizeof r);
    tgt.max_concurrency = 2;
    for (int i = 0; i < N; i++)
        submit("/gate", 0, &r[i]);
    /* Another target is not held up by the first one's queue. */
    tgt2 = tgt;
    tgt2.name = "other";
    tgt2.max_concurrency = 16;
    {
        http_request req;

        mk_req(&req, "/ok");
        ck_assert_int_eq(transport_submit(tp, &tgt2, &req, 0, rec_cb, &other),
                         HERALD_OK);
    }
    for (int i = 0; i < N; i++)
        WAIT_FOR(atomic_load(&r[i].done));
    WAIT_FOR(atomic_load(&other.done));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(r[i].status, 200);
    ck_assert_int_eq(atomic_load(&srv.count[P_GATE]), N);
    ck_assert_int_eq(atomic_load(&srv.max_current), 2);
}
END_TEST

START_TEST(test_rate_limit)
{
    enum { N = 4 };
    rec r[N];
    long long t0 = mono_ms();

    /* 20 tokens a second, burst 1: four requests need >= 150 ms. */
    memset(r, 0, sizeof r);
    tgt.rate_per_sec = 20;
    tgt.rate_burst = 1;
    for (int i = 0; i < N; i++)
        submit("/ok", 0, &r[i]);
    for (int i = 0; i < N; i++)
        WAIT_FOR(atomic_load(&r[i].done));
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(r[i].status, 200);
    ck_assert_int_ge(r[N - 1].at_ms - t0, 140);
}
END_TEST

START_TEST(test_invalid_submit)
{
    http_request req;
    rec r = {0};

    mk_req(&req, "/ok");
    ck_assert_int_eq(transport_submit(NULL, &tgt, &req, 0, rec_cb, &r),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(transport_submit(tp, NULL, &req, 0, rec_cb, &r),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, NULL, &r),
                     HERALD_ERR_INVALID);
    /* On error the caller keeps the request. */
    ck_assert_ptr_nonnull(req.url);
    free(req.url);
    req.url = NULL;
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, rec_cb, &r),
                     HERALD_ERR_INVALID);
    http_request_free(&req);
}
END_TEST

START_TEST(test_destroy_cancels)
{
    rec delayed = {0};
    rec delayed2 = {0};
    rec slow = {0};
    rec queued = {0};
    long long t0 = mono_ms();

    /* Two requests wait for timers far away, one is in flight and one
     * waits behind it for the target's only slot. */
    tgt.max_concurrency = 1;
    submit("/ok", (int64_t)t0 + 600000, &delayed);
    submit("/ok", (int64_t)t0 + 500000, &delayed2);
    submit("/slow", 0, &slow);
    submit("/slow", 0, &queued);
    WAIT_FOR(atomic_load(&srv.count[P_SLOW]) == 1);
    ck_assert_uint_eq(transport_pending(tp), 4);
    transport_destroy(tp);
    tp = NULL;
    ck_assert(atomic_load(&delayed.done));
    ck_assert(atomic_load(&delayed2.done));
    ck_assert(atomic_load(&slow.done));
    ck_assert(atomic_load(&queued.done));
    ck_assert_int_eq(delayed.transport_error, TRANSPORT_ERR_CANCELLED);
    ck_assert_str_eq(delayed.error, "cancelled");
    ck_assert_int_eq(delayed2.transport_error, TRANSPORT_ERR_CANCELLED);
    ck_assert_int_eq(slow.transport_error, TRANSPORT_ERR_CANCELLED);
    ck_assert_int_eq(queued.transport_error, TRANSPORT_ERR_CANCELLED);
    /* The queued one was never sent. */
    ck_assert_int_eq(atomic_load(&srv.count[P_SLOW]), 1);
}
END_TEST

/* Resubmits from inside the callback, as the publisher's retries do. */
static atomic_int chain_left;
static atomic_bool chain_done;

static void chain_cb(void *opaque, const http_response *resp)
{
    http_request req;

    (void)resp;
    if (atomic_fetch_sub(&chain_left, 1) <= 1) {
        atomic_store(&chain_done, true);
        return;
    }
    mk_req(&req, "/ok");
    if (transport_submit(tp, &tgt, &req, 0, chain_cb, opaque) != HERALD_OK) {
        http_request_free(&req);
        atomic_store(&chain_done, true);
    }
}

START_TEST(test_submit_from_callback)
{
    http_request req;

    atomic_store(&chain_left, 3);
    atomic_store(&chain_done, false);
    mk_req(&req, "/ok");
    ck_assert_int_eq(transport_submit(tp, &tgt, &req, 0, chain_cb, NULL),
                     HERALD_OK);
    WAIT_FOR(atomic_load(&chain_done));
    ck_assert_int_eq(atomic_load(&srv.count[P_OK]), 3);
}
END_TEST

static Suite *transport_suite(void)
{
    Suite *s = suite_create("transport");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"config_defaults", test_config_defaults},
        {"ok", test_ok},
        {"methods", test_methods},
        {"retry_after_captured", test_retry_after_captured},
        {"body_capped", test_body_capped},
        {"connection_refused", test_connection_refused},
        {"timeout", test_timeout},
        {"tls_failure", test_tls_failure},
        {"not_before", test_not_before},
        {"keepalive_reuse", test_keepalive_reuse},
        {"max_concurrency", test_max_concurrency},
        {"rate_limit", test_rate_limit},
        {"invalid_submit", test_invalid_submit},
        {"destroy_cancels", test_destroy_cancels},
        {"submit_from_callback", test_submit_from_callback},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    log_init(LOG_LEVEL_OFF, LOG_FORMAT_TEXT);
    srv_start();
    sr = srunner_create(transport_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    MHD_stop_daemon(srv.d);
    free(srv.big);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
