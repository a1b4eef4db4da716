/*
 * transport.h: the HTTP transport of herald, a few I/O threads each driving
 * one libcurl multi handle.
 *
 * A request is submitted with the target it is for; the transport sends it
 * on the I/O thread chosen by hashing the target name, so all requests of a
 * target share that thread's connection cache (HTTP keep-alive: libcurl
 * keeps connections of a multi handle open and reuses them for the next
 * request to the same host). Per-target limits are enforced here, keyed by
 * target name so they survive a reload of targets.yaml:
 *   - max_concurrency: at most that many requests of the target in flight,
 *     retries included; further requests wait in the target's own queue,
 *     they are never dropped;
 *   - a token bucket of rate_per_sec tokens a second, rate_burst deep
 *     (rate_per_sec 0 = unlimited).
 * A target that is at its limit never holds a slot another target needs:
 * every target has its own queue and counters.
 *
 * A request may carry a "not before" time (monotonic ms): it waits for a
 * timer of the timer engine (core/timer.h), whose callback hands it to its
 * I/O thread then. Backoff delays between retries are made this way, so no
 * thread ever sleeps for a retry.
 *
 * libcurl rules followed (docs/libcurl/libcurl-thread.md): curl_global_init
 * is called once in transport_new before any thread starts; easy and multi
 * handles never leave their I/O thread; CURLOPT_NOSIGNAL is set on every
 * handle. The I/O loop blocks in curl_multi_poll() and submitters wake it
 * with curl_multi_wakeup() (libcurl >= 7.68).
 *
 * Thread-safety: transport_submit() may be called from any thread,
 * including from a completion callback on an I/O thread.
 */
#ifndef HERALD_TRANSPORT_H
#define HERALD_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/timer.h"
#include "publishers/target.h"

/* Transport error code used for requests failed by transport_destroy()
 * (libcurl's CURLE_ABORTED_BY_CALLBACK). http_response.error is
 * "cancelled". */
#define TRANSPORT_ERR_CANCELLED 42

typedef struct transport transport;

/* Settings of a transport; transport_config_default() fills defaults. */
typedef struct transport_config {
    int n_threads;              /* I/O threads, 1..64 (default 2). */
    size_t max_response_body;   /* Response body read, bytes (64 KiB); past
                                   it reading stops, the connection is
                                   closed and the answer is classified
                                   with what was read. */
    long max_total_connections; /* Open connections per I/O thread
                                   (default 256, 0 = libcurl default). */
    const char *user_agent;     /* Borrowed during transport_new (copied);
                                   NULL = "herald/<version>". */
    herald_timer *timer;        /* Engine of "not before" times, borrowed
                                   until transport_destroy returned; NULL
                                   (default) = timer_shared_acquire(). */
} transport_config;

/*
 * Completion callback of one request: resp (borrowed for the call only)
 * holds the status and capped body, or a transport error (CURLcode, text,
 * duration). Called exactly once per accepted request, always on the
 * transport I/O thread that owns the request (also when transport_destroy
 * cancels it, with transport_error TRANSPORT_ERR_CANCELLED, before
 * transport_destroy returns). No lock of the transport is
 * held during the call; the callback may call transport_submit() but must
 * not call transport_destroy() and should not block: it delays every other
 * request of its I/O thread.
 */
typedef void (*transport_done_cb)(void *opaque, const http_response *resp);

/* Fills cfg with the defaults documented in transport_config. */
void transport_config_default(transport_config *cfg);

/*
 * Creates a transport and starts its I/O threads. cfg may be NULL for the
 * defaults. Returns NULL with errstr filled when the configuration is
 * invalid or libcurl, memory or threads fail. Free with transport_destroy().
 * Call from one thread, before other threads use libcurl (curl_global_init
 * is not thread-safe); every later curl_global_init call is reference
 * counted by libcurl.
 */
transport *transport_new(const transport_config *cfg, char *errstr,
                         size_t errstr_size);

/*
 * Queues req for sending to tgt's I/O thread. tgt is borrowed for the call
 * only: the transport copies what it needs (name, timeout_ms, tls_verify,
 * tls_ca_file, max_concurrency, rate_per_sec, rate_burst), so targets may be
 * freed by a reload while requests are pending. The latest submission's
 * limits apply to the target's name.
 *
 * req: ownership is taken on success (the transport frees it, and the
 * caller's struct is left empty: http_request_init'ed with max_body 0); on
 * error the caller keeps it. not_before_ms: monotonic ms (herald_now_ms())
 * before which the request is not sent; 0 or a past time = now.
 * cb(opaque, resp) is called exactly once when the request is final
 * (see transport_done_cb). The per-attempt timeout is tgt->timeout_ms.
 *
 * Errors: HERALD_ERR_INVALID (NULL argument, empty method or URL),
 * HERALD_ERR_STATE (the transport is being destroyed), HERALD_ERR_NOMEM.
 * Any thread.
 */
herald_err transport_submit(transport *tp, const target *tgt, http_request *req,
                            int64_t not_before_ms, transport_done_cb cb,
                            void *opaque);

/*
 * Like transport_submit(), with the per-attempt timeout given in
 * timeout_ms (milliseconds, whole request; <= 0 = tgt->timeout_ms). The
 * ParallelPublisher uses it to bound an attempt by the publish deadline.
 */
herald_err transport_submit_ex(transport *tp, const target *tgt,
                               http_request *req, int64_t not_before_ms,
                               int timeout_ms, transport_done_cb cb,
                               void *opaque);

/*
 * Number of requests accepted and not yet completed (queued, waiting for a
 * limit or a timer, or in flight). Any thread; a snapshot.
 */
size_t transport_pending(transport *tp);

/*
 * Stops the I/O threads: every request not yet completed (queued, delayed
 * or in flight) is completed with transport_error TRANSPORT_ERR_CANCELLED
 * and error "cancelled"; then the threads are joined and everything freed.
 * Submissions made during destruction fail with HERALD_ERR_STATE.
 * NULL is a no-op. Call from a thread that is not an I/O thread, once.
 */
void transport_destroy(transport *tp);

#endif
