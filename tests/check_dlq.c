/*
 * check_dlq.c: tests of worker/dlq against librdkafka's in-process mock
 * cluster (rdkafka_mock.h): records keep key and value with every header,
 * a null value stays null, concurrent writers are all acknowledged, a
 * broker that is down gives HERALD_ERR_TIMEOUT, bad properties are refused,
 * and the metric counts records by reason.
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "worker/admin.h"
#include "worker/dlq.h"
#include "worker/log.h"
#include "worker/metrics.h"

#include "tests/tsan_thrd.h"

#define TOPIC "alerts.dlq"
#define PARTITIONS 3

static rd_kafka_t *mock_rk;
static rd_kafka_mock_cluster_t *mock;
static char bootstraps[256];

static void mock_setup(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];

    log_init(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    /* A handle only for the mock cluster's book keeping. */
    mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(mock_rk);
    mock = rd_kafka_mock_cluster_new(mock_rk, 1);
    ck_assert_ptr_nonnull(mock);
    snprintf(bootstraps, sizeof bootstraps, "%s",
             rd_kafka_mock_cluster_bootstraps(mock));
    ck_assert_int_eq(rd_kafka_mock_topic_create(mock, TOPIC, PARTITIONS, 1), 0);
}

static void mock_teardown(void)
{
    rd_kafka_mock_cluster_destroy(mock);
    rd_kafka_destroy(mock_rk);
    mock = NULL;
    mock_rk = NULL;
}

/* The consumer of consume_all(), destroyed by consume_done(). */
static rd_kafka_t *cons;

/*
 * Reads up to max messages from every partition of TOPIC from the
 * beginning, until max came or 10 s passed. Returns the count; msgs[] are
 * owned by the caller: rd_kafka_message_destroy() each, then call
 * consume_done() (a consumer cannot be destroyed while its messages live).
 */
static int consume_all(rd_kafka_message_t **msgs, int max)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *parts;
    rd_kafka_t *c;
    char err[256];
    int n = 0;
    int64_t deadline = admin_now_ms() + 10000;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps,
                                       err, sizeof err),
                     RD_KAFKA_CONF_OK);
    ck_assert_int_eq(
        rd_kafka_conf_set(conf, "group.id", "check-dlq", err, sizeof err),
        RD_KAFKA_CONF_OK);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    rd_kafka_poll_set_consumer(c);
    parts = rd_kafka_topic_partition_list_new(PARTITIONS);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_topic_partition_list_add(parts, TOPIC, p)->offset =
            RD_KAFKA_OFFSET_BEGINNING;
    ck_assert_int_eq(rd_kafka_assign(c, parts), 0);
    rd_kafka_topic_partition_list_destroy(parts);
    while (n < max && admin_now_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);

        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        msgs[n++] = m;
    }
    cons = c;
    return n;
}

static void consume_done(void)
{
    rd_kafka_consumer_close(cons);
    rd_kafka_destroy(cons);
    cons = NULL;
}

/* The value of header name of m as a string in out; false when absent. */
static bool header(const rd_kafka_message_t *m, const char *name, char *out,
                   size_t out_size)
{
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;

    if (rd_kafka_message_headers(m, &h) || !h)
        return false;
    if (rd_kafka_header_get_last(h, name, &v, &len))
        return false;
    snprintf(out, out_size, "%.*s", (int)len, (const char *)v);
    return true;
}

static void assert_header(const rd_kafka_message_t *m, const char *name,
                          const char *want)
{
    char got[512];

    ck_assert_msg(header(m, name, got, sizeof got), "header %s missing", name);
    ck_assert_str_eq(got, want);
}

START_TEST(test_record_headers_key_value)
{
    char errstr[512];
    const char *props[] = {"client.id=check-dlq"};
    dlq *d = dlq_new(bootstraps, TOPIC, props, 1, errstr, sizeof errstr);
    dlq_record rec = {0};
    rd_kafka_message_t *msgs[2];
    char val[64];
    int64_t before = admin_wall_ms();
    static const char value[] = "{\"status\":\"firing\",\"labels\":{}}";

    ck_assert_msg(d != NULL, "%s", errstr);
    ck_assert_str_eq(dlq_topic(d), TOPIC);
    rec.reason = "target_failed";
    rec.error = "HTTP 503 from receiver";
    rec.source_topic = "alerts";
    rec.source_partition = 4;
    rec.source_offset = 123456789012LL;
    rec.target = "slack-oncall";
    rec.http_status = 503;
    rec.attempts = 3;
    rec.first_attempt_ms = 1700000000000LL;
    rec.last_attempt_ms = 1700000001234LL;
    rec.key = "0123456789abcdef";
    rec.key_len = 16;
    rec.value = value;
    rec.value_len = strlen(value);
    ck_assert_int_eq(dlq_write(d, &rec, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    dlq_destroy(d);

    ck_assert_int_eq(consume_all(msgs, 1), 1);
    ck_assert_uint_eq(msgs[0]->key_len, 16);
    ck_assert_int_eq(memcmp(msgs[0]->key, "0123456789abcdef", 16), 0);
    ck_assert_uint_eq(msgs[0]->len, strlen(value));
    ck_assert_int_eq(memcmp(msgs[0]->payload, value, strlen(value)), 0);
    assert_header(msgs[0], "herald-reason", "target_failed");
    assert_header(msgs[0], "herald-error", "HTTP 503 from receiver");
    assert_header(msgs[0], "herald-source-topic", "alerts");
    assert_header(msgs[0], "herald-source-partition", "4");
    assert_header(msgs[0], "herald-source-offset", "123456789012");
    assert_header(msgs[0], "herald-target", "slack-oncall");
    assert_header(msgs[0], "herald-http-status", "503");
    assert_header(msgs[0], "herald-attempts", "3");
    assert_header(msgs[0], "herald-first-attempt-ms", "1700000000000");
    assert_header(msgs[0], "herald-last-attempt-ms", "1700000001234");
    assert_header(msgs[0], "herald-version", HERALD_VERSION);
    ck_assert(header(msgs[0], "herald-dlq-time-ms", val, sizeof val));
    ck_assert(strtoll(val, NULL, 10) >= before);
    ck_assert(strtoll(val, NULL, 10) <= admin_wall_ms());
    rd_kafka_message_destroy(msgs[0]);
    consume_done();
}
END_TEST

START_TEST(test_null_value_stays_null)
{
    char errstr[512];
    dlq *d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    dlq_record rec = {0};
    rd_kafka_message_t *msgs[2];
    char val[64];

    ck_assert_msg(d != NULL, "%s", errstr);
    rec.reason = "null_value";
    rec.error = "the message value is null";
    rec.source_topic = "alerts";
    rec.source_partition = 0;
    rec.source_offset = 7;
    ck_assert_int_eq(dlq_write(d, &rec, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    dlq_destroy(d);

    ck_assert_int_eq(consume_all(msgs, 1), 1);
    ck_assert_ptr_null(msgs[0]->payload);
    ck_assert_uint_eq(msgs[0]->len, 0);
    ck_assert_ptr_null(msgs[0]->key);
    /* Poison messages have no target header. */
    ck_assert(!header(msgs[0], "herald-target", val, sizeof val));
    assert_header(msgs[0], "herald-reason", "null_value");
    assert_header(msgs[0], "herald-http-status", "0");
    assert_header(msgs[0], "herald-first-attempt-ms", "0");
    rd_kafka_message_destroy(msgs[0]);
    consume_done();
}
END_TEST

#define WRITERS 4
#define WRITES_EACH 25

static void *writer_main(void *arg)
{
    dlq *d = arg;
    char errstr[512];
    long failures = 0;

    for (int i = 0; i < WRITES_EACH; i++) {
        char key[32];
        dlq_record rec = {0};

        snprintf(key, sizeof key, "k%d", i);
        rec.reason = "budget_exhausted";
        rec.source_topic = "alerts";
        rec.source_offset = i;
        rec.key = key;
        rec.key_len = strlen(key);
        rec.value = "x";
        rec.value_len = 1;
        if (dlq_write(d, &rec, 10000, errstr, sizeof errstr) != HERALD_OK)
            failures++;
    }
    return (void *)failures;
}

START_TEST(test_concurrent_writers)
{
    char errstr[512];
    dlq *d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    pthread_t th[WRITERS];
    rd_kafka_message_t *msgs[WRITERS * WRITES_EACH + 1];
    int n;

    ck_assert_msg(d != NULL, "%s", errstr);
    for (int i = 0; i < WRITERS; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, writer_main, d), 0);
    for (int i = 0; i < WRITERS; i++) {
        void *failures;

        pthread_join(th[i], &failures);
        ck_assert_int_eq((long)failures, 0);
    }
    dlq_destroy(d);
    n = consume_all(msgs, WRITERS * WRITES_EACH);
    ck_assert_int_eq(n, WRITERS * WRITES_EACH);
    for (int i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    consume_done();
}
END_TEST

START_TEST(test_timeout_when_broker_down)
{
    char errstr[512];
    dlq *d;
    dlq_record rec = {0};

    ck_assert_int_eq(rd_kafka_mock_broker_set_down(mock, 1), 0);
    d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    ck_assert_msg(d != NULL, "%s", errstr);
    rec.reason = "target_failed";
    rec.source_topic = "alerts";
    ck_assert_int_eq(dlq_write(d, &rec, 300, errstr, sizeof errstr),
                     HERALD_ERR_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(errstr, "may still be delivered"));
    /* The broker comes back: the abandoned record is delivered late and
     * destroy frees its waiter (the sanitizers check for leaks). */
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(mock, 1), 0);
    dlq_destroy(d);
}
END_TEST

START_TEST(test_invalid_arguments)
{
    char errstr[512];
    const char *bad_kv[] = {"linger.ms"};
    const char *unknown[] = {"no.such.property=1"};
    dlq *d;
    dlq_record rec = {0};

    ck_assert_ptr_null(
        dlq_new(bootstraps, TOPIC, bad_kv, 1, errstr, sizeof errstr));
    ck_assert_ptr_nonnull(strstr(errstr, "linger.ms"));
    ck_assert_ptr_null(
        dlq_new(bootstraps, TOPIC, unknown, 1, errstr, sizeof errstr));
    ck_assert_ptr_nonnull(strstr(errstr, "no.such.property"));
    ck_assert_ptr_null(dlq_new(bootstraps, "", NULL, 0, errstr, sizeof errstr));
    d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    ck_assert_ptr_nonnull(d);
    /* A record without a reason is refused before anything is sent. */
    rec.source_topic = "alerts";
    ck_assert_int_eq(dlq_write(d, &rec, 1000, errstr, sizeof errstr),
                     HERALD_ERR_INVALID);
    dlq_destroy(d);
    dlq_destroy(NULL);
}
END_TEST

START_TEST(test_metrics_count_by_reason)
{
    char errstr[512];
    dlq *d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    dlq_record rec = {0};
    buf out;

    ck_assert_ptr_nonnull(d);
    rec.reason = "too_deep";
    rec.source_topic = "alerts";
    ck_assert_int_eq(dlq_write(d, &rec, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_int_eq(dlq_write(d, &rec, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    dlq_destroy(d);
    buf_init(&out, 1 << 20);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    ck_assert_ptr_nonnull(strstr(buf_str(&out),
                                 "herald_dlq_records_total{reason=\"too_deep\"}"
                                 " 2"));
    buf_free(&out);
}
END_TEST

static Suite *dlq_suite(void)
{
    Suite *s = suite_create("dlq");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"record_headers_key_value", test_record_headers_key_value},
        {"null_value_stays_null", test_null_value_stays_null},
        {"concurrent_writers", test_concurrent_writers},
        {"timeout_when_broker_down", test_timeout_when_broker_down},
        {"invalid_arguments", test_invalid_arguments},
        {"metrics_count_by_reason", test_metrics_count_by_reason},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, mock_setup, mock_teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(dlq_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    metrics_shutdown();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
