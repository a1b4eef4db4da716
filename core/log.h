/*
 * log.h: the one log module of herald.
 *
 * Lines go to stderr, one per event: JSON lines by default, plain text when
 * stderr is a terminal or when asked for. Every line carries a level, a
 * component and, where known, target, topic/partition/offset and fingerprint.
 * The level is checked before anything is formatted (use the LOG_* macros).
 * Secrets never reach this module: callers log target names, never URLs with
 * credentials, tokens or routing keys.
 *
 * Thread-safety: every function may be called from any thread once
 * log_init() has returned; log_init() itself is called once, before threads.
 */
#ifndef HERALD_LOG_H
#define HERALD_LOG_H

#include <stdbool.h>
#include <stdint.h>

typedef enum log_level {
    LOG_LEVEL_DEBUG = 0,
    LOG_LEVEL_INFO = 1,
    LOG_LEVEL_WARN = 2,
    LOG_LEVEL_ERROR = 3,
    LOG_LEVEL_OFF = 4
} log_level;

typedef enum log_format {
    LOG_FORMAT_AUTO = 0, /* Text on a terminal, JSON otherwise. */
    LOG_FORMAT_JSON = 1,
    LOG_FORMAT_TEXT = 2
} log_format;

/* Context fields of a line; each is optional. Borrowed for the call only. */
typedef struct log_fields {
    const char *target;      /* Target name, or NULL. */
    const char *topic;       /* Kafka topic, or NULL. */
    int32_t partition;       /* Kafka partition, or -1. */
    int64_t offset;          /* Kafka offset, or -1. */
    const char *fingerprint; /* Alert fingerprint, or NULL. */
} log_fields;

/* A compound literal with no context fields. */
#define LOG_NOFIELDS (&(log_fields){NULL, NULL, -1, -1, NULL})
/* Context fields naming only a target. */
#define LOG_TARGET(t) (&(log_fields){(t), NULL, -1, -1, NULL})

/* Sets the minimum level and the format. Call once, before any thread. */
void log_init(log_level level, log_format format);

/* Sets the minimum level at run time (any thread). */
void log_set_level(log_level level);

/* True when lines at level are written. */
bool log_enabled(log_level level);

/*
 * Parses "debug", "info", "warn"/"warning", "error", "off". Returns 0 and
 * sets *out, or -1 for an unknown name.
 */
int log_level_parse(const char *name, log_level *out);

/* Parses "auto", "json", "text". Returns 0 and sets *out, or -1. */
int log_format_parse(const char *name, log_format *out);

/*
 * Writes one line. component is a short static name ("consumer"); f may be
 * NULL. Prefer the LOG_* macros, which skip formatting below the level.
 */
void log_write(log_level level, const char *component, const log_fields *f,
               const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/*
 * Like log_write(), but lines with the same key are written at most once per
 * interval_ms (milliseconds); the next line written for that key says how
 * many were suppressed. Use for repeated identical errors per target, with a
 * key such as "<target>:<error kind>". key is copied.
 */
void log_write_limited(log_level level, const char *component,
                       const log_fields *f, const char *key,
                       int64_t interval_ms, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

#define LOG_AT(lvl, comp, f, ...)                                              \
    do {                                                                       \
        if (log_enabled(lvl))                                                  \
            log_write((lvl), (comp), (f), __VA_ARGS__);                        \
    } while (0)
#define LOG_DEBUG(comp, f, ...) LOG_AT(LOG_LEVEL_DEBUG, comp, f, __VA_ARGS__)
#define LOG_INFO(comp, f, ...) LOG_AT(LOG_LEVEL_INFO, comp, f, __VA_ARGS__)
#define LOG_WARN(comp, f, ...) LOG_AT(LOG_LEVEL_WARN, comp, f, __VA_ARGS__)
#define LOG_ERROR(comp, f, ...) LOG_AT(LOG_LEVEL_ERROR, comp, f, __VA_ARGS__)

#endif
