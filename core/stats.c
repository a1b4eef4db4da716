/*
 * stats.c: delivery outcome and latency aggregator for GET /stats (see
 * stats.h).
 *
 * Data flow: publisher threads call stats_record() per finished leg and
 * stats_record_publish() per finished publish; the API thread calls
 * stats_to_json(). Each target owns a fixed log-scale duration histogram:
 * bucket 0 holds durations up to HIST_MIN_MS, bucket i >= 1 holds
 * [HIST_MIN_MS * 2^((i-1)/16), HIST_MIN_MS * 2^(i/16)). Sixteen buckets per
 * doubling bound the relative error of a quantile by 2^(1/32) - 1, about
 * 2.2 %, which is plenty for p50/p99 on a dashboard while using constant
 * memory per target whatever the traffic (a reservoir would need sampling
 * and would lose the tail).
 *
 * Threads: any thread; one mutex guards everything. Targets are kept in an
 * array sorted by name (binary search) so the JSON lists them in order. The
 * annotate callback of stats_to_json() runs after the lock is released.
 */
#include "core/stats.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Smallest resolved duration: 10 microseconds, below any network call. */
#define HIST_MIN_MS 0.01
/* Buckets per doubling of the duration. */
#define HIST_PER_DOUBLING 16
/* 1 + 16 * log2(1 hour / 0.01 ms) rounded up: the last bucket ends at about
 * 3.6e6 ms, beyond any publish deadline. */
#define HIST_BUCKETS 456

typedef struct stats_hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    double sum_ms;
    double min_ms;
    double max_ms;
} stats_hist;

typedef struct stats_target {
    char *name;
    uint64_t delivered;
    uint64_t failed;
    stats_hist hist;
} stats_target;

struct stats {
    pthread_mutex_t lock;
    stats_target **targets; /* Sorted by name. */
    size_t n_targets;
    size_t cap_targets;
    uint64_t delivered; /* Totals over every leg, tracked target or not. */
    uint64_t failed;
    uint64_t publishes[3]; /* Indexed by stats_publish_result. */
    stats_hist publish_hist;
};

stats *stats_new(void)
{
    stats *st = calloc(1, sizeof(*st));

    if (!st)
        return NULL;
    pthread_mutex_init(&st->lock, NULL);
    return st;
}

void stats_destroy(stats *st)
{
    size_t i;

    if (!st)
        return;
    for (i = 0; i < st->n_targets; i++) {
        free(st->targets[i]->name);
        free(st->targets[i]);
    }
    free(st->targets);
    pthread_mutex_destroy(&st->lock);
    free(st);
}

static void hist_add(stats_hist *h, double ms)
{
    size_t i = 0;

    if (!(ms > 0)) /* Also catches NaN. */
        ms = 0;
    if (ms > HIST_MIN_MS) {
        double idx = 1 + floor(HIST_PER_DOUBLING * log2(ms / HIST_MIN_MS));
        i = idx >= HIST_BUCKETS - 1 ? HIST_BUCKETS - 1 : (size_t)idx;
    }
    h->counts[i]++;
    if (h->n == 0 || ms < h->min_ms)
        h->min_ms = ms;
    if (h->n == 0 || ms > h->max_ms)
        h->max_ms = ms;
    h->n++;
    h->sum_ms += ms;
}

/* The q-quantile of h in ms, or -1 when h is empty. */
static double hist_quantile(const stats_hist *h, double q)
{
    uint64_t rank;
    uint64_t cum = 0;
    double v;
    size_t i;

    if (h->n == 0)
        return -1;
    if (q <= 0)
        return h->min_ms;
    if (q > 1)
        q = 1;
    /* The rank-th smallest sample (1-based), nearest-rank definition. */
    rank = (uint64_t)ceil(q * (double)h->n);
    if (rank <= 1)
        return h->min_ms;
    if (rank >= h->n)
        return h->max_ms; /* Exact extremes; also covers the open last
                           * bucket. */
    for (i = 0; i < HIST_BUCKETS; i++) {
        cum += h->counts[i];
        if (cum >= rank)
            break;
    }
    if (i == 0)
        v = h->min_ms;
    else if (i == HIST_BUCKETS - 1)
        v = h->max_ms;
    else
        v = HIST_MIN_MS * exp2(((double)i - 0.5) / HIST_PER_DOUBLING);
    if (v < h->min_ms)
        v = h->min_ms;
    if (v > h->max_ms)
        v = h->max_ms;
    return v;
}

/* Finds target; with create, adds it when absent and below the cap.
 * Caller holds st->lock. */
static stats_target *target_find(stats *st, const char *name, bool create)
{
    size_t lo = 0;
    size_t hi = st->n_targets;
    stats_target *t;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(st->targets[mid]->name, name);
        if (c == 0)
            return st->targets[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (!create || st->n_targets >= STATS_MAX_TARGETS)
        return NULL;
    if (st->n_targets == st->cap_targets) {
        size_t ncap = st->cap_targets ? st->cap_targets * 2 : 16;
        stats_target **p = realloc(st->targets, ncap * sizeof(*p));
        if (!p)
            return NULL;
        st->targets = p;
        st->cap_targets = ncap;
    }
    t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->name = strdup(name);
    if (!t->name) {
        free(t);
        return NULL;
    }
    memmove(&st->targets[lo + 1], &st->targets[lo],
            (st->n_targets - lo) * sizeof(*st->targets));
    st->targets[lo] = t;
    st->n_targets++;
    return t;
}

void stats_record(stats *st, const char *target, bool delivered,
                  double duration_ms)
{
    stats_target *t;

    if (!st || !target)
        return;
    pthread_mutex_lock(&st->lock);
    if (delivered)
        st->delivered++;
    else
        st->failed++;
    t = target_find(st, target, true);
    if (t) {
        if (delivered)
            t->delivered++;
        else
            t->failed++;
        hist_add(&t->hist, duration_ms);
    }
    pthread_mutex_unlock(&st->lock);
}

void stats_record_publish(stats *st, stats_publish_result result,
                          double duration_ms)
{
    if (!st || (int)result < 0 || result > STATS_PUBLISH_FAILURE)
        return;
    pthread_mutex_lock(&st->lock);
    st->publishes[result]++;
    hist_add(&st->publish_hist, duration_ms);
    pthread_mutex_unlock(&st->lock);
}

double stats_target_quantile(stats *st, const char *target, double q)
{
    stats_target *t;
    double v = -1;

    if (!st || !target)
        return -1;
    pthread_mutex_lock(&st->lock);
    t = target_find(st, target, false);
    if (t)
        v = hist_quantile(&t->hist, q);
    pthread_mutex_unlock(&st->lock);
    return v;
}

/* Adds key: val to o, taking ownership of val (NULL adds null). Returns -1
 * on OOM, val freed. */
static int json_add(json_object *o, const char *key, json_object *val)
{
    if (json_object_object_add(o, key, val)) {
        json_object_put(val);
        return -1;
    }
    return 0;
}

/* Adds key: number, or null when v < 0 (no sample). Returns -1 on OOM. */
static int json_add_ms(json_object *o, const char *key, double v)
{
    json_object *num = NULL;

    if (v >= 0) {
        /* Microsecond resolution is all the histogram can justify. */
        num = json_object_new_double(round(v * 1000) / 1000);
        if (!num)
            return -1;
    }
    return json_add(o, key, num);
}

static int json_add_u64(json_object *o, const char *key, uint64_t v)
{
    json_object *num = json_object_new_uint64(v);

    return num ? json_add(o, key, num) : -1;
}

static json_object *hist_to_json(const stats_hist *h)
{
    json_object *o = json_object_new_object();

    if (!o)
        return NULL;
    if (json_add_ms(o, "p50", hist_quantile(h, 0.5)) ||
        json_add_ms(o, "p99", hist_quantile(h, 0.99)) ||
        json_add_ms(o, "max", h->n ? h->max_ms : -1) ||
        json_add_ms(o, "mean", h->n ? h->sum_ms / (double)h->n : -1)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

/* Adds "success_rate": delivered / (delivered + failed), or null. */
static int json_add_rate(json_object *o, uint64_t delivered, uint64_t failed)
{
    json_object *num = NULL;

    if (delivered + failed > 0) {
        num = json_object_new_double((double)delivered /
                                     (double)(delivered + failed));
        if (!num)
            return -1;
    }
    if (json_object_object_add(o, "success_rate", num)) {
        json_object_put(num);
        return -1;
    }
    return 0;
}

/* Builds the JSON of everything. Caller holds st->lock. */
static json_object *stats_json_locked(const stats *st)
{
    json_object *root = json_object_new_object();
    json_object *pub = json_object_new_object();
    json_object *del = json_object_new_object();
    json_object *tgts = json_object_new_object();
    json_object *h = NULL;
    uint64_t n_pub = st->publishes[0] + st->publishes[1] + st->publishes[2];
    size_t i;

    if (!root || !pub || !del || !tgts)
        goto fail;
    if (json_add_u64(pub, "total", n_pub) ||
        json_add_u64(pub, "success", st->publishes[STATS_PUBLISH_SUCCESS]) ||
        json_add_u64(pub, "partial_success",
                     st->publishes[STATS_PUBLISH_PARTIAL_SUCCESS]) ||
        json_add_u64(pub, "failure", st->publishes[STATS_PUBLISH_FAILURE]))
        goto fail;
    h = hist_to_json(&st->publish_hist);
    if (!h || json_object_object_add(pub, "duration_ms", h))
        goto fail;
    h = NULL;
    if (json_add_u64(del, "total", st->delivered + st->failed) ||
        json_add_u64(del, "delivered", st->delivered) ||
        json_add_u64(del, "failed", st->failed) ||
        json_add_rate(del, st->delivered, st->failed))
        goto fail;
    for (i = 0; i < st->n_targets; i++) {
        const stats_target *t = st->targets[i];
        json_object *to = json_object_new_object();
        if (!to)
            goto fail;
        if (json_object_object_add(tgts, t->name, to))
            goto fail_to;
        if (json_add_u64(to, "deliveries", t->delivered + t->failed) ||
            json_add_u64(to, "delivered", t->delivered) ||
            json_add_u64(to, "failed", t->failed) ||
            json_add_rate(to, t->delivered, t->failed))
            goto fail;
        h = hist_to_json(&t->hist);
        if (!h || json_object_object_add(to, "duration_ms", h))
            goto fail;
        h = NULL;
        continue;
    fail_to:
        json_object_put(to);
        goto fail;
    }
    if (json_object_object_add(root, "publishes", pub))
        goto fail;
    pub = NULL;
    if (json_object_object_add(root, "deliveries", del))
        goto fail;
    del = NULL;
    if (json_object_object_add(root, "targets", tgts))
        goto fail;
    return root;
fail:
    json_object_put(h);
    json_object_put(pub);
    json_object_put(del);
    json_object_put(tgts);
    json_object_put(root);
    return NULL;
}

json_object *stats_to_json(stats *st, stats_annotate_fn annotate, void *opaque)
{
    json_object *root;
    json_object *tgts;

    if (!st)
        return NULL;
    pthread_mutex_lock(&st->lock);
    root = stats_json_locked(st);
    pthread_mutex_unlock(&st->lock);
    if (!root || !annotate)
        return root;
    if (json_object_object_get_ex(root, "targets", &tgts)) {
        json_object_object_foreach(tgts, name, obj) annotate(opaque, name, obj);
    }
    return root;
}
