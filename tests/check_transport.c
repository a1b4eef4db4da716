/*
 * check_transport.c: the HTTP transport (publishers/transport.h) against
 * the in-process HTTP fixture (tests/http_fixture.h) on 127.0.0.1.
 *
 * Paths: /ok 200 "ok"; /retry 429 with Retry-After: 7; /big a 100 000-byte
 * body; /slow 200 after 500 ms; /gate 200 after 50 ms (its concurrency is
 * what the limit test reads). The fixture counts new connections to show
 * keep-alive reuse.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "publishers/breaker.h"
#include "publishers/transport.h"
#include "tests/check_main.h"
#include "tests/http_fixture.h"

static const http_fixture_rule rules[] = {
    {.path = "/ok"},
    {.path = "/retry", .status = 429, .retry_after = "7"},
    {.path = "/big", .body_bytes = 100000},
    {.path = "/slow", .delay_ms = 500},
    {.path = "/gate", .delay_ms = 50},
    /* 8 MiB: far past the 64 KiB default cap of a response body. */
    {.path = "/huge", .body_bytes = 8 << 20},
    {.path = "/huge503", .status = 503, .body_bytes = 8 << 20},
};

/* The receiver, started once in main() and reset before each test. */
static http_fixture *fx;

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
    int64_t at_ms;
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
    r->at_ms = herald_now_ms();
    atomic_store(&r->done, true);
}

static transport *tp;
static target tgt;
static char url_buf[128];

static void setup(void)
{
    char err[256];

    http_fixture_reset(fx);
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
                 http_fixture_closed_port());
    else
        http_fixture_url(fx, path, url_buf, sizeof url_buf);
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

START_TEST(test_huge_answer_cut)
{
    rec r1 = {0};
    rec r2 = {0};
    rec r3 = {0};

    /* Reading stops at the default cap (64 KiB) and the connection is
     * closed; the answer is classified with what was read. */
    submit("/huge", 0, &r1);
    WAIT_FOR(atomic_load(&r1.done));
    ck_assert_int_eq(r1.status, 200);
    ck_assert_int_eq(r1.transport_error, 0);
    ck_assert_uint_eq(r1.body_len, 64 * 1024);
    submit("/huge503", 0, &r2);
    WAIT_FOR(atomic_load(&r2.done));
    ck_assert_int_eq(r2.status, 503);
    ck_assert_int_eq(r2.transport_error, 0);
    /* The cut connections were not reused: three requests, three
     * connections (a kept-alive one would serve the third). */
    submit("/ok", 0, &r3);
    WAIT_FOR(atomic_load(&r3.done));
    ck_assert_int_eq(r3.status, 200);
    ck_assert_int_eq(http_fixture_connections(fx), 3);
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
    snprintf(url_buf, sizeof url_buf, "https://127.0.0.1:%d/ok",
             http_fixture_port(fx));
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
    int64_t t0 = herald_now_ms();

    /* Sent no earlier than 200 ms from now. */
    submit("/ok", (int64_t)t0 + 200, &r);
    ck_assert_uint_eq(transport_pending(tp), 1);
    WAIT_FOR(atomic_load(&r.done));
    ck_assert_int_eq(r.status, 200);
    ck_assert_int_ge(http_fixture_first_ms(fx, "/ok") - t0, 199);
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
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 5);
    ck_assert_int_eq(http_fixture_connections(fx), 1);
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
    ck_assert_int_eq(http_fixture_count(fx, "/gate"), N);
    ck_assert_int_eq(http_fixture_max_concurrent(fx, "/gate"), 2);
}
END_TEST

START_TEST(test_rate_limit)
{
    enum { N = 4 };
    rec r[N];
    int64_t t0 = herald_now_ms();

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
    int64_t t0 = herald_now_ms();

    /* Two requests wait for timers far away, one is in flight and one
     * waits behind it for the target's only slot. */
    tgt.max_concurrency = 1;
    submit("/ok", (int64_t)t0 + 600000, &delayed);
    submit("/ok", (int64_t)t0 + 500000, &delayed2);
    submit("/slow", 0, &slow);
    submit("/slow", 0, &queued);
    WAIT_FOR(http_fixture_count(fx, "/slow") == 1);
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
    ck_assert_int_eq(http_fixture_count(fx, "/slow"), 1);
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
    ck_assert_int_eq(http_fixture_count(fx, "/ok"), 3);
}
END_TEST

static Suite *transport_suite(void)
{
    const check_case cases[] = {
        {"config_defaults", test_config_defaults},
        {"ok", test_ok},
        {"methods", test_methods},
        {"retry_after_captured", test_retry_after_captured},
        {"body_capped", test_body_capped},
        {"huge_answer_cut", test_huge_answer_cut},
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
    Suite *s = suite_create("transport");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    return s;
}

int main(void)
{
    char err[256];
    int rc;

    log_init(LOG_LEVEL_OFF, LOG_FORMAT_TEXT);
    fx = http_fixture_new(rules, CHECK_N_CASES(rules), err, sizeof err);
    if (fx == NULL) {
        fprintf(stderr, "%s\n", err);
        return EXIT_FAILURE;
    }
    rc = check_suite_run(transport_suite());
    http_fixture_destroy(fx);
    return rc;
}
