/*
 * transport.c: HTTP requests over a few I/O threads, each driving one
 * libcurl multi handle (see transport.h).
 *
 * Data flow: transport_submit() copies what it needs of the target into a
 * tp_req and appends it to the "incoming" list of the I/O thread chosen by
 * hashing the target name, then wakes that thread (curl_multi_wakeup). A
 * request with a later "not before" time is armed in the timer engine
 * (core/timer.h) instead, with its I/O thread as owner; the timer's callback
 * (timer thread) appends it to the incoming list and wakes the I/O thread the
 * same way. The I/O thread moves incoming requests into the queue of their
 * target (tp_target, one per target name and thread). A target's queue is
 * drained while the target has a concurrency slot and a rate token; each
 * started request gets an easy handle (recycled through a small free list)
 * added to the multi handle. curl_multi_perform() moves transfers,
 * curl_multi_info_read() reports the finished ones, whose callback is called
 * and whose slot is given back. The thread then sleeps in curl_multi_poll()
 * until a socket, a libcurl timeout, the next rate token or a wakeup (a submit,
 * a timer).
 *
 * Why hash by name: all requests of a target run on one thread, so they
 * share one connection cache (keep-alive works without cross-thread handle
 * sharing, which libcurl forbids) and the per-target limits need no lock:
 * only that thread reads or writes its tp_target records. The cost is that
 * a single very busy target is served by one thread; one thread drives
 * thousands of concurrent transfers, so this is not the bottleneck of a
 * notification worker.
 *
 * Stop: the I/O thread that sees "stopping" takes its delayed requests
 * back with timer_cancel_owner() (without its lock, which the callback
 * takes; submits fail from then on, so none is added), then its incoming
 * list (with what callbacks appended meanwhile), and fails them all on the
 * I/O thread, as before.
 *
 * Threads: the I/O threads own their multi handle, easy handles, tp_target
 * records and in-flight requests. The shared state is each thread's
 * incoming list and stopping flag (guarded by the thread's lock) and the
 * pending counter (atomic). Callbacks run on I/O threads with
 * no lock held; the timer callback only moves a request and wakes.
 */
#include "publishers/transport.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/mask.h"
#include "core/thread.h"
#include "core/timer.h"

#define TP_COMPONENT "transport"
/* Longest poll: a bound, so that a missed wakeup costs at most this. */
#define TP_POLL_MAX_MS 1000
/* Idle easy handles kept per thread for reuse. */
#define TP_EASY_POOL_MAX 64
/* Largest Retry-After header value kept, bytes. */
#define TP_RETRY_AFTER_MAX 128

struct tp_thread;

/* Per-target state of one I/O thread: limits, counters, waiting queue. */
typedef struct tp_target {
    struct tp_target *next;
    char *name;
    int max_concurrency; /* <= 0 means unlimited. */
    double rate_per_sec; /* 0 = unlimited. */
    int rate_burst;
    double tokens;
    int64_t refill_ns; /* When tokens were last refilled. */
    int in_flight;
    struct tp_req *wait_head; /* FIFO of requests waiting for a slot. */
    struct tp_req *wait_tail;
} tp_target;

/* One request through its whole life in the transport. */
typedef struct tp_req {
    struct tp_req *next;
    struct tp_thread *th;
    timer_entry timer; /* Armed until "not before"; owner th. */
    http_request req;
    char *name; /* Target name. */
    int timeout_ms;
    bool tls_verify;
    char *ca_file;
    int max_concurrency;
    double rate_per_sec;
    int rate_burst;
    transport_done_cb cb;
    void *opaque;
    /* Set by the I/O thread. */
    tp_target *tt;
    CURL *easy;
    struct curl_slist *slist;
    buf body;
    char retry_after[TP_RETRY_AFTER_MAX];
    bool has_retry_after;
    int64_t start_ns;
    char errbuf[CURL_ERROR_SIZE];
    /* errbuf with URLs masked (core/mask.h); masking can lengthen it. */
    char error[2 * CURL_ERROR_SIZE];
    bool truncated; /* The answer passed the body cap; reading stopped. */
} tp_req;

typedef struct tp_thread {
    struct transport *tp;
    pthread_t tid;
    bool started;
    bool lock_inited;
    CURLM *multi;
    /* Guarded by lock. */
    pthread_mutex_t lock;
    tp_req *in_head;
    tp_req *in_tail;
    bool stopping;
    /* Owned by the I/O thread. */
    tp_target *targets;
    tp_req *running; /* In the multi handle. */
    CURL *pool[TP_EASY_POOL_MAX];
    int n_pool;
} tp_thread;

struct transport {
    tp_thread *threads;
    int n_threads;
    size_t max_body;
    long max_conns;
    char *user_agent;
    atomic_size_t pending;
    bool curl_inited;
    herald_timer *timer; /* Borrowed (cfg) or the shared engine. */
    bool timer_shared;   /* timer is a timer_shared_acquire() ref. */
};

static int64_t tp_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static char *tp_strdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

void transport_config_default(transport_config *cfg)
{
    cfg->n_threads = 2;
    cfg->max_response_body = 64 * 1024;
    cfg->max_total_connections = 256;
    cfg->user_agent = NULL;
    cfg->timer = NULL;
}

/* FNV-1a 32 of a name: cheap and stable, spreads short names well. */
static uint32_t tp_hash(const char *s)
{
    uint32_t h = 2166136261u;

    while (*s) {
        h ^= (unsigned char)*s++;
        h *= 16777619u;
    }
    return h;
}

static void tp_req_free(tp_req *r)
{
    if (!r)
        return;
    http_request_free(&r->req);
    free(r->name);
    free(r->ca_file);
    curl_slist_free_all(r->slist);
    buf_free(&r->body);
    free(r);
}

/*
 * Calls the request's callback with a transport error (no response) and
 * frees it. I/O thread, no lock held.
 */
static void tp_req_fail(transport *tp, tp_req *r, int code, const char *msg)
{
    http_response resp;

    memset(&resp, 0, sizeof resp);
    resp.transport_error = code;
    resp.error = msg;
    resp.body = "";
    if (r->start_ns)
        resp.duration_ms = (double)(tp_now_ns() - r->start_ns) / 1e6;
    r->cb(r->opaque, &resp);
    tp_req_free(r);
    atomic_fetch_sub(&tp->pending, 1);
}

/* The thread's record of target name, created on first use. */
static tp_target *tp_target_get(tp_thread *th, const tp_req *r)
{
    tp_target *tt;

    for (tt = th->targets; tt; tt = tt->next)
        if (strcmp(tt->name, r->name) == 0)
            break;
    if (!tt) {
        tt = calloc(1, sizeof *tt);
        if (!tt)
            return NULL;
        tt->name = strdup(r->name);
        if (!tt->name) {
            free(tt);
            return NULL;
        }
        tt->tokens = r->rate_burst > 0 ? r->rate_burst : 1;
        tt->refill_ns = tp_now_ns();
        tt->next = th->targets;
        th->targets = tt;
    }
    /* The latest submission's limits apply (a reload may change them). */
    tt->max_concurrency = r->max_concurrency;
    tt->rate_per_sec = r->rate_per_sec;
    tt->rate_burst = r->rate_burst > 0 ? r->rate_burst : 1;
    return tt;
}

/* Appends r to the FIFO list (*head, *tail). */
static void tp_fifo_append(tp_req **head, tp_req **tail, tp_req *r)
{
    r->next = NULL;
    if (*tail)
        (*tail)->next = r;
    else
        *head = r;
    *tail = r;
}

static void tp_target_enqueue(tp_target *tt, tp_req *r)
{
    r->tt = tt;
    tp_fifo_append(&tt->wait_head, &tt->wait_tail, r);
}

/* Appends r to th's incoming list. Caller holds th->lock. */
static void tp_incoming_append(tp_thread *th, tp_req *r)
{
    tp_fifo_append(&th->in_head, &th->in_tail, r);
}

/*
 * The timer callback of a delayed request (timer thread): its "not before"
 * time came, so it joins the incoming list of its I/O thread, which is
 * woken.
 */
static void tp_req_due(void *arg)
{
    tp_req *r = arg;
    tp_thread *th = r->th;

    pthread_mutex_lock(&th->lock);
    tp_incoming_append(th, r);
    /* Woken under the lock, as transport_submit_ex() does. */
    curl_multi_wakeup(th->multi);
    pthread_mutex_unlock(&th->lock);
}

/*
 * Takes th's delayed requests back from the timer engine (their callbacks
 * will not run) and then its incoming list, which holds what callbacks
 * appended until then. Once th->stopping is set, so that no submit arms a
 * new one. No lock held.
 */
static tp_req *tp_thread_take_all(tp_thread *th)
{
    tp_req *list = NULL;
    tp_req **tail = &list;
    timer_entry *e;

    for (e = timer_cancel_owner(th->tp->timer, th); e; e = e->next) {
        tp_req *r = e->arg;

        r->next = NULL;
        *tail = r;
        tail = &r->next;
    }
    pthread_mutex_lock(&th->lock);
    *tail = th->in_head;
    th->in_head = NULL;
    th->in_tail = NULL;
    pthread_mutex_unlock(&th->lock);
    return list;
}

/* Routes a request that is due to its target's queue. */
static void tp_route(tp_thread *th, tp_req *r)
{
    tp_target *tt = tp_target_get(th, r);

    if (!tt) {
        tp_req_fail(th->tp, r, CURLE_OUT_OF_MEMORY, "out of memory");
        return;
    }
    tp_target_enqueue(tt, r);
}

static size_t tp_write_cb(char *ptr, size_t size, size_t nmemb, void *ud)
{
    tp_req *r = ud;
    size_t n = size * nmemb;
    size_t room = r->body.max - r->body.len;

    /* Keep up to the cap, then stop: a short count makes libcurl abort
     * the transfer with CURLE_WRITE_ERROR and close the connection, so a
     * target answering 1 GB costs neither the time nor the bandwidth.
     * tp_complete() classifies the answer with what was read. */
    if (n <= room)
        return buf_append(&r->body, ptr, n) == HERALD_OK ? n : 0;
    if (room > 0)
        (void)buf_append(&r->body, ptr, room);
    r->truncated = true;
    return 0;
}

static size_t tp_header_cb(char *ptr, size_t size, size_t nitems, void *ud)
{
    tp_req *r = ud;
    size_t n = size * nitems;
    static const char key[] = "retry-after:";
    size_t klen = sizeof key - 1;
    const char *v;
    const char *end;
    size_t vlen;

    /* A new status line starts a new header block (e.g. after 100). */
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        r->has_retry_after = false;
        return n;
    }
    if (n <= klen || strncasecmp(ptr, key, klen) != 0)
        return n;
    v = ptr + klen;
    end = ptr + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    vlen = (size_t)(end - v);
    if (vlen >= sizeof r->retry_after)
        vlen = sizeof r->retry_after - 1;
    memcpy(r->retry_after, v, vlen);
    r->retry_after[vlen] = '\0';
    r->has_retry_after = true;
    return n;
}

static CURL *tp_easy_get(tp_thread *th)
{
    CURL *easy;

    if (th->n_pool > 0) {
        easy = th->pool[--th->n_pool];
        curl_easy_reset(easy);
        return easy;
    }
    return curl_easy_init();
}

static void tp_easy_put(tp_thread *th, CURL *easy)
{
    if (th->n_pool < TP_EASY_POOL_MAX)
        th->pool[th->n_pool++] = easy;
    else
        curl_easy_cleanup(easy);
}

/* Sets up r's easy handle. Returns a CURLcode. */
static CURLcode tp_easy_setup(transport *tp, tp_req *r)
{
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;
    size_t i;
    buf line;

    buf_init(&line, 16 * 1024);
    for (i = 0; i < r->req.n_headers; i++) {
        struct curl_slist *n;

        buf_reset(&line);
        if (buf_appendf(&line, "%s: %s", r->req.headers[i].name,
                        r->req.headers[i].value) != HERALD_OK) {
            rc = CURLE_OUT_OF_MEMORY;
            goto out;
        }
        n = curl_slist_append(r->slist, buf_str(&line));
        if (!n) {
            rc = CURLE_OUT_OF_MEMORY;
            goto out;
        }
        r->slist = n;
    }
    /* No "Expect: 100-continue" round trip for larger bodies. */
    {
        struct curl_slist *n = curl_slist_append(r->slist, "Expect:");

        if (!n) {
            rc = CURLE_OUT_OF_MEMORY;
            goto out;
        }
        r->slist = n;
    }

    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_URL, r->req.url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->slist);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, tp_write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, tp_header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_USERAGENT, tp->user_agent);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, r->tls_verify ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, r->tls_verify ? 2L : 0L);
    if (r->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, r->ca_file);

    if (strcmp(r->req.method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->req.method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else {
        /* POST fields are sent from our buffer without a copy; the
         * request outlives the transfer. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)r->req.body.len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, buf_str(&r->req.body));
        if (strcmp(r->req.method, "POST") != 0)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->req.method);
    }
out:
    buf_free(&line);
    return rc;
}

/* Starts r (its target has a slot and a token). */
static void tp_start(tp_thread *th, tp_req *r)
{
    CURLcode rc;
    CURLMcode mrc;

    r->start_ns = tp_now_ns();
    r->easy = tp_easy_get(th);
    if (!r->easy) {
        tp_req_fail(th->tp, r, CURLE_OUT_OF_MEMORY, "out of memory");
        return;
    }
    rc = tp_easy_setup(th->tp, r);
    if (rc != CURLE_OK) {
        tp_easy_put(th, r->easy);
        r->easy = NULL;
        tp_req_fail(th->tp, r, rc, curl_easy_strerror(rc));
        return;
    }
    mrc = curl_multi_add_handle(th->multi, r->easy);
    if (mrc != CURLM_OK) {
        tp_easy_put(th, r->easy);
        r->easy = NULL;
        tp_req_fail(th->tp, r, CURLE_FAILED_INIT, curl_multi_strerror(mrc));
        return;
    }
    r->tt->in_flight++;
    r->next = th->running;
    th->running = r;
}

/* Refills tt's token bucket at now_ns. */
static void tp_refill(tp_target *tt, int64_t now_ns)
{
    double add;

    if (tt->rate_per_sec <= 0)
        return;
    add = (double)(now_ns - tt->refill_ns) / 1e9 * tt->rate_per_sec;
    tt->tokens += add;
    if (tt->tokens > tt->rate_burst)
        tt->tokens = tt->rate_burst;
    tt->refill_ns = now_ns;
}

/*
 * Starts every waiting request whose target has room. Returns the number
 * of ms until a rate-limited target gets its next token, or -1.
 */
static long tp_dispatch(tp_thread *th)
{
    tp_target *tt;
    int64_t now_ns = tp_now_ns();
    long wait_ms = -1;

    for (tt = th->targets; tt; tt = tt->next) {
        while (tt->wait_head) {
            tp_req *r;

            if (tt->max_concurrency > 0 && tt->in_flight >= tt->max_concurrency)
                break;
            if (tt->rate_per_sec > 0) {
                tp_refill(tt, now_ns);
                if (tt->tokens < 1.0) {
                    long ms =
                        (long)((1.0 - tt->tokens) / tt->rate_per_sec * 1000.0) +
                        1;

                    if (wait_ms < 0 || ms < wait_ms)
                        wait_ms = ms;
                    break;
                }
                tt->tokens -= 1.0;
            }
            r = tt->wait_head;
            tt->wait_head = r->next;
            if (!tt->wait_head)
                tt->wait_tail = NULL;
            tp_start(th, r);
        }
    }
    return wait_ms;
}

/* Unlinks r from the running list. */
static void tp_running_remove(tp_thread *th, tp_req *r)
{
    tp_req **pp = &th->running;

    while (*pp && *pp != r)
        pp = &(*pp)->next;
    if (*pp)
        *pp = r->next;
    r->next = NULL;
}

/* Completes a finished transfer: callback, slot back, free. */
static void tp_complete(tp_thread *th, CURL *easy, CURLcode result)
{
    tp_req *r = NULL;
    http_response resp;
    long status = 0;

    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&r);
    curl_multi_remove_handle(th->multi, easy);
    tp_running_remove(th, r);
    r->tt->in_flight--;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    /* Stopped at the body cap: the status and headers were read, which is
     * all the classification needs. */
    if (result == CURLE_WRITE_ERROR && r->truncated && status > 0)
        result = CURLE_OK;

    memset(&resp, 0, sizeof resp);
    resp.status = status;
    resp.transport_error = (int)result;
    if (result != CURLE_OK) {
        /* curl messages can name the URL, and URLs hold secrets. */
        mask_urls_copy(r->errbuf[0] ? r->errbuf : curl_easy_strerror(result),
                       r->error, sizeof(r->error));
        resp.error = r->error;
    }
    resp.body = buf_str(&r->body);
    resp.body_len = r->body.len;
    resp.retry_after = r->has_retry_after ? r->retry_after : NULL;
    resp.duration_ms = (double)(tp_now_ns() - r->start_ns) / 1e6;

    r->easy = NULL;
    /* The handle goes back to the pool only after the callback: the
     * error buffer and private pointer still point into r until then. */
    r->cb(r->opaque, &resp);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
    tp_easy_put(th, easy);
    tp_req_free(r);
    atomic_fetch_sub(&th->tp->pending, 1);
}

/* Fails every request the thread holds with "cancelled": running,
 * waiting, and incoming or delayed (tp_thread_take_all()). I/O thread. */
static void tp_thread_cancel_all(tp_thread *th, tp_req *incoming)
{
    tp_target *tt;

    while (th->running) {
        tp_req *r = th->running;

        th->running = r->next;
        curl_multi_remove_handle(th->multi, r->easy);
        curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, NULL);
        tp_easy_put(th, r->easy);
        r->easy = NULL;
        r->tt->in_flight--;
        tp_req_fail(th->tp, r, TRANSPORT_ERR_CANCELLED, "cancelled");
    }
    for (tt = th->targets; tt; tt = tt->next) {
        while (tt->wait_head) {
            tp_req *r = tt->wait_head;

            tt->wait_head = r->next;
            tp_req_fail(th->tp, r, TRANSPORT_ERR_CANCELLED, "cancelled");
        }
        tt->wait_tail = NULL;
    }
    while (incoming) {
        tp_req *r = incoming;

        incoming = r->next;
        tp_req_fail(th->tp, r, TRANSPORT_ERR_CANCELLED, "cancelled");
    }
}

static void *tp_thread_main(void *arg)
{
    tp_thread *th = arg;

    for (;;) {
        tp_req *incoming;
        bool stopping;
        long timeout_ms;
        long rate_wait;
        long curl_to = -1;
        int running = 0;
        CURLMsg *msg;
        int left;

        pthread_mutex_lock(&th->lock);
        incoming = th->in_head;
        th->in_head = NULL;
        th->in_tail = NULL;
        stopping = th->stopping;
        pthread_mutex_unlock(&th->lock);

        if (stopping) {
            tp_thread_cancel_all(th, incoming);
            tp_thread_cancel_all(th, tp_thread_take_all(th));
            break;
        }

        /* Every incoming request is due: later ones wait for a timer. */
        while (incoming) {
            tp_req *r = incoming;

            incoming = r->next;
            r->next = NULL;
            tp_route(th, r);
        }

        rate_wait = tp_dispatch(th);
        curl_multi_perform(th->multi, &running);
        left = 0;
        timeout_ms = TP_POLL_MAX_MS;
        while ((msg = curl_multi_info_read(th->multi, &left)) != NULL) {
            if (msg->msg == CURLMSG_DONE) {
                tp_complete(th, msg->easy_handle, msg->data.result);
                /* A slot was freed: look at the queues again now. */
                timeout_ms = 0;
            }
        }
        if (timeout_ms == 0)
            continue;

        curl_multi_timeout(th->multi, &curl_to);
        if (curl_to >= 0 && curl_to < timeout_ms)
            timeout_ms = curl_to;
        if (rate_wait >= 0 && rate_wait < timeout_ms)
            timeout_ms = rate_wait;
        if (timeout_ms > 0)
            curl_multi_poll(th->multi, NULL, 0, (int)timeout_ms, NULL);
    }
    return NULL;
}

transport *transport_new(const transport_config *cfg, char *errstr,
                         size_t errstr_size)
{
    transport_config def;
    transport *tp = NULL;
    int i;

    if (!cfg) {
        transport_config_default(&def);
        cfg = &def;
    }
    if (cfg->n_threads < 1 || cfg->n_threads > 64) {
        snprintf(errstr, errstr_size,
                 "transport: n_threads must be between 1 and 64, got %d",
                 cfg->n_threads);
        return NULL;
    }
    if (cfg->max_response_body < 1) {
        snprintf(errstr, errstr_size,
                 "transport: max_response_body must be at least 1 byte");
        return NULL;
    }
    tp = calloc(1, sizeof *tp);
    if (!tp)
        goto nomem;
    atomic_init(&tp->pending, 0);
    if (curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK) {
        snprintf(errstr, errstr_size, "transport: curl_global_init failed");
        goto fail;
    }
    tp->curl_inited = true;
    if (cfg->timer) {
        tp->timer = cfg->timer;
    } else {
        tp->timer = timer_shared_acquire(errstr, errstr_size);
        if (!tp->timer)
            goto fail;
        tp->timer_shared = true;
    }
    tp->max_body = cfg->max_response_body;
    tp->max_conns = cfg->max_total_connections;
    tp->user_agent =
        strdup(cfg->user_agent ? cfg->user_agent : "herald/" HERALD_VERSION);
    if (!tp->user_agent)
        goto nomem;
    tp->threads = calloc((size_t)cfg->n_threads, sizeof *tp->threads);
    if (!tp->threads)
        goto nomem;
    tp->n_threads = cfg->n_threads;
    for (i = 0; i < tp->n_threads; i++) {
        tp_thread *th = &tp->threads[i];

        th->tp = tp;
        pthread_mutex_init(&th->lock, NULL);
        th->lock_inited = true;
        th->multi = curl_multi_init();
        if (!th->multi) {
            snprintf(errstr, errstr_size, "transport: curl_multi_init failed");
            goto fail;
        }
        if (tp->max_conns > 0)
            curl_multi_setopt(th->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                              tp->max_conns);
        curl_multi_setopt(th->multi, CURLMOPT_MAXCONNECTS,
                          tp->max_conns > 0 ? tp->max_conns : 64L);
    }
    for (i = 0; i < tp->n_threads; i++) {
        tp_thread *th = &tp->threads[i];
        char name[24]; /* Cut to HERALD_THREAD_NAME_MAX by the callee. */

        snprintf(name, sizeof name, "herald-io%d", i);
        if (herald_thread_create(&th->tid, name, tp_thread_main, th) != 0) {
            snprintf(errstr, errstr_size,
                     "transport: cannot start I/O thread %d", i);
            goto fail;
        }
        th->started = true;
    }
    return tp;
nomem:
    snprintf(errstr, errstr_size, "transport: out of memory");
fail:
    transport_destroy(tp);
    return NULL;
}

herald_err transport_submit(transport *tp, const target *tgt, http_request *req,
                            int64_t not_before_ms, transport_done_cb cb,
                            void *opaque)
{
    return transport_submit_ex(tp, tgt, req, not_before_ms, 0, cb, opaque);
}

herald_err transport_submit_ex(transport *tp, const target *tgt,
                               http_request *req, int64_t not_before_ms,
                               int timeout_ms, transport_done_cb cb,
                               void *opaque)
{
    tp_req *r = NULL;
    tp_thread *th;
    herald_err err = HERALD_ERR_NOMEM;
    bool stopping;
    bool delayed;

    if (!tp || !tgt || !tgt->name || !req || !cb || !req->url || !req->url[0] ||
        !req->method[0])
        return HERALD_ERR_INVALID;
    r = calloc(1, sizeof *r);
    if (!r)
        goto out;
    r->name = strdup(tgt->name);
    if (!r->name)
        goto out;
    if (tgt->tls_ca_file) {
        r->ca_file = tp_strdup(tgt->tls_ca_file);
        if (!r->ca_file)
            goto out;
    }
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : tgt->timeout_ms;
    if (r->timeout_ms <= 0)
        r->timeout_ms = 5000;
    r->tls_verify = tgt->tls_verify;
    r->max_concurrency = tgt->max_concurrency;
    r->rate_per_sec = tgt->rate_per_sec;
    r->rate_burst = tgt->rate_burst;
    r->cb = cb;
    r->opaque = opaque;
    buf_init(&r->body, tp->max_body);

    th = &tp->threads[tp_hash(tgt->name) % (uint32_t)tp->n_threads];
    r->th = th;
    delayed = not_before_ms > herald_now_ms();
    pthread_mutex_lock(&th->lock);
    stopping = th->stopping;
    if (stopping) {
        err = HERALD_ERR_STATE;
    } else if (delayed) {
        /* Armed under th->lock (th->lock, then the engine's), before
         * "stopping" can be set: the stopping thread takes it back. */
        timer_entry_init(&r->timer, th);
        err = timer_add(tp->timer, &r->timer, not_before_ms, tp_req_due, r);
    } else {
        tp_incoming_append(th, r);
        /* Woken under the lock: transport_destroy cleans the multi handle
         * up only after the thread saw "stopping" under this lock. */
        curl_multi_wakeup(th->multi);
        err = HERALD_OK;
    }
    if (err == HERALD_OK) {
        /* Ownership of req's content moves into r. */
        r->req = *req;
        http_request_init(req, 0);
        atomic_fetch_add(&tp->pending, 1);
    }
    pthread_mutex_unlock(&th->lock);
    if (err != HERALD_OK) {
        if (err != HERALD_ERR_STATE)
            err = HERALD_ERR_NOMEM;
        goto out;
    }
    return HERALD_OK;
out:
    if (r) {
        free(r->name);
        free(r->ca_file);
        buf_free(&r->body);
        free(r);
    }
    return err;
}

size_t transport_pending(transport *tp)
{
    return tp ? atomic_load(&tp->pending) : 0;
}

void transport_destroy(transport *tp)
{
    int i;

    if (!tp)
        return;
    for (i = 0; tp->threads && i < tp->n_threads; i++) {
        tp_thread *th = &tp->threads[i];

        if (!th->multi)
            continue;
        pthread_mutex_lock(&th->lock);
        th->stopping = true;
        curl_multi_wakeup(th->multi);
        pthread_mutex_unlock(&th->lock);
    }
    for (i = 0; tp->threads && i < tp->n_threads; i++) {
        tp_thread *th = &tp->threads[i];

        if (th->started)
            pthread_join(th->tid, NULL);
    }
    for (i = 0; tp->threads && i < tp->n_threads; i++) {
        tp_thread *th = &tp->threads[i];
        tp_target *tt;

        /* A thread that never started leaves its requests here. */
        if (!th->started)
            tp_thread_cancel_all(th, th->in_head);
        while (th->n_pool > 0)
            curl_easy_cleanup(th->pool[--th->n_pool]);
        if (th->multi)
            curl_multi_cleanup(th->multi);
        tt = th->targets;
        while (tt) {
            tp_target *next = tt->next;

            free(tt->name);
            free(tt);
            tt = next;
        }
        if (th->lock_inited)
            pthread_mutex_destroy(&th->lock);
    }
    free(tp->threads);
    if (tp->timer_shared)
        timer_shared_release();
    free(tp->user_agent);
    if (tp->curl_inited)
        curl_global_cleanup();
    free(tp);
}
