/*
 * topic_reader.c: read a topic's partitions from a start offset to the end
 * offsets seen at the start, assign-only (see topic_reader.h).
 *
 * Data flow: admin_group_offsets() (low and high watermark and committed
 * offset per partition) -> end[partition] = high watermark -> a consumer
 * handle -> rd_kafka_assign() of the partitions with records from their
 * start -> topic_reader_next(): poll, hand records before the end offset
 * to the caller, mark a partition done at its last record, at a record
 * past its end (written after the start) or at its end-of-partition
 * event, and report END once every assigned partition is done.
 *
 * Threads: the thread that created the reader owns it and its rd_kafka_t.
 */
#include "tools/topic_reader.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/admin.h"

struct topic_reader {
    rd_kafka_t *rk;
    const char *topic;     /* Borrowed from the creator. */
    int64_t *end;          /* End offset per partition, at the start. */
    bool *done;            /* Per partition: reached its end. */
    int n_parts;           /* Entries of end and done. */
    int left;              /* Assigned partitions not done. */
    int64_t last_progress; /* Monotonic ms of the last message. */
    rd_kafka_message_t *m; /* Handed out by the last next(); owned. */
};

/* Assign-only consumer: no auto commit, no stored offsets, EOF events. */
static const char *const topic_reader_defaults[] = {
    "enable.auto.commit=false", "enable.auto.offset.store=false",
    "auto.offset.reset=earliest", "enable.partition.eof=true"};

#define TOPIC_READER_N_DEFAULTS                                                \
    (sizeof(topic_reader_defaults) / sizeof(topic_reader_defaults[0]))

/* Creates the consumer handle into tr->rk. */
static herald_err topic_reader_handle_new(topic_reader *tr, const char *brokers,
                                          const char *const *props,
                                          size_t n_props, const char *group,
                                          bool from_committed, char *errstr,
                                          size_t errstr_size)
{
    const char *defaults[TOPIC_READER_N_DEFAULTS + 1];
    size_t n_defaults = TOPIC_READER_N_DEFAULTS;
    char group_kv[512];
    rd_kafka_conf_t *conf;

    for (size_t i = 0; i < TOPIC_READER_N_DEFAULTS; i++)
        defaults[i] = topic_reader_defaults[i];
    if (!from_committed) {
        /* A default: the user's -X group.id replaces it. */
        snprintf(group_kv, sizeof group_kv, "group.id=%s", group);
        defaults[n_defaults++] = group_kv;
    }
    conf = admin_conf_new(brokers, defaults, n_defaults, props, n_props, errstr,
                          errstr_size);
    if (!conf)
        return HERALD_ERR_CONFIG;
    if (from_committed) {
        /* After the user's properties: the group that commits wins. */
        snprintf(group_kv, sizeof group_kv, "%s", group);
        if (rd_kafka_conf_set(conf, "group.id", group_kv, errstr,
                              errstr_size) != RD_KAFKA_CONF_OK) {
            rd_kafka_conf_destroy(conf);
            return HERALD_ERR_CONFIG;
        }
    }
    tr->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!tr->rk) {
        rd_kafka_conf_destroy(conf);
        return HERALD_ERR_KAFKA;
    }
    /* conf belongs to rk now. */
    rd_kafka_poll_set_consumer(tr->rk);
    return HERALD_OK;
}

topic_reader *topic_reader_new(const char *brokers, const char *const *props,
                               size_t n_props, const char *topic,
                               const char *group, bool from_committed,
                               herald_err *err, char *errstr,
                               size_t errstr_size)
{
    admin_partition_offsets *offs = NULL;
    rd_kafka_topic_partition_list_t *l = NULL;
    topic_reader *tr = NULL;
    size_t n = 0;
    herald_err rc = HERALD_ERR_NOMEM;

    tr = calloc(1, sizeof(*tr));
    if (!tr) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    tr->topic = topic;
    /*
     * Which of the two steps a bad configuration fails first decides the
     * error a user sees; each tool keeps the order it had before this
     * module: a reader from the low watermark (dlq show) creates its
     * handle first, a group's reader (dlq replay) reads the offsets first.
     */
    if (!from_committed) {
        rc = topic_reader_handle_new(tr, brokers, props, n_props, group,
                                     from_committed, errstr, errstr_size);
        if (rc != HERALD_OK)
            goto out;
    }
    rc =
        admin_group_offsets(brokers, props, n_props, group, topic, &offs, &n,
                            TOPIC_READER_KAFKA_TIMEOUT_MS, errstr, errstr_size);
    if (rc != HERALD_OK)
        goto out;
    tr->end = calloc(n ? n : 1, sizeof(*tr->end));
    tr->done = calloc(n ? n : 1, sizeof(*tr->done));
    l = rd_kafka_topic_partition_list_new(n ? (int)n : 1);
    if (!tr->end || !tr->done || !l) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = HERALD_ERR_NOMEM;
        goto out;
    }
    if (from_committed) {
        rc = topic_reader_handle_new(tr, brokers, props, n_props, group,
                                     from_committed, errstr, errstr_size);
        if (rc != HERALD_OK)
            goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int32_t p = offs[i].partition;
        int64_t start = offs[i].low;

        if (p < 0 || (size_t)p >= n)
            continue; /* Partitions are numbered 0..n-1. */
        if (from_committed && offs[i].committed >= 0)
            start = offs[i].committed;
        tr->end[p] = offs[i].high;
        if (p + 1 > tr->n_parts)
            tr->n_parts = p + 1;
        if (start >= offs[i].high)
            continue; /* Nothing to read: not assigned. */
        rd_kafka_topic_partition_list_add(l, topic, p)->offset = start;
        tr->left++;
    }
    if (tr->left > 0) {
        rd_kafka_resp_err_t rerr = rd_kafka_assign(tr->rk, l);

        if (rerr) {
            snprintf(errstr, errstr_size, "assign %s: %s", topic,
                     rd_kafka_err2str(rerr));
            rc = HERALD_ERR_KAFKA;
            goto out;
        }
    }
    tr->last_progress = herald_now_ms();
out:
    if (l)
        rd_kafka_topic_partition_list_destroy(l);
    free(offs);
    if (rc != HERALD_OK) {
        topic_reader_destroy(tr);
        tr = NULL;
    }
    if (err)
        *err = rc;
    return tr;
}

/* Marks partition p done (once). */
static void topic_reader_finish(topic_reader *tr, int32_t p)
{
    if (!tr->done[p]) {
        tr->done[p] = true;
        tr->left--;
    }
}

topic_reader_event topic_reader_next(topic_reader *tr,
                                     const rd_kafka_message_t **m)
{
    if (tr->m) {
        rd_kafka_message_destroy(tr->m);
        tr->m = NULL;
    }
    while (tr->left > 0) {
        rd_kafka_message_t *msg =
            rd_kafka_consumer_poll(tr->rk, TOPIC_READER_POLL_MS);

        if (!msg) {
            if (herald_now_ms() - tr->last_progress > TOPIC_READER_STALL_MS)
                return TOPIC_READER_STALLED;
            continue;
        }
        tr->last_progress = herald_now_ms();
        if (msg->partition < 0 || msg->partition >= tr->n_parts) {
            if (!msg->err) {
                rd_kafka_message_destroy(msg);
                continue;
            }
            tr->m = msg;
            *m = msg;
            return TOPIC_READER_NOTICE;
        }
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            topic_reader_finish(tr, msg->partition);
        } else if (msg->err) {
            tr->m = msg;
            *m = msg;
            return TOPIC_READER_ERROR;
        } else if (msg->offset >= tr->end[msg->partition]) {
            /* Written after the start: left for the next run. */
            topic_reader_finish(tr, msg->partition);
        } else {
            if (msg->offset + 1 >= tr->end[msg->partition])
                topic_reader_finish(tr, msg->partition);
            tr->m = msg;
            *m = msg;
            return TOPIC_READER_RECORD;
        }
        rd_kafka_message_destroy(msg);
    }
    return TOPIC_READER_END;
}

herald_err topic_reader_commit(topic_reader *tr, int32_t partition,
                               int64_t offset, char *errstr, size_t errstr_size)
{
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_resp_err_t rerr;

    l = rd_kafka_topic_partition_list_new(1);
    if (!l) {
        snprintf(errstr, errstr_size, "out of memory");
        return HERALD_ERR_NOMEM;
    }
    rd_kafka_topic_partition_list_add(l, tr->topic, partition)->offset = offset;
    rerr = rd_kafka_commit(tr->rk, l, 0);
    rd_kafka_topic_partition_list_destroy(l);
    if (rerr) {
        snprintf(errstr, errstr_size, "%s", rd_kafka_err2str(rerr));
        return HERALD_ERR_KAFKA;
    }
    return HERALD_OK;
}

void topic_reader_destroy(topic_reader *tr)
{
    if (!tr)
        return;
    if (tr->m)
        rd_kafka_message_destroy(tr->m);
    if (tr->rk) {
        /* Never joined a group: closing commits nothing. */
        rd_kafka_consumer_close(tr->rk);
        rd_kafka_destroy(tr->rk);
    }
    free(tr->end);
    free(tr->done);
    free(tr);
}
