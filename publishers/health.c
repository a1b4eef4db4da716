/*
 * health.c: the health monitor of targets (see health.h).
 *
 * Data flow: health_set_targets() gives the monitor the current targets;
 * one background thread probes each target that is enabled and has
 * health.enabled, every health.interval_ms, with a TCP connect or an HTTP
 * GET/HEAD; publishers add passive results of real deliveries with
 * health_record(). Every result updates the target's counters and status,
 * which health_get() reads without ever waiting for a probe.
 *
 * Status rules, per target (evaluated after every result):
 *   - unknown   until the first result (active or passive);
 *   - unhealthy when the last unhealthy_after results all failed;
 *   - degraded  otherwise, when one of the last HEALTH_RECENT results
 *               failed, or the last successful result took longer than
 *               degraded_latency_ms;
 *   - healthy   otherwise.
 * So a target that was failing needs HEALTH_RECENT successes in a row to
 * be healthy again, and a single success ends unhealthy (as degraded).
 *
 * Probes: "TCP" connects (non-blocking, with the timeout) to the host and
 * port of the probe URL, parsed with curl_url() (default ports 80 and 443
 * by scheme); "GET" and "HEAD" make a libcurl easy request and count a
 * 2xx or 3xx answer (redirects are not followed) as a success. The probe
 * URL is health.url, or the target URL; it is never logged, as it may hold
 * secrets. Host names are resolved with getaddrinfo(), which has no
 * timeout of its own (libcurl's resolver is bounded by the timeout).
 *
 * Threads: the probe thread runs probes one after the other, so a slow
 * target delays the next ones by at most its timeout. It owns one curl easy
 * handle; health_probe_all() runs on the caller's thread with a handle of
 * its own. Every other function may be called from any thread. One mutex
 * guards the entries and the stop flag; no probe, log line or wait on I/O
 * happens while it is held. The metrics registry (a leaf lock) is updated
 * under it so that the status gauge follows the order of changes.
 */
#include "publishers/health.h"
#include "core/clock.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/metrics.h"
#include "core/thread.h"
#include "publishers/breaker.h"

/* Results looked back on for "a recent failure" (see the top comment). */
#define HEALTH_RECENT 5

/* Defaults of target.h, used when a setting is zero or negative. */
#define HEALTH_DEF_INTERVAL_MS 10000
#define HEALTH_DEF_TIMEOUT_MS 2000
#define HEALTH_DEF_DEGRADED_MS 1000
#define HEALTH_DEF_UNHEALTHY_AFTER 3

/*
 * Longest idle wait of the probe thread when nothing is due, so that a
 * lost wake-up could delay probes by at most this long (one minute).
 */
#define HEALTH_IDLE_WAIT_MS 60000

typedef enum health_method {
    HEALTH_METHOD_TCP = 0,
    HEALTH_METHOD_GET,
    HEALTH_METHOD_HEAD
} health_method;

/* What the monitor knows of one target. */
struct health_entry {
    char *name;        /* Owned copy of the target's name. */
    const target *tgt; /* Borrowed until the next set_targets. */
    bool probe;        /* Enabled target with health.enabled. */
    int interval_ms;   /* Sanitised settings of tgt->health. */
    int degraded_ms;
    int unhealthy_after;
    int64_t next_probe_ms; /* Monotonic time the next probe is due. */
    bool has_result;
    int consecutive_failures;
    bool last_success_slow; /* Last success slower than degraded_ms. */
    uint32_t recent;        /* Bit i set: result i back was a failure. */
    health_status status;
};

struct health {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* Signalled on stop and on set_targets. */
    bool lock_ok;
    bool cond_ok;
    bool stop;
    bool thread_started;
    pthread_t thread;
    struct health_entry *entries;
    size_t n_entries;
    metric *m_status; /* Gauge herald_target_health{target}. */
    metric *m_probes; /* Counter herald_health_probes_total. */
};

/* Copy of one probe's settings, taken under the lock, used without it. */
struct health_probe {
    char *name;
    char *url;
    char *ca_file;
    health_method method;
    int timeout_ms;
    bool tls_verify;
};

/* A status change noted under the lock, logged after it is released. */
struct health_change {
    bool changed;
    health_status from;
    health_status to;
};

const char *health_status_name(health_status status)
{
    switch (status) {
    case HEALTH_UNKNOWN: return "unknown";
    case HEALTH_HEALTHY: return "healthy";
    case HEALTH_DEGRADED: return "degraded";
    case HEALTH_UNHEALTHY: return "unhealthy";
    }
    return "unknown";
}

/* Monotonic time in fractional milliseconds, for latencies. */
static double health_now_precise_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static int health_positive_or(int v, int def)
{
    return v > 0 ? v : def;
}

/* Reads the settings of tgt into e (caller holds the lock or owns e). */
static void health_entry_configure(struct health_entry *e, const target *tgt)
{
    e->tgt = tgt;
    e->probe = tgt->enabled && tgt->health.enabled;
    e->interval_ms =
        health_positive_or(tgt->health.interval_ms, HEALTH_DEF_INTERVAL_MS);
    e->degraded_ms = health_positive_or(tgt->health.degraded_latency_ms,
                                        HEALTH_DEF_DEGRADED_MS);
    e->unhealthy_after = health_positive_or(tgt->health.unhealthy_after,
                                            HEALTH_DEF_UNHEALTHY_AFTER);
}

/* Finds the entry named name (caller holds the lock), or NULL. */
static struct health_entry *health_find(health *h, const char *name)
{
    size_t i;

    for (i = 0; i < h->n_entries; i++) {
        if (strcmp(h->entries[i].name, name) == 0)
            return &h->entries[i];
    }
    return NULL;
}

/* Status from the counters of e (see the top comment). */
static health_status health_entry_eval(const struct health_entry *e)
{
    uint32_t mask = (1u << HEALTH_RECENT) - 1;

    if (!e->has_result)
        return HEALTH_UNKNOWN;
    if (e->consecutive_failures >= e->unhealthy_after)
        return HEALTH_UNHEALTHY;
    if ((e->recent & mask) != 0 || e->last_success_slow)
        return HEALTH_DEGRADED;
    return HEALTH_HEALTHY;
}

/*
 * Applies one result to the entry named name, counting it as a probe when
 * active. Returns the status change to log. Takes the lock.
 */
static struct health_change health_apply(health *h, const char *name,
                                         bool success, double latency_ms,
                                         bool active)
{
    struct health_change change = {false, HEALTH_UNKNOWN, HEALTH_UNKNOWN};
    struct health_entry *e;

    pthread_mutex_lock(&h->lock);
    e = health_find(h, name);
    if (e == NULL)
        goto done;
    e->has_result = true;
    e->recent <<= 1;
    if (success) {
        e->consecutive_failures = 0;
        e->last_success_slow = latency_ms > (double)e->degraded_ms;
    } else {
        e->recent |= 1u;
        if (e->consecutive_failures < INT32_MAX)
            e->consecutive_failures++;
    }
    if (active && h->m_probes != NULL)
        metrics_add(h->m_probes, 1.0, e->name, success ? "success" : "failure");
    change.from = e->status;
    change.to = health_entry_eval(e);
    if (change.to != change.from) {
        change.changed = true;
        e->status = change.to;
        if (h->m_status != NULL)
            metrics_set(h->m_status, (double)change.to, e->name);
    }
done:
    pthread_mutex_unlock(&h->lock);
    return change;
}

/* Logs a status change (without the lock). */
static void health_log_change(const char *name,
                              const struct health_change *change)
{
    if (!change->changed)
        return;
    if (change->to == HEALTH_UNHEALTHY || change->to == HEALTH_DEGRADED)
        LOG_WARN("health", LOG_TARGET(name), "target health %s -> %s",
                 health_status_name(change->from),
                 health_status_name(change->to));
    else
        LOG_INFO("health", LOG_TARGET(name), "target health %s -> %s",
                 health_status_name(change->from),
                 health_status_name(change->to));
}

void health_record(health *h, const char *name, bool success, double latency_ms)
{
    struct health_change change;

    if (h == NULL || name == NULL)
        return;
    change = health_apply(h, name, success, latency_ms, false);
    health_log_change(name, &change);
}

health_status health_get(health *h, const char *name)
{
    struct health_entry *e;
    health_status status = HEALTH_UNKNOWN;

    if (h == NULL || name == NULL)
        return HEALTH_UNKNOWN;
    pthread_mutex_lock(&h->lock);
    e = health_find(h, name);
    if (e != NULL)
        status = e->status;
    pthread_mutex_unlock(&h->lock);
    return status;
}

static void health_probe_free(struct health_probe *p)
{
    free(p->name);
    free(p->url);
    free(p->ca_file);
    memset(p, 0, sizeof(*p));
}

/*
 * Copies the probe settings of e into p (caller holds the lock). Returns
 * false when out of memory; p is then empty.
 */
static bool health_probe_snapshot(const struct health_entry *e,
                                  struct health_probe *p)
{
    const target *tgt = e->tgt;
    const char *method = tgt->health.method;
    const char *url = tgt->health.url != NULL ? tgt->health.url : tgt->url;

    memset(p, 0, sizeof(*p));
    if (method == NULL || strcasecmp(method, "TCP") == 0)
        p->method = HEALTH_METHOD_TCP;
    else if (strcasecmp(method, "HEAD") == 0)
        p->method = HEALTH_METHOD_HEAD;
    else
        p->method = HEALTH_METHOD_GET;
    p->timeout_ms =
        health_positive_or(tgt->health.timeout_ms, HEALTH_DEF_TIMEOUT_MS);
    p->tls_verify = tgt->tls_verify;
    p->name = strdup(e->name);
    p->url = url != NULL ? strdup(url) : NULL;
    p->ca_file = tgt->tls_ca_file != NULL ? strdup(tgt->tls_ca_file) : NULL;
    if (p->name == NULL || (url != NULL && p->url == NULL) ||
        (tgt->tls_ca_file != NULL && p->ca_file == NULL)) {
        health_probe_free(p);
        return false;
    }
    return true;
}

/*
 * Splits url into host (brackets of an IPv6 literal removed) and port with
 * curl_url(). Schemes curl does not know are accepted when the URL names a
 * port ("tcp://broker:9092"). Returns false when the URL is unusable; on
 * success the caller frees *host and *port with curl_free().
 */
static bool health_url_host_port(const char *url, char **host, char **port)
{
    CURLU *u = curl_url();
    bool ok = false;

    *host = NULL;
    *port = NULL;
    if (u == NULL || url == NULL)
        goto out;
    if (curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) !=
        CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_HOST, host, 0) != CURLUE_OK)
        goto out;
    if (curl_url_get(u, CURLUPART_PORT, port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto out;
    if ((*host)[0] == '[') {
        size_t len = strlen(*host);

        if (len < 2 || (*host)[len - 1] != ']')
            goto out;
        memmove(*host, *host + 1, len - 2);
        (*host)[len - 2] = '\0';
    }
    ok = true;
out:
    if (!ok) {
        curl_free(*host);
        curl_free(*port);
        *host = NULL;
        *port = NULL;
    }
    curl_url_cleanup(u);
    return ok;
}

/*
 * Connects to one address without blocking longer than until deadline_ms
 * (monotonic). Returns true when the connection was established.
 */
static bool health_connect_one(const struct addrinfo *ai, int64_t deadline_ms)
{
    int fd;
    bool ok = false;
    int rc;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                ai->ai_protocol);
    if (fd < 0)
        return false;
    rc = connect(fd, ai->ai_addr, ai->ai_addrlen);
    if (rc == 0) {
        ok = true;
    } else if (errno == EINPROGRESS) {
        for (;;) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT, .revents = 0};
            int64_t left = deadline_ms - herald_now_ms();
            int err = 0;
            socklen_t len = sizeof(err);

            if (left <= 0)
                break;
            rc = poll(&pfd, 1, (int)left);
            if (rc < 0 && errno == EINTR)
                continue;
            if (rc <= 0)
                break;
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 &&
                err == 0)
                ok = true;
            break;
        }
    }
    close(fd);
    return ok;
}

/* TCP probe: true when any address of the URL's host accepts a connect. */
static bool health_probe_tcp(const struct health_probe *p)
{
    struct addrinfo hints;
    struct addrinfo *res = NULL;
    const struct addrinfo *ai;
    char *host = NULL;
    char *port = NULL;
    int64_t deadline_ms = herald_now_ms() + p->timeout_ms;
    bool ok = false;

    if (!health_url_host_port(p->url, &host, &port))
        goto out;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        goto out;
    for (ai = res; ai != NULL && !ok; ai = ai->ai_next) {
        if (herald_now_ms() >= deadline_ms)
            break;
        ok = health_connect_one(ai, deadline_ms);
    }
out:
    if (res != NULL)
        freeaddrinfo(res);
    curl_free(host);
    curl_free(port);
    return ok;
}

/* Stops a probe at its first body byte: the status is all a probe needs,
 * and a target answering with a huge body would otherwise be read until
 * the timeout. libcurl then ends the transfer with CURLE_WRITE_ERROR. */
static size_t health_discard(char *ptr, size_t size, size_t nmemb,
                             void *userdata)
{
    (void)ptr;
    (void)size;
    (void)nmemb;
    (void)userdata;
    return 0;
}

/* HTTP probe with curl (owned by the calling thread): 2xx/3xx succeed. */
static bool health_probe_http(CURL *curl, const struct health_probe *p)
{
    long status = 0;
    long verify = p->tls_verify ? 1L : 0L;
    CURLcode res;

    if (curl == NULL || p->url == NULL)
        return false;
    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, p->url);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, verify);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (p->ca_file != NULL)
        curl_easy_setopt(curl, CURLOPT_CAINFO, p->ca_file);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "herald-health/" HERALD_VERSION);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, health_discard);
    if (p->method == HEALTH_METHOD_HEAD)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
    res = curl_easy_perform(curl);
    /* CURLE_WRITE_ERROR: health_discard() stopped at the body, after the
     * status line was read. */
    if (res != CURLE_OK && res != CURLE_WRITE_ERROR)
        return false;
    if (curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK)
        return false;
    return status >= 200 && status < 400;
}

/* Runs probe p (no lock held) and records its result. */
static void health_probe_run(health *h, CURL *curl,
                             const struct health_probe *p)
{
    double start = health_now_precise_ms();
    bool ok;
    struct health_change change;

    if (p->method == HEALTH_METHOD_TCP)
        ok = health_probe_tcp(p);
    else
        ok = health_probe_http(curl, p);
    change =
        health_apply(h, p->name, ok, health_now_precise_ms() - start, true);
    if (!ok)
        LOG_DEBUG("health", LOG_TARGET(p->name), "health probe failed");
    health_log_change(p->name, &change);
}

void health_probe_all(health *h)
{
    struct health_probe *probes = NULL;
    size_t n = 0;
    size_t i;
    CURL *curl = NULL;

    if (h == NULL)
        return;
    pthread_mutex_lock(&h->lock);
    if (h->n_entries > 0)
        probes = calloc(h->n_entries, sizeof(*probes));
    if (probes != NULL) {
        for (i = 0; i < h->n_entries; i++) {
            if (h->entries[i].probe &&
                health_probe_snapshot(&h->entries[i], &probes[n]))
                n++;
        }
    }
    pthread_mutex_unlock(&h->lock);
    for (i = 0; i < n; i++) {
        if (probes[i].method != HEALTH_METHOD_TCP && curl == NULL)
            curl = curl_easy_init();
        health_probe_run(h, curl, &probes[i]);
    }
    for (i = 0; i < n; i++)
        health_probe_free(&probes[i]);
    free(probes);
    if (curl != NULL)
        curl_easy_cleanup(curl);
}

/* Absolute CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec health_deadline(int64_t ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/*
 * The probe thread: runs each due probe without the lock, then sleeps on
 * the condition variable until the next one is due, a set_targets or stop.
 */
static void *health_thread_main(void *arg)
{
    health *h = arg;
    CURL *curl = curl_easy_init();

    pthread_mutex_lock(&h->lock);
    while (!h->stop) {
        int64_t now = herald_now_ms();
        int64_t wait_ms = HEALTH_IDLE_WAIT_MS;
        struct health_entry *due = NULL;
        struct health_probe p;
        struct timespec ts;
        size_t i;

        for (i = 0; i < h->n_entries; i++) {
            struct health_entry *e = &h->entries[i];

            if (!e->probe)
                continue;
            if (e->next_probe_ms <= now) {
                due = e;
                break;
            }
            if (e->next_probe_ms - now < wait_ms)
                wait_ms = e->next_probe_ms - now;
        }
        if (due != NULL) {
            due->next_probe_ms = now + due->interval_ms;
            if (!health_probe_snapshot(due, &p))
                continue;
            pthread_mutex_unlock(&h->lock);
            health_probe_run(h, curl, &p);
            health_probe_free(&p);
            pthread_mutex_lock(&h->lock);
            continue;
        }
        ts = health_deadline(wait_ms);
        pthread_cond_timedwait(&h->cond, &h->lock, &ts);
    }
    pthread_mutex_unlock(&h->lock);
    if (curl != NULL)
        curl_easy_cleanup(curl);
    return NULL;
}

health *health_new(bool start_thread, char *errstr, size_t errstr_size)
{
    health *h;
    pthread_condattr_t attr;
    int rc;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        snprintf(errstr, errstr_size, "health monitor: out of memory");
        return NULL;
    }
    if (pthread_mutex_init(&h->lock, NULL) != 0) {
        snprintf(errstr, errstr_size, "health monitor: mutex init failed");
        goto fail;
    }
    h->lock_ok = true;
    if (pthread_condattr_init(&attr) != 0) {
        snprintf(errstr, errstr_size, "health monitor: condattr failed");
        goto fail;
    }
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&h->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        snprintf(errstr, errstr_size,
                 "health monitor: condition variable init failed");
        goto fail;
    }
    h->cond_ok = true;
    h->m_status = metrics_family(
        METRIC_GAUGE, "herald_target_health",
        "Target health status (0 unknown, 1 healthy, 2 degraded, "
        "3 unhealthy).",
        "target", NULL, 0);
    h->m_probes = metrics_family(METRIC_COUNTER, "herald_health_probes_total",
                                 "Active health probes by target and result.",
                                 "target,result", NULL, 0);
    if (start_thread) {
        rc = herald_thread_create(&h->thread, "herald-health",
                                  health_thread_main, h);
        if (rc != 0) {
            snprintf(errstr, errstr_size,
                     "health monitor: cannot start the probe thread: %s",
                     strerror(rc));
            goto fail;
        }
        h->thread_started = true;
    }
    return h;
fail:
    health_destroy(h);
    return NULL;
}

static void health_entries_free(struct health_entry *entries, size_t n)
{
    size_t i;

    if (entries == NULL)
        return;
    for (i = 0; i < n; i++)
        free(entries[i].name);
    free(entries);
}

herald_err health_set_targets(health *h, target *const *targets, size_t n)
{
    struct health_entry *fresh = NULL;
    struct health_entry *old;
    size_t n_fresh = 0;
    size_t n_old;
    size_t i;
    size_t j;
    int64_t now = herald_now_ms();

    if (h == NULL || (targets == NULL && n > 0))
        return HERALD_ERR_INVALID;
    /* Build the new table outside the lock; state is merged in below. */
    if (n > 0) {
        fresh = calloc(n, sizeof(*fresh));
        if (fresh == NULL)
            return HERALD_ERR_NOMEM;
    }
    for (i = 0; i < n; i++) {
        const target *tgt = targets[i];
        bool dup = false;

        if (tgt == NULL || tgt->name == NULL)
            continue;
        for (j = 0; j < n_fresh && !dup; j++)
            dup = strcmp(fresh[j].name, tgt->name) == 0;
        if (dup)
            continue;
        fresh[n_fresh].name = strdup(tgt->name);
        if (fresh[n_fresh].name == NULL) {
            health_entries_free(fresh, n_fresh);
            return HERALD_ERR_NOMEM;
        }
        health_entry_configure(&fresh[n_fresh], tgt);
        fresh[n_fresh].next_probe_ms = now;
        fresh[n_fresh].status = HEALTH_UNKNOWN;
        n_fresh++;
    }

    pthread_mutex_lock(&h->lock);
    for (i = 0; i < n_fresh; i++) {
        struct health_entry *e = health_find(h, fresh[i].name);

        if (e == NULL)
            continue;
        fresh[i].next_probe_ms = e->next_probe_ms;
        fresh[i].has_result = e->has_result;
        fresh[i].consecutive_failures = e->consecutive_failures;
        fresh[i].last_success_slow = e->last_success_slow;
        fresh[i].recent = e->recent;
        /* A new unhealthy_after may change the status right away. */
        fresh[i].status = health_entry_eval(&fresh[i]);
    }
    old = h->entries;
    n_old = h->n_entries;
    h->entries = fresh;
    h->n_entries = n_fresh;
    /* Removed targets leave the gauge; the others are set afresh. */
    if (h->m_status != NULL) {
        metrics_clear(h->m_status);
        for (i = 0; i < n_fresh; i++)
            metrics_set(h->m_status, (double)fresh[i].status, fresh[i].name);
    }
    pthread_mutex_unlock(&h->lock);
    pthread_cond_signal(&h->cond);
    health_entries_free(old, n_old);
    return HERALD_OK;
}

void health_destroy(health *h)
{
    if (h == NULL)
        return;
    if (h->thread_started) {
        pthread_mutex_lock(&h->lock);
        h->stop = true;
        pthread_mutex_unlock(&h->lock);
        pthread_cond_signal(&h->cond);
        pthread_join(h->thread, NULL);
    }
    health_entries_free(h->entries, h->n_entries);
    if (h->cond_ok)
        pthread_cond_destroy(&h->cond);
    if (h->lock_ok)
        pthread_mutex_destroy(&h->lock);
    free(h);
}
