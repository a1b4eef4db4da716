/*
 * check_api.c: tests of the HTTP API (worker/api.c) over real sockets on
 * 127.0.0.1, with a libcurl easy handle as the client and fake worker
 * callbacks that record what they were given.
 */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "core/metrics.h"
#include "tests/check_main.h"
#include "worker/api.h"

#define TOKEN "s3cret-token"
#define MAX_BODY 4096

/* What the fake publish callback saw; guarded by lock (API threads write,
 * the test thread reads). */
typedef struct fake_worker {
    pthread_mutex_t lock;
    bool ready;
    int publish_calls;
    api_publish_mode mode;
    char names[4][32];
    size_t n_names;
    char fingerprint[ALERT_FINGERPRINT_LEN];
    char alertname[64];
    char severity[32];
    pthread_cond_t cond; /* Signals blocked/release changes. */
    bool blocked;        /* A publish to "block" is waiting. */
    bool release;        /* Lets that publish return. */
} fake_worker;

static fake_worker fw;
static api_server *srv;
static char base[64];

static bool fake_ready(void *opaque)
{
    fake_worker *w = opaque;
    bool r;

    pthread_mutex_lock(&w->lock);
    r = w->ready;
    pthread_mutex_unlock(&w->lock);
    return r;
}

static herald_err fake_publish(void *opaque, api_publish_mode mode,
                               const alert *a, const char *const *names,
                               size_t n_names, json_object **result,
                               int *http_status, char *errstr,
                               size_t errstr_size)
{
    fake_worker *w = opaque;
    const char *v;
    size_t i;

    pthread_mutex_lock(&w->lock);
    w->publish_calls++;
    w->mode = mode;
    w->n_names = n_names;
    for (i = 0; i < n_names && i < 4; i++)
        snprintf(w->names[i], sizeof(w->names[i]), "%s", names[i]);
    memcpy(w->fingerprint, a->fingerprint, sizeof(w->fingerprint));
    v = alert_kvs_get(&a->labels, "alertname");
    snprintf(w->alertname, sizeof(w->alertname), "%s", v ? v : "");
    v = alert_severity(a);
    snprintf(w->severity, sizeof(w->severity), "%s", v ? v : "");
    if (n_names == 1 && strcmp(names[0], "block") == 0) {
        /* Stands for a publish waiting on slow targets. */
        w->blocked = true;
        pthread_cond_broadcast(&w->cond);
        while (!w->release)
            pthread_cond_wait(&w->cond, &w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    for (i = 0; i < n_names; i++) {
        if (strcmp(names[i], "nope") == 0) {
            snprintf(errstr, errstr_size, "unknown target \"%s\"", names[i]);
            return HERALD_ERR_NOT_FOUND;
        }
    }
    *result = json_object_new_object();
    json_object_object_add(*result, "mode",
                           json_object_new_string(api_publish_mode_name(mode)));
    *http_status = 0;
    return HERALD_OK;
}

static json_object *fake_stats(void *opaque)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "totals", json_object_new_int(7));
    return o;
}

static json_object *fake_targets(void *opaque)
{
    return json_object_new_array();
}

static void start_server(bool with_callbacks)
{
    api_config cfg;
    char err[256] = "";

    memset(&fw, 0, sizeof(fw));
    pthread_mutex_init(&fw.lock, NULL);
    pthread_cond_init(&fw.cond, NULL);
    api_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 2;
    cfg.max_body_bytes = MAX_BODY;
    if (with_callbacks) {
        cfg.token = TOKEN;
        cfg.opaque = &fw;
        cfg.ready = fake_ready;
        cfg.publish = fake_publish;
        cfg.stats = fake_stats;
        cfg.targets = fake_targets;
    }
    srv = api_new(&cfg, err, sizeof(err));
    ck_assert_msg(srv != NULL, "api_new: %s", err);
    ck_assert_int_gt(api_port(srv), 0);
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", api_port(srv));
}

static void setup(void)
{
    start_server(true);
}

static void setup_bare(void)
{
    start_server(false);
}

static void teardown(void)
{
    api_destroy(srv);
    srv = NULL;
    pthread_cond_destroy(&fw.cond);
    pthread_mutex_destroy(&fw.lock);
    metrics_shutdown();
}

typedef struct http_answer {
    long status;
    char content_type[128];
    char allow[64];
    buf body;
    json_object *json; /* Parsed body when it is JSON, else NULL. */
} http_answer;

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    http_answer *ans = ud;

    if (buf_append(&ans->body, p, size * n) != HERALD_OK)
        return 0;
    return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    http_answer *ans = ud;
    size_t len = size * n;

    /* "Allow: POST\r\n": the value without the name, space and CRLF. */
    if (len > 9 && strncasecmp(p, "Allow: ", 7) == 0)
        snprintf(ans->allow, sizeof(ans->allow), "%.*s",
                 (int)(len - 9 > 60 ? 60 : len - 9), p + 7);
    return len;
}

/*
 * Sends one request. body may be NULL (no body); auth is a full
 * Authorization header value or NULL; expect is "100-continue", "" (no
 * Expect header) or NULL (curl's choice).
 */
static void http(const char *method, const char *path, const char *body,
                 size_t body_len, const char *auth, const char *expect,
                 http_answer *ans)
{
    CURL *c = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char url[160];
    char line[256];
    char *ct = NULL;

    memset(ans, 0, sizeof(*ans));
    buf_init(&ans->body, 1 << 20);
    if (!c)
        return;
    snprintf(url, sizeof(url), "%s%s", base, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    }
    if (auth) {
        snprintf(line, sizeof(line), "Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, line);
    }
    if (expect) {
        snprintf(line, sizeof(line), "Expect:%s%s", expect[0] ? " " : "",
                 expect);
        hdrs = curl_slist_append(hdrs, line);
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, ans);
    /* A transfer error leaves status 0, which every caller's assertion on
     * the status catches (no assertion here: threads call this too). */
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &ans->status);
    curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
    snprintf(ans->content_type, sizeof(ans->content_type), "%s", ct ? ct : "");
    if (strncmp(ans->content_type, "application/json", 16) == 0)
        ans->json = json_tokener_parse(buf_str(&ans->body));
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
}

static void answer_free(http_answer *ans)
{
    buf_free(&ans->body);
    json_object_put(ans->json);
    ans->json = NULL;
}

/* Asserts the error envelope {"error":{"code":status,"message":...}} and
 * returns the message (borrowed from ans). */
static const char *assert_envelope(const http_answer *ans, long status)
{
    json_object *e, *code, *msg;

    ck_assert_int_eq(ans->status, status);
    ck_assert_msg(ans->json != NULL, "not JSON: %s", buf_str(&ans->body));
    ck_assert(json_object_object_get_ex(ans->json, "error", &e));
    ck_assert(json_object_object_get_ex(e, "code", &code));
    ck_assert(json_object_object_get_ex(e, "message", &msg));
    ck_assert_int_eq(json_object_get_int(code), status);
    ck_assert_int_gt(json_object_get_string_len(msg), 0);
    return json_object_get_string(msg);
}

static void post(const char *path, const char *body, const char *auth,
                 http_answer *ans)
{
    http("POST", path, body, strlen(body), auth, NULL, ans);
}

#define BEARER "Bearer " TOKEN
#define AM_ALERT                                                               \
    "{\"status\":\"firing\",\"labels\":{\"alertname\":\"DiskFull\","           \
    "\"severity\":\"critical\"},\"annotations\":{},"                           \
    "\"startsAt\":\"2024-05-01T10:00:00Z\","                                   \
    "\"fingerprint\":\"0123456789abcdef\"}"

START_TEST(test_healthz)
{
    http_answer ans;

    http("GET", "/healthz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(buf_str(&ans.body), "{\"status\":\"ok\"}");
    answer_free(&ans);
    http("HEAD", "/healthz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_int_eq(ans.body.len, 0);
    answer_free(&ans);
}
END_TEST

START_TEST(test_readyz)
{
    http_answer ans;

    http("GET", "/readyz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 503);
    ck_assert_str_eq(buf_str(&ans.body), "{\"status\":\"not ready\"}");
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    fw.ready = true;
    pthread_mutex_unlock(&fw.lock);
    http("GET", "/readyz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(buf_str(&ans.body), "{\"status\":\"ready\"}");
    answer_free(&ans);
}
END_TEST

START_TEST(test_metrics)
{
    http_answer ans;

    http("GET", "/healthz", NULL, 0, NULL, NULL, &ans);
    answer_free(&ans);
    http("GET", "/metrics", NULL, 0, BEARER, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(ans.content_type,
                     "text/plain; version=0.0.4; charset=utf-8");
    ck_assert_ptr_nonnull(strstr(buf_str(&ans.body),
                                 "# TYPE herald_api_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(buf_str(&ans.body),
                                 "herald_api_requests_total{path=\"/healthz\","
                                 "code=\"200\"} 1\n"));
    answer_free(&ans);
}
END_TEST

START_TEST(test_stats_and_targets)
{
    http_answer ans;

    http("GET", "/stats", NULL, 0, BEARER, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(buf_str(&ans.body), "{\"totals\":7}");
    answer_free(&ans);
    http("GET", "/targets", NULL, 0, BEARER, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_str_eq(buf_str(&ans.body), "[]");
    answer_free(&ans);
}
END_TEST

START_TEST(test_auth)
{
    const char *body = "{\"alert\":" AM_ALERT "}";
    http_answer ans;

    post("/publish/all", body, NULL, &ans);
    assert_envelope(&ans, 401);
    answer_free(&ans);
    post("/publish/all", body, "Bearer wrong-token!", &ans);
    assert_envelope(&ans, 401);
    answer_free(&ans);
    post("/publish/all", body, "Bearer " TOKEN "x", &ans);
    assert_envelope(&ans, 401);
    answer_free(&ans);
    post("/publish/all", body, "Basic " TOKEN, &ans);
    assert_envelope(&ans, 401);
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 0);
    pthread_mutex_unlock(&fw.lock);
    post("/publish/all", body, "bearer " TOKEN, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 1);
    pthread_mutex_unlock(&fw.lock);
}
END_TEST

START_TEST(test_auth_get)
{
    static const char *const closed[] = {"/targets", "/stats", "/metrics"};
    http_answer ans;
    size_t i;

    /* Configuration, statistics and metrics need the token. */
    for (i = 0; i < sizeof(closed) / sizeof(closed[0]); i++) {
        http("GET", closed[i], NULL, 0, NULL, NULL, &ans);
        assert_envelope(&ans, 401);
        answer_free(&ans);
        http("GET", closed[i], NULL, 0, "Bearer wrong-token!", NULL, &ans);
        assert_envelope(&ans, 401);
        answer_free(&ans);
    }
    /* The probes never do: a kubelet has no token. */
    http("GET", "/healthz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    http("GET", "/readyz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 503);
    answer_free(&ans);
}
END_TEST

START_TEST(test_metrics_public)
{
    char saved[sizeof(base)];
    char err[256] = "";
    api_config cfg;
    api_server *open_srv;
    http_answer ans;

    api_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 1;
    cfg.token = TOKEN;
    cfg.metrics_public = true;
    cfg.stats = fake_stats;
    open_srv = api_new(&cfg, err, sizeof(err));
    ck_assert_msg(open_srv != NULL, "api_new: %s", err);
    memcpy(saved, base, sizeof(base));
    snprintf(base, sizeof(base), "http://127.0.0.1:%d", api_port(open_srv));
    http("GET", "/metrics", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    http("GET", "/stats", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 401);
    answer_free(&ans);
    memcpy(base, saved, sizeof(base));
    api_destroy(open_srv);
}
END_TEST

START_TEST(test_listen_check)
{
    api_config cfg;
    char err[512] = "";

    ck_assert(!api_listen_check("0.0.0.0:8080", NULL, false, err, sizeof(err)));
    ck_assert_msg(strstr(err, "api listen \"0.0.0.0:8080\" is not a "
                              "loopback address and no --api-token is "
                              "set") != NULL,
                  "%s", err);
    ck_assert(!api_listen_check("[::]:8080", "", false, err, sizeof(err)));
    ck_assert(!api_listen_check("10.1.2.3:80", NULL, false, err, sizeof(err)));
    ck_assert(api_listen_check("0.0.0.0:8080", TOKEN, false, err, sizeof(err)));
    ck_assert(api_listen_check("0.0.0.0:8080", NULL, true, err, sizeof(err)));
    ck_assert(
        api_listen_check("127.0.0.2:8080", NULL, false, err, sizeof(err)));
    ck_assert(
        api_listen_check("localhost:8080", NULL, false, err, sizeof(err)));
    ck_assert(api_listen_check("[::1]:8080", NULL, false, err, sizeof(err)));
    ck_assert(api_listen_check(NULL, NULL, false, err, sizeof(err)));
    /* api_new() refuses the same. */
    api_config_init(&cfg);
    cfg.listen = "0.0.0.0:0";
    err[0] = '\0';
    ck_assert_ptr_null(api_new(&cfg, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "--insecure-no-token"));
}
END_TEST

START_TEST(test_body_too_large)
{
    size_t len = MAX_BODY + 1000;
    char *big = malloc(len);
    const char *expects[] = {"", "100-continue"};
    http_answer ans;
    size_t i;

    ck_assert_ptr_nonnull(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    /* Without Expect the body is read and dropped; with it the answer comes
     * before the body is sent. Both answer 413. */
    for (i = 0; i < 2; i++) {
        http("POST", "/publish/all", big, len, BEARER, expects[i], &ans);
        assert_envelope(&ans, 413);
        answer_free(&ans);
    }
    free(big);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 0);
    pthread_mutex_unlock(&fw.lock);
}
END_TEST

START_TEST(test_malformed_json)
{
    static const char *const bodies[] = {
        "{\"alert\": ",                 /* Truncated. */
        "not json",                     /* Not JSON. */
        "[1, 2]",                       /* Not an object. */
        "{\"alert\": {}} trailing",     /* Trailing data. */
        "{}",                           /* No alert. */
        "{\"alert\": {\"status\": 3}}", /* alert_batch_parse refuses. */
        "{\"alert\":" AM_ALERT ", \"target\": [\"a\"]}", /* Unknown key. */
        "",                                              /* Empty. */
    };
    http_answer ans;
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        post("/publish/all", bodies[i], BEARER, &ans);
        assert_envelope(&ans, 400);
        answer_free(&ans);
    }
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 0);
    pthread_mutex_unlock(&fw.lock);
}
END_TEST

START_TEST(test_targets_validation)
{
    static const char *const bodies[] = {
        "{\"alert\":" AM_ALERT "}",                      /* Missing. */
        "{\"alert\":" AM_ALERT ", \"targets\": []}",     /* Empty. */
        "{\"alert\":" AM_ALERT ", \"targets\": \"a\"}",  /* Not an array. */
        "{\"alert\":" AM_ALERT ", \"targets\": [1]}",    /* Not names. */
        "{\"alert\":" AM_ALERT ", \"targets\": [\"\"]}", /* Empty name. */
    };
    http_answer ans;
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        post("/publish/multiple", bodies[i], BEARER, &ans);
        assert_envelope(&ans, 400);
        answer_free(&ans);
    }
    /* "targets" belongs to /publish/multiple only. */
    post("/publish/healthy", "{\"alert\":" AM_ALERT ", \"targets\": [\"a\"]}",
         BEARER, &ans);
    assert_envelope(&ans, 400);
    answer_free(&ans);
}
END_TEST

START_TEST(test_unknown_target)
{
    http_answer ans;
    const char *msg;

    post("/publish/multiple",
         "{\"alert\":" AM_ALERT ", \"targets\": [\"slack\", \"nope\"]}", BEARER,
         &ans);
    msg = assert_envelope(&ans, 404);
    ck_assert_str_eq(msg, "unknown target \"nope\"");
    answer_free(&ans);
}
END_TEST

START_TEST(test_wrong_method_and_path)
{
    http_answer ans;

    http("GET", "/publish/all", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 405);
    ck_assert_str_eq(ans.allow, "POST");
    answer_free(&ans);
    http("POST", "/healthz", "{}", 2, BEARER, NULL, &ans);
    assert_envelope(&ans, 405);
    ck_assert_str_eq(ans.allow, "GET, HEAD");
    answer_free(&ans);
    http("DELETE", "/metrics", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 405);
    answer_free(&ans);
    http("GET", "/nowhere", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 404);
    answer_free(&ans);
    http("GET", "/metrics/extra", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 404);
    answer_free(&ans);
}
END_TEST

START_TEST(test_publish_passes_alert_and_names)
{
    http_answer ans;
    json_object *mode;

    post("/publish/multiple",
         "{\"alert\":" AM_ALERT ", \"targets\": [\"slack\", \"pd\"]}", BEARER,
         &ans);
    ck_assert_int_eq(ans.status, 200);
    ck_assert_ptr_nonnull(ans.json);
    ck_assert(json_object_object_get_ex(ans.json, "mode", &mode));
    ck_assert_str_eq(json_object_get_string(mode), "multiple");
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 1);
    ck_assert_int_eq(fw.mode, API_PUBLISH_MULTIPLE);
    ck_assert_uint_eq(fw.n_names, 2);
    ck_assert_str_eq(fw.names[0], "slack");
    ck_assert_str_eq(fw.names[1], "pd");
    ck_assert_str_eq(fw.fingerprint, "0123456789abcdef");
    ck_assert_str_eq(fw.alertname, "DiskFull");
    pthread_mutex_unlock(&fw.lock);

    post("/publish/healthy", "{\"alert\":" AM_ALERT "}", BEARER, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.mode, API_PUBLISH_HEALTHY);
    ck_assert_uint_eq(fw.n_names, 0);
    pthread_mutex_unlock(&fw.lock);
}
END_TEST

START_TEST(test_publish_message_forms)
{
    http_answer ans;

    /* Form 1: an Alertmanager payload with one alert. */
    post("/publish/all",
         "{\"alert\": {\"version\":\"4\",\"status\":\"firing\","
         "\"receiver\":\"r\",\"alerts\":[" AM_ALERT "]}}",
         BEARER, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_str_eq(fw.alertname, "DiskFull");
    pthread_mutex_unlock(&fw.lock);

    /* Form 1 with two alerts: one request publishes one alert. */
    post("/publish/all",
         "{\"alert\": {\"version\":\"4\",\"status\":\"firing\","
         "\"alerts\":[" AM_ALERT "," AM_ALERT "]}}",
         BEARER, &ans);
    assert_envelope(&ans, 400);
    answer_free(&ans);

    /* Form 3: snake_case alert with classification next to it. */
    post("/publish/all",
         "{\"alert\": {\"alert_name\":\"HighLatency\",\"status\":\"firing\","
         "\"labels\":{\"service\":\"api\"},"
         "\"starts_at\":\"2024-05-01T10:00:00Z\"},"
         "\"classification\": {\"severity\":\"warning\","
         "\"confidence\":0.9}}",
         BEARER, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    ck_assert_int_eq(fw.publish_calls, 2);
    ck_assert_str_eq(fw.alertname, "HighLatency");
    ck_assert_str_eq(fw.severity, "warning");
    ck_assert_int_eq((int)strlen(fw.fingerprint), 16);
    pthread_mutex_unlock(&fw.lock);
}
END_TEST

static void *post_block(void *arg)
{
    http_answer *ans = arg;

    post("/publish/multiple",
         "{\"alert\":" AM_ALERT ", \"targets\": [\"block\"]}", BEARER, ans);
    return NULL;
}

START_TEST(test_probes_served_during_publish)
{
    http_answer slow;
    http_answer ans;
    long healthz, metrics;
    pthread_t th;

    ck_assert_int_eq(pthread_create(&th, NULL, post_block, &slow), 0);
    pthread_mutex_lock(&fw.lock);
    while (!fw.blocked)
        pthread_cond_wait(&fw.cond, &fw.lock);
    pthread_mutex_unlock(&fw.lock);
    /* One API thread is stuck in the publish; another answers. The publish
     * is released before asserting so a failure cannot hang teardown. */
    http("GET", "/healthz", NULL, 0, NULL, NULL, &ans);
    healthz = ans.status;
    answer_free(&ans);
    http("GET", "/metrics", NULL, 0, BEARER, NULL, &ans);
    metrics = ans.status;
    answer_free(&ans);
    pthread_mutex_lock(&fw.lock);
    fw.release = true;
    pthread_cond_broadcast(&fw.cond);
    pthread_mutex_unlock(&fw.lock);
    pthread_join(th, NULL);
    ck_assert_int_eq(healthz, 200);
    ck_assert_int_eq(metrics, 200);
    ck_assert_int_eq(slow.status, 200);
    answer_free(&slow);
}
END_TEST

START_TEST(test_no_callbacks)
{
    http_answer ans;

    /* No token configured: POST passes auth and meets the missing
     * callback. */
    post("/publish/all", "{\"alert\":" AM_ALERT "}", NULL, &ans);
    assert_envelope(&ans, 503);
    answer_free(&ans);
    http("GET", "/stats", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 503);
    answer_free(&ans);
    http("GET", "/targets", NULL, 0, NULL, NULL, &ans);
    assert_envelope(&ans, 503);
    answer_free(&ans);
    http("GET", "/readyz", NULL, 0, NULL, NULL, &ans);
    ck_assert_int_eq(ans.status, 200);
    answer_free(&ans);
}
END_TEST

START_TEST(test_bad_listen)
{
    static const char *const bad[] = {"127.0.0.1", "127.0.0.1:99999",
                                      "example:80", ":80", "1.2.3.4:x"};
    api_config cfg;
    char err[256];
    size_t i;

    api_destroy(NULL);
    api_config_init(&cfg);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        cfg.listen = bad[i];
        ck_assert_ptr_null(api_new(&cfg, err, sizeof(err)));
        ck_assert_msg(strstr(err, "api listen") != NULL, "%s: %s", bad[i], err);
    }
    /* The port of the running server is taken. */
    snprintf(err, sizeof(err), "127.0.0.1:%d", api_port(srv));
    cfg.listen = err;
    {
        char e2[256] = "";
        ck_assert_ptr_null(api_new(&cfg, e2, sizeof(e2)));
        ck_assert_ptr_nonnull(strstr(e2, "could not start"));
    }
}
END_TEST

/* A TCP connection to 127.0.0.1:port; asserts it connects. */
static int raw_connect(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    return fd;
}

/* True when the server closed fd within wait_ms (end of stream or reset);
 * a byte of answer counts as not closed. */
static bool raw_closed_within(int fd, int wait_ms)
{
    struct pollfd pfd = {fd, POLLIN, 0};
    char c;

    if (poll(&pfd, 1, wait_ms) <= 0)
        return false;
    return recv(fd, &c, 1, 0) <= 0;
}

START_TEST(test_read_deadline)
{
    static const char *const lines[] = {"GET /healthz HTTP/1.1\r\n",
                                        "Host: x\r\n",
                                        "X-A: 1\r\n",
                                        "X-B: 2\r\n",
                                        "X-C: 3\r\n",
                                        "X-D: 4\r\n",
                                        "X-E: 5\r\n",
                                        "X-F: 6\r\n",
                                        "X-G: 7\r\n",
                                        "X-H: 8\r\n"};
    char err[256] = "";
    api_config cfg;
    api_server *slow_srv;
    int fd;
    bool closed = false;
    size_t i;

    api_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 2;
    cfg.read_deadline_ms = 300;
    slow_srv = api_new(&cfg, err, sizeof(err));
    ck_assert_msg(slow_srv != NULL, "api_new: %s", err);
    /* A header line every 200 ms keeps libmicrohttpd's idle timeout (60 s)
     * from firing: only the read deadline can close the connection, while
     * the request is still unread after ten lines (2 s). */
    fd = raw_connect(api_port(slow_srv));
    for (i = 0; i < sizeof(lines) / sizeof(lines[0]) && !closed; i++) {
        if (send(fd, lines[i], strlen(lines[i]), MSG_NOSIGNAL) < 0)
            closed = true;
        else
            closed = raw_closed_within(fd, 200);
    }
    close(fd);
    /* A connection that sends nothing is cut too. */
    fd = raw_connect(api_port(slow_srv));
    ck_assert(raw_closed_within(fd, 10000));
    close(fd);
    api_destroy(slow_srv);
    ck_assert_msg(closed, "a request trickled for 2 s was not cut");
}
END_TEST

START_TEST(test_read_deadline_spares_requests)
{
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char err[256] = "";
    char answer[512];
    api_config cfg;
    api_server *slow_srv;
    ssize_t n;
    int fd;
    int k;

    api_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 1;
    cfg.read_deadline_ms = 1000;
    slow_srv = api_new(&cfg, err, sizeof(err));
    ck_assert_msg(slow_srv != NULL, "api_new: %s", err);
    /* Three requests on one kept-alive connection, each read in time: each
     * is answered (the deadline restarts per request). */
    fd = raw_connect(api_port(slow_srv));
    for (k = 0; k < 3; k++) {
        ck_assert_int_eq(send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL),
                         (ssize_t)sizeof(req) - 1);
        n = recv(fd, answer, sizeof(answer) - 1, 0);
        ck_assert_int_gt(n, 0);
        answer[n] = '\0';
        ck_assert_msg(strncmp(answer, "HTTP/1.1 200", 12) == 0, "%s", answer);
    }
    close(fd);
    api_destroy(slow_srv);
}
END_TEST

START_TEST(test_per_ip_limit)
{
    char err[256] = "";
    api_config cfg;
    api_server *lim_srv;
    int fds[3];
    int i;

    api_config_init(&cfg);
    cfg.listen = "127.0.0.1:0";
    cfg.threads = 1;
    cfg.per_ip_connections = 2;
    lim_srv = api_new(&cfg, err, sizeof(err));
    ck_assert_msg(lim_srv != NULL, "api_new: %s", err);
    for (i = 0; i < 3; i++)
        fds[i] = raw_connect(api_port(lim_srv));
    /* The third from the same address is closed at once; the first two
     * stay open (the 10 s read deadline is far). */
    ck_assert(raw_closed_within(fds[2], 10000));
    ck_assert(!raw_closed_within(fds[0], 0));
    ck_assert(!raw_closed_within(fds[1], 0));
    for (i = 0; i < 3; i++)
        close(fds[i]);
    api_destroy(lim_srv);
}
END_TEST

static Suite *api_suite(void)
{
    const check_case cases[] = {
        {"healthz", test_healthz},
        {"readyz", test_readyz},
        {"metrics", test_metrics},
        {"stats_and_targets", test_stats_and_targets},
        {"auth", test_auth},
        {"auth_get", test_auth_get},
        {"metrics_public", test_metrics_public},
        {"listen_check", test_listen_check},
        {"read_deadline", test_read_deadline},
        {"read_deadline_spares_requests", test_read_deadline_spares_requests},
        {"per_ip_limit", test_per_ip_limit},
        {"body_too_large", test_body_too_large},
        {"malformed_json", test_malformed_json},
        {"targets_validation", test_targets_validation},
        {"unknown_target", test_unknown_target},
        {"wrong_method_and_path", test_wrong_method_and_path},
        {"publish_passes_alert_and_names", test_publish_passes_alert_and_names},
        {"publish_message_forms", test_publish_message_forms},
        {"probes_served_during_publish", test_probes_served_during_publish},
        {"bad_listen", test_bad_listen},
    };
    /* A server without token or callbacks. */
    const check_case bare_cases[] = {
        {"no_callbacks", test_no_callbacks},
    };
    Suite *s = suite_create("api");

    check_suite_add(s, cases, CHECK_N_CASES(cases), setup, teardown);
    check_suite_add(s, bare_cases, CHECK_N_CASES(bare_cases), setup_bare,
                    teardown);
    return s;
}

int main(void)
{
    int rc;

    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init(LOG_LEVEL_ERROR, LOG_FORMAT_TEXT);
    rc = check_suite_run(api_suite());
    curl_global_cleanup();
    return rc;
}
