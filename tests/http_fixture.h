/*
 * http_fixture.h: the in-process HTTP receiver that the tests and the
 * benchmarks send to, and a test target aimed at it.
 *
 * A fixture is a libmicrohttpd daemon (RFC 9110 semantics as implemented
 * by libmicrohttpd 0.9.75) on 127.0.0.1, on a port the kernel chose, with
 * one thread per connection. Each path it serves has a rule: status, delay,
 * Retry-After and Location headers, body size, and for how many requests
 * the status holds before the path answers 200. Per path it counts the
 * requests, the most it handled at once, and the arrival times of the
 * first and last one; for the whole fixture it counts TCP connections
 * (to see keep-alive reuse). Any other path answers 404 and is not
 * counted.
 *
 * Linked into every test and benchmark as the static library
 * herald_test_fixtures; it does not depend on Check, so benchmarks can
 * use it.
 */
#ifndef HERALD_TESTS_HTTP_FIXTURE_H
#define HERALD_TESTS_HTTP_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "publishers/target.h"

typedef struct http_fixture http_fixture;

/* What the fixture answers on one path. Zeroed fields mean "plain 200". */
typedef struct http_fixture_rule {
    const char *path;        /* Exact request path, "/ok"; required. */
    unsigned int status;     /* Answer status; 0 means 200. */
    int times;               /* Only the first `times` requests since the
                                last reset get status and retry_after;
                                later ones get a plain 200. 0: every one. */
    int delay_ms;            /* Sleep this long before answering, ms. */
    const char *retry_after; /* Retry-After value sent with status, or
                                NULL for none. */
    const char *location;    /* Location header value, or NULL. */
    size_t body_bytes;       /* Body: 0 means "ok", else this many 'x'. */
} http_fixture_rule;

/*
 * Starts a fixture on 127.0.0.1 port 0 serving rules[0..n_rules). The
 * rules and their strings are copied (the caller keeps its array).
 * Returns the fixture, which the caller destroys with
 * http_fixture_destroy(), or NULL with errstr filled when a rule has no
 * path or a path not starting with '/', memory runs out, or the daemon
 * cannot start. Any thread; n_rules may be 0 (every path answers 404,
 * for tests that only need something listening).
 */
http_fixture *http_fixture_new(const http_fixture_rule *rules, size_t n_rules,
                               char *errstr, size_t errstr_size);

/*
 * Stops the daemon (closing its port and joining its threads, so requests
 * in their delay are finished first) and frees the fixture. NULL is a
 * no-op. Call it once, from one thread, after every client stopped
 * expecting answers.
 */
void http_fixture_destroy(http_fixture *fx);

/* The port the fixture listens on. Any thread. */
int http_fixture_port(const http_fixture *fx);

/*
 * Writes "http://127.0.0.1:<port><path>" into out (out_size bytes,
 * truncated if short) and returns out. Any thread.
 */
char *http_fixture_url(const http_fixture *fx, const char *path, char *out,
                       size_t out_size);

/*
 * A loopback port nobody listens on: bound to port 0, read and closed, so
 * a connection to it is refused (unless another process takes the port in
 * the meantime, which the kernel makes unlikely). Any thread.
 */
int http_fixture_closed_port(void);

/*
 * Zeroes every counter below and restarts each rule's `times`. Requests
 * still being handled keep counting as concurrent. Any thread; meant for
 * a test's setup, when no request of the test is in flight yet.
 */
void http_fixture_reset(http_fixture *fx);

/*
 * Requests that arrived on path since the last reset (counted on arrival,
 * before the rule's delay), or -1 when no rule serves path. Any thread.
 */
int http_fixture_count(const http_fixture *fx, const char *path);

/*
 * The most requests on path handled at the same time since the last
 * reset (from arrival to answer), or -1 when no rule serves path. Any
 * thread.
 */
int http_fixture_max_concurrent(const http_fixture *fx, const char *path);

/*
 * Arrival time of the first (last) request on path since the last reset,
 * in herald_now_ms() milliseconds; 0 when none came or no rule serves
 * path. Any thread.
 */
int64_t http_fixture_first_ms(const http_fixture *fx, const char *path);
int64_t http_fixture_last_ms(const http_fixture *fx, const char *path);

/* TCP connections accepted since the last reset. Any thread. */
int http_fixture_connections(const http_fixture *fx);

/*
 * The test target plugin, named "test": its request is a POST of the
 * alert's fingerprint (text/plain) to the target URL. A URL containing
 * "/build-error" makes build_request fail with HERALD_ERR_INVALID, so tests
 * can exercise a plugin that refuses. Static; any thread.
 */
extern const target_plugin http_fixture_plugin;

/*
 * A new enabled target named name sending to url with http_fixture_plugin:
 * 5000 ms timeout, one attempt (backoff 10..50 ms, 60 s elapsed cap),
 * concurrency 16, no rate limit, the default breaker, and no active health
 * probes (health.enabled false; unhealthy after 3 failures, degraded
 * above 1000 ms, for tests that feed a monitor). Both strings are copied.
 * The caller owns the target and frees it with
 * http_fixture_target_destroy() (which also frees matchers a test added
 * with malloc/strdup). Returns NULL when memory runs out. Any thread.
 */
target *http_fixture_target_new(const char *name, const char *url);

/* Frees a target from http_fixture_target_new(); NULL is a no-op. */
void http_fixture_target_destroy(target *tgt);

#endif
