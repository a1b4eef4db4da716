/*
 * dlq.c: the dead-letter producer (see dlq.h for the record format).
 *
 * Data flow: dlq_write() allocates a waiter, produces the record with the
 * waiter as msg_opaque and sleeps on the waiter's condition variable. The
 * poll thread (dlq_poll_main) calls rd_kafka_poll(), which runs
 * dlq_dr_cb() for each delivery report; the callback stores the result in
 * the waiter and signals it. When the writer gave up (timeout) before the
 * report came, the waiter is marked abandoned and the callback frees it.
 * dlq_write_async() produces the same way and returns at once; its waiter
 * sits in d->pending, and the poll thread calls the caller's done callback
 * with the delivery report, or with HERALD_ERR_TIMEOUT when the deadline
 * passes first (dlq_expire(); the waiter is then abandoned as above).
 *
 * Threads: any number of writer threads; one poll thread owns polling of
 * the rd_kafka_t until dlq_destroy() joins it, after which the destroying
 * thread flushes (which polls) with no other poller alive. d->lock guards
 * every waiter's done/abandoned/err fields, the lists and n_async; each
 * waiter has its own condition variable (CLOCK_MONOTONIC) so a report
 * wakes only its writer. Done callbacks run on the poll thread without the
 * lock; dlq_close() waits on d->idle until every one of them returned.
 */
#include "worker/dlq.h"
#include "core/clock.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/admin.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"

#ifndef HERALD_VERSION
#define HERALD_VERSION "unknown"
#endif

/* How long dlq_destroy() flushes queued records, ms. */
#define DLQ_FLUSH_MS 10000
/* rd_kafka_poll() wait of the poll thread: bounds how long dlq_destroy()
 * waits for the thread to notice the stop flag, ms. */
#define DLQ_POLL_MS 100
/* The truncated copy of a record that cannot be written as it is keeps
 * this much of the value and of the key, and of the error text: with the
 * headers it stays far below any producer's or topic's limit (librdkafka
 * allows message.max.bytes down to 1000 only; Kafka's default topic limit
 * is about 1 MB). */
#define DLQ_TRUNC_VALUE_MAX 16384
#define DLQ_TRUNC_KEY_MAX 1024
#define DLQ_TRUNC_ERROR_MAX 1024

/* One write waiting for its delivery report: a writer blocked in
 * dlq_write(), or an asynchronous write (done_fn set). */
typedef struct dlq_waiter {
    pthread_cond_t cond; /* dlq_write()'s writer sleeps on it. */
    bool done;           /* The report came (guarded by d->lock). */
    bool abandoned;      /* The writer returned; the callback frees. */
    rd_kafka_resp_err_t err;
    /* In d->abandoned while abandoned; in d->pending while an
     * asynchronous write waits for its report. */
    struct dlq_waiter *prev, *next;
    struct timespec deadline; /* CLOCK_MONOTONIC. */
    /* Asynchronous writes only: */
    dlq_done_fn done_fn;
    void *opaque;
    int timeout_ms;
    char reason[32]; /* The record's reason, for the metric. */
    /* The truncated copy, written instead when the record itself fails
     * for a permanent reason (dlq_permanent()); owned by the waiter until
     * produced (then NULL). */
    rd_kafka_headers_t *fb_hdrs;
    void *fb_key, *fb_value;
    size_t fb_key_len, fb_value_len;
    bool truncated; /* The copy was produced in the record's place. */
} dlq_waiter;

struct dlq {
    rd_kafka_t *rk;
    char *topic;
    pthread_t poller;
    bool poller_started;
    atomic_bool stop;
    pthread_mutex_t lock;
    pthread_cond_t idle;   /* Signalled when n_async drops to 0. */
    dlq_waiter *abandoned; /* Waiters whose writer timed out. */
    dlq_waiter *pending;   /* Asynchronous writes waiting for a report. */
    size_t n_async;        /* Asynchronous writes whose callback has not
                              returned yet. */
    bool closed;           /* dlq_close(): asynchronous writes refused. */
    metric *m_records;     /* herald_dlq_records_total{reason} */
    metric *m_errors;      /* herald_dlq_errors_total */
    metric *m_truncated;   /* herald_dlq_truncated_total */
    metric *m_failing;     /* herald_dlq_failing */
    /* herald_now_ms() of the first of the failed writes since the last
     * acknowledged one; 0 while writes succeed. */
    atomic_llong failing_since;
};

/* Records the outcome of one write for dlq_failing_since_ms(). */
static void dlq_health(dlq *d, bool ok)
{
    long long zero = 0;

    if (ok) {
        if (atomic_exchange(&d->failing_since, 0) != 0)
            metrics_set(d->m_failing, 0);
        return;
    }
    if (atomic_compare_exchange_strong(&d->failing_since, &zero,
                                       (long long)herald_now_ms()))
        metrics_set(d->m_failing, 1);
}

static void dlq_list_push(dlq_waiter **head, dlq_waiter *w)
{
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

static void dlq_list_unlink(dlq_waiter **head, dlq_waiter *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

static void dlq_waiter_free(dlq_waiter *w)
{
    if (!w)
        return;
    pthread_cond_destroy(&w->cond);
    if (w->fb_hdrs)
        rd_kafka_headers_destroy(w->fb_hdrs);
    free(w->fb_key);
    free(w->fb_value);
    free(w);
}

/* The outcome of a delivery report: errstr filled, metrics counted. */
static herald_err dlq_result(dlq *d, rd_kafka_resp_err_t err,
                             const char *reason, char *errstr,
                             size_t errstr_size)
{
    if (err) {
        snprintf(errstr, errstr_size, "dlq: write to %s failed: %s", d->topic,
                 rd_kafka_err2str(err));
        metrics_add(d->m_errors, 1);
        dlq_health(d, false);
        return err == RD_KAFKA_RESP_ERR__MSG_TIMED_OUT ? HERALD_ERR_TIMEOUT
                                                       : HERALD_ERR_KAFKA;
    }
    dlq_health(d, true);
    metrics_add(d->m_records, 1, reason);
    return HERALD_OK;
}

/* No report within timeout_ms: errstr filled, the error counted. */
static herald_err dlq_timed_out(dlq *d, int timeout_ms, char *errstr,
                                size_t errstr_size)
{
    snprintf(errstr, errstr_size,
             "dlq: no acknowledgement from %s within %d ms (the record "
             "may still be delivered later)",
             d->topic, timeout_ms);
    metrics_add(d->m_errors, 1);
    dlq_health(d, false);
    return HERALD_ERR_TIMEOUT;
}

/* One asynchronous write's callback returned. */
static void dlq_async_finished(dlq *d)
{
    bool idle;

    pthread_mutex_lock(&d->lock);
    idle = --d->n_async == 0;
    pthread_mutex_unlock(&d->lock);
    if (idle)
        pthread_cond_broadcast(&d->idle);
}

/*
 * True for a failure that writing the same record again cannot cure: too
 * large for the producer (local) or the topic (broker), not authorized,
 * no such topic.
 */
static bool dlq_permanent(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION: return true;
    default: return false;
    }
}

/*
 * Produces w's truncated copy in place of its record, which failed with
 * err (permanent), keeping w as the delivery-report opaque. At most once
 * per waiter. Caller holds d->lock. Returns librdkafka's answer; the copy
 * is gone either way.
 */
static rd_kafka_resp_err_t dlq_produce_truncated(dlq *d, dlq_waiter *w,
                                                 rd_kafka_resp_err_t err)
{
    rd_kafka_headers_t *hdrs = w->fb_hdrs;
    rd_kafka_resp_err_t perr;

    w->fb_hdrs = NULL;
    if (!hdrs)
        return err;
    rd_kafka_header_add(hdrs, "herald-dlq-error", -1, rd_kafka_err2name(err),
                        -1);
    perr = rd_kafka_producev(d->rk, RD_KAFKA_V_TOPIC(d->topic),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_KEY(w->fb_key, w->fb_key_len),
                             RD_KAFKA_V_VALUE(w->fb_value, w->fb_value_len),
                             RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(w),
                             RD_KAFKA_V_END);
    if (perr) {
        rd_kafka_headers_destroy(hdrs);
        return perr;
    }
    w->truncated = true;
    metrics_add(d->m_truncated, 1);
    return RD_KAFKA_RESP_ERR_NO_ERROR;
}

/* Logs a truncated copy written in place of a record (no lock held). */
static void dlq_log_truncated(const dlq *d, const char *reason,
                              rd_kafka_resp_err_t err)
{
    LOG_WARN("dlq", NULL,
             "dead-letter record (%s) refused by %s: %s; writing a "
             "truncated copy with the original's size and SHA-256",
             reason, d->topic, rd_kafka_err2str(err));
}

/* Delivery report callback: runs on the thread calling rd_kafka_poll(). */
static void dlq_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                      void *opaque)
{
    dlq *d = opaque;
    dlq_waiter *w = msg->_private;
    bool free_it = false;
    bool async = false;

    if (!w)
        return;
    pthread_mutex_lock(&d->lock);
    /* An asynchronous record the topic can never take: its truncated copy
     * takes its place and this waiter waits for the copy's report. */
    if (w->done_fn && !w->abandoned && dlq_permanent(msg->err) &&
        dlq_produce_truncated(d, w, msg->err) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        char reason[sizeof(w->reason)];

        /* w may be reported and freed once the lock is released. */
        memcpy(reason, w->reason, sizeof(reason));
        pthread_mutex_unlock(&d->lock);
        dlq_log_truncated(d, reason, msg->err);
        return;
    }
    w->err = msg->err;
    w->done = true;
    free_it = w->abandoned;
    if (free_it) {
        dlq_list_unlink(&d->abandoned, w);
    } else if (w->done_fn) {
        dlq_list_unlink(&d->pending, w);
        async = true;
    } else {
        /* Signalled under the lock, unlike the queues (STYLE.md 13): the
         * writer owns the condition variable and destroys it as soon as
         * it sees done, so it must not wake before this call returns. */
        pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&d->lock);
    if (async) {
        char errstr[256];
        herald_err err =
            dlq_result(d, msg->err, w->reason, errstr, sizeof(errstr));

        w->done_fn(w->opaque, err, err ? errstr : NULL);
        dlq_waiter_free(w);
        dlq_async_finished(d);
        return;
    }
    if (free_it) {
        /* The writer timed out; this late report ends the story. */
        if (msg->err)
            LOG_WARN("dlq", NULL, "late dead-letter record to %s failed: %s",
                     rd_kafka_topic_name(msg->rkt), rd_kafka_err2str(msg->err));
        else
            LOG_INFO("dlq", NULL,
                     "late dead-letter record to %s acknowledged at offset "
                     "%lld after its writer timed out",
                     rd_kafka_topic_name(msg->rkt), (long long)msg->offset);
        dlq_waiter_free(w);
    }
}

/* Error callback: global errors (all brokers down, fatal idempotence). */
static void dlq_error_cb(rd_kafka_t *rk, int err, const char *reason,
                         void *opaque)
{
    LOG_WARN("dlq", NULL, "dead-letter producer: %s: %s",
             rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static bool dlq_passed(const struct timespec *deadline);

/*
 * Times out the asynchronous writes whose deadline passed: each is
 * abandoned (a late report frees it) and its callback gets
 * HERALD_ERR_TIMEOUT. Poll thread.
 */
static void dlq_expire(dlq *d)
{
    for (;;) {
        dlq_waiter *w;
        dlq_done_fn fn = NULL;
        void *fn_opaque = NULL;
        int timeout_ms = 0;
        char errstr[256];

        pthread_mutex_lock(&d->lock);
        for (w = d->pending; w && !dlq_passed(&w->deadline); w = w->next)
            ;
        if (w) {
            dlq_list_unlink(&d->pending, w);
            w->abandoned = true;
            dlq_list_push(&d->abandoned, w);
            fn = w->done_fn;
            fn_opaque = w->opaque;
            timeout_ms = w->timeout_ms;
        }
        pthread_mutex_unlock(&d->lock);
        if (!fn)
            return;
        fn(fn_opaque, dlq_timed_out(d, timeout_ms, errstr, sizeof(errstr)),
           errstr);
        dlq_async_finished(d);
    }
}

static void *dlq_poll_main(void *arg)
{
    dlq *d = arg;

    while (!atomic_load(&d->stop)) {
        rd_kafka_poll(d->rk, DLQ_POLL_MS);
        dlq_expire(d);
    }
    return NULL;
}

dlq *dlq_new(const char *brokers, const char *topic, const char *const *props,
             size_t n_props, char *errstr, size_t errstr_size)
{
    /* linger.ms=5: concurrent dead-letter writes share a request, while a
     * single write waits at most 5 ms more. */
    static const char *const defaults[] = {
        "acks=all", "enable.idempotence=true", "linger.ms=5"};
    rd_kafka_conf_t *conf = NULL;
    char rkerr[512];
    dlq *d;

    if (!brokers || !*brokers || !topic || !*topic) {
        snprintf(errstr, errstr_size, "dlq: brokers and topic are required");
        return NULL;
    }
    d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(errstr, errstr_size, "dlq: out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->idle, NULL);
    atomic_init(&d->stop, false);
    atomic_init(&d->failing_since, 0);
    d->topic = strdup(topic);
    d->m_records = metrics_family(METRIC_COUNTER, "herald_dlq_records_total",
                                  "Records acknowledged by the dead-letter "
                                  "topic, by reason kind.",
                                  "reason", NULL, 0);
    d->m_errors = metrics_family(METRIC_COUNTER, "herald_dlq_errors_total",
                                 "Dead-letter writes that failed or timed "
                                 "out.",
                                 "", NULL, 0);
    d->m_truncated =
        metrics_family(METRIC_COUNTER, "herald_dlq_truncated_total",
                       "Dead-letter records written as a truncated copy "
                       "because the record itself was refused for good.",
                       "", NULL, 0);
    d->m_failing = metrics_family(METRIC_GAUGE, "herald_dlq_failing",
                                  "1 while dead-letter writes fail (since "
                                  "the last acknowledged one), else 0.",
                                  "", NULL, 0);
    if (!d->topic) {
        snprintf(errstr, errstr_size, "dlq: out of memory");
        goto fail;
    }
    conf = admin_conf_new(brokers, defaults, 3, props, n_props, errstr,
                          errstr_size);
    if (!conf)
        goto fail;
    rd_kafka_conf_set_opaque(conf, d);
    rd_kafka_conf_set_dr_msg_cb(conf, dlq_dr_cb);
    rd_kafka_conf_set_error_cb(conf, dlq_error_cb);
    d->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, rkerr, sizeof rkerr);
    if (!d->rk) {
        snprintf(errstr, errstr_size, "dlq: rd_kafka_new: %s", rkerr);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    if (herald_thread_create(&d->poller, "herald-dlq", dlq_poll_main, d) != 0) {
        snprintf(errstr, errstr_size, "dlq: cannot start the poll thread");
        goto fail;
    }
    d->poller_started = true;
    return d;
fail:
    dlq_destroy(d);
    return NULL;
}

int64_t dlq_failing_since_ms(dlq *d)
{
    return d ? (int64_t)atomic_load(&d->failing_since) : 0;
}

const char *dlq_topic(const dlq *d)
{
    return d ? d->topic : NULL;
}

/* Adds a header with a text value; false when out of memory. */
static bool dlq_hdr_str(rd_kafka_headers_t *h, const char *name,
                        const char *value)
{
    return rd_kafka_header_add(h, name, -1, value ? value : "", -1) ==
           RD_KAFKA_RESP_ERR_NO_ERROR;
}

static bool dlq_hdr_i64(rd_kafka_headers_t *h, const char *name, int64_t v)
{
    char num[24];

    snprintf(num, sizeof num, "%lld", (long long)v);
    return dlq_hdr_str(h, name, num);
}

/* Builds the header list of rec; NULL when out of memory. */
static rd_kafka_headers_t *dlq_headers_new(const dlq_record *rec)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(12);
    bool ok;

    if (!h)
        return NULL;
    ok = dlq_hdr_str(h, "herald-reason", rec->reason) &&
         dlq_hdr_str(h, "herald-error", rec->error) &&
         dlq_hdr_str(h, "herald-source-topic", rec->source_topic) &&
         dlq_hdr_i64(h, "herald-source-partition", rec->source_partition) &&
         dlq_hdr_i64(h, "herald-source-offset", rec->source_offset);
    if (ok && rec->target)
        ok = dlq_hdr_str(h, "herald-target", rec->target);
    ok = ok && dlq_hdr_i64(h, "herald-http-status", rec->http_status) &&
         dlq_hdr_i64(h, "herald-attempts", rec->attempts) &&
         dlq_hdr_i64(h, "herald-first-attempt-ms", rec->first_attempt_ms) &&
         dlq_hdr_i64(h, "herald-last-attempt-ms", rec->last_attempt_ms) &&
         dlq_hdr_str(h, "herald-version", HERALD_VERSION) &&
         dlq_hdr_i64(h, "herald-dlq-time-ms", herald_wall_ms());
    if (!ok) {
        rd_kafka_headers_destroy(h);
        return NULL;
    }
    return h;
}

/* Absolute CLOCK_MONOTONIC time timeout_ms from now. */
static struct timespec dlq_deadline(int timeout_ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static bool dlq_passed(const struct timespec *deadline)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > deadline->tv_sec ||
           (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Produces rec once with w as its delivery-report opaque. On success
 * librdkafka owns hdrs. */
static rd_kafka_resp_err_t dlq_produce_once(dlq *d, const dlq_record *rec,
                                            rd_kafka_headers_t *hdrs,
                                            dlq_waiter *w)
{
    return rd_kafka_producev(
        d->rk, RD_KAFKA_V_TOPIC(d->topic),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_KEY(rec->key, rec->key ? rec->key_len : 0),
        RD_KAFKA_V_VALUE((void *)(uintptr_t)rec->value,
                         rec->value ? rec->value_len : 0),
        RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(w), RD_KAFKA_V_END);
}

/* Produces rec, trying again while the local queue is full until w's
 * deadline. On success librdkafka owns hdrs. */
static rd_kafka_resp_err_t dlq_produce(dlq *d, const dlq_record *rec,
                                       rd_kafka_headers_t *hdrs, dlq_waiter *w)
{
    rd_kafka_resp_err_t err;

    for (;;) {
        err = dlq_produce_once(d, rec, hdrs, w);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL || dlq_passed(&w->deadline))
            return err;
        /* The local queue is full: the poll thread drains it as reports
         * come; try again shortly. */
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
}

/*
 * Waits for w's delivery report until its deadline. True when it came
 * (*err holds its result; the caller frees w); false when it did not: w is
 * then abandoned, and the callback frees it, or dlq_destroy() if no report
 * comes.
 */
static bool dlq_wait(dlq *d, dlq_waiter *w, rd_kafka_resp_err_t *err)
{
    bool done;

    pthread_mutex_lock(&d->lock);
    while (!w->done) {
        if (pthread_cond_timedwait(&w->cond, &d->lock, &w->deadline) ==
            ETIMEDOUT)
            break;
    }
    done = w->done;
    *err = w->err;
    if (!done) {
        w->abandoned = true;
        dlq_list_push(&d->abandoned, w);
    }
    pthread_mutex_unlock(&d->lock);
    return done;
}

/*
 * Checks the arguments of a write and prepares it: a waiter (its condition
 * on CLOCK_MONOTONIC, its deadline timeout_ms from now) and the record's
 * headers. HERALD_ERR_INVALID or HERALD_ERR_NOMEM with errstr filled;
 * nothing to free then.
 */
static herald_err dlq_prepare(dlq *d, const dlq_record *rec, int timeout_ms,
                              dlq_waiter **wp, rd_kafka_headers_t **hdrsp,
                              char *errstr, size_t errstr_size)
{
    pthread_condattr_t ca;
    dlq_waiter *w;

    *wp = NULL;
    *hdrsp = NULL;
    if (!d || !rec || !rec->reason || !rec->source_topic || timeout_ms <= 0) {
        snprintf(errstr, errstr_size,
                 "dlq: a record needs a reason and a source topic");
        return HERALD_ERR_INVALID;
    }
    w = calloc(1, sizeof *w);
    *hdrsp = dlq_headers_new(rec);
    if (!w || !*hdrsp) {
        snprintf(errstr, errstr_size, "dlq: out of memory");
        metrics_add(d->m_errors, 1);
        free(w);
        if (*hdrsp)
            rd_kafka_headers_destroy(*hdrsp);
        *hdrsp = NULL;
        return HERALD_ERR_NOMEM;
    }
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    w->deadline = dlq_deadline(timeout_ms);
    w->timeout_ms = timeout_ms;
    *wp = w;
    return HERALD_OK;
}

/* A produce librdkafka refused: errstr filled, the error counted, w and
 * hdrs freed. */
static herald_err dlq_refused(dlq *d, rd_kafka_resp_err_t err, dlq_waiter *w,
                              rd_kafka_headers_t *hdrs, char *errstr,
                              size_t errstr_size)
{
    snprintf(errstr, errstr_size, "dlq: produce to %s: %s", d->topic,
             rd_kafka_err2str(err));
    metrics_add(d->m_errors, 1);
    dlq_health(d, false);
    if (hdrs)
        rd_kafka_headers_destroy(hdrs);
    dlq_waiter_free(w);
    return err == RD_KAFKA_RESP_ERR__QUEUE_FULL ? HERALD_ERR_TIMEOUT
                                                : HERALD_ERR_KAFKA;
}

/* A copy of the first n bytes of p (p may be NULL: then NULL); false when
 * out of memory. */
static bool dlq_copy_prefix(void **out, size_t *out_len, const void *p,
                            size_t len, size_t max)
{
    *out = NULL;
    *out_len = 0;
    if (!p)
        return true;
    *out_len = len < max ? len : max;
    *out = malloc(*out_len ? *out_len : 1);
    if (!*out)
        return false;
    memcpy(*out, p, *out_len);
    return true;
}

/*
 * Prepares w's truncated copy of rec: the first DLQ_TRUNC_VALUE_MAX bytes
 * of the value and DLQ_TRUNC_KEY_MAX of the key, rec's headers (the error
 * text cut to DLQ_TRUNC_ERROR_MAX) plus herald-truncated,
 * herald-original-size, herald-original-key-size and
 * herald-original-sha256 (hex, of the value). False when out of memory.
 */
static bool dlq_truncated_prepare(dlq_waiter *w, const dlq_record *rec)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[SHA256_DIGEST_LENGTH];
    char md_hex[2 * SHA256_DIGEST_LENGTH + 1];
    char error[DLQ_TRUNC_ERROR_MAX + 1];
    dlq_record copy = *rec;
    size_t value_len = rec->value ? rec->value_len : 0;

    snprintf(error, sizeof(error), "%s", rec->error ? rec->error : "");
    copy.error = error;
    w->fb_hdrs = dlq_headers_new(&copy);
    if (!w->fb_hdrs ||
        !dlq_copy_prefix(&w->fb_key, &w->fb_key_len, rec->key, rec->key_len,
                         DLQ_TRUNC_KEY_MAX) ||
        !dlq_copy_prefix(&w->fb_value, &w->fb_value_len, rec->value, value_len,
                         DLQ_TRUNC_VALUE_MAX))
        return false;
    SHA256(rec->value ? rec->value : (const void *)"", value_len, md);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++) {
        md_hex[2 * i] = hex[md[i] >> 4];
        md_hex[2 * i + 1] = hex[md[i] & 15];
    }
    md_hex[2 * SHA256_DIGEST_LENGTH] = '\0';
    if (!dlq_hdr_str(w->fb_hdrs, "herald-truncated", "true") ||
        !dlq_hdr_i64(w->fb_hdrs, "herald-original-size", (int64_t)value_len) ||
        !dlq_hdr_i64(w->fb_hdrs, "herald-original-key-size",
                     (int64_t)(rec->key ? rec->key_len : 0)) ||
        !dlq_hdr_str(w->fb_hdrs, "herald-original-sha256", md_hex))
        return false;
    return true;
}

herald_err dlq_write(dlq *d, const dlq_record *rec, int timeout_ms,
                     char *errstr, size_t errstr_size)
{
    rd_kafka_headers_t *hdrs;
    dlq_waiter *w;
    rd_kafka_resp_err_t err;
    herald_err ret;

    ret = dlq_prepare(d, rec, timeout_ms, &w, &hdrs, errstr, errstr_size);
    if (ret)
        return ret;
    err = dlq_produce(d, rec, hdrs, w);
    if (err)
        return dlq_refused(d, err, w, hdrs, errstr, errstr_size);
    /* librdkafka owns the headers now. */
    if (!dlq_wait(d, w, &err))
        return dlq_timed_out(d, timeout_ms, errstr, errstr_size);
    dlq_waiter_free(w);
    return dlq_result(d, err, rec->reason, errstr, errstr_size);
}

herald_err dlq_write_async(dlq *d, const dlq_record *rec, int timeout_ms,
                           dlq_done_fn done, void *opaque, char *errstr,
                           size_t errstr_size)
{
    rd_kafka_headers_t *hdrs;
    dlq_waiter *w;
    rd_kafka_resp_err_t err, refused;
    herald_err ret;

    if (!done) {
        snprintf(errstr, errstr_size, "dlq: no done callback");
        return HERALD_ERR_INVALID;
    }
    ret = dlq_prepare(d, rec, timeout_ms, &w, &hdrs, errstr, errstr_size);
    if (ret)
        return ret;
    if (!dlq_truncated_prepare(w, rec)) {
        snprintf(errstr, errstr_size, "dlq: out of memory");
        metrics_add(d->m_errors, 1);
        rd_kafka_headers_destroy(hdrs);
        dlq_waiter_free(w);
        return HERALD_ERR_NOMEM;
    }
    w->done_fn = done;
    w->opaque = opaque;
    snprintf(w->reason, sizeof(w->reason), "%s", rec->reason);
    /* Produced under the lock, so that the report (on the poll thread,
     * which takes the lock) finds the waiter in d->pending; producev never
     * calls a callback itself. */
    pthread_mutex_lock(&d->lock);
    if (d->closed) {
        pthread_mutex_unlock(&d->lock);
        snprintf(errstr, errstr_size, "dlq: %s is closed", d->topic);
        metrics_add(d->m_errors, 1);
        rd_kafka_headers_destroy(hdrs);
        dlq_waiter_free(w);
        return HERALD_ERR_STATE;
    }
    err = dlq_produce_once(d, rec, hdrs, w);
    refused = err;
    if (dlq_permanent(err)) {
        /* Refused locally (larger than message.max.bytes): librdkafka
         * did not take hdrs. */
        rd_kafka_headers_destroy(hdrs);
        hdrs = NULL;
        err = dlq_produce_truncated(d, w, err);
    }
    if (!err) {
        dlq_list_push(&d->pending, w);
        d->n_async++;
    }
    pthread_mutex_unlock(&d->lock);
    if (err)
        return dlq_refused(d, err, w, hdrs, errstr, errstr_size);
    if (refused)
        dlq_log_truncated(d, rec->reason, refused);
    return HERALD_OK;
}

void dlq_close(dlq *d)
{
    if (!d)
        return;
    pthread_mutex_lock(&d->lock);
    d->closed = true;
    /* The poll thread times every pending write out by its deadline, so
     * this wait is bounded by the longest timeout_ms in flight. */
    while (d->n_async > 0 && d->poller_started)
        pthread_cond_wait(&d->idle, &d->lock);
    pthread_mutex_unlock(&d->lock);
}

void dlq_destroy(dlq *d)
{
    if (!d)
        return;
    dlq_close(d);
    if (d->poller_started) {
        atomic_store(&d->stop, true);
        pthread_join(d->poller, NULL);
    }
    if (d->rk) {
        /* Only this thread polls from here on. */
        if (rd_kafka_flush(d->rk, DLQ_FLUSH_MS) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            LOG_WARN("dlq", NULL,
                     "%d dead-letter records to %s still unacknowledged "
                     "after %d ms; purging them",
                     rd_kafka_outq_len(d->rk), d->topic, DLQ_FLUSH_MS);
            rd_kafka_purge(d->rk,
                           RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
            /* Purged records get their reports now. */
            rd_kafka_poll(d->rk, 0);
        }
        rd_kafka_destroy(d->rk);
    }
    /* No callback can run any more: free waiters that never got one. */
    while (d->abandoned) {
        dlq_waiter *w = d->abandoned;

        d->abandoned = w->next;
        dlq_waiter_free(w);
    }
    pthread_cond_destroy(&d->idle);
    pthread_mutex_destroy(&d->lock);
    free(d->topic);
    free(d);
}
