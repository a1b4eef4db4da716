/*
 * herald-receiver: a real HTTP receiver for the demo, the integration
 * scenarios and the benchmarks. It answers every request according to a
 * table of path-prefix rules (status, delay, headers, body, fail the first
 * N, fail every Nth; optionally only for request bodies that contain a
 * text) and appends one JSON line per request to a ledger
 * file, which the scenarios read back with integration/ledger.py.
 *
 * Data flow: libmicrohttpd calls receiver_on_request() several times per
 * request. The first call stamps the arrival time, the middle calls
 * collect the body (capped at RECEIVER_BODY_MAX, 413 beyond), the last
 * call picks the longest matching rule, sleeps its delay, writes the
 * ledger line and only then queues the response, so a client that holds
 * an answer can rely on the line being in the ledger already. A line with
 * status 0 is a request whose delay was cut short by shutdown, unanswered.
 * /_health and /_control/... are answered directly and never ledgered.
 *
 * Threads: the main thread parses options, starts the daemon, writes the
 * port file and waits in sigwait() for SIGTERM or SIGINT (both blocked in
 * every thread, so no signal handler exists). libmicrohttpd runs one
 * listen thread and one thread per connection; a delayed answer therefore
 * blocks only its own connection, and delays of concurrent requests
 * overlap. Shared state and its locks:
 *   rcv->lock         the rule table (including hit counters) and stats;
 *   rcv->ledger_lock  the ledger FILE, held only for one fputs + fflush;
 *   rcv->stop_lock    the stopping flag; rcv->stop_cond wakes delays
 *                     early at shutdown so MHD_stop_daemon() joins fast.
 *
 * Build (the lead adds this to CMakeLists.txt; it does not link the
 * herald library, the receiver is a standalone test tool):
 *   pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
 *   pkg_check_modules(JSONC REQUIRED IMPORTED_TARGET json-c)
 *   add_executable(herald-receiver integration/receiver/receiver.c)
 *   target_link_libraries(herald-receiver PRIVATE PkgConfig::MHD
 *                         PkgConfig::JSONC Threads::Threads)
 * By hand:
 *   gcc -std=c11 -Wall -Wextra -Werror -O2 integration/receiver/receiver.c
 *       -o herald-receiver
 *       $(pkg-config --cflags --libs libmicrohttpd json-c) -lpthread
 */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <microhttpd.h>

/*
 * Alertmanager batches are a few KiB; 4 MiB is far above any real payload
 * yet bounds the memory one connection can pin.
 */
#define RECEIVER_BODY_MAX (4u * 1024u * 1024u)

/* Scenarios use a handful of rules; 256 only guards against runaway loops. */
#define RECEIVER_RULES_MAX 256

/* Enough for Retry-After, Content-Type and a few custom test headers. */
#define RULE_HEADERS_MAX 8

/* Ten minutes is longer than any client timeout herald would configure. */
#define RULE_DELAY_MAX_MS 600000ul

/*
 * A benchmark with a unique path per request must not grow the stats
 * without bound; paths beyond this many are counted under "_other".
 */
#define STATS_PATHS_MAX 4096

/*
 * Idle keep-alive connections are closed after this many seconds so a
 * crashed client does not pin a thread forever.
 */
#define RECEIVER_IDLE_TIMEOUT_S 120u

/* Request headers copied into each ledger line, lowercase as recorded. */
static const char *const ledger_header_names[] = {
    "content-type", "authorization", "idempotency-key",
    "user-agent",   "x-request-id",
};

/* Keys a rule spec may use, in the order the help text lists them. */
static const char *const rule_keys[] = {
    "status", "delay_ms", "header", "fail_first", "every", "body", "match",
};

struct rule {
    char *prefix;        /* Owned; starts with '/'. */
    unsigned int status; /* 200..599. */
    unsigned long delay_ms;
    char *body;  /* Owned; NULL means default. */
    char *match; /* Owned; the request body must contain it. NULL: any. */
    size_t header_count;
    char *header_names[RULE_HEADERS_MAX];  /* Owned. */
    char *header_values[RULE_HEADERS_MAX]; /* Owned. */
    unsigned long fail_first;              /* 0 means not set. */
    unsigned long every;                   /* 0 means not set. */
    unsigned long hits;                    /* Requests matched so far. */
};

/* A body collected up to RECEIVER_BODY_MAX; bytes beyond are counted only. */
struct body_buf {
    char *data; /* Owned, NUL-terminated when not NULL. */
    size_t len;
    size_t size;   /* Allocated bytes, including the NUL. */
    size_t total;  /* Bytes the client sent or announced. */
    bool overflow; /* The body exceeded RECEIVER_BODY_MAX. */
};

/* Per-request state, owned by libmicrohttpd's con_cls slot. */
struct request {
    struct timespec arrival; /* CLOCK_REALTIME at the first callback. */
    struct body_buf body;
    bool answered; /* A response is queued already. */
};

struct receiver {
    const char *name; /* Borrowed from argv. */
    FILE *ledger;
    pthread_mutex_t ledger_lock;

    pthread_mutex_t lock; /* Guards the fields down to by_status. */
    struct rule *rules[RECEIVER_RULES_MAX];
    size_t rule_count;
    uint64_t requests;
    json_object *by_path;   /* Path -> int; owned. */
    json_object *by_status; /* Status text -> int; owned. */

    pthread_mutex_t stop_lock;
    pthread_cond_t stop_cond; /* Uses CLOCK_MONOTONIC. */
    bool stopping;
};

/* What the last callback decided to answer. */
struct answer {
    unsigned int status;
    unsigned long delay_ms;
    struct MHD_Response *resp; /* Owned until queued. */
};

static void errfmt(char *errstr, size_t errstr_size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(errstr, errstr_size, fmt, ap);
    va_end(ap);
}

/* Parses a whole decimal number no larger than max. */
static int number_parse(const char *text, size_t len, unsigned long max,
                        unsigned long *out)
{
    unsigned long n = 0;
    size_t i;

    if (len == 0)
        return -1;
    for (i = 0; i < len; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        n = n * 10 + (unsigned long)(text[i] - '0');
        if (n > max)
            return -1;
    }
    *out = n;
    return 0;
}

static char *strndup_checked(const char *text, size_t len)
{
    char *copy = malloc(len + 1);

    if (copy == NULL)
        return NULL;
    memcpy(copy, text, len);
    copy[len] = '\0';
    return copy;
}

/* Appends to b; past the cap the data is dropped and only counted. */
static int body_buf_append(struct body_buf *b, const char *data, size_t len)
{
    size_t need;
    size_t size;
    char *grown;

    b->total += len;
    if (b->overflow)
        return 0;
    if (len > RECEIVER_BODY_MAX - b->len) {
        /* Release the partial body at once; it will not be recorded. */
        b->overflow = true;
        free(b->data);
        b->data = NULL;
        b->len = 0;
        b->size = 0;
        return 0;
    }
    need = b->len + len + 1;
    if (need > b->size) {
        size = b->size != 0 ? b->size : 4096;
        while (size < need)
            size *= 2;
        if (size > RECEIVER_BODY_MAX + 1)
            size = RECEIVER_BODY_MAX + 1;
        grown = realloc(b->data, size);
        if (grown == NULL)
            return -1;
        b->data = grown;
        b->size = size;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

static void rule_destroy(struct rule *rule)
{
    size_t i;

    if (rule == NULL)
        return;
    for (i = 0; i < rule->header_count; i++) {
        free(rule->header_names[i]);
        free(rule->header_values[i]);
    }
    free(rule->prefix);
    free(rule->body);
    free(rule->match);
    free(rule);
}

/* Returns the length of "KEY" when text starts with "KEY=", else 0. */
static size_t rule_key_len(const char *text)
{
    size_t i;
    size_t len;

    for (i = 0; i < sizeof(rule_keys) / sizeof(rule_keys[0]); i++) {
        len = strlen(rule_keys[i]);
        if (strncmp(text, rule_keys[i], len) == 0 && text[len] == '=')
            return len;
    }
    return 0;
}

/*
 * Options are separated by a comma only where the comma is followed by a
 * known "KEY=", so header values and bodies may contain commas, as in
 * body={"a":1,"b":2} or header=Cache-Control: no-cache, no-store.
 */
static const char *rule_option_end(const char *text)
{
    const char *comma = text;

    for (;;) {
        comma = strchr(comma, ',');
        if (comma == NULL)
            return text + strlen(text);
        if (rule_key_len(comma + 1) != 0)
            return comma;
        comma++;
    }
}

static int rule_header_parse(struct rule *rule, const char *value, size_t len,
                             char *errstr, size_t errstr_size)
{
    const char *colon = memchr(value, ':', len);
    const char *start;
    const char *end = value + len;
    size_t name_len;
    size_t i;

    if (rule->header_count == RULE_HEADERS_MAX) {
        errfmt(errstr, errstr_size, "rule has more than %d header= options",
               RULE_HEADERS_MAX);
        return -1;
    }
    if (colon == NULL || colon == value) {
        errfmt(errstr, errstr_size,
               "header=%.*s is not of the form Name: Value", (int)len, value);
        return -1;
    }
    for (i = 0; i < len; i++) {
        if (value[i] == '\r' || value[i] == '\n') {
            errfmt(errstr, errstr_size, "header= contains a line break");
            return -1;
        }
    }
    name_len = (size_t)(colon - value);
    while (name_len > 0 && value[name_len - 1] == ' ')
        name_len--;
    start = colon + 1;
    while (start < end && *start == ' ')
        start++;
    rule->header_names[rule->header_count] = strndup_checked(value, name_len);
    rule->header_values[rule->header_count] =
        strndup_checked(start, (size_t)(end - start));
    rule->header_count++;
    if (rule->header_names[rule->header_count - 1] == NULL ||
        rule->header_values[rule->header_count - 1] == NULL) {
        errfmt(errstr, errstr_size, "out of memory");
        return -1;
    }
    return 0;
}

static int rule_option_parse(struct rule *rule, const char *key, size_t key_len,
                             const char *value, size_t len, char *errstr,
                             size_t errstr_size)
{
    unsigned long n;

    if (key_len == 6 && strncmp(key, "status", 6) == 0) {
        if (number_parse(value, len, 599, &n) != 0 || n < 200) {
            errfmt(errstr, errstr_size,
                   "status=%.*s is not a number from 200 to 599", (int)len,
                   value);
            return -1;
        }
        rule->status = (unsigned int)n;
    } else if (key_len == 8 && strncmp(key, "delay_ms", 8) == 0) {
        if (number_parse(value, len, RULE_DELAY_MAX_MS, &n) != 0) {
            errfmt(errstr, errstr_size,
                   "delay_ms=%.*s is not a number from 0 to %lu", (int)len,
                   value, RULE_DELAY_MAX_MS);
            return -1;
        }
        rule->delay_ms = n;
    } else if (key_len == 6 && strncmp(key, "header", 6) == 0) {
        return rule_header_parse(rule, value, len, errstr, errstr_size);
    } else if (key_len == 4 && strncmp(key, "body", 4) == 0) {
        free(rule->body);
        rule->body = strndup_checked(value, len);
        if (rule->body == NULL) {
            errfmt(errstr, errstr_size, "out of memory");
            return -1;
        }
    } else if (key_len == 5 && strncmp(key, "match", 5) == 0) {
        if (len == 0) {
            errfmt(errstr, errstr_size, "match= needs a text");
            return -1;
        }
        free(rule->match);
        rule->match = strndup_checked(value, len);
        if (rule->match == NULL) {
            errfmt(errstr, errstr_size, "out of memory");
            return -1;
        }
    } else {
        /* fail_first or every: both are positive counts. */
        if (number_parse(value, len, 1000000000ul, &n) != 0 || n == 0) {
            errfmt(errstr, errstr_size, "%.*s=%.*s is not a positive number",
                   (int)key_len, key, (int)len, value);
            return -1;
        }
        if (key[0] == 'f')
            rule->fail_first = n;
        else
            rule->every = n;
    }
    return 0;
}

/*
 * Parses "PATH_PREFIX:key=value,key=value...". Trailing line breaks are
 * dropped so `curl --data-binary @file` works. On success *rulep is a new
 * rule the caller owns (free with rule_destroy); on failure errstr says
 * which option is wrong. Any thread.
 */
static int rule_parse(const char *spec, struct rule **rulep, char *errstr,
                      size_t errstr_size)
{
    struct rule *rule = NULL;
    char *text = NULL;
    char *colon;
    const char *opt;
    const char *end;
    const char *value;
    size_t len;
    size_t key_len;
    int ret = -1;

    *rulep = NULL;
    text = strdup(spec);
    rule = calloc(1, sizeof(*rule));
    if (text == NULL || rule == NULL) {
        errfmt(errstr, errstr_size, "out of memory");
        goto out;
    }
    len = strlen(text);
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    colon = strchr(text, ':');
    if (text[0] != '/' || colon == NULL) {
        errfmt(errstr, errstr_size,
               "rule \"%s\" is not of the form /PATH_PREFIX:key=value,...",
               text);
        goto out;
    }
    *colon = '\0';
    rule->prefix = strdup(text);
    if (rule->prefix == NULL) {
        errfmt(errstr, errstr_size, "out of memory");
        goto out;
    }
    rule->status = 200;
    opt = colon + 1;
    while (*opt != '\0') {
        key_len = rule_key_len(opt);
        if (key_len == 0) {
            errfmt(errstr, errstr_size,
                   "rule for %s: unknown option at \"%s\" (known: status, "
                   "delay_ms, header, fail_first, every, body, match)",
                   rule->prefix, opt);
            goto out;
        }
        value = opt + key_len + 1;
        end = rule_option_end(value);
        if (rule_option_parse(rule, opt, key_len, value, (size_t)(end - value),
                              errstr, errstr_size) != 0)
            goto out;
        opt = *end == ',' ? end + 1 : end;
    }
    *rulep = rule;
    rule = NULL;
    ret = 0;
out:
    rule_destroy(rule);
    free(text);
    return ret;
}

/* True when two rules have the same match text (or both none). */
static bool rule_same_match(const struct rule *a, const struct rule *b)
{
    if (a->match == NULL || b->match == NULL)
        return a->match == b->match;
    return strcmp(a->match, b->match) == 0;
}

/*
 * Adds rule, replacing one with the same prefix and match text. Caller
 * holds rcv->lock.
 */
static int rules_put(struct receiver *rcv, struct rule *rule)
{
    size_t i;

    for (i = 0; i < rcv->rule_count; i++) {
        if (strcmp(rcv->rules[i]->prefix, rule->prefix) == 0 &&
            rule_same_match(rcv->rules[i], rule)) {
            rule_destroy(rcv->rules[i]);
            rcv->rules[i] = rule;
            return 0;
        }
    }
    if (rcv->rule_count == RECEIVER_RULES_MAX)
        return -1;
    rcv->rules[rcv->rule_count++] = rule;
    return 0;
}

/* Caller holds rcv->lock. */
static void rules_clear(struct receiver *rcv)
{
    size_t i;

    for (i = 0; i < rcv->rule_count; i++)
        rule_destroy(rcv->rules[i]);
    rcv->rule_count = 0;
}

/*
 * Longest prefix wins among the rules whose match text (if any) occurs in
 * the request body; at equal length a rule with a match text wins over
 * one without. body is NUL-terminated or NULL. Caller holds rcv->lock.
 */
static struct rule *rules_match(struct receiver *rcv, const char *path,
                                const char *body)
{
    struct rule *best = NULL;
    size_t best_len = 0;
    size_t len;
    size_t i;

    for (i = 0; i < rcv->rule_count; i++) {
        struct rule *r = rcv->rules[i];

        if (r->match != NULL &&
            (body == NULL || strstr(body, r->match) == NULL))
            continue;
        len = strlen(r->prefix);
        if (strncmp(path, r->prefix, len) == 0 &&
            (best == NULL || len > best_len ||
             (len == best_len && best->match == NULL && r->match != NULL))) {
            best = r;
            best_len = len;
        }
    }
    return best;
}

/* Builds a text response; NULL when out of memory. Any thread. */
static struct MHD_Response *response_text(const char *text, size_t len,
                                          const char *content_type)
{
    struct MHD_Response *resp;

    resp = MHD_create_response_from_buffer(len, (void *)text,
                                           MHD_RESPMEM_MUST_COPY);
    if (resp != NULL && content_type != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                content_type);
    return resp;
}

/*
 * Decides the answer for a ledgered request: counts the hit on the
 * matching rule and, when the rule fires, uses its status, delay, headers
 * and body; otherwise 200 "ok". A rule without fail_first and every fires
 * always; with them it fires for hits 1..fail_first and for every
 * every-th hit. Takes rcv->lock.
 */
static void rules_decide(struct receiver *rcv, const char *path,
                         const char *body_in, struct answer *ans)
{
    struct rule *rule;
    const char *body = "ok";
    bool fires = false;
    bool has_type = false;
    char fallback[32];
    size_t i;

    ans->status = MHD_HTTP_OK;
    ans->delay_ms = 0;
    pthread_mutex_lock(&rcv->lock);
    rule = rules_match(rcv, path, body_in);
    if (rule != NULL) {
        rule->hits++;
        if (rule->fail_first == 0 && rule->every == 0)
            fires = true;
        if (rule->fail_first != 0 && rule->hits <= rule->fail_first)
            fires = true;
        if (rule->every != 0 && rule->hits % rule->every == 0)
            fires = true;
    }
    if (fires) {
        ans->status = rule->status;
        ans->delay_ms = rule->delay_ms;
        if (rule->body != NULL) {
            body = rule->body;
        } else if (rule->status >= 300) {
            snprintf(fallback, sizeof(fallback), "status %u", rule->status);
            body = fallback;
        }
        for (i = 0; i < rule->header_count; i++) {
            if (strcasecmp(rule->header_names[i], "content-type") == 0)
                has_type = true;
        }
    }
    ans->resp = response_text(body, strlen(body),
                              has_type ? NULL : "text/plain; charset=utf-8");
    for (i = 0; fires && ans->resp != NULL && i < rule->header_count; i++) {
        if (MHD_add_response_header(ans->resp, rule->header_names[i],
                                    rule->header_values[i]) != MHD_YES)
            fprintf(stderr,
                    "herald-receiver: %s: header %s rejected by "
                    "libmicrohttpd\n",
                    rule->prefix, rule->header_names[i]);
    }
    pthread_mutex_unlock(&rcv->lock);
}

/* Counts one ledgered request. Takes rcv->lock. */
static void stats_count(struct receiver *rcv, const char *path,
                        unsigned int status)
{
    json_object *n;
    char key[16];

    snprintf(key, sizeof(key), "%u", status);
    pthread_mutex_lock(&rcv->lock);
    rcv->requests++;
    if (!json_object_object_get_ex(rcv->by_path, path, &n) &&
        json_object_object_length(rcv->by_path) >= STATS_PATHS_MAX)
        path = "_other";
    if (json_object_object_get_ex(rcv->by_path, path, &n))
        json_object_int_inc(n, 1);
    else
        json_object_object_add(rcv->by_path, path, json_object_new_int64(1));
    if (json_object_object_get_ex(rcv->by_status, key, &n))
        json_object_int_inc(n, 1);
    else
        json_object_object_add(rcv->by_status, key, json_object_new_int64(1));
    pthread_mutex_unlock(&rcv->lock);
}

/* Caller holds rcv->lock. */
static void stats_reset(struct receiver *rcv)
{
    json_object_put(rcv->by_path);
    json_object_put(rcv->by_status);
    rcv->by_path = json_object_new_object();
    rcv->by_status = json_object_new_object();
    rcv->requests = 0;
}

/* Returns the JSON text of the stats; caller frees. Takes rcv->lock. */
static char *stats_dump(struct receiver *rcv)
{
    json_object *doc = json_object_new_object();
    char *text;

    pthread_mutex_lock(&rcv->lock);
    json_object_object_add(doc, "receiver", json_object_new_string(rcv->name));
    json_object_object_add(doc, "requests",
                           json_object_new_int64((int64_t)rcv->requests));
    json_object_object_add(doc, "by_path", json_object_get(rcv->by_path));
    json_object_object_add(doc, "by_status", json_object_get(rcv->by_status));
    text = strdup(json_object_to_json_string_ext(
        doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(doc);
    pthread_mutex_unlock(&rcv->lock);
    return text;
}

static void fingerprint_add(json_object *fps, json_object *obj, const char *key)
{
    json_object *value;

    if (json_object_is_type(obj, json_type_object) &&
        json_object_object_get_ex(obj, key, &value) &&
        json_object_is_type(value, json_type_string))
        json_object_array_add(
            fps, json_object_new_string(json_object_get_string(value)));
}

/*
 * Best-effort fingerprints of a body: Alertmanager's alerts[].fingerprint,
 * else a top-level fingerprint, else PagerDuty's dedup_key, else Rootly's
 * data.attributes.external_id or deduplication_key. Returns a new array,
 * possibly empty.
 */
static json_object *fingerprints_extract(const char *body, size_t len)
{
    json_object *fps = json_object_new_array();
    json_tokener *tok;
    json_object *doc = NULL;
    json_object *alerts;
    json_object *data;
    json_object *attrs;
    size_t i;

    if (len == 0)
        return fps;
    tok = json_tokener_new();
    if (tok != NULL)
        doc = json_tokener_parse_ex(tok, body, (int)len);
    if (doc == NULL || !json_object_is_type(doc, json_type_object))
        goto out;
    if (json_object_object_get_ex(doc, "alerts", &alerts) &&
        json_object_is_type(alerts, json_type_array)) {
        for (i = 0; i < json_object_array_length(alerts); i++)
            fingerprint_add(fps, json_object_array_get_idx(alerts, i),
                            "fingerprint");
    }
    if (json_object_array_length(fps) == 0)
        fingerprint_add(fps, doc, "fingerprint");
    if (json_object_array_length(fps) == 0)
        fingerprint_add(fps, doc, "dedup_key");
    if (json_object_array_length(fps) == 0 &&
        json_object_object_get_ex(doc, "data", &data) &&
        json_object_object_get_ex(data, "attributes", &attrs)) {
        fingerprint_add(fps, attrs, "external_id");
        if (json_object_array_length(fps) == 0)
            fingerprint_add(fps, attrs, "deduplication_key");
    }
out:
    json_object_put(doc);
    if (tok != NULL)
        json_tokener_free(tok);
    return fps;
}

/* Appends one JSON line for a ledgered request. Takes rcv->ledger_lock. */
static void ledger_write(struct receiver *rcv, struct MHD_Connection *conn,
                         const char *method, const char *path,
                         const struct request *req, unsigned int status)
{
    json_object *rec = json_object_new_object();
    json_object *headers = json_object_new_object();
    const char *value;
    const char *line;
    char t[48];
    size_t i;
    int failed;

    snprintf(t, sizeof(t), "%lld.%06ld", (long long)req->arrival.tv_sec,
             req->arrival.tv_nsec / 1000);
    json_object_object_add(rec, "t",
                           json_object_new_double_s(strtod(t, NULL), t));
    json_object_object_add(rec, "receiver", json_object_new_string(rcv->name));
    json_object_object_add(rec, "method", json_object_new_string(method));
    json_object_object_add(rec, "path", json_object_new_string(path));
    json_object_object_add(rec, "status", json_object_new_int((int)status));
    for (i = 0; i < sizeof(ledger_header_names) / sizeof(char *); i++) {
        value = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                            ledger_header_names[i]);
        if (value != NULL)
            json_object_object_add(headers, ledger_header_names[i],
                                   json_object_new_string(value));
    }
    json_object_object_add(rec, "headers", headers);
    if (req->body.overflow) {
        /* An oversize body is not stored; its size says what happened. */
        json_object_object_add(rec, "body", json_object_new_string(""));
        json_object_object_add(rec, "body_truncated",
                               json_object_new_boolean(1));
        json_object_object_add(rec, "fingerprints", json_object_new_array());
    } else {
        json_object_object_add(rec, "body",
                               json_object_new_string_len(
                                   req->body.data != NULL ? req->body.data : "",
                                   (int)req->body.len));
        json_object_object_add(
            rec, "fingerprints",
            fingerprints_extract(req->body.data, req->body.len));
    }
    json_object_object_add(rec, "body_bytes",
                           json_object_new_int64((int64_t)req->body.total));
    line = json_object_to_json_string_ext(
        rec, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

    pthread_mutex_lock(&rcv->ledger_lock);
    failed = fputs(line, rcv->ledger) == EOF ||
             fputc('\n', rcv->ledger) == EOF || fflush(rcv->ledger) != 0;
    pthread_mutex_unlock(&rcv->ledger_lock);

    if (failed)
        fprintf(stderr, "herald-receiver: ledger write failed: %s\n",
                strerror(errno));
    json_object_put(rec);
}

/*
 * Sleeps ms, or less when shutdown starts; returns false in that case.
 * Takes rcv->stop_lock.
 */
static bool receiver_delay(struct receiver *rcv, unsigned long ms)
{
    struct timespec deadline;
    bool stopping;

    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(ms / 1000);
    deadline.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&rcv->stop_lock);
    while (!rcv->stopping) {
        if (pthread_cond_timedwait(&rcv->stop_cond, &rcv->stop_lock,
                                   &deadline) == ETIMEDOUT)
            break;
    }
    stopping = rcv->stopping;
    pthread_mutex_unlock(&rcv->stop_lock);
    return !stopping;
}

static enum MHD_Result answer_queue(struct MHD_Connection *conn,
                                    unsigned int status,
                                    struct MHD_Response *resp)
{
    enum MHD_Result ret;

    if (resp == NULL)
        return MHD_NO;
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result answer_text(struct MHD_Connection *conn,
                                   unsigned int status, const char *text)
{
    return answer_queue(
        conn, status,
        response_text(text, strlen(text), "text/plain; charset=utf-8"));
}

/* Serves /_control/...; nothing here is ledgered. */
static enum MHD_Result control_handle(struct receiver *rcv,
                                      struct MHD_Connection *conn,
                                      const char *path, const char *method,
                                      const struct request *req)
{
    struct rule *rule = NULL;
    char errstr[512];
    char *text;
    enum MHD_Result queued;
    int full;

    if (strcmp(path, "/_control/rule") == 0 &&
        strcmp(method, MHD_HTTP_METHOD_POST) == 0) {
        if (rule_parse(req->body.data != NULL ? req->body.data : "", &rule,
                       errstr, sizeof(errstr)) != 0) {
            strncat(errstr, "\n", sizeof(errstr) - strlen(errstr) - 1);
            return answer_text(conn, MHD_HTTP_BAD_REQUEST, errstr);
        }
        pthread_mutex_lock(&rcv->lock);
        full = rules_put(rcv, rule);
        pthread_mutex_unlock(&rcv->lock);
        if (full != 0) {
            rule_destroy(rule);
            return answer_text(conn, MHD_HTTP_INSUFFICIENT_STORAGE,
                               "too many rules\n");
        }
        return answer_text(conn, MHD_HTTP_OK, "ok\n");
    }
    if (strcmp(path, "/_control/rules") == 0 &&
        strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        pthread_mutex_lock(&rcv->lock);
        rules_clear(rcv);
        pthread_mutex_unlock(&rcv->lock);
        return answer_text(conn, MHD_HTTP_OK, "ok\n");
    }
    if (strcmp(path, "/_control/stats") == 0 &&
        strcmp(method, MHD_HTTP_METHOD_DELETE) == 0) {
        pthread_mutex_lock(&rcv->lock);
        stats_reset(rcv);
        pthread_mutex_unlock(&rcv->lock);
        return answer_text(conn, MHD_HTTP_OK, "ok\n");
    }
    if (strcmp(path, "/_control/stats") == 0 &&
        strcmp(method, MHD_HTTP_METHOD_GET) == 0) {
        text = stats_dump(rcv);
        if (text == NULL)
            return MHD_NO;
        queued =
            answer_queue(conn, MHD_HTTP_OK,
                         response_text(text, strlen(text), "application/json"));
        free(text);
        return queued;
    }
    return answer_text(conn, MHD_HTTP_NOT_FOUND,
                       "unknown control endpoint; use POST /_control/rule, "
                       "DELETE /_control/rules, GET|DELETE /_control/stats\n");
}

/* Answers a request whose body is complete (or rejected as too large). */
static enum MHD_Result request_finish(struct receiver *rcv,
                                      struct MHD_Connection *conn,
                                      const char *path, const char *method,
                                      struct request *req)
{
    struct answer ans;
    static const char too_large[] = "request body exceeds 4 MiB\n";

    req->answered = true;
    if (strcmp(path, "/_health") == 0)
        return answer_text(conn, MHD_HTTP_OK, "ok\n");
    if (strncmp(path, "/_control/", strlen("/_control/")) == 0) {
        if (req->body.overflow)
            return answer_text(conn, MHD_HTTP_CONTENT_TOO_LARGE, too_large);
        return control_handle(rcv, conn, path, method, req);
    }
    if (req->body.overflow) {
        ans.status = MHD_HTTP_CONTENT_TOO_LARGE;
        ans.delay_ms = 0;
        ans.resp = response_text(too_large, strlen(too_large),
                                 "text/plain; charset=utf-8");
    } else {
        rules_decide(rcv, path, req->body.data, &ans);
    }
    if (ans.delay_ms != 0 && !receiver_delay(rcv, ans.delay_ms)) {
        /*
         * Shutdown cut the delay short and the daemon is closing every
         * connection, so nothing will be answered: status 0 says so.
         */
        if (ans.resp != NULL)
            MHD_destroy_response(ans.resp);
        ledger_write(rcv, conn, method, path, req, 0);
        return MHD_NO;
    }
    ledger_write(rcv, conn, method, path, req, ans.status);
    stats_count(rcv, path, ans.status);
    return answer_queue(conn, ans.status, ans.resp);
}

/* libmicrohttpd access handler; runs on the connection's thread. */
static enum MHD_Result
receiver_on_request(void *cls, struct MHD_Connection *conn, const char *url,
                    const char *method, const char *version,
                    const char *upload_data, size_t *upload_data_size,
                    void **con_cls)
{
    struct receiver *rcv = cls;
    struct request *req = *con_cls;
    const char *length;
    unsigned long announced = 0;

    (void)version;
    if (req == NULL) {
        req = calloc(1, sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        clock_gettime(CLOCK_REALTIME, &req->arrival);
        *con_cls = req;
        /*
         * Refuse an announced oversize body before reading any of it;
         * libmicrohttpd then skips 100-continue and closes the connection.
         */
        length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length != NULL &&
            (number_parse(length, strlen(length), ULONG_MAX / 10 - 10,
                          &announced) != 0 ||
             announced > RECEIVER_BODY_MAX)) {
            req->body.overflow = true;
            req->body.total = announced > RECEIVER_BODY_MAX ? announced : 0;
            return request_finish(rcv, conn, url, method, req);
        }
        return MHD_YES;
    }
    if (*upload_data_size != 0) {
        if (!req->answered &&
            body_buf_append(&req->body, upload_data, *upload_data_size) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->answered)
        return MHD_YES;
    return request_finish(rcv, conn, url, method, req);
}

/* Frees per-request state however the request ended. */
static void receiver_on_completed(void *cls, struct MHD_Connection *conn,
                                  void **con_cls,
                                  enum MHD_RequestTerminationCode toe)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)conn;
    (void)toe;
    if (req == NULL)
        return;
    free(req->body.data);
    free(req);
    *con_cls = NULL;
}

/*
 * Parses HOST:PORT where HOST is a loopback address: 127.0.0.0/8,
 * localhost or [::1]. Anything else is refused because the receiver
 * records Authorization headers verbatim.
 */
static int listen_parse(const char *text, bool any_address,
                        struct sockaddr_storage *ss, unsigned long *port,
                        char *errstr, size_t errstr_size)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
    const char *colon = strrchr(text, ':');
    char host[64];
    size_t host_len;

    memset(ss, 0, sizeof(*ss));
    if (colon == NULL ||
        number_parse(colon + 1, strlen(colon + 1), 65535, port) != 0) {
        errfmt(errstr, errstr_size,
               "--listen %s: expected HOST:PORT with PORT 0..65535", text);
        return -1;
    }
    host_len = (size_t)(colon - text);
    if (host_len >= sizeof(host)) {
        errfmt(errstr, errstr_size, "--listen %s: host too long", text);
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (host_len > 2 && host[0] == '[' && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)*port);
        if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 &&
            (any_address || IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr)))
            return 0;
    } else {
        if (strcmp(host, "localhost") == 0)
            strcpy(host, "127.0.0.1");
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)*port);
        if (inet_pton(AF_INET, host, &sin->sin_addr) == 1 &&
            (any_address || (ntohl(sin->sin_addr.s_addr) >> 24) == 127))
            return 0;
    }
    errfmt(errstr, errstr_size,
           "--listen %s: only loopback addresses (127.0.0.0/8, localhost, "
           "[::1]) are allowed without --any-address",
           text);
    return -1;
}

/* Writes the port to path via a temporary file and rename(). */
static int port_file_write(const char *path, unsigned int port)
{
    char tmp[4096];
    FILE *f;
    int failed;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >=
        (int)sizeof(tmp))
        return -1;
    f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    failed = fprintf(f, "%u\n", port) < 0;
    failed |= fclose(f) != 0;
    if (failed || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fputs("usage: herald-receiver --listen 127.0.0.1:PORT --ledger FILE\n"
          "                       [--name NAME] [--rule SPEC]... "
          "[--port-file F]\n"
          "\n"
          "  --listen HOST:PORT  loopback only; PORT 0 picks a free port\n"
          "  --ledger FILE       append one JSON line per request\n"
          "  --name NAME         \"receiver\" field of ledger lines "
          "(default receiver)\n"
          "  --port-file F       write the bound port to F (tmp + rename)\n"
          "  --any-address       allow a non-loopback --listen (containers)\n"
          "  --rule SPEC         /PATH_PREFIX:status=CODE,delay_ms=N,\n"
          "                      header=Name: Value,body=TEXT,fail_first=N,"
          "every=N,\n"
          "                      match=TEXT\n"
          "\n"
          "The longest matching prefix applies; without a match the answer\n"
          "is 200 ok. A rule with match=TEXT applies only to requests whose\n"
          "body contains TEXT (and wins over a rule without at equal length). "
          "fail_first=N applies the rule to the first N hits,\n"
          "every=N to every Nth hit; other hits get 200 ok. Control:\n"
          "POST /_control/rule (SPEC as body), DELETE /_control/rules,\n"
          "GET|DELETE /_control/stats, GET /_health (not ledgered).\n",
          out);
}

static void receiver_free(struct receiver *rcv)
{
    rules_clear(rcv);
    json_object_put(rcv->by_path);
    json_object_put(rcv->by_status);
    if (rcv->ledger != NULL)
        fclose(rcv->ledger);
    pthread_mutex_destroy(&rcv->lock);
    pthread_mutex_destroy(&rcv->ledger_lock);
    pthread_mutex_destroy(&rcv->stop_lock);
    pthread_cond_destroy(&rcv->stop_cond);
}

static int receiver_init(struct receiver *rcv)
{
    pthread_condattr_t attr;

    memset(rcv, 0, sizeof(*rcv));
    rcv->name = "receiver";
    pthread_mutex_init(&rcv->lock, NULL);
    pthread_mutex_init(&rcv->ledger_lock, NULL);
    pthread_mutex_init(&rcv->stop_lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&rcv->stop_cond, &attr);
    pthread_condattr_destroy(&attr);
    rcv->by_path = json_object_new_object();
    rcv->by_status = json_object_new_object();
    return rcv->by_path != NULL && rcv->by_status != NULL ? 0 : -1;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"listen", required_argument, NULL, 'l'},
        {"ledger", required_argument, NULL, 'L'},
        {"name", required_argument, NULL, 'n'},
        {"rule", required_argument, NULL, 'r'},
        {"port-file", required_argument, NULL, 'p'},
        {"any-address", no_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct receiver rcv;
    struct MHD_Daemon *daemon = NULL;
    const union MHD_DaemonInfo *info;
    struct sockaddr_storage ss;
    struct rule *rule;
    const char *listen_text = NULL;
    const char *ledger_path = NULL;
    const char *port_file = NULL;
    bool any_address = false;
    char errstr[512];
    unsigned long port = 0;
    unsigned int bound;
    unsigned int flags;
    sigset_t stop_signals;
    struct sigaction ignore;
    int sig;
    int opt;
    int ret = 2;

    if (receiver_init(&rcv) != 0) {
        fprintf(stderr, "herald-receiver: out of memory\n");
        return 1;
    }
    for (;;) {
        opt = getopt_long(argc, argv, "", options, NULL);
        if (opt == -1)
            break;
        switch (opt) {
        case 'l': listen_text = optarg; break;
        case 'A': any_address = true; break;
        case 'L': ledger_path = optarg; break;
        case 'n': rcv.name = optarg; break;
        case 'p': port_file = optarg; break;
        case 'r':
            if (rule_parse(optarg, &rule, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "herald-receiver: --rule: %s\n", errstr);
                goto out;
            }
            if (rules_put(&rcv, rule) != 0) {
                rule_destroy(rule);
                fprintf(stderr, "herald-receiver: more than %d rules\n",
                        RECEIVER_RULES_MAX);
                goto out;
            }
            break;
        case 'h':
            usage(stdout);
            ret = 0;
            goto out;
        default: usage(stderr); goto out;
        }
    }
    if (optind != argc || listen_text == NULL || ledger_path == NULL) {
        usage(stderr);
        goto out;
    }
    if (listen_parse(listen_text, any_address, &ss, &port, errstr,
                     sizeof(errstr)) != 0) {
        fprintf(stderr, "herald-receiver: %s\n", errstr);
        goto out;
    }

    ret = 1;
    rcv.ledger = fopen(ledger_path, "a");
    if (rcv.ledger == NULL) {
        fprintf(stderr, "herald-receiver: --ledger %s: %s\n", ledger_path,
                strerror(errno));
        goto out;
    }

    /*
     * Block the stop signals before any thread exists so every thread
     * inherits the mask and only sigwait() below ever sees them.
     */
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    memset(&ignore, 0, sizeof(ignore));
    ignore.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &ignore, NULL);

    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
            MHD_USE_POLL | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, receiver_on_request, &rcv,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_NOTIFY_COMPLETED, receiver_on_completed, &rcv,
        MHD_OPTION_CONNECTION_TIMEOUT, RECEIVER_IDLE_TIMEOUT_S, MHD_OPTION_END);
    if (daemon == NULL) {
        fprintf(stderr, "herald-receiver: cannot listen on %s\n", listen_text);
        goto out;
    }
    info = MHD_get_daemon_info(daemon, MHD_DAEMON_INFO_BIND_PORT);
    bound = info != NULL ? info->port : (unsigned int)port;
    if (port_file != NULL && port_file_write(port_file, bound) != 0) {
        fprintf(stderr, "herald-receiver: --port-file %s: %s\n", port_file,
                strerror(errno));
        goto out;
    }
    fprintf(stderr, "herald-receiver: %s listening on port %u, ledger %s\n",
            rcv.name, bound, ledger_path);

    sig = 0;
    while (sigwait(&stop_signals, &sig) != 0)
        ;
    fprintf(stderr, "herald-receiver: %s stopping on signal %d\n", rcv.name,
            sig);
    ret = 0;

out:
    pthread_mutex_lock(&rcv.stop_lock);
    rcv.stopping = true;
    pthread_mutex_unlock(&rcv.stop_lock);
    pthread_cond_broadcast(&rcv.stop_cond);
    if (daemon != NULL)
        MHD_stop_daemon(daemon);
    if (ret == 0 && port_file != NULL)
        unlink(port_file);
    receiver_free(&rcv);
    return ret;
}
