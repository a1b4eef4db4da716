/*
 * check_produce.c: tests of `herald produce` (tools/produce), the admin
 * helpers (core/admin) and the replay time parser (tools/replay) against
 * librdkafka's in-process mock cluster (rdkafka_mock.h).
 *
 * The mock cluster does not implement the CreateTopics Admin API, so
 * admin_create_topic() is tested here only when HERALD_TEST_BROKERS names
 * a real broker; integration/10-produce-offsets.sh always tests it.
 */
#include <check.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/alert.h"
#include "core/log.h"
#include "tools/produce.h"
#include "tools/replay.h"

#include "tests/kafka_fixture.h"
#include "tests/tsan_thrd.h"

#define TOPIC "alerts"
#define PARTITIONS 3
#define MAX_MSGS 16

static kafka_fixture *kfx;
static const char *bootstraps; /* Borrowed from kfx. */
static char input_path[64];

static void mock_setup(void)
{
    char err[256];
    int fd;

    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    kfx = kafka_fixture_new(1, err, sizeof err);
    ck_assert_msg(kfx != NULL, "%s", err);
    bootstraps = kafka_fixture_bootstraps(kfx);
    ck_assert_int_eq(
        kafka_fixture_topic_create(kfx, TOPIC, PARTITIONS, err, sizeof err),
        HERALD_OK);
    snprintf(input_path, sizeof input_path, "/tmp/check_produce.XXXXXX");
    fd = mkstemp(input_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
}

static void mock_teardown(void)
{
    unlink(input_path);
    kafka_fixture_destroy(kfx);
    kfx = NULL;
    bootstraps = NULL;
}

static void write_input(const char *text)
{
    FILE *f = fopen(input_path, "w");

    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

/* Runs produce_main with the given extra flags, then the input file. */
static int run_produce(const char *const *flags, int n_flags)
{
    char *argv[32];
    int argc = 0;

    argv[argc++] = "produce";
    argv[argc++] = "--brokers";
    argv[argc++] = (char *)bootstraps;
    argv[argc++] = "--topic";
    argv[argc++] = TOPIC;
    for (int i = 0; i < n_flags; i++)
        argv[argc++] = (char *)flags[i];
    argv[argc++] = input_path;
    argv[argc] = NULL;
    return produce_main(argc, argv);
}

/* A consumed message: key and value are NUL-terminated copies. */
typedef kafka_fixture_record got_msg;

/* Reads every partition from the beginning until want messages came or
 * 10 s passed. Returns the count. */
static int consume_all(got_msg *msgs, int want)
{
    char err[256];
    int n = kafka_fixture_read(kfx, TOPIC, msgs, want, 10000, err, sizeof err);

    ck_assert_msg(n >= 0, "%s", err);
    return n;
}

static void free_msgs(got_msg *msgs, int n)
{
    kafka_fixture_records_free(msgs, n);
}

/* The message whose value contains needle, or NULL. */
static got_msg *find_msg(got_msg *msgs, int n, const char *needle)
{
    for (int i = 0; i < n; i++)
        if (msgs[i].value && strstr(msgs[i].value, needle))
            return &msgs[i];
    return NULL;
}

/* The fingerprint herald computes for a message value. */
static void fingerprint_of(const char *value, char out[ALERT_FINGERPRINT_LEN])
{
    alert_batch batch;
    alert_limits lim;
    alert_reason reason;
    char err[256];

    alert_limits_default(&lim);
    memset(&batch, 0, sizeof batch);
    ck_assert_int_eq(alert_batch_parse(value, strlen(value), &lim, &batch,
                                       &reason, err, sizeof err),
                     HERALD_OK);
    memcpy(out, batch.alerts[0].fingerprint, ALERT_FINGERPRINT_LEN);
    alert_batch_free(&batch);
}

static const char PAYLOAD[] =
    "{\n"
    "  \"version\": \"4\", \"status\": \"firing\", \"receiver\": \"team\",\n"
    "  \"groupKey\": \"{}:{alertname=\\\"Disk\\\"}\",\n"
    "  \"groupLabels\": {\"alertname\": \"Disk\"},\n"
    "  \"commonLabels\": {\"alertname\": \"Disk\"},\n"
    "  \"commonAnnotations\": {}, \"externalURL\": \"http://am\",\n"
    "  \"alerts\": [\n"
    "    {\"status\": \"firing\", \"labels\": {\"alertname\": \"Disk\",\n"
    "     \"host\": \"h1\"}, \"annotations\": {\"summary\": \"s1\"}},\n"
    "    {\"status\": \"resolved\", \"labels\": {\"alertname\": \"Disk\",\n"
    "     \"host\": \"h2\"}, \"annotations\": {\"summary\": \"s2\"}}\n"
    "  ]\n"
    "}\n";

START_TEST(test_lines_keyed_by_fingerprint)
{
    got_msg msgs[MAX_MSGS];
    got_msg *g;
    char fp[ALERT_FINGERPRINT_LEN];
    int n;

    write_input("{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"},"
                "\"annotations\":{},\"fingerprint\":\"00000000000000aa\"}\n"
                "\n"
                "   \r\n"
                "{\"status\":\"firing\",\"labels\":{\"alertname\":\"B\"},"
                "\"annotations\":{}}\r\n");
    ck_assert_int_eq(run_produce(NULL, 0), 0);
    n = consume_all(msgs, 2);
    ck_assert_int_eq(n, 2);
    g = find_msg(msgs, n, "\"A\"");
    ck_assert_ptr_nonnull(g);
    ck_assert_str_eq(g->key, "00000000000000aa");
    g = find_msg(msgs, n, "\"B\"");
    ck_assert_ptr_nonnull(g);
    /* The value is produced byte for byte, without the line ending. */
    ck_assert_int_eq(g->value[g->len - 1], '}');
    fingerprint_of(g->value, fp);
    ck_assert_str_eq(g->key, fp);
    free_msgs(msgs, n);
}
END_TEST

START_TEST(test_payload_split_per_alert)
{
    got_msg msgs[MAX_MSGS];
    got_msg *g;
    char fp[ALERT_FINGERPRINT_LEN];
    int n;

    write_input(PAYLOAD);
    ck_assert_int_eq(run_produce(NULL, 0), 0);
    n = consume_all(msgs, 2);
    ck_assert_int_eq(n, 2);
    for (int i = 0; i < n; i++) {
        /* Each message is a one-alert payload keeping the group context. */
        ck_assert_ptr_nonnull(strstr(msgs[i].value, "\"receiver\":\"team\""));
        ck_assert_ptr_nonnull(strstr(msgs[i].value, "\"groupKey\""));
        fingerprint_of(msgs[i].value, fp);
        ck_assert_str_eq(msgs[i].key, fp);
    }
    g = find_msg(msgs, n, "\"h2\"");
    ck_assert_ptr_nonnull(g);
    ck_assert_ptr_null(strstr(g->value, "\"h1\""));
    ck_assert_ptr_nonnull(strstr(g->value, "\"status\":\"resolved\""));
    free_msgs(msgs, n);
}
END_TEST

START_TEST(test_payload_no_split_and_group_key)
{
    const char *flags[] = {"--no-split", "--key-from", "group"};
    got_msg msgs[MAX_MSGS];
    int n;

    write_input(PAYLOAD);
    ck_assert_int_eq(run_produce(flags, 3), 0);
    n = consume_all(msgs, 1);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(msgs[0].key, "{}:{alertname=\"Disk\"}");
    ck_assert_str_eq(msgs[0].value, PAYLOAD);
    free_msgs(msgs, n);
}
END_TEST

START_TEST(test_invalid_lines_skipped_or_allowed)
{
    const char *allow[] = {"--allow-invalid"};
    got_msg msgs[MAX_MSGS];
    int n;

    write_input("{\"status\":\"firing\",\"labels\":{\"alertname\":\"A\"},"
                "\"annotations\":{}}\n"
                "not json\n");
    /* Invalid lines are reported and skipped: exit status 3. */
    ck_assert_int_eq(run_produce(NULL, 0), 3);
    ck_assert_int_eq(run_produce(allow, 1), 0);
    n = consume_all(msgs, 3);
    ck_assert_int_eq(n, 3);
    /* Only the allowed run produced the bad line, without a key. */
    ck_assert_ptr_nonnull(find_msg(msgs, n, "not json"));
    ck_assert_ptr_null(find_msg(msgs, n, "not json")->key);
    free_msgs(msgs, n);
}
END_TEST

START_TEST(test_null_values)
{
    const char *flags[] = {"--null-values", "--allow-invalid"};
    got_msg msgs[MAX_MSGS];
    int n;

    write_input("null\n");
    ck_assert_int_eq(run_produce(flags, 2), 0);
    n = consume_all(msgs, 1);
    ck_assert_int_eq(n, 1);
    ck_assert_ptr_null(msgs[0].value);
    ck_assert_ptr_null(msgs[0].key);
    free_msgs(msgs, n);
}
END_TEST

START_TEST(test_usage_errors)
{
    const char *bad_prop[] = {"-X", "no.such.property=1"};
    const char *bad_key[] = {"--key-from", "label"};
    char *no_topic[] = {"produce", "--brokers", (char *)bootstraps, NULL};
    char *help[] = {"produce", "--help", NULL};

    write_input("{}\n");
    unsetenv("HERALD_TOPIC");
    ck_assert_int_eq(run_produce(bad_prop, 2), 2);
    ck_assert_int_eq(run_produce(bad_key, 2), 2);
    ck_assert_int_eq(produce_main(3, no_topic), 2);
    ck_assert_int_eq(produce_main(2, help), 0);
}
END_TEST

START_TEST(test_partition_count)
{
    char errstr[512];
    int count = 0;

    ck_assert_int_eq(admin_partition_count(bootstraps, NULL, 0, TOPIC, &count,
                                           10000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_int_eq(count, PARTITIONS);
    ck_assert_int_eq(admin_partition_count(bootstraps, NULL, 0, "missing",
                                           &count, 10000, errstr,
                                           sizeof errstr),
                     HERALD_ERR_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(errstr, "missing"));
}
END_TEST

/* Commits offset for partition of TOPIC as group, without joining. */
static void commit_offset(const char *group, int32_t partition, int64_t offset)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l;
    rd_kafka_t *c;
    char err[256];

    rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps, err, sizeof err);
    rd_kafka_conf_set(conf, "group.id", group, err, sizeof err);
    c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    ck_assert_ptr_nonnull(c);
    l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, TOPIC, partition)->offset = offset;
    ck_assert_int_eq(rd_kafka_commit(c, l, 0), 0);
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);
}

START_TEST(test_group_offsets_and_lag)
{
    const char *flags[] = {"--key-from", "none", "-X", "partitioner=random"};
    admin_partition_offsets *offs = NULL;
    char errstr[512];
    size_t n = 0;
    int64_t total = 0;
    int32_t busy = -1; /* A partition that holds messages. */
    int64_t busy_high = 0;
    got_msg msgs[MAX_MSGS];
    int got;

    write_input("{\"status\":\"firing\",\"labels\":{\"a\":\"1\"}}\n"
                "{\"status\":\"firing\",\"labels\":{\"a\":\"2\"}}\n"
                "{\"status\":\"firing\",\"labels\":{\"a\":\"3\"}}\n"
                "{\"status\":\"firing\",\"labels\":{\"a\":\"4\"}}\n");
    ck_assert_int_eq(run_produce(flags, 4), 0);
    got = consume_all(msgs, 4);
    ck_assert_int_eq(got, 4);
    free_msgs(msgs, got);

    /* No commit yet: committed is -1 and lag counts from the low mark. */
    ck_assert_int_eq(admin_group_offsets(bootstraps, NULL, 0, "g", TOPIC, &offs,
                                         &n, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_uint_eq(n, PARTITIONS);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(offs[i].partition, (int)i);
        ck_assert_int_eq(offs[i].committed, -1);
        ck_assert_int_eq(offs[i].lag, offs[i].high - offs[i].low);
        total += offs[i].high;
        if (offs[i].high > offs[i].low) {
            busy = offs[i].partition;
            busy_high = offs[i].high;
        }
    }
    free(offs);
    ck_assert_int_eq(total, 4);
    ck_assert_int_ge(busy, 0);

    commit_offset("g", busy, 1);
    ck_assert_int_eq(admin_group_offsets(bootstraps, NULL, 0, "g", TOPIC, &offs,
                                         &n, 10000, errstr, sizeof errstr),
                     HERALD_OK);
    {
        admin_partition_offsets o = offs[busy];

        free(offs);
        ck_assert_int_eq(o.committed, 1);
        ck_assert_int_eq(o.high, busy_high);
        ck_assert_int_eq(o.lag, busy_high - 1);
    }

    ck_assert_int_eq(admin_group_offsets(bootstraps, NULL, 0, "g", "missing",
                                         &offs, &n, 10000, errstr,
                                         sizeof errstr),
                     HERALD_ERR_NOT_FOUND);
    ck_assert_ptr_null(offs);
}
END_TEST

START_TEST(test_create_topic_real_broker)
{
    const char *brokers = getenv("HERALD_TEST_BROKERS");
    char topic[64], errstr[512];
    int count = 0;

    if (!brokers || !*brokers) {
        fprintf(stderr,
                "check_produce: SKIP create_topic_real_broker: the mock "
                "cluster has no CreateTopics API; set HERALD_TEST_BROKERS "
                "to a real broker to run it\n");
        return;
    }
    snprintf(topic, sizeof topic, "check-produce-%ld-%d", (long)time(NULL),
             (int)getpid());
    ck_assert_int_eq(admin_create_topic(brokers, NULL, 0, topic, 4, 1, NULL, 0,
                                        30000, errstr, sizeof errstr),
                     HERALD_OK);
    /* Already existing is success too. */
    ck_assert_int_eq(admin_create_topic(brokers, NULL, 0, topic, 4, 1, NULL, 0,
                                        30000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_int_eq(admin_partition_count(brokers, NULL, 0, topic, &count,
                                           30000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_int_eq(count, 4);
}
END_TEST

/* A topic created with a config has it, as DescribeConfigs reads it. */
START_TEST(test_topic_config_real_broker)
{
    const char *brokers = getenv("HERALD_TEST_BROKERS");
    const char *configs[] = {"max.message.bytes=3000000"};
    char topic[64], errstr[512], value[32];

    if (!brokers || !*brokers) {
        fprintf(stderr, "check_produce: SKIP topic_config_real_broker: set "
                        "HERALD_TEST_BROKERS to a real broker to run it\n");
        return;
    }
    snprintf(topic, sizeof topic, "check-config-%ld-%d", (long)time(NULL),
             (int)getpid());
    ck_assert_int_eq(admin_create_topic(brokers, NULL, 0, topic, 1, 1, configs,
                                        1, 30000, errstr, sizeof errstr),
                     HERALD_OK);
    ck_assert_msg(admin_topic_config(brokers, NULL, 0, topic,
                                     "max.message.bytes", value, sizeof value,
                                     30000, errstr, sizeof errstr) == HERALD_OK,
                  "%s", errstr);
    ck_assert_str_eq(value, "3000000");
    ck_assert_int_eq(admin_topic_config(brokers, NULL, 0, topic, "no.such",
                                        value, sizeof value, 30000, errstr,
                                        sizeof errstr),
                     HERALD_ERR_NOT_FOUND);
}
END_TEST

START_TEST(test_create_topic_invalid)
{
    char errstr[512];

    ck_assert_int_eq(admin_create_topic(bootstraps, NULL, 0, "t", 0, 1, NULL, 0,
                                        1000, errstr, sizeof errstr),
                     HERALD_ERR_INVALID);
    ck_assert_int_eq(admin_create_topic(NULL, NULL, 0, "t", 1, 1, NULL, 0, 1000,
                                        errstr, sizeof errstr),
                     HERALD_ERR_INVALID);
}
END_TEST

START_TEST(test_replay_time_parse)
{
    int64_t ms = 0;

    ck_assert_int_eq(replay_time_parse("1970-01-01T00:00:01Z", &ms), HERALD_OK);
    ck_assert_int_eq(ms, 1000);
    ck_assert_int_eq(replay_time_parse("2024-05-01T12:00:00.25Z", &ms),
                     HERALD_OK);
    ck_assert_int_eq(ms, 1714564800250LL);
    ck_assert_int_eq(replay_time_parse("2024-05-01T14:00:00+02:00", &ms),
                     HERALD_OK);
    ck_assert_int_eq(ms, 1714564800000LL);
    ck_assert_int_eq(replay_time_parse("2024-05-01T10:30:00-01:30", &ms),
                     HERALD_OK);
    ck_assert_int_eq(ms, 1714564800000LL);
    ck_assert_int_eq(replay_time_parse("1714564800123", &ms), HERALD_OK);
    ck_assert_int_eq(ms, 1714564800123LL);
    ck_assert_int_eq(replay_time_parse("2024-05-01", &ms), HERALD_ERR_PARSE);
    ck_assert_int_eq(replay_time_parse("2024-13-01T00:00:00Z", &ms),
                     HERALD_ERR_PARSE);
    ck_assert_int_eq(replay_time_parse("2024-05-01T00:00:00", &ms),
                     HERALD_ERR_PARSE);
    ck_assert_int_eq(replay_time_parse("2024-05-01T00:00:00Zjunk", &ms),
                     HERALD_ERR_PARSE);
    ck_assert_int_eq(replay_time_parse("", &ms), HERALD_ERR_PARSE);
}
END_TEST

static Suite *produce_suite(void)
{
    Suite *s = suite_create("produce");
    struct {
        const char *name;
        const TTest *test;
        bool mock;
    } cases[] = {
        {"lines_keyed_by_fingerprint", test_lines_keyed_by_fingerprint, 1},
        {"payload_split_per_alert", test_payload_split_per_alert, 1},
        {"payload_no_split_and_group_key", test_payload_no_split_and_group_key,
         1},
        {"invalid_lines_skipped_or_allowed",
         test_invalid_lines_skipped_or_allowed, 1},
        {"null_values", test_null_values, 1},
        {"usage_errors", test_usage_errors, 1},
        {"partition_count", test_partition_count, 1},
        {"group_offsets_and_lag", test_group_offsets_and_lag, 1},
        {"create_topic_real_broker", test_create_topic_real_broker, 0},
        {"topic_config_real_broker", test_topic_config_real_broker, 0},
        {"create_topic_invalid", test_create_topic_invalid, 1},
        {"replay_time_parse", test_replay_time_parse, 0},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);

        if (cases[i].mock)
            tcase_add_checked_fixture(tc, mock_setup, mock_teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(produce_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
