/*
 * dlqshow.c: `herald dlq show` (see dlqshow.h for behaviour and output).
 *
 * Data flow: flags -> topic_reader_new() (low and high watermark of every
 * partition; the group named there is only a handle property, it is
 * neither joined nor committed; assigns the partitions that hold records,
 * from their low watermark) -> per record from topic_reader_next(): print
 * one line -> stop when every assigned partition reached its end offset of
 * the start.
 *
 * Threads: the calling thread owns the topic_reader (its consumer
 * rd_kafka_t) and polls it.
 */
#include "tools/dlqshow.h"

#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/options.h"
#include "tools/topic_reader.h"

/* The handle's group.id: never joined, never committed. */
#define DLQSHOW_GROUP "herald-dlq-show"
/* One printed line holds a record of at most a few MiB (the broker's
 * message size limit, escaped up to 6 bytes per input byte). */
#define DLQSHOW_LINE_MAX (64u * 1024u * 1024u)

/* What the option table fills. */
typedef struct dlqshow_settings {
    const char *brokers;
    const char *topic;
    options_list props; /* -X and HERALD_KAFKA_*. */
    bool json;
} dlqshow_settings;

/* The one option table of `herald dlq show`. */
static const options_entry dlqshow_entries[] = {
    OPTIONS_ENTRY_BROKERS(dlqshow_settings, brokers),
    {.name = "dlq-topic",
     .short_name = 'd',
     .type = OPTIONS_STRING,
     .offset = offsetof(dlqshow_settings, topic),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "dead-letter topic (default $HERALD_TOPIC.dlq)"},
    {.name = "json",
     .short_name = 'j',
     .type = OPTIONS_BOOL,
     .offset = offsetof(dlqshow_settings, json),
     .help = "one JSON object per record and line: partition,\n"
             "offset, key, value, headers"},
    OPTIONS_ENTRY_PROPERTY(dlqshow_settings, props),
};

static const options_spec dlqshow_spec = {
    .command = "herald dlq show",
    .usage = "Usage: herald dlq show --brokers LIST --dlq-topic NAME "
             "[--json]\n"
             "\n"
             "Prints the records of the dead-letter topic, from the "
             "beginning\n"
             "to the end offsets seen at start. Joins no group and commits\n"
             "nothing.\n",
    OPTIONS_TABLE(dlqshow_entries),
    .max_args = 0,
};

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t dlqshow_utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and code points past U+10FFFF. */
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/*
 * Appends bytes as a JSON string (or null when p is NULL). Valid UTF-8 is
 * copied; a byte that is not part of valid UTF-8 becomes \u00XX, so the
 * line stays valid JSON and the byte value stays readable.
 */
static herald_err dlqshow_json_str(buf *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    herald_err err;
    size_t i = 0;

    if (!p)
        return buf_append_str(b, "null");
    err = buf_append(b, "\"", 1);
    while (err == HERALD_OK && i < n) {
        unsigned char c = s[i];
        size_t len = dlqshow_utf8_len(s + i, n - i);

        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};

            err = buf_append(b, esc, 2);
            i++;
        } else if (c < 0x20 || len == 0) {
            err = buf_appendf(b, "\\u%04x", (unsigned)c);
            i++;
        } else {
            err = buf_append(b, s + i, len);
            i += len;
        }
    }
    if (err == HERALD_OK)
        err = buf_append(b, "\"", 1);
    return err;
}

/* The value of header name as text (borrowed from m), or NULL. */
static const char *dlqshow_header(const rd_kafka_message_t *m, const char *name,
                                  char *out, size_t n)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;

    if (rd_kafka_message_headers(m, &h) || !h ||
        rd_kafka_header_get_last(h, name, &v, &len) || !v)
        return NULL;
    snprintf(out, n, "%.*s", (int)(len < n ? len : n - 1), (const char *)v);
    return out;
}

/* Prints one record: JSON or the short text form. */
static herald_err dlqshow_print(const rd_kafka_message_t *m, bool json)
{
    rd_kafka_headers_t *h = NULL;
    herald_err err;
    buf b;

    if (!json) {
        char reason[64], target[128], stopic[256], spart[32], soff[32];
        char error[512];
        const char *r =
            dlqshow_header(m, "herald-reason", reason, sizeof(reason));
        const char *t =
            dlqshow_header(m, "herald-target", target, sizeof(target));
        const char *st =
            dlqshow_header(m, "herald-source-topic", stopic, sizeof(stopic));
        const char *sp =
            dlqshow_header(m, "herald-source-partition", spart, sizeof(spart));
        const char *so =
            dlqshow_header(m, "herald-source-offset", soff, sizeof(soff));
        const char *e = dlqshow_header(m, "herald-error", error, sizeof(error));

        printf("%d:%lld reason=%s target=%s source=%s/%s/%s error=%s\n",
               (int)m->partition, (long long)m->offset, r ? r : "-",
               t ? t : "-", st ? st : "-", sp ? sp : "-", so ? so : "-",
               e ? e : "-");
        return HERALD_OK;
    }
    buf_init(&b, DLQSHOW_LINE_MAX);
    err = buf_appendf(&b, "{\"partition\":%d,\"offset\":%lld,\"key\":",
                      (int)m->partition, (long long)m->offset);
    if (err == HERALD_OK)
        err = dlqshow_json_str(&b, m->key, m->key_len);
    if (err == HERALD_OK)
        err = buf_append_str(&b, ",\"value\":");
    if (err == HERALD_OK)
        err = dlqshow_json_str(&b, m->payload, m->len);
    if (err == HERALD_OK)
        err = buf_append_str(&b, ",\"headers\":{");
    if (err == HERALD_OK && rd_kafka_message_headers(m, &h) == 0 && h) {
        const char *name;
        const void *v;
        size_t len;

        for (size_t i = 0; err == HERALD_OK &&
                           rd_kafka_header_get_all(h, i, &name, &v, &len) == 0;
             i++) {
            if (i > 0)
                err = buf_append(&b, ",", 1);
            if (err == HERALD_OK)
                err = dlqshow_json_str(&b, name, strlen(name));
            if (err == HERALD_OK)
                err = buf_append(&b, ":", 1);
            if (err == HERALD_OK)
                err = dlqshow_json_str(&b, v, len);
        }
    }
    if (err == HERALD_OK)
        err = buf_append_str(&b, "}}\n");
    if (err == HERALD_OK)
        fwrite(b.data, 1, b.len, stdout);
    buf_free(&b);
    return err;
}

/* Prints records until every assigned partition reached its end. */
static int dlqshow_consume(topic_reader *tr, const char *topic, bool json,
                           long *count)
{
    int status = 0;

    for (;;) {
        const rd_kafka_message_t *m = NULL;
        topic_reader_event ev = topic_reader_next(tr, &m);

        if (ev == TOPIC_READER_END)
            break;
        if (ev == TOPIC_READER_NOTICE)
            continue; /* Not about an assigned partition. */
        if (ev == TOPIC_READER_STALLED) {
            fprintf(stderr,
                    "herald dlq show: no progress for %d ms; "
                    "stopping\n",
                    TOPIC_READER_STALL_MS);
            status = 1;
            break;
        }
        if (ev == TOPIC_READER_ERROR) {
            fprintf(stderr, "herald dlq show: %s [%d]: %s\n", topic,
                    (int)m->partition, rd_kafka_message_errstr(m));
            status = 1;
            break;
        }
        if (dlqshow_print(m, json) != HERALD_OK) {
            fprintf(stderr,
                    "herald dlq show: %s [%d] offset %lld: record "
                    "too large to print\n",
                    topic, (int)m->partition, (long long)m->offset);
            status = 1;
        }
        (*count)++;
    }
    fflush(stdout);
    return status;
}

int dlqshow_main(int argc, char **argv)
{
    dlqshow_settings set = {0};
    options_state st;
    char topic_default[512];
    topic_reader *tr = NULL;
    herald_err err;
    long count = 0;
    char errstr[1024];
    int status;

    set.topic = options_dlq_topic_default(topic_default, sizeof topic_default);
    status = options_cli(&dlqshow_spec, argc, argv, &set, &st);
    if (status >= 0)
        goto out;
    status = 2;
    log_init(LOG_LEVEL_WARN, LOG_FORMAT_AUTO);
    /* Assign-only: no group join, no commits, no EOF silence. */
    tr = topic_reader_new(set.brokers, (const char **)set.props.items,
                          set.props.n, set.topic, DLQSHOW_GROUP, false, &err,
                          errstr, sizeof(errstr));
    if (!tr) {
        fprintf(stderr, "herald dlq show: %s\n", errstr);
        /* Properties that do not parse are a usage error. */
        status = err == HERALD_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    status = dlqshow_consume(tr, set.topic, set.json, &count);
    fprintf(stderr, "dlq show %s: %ld records\n", set.topic, count);
out:
    topic_reader_destroy(tr);
    options_list_free(&set.props);
    options_state_free(&st);
    return status;
}
