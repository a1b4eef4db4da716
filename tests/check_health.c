/*
 * check_health.c: the health monitor (publishers/health.c). TCP probes
 * against a loopback socket opened here and a closed port; HTTP GET and
 * HEAD probes against a small libmicrohttpd server answering 200, 500 or
 * slowly; passive results; unknown for unmonitored names; state kept
 * across health_set_targets; the probe thread probing on its own and being
 * stopped while running. Probes are driven with health_probe_all(); the
 * thread's results are awaited with a bounded poll loop.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "publishers/breaker.h"
#include "publishers/health.h"
#include "worker/log.h"
#include "worker/metrics.h"

/*
 * How long the slow endpoint takes, and the latency judged degraded where
 * a test wants slowness to count; elsewhere the threshold is LENIENT_MS,
 * so that a loaded machine (sanitizers, parallel builds) cannot turn a
 * healthy loopback answer into a degraded one.
 */
#define SLOW_MS 300
#define DEGRADED_MS 100
#define LENIENT_MS 5000
/* Upper bound of every poll loop; only reached when a test fails. */
#define WAIT_MS 10000

/* A target filled with what the monitor reads. */
struct tgt_holder {
    target tgt;
    char name[64];
    char url[128];
    char method[8];
};

static void tgt_make(struct tgt_holder *th, const char *name, const char *url,
                     const char *method)
{
    memset(th, 0, sizeof(*th));
    snprintf(th->name, sizeof(th->name), "%s", name);
    snprintf(th->url, sizeof(th->url), "%s", url);
    snprintf(th->method, sizeof(th->method), "%s", method);
    th->tgt.name = th->name;
    th->tgt.url = th->url;
    th->tgt.enabled = true;
    th->tgt.tls_verify = true;
    th->tgt.health.enabled = true;
    th->tgt.health.method = th->method;
    th->tgt.health.interval_ms = 10000;
    th->tgt.health.timeout_ms = 5000;
    th->tgt.health.degraded_latency_ms = LENIENT_MS;
    th->tgt.health.unhealthy_after = 3;
}

/* A listening loopback TCP socket; *port receives its port. */
static int listener_open(int *port)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(fd, 64), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    *port = ntohs(sin.sin_port);
    return fd;
}

/* A loopback port nobody listens on (bound, then closed). */
static int closed_port(void)
{
    int port;
    int fd = listener_open(&port);

    close(fd);
    return port;
}

/* Serves /ok (200), /fail (500), /slow (200 after SLOW_MS), /moved (302). */
static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn,
                                    const char *url, const char *method,
                                    const char *version,
                                    const char *upload_data,
                                    size_t *upload_data_size, void **con_cls)
{
    struct MHD_Response *resp;
    unsigned int status = MHD_HTTP_OK;
    enum MHD_Result ret;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    if (strcmp(url, "/fail") == 0) {
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
    } else if (strcmp(url, "/slow") == 0) {
        /* Simulates a slow target; nothing waits on this for ordering. */
        struct timespec ts = {0, SLOW_MS * 1000000L};

        nanosleep(&ts, NULL);
    } else if (strcmp(url, "/moved") == 0) {
        status = MHD_HTTP_FOUND;
    } else if (strcmp(url, "/ok") != 0) {
        status = MHD_HTTP_NOT_FOUND;
    }
    resp = MHD_create_response_from_buffer(2, (void *)"ok",
                                           MHD_RESPMEM_PERSISTENT);
    ck_assert_ptr_nonnull(resp);
    if (status == MHD_HTTP_FOUND)
        MHD_add_response_header(resp, "Location", "/ok");
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static struct MHD_Daemon *http_start(int *port)
{
    struct sockaddr_in sin;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0,
        NULL, NULL, http_handler, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&sin, MHD_OPTION_END);
    ck_assert_ptr_nonnull(d);
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    ck_assert_ptr_nonnull(info);
    *port = info->port;
    return d;
}

static health *monitor_new(bool thread)
{
    char err[256] = "";
    health *h = health_new(thread, err, sizeof(err));

    ck_assert_msg(h != NULL, "health_new: %s", err);
    return h;
}

/* Polls until name has status want or WAIT_MS passed; true when reached. */
static bool await_status(health *h, const char *name, health_status want)
{
    int64_t deadline = herald_now_ms() + WAIT_MS;

    while (herald_now_ms() < deadline) {
        struct timespec ts = {0, 5 * 1000000L};

        if (health_get(h, name) == want)
            return true;
        nanosleep(&ts, NULL);
    }
    return health_get(h, name) == want;
}

/* Value of the metric line starting with prefix, or -1 when absent. */
static double metric_value(const char *prefix)
{
    buf out;
    double v = -1.0;
    const char *p;
    size_t n = strlen(prefix);

    buf_init(&out, 1 << 22);
    ck_assert_int_eq(metrics_render(&out), HERALD_OK);
    p = buf_str(&out);
    while (p != NULL && *p != '\0') {
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    buf_free(&out);
    return v;
}

START_TEST(test_tcp_healthy)
{
    struct tgt_holder a;
    target *list[1];
    char url[128];
    int port;
    int fd = listener_open(&port);
    health *h = monitor_new(false);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", port);
    tgt_make(&a, "tcp_up", url, "TCP");
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    ck_assert_int_eq(health_get(h, "tcp_up"), HEALTH_UNKNOWN);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_up"), HEALTH_HEALTHY);
    ck_assert(metric_value("herald_target_health{target=\"tcp_up\"}") == 1.0);
    ck_assert(metric_value("herald_health_probes_total{target=\"tcp_up\","
                           "result=\"success\"}") == 1.0);

    /* A scheme curl does not know works when the URL names the port. */
    snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
    tgt_make(&a, "tcp_scheme", url, "TCP");
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_scheme"), HEALTH_HEALTHY);
    health_destroy(h);
    close(fd);
}
END_TEST

START_TEST(test_tcp_closed_port)
{
    struct tgt_holder a;
    struct tgt_holder bad;
    target *list[2];
    char url[128];
    health *h = monitor_new(false);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", closed_port());
    tgt_make(&a, "tcp_down", url, "TCP");
    /* A URL without a usable host fails as well. */
    tgt_make(&bad, "tcp_bad_url", "not a url", "TCP");
    list[0] = &a.tgt;
    list[1] = &bad.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    /* Fewer than unhealthy_after failures: degraded, not unhealthy. */
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_DEGRADED);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_DEGRADED);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "tcp_down"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "tcp_bad_url"), HEALTH_UNHEALTHY);
    ck_assert(metric_value("herald_target_health{target=\"tcp_down\"}") == 3.0);
    ck_assert(metric_value("herald_health_probes_total{target=\"tcp_down\","
                           "result=\"failure\"}") == 3.0);
    health_destroy(h);
}
END_TEST

START_TEST(test_http_probes)
{
    struct tgt_holder t[5];
    target *list[5];
    char url[128];
    int port;
    struct MHD_Daemon *d = http_start(&port);
    health *h = monitor_new(false);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/ok", port);
    tgt_make(&t[0], "http_ok", url, "GET");
    tgt_make(&t[1], "http_head", url, "HEAD");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fail", port);
    tgt_make(&t[2], "http_fail", url, "GET");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/slow", port);
    tgt_make(&t[3], "http_slow", url, "GET");
    t[3].tgt.health.degraded_latency_ms = DEGRADED_MS;
    /* The probe URL may differ from the target URL; 3xx counts as up. */
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/fail", port);
    tgt_make(&t[4], "http_moved", url, "GET");
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/moved", port);
    t[4].tgt.health.url = url;
    for (int i = 0; i < 5; i++)
        list[i] = &t[i].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 5), HERALD_OK);

    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "http_ok"), HEALTH_HEALTHY);
    ck_assert_int_eq(health_get(h, "http_head"), HEALTH_HEALTHY);
    ck_assert_int_eq(health_get(h, "http_fail"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_slow"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_moved"), HEALTH_HEALTHY);
    health_probe_all(h);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "http_fail"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "http_slow"), HEALTH_DEGRADED);
    ck_assert_int_eq(health_get(h, "http_ok"), HEALTH_HEALTHY);
    ck_assert(metric_value("herald_health_probes_total{target=\"http_ok\","
                           "result=\"success\"}") == 3.0);
    health_destroy(h);
    MHD_stop_daemon(d);
}
END_TEST

START_TEST(test_passive)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(false);

    /* No active probes: only deliveries count. */
    tgt_make(&a, "passive", "http://127.0.0.1:1/", "TCP");
    a.tgt.health.enabled = false;
    a.tgt.health.degraded_latency_ms = DEGRADED_MS;
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_probe_all(h);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_UNKNOWN);

    health_record(h, "passive", true, 5.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* A slow success is degraded; a fast one after it is healthy. */
    health_record(h, "passive", true, DEGRADED_MS + 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", true, DEGRADED_MS - 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* Failures: degraded, then unhealthy at unhealthy_after in a row. */
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    health_record(h, "passive", false, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_UNHEALTHY);
    /* One success ends unhealthy; the recent failures keep it degraded
     * until five results in a row succeeded. */
    for (int i = 0; i < 4; i++) {
        health_record(h, "passive", true, 1.0);
        ck_assert_int_eq(health_get(h, "passive"), HEALTH_DEGRADED);
    }
    health_record(h, "passive", true, 1.0);
    ck_assert_int_eq(health_get(h, "passive"), HEALTH_HEALTHY);
    /* Passive results are not probes. */
    ck_assert(metric_value("herald_health_probes_total{target=\"passive\","
                           "result=\"success\"}") == -1.0);
    health_destroy(h);
}
END_TEST

START_TEST(test_unknown)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(false);

    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    /* Results for names not monitored are ignored. */
    health_record(h, "nobody", false, 1.0);
    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    tgt_make(&a, "someone", "http://127.0.0.1:1/", "TCP");
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    ck_assert_int_eq(health_get(h, "someone"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, "nobody"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(NULL, "someone"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, NULL), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_set_targets(h, NULL, 1), HERALD_ERR_INVALID);
    ck_assert_str_eq(health_status_name(HEALTH_UNKNOWN), "unknown");
    ck_assert_str_eq(health_status_name(HEALTH_HEALTHY), "healthy");
    ck_assert_str_eq(health_status_name(HEALTH_DEGRADED), "degraded");
    ck_assert_str_eq(health_status_name(HEALTH_UNHEALTHY), "unhealthy");
    health_record(NULL, "someone", true, 1.0);
    health_probe_all(NULL);
    health_destroy(h);
    health_destroy(NULL);
}
END_TEST

START_TEST(test_set_targets_keeps_state)
{
    struct tgt_holder first[2];
    struct tgt_holder second[2];
    target *list[2];
    health *h = monitor_new(false);

    tgt_make(&first[0], "stays", "http://127.0.0.1:1/", "TCP");
    tgt_make(&first[1], "goes", "http://127.0.0.1:1/", "TCP");
    first[0].tgt.health.enabled = false;
    first[1].tgt.health.enabled = false;
    list[0] = &first[0].tgt;
    list[1] = &first[1].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    for (int i = 0; i < 3; i++)
        health_record(h, "stays", false, 1.0);
    health_record(h, "goes", true, 1.0);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "goes"), HEALTH_HEALTHY);

    /* A reload: new target objects, one name kept, one new. */
    tgt_make(&second[0], "stays", "http://127.0.0.1:2/", "TCP");
    tgt_make(&second[1], "new", "http://127.0.0.1:2/", "TCP");
    second[0].tgt.health.enabled = false;
    second[1].tgt.health.enabled = false;
    memset(first, 0, sizeof(first));
    list[0] = &second[0].tgt;
    list[1] = &second[1].tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNHEALTHY);
    ck_assert_int_eq(health_get(h, "new"), HEALTH_UNKNOWN);
    ck_assert_int_eq(health_get(h, "goes"), HEALTH_UNKNOWN);
    ck_assert(metric_value("herald_target_health{target=\"goes\"}") == -1.0);
    ck_assert(metric_value("herald_target_health{target=\"stays\"}") == 3.0);
    /* The kept counters go on: one success leaves unhealthy. */
    health_record(h, "stays", true, 1.0);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_DEGRADED);

    /* An empty set forgets everything. */
    ck_assert_int_eq(health_set_targets(h, NULL, 0), HERALD_OK);
    ck_assert_int_eq(health_get(h, "stays"), HEALTH_UNKNOWN);
    health_destroy(h);
}
END_TEST

START_TEST(test_thread_probes)
{
    struct tgt_holder a;
    struct tgt_holder off;
    target *list[2];
    char url[128];
    int port;
    int fd = listener_open(&port);
    health *h = monitor_new(true);

    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    tgt_make(&a, "threaded", url, "TCP");
    a.tgt.health.interval_ms = 10;
    /* A disabled target is never probed. */
    tgt_make(&off, "disabled", url, "TCP");
    off.tgt.enabled = false;
    off.tgt.health.interval_ms = 10;
    list[0] = &a.tgt;
    list[1] = &off.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 2), HERALD_OK);
    ck_assert(await_status(h, "threaded", HEALTH_HEALTHY));
    /* The thread keeps probing: closing the port makes it unhealthy. */
    close(fd);
    ck_assert(await_status(h, "threaded", HEALTH_UNHEALTHY));
    ck_assert_int_eq(health_get(h, "disabled"), HEALTH_UNKNOWN);
    /* Destroyed while the thread runs and probes. */
    health_destroy(h);
}
END_TEST

START_TEST(test_thread_destroy_idle)
{
    struct tgt_holder a;
    target *list[1];
    health *h = monitor_new(true);

    /* Idle thread (nothing due for a long time) stops at once. */
    tgt_make(&a, "idle", "http://127.0.0.1:1/", "TCP");
    a.tgt.health.enabled = false;
    list[0] = &a.tgt;
    ck_assert_int_eq(health_set_targets(h, list, 1), HERALD_OK);
    health_destroy(h);
    health_destroy(monitor_new(true));
}
END_TEST

static Suite *health_suite(void)
{
    Suite *s = suite_create("health");
    const struct {
        const char *name;
        const TTest *fn;
    } cases[] = {
        {"tcp_healthy", test_tcp_healthy},
        {"tcp_closed_port", test_tcp_closed_port},
        {"http_probes", test_http_probes},
        {"passive", test_passive},
        {"unknown", test_unknown},
        {"set_targets_keeps_state", test_set_targets_keeps_state},
        {"thread_probes", test_thread_probes},
        {"thread_destroy_idle", test_thread_destroy_idle},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        TCase *tc = tcase_create(cases[i].name);

        tcase_add_test(tc, cases[i].fn);
        tcase_set_timeout(tc, 60);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr;
    int failed;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    sr = srunner_create(health_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    metrics_shutdown();
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
