/*
 * produce.c: `herald produce` (see produce.h for the input forms, keys,
 * splitting and exit status).
 *
 * Data flow: flags -> optional topic creation (core/admin) -> the whole
 * input is read into one capped buffer -> it is cut into units (the whole
 * document, or one unit per non-blank line) -> a payload unit may be split
 * into one-alert payloads (json-c) -> each record is validated with
 * alert_batch_parse(), keyed, and produced -> rd_kafka_flush() waits for
 * the delivery reports, which produce_dr_cb() counts.
 *
 * Threads: the calling thread only; it is also the only thread that polls
 * the producer, so the delivery-report counters need no lock.
 */
#include "tools/produce.h"

#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"
#include "core/alert.h"
#include "core/buf.h"
#include "core/log.h"
#include "core/options.h"

/* Largest input accepted, bytes: far above any test or demo file, low
 * enough that a mistaken binary pipe cannot exhaust memory. */
#define PRODUCE_MAX_INPUT ((size_t)512 * 1024 * 1024)
/* Admin and metadata timeout, ms. */
#define PRODUCE_ADMIN_TIMEOUT_MS 30000

typedef enum produce_key_from {
    PRODUCE_KEY_FINGERPRINT = 0,
    PRODUCE_KEY_GROUP,
    PRODUCE_KEY_NONE
} produce_key_from;

/* State of one run. */
typedef struct produce_ctx {
    rd_kafka_t *rk;
    const char *topic;
    const char *input_name; /* For "FILE:LINE:" messages. */
    produce_key_from key_from;
    bool split;
    bool allow_invalid;
    bool null_values;
    const char **hdrs; /* "name=value" strings from -H. */
    size_t n_hdrs;
    alert_limits lim;
    long produced;  /* Handed to librdkafka. */
    long delivered; /* Acknowledged (delivery reports). */
    long failed;    /* Failed delivery reports or produce calls. */
    long invalid;   /* Invalid records met (skipped unless allowed). */
} produce_ctx;

/* What the option table fills. */
typedef struct produce_settings {
    produce_ctx ctx; /* Its topic and switches. */
    const char *brokers;
    options_list props;    /* -X and HERALD_KAFKA_*. */
    options_list headers;  /* -H NAME=VALUE. */
    int create_partitions; /* 0: do not create the topic. */
    int rf;                /* -1: the broker's default. */
    int key_from;          /* produce_key_from. */
    int level;             /* log_level. */
} produce_settings;

#define PRODUCE_FIELD(f) offsetof(produce_settings, f)

static const char *const produce_key_words[] = {"fingerprint", "group", "none",
                                                NULL};
static const int produce_key_values[] = {PRODUCE_KEY_FINGERPRINT,
                                         PRODUCE_KEY_GROUP, PRODUCE_KEY_NONE};

/* The one option table of `herald produce`; defaults in produce_main(). */
static const options_entry produce_entries[] = {
    OPTIONS_ENTRY_BROKERS(produce_settings, brokers),
    {.name = "topic",
     .short_name = 't',
     .type = OPTIONS_STRING,
     .offset = PRODUCE_FIELD(ctx.topic),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "topic"},
    OPTIONS_ENTRY_PROPERTY(produce_settings, props),
    {.name = "create-topic",
     .type = OPTIONS_INT,
     .offset = PRODUCE_FIELD(create_partitions),
     .arg = "N",
     .min = 1,
     .max = 100000,
     .help = "create the topic with N partitions if it does not\n"
             "exist"},
    {.name = "replication-factor",
     .type = OPTIONS_INT,
     .offset = PRODUCE_FIELD(rf),
     .arg = "R",
     .min = -1,
     .max = 1000,
     .help = "for --create-topic (-1: the broker's default)"},
    {.name = "key-from",
     .type = OPTIONS_ENUM,
     .offset = PRODUCE_FIELD(key_from),
     .arg = "KIND",
     .words = produce_key_words,
     .values = produce_key_values,
     .help = "message key: the fingerprint, the groupKey or\n"
             "none"},
    {.name = "split",
     .type = OPTIONS_BOOL,
     .offset = PRODUCE_FIELD(ctx.split),
     .neg_name = "no-split",
     .help = "one message per alert of a payload (--no-split:\n"
             "a payload stays one message)"},
    {.name = "header",
     .short_name = 'H',
     .type = OPTIONS_LIST,
     .offset = PRODUCE_FIELD(headers),
     .arg = "NAME=VALUE",
     .help = "add a message header, repeatable (e.g.\n"
             "herald-targets=a,b)"},
    {.name = "allow-invalid",
     .type = OPTIONS_BOOL,
     .offset = PRODUCE_FIELD(ctx.allow_invalid),
     .help = "produce invalid records anyway, unkeyed"},
    {.name = "null-values",
     .type = OPTIONS_BOOL,
     .offset = PRODUCE_FIELD(ctx.null_values),
     .help = "a line `null` becomes a null value"},
    OPTIONS_ENTRY_LOG_LEVEL(produce_settings, level, 0),
};

static const options_spec produce_spec = {
    .command = "herald produce",
    .usage =
        "Usage: herald produce [options] [FILE|-]\n"
        "\n"
        "Produces alerts to a Kafka topic, keyed by fingerprint, and waits\n"
        "for every delivery report. Input: one whole JSON document (an\n"
        "Alertmanager webhook payload or one alert) or JSON lines (one alert\n"
        "or payload per line; blank lines skipped). Reads stdin when FILE is\n"
        "absent or \"-\".\n",
    .footer = "Exit status: 0 all delivered, 1 delivery or Kafka error, 2 "
              "usage or\ninput error, 3 invalid records were skipped.\n",
    OPTIONS_TABLE(produce_entries),
    .max_args = 1,
};

/* -H values must be NAME=VALUE with a non-empty NAME. */
static bool produce_headers_ok(const options_list *headers)
{
    for (size_t i = 0; i < headers->n; i++) {
        const char *h = headers->items[i];

        if (!strchr(h, '=') || h[0] == '=') {
            fprintf(stderr, "herald produce: -H %s: expected NAME=VALUE\n", h);
            return false;
        }
    }
    return true;
}

/* Delivery reports: runs inside rd_kafka_poll()/flush() on this thread. */
static void produce_dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *msg,
                          void *opaque)
{
    produce_ctx *ctx = opaque;

    if (msg->err) {
        ctx->failed++;
        fprintf(stderr, "herald produce: delivery to %s failed: %s\n",
                ctx->topic, rd_kafka_err2str(msg->err));
    } else {
        ctx->delivered++;
    }
}

/* Builds the message headers from -H flags; NULL when there are none. */
static rd_kafka_headers_t *produce_headers_new(const produce_ctx *ctx)
{
    rd_kafka_headers_t *h;

    if (ctx->n_hdrs == 0)
        return NULL;
    h = rd_kafka_headers_new(ctx->n_hdrs);
    for (size_t i = 0; h && i < ctx->n_hdrs; i++) {
        const char *eq = strchr(ctx->hdrs[i], '=');

        rd_kafka_header_add(h, ctx->hdrs[i], (ssize_t)(eq - ctx->hdrs[i]),
                            eq + 1, -1);
    }
    return h;
}

/* Produces one message (value may be NULL: a null value). */
static void produce_send(produce_ctx *ctx, const char *key, const char *value,
                         size_t len)
{
    rd_kafka_headers_t *h = produce_headers_new(ctx);
    rd_kafka_resp_err_t err;

    for (;;) {
        err = rd_kafka_producev(
            ctx->rk, RD_KAFKA_V_TOPIC(ctx->topic),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)value, value ? len : 0),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_END);
        if (err != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            break;
        /* The local queue is full: serve delivery reports, which frees
         * room, then try again. */
        rd_kafka_poll(ctx->rk, 100);
    }
    if (err) {
        if (h)
            rd_kafka_headers_destroy(h);
        ctx->failed++;
        fprintf(stderr, "herald produce: produce to %s: %s\n", ctx->topic,
                rd_kafka_err2str(err));
        return;
    }
    ctx->produced++;
    rd_kafka_poll(ctx->rk, 0);
}

/* Validates, keys and produces one record text (NUL not required). */
static void produce_record(produce_ctx *ctx, const char *text, size_t len,
                           long lineno)
{
    alert_batch batch;
    alert_reason reason = ALERT_REASON_NONE;
    char errstr[512];
    char key[512];
    const char *k = NULL;
    herald_err err;

    memset(&batch, 0, sizeof batch);
    err = alert_batch_parse(text, len, &ctx->lim, &batch, &reason, errstr,
                            sizeof errstr);
    if (err != HERALD_OK) {
        ctx->invalid++;
        fprintf(stderr, "%s:%ld: %s (%s)%s\n", ctx->input_name, lineno, errstr,
                alert_reason_name(reason),
                ctx->allow_invalid ? "; producing it anyway" : "");
        alert_batch_free(&batch);
        if (ctx->allow_invalid)
            produce_send(ctx, NULL, text, len);
        return;
    }
    if (ctx->key_from == PRODUCE_KEY_GROUP && batch.group_key)
        k = batch.group_key;
    else if (ctx->key_from != PRODUCE_KEY_NONE)
        k = batch.alerts[0].fingerprint;
    if (k)
        snprintf(key, sizeof key, "%s", k);
    alert_batch_free(&batch);
    produce_send(ctx, k ? key : NULL, text, len);
}

/*
 * Builds the one-alert payload for alert i of payload (see produce.h).
 * Returns a new object (caller puts it), or NULL when out of memory.
 */
static json_object *produce_split_one(json_object *payload, json_object *al)
{
    json_object *one = json_object_new_object();
    json_object *arr = json_object_new_array();
    json_object *v;

    if (!one || !arr) {
        json_object_put(one);
        json_object_put(arr);
        return NULL;
    }
    json_object_object_foreach(payload, name, val)
    {
        if (strcmp(name, "alerts") == 0 || strcmp(name, "status") == 0 ||
            strcmp(name, "commonLabels") == 0 ||
            strcmp(name, "commonAnnotations") == 0 ||
            strcmp(name, "truncatedAlerts") == 0)
            continue;
        json_object_object_add(one, name, json_object_get(val));
    }
    if (json_object_object_get_ex(al, "status", &v))
        json_object_object_add(one, "status", json_object_get(v));
    json_object_object_add(one, "truncatedAlerts", json_object_new_int(0));
    if (json_object_object_get_ex(al, "labels", &v))
        json_object_object_add(one, "commonLabels", json_object_get(v));
    if (json_object_object_get_ex(al, "annotations", &v))
        json_object_object_add(one, "commonAnnotations", json_object_get(v));
    json_object_array_add(arr, json_object_get(al));
    json_object_object_add(one, "alerts", arr);
    return one;
}

/* Handles one unit of input: a whole document or one line. */
static void produce_unit(produce_ctx *ctx, const char *text, size_t len,
                         long lineno)
{
    json_object *doc = NULL;
    json_object *alerts = NULL;
    json_tokener *tok;

    if (ctx->null_values && len == 4 && memcmp(text, "null", 4) == 0) {
        produce_send(ctx, NULL, NULL, 0);
        return;
    }
    if (ctx->split && len <= ctx->lim.max_bytes) {
        tok = json_tokener_new();
        if (tok) {
            doc = json_tokener_parse_ex(tok, text, (int)len);
            json_tokener_free(tok);
        }
    }
    if (doc && json_object_is_type(doc, json_type_object) &&
        json_object_object_get_ex(doc, "alerts", &alerts) &&
        json_object_is_type(alerts, json_type_array) &&
        json_object_array_length(alerts) > 1) {
        size_t n = json_object_array_length(alerts);

        for (size_t i = 0; i < n; i++) {
            json_object *al = json_object_array_get_idx(alerts, i);
            json_object *one = produce_split_one(doc, al);
            const char *s;

            if (!one) {
                fprintf(stderr, "%s:%ld: out of memory\n", ctx->input_name,
                        lineno);
                ctx->failed++;
                break;
            }
            s = json_object_to_json_string_ext(
                one, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
            produce_record(ctx, s, strlen(s), lineno);
            json_object_put(one);
        }
    } else {
        /* Produced byte for byte as given. */
        produce_record(ctx, text, len, lineno);
    }
    json_object_put(doc);
}

/* True when text (len bytes) is exactly one JSON object, up to spaces. */
static bool produce_is_one_document(const char *text, size_t len)
{
    json_tokener *tok = json_tokener_new();
    json_object *doc;
    bool one = false;

    if (!tok || len > INT32_MAX) {
        json_tokener_free(tok);
        return false;
    }
    doc = json_tokener_parse_ex(tok, text, (int)len);
    if (doc && json_object_is_type(doc, json_type_object)) {
        size_t end = json_tokener_get_parse_end(tok);

        while (end < len && strchr(" \t\r\n", text[end]))
            end++;
        one = end == len;
    }
    json_object_put(doc);
    json_tokener_free(tok);
    return one;
}

/* Reads all of f into b. Errors: HERALD_ERR_IO, HERALD_ERR_TOO_LARGE. */
static herald_err produce_read_all(FILE *f, buf *b)
{
    char chunk[65536];
    size_t n;

    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        herald_err err = buf_append(b, chunk, n);

        if (err != HERALD_OK)
            return err;
    }
    return ferror(f) ? HERALD_ERR_IO : HERALD_OK;
}

/* Cuts the input into units and produces them. */
static void produce_input(produce_ctx *ctx, const char *text, size_t len)
{
    const char *p = text;
    const char *end = text + len;
    long lineno = 0;

    if (produce_is_one_document(text, len)) {
        produce_unit(ctx, text, len, 1);
        return;
    }
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eol = nl ? nl : end;
        const char *s = p;
        const char *e = eol;

        lineno++;
        while (s < e && strchr(" \t\r", *s))
            s++;
        while (e > s && strchr(" \t\r", e[-1]))
            e--;
        if (e > s)
            produce_unit(ctx, s, (size_t)(e - s), lineno);
        p = nl ? nl + 1 : end;
    }
}

/* Reads the whole input (path, or stdin for NULL or "-") into input and
 * names it in ctx for messages. Returns 0, or 2 after printing why. */
static int produce_load_input(produce_ctx *ctx, const char *path, buf *input)
{
    FILE *in;
    herald_err err;

    if (!path || strcmp(path, "-") == 0) {
        in = stdin;
        ctx->input_name = "<stdin>";
    } else {
        in = fopen(path, "rb");
        ctx->input_name = path;
        if (!in) {
            fprintf(stderr, "herald produce: %s: cannot open: %m\n", path);
            return 2;
        }
    }
    err = produce_read_all(in, input);
    if (in != stdin)
        fclose(in);
    if (err != HERALD_OK) {
        fprintf(stderr,
                "herald produce: %s: cannot read (or larger than "
                "%zu bytes)\n",
                ctx->input_name, PRODUCE_MAX_INPUT);
        return 2;
    }
    return 0;
}

/* Creates the topic when asked (--create-topic), then the idempotent
 * producer (acks=all) into ctx->rk. Returns 0, or the exit status after
 * printing why: 2 for a bad setting, 1 for the brokers. */
static int produce_connect(const produce_settings *set, produce_ctx *ctx)
{
    static const char *const defaults[] = {"enable.idempotence=true",
                                           "acks=all", "linger.ms=5"};
    const char **props = (const char **)set->props.items;
    rd_kafka_conf_t *conf;
    char errstr[512];

    if (set->create_partitions > 0) {
        herald_err err =
            admin_create_topic(set->brokers, props, set->props.n, ctx->topic,
                               set->create_partitions, set->rf, NULL, 0,
                               PRODUCE_ADMIN_TIMEOUT_MS, errstr, sizeof errstr);

        if (err != HERALD_OK) {
            fprintf(stderr, "herald produce: %s\n", errstr);
            return err == HERALD_ERR_INVALID ? 2 : 1;
        }
    }
    conf = admin_conf_new(set->brokers, defaults, 3, props, set->props.n,
                          errstr, sizeof errstr);
    if (!conf) {
        fprintf(stderr, "herald produce: %s\n", errstr);
        return 2;
    }
    rd_kafka_conf_set_opaque(conf, ctx);
    rd_kafka_conf_set_dr_msg_cb(conf, produce_dr_cb);
    ctx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (!ctx->rk) {
        fprintf(stderr, "herald produce: %s\n", errstr);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    return 0;
}

/* Prints the summary line; returns the exit status: 1 when a record
 * failed, 3 when invalid input was skipped, else 0. */
static int produce_report(const produce_ctx *ctx)
{
    printf("produced %ld messages to %s (%ld invalid %s)\n", ctx->delivered,
           ctx->topic, ctx->invalid,
           ctx->allow_invalid ? "included" : "skipped");
    if (ctx->failed > 0) {
        fprintf(stderr, "herald produce: %ld messages failed\n", ctx->failed);
        return 1;
    }
    return ctx->invalid > 0 && !ctx->allow_invalid ? 3 : 0;
}

int produce_main(int argc, char **argv)
{
    produce_settings set;
    options_state st;
    produce_ctx ctx;
    buf input;
    int status;

    memset(&set, 0, sizeof set);
    set.rf = -1;
    set.ctx.split = true;
    set.level = LOG_LEVEL_WARN;
    alert_limits_default(&set.ctx.lim);
    buf_init(&input, PRODUCE_MAX_INPUT);
    status = options_cli(&produce_spec, argc, argv, &set, &st);
    ctx = set.ctx;
    if (status >= 0)
        goto out;
    status = 2;
    if (!produce_headers_ok(&set.headers))
        goto out;
    ctx.key_from = (produce_key_from)set.key_from;
    ctx.hdrs = (const char **)set.headers.items;
    ctx.n_hdrs = set.headers.n;
    log_init((log_level)set.level, LOG_FORMAT_AUTO);
    status =
        produce_load_input(&ctx, st.argi < argc ? argv[st.argi] : NULL, &input);
    if (status == 0)
        status = produce_connect(&set, &ctx);
    if (status != 0)
        goto out;
    produce_input(&ctx, input.data ? input.data : "", input.len);

    /* librdkafka fails every message after message.timeout.ms, so the
     * queue always drains and this loop ends. */
    while (rd_kafka_outq_len(ctx.rk) > 0)
        rd_kafka_flush(ctx.rk, 1000);
    status = produce_report(&ctx);
out:
    fflush(stdout);
    if (ctx.rk)
        rd_kafka_destroy(ctx.rk);
    buf_free(&input);
    options_list_free(&set.props);
    options_list_free(&set.headers);
    options_state_free(&st);
    return status;
}
