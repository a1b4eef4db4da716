/*
 * replay.c: `herald dlq replay` (see replay.h for behaviour and output).
 *
 * Data flow: flags -> targets_load() -> parallel_new() -> topic_reader_new()
 * (end offsets and the group's committed offsets of the dead-letter topic;
 * assigns the partitions that have records left) -> per record from
 * topic_reader_next(): headers ->
 * filters -> alert_batch_parse() -> publish_to_multiple() or
 * publish_to_all() per alert -> synchronous commit of offset + 1 -> stop
 * when every partition reached its end offset of the start, or at the
 * first record that fails again.
 *
 * Threads: the calling thread owns the topic_reader (its consumer
 * rd_kafka_t) and polls it;
 * the publisher runs its own transport threads behind the blocking
 * publish calls.
 */
#include "tools/replay.h"

#include <ctype.h>
#include <librdkafka/rdkafka.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/alert.h"
#include "core/log.h"
#include "core/options.h"
#include "publishers/parallel.h"
#include "publishers/targets.h"
#include "tools/topic_reader.h"

/* Options and counters of one run. */
typedef struct replay_ctx {
    const char *brokers;
    const char *topic;
    const char *group;
    const char *only_target;
    const char *only_reason;
    bool has_since, has_until;
    int64_t since_ms, until_ms;
    bool dry_run;
    int64_t deadline_ms; /* Publish deadline per alert. */
    target_set *set;
    const char *targets_path;
    parallel_publisher *pp;
    topic_reader *tr;
    long read, replayed, delivered, failed, skipped, unreplayable;
} replay_ctx;

/* What the option table fills: the options of the run context, and what
 * is parsed further (times) or passed on (properties, log level). */
typedef struct replay_settings {
    replay_ctx ctx;
    const char *since;  /* --since and --since-ms. */
    const char *until;  /* --until and --until-ms. */
    options_list props; /* -X and HERALD_KAFKA_*. */
    int level;          /* log_level. */
} replay_settings;

#define REPLAY_FIELD(f) offsetof(replay_settings, f)

/* The one option table of `herald dlq replay`; defaults in replay_main(). */
static const options_entry replay_entries[] = {
    OPTIONS_ENTRY_BROKERS(replay_settings, ctx.brokers),
    {.name = "dlq-topic",
     .short_name = 'd',
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(ctx.topic),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "dead-letter topic (default $HERALD_TOPIC.dlq)"},
    /* Not HERALD_GROUP: that names the group of `herald run`, and a
     * replay must never commit for it. */
    {.name = "group",
     .short_name = 'g',
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(ctx.group),
     .flags = OPTIONS_REQUIRED,
     .arg = "ID",
     .env = "HERALD_REPLAY_GROUP",
     .help = "replay consumer group; with filters the default is\n"
             "herald-replay.target=X... so each filter keeps its\n"
             "own position (records outside the filters are\n"
             "committed for the group)"},
    {.name = "targets",
     .short_name = 'c',
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(ctx.targets_path),
     .flags = OPTIONS_REQUIRED,
     .arg = "FILE",
     .help = "targets.yaml"},
    {.name = "target",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(ctx.only_target),
     .arg = "NAME",
     .help = "only records for this target"},
    {.name = "reason",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(ctx.only_reason),
     .arg = "KIND",
     .help = "only records with this reason kind"},
    {.name = "since",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(since),
     .arg = "TIME",
     .help = "only records dead-lettered at or after TIME\n"
             "(RFC 3339 or epoch ms)"},
    {.name = "since-ms",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(since),
     .arg = "MS",
     .help = "same, in milliseconds since the epoch"},
    {.name = "until",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(until),
     .arg = "TIME",
     .help = "only records dead-lettered before TIME"},
    {.name = "until-ms",
     .type = OPTIONS_STRING,
     .offset = REPLAY_FIELD(until),
     .arg = "MS",
     .help = "same, in milliseconds since the epoch"},
    {.name = "deadline-ms",
     .type = OPTIONS_MS,
     .offset = REPLAY_FIELD(ctx.deadline_ms),
     .arg = "MS",
     .min = 1,
     .max = PUBLISH_DEADLINE_MAX_MS,
     .help = "publish deadline per alert"},
    {.name = "dry-run",
     .type = OPTIONS_BOOL,
     .offset = REPLAY_FIELD(ctx.dry_run),
     .help = "print what would be replayed; commit nothing"},
    OPTIONS_ENTRY_PROPERTY(replay_settings, props),
    OPTIONS_ENTRY_LOG_LEVEL(replay_settings, level, 0),
};

static const options_spec replay_spec = {
    .command = "herald dlq replay",
    .usage =
        "Usage: herald dlq replay --brokers LIST --dlq-topic NAME\n"
        "           --targets FILE [options]\n"
        "\n"
        "Re-publishes dead-letter records to their recorded target (or to\n"
        "all matching targets when none is recorded) and commits each one\n"
        "for the group, so the same group never replays a record twice.\n"
        "Stops at the first record that fails again, without committing "
        "it.\n",
    .footer = "Exit status: 0 done, 1 a record failed or Kafka error, 2 "
              "usage or\nconfiguration error.\n",
    OPTIONS_TABLE(replay_entries),
    .max_args = 0,
};

/* Parses exactly n digits at *p into *out and advances *p. */
static bool replay_digits(const char **p, int n, int *out)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

herald_err replay_time_parse(const char *text, int64_t *ms)
{
    const char *p = text;
    struct tm tm;
    int year, mon, day, hh, mm, ss, frac_ms = 0;
    int64_t secs;
    char *end;

    if (!text || !*text || !ms)
        return HERALD_ERR_PARSE;
    /* A plain integer: milliseconds since the epoch. */
    {
        long long v = strtoll(text, &end, 10);

        if (*end == '\0' && end != text) {
            *ms = v;
            return HERALD_OK;
        }
    }
    /* RFC 3339 section 5.6: full-date "T" full-time. */
    if (!replay_digits(&p, 4, &year) || *p++ != '-' ||
        !replay_digits(&p, 2, &mon) || *p++ != '-' ||
        !replay_digits(&p, 2, &day) || (*p != 'T' && *p != 't' && *p != ' '))
        return HERALD_ERR_PARSE;
    p++;
    if (!replay_digits(&p, 2, &hh) || *p++ != ':' ||
        !replay_digits(&p, 2, &mm) || *p++ != ':' || !replay_digits(&p, 2, &ss))
        return HERALD_ERR_PARSE;
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mm > 59 ||
        ss > 60)
        return HERALD_ERR_PARSE;
    if (*p == '.') {
        int scale = 100;

        p++;
        if (!isdigit((unsigned char)*p))
            return HERALD_ERR_PARSE;
        while (isdigit((unsigned char)*p)) {
            frac_ms += (*p - '0') * scale;
            scale /= 10;
            p++;
        }
    }
    memset(&tm, 0, sizeof tm);
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mm;
    tm.tm_sec = ss;
    secs = (int64_t)timegm(&tm);
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '+' ? 1 : -1;
        int oh, om;

        p++;
        if (!replay_digits(&p, 2, &oh) || *p++ != ':' ||
            !replay_digits(&p, 2, &om) || oh > 23 || om > 59)
            return HERALD_ERR_PARSE;
        /* Local time = UTC + offset, so UTC = local - offset. */
        secs -= sign * (oh * 3600 + om * 60);
    } else {
        return HERALD_ERR_PARSE;
    }
    if (*p != '\0')
        return HERALD_ERR_PARSE;
    *ms = secs * 1000 + frac_ms;
    return HERALD_OK;
}

/* Copies header name of m into out ("" and false when absent). */
static bool replay_header(const rd_kafka_message_t *m, const char *name,
                          char *out, size_t out_size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v = NULL;
    size_t len = 0;

    out[0] = '\0';
    if (rd_kafka_message_headers(m, &h) || !h ||
        rd_kafka_header_get_last(h, name, &v, &len))
        return false;
    snprintf(out, out_size, "%.*s", (int)len, v ? (const char *)v : "");
    return true;
}

/* Commits offset + 1 of m for the group, synchronously. */
static herald_err replay_commit(replay_ctx *ctx, const rd_kafka_message_t *m)
{
    char errstr[512];

    if (ctx->dry_run)
        return HERALD_OK;
    if (topic_reader_commit(ctx->tr, m->partition, m->offset + 1, errstr,
                            sizeof errstr) != HERALD_OK) {
        fprintf(stderr,
                "herald dlq replay: commit of %s [%d] offset %lld for group "
                "%s failed: %s\n",
                ctx->topic, (int)m->partition, (long long)m->offset + 1,
                ctx->group, errstr);
        return HERALD_ERR_KAFKA;
    }
    return HERALD_OK;
}

/*
 * Re-publishes every alert of batch to tgt (or to all targets when tgt is
 * NULL). Returns true when every alert was delivered to every target it
 * was sent to; fills why otherwise.
 */
static bool replay_publish(replay_ctx *ctx, const alert_batch *batch,
                           target *tgt, char *why, size_t why_size)
{
    publish_opts opts;
    bool ok = true;

    publish_opts_default(&opts);
    opts.deadline_ms = ctx->deadline_ms;
    for (size_t i = 0; i < batch->n && ok; i++) {
        publish_result res;
        herald_err err;

        publish_result_init(&res);
        if (tgt)
            err = publish_to_multiple(ctx->pp, &batch->alerts[i], &tgt, 1,
                                      &opts, &res);
        else
            err = publish_to_all(ctx->pp, &batch->alerts[i],
                                 targets_list(ctx->set),
                                 targets_count(ctx->set), &opts, &res);
        if (err != HERALD_OK || res.failed > 0) {
            const char *detail = "";

            for (size_t t = 0; t < res.n_targets; t++) {
                if (res.targets[t].outcome != PUBLISH_OUTCOME_DELIVERED &&
                    res.targets[t].error[0]) {
                    detail = res.targets[t].error;
                    break;
                }
            }
            snprintf(
                why, why_size, "alert %s: %s%s%s", batch->alerts[i].fingerprint,
                err == HERALD_OK ? "some targets failed" : herald_err2str(err),
                detail[0] ? ": " : "", detail);
            ok = false;
        }
        publish_result_free(&res);
    }
    return ok;
}

/*
 * Handles one dead-letter record. Returns HERALD_OK to go on, or an error
 * to stop the run (the record failed again, or its commit failed).
 */
static herald_err replay_record(replay_ctx *ctx, const rd_kafka_message_t *m)
{
    char reason[64], tname[256], src_topic[256], src_part[24], src_off[24];
    char tbuf[32], why[512], errstr[512];
    alert_batch batch;
    alert_reason areason = ALERT_REASON_NONE;
    alert_limits lim;
    target *tgt = NULL;
    int64_t when;
    rd_kafka_timestamp_type_t tstype;

    ctx->read++;
    replay_header(m, "herald-reason", reason, sizeof reason);
    replay_header(m, "herald-target", tname, sizeof tname);
    replay_header(m, "herald-source-topic", src_topic, sizeof src_topic);
    replay_header(m, "herald-source-partition", src_part, sizeof src_part);
    replay_header(m, "herald-source-offset", src_off, sizeof src_off);
    if (replay_header(m, "herald-dlq-time-ms", tbuf, sizeof tbuf))
        when = strtoll(tbuf, NULL, 10);
    else
        when = rd_kafka_message_timestamp(m, &tstype);
    printf("%s [%d] @%lld (source %s [%s] @%s, reason %s, target %s): ",
           ctx->topic, (int)m->partition, (long long)m->offset,
           src_topic[0] ? src_topic : "?", src_part[0] ? src_part : "?",
           src_off[0] ? src_off : "?", reason[0] ? reason : "?",
           tname[0] ? tname : "(all)");

    if ((ctx->only_target && strcmp(ctx->only_target, tname) != 0) ||
        (ctx->only_reason && strcmp(ctx->only_reason, reason) != 0) ||
        (ctx->has_since && when < ctx->since_ms) ||
        (ctx->has_until && when >= ctx->until_ms)) {
        ctx->skipped++;
        printf("skipped by filter\n");
        return replay_commit(ctx, m);
    }

    alert_limits_default(&lim);
    /* The dead-letter topic may hold a value larger than the default
     * limit (it was dead-lettered for that); replay what parses. */
    memset(&batch, 0, sizeof batch);
    if (alert_batch_parse(m->payload, m->payload ? m->len : 0, &lim, &batch,
                          &areason, errstr, sizeof errstr) != HERALD_OK) {
        ctx->unreplayable++;
        printf("unreplayable: %s (%s)\n", errstr, alert_reason_name(areason));
        alert_batch_free(&batch);
        return replay_commit(ctx, m);
    }
    if (tname[0]) {
        tgt = targets_find(ctx->set, tname);
        if (!tgt) {
            ctx->failed++;
            printf("failed: target %s is not in %s\n", tname,
                   ctx->targets_path);
            alert_batch_free(&batch);
            return HERALD_ERR_NOT_FOUND;
        }
    }
    if (ctx->dry_run) {
        ctx->replayed++;
        printf("would replay %zu alert(s)\n", batch.n);
        alert_batch_free(&batch);
        return HERALD_OK;
    }
    ctx->replayed++;
    fflush(stdout);
    if (!replay_publish(ctx, &batch, tgt, why, sizeof why)) {
        ctx->failed++;
        printf("failed: %s\n", why);
        alert_batch_free(&batch);
        return HERALD_ERR_ALL_FAILED;
    }
    ctx->delivered++;
    printf("delivered %zu alert(s)\n", batch.n);
    alert_batch_free(&batch);
    return replay_commit(ctx, m);
}

/* Consumes until every assigned partition reached its end offset. */
static int replay_consume(replay_ctx *ctx)
{
    for (;;) {
        const rd_kafka_message_t *m = NULL;
        topic_reader_event ev = topic_reader_next(ctx->tr, &m);

        switch (ev) {
        case TOPIC_READER_END: return 0;
        case TOPIC_READER_NOTICE:
            LOG_WARN("replay", NULL, "consumer: %s",
                     rd_kafka_message_errstr(m));
            break;
        case TOPIC_READER_STALLED:
            fprintf(stderr,
                    "herald dlq replay: no progress for %d ms; "
                    "stopping\n",
                    TOPIC_READER_STALL_MS);
            return 1;
        case TOPIC_READER_ERROR:
            fprintf(stderr, "herald dlq replay: %s [%d]: %s\n", ctx->topic,
                    (int)m->partition, rd_kafka_message_errstr(m));
            return 1;
        case TOPIC_READER_RECORD: {
            herald_err err = replay_record(ctx, m);

            fflush(stdout);
            if (err != HERALD_OK)
                return 1;
            break;
        }
        }
    }
}

/* Parses --since/--until into ctx. False (message printed) on error. */
static bool replay_times(replay_ctx *ctx, const replay_settings *set)
{
    const char *text[2] = {set->since, set->until};
    int64_t *ms[2] = {&ctx->since_ms, &ctx->until_ms};
    bool *has[2] = {&ctx->has_since, &ctx->has_until};

    for (int i = 0; i < 2; i++) {
        if (!text[i])
            continue;
        if (replay_time_parse(text[i], ms[i]) != HERALD_OK) {
            fprintf(stderr,
                    "herald dlq replay: %s: expected an RFC 3339 "
                    "time or milliseconds since the epoch\n",
                    text[i]);
            return false;
        }
        *has[i] = true;
    }
    return true;
}

/*
 * The group's position is a cursor over the whole topic: records that do
 * not match the filters are committed too. A filtered replay therefore
 * gets a group of its own by default, named after its filters, so that
 * replaying target c never moves the position of a later replay of
 * target b past b's records. Writes it into out and points ctx at it.
 */
static void replay_filter_group(replay_ctx *ctx, char *out, size_t out_size)
{
    size_t len;

    if (!ctx->only_target && !ctx->only_reason && !ctx->has_since &&
        !ctx->has_until)
        return;
    snprintf(out, out_size, "herald-replay%s%s%s%s",
             ctx->only_target ? ".target=" : "",
             ctx->only_target ? ctx->only_target : "",
             ctx->only_reason ? ".reason=" : "",
             ctx->only_reason ? ctx->only_reason : "");
    if (ctx->has_since || ctx->has_until) {
        len = strlen(out);
        snprintf(out + len, out_size - len, ".since=%lld.until=%lld",
                 ctx->has_since ? (long long)ctx->since_ms : 0LL,
                 ctx->has_until ? (long long)ctx->until_ms : 0LL);
    }
    ctx->group = out;
}

int replay_main(int argc, char **argv)
{
    replay_settings set;
    options_state st;
    replay_ctx ctx;
    char topic_default[512];
    char group_default[768];
    char errstr[1024];
    herald_err err;
    int status;

    memset(&set, 0, sizeof set);
    set.ctx.topic =
        options_dlq_topic_default(topic_default, sizeof topic_default);
    set.ctx.group = "herald-replay";
    set.ctx.deadline_ms = 30000;
    set.level = LOG_LEVEL_WARN;
    status = options_cli(&replay_spec, argc, argv, &set, &st);
    ctx = set.ctx;
    if (status >= 0)
        goto out;
    status = 2;
    if (!replay_times(&ctx, &set))
        goto out;
    log_init((log_level)set.level, LOG_FORMAT_AUTO);
    /* A group given (flag or environment) is kept as is. */
    if (options_source_of(&replay_spec, &st, "group") == OPTIONS_SRC_DEFAULT)
        replay_filter_group(&ctx, group_default, sizeof group_default);

    err = targets_load(ctx.targets_path, &ctx.set, errstr, sizeof errstr);
    if (err != HERALD_OK) {
        fprintf(stderr, "herald dlq replay: %s\n", errstr);
        goto out;
    }
    if (!ctx.dry_run) {
        ctx.pp = parallel_new(NULL, NULL, errstr, sizeof errstr);
        if (!ctx.pp) {
            fprintf(stderr, "herald dlq replay: %s\n", errstr);
            status = 1;
            goto out;
        }
    }
    ctx.tr = topic_reader_new(ctx.brokers, (const char **)set.props.items,
                              set.props.n, ctx.topic, ctx.group, true, &err,
                              errstr, sizeof errstr);
    if (!ctx.tr) {
        fprintf(stderr, "herald dlq replay: %s\n", errstr);
        status = err == HERALD_ERR_INVALID || err == HERALD_ERR_CONFIG ? 2 : 1;
        goto out;
    }
    status = replay_consume(&ctx);
    printf("replay of %s by group %s%s: read %ld, replayed %ld, delivered "
           "%ld, failed %ld, skipped by filter %ld, unreplayable %ld\n",
           ctx.topic, ctx.group, ctx.dry_run ? " (dry run)" : "", ctx.read,
           ctx.replayed, ctx.delivered, ctx.failed, ctx.skipped,
           ctx.unreplayable);
out:
    fflush(stdout);
    topic_reader_destroy(ctx.tr);
    parallel_destroy(ctx.pp);
    targets_release(ctx.set);
    options_list_free(&set.props);
    options_state_free(&st);
    return status;
}
