/*
 * target.h: a configured notification target, the HTTP request and response
 * types, and the plugin ops table every target type implements.
 *
 * A target is loaded from targets.yaml (publishers/targets.h) and is
 * immutable afterwards: a reload builds new targets and swaps the whole set.
 * Target types are plugins (publishers/<type>/), each one static
 * target_plugin listed once in publishers/plugins.c (Fluent Bit's output
 * plugin pattern).
 *
 * A delivery attempt ends as exactly one of: delivered, retry later, give
 * up (STYLE.md 8): 2xx delivers; 408, 429, 5xx, timeouts and connection or
 * DNS errors retry (honouring Retry-After); other 4xx give up. Plugins may
 * refine this for their vendor (Slack's "ok" body, PagerDuty's 202).
 *
 * Thread-safety: targets and plugins are read-only after loading and may be
 * used from any thread.
 */
#ifndef HERALD_TARGET_H
#define HERALD_TARGET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"
#include "core/buf.h"
#include "core/err.h"

struct target_plugin;

/* A header name and value. Both owned by the containing object. */
typedef struct target_header {
    char *name;
    char *value;
    bool secret; /* Masked in output when true. */
} target_header;

typedef enum target_auth_kind {
    TARGET_AUTH_NONE = 0,
    TARGET_AUTH_BEARER,
    TARGET_AUTH_BASIC,
    TARGET_AUTH_HEADER
} target_auth_kind;

/* Authentication; all strings owned, secrets never logged. */
typedef struct target_auth {
    target_auth_kind kind;
    char *token;        /* bearer */
    char *username;     /* basic */
    char *password;     /* basic, secret */
    char *header_name;  /* header */
    char *header_value; /* header, secret */
} target_auth;

/* Retry policy of one target. Times in milliseconds. */
typedef struct target_retry {
    int max_attempts;       /* Attempts in all, >= 1 (default 3). */
    int initial_backoff_ms; /* First backoff cap (default 200). */
    int max_backoff_ms;     /* Largest backoff cap (default 10000). */
    int max_elapsed_ms;     /* Give up after this long (default 60000). */
} target_retry;

typedef enum target_match_op {
    TARGET_MATCH_EQ = 0, /* = */
    TARGET_MATCH_NE,     /* != */
    TARGET_MATCH_RE,     /* =~ (anchored, as in Alertmanager) */
    TARGET_MATCH_NRE     /* !~ (anchored) */
} target_match_op;

/* One Alertmanager-style label matcher. */
typedef struct target_matcher {
    char *name;
    target_match_op op;
    char *value;
    struct re2_regex *re; /* Compiled value for =~ and !~, else NULL. */
} target_matcher;

/* Active health probe settings (publishers/health). */
typedef struct target_health {
    bool enabled;            /* Probe at all (default true). */
    char *method;            /* "GET", "HEAD" or "TCP" (default "TCP"). */
    char *url;               /* Probe URL, or NULL to use the target URL. */
    int interval_ms;         /* Default 10000. */
    int timeout_ms;          /* Default 2000. */
    int degraded_latency_ms; /* Slower than this is degraded (1000). */
    int unhealthy_after;     /* Consecutive failures (default 3). */
} target_health;

/* Circuit breaker settings (publishers/breaker). */
typedef struct target_breaker {
    int failure_threshold; /* Consecutive failures to open (5). */
    double failure_rate;   /* Open above this rate in the window, 0 off. */
    int window_ms;         /* Rate window (default 60000). */
    int min_requests;      /* Requests in the window before rate counts. */
    int open_timeout_ms;   /* Open -> half-open (default 30000). */
    int half_open_probes;  /* Concurrent probes in half-open (1). */
    int success_threshold; /* Successes in half-open to close (2). */
} target_breaker;

/* One configured target. Every pointer is owned by the target. */
typedef struct target {
    char *name;                         /* Unique, DNS-label style. */
    const struct target_plugin *plugin; /* Static; never freed. */
    char *url;                          /* Base URL; may hold secrets. */
    bool enabled;
    target_header *headers;
    size_t n_headers;
    target_auth auth;
    int timeout_ms; /* Per attempt, whole request (default 5000). */
    target_retry retry;
    int max_concurrency;      /* In-flight requests, retries included (16). */
    double rate_per_sec;      /* Token bucket rate, 0 = unlimited. */
    int rate_burst;           /* Token bucket size (default 1). */
    target_matcher *matchers; /* All must match. */
    size_t n_matchers;
    bool tls_verify; /* Default true. */
    char *tls_ca_file;
    target_health health;
    target_breaker breaker;
    void *type_config; /* Plugin-specific; freed by plugin->config_free. */
    /* Where the target was defined, for messages. */
    char *source_file;
    int source_line;
} target;

/* An HTTP request built by a plugin. All owned; free with http_request_free. */
typedef struct http_request {
    char method[8]; /* "POST", "GET", ... */
    char *url;
    target_header *headers;
    size_t n_headers;
    buf body;
} http_request;

/* An HTTP response, or the transport error that replaced it. Borrowed. */
typedef struct http_response {
    long status;         /* HTTP status, 0 when no response came. */
    int transport_error; /* CURLcode, 0 when a response came. */
    const char *error;   /* Transport error text, or NULL. */
    const char *body;    /* Response body (capped), NUL-terminated. */
    size_t body_len;
    const char *retry_after; /* Retry-After header value, or NULL. */
    double duration_ms;      /* Time of this attempt. */
} http_response;

typedef enum delivery_verdict {
    DELIVERY_DELIVERED = 0,
    DELIVERY_RETRY = 1,
    DELIVERY_GIVE_UP = 2
} delivery_verdict;

/* Classification of one attempt. */
typedef struct delivery_outcome {
    delivery_verdict verdict;
    int retry_after_ms;     /* Server-given delay, -1 when none. */
    char error[256];        /* Why it failed; "" when delivered. */
    const char *error_type; /* Static metric label: "http_4xx", "http_5xx",
                               "timeout", "connect", "dns", "rate_limited",
                               "body", "other"; NULL when delivered. */
} delivery_outcome;

/* Type of one per-type configuration key (table-driven config). */
typedef enum target_key_type {
    TARGET_KEY_STRING = 0, /* char * in the type config */
    TARGET_KEY_SECRET,     /* char *, masked, may be ${ENV} */
    TARGET_KEY_INT,        /* int */
    TARGET_KEY_BOOL,       /* bool */
    TARGET_KEY_ENUM,       /* char *, one of allowed (NULL-terminated) */
    TARGET_KEY_MAP         /* plugin handles (e.g. severity_map) */
} target_key_type;

/* One per-type key of targets.yaml. */
typedef struct target_key {
    const char *key;
    target_key_type type;
    size_t offset;              /* offsetof() in the plugin's type config. */
    const char *def;            /* Default as text, or NULL. */
    const char *const *allowed; /* For TARGET_KEY_ENUM. */
    bool required;
    const char *help;
} target_key;

/*
 * The ops table of a target type. All functions are pure with respect to
 * shared state and may be called from any thread.
 */
typedef struct target_plugin {
    const char *name;       /* "webhook", "slack", "pagerduty", "rootly" */
    const target_key *keys; /* Per-type keys, terminated by {NULL}. */
    size_t config_size;     /* sizeof the plugin's type config. */
    /* Called after the generic and per-type keys were read: validate and
     * finish type_config. Errors: HERALD_ERR_CONFIG with errstr. May be NULL.
     */
    herald_err (*config_finish)(target *tgt, char *errstr, size_t errstr_size);
    /* Frees what type_config's fields own (not type_config itself, which
     * the loader frees). May be NULL. */
    void (*config_free)(void *type_config);
    /* Builds the request for one alert into req (initialised by the
     * caller with http_request_init). Errors: HERALD_ERR_INVALID, NOMEM. */
    herald_err (*build_request)(const target *tgt, const alert *a,
                                http_request *req, char *errstr,
                                size_t errstr_size);
    /* Classifies one attempt's response. May be NULL for the default
     * rules (target_classify_default). */
    void (*classify)(const target *tgt, const http_response *resp,
                     delivery_outcome *out);
} target_plugin;

/* Initialises an empty request (body capped at max_body bytes). */
void http_request_init(http_request *req, size_t max_body);

/* Frees what req owns; req may be reused after http_request_init. */
void http_request_free(http_request *req);

/* Adds a header (copied). Errors: HERALD_ERR_NOMEM. */
herald_err http_request_add_header(http_request *req, const char *name,
                                   const char *value);

/*
 * Adds the target's configured headers and auth to req (after the plugin
 * built it). Errors: HERALD_ERR_NOMEM.
 */
herald_err target_request_apply_common(const target *tgt, http_request *req);

/*
 * The default classification of STYLE.md 8 (see top of file), including
 * Retry-After parsing (seconds or HTTP-date, capped at 300 s).
 */
void target_classify_default(const http_response *resp, delivery_outcome *out);

/*
 * Classifies with tgt->plugin->classify, or the default when it is NULL.
 */
void target_classify(const target *tgt, const http_response *resp,
                     delivery_outcome *out);

/*
 * True when every matcher of tgt matches a's labels (a missing label
 * matches as the empty string, as in Alertmanager). Any thread.
 */
bool target_matches(const target *tgt, const alert *a);

#endif
