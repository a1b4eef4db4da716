/*
 * metrics.c: the process-wide Prometheus registry (see metrics.h).
 *
 * Data flow: modules register families once at start-up with
 * metrics_family() and keep the returned handle; hot paths call
 * metrics_add/set/observe() with label values; the API thread calls
 * metrics_render() for GET /metrics, which writes the text exposition format
 * 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Storage: the registry is an array of families sorted by name; each family
 * holds an array of series sorted by label values (compared label by label
 * with strcmp), so a lookup is a binary search and the output order is
 * deterministic: families by name, series by label values. A histogram series
 * stores per-bucket (non-cumulative) counts; render makes them cumulative and
 * adds the +Inf bucket, _sum and _count.
 *
 * Threads: any thread. Locks: g_lock guards the family array (registration,
 * render, shutdown); each family has its own mutex guarding its series, so
 * updates of different families never contend. Lock order: g_lock, then a
 * family lock. Nothing is logged and no callback runs under a lock.
 *
 * Behaviour beyond metrics.h: metrics_add() on a gauge adds v of either sign
 * (in-flight and active-worker gauges); metrics_add() with a negative or NaN
 * value on a counter is ignored; an update whose call does not match the
 * family's type is ignored; families with labels and no series yet are not
 * rendered (as client_golang does), and a family without labels gets its one
 * series (value 0) at registration. Invalid metric or label names, and
 * re-registering a name with another type or other label names, return NULL.
 */
#include "core/metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One time series: label values plus its value(s). */
typedef struct metric_series {
    char *values[METRICS_MAX_LABELS]; /* Owned label values. */
    double value;                     /* Counter or gauge value. */
    uint64_t *counts; /* Histogram: per-bucket counts, n_buckets + 1 (+Inf). */
    double sum;       /* Histogram: sum of observations. */
    uint64_t count;   /* Histogram: number of observations. */
} metric_series;

struct metric {
    metric_type type;
    char *name;
    char *help;
    char *label_names[METRICS_MAX_LABELS];
    size_t n_labels;
    double *buckets; /* Histogram upper bounds, strictly increasing. */
    size_t n_buckets;
    pthread_mutex_t lock; /* Guards series, n_series, series_cap. */
    metric_series **series;
    size_t n_series;
    size_t series_cap;
};

static const double default_buckets[] = {.005, .01, .025, .05, .1, .25,
                                         .5,   1,   2.5,  5,   10, 30};

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static metric **g_families; /* Sorted by name; guarded by g_lock. */
static size_t g_n_families;
static size_t g_cap_families;

static bool name_is_valid(const char *s, bool allow_colon)
{
    size_t i;

    if (!s || !*s)
        return false;
    for (i = 0; s[i]; i++) {
        char c = s[i];
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                     c == '_' || (allow_colon && c == ':');
        if (!alpha && !(i > 0 && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

static void series_free(metric_series *s)
{
    size_t i;

    if (!s)
        return;
    for (i = 0; i < METRICS_MAX_LABELS; i++)
        free(s->values[i]);
    free(s->counts);
    free(s);
}

static void family_free(metric *m)
{
    size_t i;

    if (!m)
        return;
    for (i = 0; i < m->n_series; i++)
        series_free(m->series[i]);
    free(m->series);
    for (i = 0; i < METRICS_MAX_LABELS; i++)
        free(m->label_names[i]);
    free(m->buckets);
    free(m->help);
    free(m->name);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

/*
 * Splits "a,b" into m->label_names. Returns false on an invalid name, too
 * many labels, a reserved name ("le" on histograms, "__" prefix) or OOM.
 */
static bool family_set_labels(metric *m, const char *label_names)
{
    const char *p = label_names ? label_names : "";

    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char *name;

        if (m->n_labels == METRICS_MAX_LABELS)
            return false;
        name = strndup(p, len);
        if (!name)
            return false;
        m->label_names[m->n_labels++] = name;
        if (!name_is_valid(name, false) || strncmp(name, "__", 2) == 0 ||
            (m->type == METRIC_HISTOGRAM && strcmp(name, "le") == 0))
            return false;
        if (!end)
            break;
        p = end + 1;
        if (!*p)
            return false; /* A trailing comma names an empty label. */
    }
    return true;
}

static bool family_set_buckets(metric *m, const double *buckets, size_t n)
{
    size_t i;

    if (!buckets) {
        buckets = default_buckets;
        n = sizeof(default_buckets) / sizeof(default_buckets[0]);
    }
    /* The +Inf bucket is always rendered; drop an explicit one. */
    if (n > 0 && isinf(buckets[n - 1]) && buckets[n - 1] > 0)
        n--;
    for (i = 0; i < n; i++) {
        if (!isfinite(buckets[i]) || (i > 0 && buckets[i] <= buckets[i - 1]))
            return false;
    }
    m->buckets = malloc((n ? n : 1) * sizeof(double));
    if (!m->buckets)
        return false;
    if (n)
        memcpy(m->buckets, buckets, n * sizeof(double));
    m->n_buckets = n;
    return true;
}

/* Compares a series' label values with vals (n of them). */
static int series_cmp(const metric_series *s, const char *const *vals, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        int c = strcmp(s->values[i], vals[i]);
        if (c)
            return c;
    }
    return 0;
}

/*
 * Finds or creates the series with label values vals. Caller holds m->lock.
 * Returns NULL when out of memory.
 */
static metric_series *family_series_get(metric *m, const char *const *vals)
{
    size_t lo = 0;
    size_t hi = m->n_series;
    metric_series *s;
    size_t i;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = series_cmp(m->series[mid], vals, m->n_labels);
        if (c == 0)
            return m->series[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (m->n_series == m->series_cap) {
        size_t ncap = m->series_cap ? m->series_cap * 2 : 8;
        metric_series **p = realloc(m->series, ncap * sizeof(*p));
        if (!p)
            return NULL;
        m->series = p;
        m->series_cap = ncap;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    for (i = 0; i < m->n_labels; i++) {
        s->values[i] = strdup(vals[i]);
        if (!s->values[i])
            goto fail;
    }
    if (m->type == METRIC_HISTOGRAM) {
        s->counts = calloc(m->n_buckets + 1, sizeof(uint64_t));
        if (!s->counts)
            goto fail;
    }
    memmove(&m->series[lo + 1], &m->series[lo],
            (m->n_series - lo) * sizeof(*m->series));
    m->series[lo] = s;
    m->n_series++;
    return s;
fail:
    series_free(s);
    return NULL;
}

static bool family_same_labels(const metric *m, const metric *other)
{
    size_t i;

    if (m->n_labels != other->n_labels)
        return false;
    for (i = 0; i < m->n_labels; i++) {
        if (strcmp(m->label_names[i], other->label_names[i]) != 0)
            return false;
    }
    return true;
}

metric *metrics_family(metric_type type, const char *name, const char *help,
                       const char *label_names, const double *buckets,
                       size_t n_buckets)
{
    metric *m = NULL;
    metric *found = NULL;
    size_t lo = 0;
    size_t hi;

    if (type != METRIC_COUNTER && type != METRIC_GAUGE &&
        type != METRIC_HISTOGRAM)
        return NULL;
    if (!name_is_valid(name, true))
        return NULL;
    m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    pthread_mutex_init(&m->lock, NULL);
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help ? help : "");
    if (!m->name || !m->help || !family_set_labels(m, label_names))
        goto fail;
    if (type == METRIC_HISTOGRAM && !family_set_buckets(m, buckets, n_buckets))
        goto fail;
    if (m->n_labels == 0) {
        const char *none[1] = {NULL};
        if (!family_series_get(m, none))
            goto fail;
    }

    pthread_mutex_lock(&g_lock);
    hi = g_n_families;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(g_families[mid]->name, name);
        if (c == 0) {
            found = g_families[mid];
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (found) {
        if (found->type != type || !family_same_labels(found, m))
            found = NULL;
        pthread_mutex_unlock(&g_lock);
        family_free(m);
        return found;
    }
    if (g_n_families == g_cap_families) {
        size_t ncap = g_cap_families ? g_cap_families * 2 : 32;
        metric **p = realloc(g_families, ncap * sizeof(*p));
        if (!p) {
            pthread_mutex_unlock(&g_lock);
            goto fail;
        }
        g_families = p;
        g_cap_families = ncap;
    }
    memmove(&g_families[lo + 1], &g_families[lo],
            (g_n_families - lo) * sizeof(*g_families));
    g_families[lo] = m;
    g_n_families++;
    pthread_mutex_unlock(&g_lock);
    return m;
fail:
    family_free(m);
    return NULL;
}

/* Reads the family's label values from ap; NULL becomes "". */
static void labels_read(const metric *m, va_list ap,
                        const char *vals[METRICS_MAX_LABELS])
{
    size_t i;

    for (i = 0; i < m->n_labels; i++) {
        const char *v = va_arg(ap, const char *);
        vals[i] = v ? v : "";
    }
}

/* Adds v to (add) or sets to v the series of m with label values vals,
 * creating the series on first use. Takes m->lock. */
static void series_update(metric *m, const char **vals, double v, bool add)
{
    metric_series *s;

    pthread_mutex_lock(&m->lock);
    s = family_series_get(m, vals);
    if (s)
        s->value = add ? s->value + v : v;
    pthread_mutex_unlock(&m->lock);
}

void metrics_add(metric *m, double v, ...)
{
    const char *vals[METRICS_MAX_LABELS];
    va_list ap;

    if (!m || m->type == METRIC_HISTOGRAM || isnan(v))
        return;
    if (m->type == METRIC_COUNTER && v < 0)
        return;
    va_start(ap, v);
    labels_read(m, ap, vals);
    va_end(ap);
    series_update(m, vals, v, true);
}

void metrics_set(metric *m, double v, ...)
{
    const char *vals[METRICS_MAX_LABELS];
    va_list ap;

    if (!m || m->type != METRIC_GAUGE)
        return;
    va_start(ap, v);
    labels_read(m, ap, vals);
    va_end(ap);
    series_update(m, vals, v, false);
}

void metrics_observe(metric *m, double v, ...)
{
    const char *vals[METRICS_MAX_LABELS];
    metric_series *s;
    va_list ap;
    size_t i;

    if (!m || m->type != METRIC_HISTOGRAM || isnan(v))
        return;
    va_start(ap, v);
    labels_read(m, ap, vals);
    va_end(ap);
    /* The first bucket whose upper bound is >= v; n_buckets means +Inf. */
    for (i = 0; i < m->n_buckets && v > m->buckets[i]; i++)
        ;
    pthread_mutex_lock(&m->lock);
    s = family_series_get(m, vals);
    if (s) {
        s->counts[i]++;
        s->sum += v;
        s->count++;
    }
    pthread_mutex_unlock(&m->lock);
}

void metrics_clear(metric *m)
{
    size_t i;

    if (!m)
        return;
    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->n_series; i++)
        series_free(m->series[i]);
    m->n_series = 0;
    pthread_mutex_unlock(&m->lock);
}

/*
 * Formats a sample value as Prometheus parses it: "+Inf", "-Inf", "NaN", or
 * the shortest of %.15g/%.17g that reads back exactly (so 0.1 is "0.1", not
 * "0.10000000000000001").
 */
static void value_format(double v, char out[32])
{
    if (isnan(v)) {
        strcpy(out, "NaN");
        return;
    }
    if (isinf(v)) {
        strcpy(out, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    snprintf(out, 32, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, 32, "%.17g", v);
}

/* Appends s with the escapes of HELP text (\\ and \n) or label values
 * (also \"). */
static herald_err escaped_append(buf *out, const char *s, bool quote)
{
    herald_err err = HERALD_OK;
    const char *run = s;

    for (; *s && !err; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (quote && *s == '"')
            esc = "\\\"";
        if (!esc)
            continue;
        err = buf_append(out, run, (size_t)(s - run));
        if (!err)
            err = buf_append_str(out, esc);
        run = s + 1;
    }
    if (!err)
        err = buf_append_str(out, run);
    return err;
}

/*
 * Appends "{a="x",b="y"" plus an optional le label, then "}"; nothing when
 * there are no labels at all.
 */
static herald_err labels_append(buf *out, const metric *m,
                                const metric_series *s, const char *le)
{
    herald_err err = HERALD_OK;
    size_t i;

    if (m->n_labels == 0 && !le)
        return HERALD_OK;
    err = buf_append_str(out, "{");
    for (i = 0; i < m->n_labels && !err; i++) {
        err = buf_appendf(out, "%s%s=\"", i ? "," : "", m->label_names[i]);
        if (!err)
            err = escaped_append(out, s->values[i], true);
        if (!err)
            err = buf_append_str(out, "\"");
    }
    if (!err && le)
        err = buf_appendf(out, "%sle=\"%s\"", m->n_labels ? "," : "", le);
    if (!err)
        err = buf_append_str(out, "}");
    return err;
}

static herald_err histogram_append(buf *out, const metric *m,
                                   const metric_series *s)
{
    herald_err err = HERALD_OK;
    char num[32];
    char le[32];
    uint64_t cum = 0;
    size_t i;

    for (i = 0; i <= m->n_buckets && !err; i++) {
        cum += s->counts[i];
        if (i < m->n_buckets)
            value_format(m->buckets[i], le);
        else
            strcpy(le, "+Inf");
        err = buf_appendf(out, "%s_bucket", m->name);
        if (!err)
            err = labels_append(out, m, s, le);
        if (!err)
            err = buf_appendf(out, " %llu\n", (unsigned long long)cum);
    }
    value_format(s->sum, num);
    if (!err)
        err = buf_appendf(out, "%s_sum", m->name);
    if (!err)
        err = labels_append(out, m, s, NULL);
    if (!err)
        err = buf_appendf(out, " %s\n%s_count", num, m->name);
    if (!err)
        err = labels_append(out, m, s, NULL);
    if (!err)
        err = buf_appendf(out, " %llu\n", (unsigned long long)s->count);
    return err;
}

/* Renders one family. Caller holds g_lock; takes m->lock. */
static herald_err family_render(buf *out, metric *m)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    herald_err err = HERALD_OK;
    char num[32];
    size_t i;

    pthread_mutex_lock(&m->lock);
    if (m->n_series == 0)
        goto done;
    err = buf_appendf(out, "# HELP %s ", m->name);
    if (!err)
        err = escaped_append(out, m->help, false);
    if (!err)
        err =
            buf_appendf(out, "\n# TYPE %s %s\n", m->name, type_names[m->type]);
    for (i = 0; i < m->n_series && !err; i++) {
        const metric_series *s = m->series[i];
        if (m->type == METRIC_HISTOGRAM) {
            err = histogram_append(out, m, s);
            continue;
        }
        value_format(s->value, num);
        err = buf_append_str(out, m->name);
        if (!err)
            err = labels_append(out, m, s, NULL);
        if (!err)
            err = buf_appendf(out, " %s\n", num);
    }
done:
    pthread_mutex_unlock(&m->lock);
    return err;
}

herald_err metrics_render(buf *out)
{
    herald_err err = HERALD_OK;
    size_t i;

    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_n_families && !err; i++)
        err = family_render(out, g_families[i]);
    pthread_mutex_unlock(&g_lock);
    return err;
}

void metrics_shutdown(void)
{
    size_t i;

    pthread_mutex_lock(&g_lock);
    for (i = 0; i < g_n_families; i++)
        family_free(g_families[i]);
    free(g_families);
    g_families = NULL;
    g_n_families = 0;
    g_cap_families = 0;
    pthread_mutex_unlock(&g_lock);
}
