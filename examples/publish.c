/*
 * publish.c: using herald's ParallelPublisher from C.
 *
 *   build/example_publish targets.yaml
 *
 * Loads the targets, then publishes one alert four ways: to named targets,
 * to all enabled targets, to healthy targets only, and with custom options.
 * Each result is printed as JSON, and partial and total failures are
 * handled as a caller would.
 */
#include <curl/curl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "publishers/parallel.h"
#include "publishers/targets.h"

static void report(const char *what, herald_err err, const publish_result *res)
{
    json_object *js = publish_result_to_json(res);

    printf("== %s: %s\n%s\n", what, herald_err2str(err),
           json_object_to_json_string_ext(js, JSON_C_TO_STRING_PRETTY));
    json_object_put(js);
    if (err == HERALD_OK && res->partial_success)
        printf("partial success: %zu of %zu targets failed; retry or "
               "dead-letter those legs\n",
               res->failed, res->total);
    else if (err == HERALD_ERR_ALL_FAILED)
        printf("total failure: nothing was delivered; retry the alert "
               "later\n");
}

int main(int argc, char **argv)
{
    const char *msg = "{\"status\":\"firing\",\"labels\":{\"alertname\":"
                      "\"DiskFull\",\"severity\":\"critical\",\"instance\":"
                      "\"db-1\"},\"annotations\":{\"summary\":\"disk 95% "
                      "full\"}}";
    char errstr[512];
    target_set *set = NULL;
    parallel_publisher *pp = NULL;
    health *h = NULL;
    alert_batch batch;
    alert_reason reason;
    publish_opts opts;
    publish_result res;
    herald_err err;
    int rc = 1;

    if (argc != 2) {
        fprintf(stderr, "usage: %s targets.yaml\n", argv[0]);
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    log_init(LOG_LEVEL_WARN, LOG_FORMAT_TEXT);
    memset(&batch, 0, sizeof(batch));
    publish_result_init(&res);
    if (targets_load(argv[1], &set, errstr, sizeof(errstr)) != HERALD_OK) {
        fprintf(stderr, "%s\n", errstr);
        goto out;
    }
    h = health_new(false, errstr, sizeof(errstr));
    pp = parallel_new(NULL, h, errstr, sizeof(errstr));
    if (!h || !pp ||
        alert_batch_parse(msg, strlen(msg), NULL, &batch, &reason, errstr,
                          sizeof(errstr)) != HERALD_OK) {
        fprintf(stderr, "setup failed: %s\n", errstr);
        goto out;
    }

    /* 1. A basic publish to the first target, by name. */
    err = publish_to_multiple(pp, &batch.alerts[0], targets_list(set),
                              targets_count(set) ? 1 : 0, NULL, &res);
    report("publish_to_multiple (first target)", err, &res);

    /* 2. Every enabled target whose matchers match. */
    err = publish_to_all(pp, &batch.alerts[0], targets_list(set),
                         targets_count(set), NULL, &res);
    report("publish_to_all", err, &res);

    /* 3. Healthy targets only (unknown health counts as healthy). */
    err = publish_to_healthy(pp, &batch.alerts[0], targets_list(set),
                             targets_count(set), NULL, &res);
    report("publish_to_healthy", err, &res);

    /* 4. Custom options: 2 s deadline, skip degraded targets too, two
     *    targets at a time. */
    publish_opts_default(&opts);
    opts.deadline_ms = 2000;
    opts.strategy = PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED;
    opts.max_concurrent_targets = 2;
    if (publish_opts_validate(&opts, errstr, sizeof(errstr)) != HERALD_OK) {
        fprintf(stderr, "%s\n", errstr);
        goto out;
    }
    err = publish_to_healthy(pp, &batch.alerts[0], targets_list(set),
                             targets_count(set), &opts, &res);
    report("publish_to_healthy (custom options)", err, &res);
    rc = 0;
out:
    publish_result_free(&res);
    alert_batch_free(&batch);
    parallel_destroy(pp);
    health_destroy(h);
    targets_release(set);
    curl_global_cleanup();
    return rc;
}
