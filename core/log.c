/*
 * log.c: JSON-lines or text logging to stderr (see log.h).
 *
 * A line is built completely in a local buffer and written with one fputs so
 * lines from different threads never interleave (stdio locks the stream).
 * JSON escaping is done by json-c. The rate limiter keeps a small fixed table
 * of keys under one mutex; nothing is written while that mutex is held.
 * Threads: any.
 */
#include "core/log.h"

#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/buf.h"

/* Lines longer than this are cut: a log line must never grow unbounded. */
#define LOG_LINE_MAX (16 * 1024)
/* Rate-limiter slots; keys hash into them, a collision just shares a slot. */
#define LOG_LIMIT_SLOTS 256

static atomic_int log_min_level = LOG_LEVEL_INFO;
static int log_json = 1;

struct log_limit_slot {
    char key[128];
    int64_t last_ms;
    uint64_t suppressed;
};

static pthread_mutex_t log_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static struct log_limit_slot log_limit_slots[LOG_LIMIT_SLOTS];

static const char *const log_level_names[] = {"debug", "info", "warn", "error",
                                              "off"};

void log_init(log_level level, log_format format)
{
    atomic_store(&log_min_level, (int)level);
    if (format == LOG_FORMAT_AUTO)
        log_json = !isatty(STDERR_FILENO);
    else
        log_json = format == LOG_FORMAT_JSON;
}

void log_set_level(log_level level)
{
    atomic_store(&log_min_level, (int)level);
}

bool log_enabled(log_level level)
{
    return (int)level >= atomic_load(&log_min_level) && level != LOG_LEVEL_OFF;
}

int log_level_parse(const char *name, log_level *out)
{
    if (!name)
        return -1;
    for (int i = 0; i <= LOG_LEVEL_OFF; i++) {
        if (strcmp(name, log_level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    if (strcmp(name, "warning") == 0) {
        *out = LOG_LEVEL_WARN;
        return 0;
    }
    return -1;
}

int log_format_parse(const char *name, log_format *out)
{
    if (!name)
        return -1;
    if (strcmp(name, "auto") == 0)
        *out = LOG_FORMAT_AUTO;
    else if (strcmp(name, "json") == 0)
        *out = LOG_FORMAT_JSON;
    else if (strcmp(name, "text") == 0)
        *out = LOG_FORMAT_TEXT;
    else
        return -1;
    return 0;
}

static int64_t log_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_json_str(buf *b, const char *key, const char *val)
{
    json_object *s = json_object_new_string(val);

    buf_appendf(
        b, ",\"%s\":%s", key,
        json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(s);
}

static void log_emit(log_level level, const char *component,
                     const log_fields *f, uint64_t suppressed, const char *fmt,
                     va_list ap)
{
    char ts[80];
    char msg[LOG_LINE_MAX / 2];
    struct timespec now;
    struct tm tm;
    buf b;

    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
             tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(now.tv_nsec / 1000000));
    vsnprintf(msg, sizeof(msg), fmt, ap);

    buf_init(&b, LOG_LINE_MAX);
    if (log_json) {
        buf_appendf(&b, "{\"ts\":\"%s\",\"level\":\"%s\"", ts,
                    log_level_names[level]);
        log_json_str(&b, "component", component ? component : "herald");
        log_json_str(&b, "msg", msg);
        if (f && f->target)
            log_json_str(&b, "target", f->target);
        if (f && f->topic)
            log_json_str(&b, "topic", f->topic);
        if (f && f->partition >= 0)
            buf_appendf(&b, ",\"partition\":%d", (int)f->partition);
        if (f && f->offset >= 0)
            buf_appendf(&b, ",\"offset\":%lld", (long long)f->offset);
        if (f && f->fingerprint)
            log_json_str(&b, "fingerprint", f->fingerprint);
        if (suppressed)
            buf_appendf(&b, ",\"suppressed\":%llu",
                        (unsigned long long)suppressed);
        buf_append_str(&b, "}\n");
    } else {
        buf_appendf(&b, "%s %-5s %-10s %s", ts, log_level_names[level],
                    component ? component : "herald", msg);
        if (f && f->target)
            buf_appendf(&b, " target=%s", f->target);
        if (f && f->topic)
            buf_appendf(&b, " topic=%s", f->topic);
        if (f && f->partition >= 0)
            buf_appendf(&b, " partition=%d", (int)f->partition);
        if (f && f->offset >= 0)
            buf_appendf(&b, " offset=%lld", (long long)f->offset);
        if (f && f->fingerprint)
            buf_appendf(&b, " fingerprint=%s", f->fingerprint);
        if (suppressed)
            buf_appendf(&b, " (suppressed %llu similar)",
                        (unsigned long long)suppressed);
        buf_append_str(&b, "\n");
    }
    if (b.len == 0 || b.data[b.len - 1] != '\n') {
        /* Cut at the cap: keep the line a line. */
        if (b.len)
            b.data[b.len - 1] = '\n';
    }
    fputs(buf_str(&b), stderr);
    buf_free(&b);
}

void log_write(log_level level, const char *component, const log_fields *f,
               const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    log_emit(level, component, f, 0, fmt, ap);
    va_end(ap);
}

static uint32_t log_hash(const char *s)
{
    uint32_t h = 2166136261u;

    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

void log_write_limited(log_level level, const char *component,
                       const log_fields *f, const char *key,
                       int64_t interval_ms, const char *fmt, ...)
{
    struct log_limit_slot *slot;
    int64_t now;
    uint64_t suppressed = 0;
    int emit = 0;
    va_list ap;

    if (!log_enabled(level))
        return;
    now = log_now_ms();
    slot = &log_limit_slots[log_hash(key) % LOG_LIMIT_SLOTS];
    pthread_mutex_lock(&log_limit_lock);
    if (strncmp(slot->key, key, sizeof(slot->key) - 1) != 0 ||
        now - slot->last_ms >= interval_ms) {
        if (strncmp(slot->key, key, sizeof(slot->key) - 1) == 0)
            suppressed = slot->suppressed;
        snprintf(slot->key, sizeof(slot->key), "%s", key);
        slot->last_ms = now;
        slot->suppressed = 0;
        emit = 1;
    } else {
        slot->suppressed++;
    }
    pthread_mutex_unlock(&log_limit_lock);
    if (!emit)
        return;
    va_start(ap, fmt);
    log_emit(level, component, f, suppressed, fmt, ap);
    va_end(ap);
}
