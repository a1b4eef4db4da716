/*
 * breaker.c: the circuit breaker of one target (see breaker.h).
 *
 * Data flow: the publisher asks breaker_allow() before it sends a request
 * and reports the outcome with breaker_record(). The breaker counts
 * consecutive failures and, when failure_rate is set, successes and
 * failures in a sliding window of BREAKER_BUCKETS time buckets. It moves
 * closed -> open -> half-open -> closed (or back to open) as breaker.h
 * describes; time is passed in by the caller (monotonic ms), so tests drive
 * the clock without sleeping.
 *
 * The rate rule trips when failures / results in the window reaches
 * failure_rate (a fraction in (0, 1]; 1.0 means every result failed), with
 * at least min_requests results (default 10) in the window. Zero or
 * negative settings are replaced by the defaults of breaker.h.
 *
 * Threads: any thread calls any function. One mutex per breaker guards the
 * state. The metrics registry is updated while that mutex is held, so the
 * state gauge can never be left behind by two racing transitions (the
 * registry's own lock is a leaf: it calls nothing back). Log lines are
 * written only after the mutex is released.
 */
#include "publishers/breaker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

/*
 * The rate window is cut into this many buckets; a bucket expires as a
 * whole, so the window slides in steps of window_ms / BREAKER_BUCKETS
 * (6 s for the default 60 s window), which is precise enough for a rate.
 */
#define BREAKER_BUCKETS 10

/* Defaults of breaker.h and target.h. */
#define BREAKER_DEF_FAILURES 5
#define BREAKER_DEF_WINDOW_MS 60000
#define BREAKER_DEF_MIN_REQUESTS 10
#define BREAKER_DEF_OPEN_TIMEOUT_MS 30000
#define BREAKER_DEF_PROBES 1
#define BREAKER_DEF_SUCCESSES 2

/* One call changes the state at most twice (open -> half-open -> open). */
#define BREAKER_MAX_CHANGES 2

/* Counts of one time bucket of the rate window. */
struct breaker_bucket {
    int64_t start_ms; /* Start of the bucket's time slot; -1 when unused. */
    uint32_t successes;
    uint32_t failures;
};

struct breaker {
    pthread_mutex_t lock;
    char *name;
    target_breaker cfg;
    breaker_state state;
    int consecutive_failures; /* In closed. */
    int half_open_in_flight;  /* Probe slots taken in half-open. */
    int half_open_successes;  /* Successes since entering half-open. */
    int64_t opened_at_ms;     /* When the breaker last opened. */
    uint64_t transitions;
    struct breaker_bucket buckets[BREAKER_BUCKETS];
    metric *m_state;       /* Gauge herald_breaker_state{target}. */
    metric *m_transitions; /* Counter herald_breaker_transitions_total. */
};

/* A state change noted under the lock, logged after it is released. */
struct breaker_change {
    breaker_state from;
    breaker_state to;
};

struct breaker_changes {
    struct breaker_change items[BREAKER_MAX_CHANGES];
    int n;
};

const char *breaker_state_name(breaker_state state)
{
    switch (state) {
    case BREAKER_CLOSED: return "closed";
    case BREAKER_OPEN: return "open";
    case BREAKER_HALF_OPEN: return "half_open";
    }
    return "unknown";
}

void breaker_config_default(target_breaker *cfg)
{
    if (cfg == NULL)
        return;
    cfg->failure_threshold = BREAKER_DEF_FAILURES;
    cfg->failure_rate = 0.0;
    cfg->window_ms = BREAKER_DEF_WINDOW_MS;
    cfg->min_requests = BREAKER_DEF_MIN_REQUESTS;
    cfg->open_timeout_ms = BREAKER_DEF_OPEN_TIMEOUT_MS;
    cfg->half_open_probes = BREAKER_DEF_PROBES;
    cfg->success_threshold = BREAKER_DEF_SUCCESSES;
}

/*
 * Copies cfg, replacing values that cannot work (zero or negative counts
 * and times, a rate outside [0, 1]) by the defaults, so that a breaker is
 * always well defined even from a zeroed target_breaker.
 */
static void breaker_config_sanitise(target_breaker *out,
                                    const target_breaker *cfg)
{
    target_breaker def;

    breaker_config_default(&def);
    if (cfg == NULL) {
        *out = def;
        return;
    }
    *out = *cfg;
    if (out->failure_threshold <= 0)
        out->failure_threshold = def.failure_threshold;
    if (!(out->failure_rate >= 0.0 && out->failure_rate <= 1.0))
        out->failure_rate = 0.0;
    if (out->window_ms <= 0)
        out->window_ms = def.window_ms;
    if (out->min_requests <= 0)
        out->min_requests = def.min_requests;
    if (out->open_timeout_ms <= 0)
        out->open_timeout_ms = def.open_timeout_ms;
    if (out->half_open_probes <= 0)
        out->half_open_probes = def.half_open_probes;
    if (out->success_threshold <= 0)
        out->success_threshold = def.success_threshold;
}

breaker *breaker_new(const char *name, const target_breaker *cfg)
{
    breaker *b;
    int i;

    if (name == NULL)
        return NULL;
    b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->name = strdup(name);
    if (b->name == NULL || pthread_mutex_init(&b->lock, NULL) != 0)
        goto fail;
    breaker_config_sanitise(&b->cfg, cfg);
    b->state = BREAKER_CLOSED;
    for (i = 0; i < BREAKER_BUCKETS; i++)
        b->buckets[i].start_ms = -1;
    b->m_state = metrics_family(
        METRIC_GAUGE, "herald_breaker_state",
        "Circuit breaker state per target (0 closed, 1 open, 2 half_open).",
        "target", NULL, 0);
    b->m_transitions =
        metrics_family(METRIC_COUNTER, "herald_breaker_transitions_total",
                       "Circuit breaker state transitions per target.",
                       "target,from,to", NULL, 0);
    if (b->m_state != NULL)
        metrics_set(b->m_state, (double)BREAKER_CLOSED, b->name);
    return b;
fail:
    /* The mutex is the last thing set up, so it is never destroyed here. */
    free(b->name);
    free(b);
    return NULL;
}

void breaker_destroy(breaker *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->lock);
    free(b->name);
    free(b);
}

/* Width of one bucket of the rate window in ms (at least 1). */
static int64_t breaker_bucket_ms(const breaker *b)
{
    int64_t w = b->cfg.window_ms / BREAKER_BUCKETS;

    return w > 0 ? w : 1;
}

/* Forgets every result of the rate window. Caller holds b->lock. */
static void breaker_window_reset(breaker *b)
{
    int i;

    for (i = 0; i < BREAKER_BUCKETS; i++) {
        b->buckets[i].start_ms = -1;
        b->buckets[i].successes = 0;
        b->buckets[i].failures = 0;
    }
}

/* Adds one result to the bucket of now_ms. Caller holds b->lock. */
static void breaker_window_add(breaker *b, bool success, int64_t now_ms)
{
    int64_t width = breaker_bucket_ms(b);
    int64_t slot = now_ms >= 0 ? now_ms / width : 0;
    struct breaker_bucket *bk = &b->buckets[slot % BREAKER_BUCKETS];

    if (bk->start_ms != slot * width) {
        bk->start_ms = slot * width;
        bk->successes = 0;
        bk->failures = 0;
    }
    if (success)
        bk->successes++;
    else
        bk->failures++;
}

/*
 * True when the failure rate over the window reached cfg.failure_rate with
 * at least cfg.min_requests results in it. Caller holds b->lock.
 */
static bool breaker_window_tripped(const breaker *b, int64_t now_ms)
{
    int64_t width = breaker_bucket_ms(b);
    int64_t oldest = now_ms - (int64_t)BREAKER_BUCKETS * width;
    uint64_t total = 0;
    uint64_t failures = 0;
    int i;

    if (b->cfg.failure_rate <= 0.0)
        return false;
    for (i = 0; i < BREAKER_BUCKETS; i++) {
        const struct breaker_bucket *bk = &b->buckets[i];

        if (bk->start_ms < 0 || bk->start_ms <= oldest)
            continue;
        total += bk->successes + bk->failures;
        failures += bk->failures;
    }
    if (total == 0 || total < (uint64_t)b->cfg.min_requests)
        return false;
    return (double)failures / (double)total >= b->cfg.failure_rate;
}

/*
 * Moves to state to, updating counters and metrics and noting the change
 * for logging. Caller holds b->lock.
 */
static void breaker_move(breaker *b, breaker_state to, int64_t now_ms,
                         struct breaker_changes *changes)
{
    breaker_state from = b->state;

    if (from == to)
        return;
    b->state = to;
    b->transitions++;
    b->half_open_in_flight = 0;
    b->half_open_successes = 0;
    b->consecutive_failures = 0;
    if (to == BREAKER_OPEN) {
        b->opened_at_ms = now_ms;
        breaker_window_reset(b);
    } else if (to == BREAKER_CLOSED) {
        breaker_window_reset(b);
    }
    if (b->m_state != NULL)
        metrics_set(b->m_state, (double)to, b->name);
    if (b->m_transitions != NULL)
        metrics_add(b->m_transitions, 1.0, b->name, breaker_state_name(from),
                    breaker_state_name(to));
    if (changes->n < BREAKER_MAX_CHANGES) {
        changes->items[changes->n].from = from;
        changes->items[changes->n].to = to;
        changes->n++;
    }
}

/* Applies the open timeout at now_ms. Caller holds b->lock. */
static void breaker_tick(breaker *b, int64_t now_ms,
                         struct breaker_changes *changes)
{
    if (b->state == BREAKER_OPEN &&
        now_ms - b->opened_at_ms >= (int64_t)b->cfg.open_timeout_ms)
        breaker_move(b, BREAKER_HALF_OPEN, now_ms, changes);
}

/*
 * Logs the noted changes: opening is a warning (the target is being cut
 * off), the others are informational. Called without the lock.
 */
static void breaker_log_changes(const breaker *b,
                                const struct breaker_changes *changes)
{
    int i;

    for (i = 0; i < changes->n; i++) {
        const struct breaker_change *c = &changes->items[i];

        if (c->to == BREAKER_OPEN)
            LOG_WARN("breaker", LOG_TARGET(b->name), "circuit breaker %s -> %s",
                     breaker_state_name(c->from), breaker_state_name(c->to));
        else
            LOG_INFO("breaker", LOG_TARGET(b->name), "circuit breaker %s -> %s",
                     breaker_state_name(c->from), breaker_state_name(c->to));
    }
}

bool breaker_allow(breaker *b, int64_t now_ms)
{
    struct breaker_changes changes = {.n = 0};
    bool allowed = false;

    if (b == NULL)
        return true;
    pthread_mutex_lock(&b->lock);
    breaker_tick(b, now_ms, &changes);
    switch (b->state) {
    case BREAKER_CLOSED: allowed = true; break;
    case BREAKER_OPEN: allowed = false; break;
    case BREAKER_HALF_OPEN:
        if (b->half_open_in_flight < b->cfg.half_open_probes) {
            b->half_open_in_flight++;
            allowed = true;
        }
        break;
    }
    pthread_mutex_unlock(&b->lock);
    breaker_log_changes(b, &changes);
    return allowed;
}

/*
 * Records one outcome. In open, results are those of requests allowed
 * before the breaker opened; they change nothing (the open timeout alone
 * decides when to probe again). In half-open, a result gives back a probe
 * slot; a result of a request allowed before the breaker opened cannot be
 * told apart from a probe's and counts as one.
 */
void breaker_record(breaker *b, bool success, int64_t now_ms)
{
    struct breaker_changes changes = {.n = 0};

    if (b == NULL)
        return;
    pthread_mutex_lock(&b->lock);
    breaker_tick(b, now_ms, &changes);
    switch (b->state) {
    case BREAKER_CLOSED:
        breaker_window_add(b, success, now_ms);
        if (success) {
            b->consecutive_failures = 0;
        } else {
            b->consecutive_failures++;
        }
        if (b->consecutive_failures >= b->cfg.failure_threshold ||
            (!success && breaker_window_tripped(b, now_ms)))
            breaker_move(b, BREAKER_OPEN, now_ms, &changes);
        break;
    case BREAKER_OPEN: break;
    case BREAKER_HALF_OPEN:
        if (b->half_open_in_flight > 0)
            b->half_open_in_flight--;
        if (!success) {
            breaker_move(b, BREAKER_OPEN, now_ms, &changes);
        } else {
            b->half_open_successes++;
            if (b->half_open_successes >= b->cfg.success_threshold)
                breaker_move(b, BREAKER_CLOSED, now_ms, &changes);
        }
        break;
    }
    pthread_mutex_unlock(&b->lock);
    breaker_log_changes(b, &changes);
}

breaker_state breaker_get_state(breaker *b, int64_t now_ms)
{
    struct breaker_changes changes = {.n = 0};
    breaker_state state;

    if (b == NULL)
        return BREAKER_CLOSED;
    pthread_mutex_lock(&b->lock);
    breaker_tick(b, now_ms, &changes);
    state = b->state;
    pthread_mutex_unlock(&b->lock);
    breaker_log_changes(b, &changes);
    return state;
}

uint64_t breaker_transitions(breaker *b)
{
    uint64_t n;

    if (b == NULL)
        return 0;
    pthread_mutex_lock(&b->lock);
    n = b->transitions;
    pthread_mutex_unlock(&b->lock);
    return n;
}
