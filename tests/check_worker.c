/*
 * check_worker.c: tests of the consumer worker (worker/consumer.c and
 * worker/job.c through worker_run()) against librdkafka's in-process mock
 * cluster (rdkafka_mock.h) and an in-process HTTP receiver
 * (libmicrohttpd on 127.0.0.1, an ephemeral port).
 *
 * Each test creates a fresh mock cluster with a 3-partition source topic
 * and its dead-letter topic, writes a targets.yaml pointing at the
 * receiver, produces alerts (key = fingerprint), runs worker_run() on its
 * own thread, waits with bounded polling for the effect it expects, stops
 * the worker and then checks what matters: what the receiver got, what the
 * dead-letter topic holds and the group's committed offsets.
 *
 * Stopping: the worker reads *cfg.stop, an atomic_int, on its
 * own thread. The test sets it the way production does, from a signal
 * handler: pthread_kill(SIGUSR1) runs the handler on the worker thread, so
 * the flag is written and read by the same thread (no data race for TSan).
 *
 * Every topic and group name is unique per test because the metrics
 * registry is process-wide and the paused gauge is read per topic.
 */
#include <check.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admin.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/metrics.h"
#include "worker/worker.h"

#include "tests/kafka_fixture.h"
#include "tests/tsan_thrd.h"

#define PARTITIONS 3

/* ------------------------------------------------------------------ */
/* Helpers                                                              */
/* ------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/*
 * Polls cond every 10 ms until it is true or timeout_ms passed. Returns
 * the last value of cond. The sleep is the polling period, not a
 * synchronisation.
 */
static bool wait_until(bool (*cond)(void *), void *arg, int timeout_ms)
{
    int64_t deadline = herald_now_ms() + timeout_ms;

    for (;;) {
        if (cond(arg))
            return true;
        if (herald_now_ms() >= deadline)
            return cond(arg);
        sleep_ms(10);
    }
}

/* ------------------------------------------------------------------ */
/* HTTP receiver                                                        */
/* ------------------------------------------------------------------ */

/*
 * Paths of the receiver: /a and /b answer 200, /fail 500, /slow 200 after
 * 200 ms, /order 200 after 300 ms for a firing alert and at once for a
 * resolved one (so a resolved sent without waiting for its firing would
 * overtake it).
 */
enum { P_A, P_B, P_FAIL, P_SLOW, P_ORDER, P_N };
static const char *const srv_paths[P_N] = {"/a", "/b", "/fail", "/slow",
                                           "/order"};

/* One request the receiver got. */
typedef struct srv_event {
    int path;
    char fingerprint[40];
    char status[16];
    long arrived; /* Sequence number when the whole body had arrived. */
    long done;    /* Sequence number when the answer was ready. */
} srv_event;

#define SRV_MAX_EVENTS 1024

static struct {
    struct MHD_Daemon *d;
    int port;
    pthread_mutex_t lock; /* Guards everything below. */
    srv_event ev[SRV_MAX_EVENTS];
    int n_ev;
    long seq;
    int current[P_N];     /* Requests being answered now. */
    int max_current[P_N]; /* Most at once. */
} srv = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* Per-request state: the body as it arrives. */
typedef struct srv_req {
    buf body;
} srv_req;

static void srv_parse(const char *body, char *fp, size_t fp_size, char *status,
                      size_t status_size)
{
    json_object *root = json_tokener_parse(body);
    json_object *alerts;
    json_object *one;
    json_object *v;

    fp[0] = '\0';
    status[0] = '\0';
    if (root && json_object_object_get_ex(root, "alerts", &alerts) &&
        json_object_is_type(alerts, json_type_array) &&
        json_object_array_length(alerts) > 0) {
        one = json_object_array_get_idx(alerts, 0);
        if (json_object_object_get_ex(one, "fingerprint", &v))
            snprintf(fp, fp_size, "%s", json_object_get_string(v));
        if (json_object_object_get_ex(one, "status", &v))
            snprintf(status, status_size, "%s", json_object_get_string(v));
    }
    json_object_put(root);
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    srv_req *req = *con_cls;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    unsigned int status = 200;
    int delay = 0;
    int p;
    int idx = -1;
    char fp[40];
    char st[16];

    (void)cls;
    (void)method;
    (void)version;
    if (!req) {
        req = calloc(1, sizeof(*req));
        if (!req)
            return MHD_NO;
        buf_init(&req->body, 1 << 20);
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size) {
        buf_append(&req->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    for (p = 0; p < P_N; p++) {
        if (strcmp(url, srv_paths[p]) == 0)
            break;
    }
    if (p == P_N) {
        status = 404;
    } else {
        srv_parse(buf_str(&req->body), fp, sizeof(fp), st, sizeof(st));
        pthread_mutex_lock(&srv.lock);
        if (srv.n_ev < SRV_MAX_EVENTS) {
            idx = srv.n_ev++;
            srv.ev[idx].path = p;
            snprintf(srv.ev[idx].fingerprint, sizeof(srv.ev[idx].fingerprint),
                     "%s", fp);
            snprintf(srv.ev[idx].status, sizeof(srv.ev[idx].status), "%s", st);
            srv.ev[idx].arrived = srv.seq++;
            srv.ev[idx].done = -1;
        }
        srv.current[p]++;
        if (srv.current[p] > srv.max_current[p])
            srv.max_current[p] = srv.current[p];
        pthread_mutex_unlock(&srv.lock);
        if (p == P_FAIL)
            status = 500;
        else if (p == P_SLOW)
            delay = 200;
        else if (p == P_ORDER && strcmp(st, "firing") == 0)
            delay = 300;
    }
    /* Simulates a slow receiver; not a synchronisation. */
    if (delay)
        sleep_ms(delay);
    if (p < P_N) {
        pthread_mutex_lock(&srv.lock);
        srv.current[p]--;
        if (idx >= 0)
            srv.ev[idx].done = srv.seq++;
        pthread_mutex_unlock(&srv.lock);
    }
    resp = MHD_create_response_from_buffer(2, (void *)"ok",
                                           MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void srv_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                          enum MHD_RequestTerminationCode toe)
{
    srv_req *req = *con_cls;

    (void)cls;
    (void)c;
    (void)toe;
    if (req) {
        buf_free(&req->body);
        free(req);
        *con_cls = NULL;
    }
}

static void srv_start(void)
{
    struct sockaddr_in sin;
    const union MHD_DaemonInfo *info;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    srv.d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, srv_handler, NULL, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_NOTIFY_COMPLETED, srv_completed, NULL, MHD_OPTION_END);
    ck_assert_ptr_nonnull(srv.d);
    info = MHD_get_daemon_info(srv.d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    srv.port = info->port;
    pthread_mutex_lock(&srv.lock);
    srv.n_ev = 0;
    srv.seq = 0;
    memset(srv.current, 0, sizeof(srv.current));
    memset(srv.max_current, 0, sizeof(srv.max_current));
    pthread_mutex_unlock(&srv.lock);
}

static void srv_stop(void)
{
    MHD_stop_daemon(srv.d);
    srv.d = NULL;
}

/* Requests to path p (any fingerprint when fp is NULL). */
static int srv_count(int p, const char *fp, const char *status)
{
    int n = 0;

    pthread_mutex_lock(&srv.lock);
    for (int i = 0; i < srv.n_ev; i++) {
        if (srv.ev[i].path == p &&
            (!fp || strcmp(srv.ev[i].fingerprint, fp) == 0) &&
            (!status || strcmp(srv.ev[i].status, status) == 0))
            n++;
    }
    pthread_mutex_unlock(&srv.lock);
    return n;
}

/* Requests to path p that have been answered. */
static int srv_answered(int p)
{
    int n = 0;

    pthread_mutex_lock(&srv.lock);
    for (int i = 0; i < srv.n_ev; i++)
        n += srv.ev[i].path == p && srv.ev[i].done >= 0;
    pthread_mutex_unlock(&srv.lock);
    return n;
}

/* The first request to p for (fp, status); false when there is none. */
static bool srv_find(int p, const char *fp, const char *status, srv_event *out)
{
    bool found = false;

    pthread_mutex_lock(&srv.lock);
    for (int i = 0; i < srv.n_ev && !found; i++) {
        if (srv.ev[i].path == p && strcmp(srv.ev[i].fingerprint, fp) == 0 &&
            strcmp(srv.ev[i].status, status) == 0) {
            *out = srv.ev[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&srv.lock);
    return found;
}

static int srv_max_current(int p)
{
    int n;

    pthread_mutex_lock(&srv.lock);
    n = srv.max_current[p];
    pthread_mutex_unlock(&srv.lock);
    return n;
}

/* ------------------------------------------------------------------ */
/* Mock cluster, producer, dead-letter reader                           */
/* ------------------------------------------------------------------ */

static kafka_fixture *kfx;
static const char *bootstraps; /* Borrowed from kfx. */
static char targets_path[64];

static void setup(void)
{
    char err[256];
    int fd;

    kfx = kafka_fixture_new(1, err, sizeof(err));
    ck_assert_msg(kfx != NULL, "%s", err);
    bootstraps = kafka_fixture_bootstraps(kfx);
    snprintf(targets_path, sizeof(targets_path), "/tmp/check_worker.XXXXXX");
    fd = mkstemp(targets_path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    srv_start();
}

static void teardown(void)
{
    srv_stop();
    unlink(targets_path);
    kafka_fixture_destroy(kfx);
    kfx = NULL;
    bootstraps = NULL;
}

/* Creates topic (PARTITIONS partitions) and topic.dlq (1 partition). */
static void topics_create(const char *topic)
{
    char dlq_name[128];
    char err[256];

    snprintf(dlq_name, sizeof(dlq_name), "%s.dlq", topic);
    ck_assert_msg(kafka_fixture_topic_create(kfx, topic, PARTITIONS, err,
                                             sizeof(err)) == HERALD_OK,
                  "%s", err);
    ck_assert_msg(kafka_fixture_topic_create(kfx, dlq_name, 1, err,
                                             sizeof(err)) == HERALD_OK,
                  "%s", err);
}

/*
 * Writes targets.yaml: the targets section given as YAML lines, after
 * defaults that switch off health probes (no background traffic) and keep
 * one attempt per target and job attempt unless a target says otherwise.
 * "%PORT%" in targets is replaced by the receiver's port.
 */
static void targets_write(const char *targets)
{
    FILE *f = fopen(targets_path, "w");
    char port[16];

    ck_assert_ptr_nonnull(f);
    snprintf(port, sizeof(port), "%d", srv.port);
    fputs("defaults:\n"
          "  timeout_ms: 5000\n"
          "  health:\n"
          "    enabled: false\n"
          "targets:\n",
          f);
    for (const char *s = targets; *s;) {
        const char *mark = strstr(s, "%PORT%");

        if (!mark) {
            fputs(s, f);
            break;
        }
        fwrite(s, 1, (size_t)(mark - s), f);
        fputs(port, f);
        s = mark + strlen("%PORT%");
    }
    ck_assert_int_eq(fclose(f), 0);
}

static const char *const TARGET_A = "  - name: tgt-a\n"
                                    "    type: webhook\n"
                                    "    url: http://127.0.0.1:%PORT%/a\n";
static const char *const TARGET_B = "  - name: tgt-b\n"
                                    "    type: webhook\n"
                                    "    url: http://127.0.0.1:%PORT%/b\n";
static const char *const TARGET_FAIL = "  - name: tgt-fail\n"
                                       "    type: webhook\n"
                                       "    url: http://127.0.0.1:%PORT%/fail\n"
                                       "    retry:\n"
                                       "      max_attempts: 1\n";

/* An alert in Alertmanager form with the given fingerprint and status. */
static void alert_json(char *out, size_t n, const char *fp, const char *status)
{
    snprintf(out, n,
             "{\"status\":\"%s\",\"labels\":{\"alertname\":\"CheckWorker\","
             "\"severity\":\"critical\",\"fp\":\"%s\"},\"annotations\":"
             "{\"summary\":\"check\"},\"startsAt\":\"2024-05-01T12:00:00Z\","
             "\"endsAt\":\"%s\",\"generatorURL\":\"\",\"fingerprint\":\"%s\"}",
             status, fp,
             strcmp(status, "resolved") == 0 ? "2024-05-01T12:30:00Z"
                                             : "0001-01-01T00:00:00Z",
             fp);
}

static void fp_make(char *out, size_t n, int i)
{
    snprintf(out, n, "%016x", 0xc0ffee00u + (unsigned)i);
}

/* A producer on the mock cluster; messages are flushed by producer_done. */
static rd_kafka_t *producer_new(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    rd_kafka_t *rk;

    ck_assert_int_eq(rd_kafka_conf_set(conf, "bootstrap.servers", bootstraps,
                                       err, sizeof(err)),
                     RD_KAFKA_CONF_OK);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    ck_assert_msg(rk != NULL, "%s", err);
    return rk;
}

static void produce(rd_kafka_t *rk, const char *topic, int32_t partition,
                    const char *key, const char *value)
{
    rd_kafka_resp_err_t err;

    err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
        RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
        RD_KAFKA_V_VALUE((void *)value, strlen(value)),
        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    ck_assert_msg(err == RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s",
                  rd_kafka_err2str(err));
}

static void producer_done(rd_kafka_t *rk)
{
    ck_assert_int_eq(rd_kafka_flush(rk, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    ck_assert_int_eq(rd_kafka_outq_len(rk), 0);
    rd_kafka_destroy(rk);
}

/* The facts of one dead-letter record the tests look at. */
typedef struct dlq_seen {
    char reason[64];
    char target[64];
    char source_topic[128];
    char source_partition[16];
    char source_offset[32];
    char attempts[16];
    char http_status[16];
    char key[64];
    char value[1024];
    bool has_target;
} dlq_seen;

/* Fills out[index] from the dead-letter record m. */
static void dlq_seen_fill(const rd_kafka_message_t *m, int index, void *opaque)
{
    dlq_seen *s = &((dlq_seen *)opaque)[index];
    rd_kafka_headers_t *h = NULL;

    memset(s, 0, sizeof(*s));
    if (rd_kafka_message_headers(m, &h))
        h = NULL;
    kafka_fixture_header(h, "herald-reason", s->reason, sizeof(s->reason));
    s->has_target =
        kafka_fixture_header(h, "herald-target", s->target, sizeof(s->target));
    kafka_fixture_header(h, "herald-source-topic", s->source_topic,
                         sizeof(s->source_topic));
    kafka_fixture_header(h, "herald-source-partition", s->source_partition,
                         sizeof(s->source_partition));
    kafka_fixture_header(h, "herald-source-offset", s->source_offset,
                         sizeof(s->source_offset));
    kafka_fixture_header(h, "herald-attempts", s->attempts,
                         sizeof(s->attempts));
    kafka_fixture_header(h, "herald-http-status", s->http_status,
                         sizeof(s->http_status));
    snprintf(s->key, sizeof(s->key), "%.*s", (int)m->key_len,
             m->key ? (const char *)m->key : "");
    snprintf(s->value, sizeof(s->value), "%.*s", (int)m->len,
             m->payload ? (const char *)m->payload : "");
}

/*
 * Reads the dead-letter topic of topic from the beginning until want
 * records came or timeout_ms passed (bounded polling). Returns the count
 * read (at most max) into out.
 */
static int dlq_read(const char *topic, dlq_seen *out, int max, int want,
                    int timeout_ms)
{
    char dlq_name[128];
    char err[256];
    int n;

    snprintf(dlq_name, sizeof(dlq_name), "%s.dlq", topic);
    n = kafka_fixture_read_each(kfx, dlq_name, want < max ? want : max,
                                timeout_ms, dlq_seen_fill, out, err,
                                sizeof(err));
    ck_assert_msg(n >= 0, "%s", err);
    return n;
}

/*
 * Asserts that group's committed offset of every partition of topic is the
 * partition's end offset (nothing consumed is left uncommitted); a
 * partition that never had a message has no committed offset.
 */
static void assert_committed_to_end(const char *group, const char *topic)
{
    admin_partition_offsets *offs = NULL;
    size_t n = 0;
    char errstr[512];
    herald_err err;

    err = admin_group_offsets(bootstraps, NULL, 0, group, topic, &offs, &n,
                              10000, errstr, sizeof(errstr));
    ck_assert_msg(err == HERALD_OK, "group offsets: %s", errstr);
    ck_assert_uint_eq(n, PARTITIONS);
    for (size_t i = 0; i < n; i++) {
        if (offs[i].high > 0)
            ck_assert_msg(offs[i].committed == offs[i].high,
                          "partition %d: committed %lld, end offset %lld",
                          (int)offs[i].partition, (long long)offs[i].committed,
                          (long long)offs[i].high);
        else
            ck_assert_msg(offs[i].committed <= 0,
                          "partition %d: committed %lld with no messages",
                          (int)offs[i].partition, (long long)offs[i].committed);
    }
    free(offs);
}

/* ------------------------------------------------------------------ */
/* The worker on its own thread                                         */
/* ------------------------------------------------------------------ */

/* Written by the SIGUSR1 handler on the worker thread, read there too. */
static atomic_int worker_stop;

static void on_sigusr1(int sig)
{
    (void)sig;
    worker_stop = 1;
}

typedef struct worker_thread {
    pthread_t th;
    worker_config cfg;
    herald_err ret;
    char errstr[512];
    char topic[64];
    char group[64];
} worker_thread;

static void *worker_main(void *arg)
{
    worker_thread *wt = arg;

    wt->ret = worker_run(&wt->cfg, wt->errstr, sizeof(wt->errstr));
    return NULL;
}

/* Fills wt->cfg with test settings: quick commits, no API, no watching. */
static void worker_prepare(worker_thread *wt, const char *name)
{
    memset(wt, 0, sizeof(*wt));
    snprintf(wt->topic, sizeof(wt->topic), "alerts-%s", name);
    snprintf(wt->group, sizeof(wt->group), "herald-%s", name);
    topics_create(wt->topic);
    worker_config_default(&wt->cfg);
    wt->cfg.brokers = bootstraps;
    wt->cfg.topic = wt->topic;
    wt->cfg.group = wt->group;
    wt->cfg.targets_path = targets_path;
    wt->cfg.dispatchers = 8;
    wt->cfg.transport_threads = 2;
    wt->cfg.commit_interval_ms = 100;
    wt->cfg.drain_timeout_ms = 20000;
    wt->cfg.job_backoff_initial_ms = 50;
    wt->cfg.job_backoff_max_ms = 100;
    wt->cfg.dlq_timeout_ms = 10000;
    wt->cfg.targets_watch_ms = 0;
    wt->cfg.api_listen = "";
    wt->cfg.stop = &worker_stop;
    wt->cfg.reload = NULL;
}

static void worker_start(worker_thread *wt)
{
    worker_stop = 0; /* Before the thread exists: no race. */
    ck_assert_int_eq(pthread_create(&wt->th, NULL, worker_main, wt), 0);
}

/* Stops the worker (its clean shutdown drains and commits) and joins it. */
static void worker_stop_join(worker_thread *wt)
{
    ck_assert_int_eq(pthread_kill(wt->th, SIGUSR1), 0);
    ck_assert_int_eq(pthread_join(wt->th, NULL), 0);
    ck_assert_msg(wt->ret == HERALD_OK, "worker_run: %s", wt->errstr);
}

/* ------------------------------------------------------------------ */
/* Tests                                                                */
/* ------------------------------------------------------------------ */

#define HAPPY_N 30

static bool happy_all_delivered(void *arg)
{
    (void)arg;
    return srv_count(P_A, NULL, NULL) >= HAPPY_N &&
           srv_count(P_B, NULL, NULL) >= HAPPY_N;
}

START_TEST(test_happy_path_once_per_target_and_committed)
{
    worker_thread wt;
    rd_kafka_t *prod;

    worker_prepare(&wt, "happy");
    {
        char targets[512];

        snprintf(targets, sizeof(targets), "%s%s", TARGET_A, TARGET_B);
        targets_write(targets);
    }
    prod = producer_new();
    for (int i = 0; i < HAPPY_N; i++) {
        char fp[32];
        char value[512];

        fp_make(fp, sizeof(fp), i);
        alert_json(value, sizeof(value), fp, "firing");
        produce(prod, wt.topic, i % PARTITIONS, fp, value);
    }
    producer_done(prod);

    worker_start(&wt);
    ck_assert_msg(wait_until(happy_all_delivered, NULL, 30000),
                  "deliveries: a %d, b %d of %d", srv_count(P_A, NULL, NULL),
                  srv_count(P_B, NULL, NULL), HAPPY_N);
    worker_stop_join(&wt);

    /* Exactly once per (alert, target): no duplicate, none missing. */
    ck_assert_int_eq(srv_count(P_A, NULL, NULL), HAPPY_N);
    ck_assert_int_eq(srv_count(P_B, NULL, NULL), HAPPY_N);
    for (int i = 0; i < HAPPY_N; i++) {
        char fp[32];

        fp_make(fp, sizeof(fp), i);
        ck_assert_int_eq(srv_count(P_A, fp, "firing"), 1);
        ck_assert_int_eq(srv_count(P_B, fp, "firing"), 1);
    }
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

/* True once /a got a firing alert with fingerprint arg. */
static bool srv_has_firing_a(void *arg)
{
    return srv_count(P_A, arg, "firing") >= 1;
}

START_TEST(test_poison_message_dead_lettered_and_committed)
{
    worker_thread wt;
    rd_kafka_t *prod;
    dlq_seen seen[4];
    char fp[32];
    char value[512];
    static const char poison[] = "this is { not JSON";
    int n;

    worker_prepare(&wt, "poison");
    targets_write(TARGET_A);
    fp_make(fp, sizeof(fp), 100);
    alert_json(value, sizeof(value), fp, "firing");
    prod = producer_new();
    /* Partition 1: the poison message at offset 0, a good alert after it
     * (consumption continues past a bad message). */
    produce(prod, wt.topic, 1, "poison-key", poison);
    produce(prod, wt.topic, 1, fp, value);
    producer_done(prod);

    worker_start(&wt);
    n = dlq_read(wt.topic, seen, 4, 1, 30000);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(seen[0].reason, "not_json");
    ck_assert_str_eq(seen[0].source_topic, wt.topic);
    ck_assert_str_eq(seen[0].source_partition, "1");
    ck_assert_str_eq(seen[0].source_offset, "0");
    ck_assert(!seen[0].has_target);
    ck_assert_str_eq(seen[0].key, "poison-key");
    ck_assert_str_eq(seen[0].value, poison);
    /* The good alert after it is delivered: consumption went on. */
    ck_assert(wait_until(srv_has_firing_a, fp, 30000));
    worker_stop_join(&wt);
    ck_assert_int_eq(srv_count(P_A, fp, "firing"), 1);
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

START_TEST(test_partial_success_dead_letters_failed_target)
{
    worker_thread wt;
    rd_kafka_t *prod;
    dlq_seen seen[4];
    char fp[32];
    char value[512];
    char targets[512];
    int n;

    worker_prepare(&wt, "partial");
    snprintf(targets, sizeof(targets), "%s%s", TARGET_A, TARGET_FAIL);
    targets_write(targets);
    fp_make(fp, sizeof(fp), 200);
    alert_json(value, sizeof(value), fp, "firing");
    prod = producer_new();
    produce(prod, wt.topic, 2, fp, value);
    producer_done(prod);

    worker_start(&wt);
    n = dlq_read(wt.topic, seen, 4, 1, 30000);
    worker_stop_join(&wt);

    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(seen[0].target, "tgt-fail");
    ck_assert_str_eq(seen[0].reason, "target_failed");
    ck_assert_str_eq(seen[0].http_status, "500");
    ck_assert_str_eq(seen[0].source_partition, "2");
    ck_assert_str_eq(seen[0].source_offset, "0");
    ck_assert_str_eq(seen[0].key, fp);
    ck_assert_str_eq(seen[0].value, value);
    /* The healthy target got it once; partial success is not retried as a
     * job, so the failing one saw its single configured attempt. */
    ck_assert_int_eq(srv_count(P_A, fp, "firing"), 1);
    ck_assert_int_eq(srv_count(P_FAIL, fp, "firing"), 1);
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

START_TEST(test_total_failure_dead_lettered_after_budget)
{
    worker_thread wt;
    rd_kafka_t *prod;
    dlq_seen seen[4];
    char fp[32];
    char value[512];
    int n;

    worker_prepare(&wt, "total");
    wt.cfg.job_max_attempts = 2;
    targets_write(TARGET_FAIL);
    fp_make(fp, sizeof(fp), 300);
    alert_json(value, sizeof(value), fp, "firing");
    prod = producer_new();
    produce(prod, wt.topic, 0, fp, value);
    producer_done(prod);

    worker_start(&wt);
    n = dlq_read(wt.topic, seen, 4, 1, 30000);
    worker_stop_join(&wt);

    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(seen[0].reason, "budget_exhausted");
    ck_assert_str_eq(seen[0].target, "tgt-fail");
    ck_assert_str_eq(seen[0].source_partition, "0");
    ck_assert_str_eq(seen[0].source_offset, "0");
    ck_assert_str_eq(seen[0].attempts, "2");
    ck_assert_str_eq(seen[0].value, value);
    /* One request per job attempt (retry.max_attempts: 1), two attempts. */
    ck_assert_int_eq(srv_count(P_FAIL, fp, "firing"), 2);
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

#define ORDER_N 5

static bool order_all_delivered(void *arg)
{
    (void)arg;
    return srv_answered(P_ORDER) >= 2 * ORDER_N;
}

START_TEST(test_same_fingerprint_in_offset_order)
{
    worker_thread wt;
    rd_kafka_t *prod;

    worker_prepare(&wt, "order");
    targets_write("  - name: tgt-order\n"
                  "    type: webhook\n"
                  "    url: http://127.0.0.1:%PORT%/order\n");
    prod = producer_new();
    /* Every firing first, then every resolved: each pair shares a
     * fingerprint and so a partition. The receiver holds a firing for
     * 300 ms, so a resolved run alongside it would arrive first. */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < ORDER_N; i++) {
            char fp[32];
            char value[512];

            fp_make(fp, sizeof(fp), 400 + i);
            alert_json(value, sizeof(value), fp,
                       pass == 0 ? "firing" : "resolved");
            produce(prod, wt.topic, i % PARTITIONS, fp, value);
        }
    }
    producer_done(prod);

    worker_start(&wt);
    ck_assert_msg(wait_until(order_all_delivered, NULL, 30000),
                  "answered %d of %d", srv_answered(P_ORDER), 2 * ORDER_N);
    worker_stop_join(&wt);

    for (int i = 0; i < ORDER_N; i++) {
        char fp[32];
        srv_event firing;
        srv_event resolved;

        fp_make(fp, sizeof(fp), 400 + i);
        ck_assert_int_eq(srv_count(P_ORDER, fp, NULL), 2);
        ck_assert(srv_find(P_ORDER, fp, "firing", &firing));
        ck_assert(srv_find(P_ORDER, fp, "resolved", &resolved));
        ck_assert_msg(firing.done >= 0 && firing.done < resolved.arrived,
                      "%s: resolved arrived (#%ld) before its firing was "
                      "answered (#%ld)",
                      fp, resolved.arrived, firing.done);
    }
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

#define BP_N 12
#define BP_WINDOW 2

static bool bp_all_delivered(void *arg)
{
    (void)arg;
    return srv_answered(P_SLOW) >= BP_N;
}

/* True once herald_consumer_paused of the topic's partition 0 reads 1. */
static bool bp_paused(void *arg)
{
    const char *topic = arg;
    char want[256];
    buf out;
    bool found;

    snprintf(want, sizeof(want),
             "herald_consumer_paused{topic=\"%s\",partition=\"0\"} 1\n", topic);
    buf_init(&out, 1 << 22);
    found = metrics_render(&out) == HERALD_OK &&
            strstr(buf_str(&out), want) != NULL;
    buf_free(&out);
    return found;
}

START_TEST(test_backpressure_pauses_and_finishes)
{
    worker_thread wt;
    rd_kafka_t *prod;
    bool paused;

    worker_prepare(&wt, "backpressure");
    wt.cfg.window = BP_WINDOW;
    targets_write("  - name: tgt-slow\n"
                  "    type: webhook\n"
                  "    url: http://127.0.0.1:%PORT%/slow\n");
    prod = producer_new();
    /* One partition, distinct fingerprints: without the window every job
     * could run at once. */
    for (int i = 0; i < BP_N; i++) {
        char fp[32];
        char value[512];

        fp_make(fp, sizeof(fp), 500 + i);
        alert_json(value, sizeof(value), fp, "firing");
        produce(prod, wt.topic, 0, fp, value);
    }
    producer_done(prod);

    worker_start(&wt);
    paused = wait_until(bp_paused, wt.topic, 30000);
    ck_assert_msg(wait_until(bp_all_delivered, NULL, 30000),
                  "answered %d of %d", srv_answered(P_SLOW), BP_N);
    worker_stop_join(&wt);

    ck_assert_msg(paused, "partition 0 was never paused");
    ck_assert_int_eq(srv_count(P_SLOW, NULL, NULL), BP_N);
    /* A job is one request here, and a job is tracked from consume until
     * the commit point passes it: at most the window run at once. */
    ck_assert_int_le(srv_max_current(P_SLOW), BP_WINDOW);
    assert_committed_to_end(wt.group, wt.topic);
}
END_TEST

static Suite *worker_suite(void)
{
    Suite *s = suite_create("worker");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"happy_path", test_happy_path_once_per_target_and_committed},
        {"poison_message", test_poison_message_dead_lettered_and_committed},
        {"partial_success", test_partial_success_dead_letters_failed_target},
        {"total_failure", test_total_failure_dead_lettered_after_budget},
        {"same_fingerprint_order", test_same_fingerprint_in_offset_order},
        {"backpressure", test_backpressure_pauses_and_finishes},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr;
    struct sigaction sa;
    int failed;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigusr1;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    /* Once, before any thread (libcurl-thread.md). */
    curl_global_init(CURL_GLOBAL_ALL);
    sr = srunner_create(worker_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    metrics_shutdown();
    curl_global_cleanup();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
