/*
 * legs.c: the targets of a job and the delivery state of its legs, one per
 * (alert, target), across the job's attempts.
 *
 * Data flow: job.c takes the job's targets (legs_targets(): all, or those
 * the herald-targets header names), starts one fan-out per alert with the legs
 * still to publish (legs_remaining()), folds each publish result in
 * (legs_update(): delivered, not selected, or failed, and whether the failure
 * is permanent, STYLE.md 8), decides from the tally (legs_tally_add()) between
 * final, retry and dead-letter, and dead-letters one record per failed
 * target (legs_failed_merge()).
 *
 * Threads: pure functions over the caller's legs; the job runs one step at
 * a time, so its legs are touched by one thread at a time. Calls no worker
 * file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "worker/job_int.h"

static const char *COMP = "job";

size_t legs_targets(target_set *set, const char *only_targets,
                    const log_fields *lf, target **out, size_t cap)
{
    target *const *all = targets_list(set);
    size_t n = targets_count(set);
    size_t k = 0;
    char *list;
    char *save = NULL;

    if (!only_targets) {
        for (size_t i = 0; i < n && k < cap; i++)
            out[k++] = all[i];
        return k;
    }
    list = strdup(only_targets);
    for (char *name = list ? strtok_r(list, ", ", &save) : NULL; name;
         name = strtok_r(NULL, ", ", &save)) {
        target *tgt = targets_find(set, name);

        if (!tgt) {
            log_fields named = *lf;

            named.target = name;
            LOG_WARN(COMP, &named,
                     "herald-targets header names an unknown target: "
                     "ignored");
            continue;
        }
        if (k < cap)
            out[k++] = tgt;
    }
    free(list);
    return k;
}

/* Folds a failed result into its leg. */
static void leg_failed(leg *lg, const publish_target_result *tr)
{
    lg->state = LEG_FAILED;
    snprintf(lg->reason, sizeof(lg->reason), "target_failed");
    snprintf(lg->error, sizeof(lg->error), "%s", tr->error);
    lg->http_status = tr->http_status;
    /* Given up (STYLE.md 8): a 4xx other than 408 and 429, or a request
     * that cannot be built. */
    lg->permanent = (tr->http_status >= 400 && tr->http_status < 500 &&
                     tr->http_status != 408 && tr->http_status != 429) ||
                    (tr->error_type && strcmp(tr->error_type, "build") == 0);
}

/* The leg of the named target, or NULL. */
static leg *leg_find(leg *legs, size_t n_legs, const char *name)
{
    for (size_t i = 0; i < n_legs; i++) {
        if (strcmp(legs[i].tgt->name, name) == 0)
            return &legs[i];
    }
    return NULL;
}

void legs_update(stats *st, leg *legs, size_t n_legs, const publish_result *res)
{
    for (size_t r = 0; r < res->n_targets; r++) {
        const publish_target_result *tr = &res->targets[r];
        leg *lg = leg_find(legs, n_legs, tr->name);

        if (!lg)
            continue;
        lg->attempts += tr->attempts;
        if (tr->first_attempt_ms &&
            (!lg->first_attempt_ms ||
             tr->first_attempt_ms < lg->first_attempt_ms))
            lg->first_attempt_ms = tr->first_attempt_ms;
        if (tr->last_attempt_ms > lg->last_attempt_ms)
            lg->last_attempt_ms = tr->last_attempt_ms;
        switch (tr->outcome) {
        case PUBLISH_OUTCOME_DELIVERED:
            lg->state = LEG_DELIVERED;
            stats_record(st, tr->name, true, tr->duration_ms);
            break;
        case PUBLISH_OUTCOME_SKIPPED:
            if (tr->skip_reason == PUBLISH_REASON_DISABLED ||
                tr->skip_reason == PUBLISH_REASON_FILTERED) {
                lg->state = LEG_NOT_SELECTED;
                break;
            }
            lg->state = LEG_FAILED;
            snprintf(lg->reason, sizeof(lg->reason), "%s",
                     publish_skip_reason_name(tr->skip_reason));
            snprintf(lg->error, sizeof(lg->error), "skipped: %s",
                     publish_skip_reason_name(tr->skip_reason));
            break;
        case PUBLISH_OUTCOME_FAILED:
        default:
            leg_failed(lg, tr);
            stats_record(st, tr->name, false, tr->duration_ms);
            break;
        }
    }
}

void legs_tally_add(leg *const *legs, size_t n_alerts, size_t n_targets,
                    legs_tally *tally)
{
    for (size_t i = 0; i < n_alerts; i++) {
        for (size_t t = 0; t < n_targets; t++) {
            tally->failed += legs[i][t].state == LEG_FAILED;
            tally->retryable +=
                legs[i][t].state == LEG_FAILED && !legs[i][t].permanent;
            tally->delivered_any =
                tally->delivered_any || legs[i][t].state == LEG_DELIVERED;
        }
    }
}

bool legs_failed_merge(leg *const *legs, size_t n_alerts, size_t t, leg *agg)
{
    memset(agg, 0, sizeof(*agg));
    for (size_t i = 0; i < n_alerts; i++) {
        const leg *lg = &legs[i][t];

        if (lg->state != LEG_FAILED)
            continue;
        if (agg->state != LEG_FAILED)
            *agg = *lg;
        if (lg->attempts > agg->attempts)
            agg->attempts = lg->attempts;
        if (lg->last_attempt_ms > agg->last_attempt_ms)
            agg->last_attempt_ms = lg->last_attempt_ms;
    }
    return agg->state == LEG_FAILED;
}

size_t legs_remaining(const leg *legs, size_t n_legs, target **out)
{
    size_t n = 0;

    for (size_t t = 0; t < n_legs; t++) {
        if (legs[t].state == LEG_PENDING || legs[t].state == LEG_FAILED)
            out[n++] = legs[t].tgt;
    }
    return n;
}
