/*
 * parallel.c: the ParallelPublisher (see parallel.h): fan one alert out to
 * many targets through the transport and aggregate what happened.
 *
 * Data flow: publish_start() validates, selects targets (enabled, matchers,
 * health strategy) and creates a reference-counted fan-out context (pp_ctx)
 * with one leg (pp_leg) per target, arms its timer in the timer engine
 * (core/timer.h) and returns. Legs are started up to max_concurrent_targets
 * at once: the plugin builds the request, the breaker is asked, the request
 * goes to transport_submit_ex(). Each completion callback (on a transport
 * I/O thread) records the breaker, passive health and metrics, classifies
 * the response and either finishes the leg, or submits the next attempt with
 * a "not before" time (the backoff: no thread sleeps), or starts the next
 * waiting leg. The context's timer (core/timer.h) fires at its deadline and
 * closes it. Contexts with a cancel flag (an atomic_bool gives no wake-up)
 * are also on pp->polled; one poll timer per publisher looks at their flags
 * every PP_CANCEL_POLL_MS while the list is not empty and closes the
 * cancelled ones (one callback per 10 ms, whatever the number of fan-outs).
 * A context closes once (the last leg, the deadline or the cancel flag,
 * whichever is first); the last actor using borrowed data (the alert, the
 * targets) to leave completes it: legs not final fail, the legs are copied
 * into the caller's result and the caller's publish_done_cb is called. The
 * synchronous publish_to_* wrap publish_start() and wait for that callback
 * on a condition variable.
 *
 * Exactly once: ctx->busy counts actors using borrowed data (the starter,
 * callbacks); it only rises while the context is open. Closing sets
 * ctx->closed under ctx->lock once; the completion runs in whoever sees
 * closed with busy == 0 under the lock: the closer, or the last actor
 * leaving afterwards. Nobody can enter after that, so it runs once.
 *
 * Lifetime: the completion holds one reference to the context, its
 * deadline timer one while armed or firing (timer_cancel() returning true,
 * or the callback, releases it), each submitted attempt one more; the
 * last release frees it. A callback that finds the context closed touches
 * only the context, the breaker and metrics, never the caller's alert,
 * targets or result. The cancel flag is borrowed until the caller's
 * callback: the poll reads it under pp->poll_lock while the context is on
 * pp->polled, and the completion unlinks it first (the list holds no
 * reference). The deadline timers name pp as their owner:
 * parallel_destroy() takes the pending ones back with timer_cancel_owner()
 * and closes their contexts.
 *
 * Threads: publish_start runs on any caller thread; callbacks on
 * transport I/O threads; deadlines and cancel flags on the timer thread.
 * pp->lock guards the breaker map; pp->poll_lock the polled list and the
 * poll timer's state; ctx->lock guards the context's counters and flags
 * (leg fields are written by the one actor owning the leg at a time: the
 * starter before submit, then the callback, then the completion). Lock
 * order: pp->poll_lock before ctx->lock; either before the engine's lock;
 * the completion runs with no lock held.
 */
#include "publishers/parallel.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/timer.h"
#include "publishers/backoff.h"
#include "publishers/re2.h"

#define PP_COMPONENT "publisher"
/* Largest request body a plugin may build, bytes. Alert payloads are a
 * few KiB; 1 MiB matches the largest accepted job message. */
#define PP_MAX_REQUEST_BODY (1024 * 1024)
/* How often the poll timer looks at cancel flags while a pending fan-out
 * has one, ms: the "within ~10 ms" of publish_opts.cancel. */
#define PP_CANCEL_POLL_MS 10
/* An attempt may run this long past the deadline (ms), so that a response
 * just after the deadline still reaches the breaker and the health monitor
 * instead of being cut off; the leg is reported failed at the deadline. */
#define PP_LATE_GRACE_MS 1000
/* Interval of rate-limited error lines per target and kind, ms. */
#define PP_LOG_LIMIT_MS 60000
/* Lines that repeat per alert while a target is down (breaker or health
 * skips, failed publishes): at most one per key per 10 s, with the count
 * of the suppressed ones, so an outage at hundreds of alerts per second
 * logs a few lines per target per interval, not one per alert. */
#define PP_OUTAGE_LOG_MS 10000

/* One breaker per target name, kept across reloads. */
typedef struct pp_breaker {
    struct pp_breaker *next;
    char *name;
    target_breaker cfg;
    breaker *br;
} pp_breaker;

struct parallel_publisher {
    transport *tp;
    health *h;
    pthread_mutex_t lock; /* Guards breakers and retired. */
    bool lock_inited;
    pp_breaker *breakers;
    pp_breaker *retired; /* Replaced by a reload; freed at destroy. */
    atomic_uint_fast64_t seed;
    atomic_long fanout_active;
    metric *m_publish_duration;
    metric *m_publishes;
    metric *m_deliveries;
    metric *m_failures;
    metric *m_skipped;
    metric *m_http_duration;
    metric *m_retries;
    metric *m_fanout_active;
    metric *m_matcher_limits;
    /* Deadlines and cancel polls of pending fan-outs. */
    herald_timer *timer;       /* Borrowed (cfg) or the shared engine. */
    bool timer_shared;         /* timer is a timer_shared_acquire() ref. */
    pthread_mutex_t poll_lock; /* Guards polled, poll_armed. */
    bool poll_inited;
    struct pp_ctx *polled;  /* Open-or-closing contexts with a cancel flag. */
    timer_entry poll_timer; /* Armed while polled is not empty. */
    bool poll_armed;
};

struct pp_ctx;

typedef struct pp_leg {
    struct pp_ctx *ctx;
    const target *tgt; /* Borrowed while the context is open. */
    char *name;        /* Owned copy, for use after close. */
    const char *type;
    breaker *br; /* Borrowed from pp, NULL when not respected. */
    uint64_t seed;
    bool final;
    bool started;
    publish_outcome outcome;
    publish_skip_reason skip_reason;
    long http_status;
    char error[256];
    const char *error_type;
    int attempts;
    int64_t first_mono_ms; /* Monotonic time of the first attempt. */
    int64_t done_mono_ms;  /* Monotonic time of the outcome. */
    int64_t first_wall_ms;
    int64_t last_wall_ms;
} pp_leg;

typedef struct pp_ctx {
    pthread_mutex_t lock;
    int refs;
    bool closed;         /* Set once: last leg, deadline or cancel. */
    herald_err stop_err; /* Why it closed (OK: every leg final). */
    int busy;            /* Starter and callbacks using borrowed data. */
    size_t n_pending;    /* Selected legs not yet final. */
    size_t *order;       /* Legs to start, in order. */
    size_t n_order;
    size_t next_start;
    size_t active;       /* Legs started and not final. */
    int max_active;      /* 0 = unlimited. */
    int64_t deadline_ms; /* Monotonic. */
    bool respect_breakers;
    const alert *a; /* Borrowed until the completion. */
    parallel_publisher *pp;
    pp_leg *legs;
    size_t n_legs;
    const atomic_bool *cancel; /* Borrowed; read by the poll timer. */
    timer_entry timer;         /* Deadline; owner pp. */
    struct pp_ctx *pnext;      /* pp->polled, under pp->poll_lock. */
    struct pp_ctx *pprev;
    bool polled;         /* On pp->polled; under pp->poll_lock. */
    double t0_ms;        /* Monotonic start, for duration_ms. */
    publish_result *res; /* Caller's, written by the completion. */
    publish_done_cb cb;
    void *opaque;
} pp_ctx;

static double pp_mono_ms_f(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* splitmix64: turns a counter into a well-mixed, non-zero jitter seed. */
static uint64_t pp_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x ? x : 1;
}

/* ------------------------------------------------------------------ */
/* Options and names                                                    */
/* ------------------------------------------------------------------ */

void publish_opts_default(publish_opts *opts)
{
    opts->deadline_ms = 30000;
    opts->strategy = PUBLISH_SKIP_UNHEALTHY;
    opts->respect_breakers = true;
    opts->max_concurrent_targets = 0;
    opts->cancel = NULL;
}

herald_err publish_opts_validate(const publish_opts *opts, char *errstr,
                                 size_t errstr_size)
{
    if (!opts) {
        snprintf(errstr, errstr_size, "publish options: NULL");
        return HERALD_ERR_INVALID;
    }
    if (opts->deadline_ms < 1 || opts->deadline_ms > PUBLISH_DEADLINE_MAX_MS) {
        snprintf(errstr, errstr_size,
                 "deadline_ms must be between 1 and %d, got %lld",
                 PUBLISH_DEADLINE_MAX_MS, (long long)opts->deadline_ms);
        return HERALD_ERR_INVALID;
    }
    if (opts->strategy != PUBLISH_SKIP_UNHEALTHY &&
        opts->strategy != PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED &&
        opts->strategy != PUBLISH_TO_ALL) {
        snprintf(errstr, errstr_size, "strategy: unknown value %d",
                 (int)opts->strategy);
        return HERALD_ERR_INVALID;
    }
    if (opts->max_concurrent_targets < 0) {
        snprintf(errstr, errstr_size,
                 "max_concurrent_targets must be >= 0, got %d",
                 opts->max_concurrent_targets);
        return HERALD_ERR_INVALID;
    }
    return HERALD_OK;
}

const char *publish_strategy_name(publish_strategy strategy)
{
    switch (strategy) {
    case PUBLISH_SKIP_UNHEALTHY: return "skip_unhealthy";
    case PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED:
        return "skip_unhealthy_and_degraded";
    case PUBLISH_TO_ALL: return "publish_to_all";
    }
    return "unknown";
}

herald_err publish_strategy_parse(const char *name, publish_strategy *out)
{
    static const publish_strategy all[] = {PUBLISH_SKIP_UNHEALTHY,
                                           PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED,
                                           PUBLISH_TO_ALL};
    size_t i;

    if (!name || !out)
        return HERALD_ERR_INVALID;
    for (i = 0; i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(name, publish_strategy_name(all[i])) == 0) {
            *out = all[i];
            return HERALD_OK;
        }
    }
    return HERALD_ERR_INVALID;
}

const char *publish_outcome_name(publish_outcome outcome)
{
    switch (outcome) {
    case PUBLISH_OUTCOME_DELIVERED: return "delivered";
    case PUBLISH_OUTCOME_FAILED: return "failed";
    case PUBLISH_OUTCOME_SKIPPED: return "skipped";
    }
    return "unknown";
}

const char *publish_skip_reason_name(publish_skip_reason reason)
{
    switch (reason) {
    case PUBLISH_REASON_NONE: return "";
    case PUBLISH_REASON_DISABLED: return "disabled";
    case PUBLISH_REASON_FILTERED: return "filtered";
    case PUBLISH_REASON_UNHEALTHY: return "unhealthy";
    case PUBLISH_REASON_DEGRADED: return "degraded";
    case PUBLISH_REASON_CIRCUIT_OPEN: return "circuit_open";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* Result                                                               */
/* ------------------------------------------------------------------ */

void publish_result_init(publish_result *res)
{
    memset(res, 0, sizeof *res);
}

void publish_result_free(publish_result *res)
{
    size_t i;

    if (!res)
        return;
    for (i = 0; i < res->n_targets; i++)
        free(res->targets[i].name);
    free(res->targets);
    publish_result_init(res);
}

bool publish_result_success(const publish_result *res)
{
    return res && res->succeeded > 0;
}

bool publish_result_all_succeeded(const publish_result *res)
{
    return res && res->succeeded > 0 && res->failed == 0;
}

bool publish_result_all_failed(const publish_result *res)
{
    return res && res->failed > 0 && res->succeeded == 0;
}

double publish_result_success_rate(const publish_result *res)
{
    size_t attempted;

    if (!res)
        return 0.0;
    attempted = res->succeeded + res->failed;
    return attempted ? (double)res->succeeded / (double)attempted : 0.0;
}

/* Adds key -> string or null. Returns false when out of memory. */
static bool pp_json_str(struct json_object *o, const char *key, const char *v)
{
    struct json_object *s = NULL;

    if (v) {
        s = json_object_new_string(v);
        if (!s)
            return false;
    }
    if (json_object_object_add(o, key, s) != 0) {
        json_object_put(s);
        return false;
    }
    return true;
}

static bool pp_json_add(struct json_object *o, const char *key,
                        struct json_object *v)
{
    if (!v)
        return false;
    if (json_object_object_add(o, key, v) != 0) {
        json_object_put(v);
        return false;
    }
    return true;
}

struct json_object *publish_result_to_json(const publish_result *res)
{
    struct json_object *o = NULL;
    struct json_object *arr = NULL;
    size_t i;

    if (!res)
        return NULL;
    o = json_object_new_object();
    if (!o)
        goto fail;
    if (!pp_json_add(o, "total", json_object_new_int64((int64_t)res->total)) ||
        !pp_json_add(o, "succeeded",
                     json_object_new_int64((int64_t)res->succeeded)) ||
        !pp_json_add(o, "failed",
                     json_object_new_int64((int64_t)res->failed)) ||
        !pp_json_add(o, "skipped",
                     json_object_new_int64((int64_t)res->skipped)) ||
        !pp_json_add(o, "duration_ms",
                     json_object_new_double(res->duration_ms)) ||
        !pp_json_add(o, "partial_success",
                     json_object_new_boolean(res->partial_success)) ||
        !pp_json_add(o, "success",
                     json_object_new_boolean(publish_result_success(res))) ||
        !pp_json_str(o, "error",
                     res->err == HERALD_OK ? NULL : herald_err2str(res->err)))
        goto fail;
    arr = json_object_new_array();
    if (!arr)
        goto fail;
    for (i = 0; i < res->n_targets; i++) {
        const publish_target_result *tr = &res->targets[i];
        struct json_object *t = json_object_new_object();
        bool ok;

        if (!t)
            goto fail;
        if (json_object_array_add(arr, t) != 0) {
            json_object_put(t);
            goto fail;
        }
        ok = pp_json_str(t, "name", tr->name) &&
             pp_json_str(t, "type", tr->type) &&
             pp_json_str(t, "outcome", publish_outcome_name(tr->outcome)) &&
             (tr->http_status
                  ? pp_json_add(t, "http_status",
                                json_object_new_int64(tr->http_status))
                  : pp_json_str(t, "http_status", NULL)) &&
             pp_json_str(t, "error", tr->error[0] ? tr->error : NULL) &&
             pp_json_str(t, "error_type", tr->error_type) &&
             pp_json_add(t, "attempts", json_object_new_int(tr->attempts)) &&
             pp_json_add(t, "duration_ms",
                         json_object_new_double(tr->duration_ms)) &&
             pp_json_str(t, "skip_reason",
                         tr->skip_reason == PUBLISH_REASON_NONE
                             ? NULL
                             : publish_skip_reason_name(tr->skip_reason)) &&
             (tr->first_attempt_ms
                  ? pp_json_add(t, "first_attempt_ms",
                                json_object_new_int64(tr->first_attempt_ms))
                  : pp_json_str(t, "first_attempt_ms", NULL)) &&
             (tr->last_attempt_ms
                  ? pp_json_add(t, "last_attempt_ms",
                                json_object_new_int64(tr->last_attempt_ms))
                  : pp_json_str(t, "last_attempt_ms", NULL));
        if (!ok)
            goto fail;
    }
    if (json_object_object_add(o, "targets", arr) != 0)
        goto fail;
    return o;
fail:
    json_object_put(arr);
    json_object_put(o);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Publisher                                                            */
/* ------------------------------------------------------------------ */

static void pp_ctx_close(pp_ctx *ctx, herald_err stop_err);
static void pp_ctx_unref(pp_ctx *ctx);
static void pp_ctx_leave(pp_ctx *ctx);

/* ------------------------------------------------------------------ */
/* Deadline and cancel timer                                            */
/* ------------------------------------------------------------------ */

/*
 * The deadline timer of a fan-out (timer thread; it holds the timer's
 * reference): closes the context for its deadline unless it closed
 * already. Short: closing completes the fan-out here only when no leg
 * callback is busy, and the completion is bounded work (fill the result,
 * a metric, a log line, the caller's non-blocking publish_done_cb).
 */
static void pp_ctx_deadline(void *arg)
{
    pp_ctx *ctx = arg;

    pp_ctx_close(ctx, HERALD_ERR_DEADLINE);
    pp_ctx_unref(ctx);
}

/* Unlinks ctx from pp->polled if it is there. Holds pp->poll_lock. */
static void pp_polled_unlink(parallel_publisher *pp, pp_ctx *ctx)
{
    if (!ctx->polled)
        return;
    if (ctx->pprev)
        ctx->pprev->pnext = ctx->pnext;
    else
        pp->polled = ctx->pnext;
    if (ctx->pnext)
        ctx->pnext->pprev = ctx->pprev;
    ctx->pnext = NULL;
    ctx->pprev = NULL;
    ctx->polled = false;
}

static void pp_poll(void *arg);

/* Arms the poll timer unless it is armed. Holds pp->poll_lock. */
static herald_err pp_poll_arm(parallel_publisher *pp)
{
    herald_err err;

    if (pp->poll_armed)
        return HERALD_OK;
    err = timer_add(pp->timer, &pp->poll_timer,
                    herald_now_ms() + PP_CANCEL_POLL_MS, pp_poll, pp);
    pp->poll_armed = err == HERALD_OK;
    return err;
}

/*
 * The poll timer (timer thread): takes the contexts whose cancel flag is
 * set off pp->polled (with a reference each), re-arms while the list is
 * not empty, then closes them without the lock.
 */
static void pp_poll(void *arg)
{
    parallel_publisher *pp = arg;
    pp_ctx *cancelled = NULL;
    pp_ctx *ctx;
    pp_ctx *next;

    pthread_mutex_lock(&pp->poll_lock);
    pp->poll_armed = false;
    for (ctx = pp->polled; ctx; ctx = next) {
        next = ctx->pnext;
        if (!atomic_load(ctx->cancel))
            continue;
        pp_polled_unlink(pp, ctx);
        pthread_mutex_lock(&ctx->lock);
        ctx->refs++;
        pthread_mutex_unlock(&ctx->lock);
        ctx->pnext = cancelled;
        cancelled = ctx;
    }
    /* Cannot fail: the poll timer's heap slot was just given back. */
    if (pp->polled)
        (void)pp_poll_arm(pp);
    pthread_mutex_unlock(&pp->poll_lock);
    while (cancelled) {
        ctx = cancelled;
        cancelled = ctx->pnext;
        ctx->pnext = NULL;
        pp_ctx_close(ctx, HERALD_ERR_CANCELLED);
        pp_ctx_unref(ctx);
    }
}

/* Puts ctx on pp->polled and makes sure the poll timer runs. */
static herald_err pp_poll_start(parallel_publisher *pp, pp_ctx *ctx)
{
    herald_err err;

    pthread_mutex_lock(&pp->poll_lock);
    err = pp_poll_arm(pp);
    if (err == HERALD_OK) {
        ctx->pprev = NULL;
        ctx->pnext = pp->polled;
        if (pp->polled)
            pp->polled->pprev = ctx;
        pp->polled = ctx;
        ctx->polled = true;
    }
    pthread_mutex_unlock(&pp->poll_lock);
    return err;
}

/* Takes ctx off pp->polled; true when it was there (the poll had not
 * taken it). */
static bool pp_poll_stop(parallel_publisher *pp, pp_ctx *ctx)
{
    bool was;

    pthread_mutex_lock(&pp->poll_lock);
    was = ctx->polled;
    pp_polled_unlink(pp, ctx);
    pthread_mutex_unlock(&pp->poll_lock);
    return was;
}

/* Closes every fan-out whose deadline timer is pending as cancelled
 * (parallel_destroy): the timers are taken back (a callback firing is
 * waited for), and each one's reference closes its context; again while
 * a completion started another fan-out meanwhile. */
static void pp_pending_cancel(parallel_publisher *pp)
{
    timer_entry *e;

    if (!pp->timer)
        return;
    for (e = timer_cancel_owner(pp->timer, pp); e;
         e = timer_cancel_owner(pp->timer, pp)) {
        while (e) {
            pp_ctx *ctx = e->arg;

            e = e->next; /* Read before the context may be freed. */
            pp_ctx_close(ctx, HERALD_ERR_CANCELLED);
            pp_ctx_unref(ctx); /* The timer's. */
        }
    }
}

void parallel_config_default(parallel_config *cfg)
{
    transport_config_default(&cfg->transport);
    cfg->seed = 0;
}

/* Buckets of the publish duration, seconds: 5 ms .. 60 s. */
static const double pp_publish_buckets[] = {
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

parallel_publisher *parallel_new(const parallel_config *cfg, health *h,
                                 char *errstr, size_t errstr_size)
{
    parallel_config def;
    transport_config tcfg;
    parallel_publisher *pp;

    if (!cfg) {
        parallel_config_default(&def);
        cfg = &def;
    }
    pp = calloc(1, sizeof *pp);
    if (!pp) {
        snprintf(errstr, errstr_size, "publisher: out of memory");
        return NULL;
    }
    pthread_mutex_init(&pp->lock, NULL);
    pp->lock_inited = true;
    pp->h = h;
    atomic_init(&pp->seed, cfg->seed ? cfg->seed
                                     : (uint64_t)herald_wall_ms() ^
                                           (uint64_t)(uintptr_t)pp);
    atomic_init(&pp->fanout_active, 0);
    pp->m_publish_duration = metrics_family(
        METRIC_HISTOGRAM, "herald_publish_duration_seconds",
        "Duration of one publish call (all legs), by result.", "result",
        pp_publish_buckets,
        sizeof pp_publish_buckets / sizeof pp_publish_buckets[0]);
    pp->m_publishes = metrics_family(
        METRIC_COUNTER, "herald_publishes_total",
        "Publish calls by result: success, partial_success, failure.", "result",
        NULL, 0);
    pp->m_deliveries = metrics_family(
        METRIC_COUNTER, "herald_target_deliveries_total",
        "Final outcomes of publish legs per target (delivered, failed).",
        "target,outcome", NULL, 0);
    pp->m_failures =
        metrics_family(METRIC_COUNTER, "herald_target_failures_total",
                       "Failed publish legs per target by error type.",
                       "target,error_type", NULL, 0);
    pp->m_skipped = metrics_family(
        METRIC_COUNTER, "herald_target_skipped_total",
        "Publish legs skipped per target by reason.", "target,reason", NULL, 0);
    pp->m_http_duration = metrics_family(
        METRIC_HISTOGRAM, "herald_http_request_duration_seconds",
        "Duration of one HTTP attempt per target.", "target", NULL, 0);
    pp->m_retries =
        metrics_family(METRIC_COUNTER, "herald_target_retries_total",
                       "Retry attempts per target.", "target", NULL, 0);
    pp->m_fanout_active = metrics_family(
        METRIC_GAUGE, "herald_fanout_active",
        "Publish legs in flight (started, not final).", "", NULL, 0);
    pp->m_matcher_limits = metrics_family(
        METRIC_COUNTER, "herald_matcher_limit_hits_total",
        "Regex matches per target that hit a limit (counted as no match).",
        "target", NULL, 0);
    if (!pp->m_publish_duration || !pp->m_publishes || !pp->m_deliveries ||
        !pp->m_failures || !pp->m_skipped || !pp->m_http_duration ||
        !pp->m_retries || !pp->m_fanout_active || !pp->m_matcher_limits) {
        snprintf(errstr, errstr_size,
                 "publisher: cannot register metrics (out of memory or a "
                 "name registered with another type)");
        goto fail;
    }
    pthread_mutex_init(&pp->poll_lock, NULL);
    pp->poll_inited = true;
    tcfg = cfg->transport;
    if (tcfg.timer) {
        pp->timer = tcfg.timer;
    } else {
        pp->timer = timer_shared_acquire(errstr, errstr_size);
        if (!pp->timer)
            goto fail;
        pp->timer_shared = true;
        tcfg.timer = pp->timer; /* One engine for deadlines and retries. */
    }
    pp->tp = transport_new(&tcfg, errstr, errstr_size);
    if (!pp->tp)
        goto fail;
    return pp;
fail:
    parallel_destroy(pp);
    return NULL;
}

static void pp_breakers_free(pp_breaker *b)
{
    while (b) {
        pp_breaker *next = b->next;

        breaker_destroy(b->br);
        free(b->name);
        free(b);
        b = next;
    }
}

void parallel_destroy(parallel_publisher *pp)
{
    if (!pp)
        return;
    /* First the fan-outs still pending complete as cancelled (each
     * callback is called here, on the timer thread, or on the I/O thread
     * whose callback is using the context; transport_destroy joins
     * those), with their timers cancelled. */
    pp_pending_cancel(pp);
    /* Then the transport: its threads run callbacks that use breakers. */
    transport_destroy(pp->tp);
    /* Every fan-out completed: the poll timer stops re-arming. */
    if (pp->timer)
        (void)timer_cancel_wait(pp->timer, &pp->poll_timer);
    if (pp->poll_inited)
        pthread_mutex_destroy(&pp->poll_lock);
    if (pp->timer_shared)
        timer_shared_release();
    pp_breakers_free(pp->breakers);
    pp_breakers_free(pp->retired);
    if (pp->lock_inited)
        pthread_mutex_destroy(&pp->lock);
    free(pp);
}

size_t parallel_in_flight(parallel_publisher *pp)
{
    long v;

    if (!pp)
        return 0;
    v = atomic_load(&pp->fanout_active);
    return v > 0 ? (size_t)v : 0;
}

health *parallel_health(parallel_publisher *pp)
{
    return pp ? pp->h : NULL;
}

static bool pp_breaker_cfg_equal(const target_breaker *x,
                                 const target_breaker *y)
{
    return x->failure_threshold == y->failure_threshold &&
           x->failure_rate == y->failure_rate && x->window_ms == y->window_ms &&
           x->min_requests == y->min_requests &&
           x->open_timeout_ms == y->open_timeout_ms &&
           x->half_open_probes == y->half_open_probes &&
           x->success_threshold == y->success_threshold;
}

breaker *parallel_breaker_for(parallel_publisher *pp, const target *tgt)
{
    pp_breaker *b;
    breaker *br = NULL;
    breaker *fresh = NULL;
    char *name = NULL;

    if (!pp || !tgt || !tgt->name)
        return NULL;
    pthread_mutex_lock(&pp->lock);
    for (b = pp->breakers; b; b = b->next)
        if (strcmp(b->name, tgt->name) == 0)
            break;
    if (b && pp_breaker_cfg_equal(&b->cfg, &tgt->breaker))
        br = b->br;
    pthread_mutex_unlock(&pp->lock);
    if (br)
        return br;

    /* Created outside the lock (breaker_new may log); a racing creator
     * loses and frees its copy below. */
    fresh = breaker_new(tgt->name, &tgt->breaker);
    name = strdup(tgt->name);
    if (!fresh || !name)
        goto out;
    pthread_mutex_lock(&pp->lock);
    for (b = pp->breakers; b; b = b->next)
        if (strcmp(b->name, tgt->name) == 0)
            break;
    if (b && pp_breaker_cfg_equal(&b->cfg, &tgt->breaker)) {
        br = b->br;
    } else if (b) {
        /* Settings changed by a reload: retire the old breaker (legs in
         * flight may still hold it) and use a fresh one. */
        pp_breaker *old = malloc(sizeof *old);

        if (old) {
            *old = *b;
            old->name = NULL; /* The name stays with the live entry. */
            old->next = pp->retired;
            pp->retired = old;
            b->br = fresh;
            b->cfg = tgt->breaker;
            br = fresh;
            fresh = NULL;
        }
        /* Out of memory: keep using the old breaker. */
        if (!br)
            br = b->br;
        old = NULL;
    } else {
        b = calloc(1, sizeof *b);
        if (b) {
            b->name = name;
            name = NULL;
            b->cfg = tgt->breaker;
            b->br = fresh;
            fresh = NULL;
            b->next = pp->breakers;
            pp->breakers = b;
            br = b->br;
        }
    }
    pthread_mutex_unlock(&pp->lock);
out:
    breaker_destroy(fresh);
    free(name);
    return br;
}

herald_err parallel_breaker_state(parallel_publisher *pp, const char *name,
                                  int64_t now_ms, breaker_state *state,
                                  uint64_t *transitions)
{
    pp_breaker *b;
    breaker *br = NULL;

    if (!pp || !name)
        return HERALD_ERR_INVALID;
    pthread_mutex_lock(&pp->lock);
    for (b = pp->breakers; b; b = b->next)
        if (strcmp(b->name, name) == 0)
            break;
    if (b)
        br = b->br;
    pthread_mutex_unlock(&pp->lock);
    if (!br)
        return HERALD_ERR_NOT_FOUND;
    /* Breakers are freed only by parallel_destroy: safe unlocked. */
    if (state)
        *state = breaker_get_state(br, now_ms);
    if (transitions)
        *transitions = breaker_transitions(br);
    return HERALD_OK;
}

/* ------------------------------------------------------------------ */
/* Fan-out                                                              */
/* ------------------------------------------------------------------ */

static void pp_fanout_add(parallel_publisher *pp, long d)
{
    long v = atomic_fetch_add(&pp->fanout_active, d) + d;

    metrics_set(pp->m_fanout_active, (double)v);
}

static void pp_ctx_free(pp_ctx *ctx)
{
    size_t i;

    if (!ctx)
        return;
    for (i = 0; ctx->legs && i < ctx->n_legs; i++)
        free(ctx->legs[i].name);
    free(ctx->legs);
    free(ctx->order);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static void pp_ctx_unref(pp_ctx *ctx)
{
    int refs;

    pthread_mutex_lock(&ctx->lock);
    refs = --ctx->refs;
    pthread_mutex_unlock(&ctx->lock);
    if (refs == 0)
        pp_ctx_free(ctx);
}

/* Ends a leg as failed with error text and type (leg owner only). */
static void pp_leg_fail(pp_leg *leg, const char *error_type, const char *fmt,
                        ...) __attribute__((format(printf, 3, 4)));

static void pp_leg_fail(pp_leg *leg, const char *error_type, const char *fmt,
                        ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(leg->error, sizeof leg->error, fmt, ap);
    va_end(ap);
    leg->outcome = PUBLISH_OUTCOME_FAILED;
    leg->error_type = error_type;
    leg->final = true;
    leg->done_mono_ms = herald_now_ms();
}

static void pp_on_done(void *opaque, const http_response *resp);

/*
 * Builds and submits the leg's next attempt, not before not_before_ms.
 * Called by the leg's owner (the starting caller, or the callback of the
 * previous attempt with ctx->busy held), so the alert and target are
 * alive. Returns true when submitted; false when the leg became final
 * (fields set: skipped circuit_open, or failed).
 */
static bool pp_leg_submit(pp_ctx *ctx, pp_leg *leg, int64_t not_before_ms)
{
    parallel_publisher *pp = ctx->pp;
    const target *tgt = leg->tgt;
    http_request req;
    char errstr[200];
    herald_err err;
    int64_t now = herald_now_ms();
    int64_t send_at = not_before_ms > now ? not_before_ms : now;
    int64_t left = ctx->deadline_ms + PP_LATE_GRACE_MS - send_at;
    int timeout_ms;
    bool ok = false;

    http_request_init(&req, PP_MAX_REQUEST_BODY);
    errstr[0] = '\0';
    if (!tgt->plugin || !tgt->plugin->build_request) {
        pp_leg_fail(leg, "build", "target type has no request builder");
        goto out;
    }
    err = tgt->plugin->build_request(tgt, ctx->a, &req, errstr, sizeof errstr);
    if (err == HERALD_OK)
        err = target_request_apply_common(tgt, &req);
    if (err != HERALD_OK) {
        pp_leg_fail(leg, "build", "cannot build the request: %s",
                    errstr[0] ? errstr : herald_err2str(err));
        goto out;
    }
    /* The breaker is asked after the build, so that a build error never
     * holds a half-open probe slot. */
    if (leg->br && !breaker_allow(leg->br, now)) {
        if (leg->attempts == 0) {
            leg->outcome = PUBLISH_OUTCOME_SKIPPED;
            leg->skip_reason = PUBLISH_REASON_CIRCUIT_OPEN;
            leg->final = true;
            leg->done_mono_ms = now;
        } else {
            pp_leg_fail(leg, "circuit_open",
                        "circuit breaker opened before attempt %d",
                        leg->attempts + 1);
        }
        goto out;
    }
    timeout_ms = tgt->timeout_ms > 0 ? tgt->timeout_ms : 5000;
    if (left < 1)
        left = 1;
    if (left < timeout_ms)
        timeout_ms = (int)left;

    if (leg->attempts == 0) {
        leg->first_mono_ms = send_at;
        leg->first_wall_ms = herald_wall_ms() + (send_at - now);
    } else {
        metrics_add(pp->m_retries, 1, leg->name);
    }
    leg->attempts++;
    leg->last_wall_ms = herald_wall_ms() + (send_at - now);

    pthread_mutex_lock(&ctx->lock);
    ctx->refs++;
    pthread_mutex_unlock(&ctx->lock);
    err = transport_submit_ex(pp->tp, tgt, &req, not_before_ms, timeout_ms,
                              pp_on_done, leg);
    if (err != HERALD_OK) {
        /* The breaker's slot is given back as a failure. */
        if (leg->br)
            breaker_record(leg->br, false, herald_now_ms());
        leg->attempts--;
        pp_leg_fail(leg, err == HERALD_ERR_STATE ? "cancelled" : "other",
                    "cannot submit the request: %s", herald_err2str(err));
        pthread_mutex_lock(&ctx->lock);
        ctx->refs--;
        pthread_mutex_unlock(&ctx->lock);
        goto out;
    }
    ok = true;
out:
    http_request_free(&req);
    return ok;
}

/* Logs a leg skipped by its target's breaker or health: one line per
 * target and reason per PP_OUTAGE_LOG_MS, with the count of the others. */
static void pp_log_skip(const log_fields *f, const char *target,
                        const char *reason)
{
    char key[192];

    snprintf(key, sizeof key, "skip:%s:%s", target, reason);
    log_write_limited(LOG_LEVEL_WARN, PP_COMPONENT, f, key, PP_OUTAGE_LOG_MS,
                      "skipped: %s", reason);
}

/* Metrics and logs of a leg that became final before the context closed. */
static void pp_leg_report(pp_ctx *ctx, pp_leg *leg)
{
    parallel_publisher *pp = ctx->pp;
    const char *fp = ctx->a ? ctx->a->fingerprint : NULL;
    log_fields f = {leg->name, NULL, -1, -1, fp};

    switch (leg->outcome) {
    case PUBLISH_OUTCOME_DELIVERED:
        metrics_add(pp->m_deliveries, 1, leg->name, "delivered");
        LOG_DEBUG(PP_COMPONENT, &f,
                  "delivered after %d attempt(s), "
                  "status %ld",
                  leg->attempts, leg->http_status);
        break;
    case PUBLISH_OUTCOME_FAILED:
        metrics_add(pp->m_deliveries, 1, leg->name, "failed");
        metrics_add(pp->m_failures, 1, leg->name,
                    leg->error_type ? leg->error_type : "other");
        LOG_DEBUG(PP_COMPONENT, &f, "failed after %d attempt(s): %s",
                  leg->attempts, leg->error);
        break;
    case PUBLISH_OUTCOME_SKIPPED:
        metrics_add(pp->m_skipped, 1, leg->name,
                    publish_skip_reason_name(leg->skip_reason));
        /* Disabled and filtered are the configuration's choice; health
         * and breaker skips mean an alert did not reach a target. */
        if (leg->skip_reason == PUBLISH_REASON_DISABLED ||
            leg->skip_reason == PUBLISH_REASON_FILTERED)
            LOG_DEBUG(PP_COMPONENT, &f, "skipped: %s",
                      publish_skip_reason_name(leg->skip_reason));
        else
            pp_log_skip(&f, leg->name,
                        publish_skip_reason_name(leg->skip_reason));
        break;
    }
}

/*
 * Starts waiting legs while the concurrency limit allows. The caller is
 * the context's owner or holds ctx->busy. Legs that end at once (breaker
 * open, build error) are finished here.
 */
static void pp_start_waiting(pp_ctx *ctx)
{
    for (;;) {
        pp_leg *leg;
        bool submitted;

        pthread_mutex_lock(&ctx->lock);
        if (ctx->closed || ctx->next_start >= ctx->n_order ||
            (ctx->max_active > 0 && ctx->active >= (size_t)ctx->max_active)) {
            pthread_mutex_unlock(&ctx->lock);
            return;
        }
        leg = &ctx->legs[ctx->order[ctx->next_start++]];
        ctx->active++;
        pthread_mutex_unlock(&ctx->lock);

        leg->started = true;
        LOG_DEBUG(PP_COMPONENT, LOG_TARGET(leg->name), "leg start");
        pp_fanout_add(ctx->pp, 1);
        submitted = pp_leg_submit(ctx, leg, 0);
        if (submitted)
            continue;
        pp_fanout_add(ctx->pp, -1);
        pp_leg_report(ctx, leg);
        pthread_mutex_lock(&ctx->lock);
        ctx->active--;
        ctx->n_pending--;
        pthread_mutex_unlock(&ctx->lock);
    }
}

/* Completion of one attempt, on a transport I/O thread. */
/*
 * Whether an answer counts for the target's breaker and health. A 429
 * (Too Many Requests, RFC 6585) means the target is up and asks us to slow
 * down: the leg backs off as Retry-After says, but the answer must not open
 * the breaker or mark the target unhealthy, or rate limiting (Slack's one
 * message per second) would send alerts to the dead-letter topic instead of
 * waiting.
 */
static bool pp_available(const http_response *resp, bool success)
{
    return success || (resp->transport_error == 0 && resp->status == 429);
}

static void pp_on_done(void *opaque, const http_response *resp)
{
    pp_leg *leg = opaque;
    pp_ctx *ctx = leg->ctx;
    parallel_publisher *pp = ctx->pp;
    delivery_outcome out;
    bool late;
    bool success;
    bool final = false;
    int64_t now;

    pthread_mutex_lock(&ctx->lock);
    late = ctx->closed;
    if (!late)
        ctx->busy++;
    pthread_mutex_unlock(&ctx->lock);

    metrics_observe(pp->m_http_duration, resp->duration_ms / 1000.0, leg->name);
    if (late) {
        /* The caller has returned: its alert and targets may be gone.
         * Judge by the status alone, for the breaker and health. */
        success = resp->transport_error == 0 && resp->status >= 200 &&
                  resp->status < 300;
        if (leg->br)
            breaker_record(leg->br, pp_available(resp, success),
                           herald_now_ms());
        if (pp->h && resp->transport_error != TRANSPORT_ERR_CANCELLED)
            health_record(pp->h, leg->name, pp_available(resp, success),
                          resp->duration_ms);
        pp_fanout_add(pp, -1);
        pp_ctx_unref(ctx);
        return;
    }

    memset(&out, 0, sizeof out);
    out.retry_after_ms = -1;
    target_classify(leg->tgt, resp, &out);
    success = out.verdict == DELIVERY_DELIVERED;
    now = herald_now_ms();
    if (leg->br)
        breaker_record(leg->br, pp_available(resp, success), now);
    if (pp->h && resp->transport_error != TRANSPORT_ERR_CANCELLED)
        health_record(pp->h, leg->name, pp_available(resp, success),
                      resp->duration_ms);
    leg->http_status = resp->status;

    if (success) {
        leg->outcome = PUBLISH_OUTCOME_DELIVERED;
        leg->error[0] = '\0';
        leg->error_type = NULL;
        leg->final = true;
        leg->done_mono_ms = now;
        final = true;
    } else {
        const target_retry *rp = &leg->tgt->retry;
        int64_t delay = -1;
        bool retry = false;

        snprintf(leg->error, sizeof leg->error, "%s",
                 out.error[0] ? out.error : "delivery failed");
        leg->error_type = out.error_type ? out.error_type : "other";
        if (out.verdict == DELIVERY_RETRY &&
            resp->transport_error != TRANSPORT_ERR_CANCELLED &&
            leg->attempts < (rp->max_attempts > 0 ? rp->max_attempts : 1)) {
            delay =
                out.retry_after_ms >= 0
                    ? out.retry_after_ms
                    : backoff_delay_ms(leg->attempts, rp->initial_backoff_ms,
                                       rp->max_backoff_ms, &leg->seed);
            retry = (rp->max_elapsed_ms <= 0 ||
                     now + delay - leg->first_mono_ms <= rp->max_elapsed_ms) &&
                    now + delay < ctx->deadline_ms;
        }
        if (retry && pp_leg_submit(ctx, leg, now + delay)) {
            /* The leg stays in flight. */
        } else {
            /* pp_leg_submit may have set a newer error; otherwise the
             * last attempt's error stands. */
            leg->outcome = PUBLISH_OUTCOME_FAILED;
            leg->final = true;
            leg->done_mono_ms = herald_now_ms();
            final = true;
        }
    }

    if (final) {
        pp_fanout_add(pp, -1);
        pp_leg_report(ctx, leg);
        pthread_mutex_lock(&ctx->lock);
        ctx->active--;
        ctx->n_pending--;
        pthread_mutex_unlock(&ctx->lock);
        pp_start_waiting(ctx);
    }
    /* May complete the fan-out here (the last leg, or a deadline or
     * cancel that closed it while this callback was busy). */
    pp_ctx_leave(ctx);
    pp_ctx_unref(ctx);
}

/* Decides whether leg i is selected; sets its skip reason if not. */
static void pp_select(parallel_publisher *pp, publish_mode mode,
                      const publish_opts *opts, const alert *a, pp_leg *leg)
{
    const target *tgt = leg->tgt;
    uint64_t limit_hits = re2_limit_hits();
    bool matches;

    if (mode == PUBLISH_MODE_MULTIPLE)
        return;
    matches = tgt->enabled && target_matches(tgt, a);
    if (re2_limit_hits() != limit_hits)
        metrics_add(pp->m_matcher_limits,
                    (double)(re2_limit_hits() - limit_hits), tgt->name);
    if (!tgt->enabled) {
        leg->skip_reason = PUBLISH_REASON_DISABLED;
    } else if (!matches) {
        leg->skip_reason = PUBLISH_REASON_FILTERED;
    } else if (mode == PUBLISH_MODE_HEALTHY && pp->h &&
               opts->strategy != PUBLISH_TO_ALL) {
        health_status st = health_get(pp->h, tgt->name);

        /* Unknown counts as healthy: the strategy fails open. */
        if (st == HEALTH_UNHEALTHY)
            leg->skip_reason = PUBLISH_REASON_UNHEALTHY;
        else if (st == HEALTH_DEGRADED &&
                 opts->strategy == PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED)
            leg->skip_reason = PUBLISH_REASON_DEGRADED;
    }
    if (leg->skip_reason != PUBLISH_REASON_NONE) {
        leg->outcome = PUBLISH_OUTCOME_SKIPPED;
        leg->final = true;
    }
}

/* Copies the legs into res and computes the totals and the error. */
static herald_err pp_fill_result(pp_ctx *ctx, publish_result *res,
                                 herald_err stop_err)
{
    size_t i;
    bool health_skip = false;

    res->targets = calloc(ctx->n_legs ? ctx->n_legs : 1, sizeof *res->targets);
    if (!res->targets)
        return HERALD_ERR_NOMEM;
    res->n_targets = ctx->n_legs;
    res->total = ctx->n_legs;
    for (i = 0; i < ctx->n_legs; i++) {
        pp_leg *leg = &ctx->legs[i];
        publish_target_result *tr = &res->targets[i];

        tr->name = strdup(leg->name);
        if (!tr->name)
            return HERALD_ERR_NOMEM;
        tr->type = leg->type;
        tr->outcome = leg->outcome;
        tr->http_status = leg->http_status;
        memcpy(tr->error, leg->error, sizeof tr->error);
        tr->error_type = leg->error_type;
        tr->attempts = leg->attempts;
        tr->skip_reason = leg->skip_reason;
        tr->first_attempt_ms = leg->first_wall_ms;
        tr->last_attempt_ms = leg->last_wall_ms;
        if (leg->attempts > 0 && leg->done_mono_ms >= leg->first_mono_ms)
            tr->duration_ms = (double)(leg->done_mono_ms - leg->first_mono_ms);
        switch (leg->outcome) {
        case PUBLISH_OUTCOME_DELIVERED: res->succeeded++; break;
        case PUBLISH_OUTCOME_FAILED: res->failed++; break;
        case PUBLISH_OUTCOME_SKIPPED:
            res->skipped++;
            if (leg->skip_reason == PUBLISH_REASON_UNHEALTHY ||
                leg->skip_reason == PUBLISH_REASON_DEGRADED ||
                leg->skip_reason == PUBLISH_REASON_CIRCUIT_OPEN)
                health_skip = true;
            break;
        }
    }
    res->partial_success = res->succeeded > 0 && res->failed > 0;
    if (res->succeeded > 0)
        return HERALD_OK;
    if (res->failed == 0)
        return health_skip ? HERALD_ERR_NO_HEALTHY : HERALD_ERR_NO_ENABLED;
    if (stop_err != HERALD_OK)
        return stop_err;
    return HERALD_ERR_ALL_FAILED;
}

/* Final metrics and logs of one call. */
static void pp_report_call(parallel_publisher *pp, const alert *a,
                           const publish_result *res, herald_err err)
{
    const char *result;
    size_t i;
    log_fields f = {NULL, NULL, -1, -1, a ? a->fingerprint : NULL};

    if (res->succeeded > 0 && res->failed == 0)
        result = "success";
    else if (res->succeeded > 0)
        result = "partial_success";
    else
        result = "failure";
    metrics_observe(pp->m_publish_duration, res->duration_ms / 1000.0, result);
    metrics_add(pp->m_publishes, 1, result);
    if (res->partial_success) {
        LOG_WARN(PP_COMPONENT, &f,
                 "partial success: %zu of %zu delivered, %zu failed, %zu "
                 "skipped",
                 res->succeeded, res->total, res->failed, res->skipped);
    } else if (err != HERALD_OK && res->total > 0) {
        if (log_enabled(LOG_LEVEL_ERROR)) {
            for (i = 0; i < res->n_targets; i++) {
                const publish_target_result *tr = &res->targets[i];
                char key[256];

                if (tr->outcome != PUBLISH_OUTCOME_FAILED)
                    continue;
                snprintf(key, sizeof key, "publish:%s:%s", tr->name,
                         tr->error_type ? tr->error_type : "other");
                log_write_limited(
                    LOG_LEVEL_ERROR, PP_COMPONENT,
                    &(log_fields){tr->name, NULL, -1, -1, f.fingerprint}, key,
                    PP_LOG_LIMIT_MS, "delivery failed after %d attempt(s): %s",
                    tr->attempts, tr->error);
            }
        }
        /* Each failed target has its own line above; this summary is
         * one line per interval, with the count of the others. */
        log_write_limited(LOG_LEVEL_ERROR, PP_COMPONENT, &f, "publish:failed",
                          PP_OUTAGE_LOG_MS,
                          "publish failed: %s (%zu failed, %zu skipped of "
                          "%zu)",
                          herald_err2str(err), res->failed, res->skipped,
                          res->total);
    }
}

/*
 * Completes the fan-out: called once, by whoever saw ctx closed with no
 * busy actor (see the top of this file), with no lock held. Legs not
 * final fail, the result is filled, the call is reported and the caller's
 * callback runs; then the completion's reference is released.
 */
static void pp_ctx_complete(pp_ctx *ctx)
{
    parallel_publisher *pp = ctx->pp;
    publish_result *res = ctx->res;
    herald_err err;
    size_t i;

    /* Off the poll list first: after this, nobody reads the cancel flag,
     * which is borrowed only until the callback. Then off the timer: a
     * deadline callback that fired already finds ctx closed and releases
     * its own reference. */
    (void)pp_poll_stop(pp, ctx);
    if (timer_cancel(pp->timer, &ctx->timer))
        pp_ctx_unref(ctx); /* The timer's; the completion's ref remains. */

    /* Legs not final now fail; their late responses are only counted. */
    for (i = 0; i < ctx->n_legs; i++) {
        pp_leg *leg = &ctx->legs[i];

        if (leg->final)
            continue;
        if (ctx->stop_err == HERALD_ERR_CANCELLED)
            pp_leg_fail(leg, "cancelled", "cancelled");
        else
            pp_leg_fail(leg, "deadline", "deadline exceeded");
        if (!leg->started)
            leg->done_mono_ms = leg->first_mono_ms;
        pp_leg_report(ctx, leg);
    }
    err = pp_fill_result(ctx, res, ctx->stop_err);
    res->duration_ms = pp_mono_ms_f() - ctx->t0_ms;
    res->err = err;
    pp_report_call(pp, ctx->a, res, err);
    /* From here on the alert, the targets and res are the caller's. */
    ctx->a = NULL;
    ctx->cb(ctx->opaque, err, res);
    pp_ctx_unref(ctx);
}

/* Closes ctx for stop_err unless it is closed already; completes it when
 * no actor is busy (otherwise the last one to leave does). No lock held. */
static void pp_ctx_close(pp_ctx *ctx, herald_err stop_err)
{
    bool complete;

    pthread_mutex_lock(&ctx->lock);
    if (ctx->closed) {
        pthread_mutex_unlock(&ctx->lock);
        return;
    }
    ctx->closed = true;
    ctx->stop_err = stop_err;
    complete = ctx->busy == 0;
    pthread_mutex_unlock(&ctx->lock);
    if (complete)
        pp_ctx_complete(ctx);
}

/* An actor (the starter, a callback) stops using borrowed data. Closes
 * ctx when no leg is pending and completes it when this was the last busy
 * actor of a closed context. No lock held. */
static void pp_ctx_leave(pp_ctx *ctx)
{
    bool complete;

    pthread_mutex_lock(&ctx->lock);
    ctx->busy--;
    if (!ctx->closed && ctx->n_pending == 0) {
        ctx->closed = true;
        ctx->stop_err = HERALD_OK;
    }
    complete = ctx->closed && ctx->busy == 0;
    pthread_mutex_unlock(&ctx->lock);
    if (complete)
        pp_ctx_complete(ctx);
}

herald_err publish_start(parallel_publisher *pp, publish_mode mode,
                         const alert *a, target *const *targets, size_t n,
                         const publish_opts *opts_in, publish_result *res,
                         publish_done_cb cb, void *opaque)
{
    publish_opts def;
    const publish_opts *opts = opts_in;
    pp_ctx *ctx = NULL;
    double t0 = pp_mono_ms_f();
    herald_err err = HERALD_OK;
    char errstr[160];
    size_t i;

    if (!res)
        return HERALD_ERR_INVALID;
    publish_result_free(res);
    if (!opts) {
        publish_opts_default(&def);
        opts = &def;
    }
    if (!pp || !a || !cb || (n > 0 && !targets) ||
        (mode != PUBLISH_MODE_MULTIPLE && mode != PUBLISH_MODE_ALL &&
         mode != PUBLISH_MODE_HEALTHY) ||
        publish_opts_validate(opts, errstr, sizeof errstr) != HERALD_OK)
        goto invalid;
    for (i = 0; i < n; i++) {
        if (!targets[i] || !targets[i]->name)
            goto invalid;
    }

    ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        goto nomem;
    pthread_mutex_init(&ctx->lock, NULL);
    ctx->refs = 1; /* The completion's. */
    ctx->busy = 1; /* This starter, until pp_ctx_leave below. */
    ctx->pp = pp;
    ctx->a = a;
    ctx->deadline_ms = herald_now_ms() + opts->deadline_ms;
    ctx->max_active = opts->max_concurrent_targets;
    ctx->respect_breakers = opts->respect_breakers;
    ctx->cancel = opts->cancel;
    ctx->t0_ms = t0;
    ctx->res = res;
    ctx->cb = cb;
    ctx->opaque = opaque;
    ctx->n_legs = n;
    ctx->legs = calloc(n ? n : 1, sizeof *ctx->legs);
    ctx->order = calloc(n ? n : 1, sizeof *ctx->order);
    if (!ctx->legs || !ctx->order)
        goto nomem;
    for (i = 0; i < n; i++) {
        pp_leg *leg = &ctx->legs[i];

        leg->ctx = ctx;
        leg->tgt = targets[i];
        leg->type = targets[i]->plugin ? targets[i]->plugin->name : "unknown";
        leg->name = strdup(targets[i]->name);
        if (!leg->name)
            goto nomem;
        leg->seed = pp_mix(atomic_fetch_add(&pp->seed, 1));
        pp_select(pp, mode, opts, a, leg);
        if (leg->final) {
            pp_leg_report(ctx, leg);
            continue;
        }
        if (opts->respect_breakers) {
            leg->br = parallel_breaker_for(pp, leg->tgt);
            if (!leg->br)
                goto nomem;
        }
        ctx->order[ctx->n_order++] = i;
    }
    ctx->n_pending = ctx->n_order;

    if (opts->cancel && atomic_load(opts->cancel)) {
        /* Cancelled before the call: nothing is sent. The completion runs
         * when this starter leaves, below. */
        pp_ctx_close(ctx, HERALD_ERR_CANCELLED);
    } else if (ctx->n_order > 0) {
        /* Armed before the first leg starts, so the deadline holds while
         * the legs are being started. */
        /* On the poll list and armed before the first leg starts, so the
         * cancel flag and the deadline hold while the legs are started. */
        if (ctx->cancel && pp_poll_start(pp, ctx) != HERALD_OK)
            goto nomem; /* Nothing knows ctx yet. */
        ctx->refs++;    /* The deadline timer's. */
        timer_entry_init(&ctx->timer, pp);
        err = timer_add(pp->timer, &ctx->timer, ctx->deadline_ms,
                        pp_ctx_deadline, ctx);
        if (err != HERALD_OK) {
            pthread_mutex_lock(&ctx->lock);
            ctx->refs--;
            pthread_mutex_unlock(&ctx->lock);
            /* Off the poll list: nothing knows ctx. Already taken by the
             * poll: it closes ctx as cancelled; this starter leaves. */
            if (!ctx->cancel || pp_poll_stop(pp, ctx))
                goto nomem;
        } else {
            pp_start_waiting(ctx);
        }
    }
    /* Completes at once when nothing is pending (every target skipped,
     * cancelled, or every leg already ended). */
    pp_ctx_leave(ctx);
    return HERALD_OK;

invalid:
    /* As the synchronous call: no targets, no metrics, cb not called. */
    res->duration_ms = pp_mono_ms_f() - t0;
    res->err = HERALD_ERR_INVALID;
    return HERALD_ERR_INVALID;

nomem:
    /* Nothing was submitted and no timer is armed: only this thread knows
     * it. Skipped legs were reported; the call is reported as failed. */
    pp_ctx_free(ctx);
    res->duration_ms = pp_mono_ms_f() - t0;
    res->err = HERALD_ERR_NOMEM;
    pp_report_call(pp, a, res, HERALD_ERR_NOMEM);
    cb(opaque, HERALD_ERR_NOMEM, res);
    return HERALD_OK;
}

/* ------------------------------------------------------------------ */
/* Synchronous entry points                                             */
/* ------------------------------------------------------------------ */

/* A synchronous caller waiting for its fan-out's callback. */
typedef struct pp_waiter {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    herald_err err;
} pp_waiter;

static void pp_waiter_done(void *opaque, herald_err err, publish_result *res)
{
    pp_waiter *w = opaque;

    (void)res;
    pthread_mutex_lock(&w->lock);
    w->err = err;
    w->done = true;
    /* Signalled under the lock, against STYLE.md 13's habit: the waiter
     * frees w (its stack) as soon as it sees done, so w must not be
     * touched after the unlock. */
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
}

static herald_err pp_publish_sync(parallel_publisher *pp, publish_mode mode,
                                  const alert *a, target *const *targets,
                                  size_t n, const publish_opts *opts,
                                  publish_result *res)
{
    pp_waiter w;
    herald_err err;

    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    w.done = false;
    w.err = HERALD_OK;
    err = publish_start(pp, mode, a, targets, n, opts, res, pp_waiter_done, &w);
    if (err == HERALD_OK) {
        pthread_mutex_lock(&w.lock);
        while (!w.done)
            pthread_cond_wait(&w.cond, &w.lock);
        err = w.err;
        pthread_mutex_unlock(&w.lock);
    }
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
    return err;
}

herald_err publish_to_multiple(parallel_publisher *pp, const alert *a,
                               target *const *targets, size_t n,
                               const publish_opts *opts, publish_result *res)
{
    return pp_publish_sync(pp, PUBLISH_MODE_MULTIPLE, a, targets, n, opts, res);
}

herald_err publish_to_all(parallel_publisher *pp, const alert *a,
                          target *const *targets, size_t n,
                          const publish_opts *opts, publish_result *res)
{
    return pp_publish_sync(pp, PUBLISH_MODE_ALL, a, targets, n, opts, res);
}

herald_err publish_to_healthy(parallel_publisher *pp, const alert *a,
                              target *const *targets, size_t n,
                              const publish_opts *opts, publish_result *res)
{
    return pp_publish_sync(pp, PUBLISH_MODE_HEALTHY, a, targets, n, opts, res);
}
