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

#include <getopt.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/log.h"
#include "tools/topic_reader.h"

/* The handle's group.id: never joined, never committed. */
#define DLQSHOW_GROUP "herald-dlq-show"
/* One printed line holds a record of at most a few MiB (the broker's
 * message size limit, escaped up to 6 bytes per input byte). */
#define DLQSHOW_LINE_MAX (64u * 1024u * 1024u)

static void dlqshow_usage(FILE *out)
{
    fprintf(out,
            "usage: herald dlq show --brokers LIST --dlq-topic NAME "
            "[--json]\n"
            "\n"
            "Prints the records of the dead-letter topic, from the beginning\n"
            "to the end offsets seen at start. Joins no group and commits\n"
            "nothing.\n"
            "\n"
            "options:\n"
            "  -b, --brokers LIST        bootstrap brokers (env "
            "HERALD_BROKERS)\n"
            "  -d, --dlq-topic NAME      dead-letter topic (env "
            "HERALD_DLQ_TOPIC,\n"
            "                            else $HERALD_TOPIC.dlq)\n"
            "  -j, --json                one JSON object per record and line:\n"
            "                            partition, offset, key, value, "
            "headers\n"
            "  -X, --property KEY=VALUE  librdkafka property, repeatable\n"
            "  -h, --help                show this help\n");
}

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
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"dlq-topic", required_argument, NULL, 'd'},
        {"json", no_argument, NULL, 'j'},
        {"property", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char **props = calloc((size_t)argc + 1, sizeof(*props));
    size_t n_props = 0;
    const char *brokers = getenv("HERALD_BROKERS");
    const char *topic = getenv("HERALD_DLQ_TOPIC");
    const char *env_topic = getenv("HERALD_TOPIC");
    char topic_default[512];
    topic_reader *tr = NULL;
    herald_err err;
    bool json = false;
    long count = 0;
    char errstr[1024];
    int status = 2;
    int c;

    if (!topic && env_topic && *env_topic) {
        snprintf(topic_default, sizeof(topic_default), "%s.dlq", env_topic);
        topic = topic_default;
    }
    if (!props) {
        fprintf(stderr, "herald dlq show: out of memory\n");
        return 2;
    }
    optind = 0; /* Full getopt re-initialisation (GNU). */
    while ((c = getopt_long(argc, argv, "b:d:jX:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 'd': topic = optarg; break;
        case 'j': json = true; break;
        case 'X': props[n_props++] = optarg; break;
        case 'h':
            dlqshow_usage(stdout);
            status = 0;
            goto out;
        default: dlqshow_usage(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herald dlq show: unexpected argument %s\n",
                argv[optind]);
        goto out;
    }
    if (!brokers || !*brokers || !topic || !*topic) {
        fprintf(stderr,
                "herald dlq show: --brokers and --dlq-topic are required\n");
        goto out;
    }
    log_init(LOG_LEVEL_WARN, LOG_FORMAT_AUTO);
    /* Assign-only: no group join, no commits, no EOF silence. */
    tr = topic_reader_new(brokers, props, n_props, topic, DLQSHOW_GROUP, false,
                          &err, errstr, sizeof(errstr));
    if (!tr) {
        fprintf(stderr, "herald dlq show: %s\n", errstr);
        /* Properties that do not parse are a usage error. */
        status = err == HERALD_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    status = dlqshow_consume(tr, topic, json, &count);
    fprintf(stderr, "dlq show %s: %ld records\n", topic, count);
out:
    topic_reader_destroy(tr);
    free(props);
    return status;
}
