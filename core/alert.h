/*
 * alert.h: the alert model and the parser of job messages.
 *
 * A Kafka message (one job) holds UTF-8 JSON in one of three forms
 * (ARCHITECTURE.md, "Input"):
 *   1. an Alertmanager webhook payload, version "4", with alerts[]
 *      (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config);
 *   2. one alert in Alertmanager form (status, labels, annotations, startsAt,
 *      endsAt, generatorURL, fingerprint);
 *   3. one enriched alert {"alert": {...snake_case...}, "classification":
 *      {severity, confidence, reasoning, recommendations}}.
 * Parsing yields an alert_batch: one or more alerts plus the group context.
 * A missing fingerprint is computed as Prometheus does for a label set
 * (prometheus/common model.LabelSet.Fingerprint: FNV-1a 64 over the label
 * names in sorted order and their values, each followed by the 0xff byte,
 * printed as 16 lower-case hex digits).
 *
 * Thread-safety: parsing is pure; a parsed batch is immutable and may be read
 * from any number of threads.
 */
#ifndef HERALD_ALERT_H
#define HERALD_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* One label or annotation. Both strings owned by the containing set. */
typedef struct alert_kv {
    char *name;
    char *value;
} alert_kv;

/* A set of name/value pairs, sorted by name, names unique. */
typedef struct alert_kvs {
    alert_kv *items;
    size_t n;
} alert_kvs;

typedef enum alert_status {
    ALERT_STATUS_FIRING = 0,
    ALERT_STATUS_RESOLVED = 1
} alert_status;

/* Length of a fingerprint string with its NUL. */
#define ALERT_FINGERPRINT_LEN 17

/*
 * One alert. All strings are owned by the alert (freed by alert_batch_free);
 * optional ones are NULL when absent.
 */
typedef struct alert {
    alert_status status;
    alert_kvs labels;
    alert_kvs annotations;
    char *starts_at;     /* RFC 3339 text as received, or NULL. */
    char *ends_at;       /* RFC 3339 text as received, or NULL. */
    char *generator_url; /* Or NULL. */
    char fingerprint[ALERT_FINGERPRINT_LEN];
    bool fingerprint_computed; /* True when not given in the message. */
    /* Group context, copied from the payload (form 1) or empty. */
    char *receiver;     /* Or NULL. */
    char *external_url; /* Or NULL. */
    char *group_key;    /* Or NULL. */
    /* Classification of form 3; severity also falls back to labels. */
    char *classification_severity;    /* Or NULL. */
    double classification_confidence; /* -1 when absent. */
    char *classification_reasoning;   /* Or NULL. */
    /* The alert object as compact JSON (for "raw" formats). Owned. */
    char *raw_json;
} alert;

/* The content of one job message. */
typedef struct alert_batch {
    alert *alerts; /* Owned array of n alerts; n >= 1 after a parse. */
    size_t n;
    /* Form 1 group fields (NULL/empty for forms 2 and 3). */
    char *receiver;
    alert_status status;
    alert_kvs group_labels;
    alert_kvs common_labels;
    alert_kvs common_annotations;
    char *external_url;
    char *group_key;
    int truncated_alerts;
    int form; /* 1, 2 or 3, as above. */
} alert_batch;

/* Limits applied while parsing; alert_limits_default() fills defaults. */
typedef struct alert_limits {
    size_t max_bytes;  /* Largest message value, bytes (default 1 MiB). */
    int max_depth;     /* Deepest JSON nesting (default 32). */
    size_t max_alerts; /* Most alerts in one payload (default 1000). */
} alert_limits;

/*
 * Why a message could not be parsed: the dead-letter "reason kind". Names
 * from alert_reason_name(): "null_value", "oversize", "not_utf8",
 * "not_json", "truncated_json", "too_deep", "wrong_type", "no_alerts".
 */
typedef enum alert_reason {
    ALERT_REASON_NONE = 0,
    ALERT_REASON_NULL_VALUE,
    ALERT_REASON_OVERSIZE,
    ALERT_REASON_NOT_UTF8,
    ALERT_REASON_NOT_JSON,
    ALERT_REASON_TRUNCATED,
    ALERT_REASON_TOO_DEEP,
    ALERT_REASON_WRONG_TYPE,
    ALERT_REASON_NO_ALERTS
} alert_reason;

/* Static name of a reason kind (see alert_reason). Never NULL. */
const char *alert_reason_name(alert_reason reason);

/* Fills lim with the defaults documented in alert_limits. */
void alert_limits_default(alert_limits *lim);

/*
 * Parses one message value (data may be NULL for a Kafka null value; len in
 * bytes) into out, which the caller provides and frees with
 * alert_batch_free() on success. On failure out is left empty (freeing it
 * is still allowed), *reason names the kind, errstr gets a sentence naming
 * the JSON field ("alerts[2].labels: expected an object").
 * Errors: HERALD_ERR_PARSE, HERALD_ERR_TOO_LARGE (oversize), HERALD_ERR_NOMEM.
 * Any thread.
 */
herald_err alert_batch_parse(const char *data, size_t len,
                             const alert_limits *lim, alert_batch *out,
                             alert_reason *reason, char *errstr,
                             size_t errstr_size);

/* Frees everything out owns and zeroes it. NULL and zeroed are fine. */
void alert_batch_free(alert_batch *batch);

/*
 * Computes the Prometheus fingerprint of a label set into out (16 hex
 * digits + NUL). The set need not be sorted. Pure, any thread.
 */
void alert_fingerprint(const alert_kvs *labels,
                       char out[ALERT_FINGERPRINT_LEN]);

/*
 * Frees the names, values and array of kvs (which the caller owns) and
 * leaves it empty; kvs itself is caller-allocated. Any thread that owns kvs.
 */
void alert_kvs_free(alert_kvs *kvs);

/* Value of a label or annotation by name, or NULL. Borrowed. */
const char *alert_kvs_get(const alert_kvs *kvs, const char *name);

/* "firing" or "resolved". */
const char *alert_status_name(alert_status status);

/*
 * The severity of an alert: classification severity if present, else the
 * "severity" label, else NULL. Borrowed from a.
 */
const char *alert_severity(const alert *a);

/*
 * Scheduling priority of an alert, smaller runs first: 0 firing critical,
 * 1 firing error/high, 2 firing warning or unknown, 3 firing info,
 * 4 resolved. Used by the PublishingQueue across fingerprints.
 */
int alert_priority(const alert *a);

#endif
