/*
 * targets_schema.c: the schema of the generic keys of a target in
 * targets.yaml (every type shares them; per-type keys live in the plugins'
 * ops tables). One table drives the loader's decoding and defaults, the
 * masked printing and docs/TARGETS.md, so they cannot disagree.
 * Read-only data; any thread.
 */
#include <stddef.h>

#include "publishers/targets_int.h"

const char *const targets_auth_kinds[] = {"none", "bearer", "basic", "header",
                                          NULL};
static const char *const health_methods[] = {"TCP", "GET", "HEAD", NULL};

#define OFF(f) offsetof(target, f)

static const gkey retry_keys[] = {
    {"max_attempts", G_INT, "3", OFF(retry.max_attempts),
     "Attempts in all, the first included.", NULL, 1, 100, NULL},
    {"initial_backoff_ms", G_INT, "200", OFF(retry.initial_backoff_ms),
     "Backoff cap after the first failure (full jitter), ms.", NULL, 0,
     INT_MAXV, NULL},
    {"max_backoff_ms", G_INT, "10000", OFF(retry.max_backoff_ms),
     "Largest backoff cap, ms.", NULL, 0, INT_MAXV, NULL},
    {"max_elapsed_ms", G_INT, "60000", OFF(retry.max_elapsed_ms),
     "Give up once this long has passed since the first attempt, ms.", NULL, 1,
     INT_MAXV, NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

static const gkey rate_keys[] = {
    {"per_second", G_DOUBLE, NULL, OFF(rate_per_sec),
     "Token bucket rate, requests a second; 0 is unlimited (slack: 1).", NULL,
     0, 1e6, NULL},
    {"burst", G_INT, "1", OFF(rate_burst), "Token bucket size.", NULL, 1,
     100000, NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

const gkey targets_auth_keys[] = {
    {"type", G_AUTH_KIND, "none", OFF(auth.kind),
     "none, bearer, basic or header.", targets_auth_kinds, 0, 0, NULL},
    {"token", G_SECRET, NULL, OFF(auth.token), "Bearer token (type bearer).",
     NULL, 0, 0, NULL},
    {"username", G_STRING, NULL, OFF(auth.username), "User name (type basic).",
     NULL, 0, 0, NULL},
    {"password", G_SECRET, NULL, OFF(auth.password), "Password (type basic).",
     NULL, 0, 0, NULL},
    {"header", G_STRING, NULL, OFF(auth.header_name),
     "Header name (type header).", NULL, 0, 0, NULL},
    {"value", G_SECRET, NULL, OFF(auth.header_value),
     "Header value (type header).", NULL, 0, 0, NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

static const gkey tls_keys[] = {
    {"verify", G_BOOL, "true", OFF(tls_verify),
     "Verify the server certificate and host name.", NULL, 0, 0, NULL},
    {"ca_file", G_STRING, NULL, OFF(tls_ca_file),
     "PEM file of CA certificates to trust instead of the system store.", NULL,
     0, 0, NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

static const gkey health_keys[] = {
    {"enabled", G_BOOL, "true", OFF(health.enabled),
     "Probe the target in the background.", NULL, 0, 0, NULL},
    {"method", G_ENUM, "TCP", OFF(health.method),
     "TCP (connect to host:port), GET or HEAD of health.url.", health_methods,
     0, 0, NULL},
    {"url", G_URL, NULL, OFF(health.url),
     "URL probed by GET or HEAD; default the target url.", NULL, 0, 0, NULL},
    {"interval_ms", G_INT, "10000", OFF(health.interval_ms),
     "Time between probes, ms.", NULL, 100, INT_MAXV, NULL},
    {"timeout_ms", G_INT, "2000", OFF(health.timeout_ms), "Probe timeout, ms.",
     NULL, 1, INT_MAXV, NULL},
    {"degraded_latency_ms", G_INT, "1000", OFF(health.degraded_latency_ms),
     "Slower answers mark the target degraded, ms.", NULL, 1, INT_MAXV, NULL},
    {"unhealthy_after", G_INT, "3", OFF(health.unhealthy_after),
     "Consecutive failures that make the target unhealthy.", NULL, 1, 1000,
     NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

static const gkey breaker_keys[] = {
    {"failure_threshold", G_INT, "5", OFF(breaker.failure_threshold),
     "Consecutive failures that open the breaker.", NULL, 1, 100000, NULL},
    {"failure_rate", G_DOUBLE, "0", OFF(breaker.failure_rate),
     "Open when the failure rate in the window exceeds this (0 = off).", NULL,
     0, 1, NULL},
    {"window_ms", G_INT, "60000", OFF(breaker.window_ms),
     "Window of the failure rate, ms.", NULL, 1000, INT_MAXV, NULL},
    {"min_requests", G_INT, "10", OFF(breaker.min_requests),
     "Requests in the window before the rate counts.", NULL, 1, 1000000, NULL},
    {"open_timeout_ms", G_INT, "30000", OFF(breaker.open_timeout_ms),
     "Time open before a half-open probe, ms.", NULL, 1, INT_MAXV, NULL},
    {"half_open_probes", G_INT, "1", OFF(breaker.half_open_probes),
     "Requests let through at once while half-open.", NULL, 1, 1000, NULL},
    {"success_threshold", G_INT, "2", OFF(breaker.success_threshold),
     "Successes while half-open that close the breaker.", NULL, 1, 1000, NULL},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};

const gkey targets_gen_keys[] = {
    {"name", G_STRING, NULL, OFF(name),
     "Unique name, [a-z0-9-], at most 63 bytes. Required.", NULL, 0, 0, NULL},
    {"type", G_STRING, NULL, 0,
     "Target type: webhook, slack, pagerduty or rootly. Required.", NULL, 0, 0,
     NULL},
    {"url", G_URL, NULL, OFF(url),
     "http or https URL (pagerduty and rootly: API base URL).", NULL, 0, 0,
     NULL},
    {"enabled", G_BOOL, "true", OFF(enabled),
     "Disabled targets are loaded and printed but never sent to.", NULL, 0, 0,
     NULL},
    {"headers", G_HEADERS, NULL, 0, "Extra request headers, name: value.", NULL,
     0, 0, NULL},
    {"auth", G_SECTION, NULL, 0, "Authentication.", NULL, 0, 0,
     targets_auth_keys},
    {"timeout_ms", G_INT, "5000", OFF(timeout_ms),
     "Whole-request timeout of one attempt, ms.", NULL, 1, INT_MAXV, NULL},
    {"retry", G_SECTION, NULL, 0, "Retry policy.", NULL, 0, 0, retry_keys},
    {"max_concurrency", G_INT, "16", OFF(max_concurrency),
     "Requests in flight at once, retries included.", NULL, 1, 10000, NULL},
    {"rate_limit", G_SECTION, NULL, 0, "Token bucket.", NULL, 0, 0, rate_keys},
    {"matchers", G_MATCHERS, NULL, 0,
     "Alertmanager label matchers; all must match.", NULL, 0, 0, NULL},
    {"tls", G_SECTION, NULL, 0, "TLS settings.", NULL, 0, 0, tls_keys},
    {"health", G_SECTION, NULL, 0, "Active health probe.", NULL, 0, 0,
     health_keys},
    {"circuit_breaker", G_SECTION, NULL, 0, "Circuit breaker.", NULL, 0, 0,
     breaker_keys},
    {NULL, 0, NULL, 0, NULL, NULL, 0, 0, NULL}};
