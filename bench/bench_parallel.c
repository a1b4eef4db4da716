/*
 * bench_parallel.c: benchmark of the ParallelPublisher (not a test).
 *
 * Starts its own receiver in-process (the tests' HTTP fixture,
 * tests/http_fixture.h: libmicrohttpd, one thread per connection, on
 * 127.0.0.1): /slow answers 200 after 50 ms, /instant answers 200 at once.
 * Targets use the fixture's test plugin (POST of the fingerprint). Then
 * measures and prints:
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
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"
#include "publishers/parallel.h"
#include "tests/http_fixture.h"

#define MAX_TARGETS 10
#define SLOW_MS 50

static http_fixture *fx;

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

static target *slow_ptrs[MAX_TARGETS];
static target *instant_ptrs[MAX_TARGETS];
static alert bench_alert;

/* MAX_TARGETS fixture targets named <prefix>-<i> sending to path. */
static void init_targets(target **ptrs, const char *path, const char *prefix)
{
    char name[32];
    char url[128];

    http_fixture_url(fx, path, url, sizeof url);
    for (int i = 0; i < MAX_TARGETS; i++) {
        snprintf(name, sizeof name, "%s-%d", prefix, i);
        ptrs[i] = http_fixture_target_new(name, url);
        if (!ptrs[i]) {
            fprintf(stderr, "out of memory\n");
            exit(1);
        }
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
    http_fixture_url(fx, "/instant", url, sizeof url);
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
    static const http_fixture_rule rules[] = {
        {.path = "/slow", .delay_ms = SLOW_MS},
        {.path = "/instant"},
    };
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
    fx = http_fixture_new(rules, sizeof rules / sizeof rules[0], err,
                          sizeof err);
    if (!fx) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    memset(&bench_alert, 0, sizeof bench_alert);
    snprintf(bench_alert.fingerprint, sizeof bench_alert.fingerprint,
             "0123456789abcdef");
    init_targets(slow_ptrs, "/slow", "slow");
    init_targets(instant_ptrs, "/instant", "instant");

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
    http_fixture_destroy(fx);
    for (int i = 0; i < MAX_TARGETS; i++) {
        http_fixture_target_destroy(slow_ptrs[i]);
        http_fixture_target_destroy(instant_ptrs[i]);
    }
    metrics_shutdown();
    return 0;
}
