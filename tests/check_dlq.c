/*
 * check_dlq.c: tests of worker/dlq against librdkafka's in-process mock
 * cluster (rdkafka_mock.h): records keep key and value with every header,
 * a null value stays null, concurrent writers are all acknowledged, a
 * broker that is down gives HERALD_ERR_TIMEOUT, bad properties are refused,
 * the metric counts records by reason, and an asynchronous write reports
 * its acknowledgement or its timeout through its callback.
 */
#include <check.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/admin.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "worker/dlq.h"

#include "tests/kafka_fixture.h"
#include "tests/tsan_thrd.h"

#define TOPIC "alerts.dlq"
#define PARTITIONS 3

static kafka_fixture *kfx;
static const char *bootstraps; /* Borrowed from kfx. */

static void mock_setup(void)
{
    char err[256];

    log_init(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    kfx = kafka_fixture_new(1, err, sizeof err);
    ck_assert_msg(kfx != NULL, "%s", err);
    bootstraps = kafka_fixture_bootstraps(kfx);
    ck_assert_int_eq(
        kafka_fixture_topic_create(kfx, TOPIC, PARTITIONS, err, sizeof err),
        HERALD_OK);
}

static void mock_teardown(void)
{
    kafka_fixture_destroy(kfx);
    kfx = NULL;
    bootstraps = NULL;
}

/*
 * Reads up to max records from every partition of TOPIC from the
 * beginning, until max came or 10 s passed. Returns the count; free recs
 * with kafka_fixture_records_free().
 */
static int consume_all(kafka_fixture_record *recs, int max)
{
    char err[256];
    int n = kafka_fixture_read(kfx, TOPIC, recs, max, 10000, err, sizeof err);

    ck_assert_msg(n >= 0, "%s", err);
    return n;
}

static void assert_header(const kafka_fixture_record *rec, const char *name,
                          const char *want)
{
    char got[512];

    ck_assert_msg(kafka_fixture_header(rec->headers, name, got, sizeof got),
                  "header %s missing", name);
    ck_assert_str_eq(got, want);
}

START_TEST(test_record_headers_key_value)
{
    char errstr[512];
    const char *props[] = {"client.id=check-dlq"};
    dlq *d = dlq_new(bootstraps, TOPIC, props, 1, errstr, sizeof errstr);
    dlq_record rec = {0};
    kafka_fixture_record msgs[2];
    char val[64];
    int64_t before = herald_wall_ms();
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
    ck_assert_uint_eq(msgs[0].key_len, 16);
    ck_assert_int_eq(memcmp(msgs[0].key, "0123456789abcdef", 16), 0);
    ck_assert_uint_eq(msgs[0].len, strlen(value));
    ck_assert_int_eq(memcmp(msgs[0].value, value, strlen(value)), 0);
    assert_header(&msgs[0], "herald-reason", "target_failed");
    assert_header(&msgs[0], "herald-error", "HTTP 503 from receiver");
    assert_header(&msgs[0], "herald-source-topic", "alerts");
    assert_header(&msgs[0], "herald-source-partition", "4");
    assert_header(&msgs[0], "herald-source-offset", "123456789012");
    assert_header(&msgs[0], "herald-target", "slack-oncall");
    assert_header(&msgs[0], "herald-http-status", "503");
    assert_header(&msgs[0], "herald-attempts", "3");
    assert_header(&msgs[0], "herald-first-attempt-ms", "1700000000000");
    assert_header(&msgs[0], "herald-last-attempt-ms", "1700000001234");
    assert_header(&msgs[0], "herald-version", HERALD_VERSION);
    ck_assert(kafka_fixture_header(msgs[0].headers, "herald-dlq-time-ms", val,
                                   sizeof val));
    ck_assert(strtoll(val, NULL, 10) >= before);
    ck_assert(strtoll(val, NULL, 10) <= herald_wall_ms());
    kafka_fixture_records_free(msgs, 1);
}
END_TEST

START_TEST(test_null_value_stays_null)
{
    char errstr[512];
    dlq *d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    dlq_record rec = {0};
    kafka_fixture_record msgs[2];
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
    ck_assert_ptr_null(msgs[0].value);
    ck_assert_uint_eq(msgs[0].len, 0);
    ck_assert_ptr_null(msgs[0].key);
    /* Poison messages have no target header. */
    ck_assert(!kafka_fixture_header(msgs[0].headers, "herald-target", val,
                                    sizeof val));
    assert_header(&msgs[0], "herald-reason", "null_value");
    assert_header(&msgs[0], "herald-http-status", "0");
    assert_header(&msgs[0], "herald-first-attempt-ms", "0");
    kafka_fixture_records_free(msgs, 1);
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
    kafka_fixture_record msgs[WRITERS * WRITES_EACH + 1];
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
    kafka_fixture_records_free(msgs, n);
}
END_TEST

START_TEST(test_timeout_when_broker_down)
{
    char errstr[512];
    dlq *d;
    dlq_record rec = {0};

    ck_assert_int_eq(rd_kafka_mock_broker_set_down(kafka_fixture_mock(kfx), 1),
                     0);
    d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    ck_assert_msg(d != NULL, "%s", errstr);
    rec.reason = "target_failed";
    rec.source_topic = "alerts";
    ck_assert_int_eq(dlq_write(d, &rec, 300, errstr, sizeof errstr),
                     HERALD_ERR_TIMEOUT);
    ck_assert_ptr_nonnull(strstr(errstr, "may still be delivered"));
    /* The broker comes back: the abandoned record is delivered late and
     * destroy frees its waiter (the sanitizers check for leaks). */
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(kafka_fixture_mock(kfx), 1),
                     0);
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

/* The report of one asynchronous write. */
typedef struct async_report {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int calls;
    herald_err err;
    char errstr[256];
} async_report;

static void async_report_init(async_report *r)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
}

static void async_report_free(async_report *r)
{
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
}

static void async_done(void *opaque, herald_err err, const char *errstr)
{
    async_report *r = opaque;

    pthread_mutex_lock(&r->lock);
    r->calls++;
    r->err = err;
    snprintf(r->errstr, sizeof r->errstr, "%s", errstr ? errstr : "");
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

/* Waits for the report (dlq_close() already guarantees it came). */
static void async_wait(async_report *r)
{
    pthread_mutex_lock(&r->lock);
    while (r->calls == 0)
        pthread_cond_wait(&r->cond, &r->lock);
    pthread_mutex_unlock(&r->lock);
}

START_TEST(test_async_acknowledged)
{
    char errstr[512];
    dlq *d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    dlq_record rec = {0};
    kafka_fixture_record msgs[2];
    async_report r;

    ck_assert_msg(d != NULL, "%s", errstr);
    async_report_init(&r);
    rec.reason = "target_failed";
    rec.source_topic = "alerts";
    rec.key = "k";
    rec.key_len = 1;
    ck_assert_int_eq(
        dlq_write_async(d, &rec, 10000, async_done, &r, errstr, sizeof errstr),
        HERALD_OK);
    async_wait(&r);
    dlq_close(d);
    /* Closed: refused at once, the callback is not called. */
    ck_assert_int_eq(
        dlq_write_async(d, &rec, 10000, async_done, &r, errstr, sizeof errstr),
        HERALD_ERR_STATE);
    dlq_destroy(d);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.err, HERALD_OK);
    async_report_free(&r);
    ck_assert_int_eq(consume_all(msgs, 1), 1);
    kafka_fixture_records_free(msgs, 1);
}
END_TEST

/*
 * With the broker down: a new dlq, one asynchronous write of a record
 * with a 300 ms timeout, its report (HERALD_ERR_TIMEOUT) in r (initialised
 * here). Returns the dlq; the broker stays down.
 */
static dlq *async_timeout_while_down(async_report *r)
{
    char errstr[512];
    dlq *d;
    dlq_record rec = {0};

    ck_assert_int_eq(rd_kafka_mock_broker_set_down(kafka_fixture_mock(kfx), 1),
                     0);
    d = dlq_new(bootstraps, TOPIC, NULL, 0, errstr, sizeof errstr);
    ck_assert_msg(d != NULL, "%s", errstr);
    async_report_init(r);
    rec.reason = "target_failed";
    rec.source_topic = "alerts";
    ck_assert_int_eq(
        dlq_write_async(d, &rec, 300, async_done, r, errstr, sizeof errstr),
        HERALD_OK);
    async_wait(r);
    ck_assert_int_eq(r->err, HERALD_ERR_TIMEOUT);
    return d;
}

START_TEST(test_async_timeout_when_broker_down)
{
    dlq *d;
    async_report r;

    d = async_timeout_while_down(&r);
    ck_assert_ptr_nonnull(strstr(r.errstr, "may still be delivered"));
    /* The broker comes back: the abandoned record is delivered late and
     * destroy frees its waiter; the callback is not called again. */
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(kafka_fixture_mock(kfx), 1),
                     0);
    dlq_destroy(d);
    ck_assert_int_eq(r.calls, 1);
    async_report_free(&r);
}
END_TEST

/* A failing write shows in dlq_failing_since_ms() until one is
 * acknowledged again. */
START_TEST(test_failing_since_until_acknowledged)
{
    char errstr[512];
    dlq *d;
    dlq_record rec = {0};
    async_report r1, r2;
    int64_t before = herald_now_ms();

    d = async_timeout_while_down(&r1);
    async_report_init(&r2);
    rec.reason = "target_failed";
    rec.source_topic = "alerts";
    ck_assert_int_ge(dlq_failing_since_ms(d), before);
    ck_assert_int_eq(rd_kafka_mock_broker_set_up(kafka_fixture_mock(kfx), 1),
                     0);
    ck_assert_int_eq(
        dlq_write_async(d, &rec, 10000, async_done, &r2, errstr, sizeof errstr),
        HERALD_OK);
    async_wait(&r2);
    ck_assert_int_eq(r2.err, HERALD_OK);
    ck_assert_int_eq(dlq_failing_since_ms(d), 0);
    dlq_destroy(d);
    async_report_free(&r1);
    async_report_free(&r2);
}
END_TEST

/*
 * Writes a record of value_len bytes asynchronously through a dlq made
 * with props, and checks that what the topic holds is its truncated copy
 * with the original's size and SHA-256, the source coordinates and
 * want_error in herald-dlq-error.
 */
static void assert_truncated_copy(const char *const *props, size_t n_props,
                                  size_t value_len, const char *want_error)
{
    char errstr[512];
    char want[2 * SHA256_DIGEST_LENGTH + 1];
    char size[24];
    unsigned char md[SHA256_DIGEST_LENGTH];
    dlq *d = dlq_new(bootstraps, TOPIC, props, n_props, errstr, sizeof errstr);
    dlq_record rec = {0};
    kafka_fixture_record msgs[2];
    async_report r;
    char *value = malloc(value_len);

    ck_assert_msg(d != NULL, "%s", errstr);
    ck_assert_ptr_nonnull(value);
    for (size_t i = 0; i < value_len; i++)
        value[i] = (char)('a' + i % 26);
    SHA256((const unsigned char *)value, value_len, md);
    for (size_t i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    async_report_init(&r);
    rec.reason = "oversize";
    rec.error = "message larger than 1048576 bytes";
    rec.source_topic = "alerts";
    rec.source_partition = 2;
    rec.source_offset = 77;
    rec.key = "fp";
    rec.key_len = 2;
    rec.value = value;
    rec.value_len = value_len;
    ck_assert_int_eq(
        dlq_write_async(d, &rec, 10000, async_done, &r, errstr, sizeof errstr),
        HERALD_OK);
    async_wait(&r);
    ck_assert_msg(r.err == HERALD_OK, "%s", r.errstr);
    dlq_destroy(d);
    free(value);
    async_report_free(&r);
    ck_assert_int_eq(consume_all(msgs, 1), 1);
    ck_assert_uint_lt(msgs[0].len, value_len);
    ck_assert_int_eq(memcmp(msgs[0].value, "abcdef", 6), 0);
    ck_assert_uint_eq(msgs[0].key_len, 2);
    snprintf(size, sizeof size, "%zu", value_len);
    assert_header(&msgs[0], "herald-truncated", "true");
    assert_header(&msgs[0], "herald-original-size", size);
    assert_header(&msgs[0], "herald-original-sha256", want);
    assert_header(&msgs[0], "herald-dlq-error", want_error);
    assert_header(&msgs[0], "herald-reason", "oversize");
    assert_header(&msgs[0], "herald-source-topic", "alerts");
    assert_header(&msgs[0], "herald-source-partition", "2");
    assert_header(&msgs[0], "herald-source-offset", "77");
    kafka_fixture_records_free(msgs, 1);
}

/* Larger than the producer's message.max.bytes: refused locally. */
START_TEST(test_async_too_large_for_producer_truncated)
{
    const char *props[] = {"message.max.bytes=40000"};

    assert_truncated_copy(props, 1, 100000, "MSG_SIZE_TOO_LARGE");
}
END_TEST

/* The broker refuses the record as too large for the topic. */
START_TEST(test_async_too_large_for_topic_truncated)
{
    /* 0: the Produce API key (RD_KAFKAP_Produce is not in the public
     * headers). */
    rd_kafka_mock_push_request_errors(kafka_fixture_mock(kfx), 0, 1,
                                      RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    assert_truncated_copy(NULL, 0, 50000, "MSG_SIZE_TOO_LARGE");
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
        {"async_acknowledged", test_async_acknowledged},
        {"async_timeout_when_broker_down", test_async_timeout_when_broker_down},
        {"failing_since_until_acknowledged",
         test_failing_since_until_acknowledged},
        {"async_too_large_for_producer_truncated",
         test_async_too_large_for_producer_truncated},
        {"async_too_large_for_topic_truncated",
         test_async_too_large_for_topic_truncated},
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
