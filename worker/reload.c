/*
 * reload.c: reloads targets.yaml while the worker runs.
 *
 * Data flow: SIGHUP sets *cfg.reload (the signal thread, core/signals.c);
 * besides, every targets_watch_ms the file's modification time is compared with
 * the last one seen. Either way targets_registry_reload() builds a new target
 * set and swaps it in (STYLE.md 16: loaded config is immutable); jobs already
 * running keep the set they acquired at their start. The health monitor
 * gets the new targets; a file that does not load is logged and the
 * running targets stay.
 *
 * Threads: reload_check() runs on the consumer thread, from the poll loop;
 * the registry swap is safe against the dispatcher and API threads that
 * acquire sets. Calls no other worker file.
 */
#include "core/log.h"
#include "worker/worker_int.h"

void reload_init(worker *w)
{
    targets_file_changed(w->cfg.targets_path, &w->targets_mtime);
}

static void targets_reload(worker *w)
{
    char errstr[512];
    target_set *old = targets_registry_current(w->targets);
    target_set *set;

    /* The health monitor borrows the targets of the running set: keep the
     * old set alive until the monitor has the new one. */
    if (targets_registry_reload(w->targets, w->cfg.targets_path, errstr,
                                sizeof(errstr)) != HERALD_OK) {
        LOG_ERROR("targets", LOG_NOFIELDS,
                  "reload rejected, keeping the running targets: %s", errstr);
        targets_release(old);
        return;
    }
    set = targets_registry_current(w->targets);
    health_set_targets(w->health, targets_list(set), targets_count(set));
    LOG_INFO("targets", LOG_NOFIELDS, "reloaded %s: %zu targets",
             w->cfg.targets_path, targets_count(set));
    targets_release(set);
    targets_release(old);
}

void reload_check(worker *w, int64_t now)
{
    if ((w->cfg.reload && *w->cfg.reload) ||
        (w->cfg.targets_watch_ms > 0 && now >= w->next_watch &&
         targets_file_changed(w->cfg.targets_path, &w->targets_mtime))) {
        if (w->cfg.reload)
            *w->cfg.reload = 0;
        targets_reload(w);
    }
    if (now >= w->next_watch)
        w->next_watch = now + w->cfg.targets_watch_ms;
}
