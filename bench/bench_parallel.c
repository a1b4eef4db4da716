/*
 * bench_parallel.c: benchmark of the ParallelPublisher (not a test).
 *
 * Starts its own receivers in-process (libmicrohttpd, one thread per
 * connection, on 127.0.0.1): /slow answers 200 after 50 ms, /instant
 * answers 200 at once. Then measures and prints:
 *   1. for 2, 5 and 10 targets answering in 50 ms: p50/p99 latency of one
 *      publish call in parallel (max_concurrent_targets = 0) and sequential
 *      (the same targets through the same API with max_concurrent_targets
 *      = 1), and the speed-up (sequential p50 / parallel p50);
 *   2. the latency ratio of 10 targets to 2 targets (parallel p50);
 *   3. orchestration overhead per target, in microseconds, with the instant
 *      receiver: (herald p50 - raw libcurl p50) / targets, where "raw
 *      libcurl" does the same work (the same number of keep-alive POSTs of
 *      the same body, all at once, on one multi handle in the calling
 *      thread) with no herald code;
 *   4. CPU time per delivery (getrusage of the whole process, receiver
 *      threads included) for herald and for raw libcurl, and the
 *      difference (herald's own share).
 *
 * Usage: bench_parallel [iterations]   (default 40; sequential runs use
 * half as many). See docs/PERFORMANCE.md for figures and targets.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>

#include "publishers/breaker.h"
#include "publishers/parallel.h"
#include "worker/log.h"
#include "worker/metrics.h"

#define MAX_TARGETS 10
#define SLOW_MS 50

static int srv_port;

static double now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double cpu_us(void)
{
    struct rusage ru;

    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static enum MHD_Result srv_handler(void *cls, struct MHD_Connection *c,
                                   const char *url, const char *method,
                                   const char *version, const char *upload_data,
                                   size_t *upload_data_size, void **con_cls)
{
    static int marker;
    struct MHD_Response *resp;
    enum MHD_Result ret;

    (void)cls;
    (void)method;
    (void)version;
    (void)upload_data;
    if (*con_cls == NULL) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/slow") == 0) {
        struct timespec ts = {0, SLOW_MS * 1000000L};

        nanosleep(&ts, NULL);
    }
    resp = MHD_create_response_from_buffer(2, (void *)"ok",
                                           MHD_RESPMEM_PERSISTENT);
    ret = MHD_queue_response(c, 200, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* The benchmark's plugin: POST the fingerprint to the target URL. */
static herald_err bench_build(const target *tgt, const alert *a,
                              http_request *req, char *errstr, size_t n)
{
    (void)errstr;
    (void)n;
    req->url = strdup(tgt->url);
    if (!req->url)
        return HERALD_ERR_NOMEM;
    if (http_request_add_header(req, "Content-Type", "text/plain"))
        return HERALD_ERR_NOMEM;
    return buf_append_str(&req->body, a->fingerprint);
}

static const target_key bench_keys[] = {{NULL, 0, 0, NULL, NULL, false, NULL}};
static const target_plugin bench_plugin = {
    .name = "bench", .keys = bench_keys, .build_request = bench_build};

static target targets_slow[MAX_TARGETS];
static target targets_instant[MAX_TARGETS];
static target *slow_ptrs[MAX_TARGETS];
static target *instant_ptrs[MAX_TARGETS];
static alert bench_alert;

static void init_targets(target *ts, target **ptrs, const char *path,
                         const char *prefix)
{
    for (int i = 0; i < MAX_TARGETS; i++) {
        char name[32];
        char url[128];
        target *t = &ts[i];

        snprintf(name, sizeof name, "%s-%d", prefix, i);
        snprintf(url, sizeof url, "http://127.0.0.1:%d%s", srv_port, path);
        memset(t, 0, sizeof *t);
        t->name = strdup(name);
        t->url = strdup(url);
        t->plugin = &bench_plugin;
        t->enabled = true;
        t->timeout_ms = 5000;
        t->retry.max_attempts = 1;
        t->retry.initial_backoff_ms = 200;
        t->retry.max_backoff_ms = 10000;
        t->retry.max_elapsed_ms = 60000;
        t->max_concurrency = 16;
        t->rate_burst = 1;
        t->tls_verify = true;
        breaker_config_default(&t->breaker);
        ptrs[i] = t;
    }
}

static int cmp_double(const void *x, const void *y)
{
    double a = *(const double *)x;
    double b = *(const double *)y;

    return a < b ? -1 : a > b;
}

/* Percentile p (0..100) of n sorted samples, nearest rank. */
static double pct(const double *v, int n, double p)
{
    int k = (int)(p / 100.0 * n + 0.999999) - 1;

    if (k < 0)
        k = 0;
    if (k >= n)
        k = n - 1;
    return v[k];
}

/* Runs iters publishes; fills p50/p99 in ms; returns deliveries. */
static long run_publish(parallel_publisher *pp, target **ts, int n,
                        int max_conc, int iters, double *p50, double *p99)
{
    double *lat = calloc((size_t)iters, sizeof *lat);
    publish_opts o;
    long delivered = 0;

    publish_opts_default(&o);
    o.max_concurrent_targets = max_conc;
    for (int i = -1; i < iters; i++) {
        publish_result res;
        double t0 = now_us();

        publish_result_init(&res);
        if (publish_to_multiple(pp, &bench_alert, ts, (size_t)n, &o, &res) !=
                HERALD_OK ||
            res.succeeded != (size_t)n) {
            fprintf(stderr, "publish failed: %zu of %d delivered\n",
                    res.succeeded, n);
            exit(1);
        }
        /* Iteration -1 warms the connections up. */
        if (i >= 0) {
            lat[i] = (now_us() - t0) / 1000.0;
            delivered += (long)res.succeeded;
        }
        publish_result_free(&res);
    }
    qsort(lat, (size_t)iters, sizeof *lat, cmp_double);
    *p50 = pct(lat, iters, 50);
    *p99 = pct(lat, iters, 99);
    free(lat);
    return delivered;
}

static size_t discard(char *p, size_t s, size_t n, void *ud)
{
    (void)p;
    (void)ud;
    return s * n;
}

/* The same work with libcurl alone: n keep-alive POSTs at once. */
static void run_raw(int n, int iters, double *p50)
{
    CURLM *multi = curl_multi_init();
    CURL *easy[MAX_TARGETS];
    struct curl_slist *hdr =
        curl_slist_append(NULL, "Content-Type: text/plain");
    double *lat = calloc((size_t)iters, sizeof *lat);
    char url[128];

    hdr = curl_slist_append(hdr, "Expect:");
    snprintf(url, sizeof url, "http://127.0.0.1:%d/instant", srv_port);
    for (int i = 0; i < n; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bench_alert.fingerprint);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_TCP_NODELAY, 1L);
    }
    for (int it = -1; it < iters; it++) {
        double t0 = now_us();
        int running = 0;

        for (int i = 0; i < n; i++)
            curl_multi_add_handle(multi, easy[i]);
        do {
            curl_multi_perform(multi, &running);
            if (running)
                curl_multi_poll(multi, NULL, 0, 1000, NULL);
        } while (running);
        for (int i = 0; i < n; i++)
            curl_multi_remove_handle(multi, easy[i]);
        if (it >= 0)
            lat[it] = (now_us() - t0) / 1000.0;
    }
    qsort(lat, (size_t)iters, sizeof *lat, cmp_double);
    *p50 = pct(lat, iters, 50);
    for (int i = 0; i < n; i++)
        curl_easy_cleanup(easy[i]);
    curl_multi_cleanup(multi);
    curl_slist_free_all(hdr);
    free(lat);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 40;
    const int sizes[] = {2, 5, 10};
    double par50[3], par99[3], seq50[3], seq99[3];
    struct MHD_Daemon *d;
    struct sockaddr_in sin;
    parallel_publisher *pp;
    char err[256];
    double h50, r50, c0, cpu_herald, cpu_raw;
    long deliveries;
    int over_n = MAX_TARGETS;
    int over_iters;

    if (iters < 5)
        iters = 5;
    over_iters = iters * 25;
    log_init(LOG_LEVEL_OFF, LOG_FORMAT_TEXT);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD, 0,
        NULL, NULL, srv_handler, NULL, MHD_OPTION_SOCK_ADDR, &sin,
        MHD_OPTION_CONNECTION_LIMIT, 1000u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "cannot start the receiver\n");
        return 1;
    }
    srv_port = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port;
    memset(&bench_alert, 0, sizeof bench_alert);
    snprintf(bench_alert.fingerprint, sizeof bench_alert.fingerprint,
             "0123456789abcdef");
    init_targets(targets_slow, slow_ptrs, "/slow", "slow");
    init_targets(targets_instant, instant_ptrs, "/instant", "instant");

    pp = parallel_new(NULL, NULL, err, sizeof err);
    if (!pp) {
        fprintf(stderr, "parallel_new: %s\n", err);
        return 1;
    }

    printf("herald ParallelPublisher benchmark: receivers answer in %d ms, "
           "%d iterations (sequential %d)\n\n",
           SLOW_MS, iters, iters / 2);
    printf("%-8s %12s %12s %12s %12s %9s\n", "targets", "par p50 ms",
           "par p99 ms", "seq p50 ms", "seq p99 ms", "speed-up");
    for (int s = 0; s < 3; s++) {
        int n = sizes[s];

        run_publish(pp, slow_ptrs, n, 0, iters, &par50[s], &par99[s]);
        run_publish(pp, slow_ptrs, n, 1, iters / 2, &seq50[s], &seq99[s]);
        printf("%-8d %12.2f %12.2f %12.2f %12.2f %8.2fx\n", n, par50[s],
               par99[s], seq50[s], seq99[s], seq50[s] / par50[s]);
    }
    printf("\nlatency ratio 10 vs 2 targets (parallel p50): %.3f\n",
           par50[2] / par50[0]);

    /* Overhead with an instant receiver, and CPU per delivery. */
    c0 = cpu_us();
    deliveries = run_publish(pp, instant_ptrs, over_n, 0, over_iters, &h50,
                             &(double){0});
    cpu_herald = (cpu_us() - c0) / (double)(deliveries + over_n);
    c0 = cpu_us();
    run_raw(over_n, over_iters, &r50);
    cpu_raw = (cpu_us() - c0) / (double)(over_n * (over_iters + 1));
    printf("\ninstant receiver, %d targets, %d iterations:\n", over_n,
           over_iters);
    printf("  herald publish p50          %8.1f us\n", h50 * 1000.0);
    printf("  raw libcurl (same work) p50 %8.1f us\n", r50 * 1000.0);
    printf("  orchestration overhead      %8.1f us per target\n",
           (h50 - r50) * 1000.0 / over_n);
    printf("  CPU per delivery: herald %.1f us, raw libcurl %.1f us "
           "(process, receiver included), herald's share %.1f us\n",
           cpu_herald, cpu_raw, cpu_herald - cpu_raw);

    parallel_destroy(pp);
    MHD_stop_daemon(d);
    for (int i = 0; i < MAX_TARGETS; i++) {
        free(targets_slow[i].name);
        free(targets_slow[i].url);
        free(targets_instant[i].name);
        free(targets_instant[i].url);
    }
    metrics_shutdown();
    return 0;
}
