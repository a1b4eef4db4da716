/*
 * kafka_fixture.c: the tests' mock Kafka cluster and topic reader
 * (kafka_fixture.h).
 *
 * Data flow: kafka_fixture_new() creates a producer handle and the mock
 * cluster inside it (librdkafka runs the brokers on its own threads);
 * kafka_fixture_topic_create() adds a topic and remembers its partition
 * count; a read creates a consumer on the bootstrap string, assigns
 * partitions 0..count-1 at RD_KAFKA_OFFSET_BEGINNING, polls every 100 ms
 * until enough records came or the deadline passed, hands each record to
 * the callback, and closes the consumer.
 *
 * Threads: the fixture is used by the thread that owns it (a test's
 * setup, body and teardown); only kafka_fixture_bootstraps() and
 * kafka_fixture_header() may be called elsewhere.
 */
#include "tests/kafka_fixture.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"

/* A poll period short enough to notice the deadline promptly, in ms. */
#define KFX_POLL_MS 100

typedef struct kfx_topic {
    char *name; /* Owned. */
    int partitions;
} kfx_topic;

struct kafka_fixture {
    rd_kafka_t *rk; /* Only for the mock cluster's book keeping. */
    rd_kafka_mock_cluster_t *mock;
    kfx_topic topics[KAFKA_FIXTURE_MAX_TOPICS];
    int n_topics;
};

kafka_fixture *kafka_fixture_new(int brokers, char *errstr, size_t errstr_size)
{
    kafka_fixture *kfx;
    rd_kafka_conf_t *conf;

    if (brokers < 1) {
        snprintf(errstr, errstr_size,
                 "kafka fixture: brokers is %d, must be 1 or more", brokers);
        return NULL;
    }
    kfx = calloc(1, sizeof(*kfx));
    if (!kfx) {
        snprintf(errstr, errstr_size, "kafka fixture: out of memory");
        return NULL;
    }
    conf = rd_kafka_conf_new();
    /* rd_kafka_new() takes conf on success only. */
    kfx->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, errstr_size);
    if (!kfx->rk) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    kfx->mock = rd_kafka_mock_cluster_new(kfx->rk, brokers);
    if (!kfx->mock) {
        snprintf(errstr, errstr_size,
                 "kafka fixture: cannot create a mock cluster of %d brokers",
                 brokers);
        goto fail;
    }
    return kfx;

fail:
    kafka_fixture_destroy(kfx);
    return NULL;
}

void kafka_fixture_destroy(kafka_fixture *kfx)
{
    if (!kfx)
        return;
    if (kfx->mock)
        rd_kafka_mock_cluster_destroy(kfx->mock);
    if (kfx->rk)
        rd_kafka_destroy(kfx->rk);
    for (int i = 0; i < kfx->n_topics; i++)
        free(kfx->topics[i].name);
    free(kfx);
}

const char *kafka_fixture_bootstraps(const kafka_fixture *kfx)
{
    return rd_kafka_mock_cluster_bootstraps(kfx->mock);
}

rd_kafka_mock_cluster_t *kafka_fixture_mock(kafka_fixture *kfx)
{
    return kfx->mock;
}

herald_err kafka_fixture_topic_create(kafka_fixture *kfx, const char *topic,
                                      int partitions, char *errstr,
                                      size_t errstr_size)
{
    rd_kafka_resp_err_t err;
    char *name;

    if (!topic || !*topic || partitions < 1) {
        snprintf(errstr, errstr_size,
                 "kafka fixture: topic needs a name and 1 or more "
                 "partitions (got %d)",
                 partitions);
        return HERALD_ERR_INVALID;
    }
    if (kfx->n_topics == KAFKA_FIXTURE_MAX_TOPICS) {
        snprintf(errstr, errstr_size,
                 "kafka fixture: topic %s: already %d topics", topic,
                 KAFKA_FIXTURE_MAX_TOPICS);
        return HERALD_ERR_FULL;
    }
    name = strdup(topic);
    if (!name) {
        snprintf(errstr, errstr_size, "kafka fixture: out of memory");
        return HERALD_ERR_NOMEM;
    }
    err = rd_kafka_mock_topic_create(kfx->mock, topic, partitions, 1);
    if (err) {
        snprintf(errstr, errstr_size, "kafka fixture: topic %s: %s", topic,
                 rd_kafka_err2str(err));
        free(name);
        return HERALD_ERR_KAFKA;
    }
    kfx->topics[kfx->n_topics].name = name;
    kfx->topics[kfx->n_topics].partitions = partitions;
    kfx->n_topics++;
    return HERALD_OK;
}

/* The partition count of a topic the fixture created, or 0. */
static int kfx_partitions(const kafka_fixture *kfx, const char *topic)
{
    for (int i = 0; i < kfx->n_topics; i++) {
        if (strcmp(kfx->topics[i].name, topic) == 0)
            return kfx->topics[i].partitions;
    }
    return 0;
}

/* A consumer on the fixture that joins no group and commits nothing. */
static rd_kafka_t *kfx_consumer_new(kafka_fixture *kfx, char *errstr,
                                    size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *c;

    /* group.id is required by the consumer API even with assign(). */
    if (rd_kafka_conf_set(conf, "bootstrap.servers",
                          kafka_fixture_bootstraps(kfx), errstr,
                          errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "group.id", "kafka-fixture", errstr,
                          errstr_size) != RD_KAFKA_CONF_OK ||
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr,
                          errstr_size) != RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, errstr_size);
    if (!c) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(c);
    return c;
}

int kafka_fixture_read_each(kafka_fixture *kfx, const char *topic, int max,
                            int timeout_ms, kafka_fixture_record_cb cb,
                            void *opaque, char *errstr, size_t errstr_size)
{
    int partitions = kfx_partitions(kfx, topic);
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_resp_err_t err;
    rd_kafka_t *c;
    int64_t deadline = herald_now_ms() + timeout_ms;
    int n = 0;

    if (partitions == 0) {
        snprintf(errstr, errstr_size,
                 "kafka fixture: topic %s was not created by the fixture",
                 topic);
        return -1;
    }
    c = kfx_consumer_new(kfx, errstr, errstr_size);
    if (!c)
        return -1;
    parts = rd_kafka_topic_partition_list_new(partitions);
    for (int p = 0; p < partitions; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    err = rd_kafka_assign(c, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (err) {
        snprintf(errstr, errstr_size, "kafka fixture: assign %s: %s", topic,
                 rd_kafka_err2str(err));
        n = -1;
        goto done;
    }
    while (n < max && herald_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, KFX_POLL_MS);

        if (!m)
            continue;
        if (!m->err)
            cb(m, n++, opaque);
        rd_kafka_message_destroy(m);
    }

done:
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
    return n;
}

/* A NUL-terminated copy of len bytes at p, or NULL for NULL p. */
static char *kfx_copy(const void *p, size_t len, bool *failed)
{
    char *s;

    if (!p)
        return NULL;
    s = malloc(len + 1);
    if (!s) {
        *failed = true;
        return NULL;
    }
    memcpy(s, p, len);
    s[len] = '\0';
    return s;
}

/* Where kafka_fixture_read() copies to. */
typedef struct kfx_copy_state {
    kafka_fixture_record *recs;
    bool failed; /* A copy ran out of memory. */
} kfx_copy_state;

static void kfx_copy_record(const rd_kafka_message_t *m, int index,
                            void *opaque)
{
    kfx_copy_state *st = opaque;
    kafka_fixture_record *rec = &st->recs[index];
    rd_kafka_headers_t *hdrs = NULL;

    memset(rec, 0, sizeof(*rec));
    rec->partition = m->partition;
    rec->offset = m->offset;
    rec->key = kfx_copy(m->key, m->key_len, &st->failed);
    rec->key_len = m->key ? m->key_len : 0;
    rec->value = kfx_copy(m->payload, m->len, &st->failed);
    rec->len = m->payload ? m->len : 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        hdrs)
        rec->headers = rd_kafka_headers_copy(hdrs);
}

int kafka_fixture_read(kafka_fixture *kfx, const char *topic,
                       kafka_fixture_record *recs, int max, int timeout_ms,
                       char *errstr, size_t errstr_size)
{
    kfx_copy_state st = {recs, false};
    int n;

    n = kafka_fixture_read_each(kfx, topic, max, timeout_ms, kfx_copy_record,
                                &st, errstr, errstr_size);
    if (n > 0 && st.failed) {
        kafka_fixture_records_free(recs, n);
        snprintf(errstr, errstr_size,
                 "kafka fixture: out of memory copying records of %s", topic);
        return -1;
    }
    return n;
}

void kafka_fixture_records_free(kafka_fixture_record *recs, int n)
{
    for (int i = 0; i < n; i++) {
        free(recs[i].key);
        free(recs[i].value);
        if (recs[i].headers)
            rd_kafka_headers_destroy(recs[i].headers);
        memset(&recs[i], 0, sizeof(recs[i]));
    }
}

bool kafka_fixture_header(const rd_kafka_headers_t *hdrs, const char *name,
                          char *out, size_t out_size)
{
    const void *v;
    size_t len;

    out[0] = '\0';
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &len))
        return false;
    snprintf(out, out_size, "%.*s", (int)len, v ? (const char *)v : "");
    return true;
}
