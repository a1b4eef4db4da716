/*
 * api_worker.c: what the HTTP API (api.c) serves from the running worker:
 * readiness (a partition is assigned), POST /publish/... through the
 * ParallelPublisher with the current targets, GET /stats and GET /targets
 * with each target's breaker and health state.
 *
 * Data flow: api_worker_start() wires these callbacks into an api_config
 * and starts the server; libmicrohttpd's threads call them with the worker
 * as opaque. A publish here is synchronous (the API thread waits up to the
 * publish deadline) and is recorded in the stats like a job's.
 *
 * Threads: the callbacks run on the API threads, several at once; they
 * touch only thread-safe parts of the worker (atomic flags, the targets
 * registry, publisher, health monitor and stats). Calls api.c (api_new)
 * and no other worker file.
 */
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "publishers/breaker.h"
#include "worker/worker_int.h"

/* Dead-letter writes failing for this long make the worker not ready: a
 * job whose dead letter cannot be written pins its partition's commit
 * point, so this must show (the job's log says why, once per 10 s). Longer
 * than a broker's leader election, shorter than a stalled minute. */
#define API_DLQ_STUCK_MS 30000

static bool api_ready(void *opaque)
{
    worker *w = opaque;
    int64_t since = dlq_failing_since_ms(w->dlq);

    if (since && herald_now_ms() - since > API_DLQ_STUCK_MS)
        return false;
    return atomic_load(&w->assigned);
}

static herald_err api_publish(void *opaque, api_publish_mode mode,
                              const alert *a, const char *const *names,
                              size_t n, json_object **result_json,
                              int *http_status, char *errstr,
                              size_t errstr_size)
{
    worker *w = opaque;
    target_set *set = targets_registry_current(w->targets);
    target **chosen = NULL;
    publish_result res;
    publish_opts opts = w->cfg.publish;
    herald_err err;

    publish_result_init(&res);
    opts.cancel = NULL;
    if (mode == API_PUBLISH_MULTIPLE) {
        chosen = calloc(n ? n : 1, sizeof(*chosen));
        if (!chosen) {
            err = HERALD_ERR_NOMEM;
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            chosen[i] = targets_find(set, names[i]);
            if (!chosen[i]) {
                snprintf(errstr, errstr_size,
                         "targets[%zu]: unknown target "
                         "\"%s\"",
                         i, names[i]);
                *http_status = 404;
                err = HERALD_ERR_NOT_FOUND;
                goto done;
            }
        }
        err = publish_to_multiple(w->pp, a, chosen, n, &opts, &res);
    } else if (mode == API_PUBLISH_ALL) {
        err = publish_to_all(w->pp, a, targets_list(set), targets_count(set),
                             &opts, &res);
    } else {
        err = publish_to_healthy(w->pp, a, targets_list(set),
                                 targets_count(set), &opts, &res);
    }
    for (size_t i = 0; i < res.n_targets; i++) {
        if (res.targets[i].outcome != PUBLISH_OUTCOME_SKIPPED)
            stats_record(w->stats, res.targets[i].name,
                         res.targets[i].outcome == PUBLISH_OUTCOME_DELIVERED,
                         res.targets[i].duration_ms);
    }
    *result_json = publish_result_to_json(&res);
    *http_status = err == HERALD_OK            ? 200
                   : err == HERALD_ERR_INVALID ? 400
                                               : 502;
    if (err == HERALD_ERR_NO_ENABLED || err == HERALD_ERR_NO_HEALTHY)
        *http_status = 503;
    err = HERALD_OK; /* The result JSON carries the outcome. */
done:
    publish_result_free(&res);
    free(chosen);
    targets_release(set);
    return err;
}

static void api_annotate(void *opaque, const char *target, json_object *obj)
{
    worker *w = opaque;
    breaker_state st;
    uint64_t transitions = 0;

    if (parallel_breaker_state(w->pp, target, herald_now_ms(), &st,
                               &transitions) != HERALD_OK)
        st = BREAKER_CLOSED;
    json_object_object_add(obj, "breaker",
                           json_object_new_string(breaker_state_name(st)));
    json_object_object_add(obj, "breaker_transitions",
                           json_object_new_int64((int64_t)transitions));
    json_object_object_add(obj, "health",
                           json_object_new_string(health_status_name(
                               health_get(w->health, target))));
}

static json_object *api_stats(void *opaque)
{
    worker *w = opaque;

    return stats_to_json(w->stats, api_annotate, w);
}

static json_object *api_targets(void *opaque)
{
    worker *w = opaque;
    target_set *set = targets_registry_current(w->targets);
    json_object *arr = NULL;

    if (targets_to_json(set, &arr) == HERALD_OK && arr &&
        json_object_is_type(arr, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            json_object *t = json_object_array_get_idx(arr, i);
            json_object *name;

            if (json_object_object_get_ex(t, "name", &name))
                api_annotate(w, json_object_get_string(name), t);
        }
    }
    targets_release(set);
    return arr;
}

herald_err api_worker_start(worker *w, api_server **out, char *errstr,
                            size_t errstr_size)
{
    api_config acfg;

    *out = NULL;
    if (!w->cfg.api_listen || !w->cfg.api_listen[0])
        return HERALD_OK;
    api_config_init(&acfg);
    acfg.listen = w->cfg.api_listen;
    acfg.token = w->cfg.api_token;
    acfg.metrics_public = w->cfg.api_metrics_public;
    acfg.insecure_no_token = w->cfg.api_insecure_no_token;
    acfg.read_deadline_ms = (unsigned int)w->cfg.api_read_deadline_ms;
    acfg.per_ip_connections = (unsigned int)w->cfg.api_per_ip_connections;
    acfg.opaque = w;
    acfg.ready = api_ready;
    acfg.publish = api_publish;
    acfg.stats = api_stats;
    acfg.targets = api_targets;
    *out = api_new(&acfg, errstr, errstr_size);
    return *out ? HERALD_OK : HERALD_ERR_CONFIG;
}
