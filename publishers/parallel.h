/*
 * parallel.h: the ParallelPublisher, herald's public C API for publishing
 * one alert to many notification targets at once.
 *
 * One call fans an alert out to every selected target concurrently and
 * returns when every leg (one target) has a final outcome, the publish
 * deadline passes, or the caller cancels. It reports exactly what happened
 * to each target in a publish_result.
 *
 *   parallel_publisher *pp = parallel_new(NULL, health, errstr, sizeof errstr);
 *   publish_opts opts;
 *   publish_result res;
 *   publish_opts_default(&opts);
 *   publish_result_init(&res);
 *   herald_err err = publish_to_healthy(pp, a, targets, n, &opts, &res);
 *   if (err == HERALD_OK && res.partial_success)
 *       ... some targets failed: see res.targets[i].outcome ...
 *   publish_result_free(&res);
 *   parallel_destroy(pp);
 *
 * Selection. The three entry points differ only in which targets of the
 * given list are sent to:
 *   - publish_to_multiple: the caller chose the targets; only circuit
 *     breakers apply (opts->respect_breakers).
 *   - publish_to_all: every enabled target whose matchers match the alert's
 *     labels. Disabled targets are skipped with reason "disabled", matcher
 *     mismatches with "filtered"; breakers apply.
 *   - publish_to_healthy: as publish_to_all, then the health strategy
 *     (opts->strategy) with the health monitor: "skip_unhealthy" skips
 *     unhealthy targets ("unhealthy"), "skip_unhealthy_and_degraded" also
 *     degraded ones ("degraded"), "publish_to_all" skips none. A target the
 *     monitor does not know (HEALTH_UNKNOWN, or no monitor at all) is
 *     published to: the strategy fails open.
 * A leg whose breaker refuses the first attempt is skipped with reason
 * "circuit_open"; the worker hands it to the retry/dead-letter path.
 * Skipped targets are counted in the result, never dropped silently.
 *
 * Delivery. Each selected leg is built by its plugin (build_request, then
 * target_request_apply_common) and sent through the transport
 * (publishers/transport.h): no thread is created per call or per target.
 * Each leg is retried on its own per tgt->retry: at most max_attempts
 * attempts, full-jitter backoff (backoff_delay_ms) between them, or the
 * server's Retry-After when given, never past max_elapsed_ms nor the
 * publish deadline. A leg that delivered is never sent again. Responses
 * are classified with target_classify() (delivered / retry / give up,
 * STYLE.md 8). Before every attempt breaker_allow() is asked and after it
 * breaker_record() and health_record() (passive health) are told.
 *
 * Asynchronous publishing. publish_start() starts a fan-out and returns at
 * once; its publish_done_cb is called exactly once when the fan-out is
 * final. The three synchronous entry points are thin wrappers that start a
 * fan-out and wait for its callback, so there is one fan-out path. A slow
 * target therefore never needs to hold the caller's thread: a dispatcher
 * that uses publish_start() stays free for other jobs.
 *
 *   static void on_done(void *opaque, herald_err err, publish_result *res)
 *   {
 *       ... hand (opaque, err, res) to a worker thread; do not block ...
 *   }
 *   publish_start(pp, PUBLISH_MODE_HEALTHY, a, targets, n, &opts, &res,
 *                 on_done, job);
 *
 * Deadline and cancellation. Every pending fan-out has a timer in the
 * timer engine (core/timer.h) that fires at its deadline, and one poll
 * timer of the publisher looks at the cancel flags of the pending
 * fan-outs every PP_CANCEL_POLL_MS (10 ms) while one has a flag. When the
 * deadline passes or *opts->cancel becomes true, every leg that is not
 * final is reported failed ("deadline exceeded", error_type "deadline";
 * or "cancelled", error_type "cancelled") and the fan-out completes. A
 * fan-out completes once, whichever comes first: its last leg, its
 * deadline, its cancel flag.
 * Responses that arrive later are not lost: they are counted in metrics,
 * breakers and health, but never touch the caller's memory (the fan-out
 * context is reference counted and freed by the last user).
 *
 * Threads. Calls run on the caller's thread (a dispatcher thread of the
 * queue, or the API thread); completion work runs on transport threads
 * and on the timer engine's thread ("herald-timer"). Every function
 * here may be called from any thread, concurrently, on the same publisher.
 *
 * Observability (core/metrics.h): herald_publish_duration_seconds{result}
 * (histogram), herald_publishes_total{result} with result success,
 * partial_success or failure, herald_target_deliveries_total{target,outcome},
 * herald_target_failures_total{target,error_type},
 * herald_target_skipped_total{target,reason},
 * herald_http_request_duration_seconds{target} (histogram),
 * herald_target_retries_total{target}, herald_fanout_active (legs in
 * flight, gauge). Logs (component "publisher"): debug per leg start and
 * end, warn on partial success and skips, error on total failure (rate
 * limited per target and error kind). URLs and secrets are never logged.
 */
#ifndef HERALD_PARALLEL_H
#define HERALD_PARALLEL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/alert.h"
#include "core/err.h"
#include "publishers/breaker.h"
#include "publishers/health.h"
#include "publishers/target.h"
#include "publishers/transport.h"

struct json_object;

typedef struct parallel_publisher parallel_publisher;

/* ------------------------------------------------------------------ */
/* Publisher                                                            */
/* ------------------------------------------------------------------ */

/* Settings of a publisher; parallel_config_default() fills defaults. */
typedef struct parallel_config {
    transport_config transport; /* I/O threads, response body cap, and
                                   the timer engine of deadlines, cancel
                                   polls and retries (transport.timer;
                                   NULL: the shared engine). */
    uint64_t seed; /* Jitter seed; 0 = from the clock and address. */
} parallel_config;

/* Fills cfg with the defaults (transport_config_default, seed 0). */
void parallel_config_default(parallel_config *cfg);

/*
 * Creates a publisher: its transport (I/O threads start now) and an empty
 * map target name -> circuit breaker. cfg may be NULL for the defaults.
 * h is the health monitor, borrowed until parallel_destroy() (NULL: no
 * health routing, every target counts as unknown, i.e. published to).
 * Returns NULL with errstr filled on failure. Call before other threads
 * use libcurl (see transport_new). Free with parallel_destroy().
 */
parallel_publisher *parallel_new(const parallel_config *cfg, health *h,
                                 char *errstr, size_t errstr_size);

/*
 * Cancels the fan-outs' timers, completes every fan-out still pending as
 * cancelled (legs not final fail with "cancelled", error_type "cancelled";
 * each publish_done_cb is called, on this thread, the timer thread or a
 * transport I/O thread, before parallel_destroy returns), destroys the
 * transport (requests still in flight complete as cancelled; their late
 * responses only feed breakers and metrics), then frees the breakers and pp. No
 * publish_start() or synchronous publish call may be running; fan-outs
 * started earlier may still be pending. Not from a publish_done_cb.
 * NULL is a no-op.
 */
void parallel_destroy(parallel_publisher *pp);

/*
 * The breaker of the target named name, created on first use with the
 * target's breaker settings. Breakers are kept across reloads while the
 * name stays; when a reload changes a target's breaker settings a fresh
 * breaker replaces the old one. The pointer is borrowed until
 * parallel_destroy(). Returns NULL when out of memory. Any thread.
 */
breaker *parallel_breaker_for(parallel_publisher *pp, const target *tgt);

/*
 * State and transition count of the breaker of the target named name, for
 * /stats and /targets, at now_ms (monotonic ms). Errors:
 * HERALD_ERR_NOT_FOUND when no request was ever made to that name (the
 * breaker would be closed). Any thread.
 */
herald_err parallel_breaker_state(parallel_publisher *pp, const char *name,
                                  int64_t now_ms, breaker_state *state,
                                  uint64_t *transitions);

/*
 * Legs in flight now, over every call: started and not final, plus
 * attempts still running after their call completed at its deadline (their
 * late responses are being waited for). The herald_fanout_active gauge.
 * A snapshot; any thread.
 */
size_t parallel_in_flight(parallel_publisher *pp);

/* The health monitor given to parallel_new (borrowed), or NULL. */
health *parallel_health(parallel_publisher *pp);

/* ------------------------------------------------------------------ */
/* Options                                                              */
/* ------------------------------------------------------------------ */

/* Health strategy of publish_to_healthy(). */
typedef enum publish_strategy {
    PUBLISH_SKIP_UNHEALTHY = 0,              /* "skip_unhealthy" (default) */
    PUBLISH_SKIP_UNHEALTHY_AND_DEGRADED = 1, /* "skip_unhealthy_and_degraded" */
    PUBLISH_TO_ALL = 2                       /* "publish_to_all" */
} publish_strategy;

/* Options of one publish call. Caller-allocated; publish_opts_default(). */
typedef struct publish_opts {
    int64_t deadline_ms;        /* Whole call, ms, > 0 (default 30000). */
    publish_strategy strategy;  /* publish_to_healthy only. */
    bool respect_breakers;      /* Ask breakers (default true). */
    int max_concurrent_targets; /* Legs in flight at once, 0 = all
                                   (default 0); 1 = one after another. */
    const atomic_bool *cancel;  /* Borrowed for the call (publish_start:
                                   until its callback); when it becomes
                                   true the call returns within ~10 ms
                                   with HERALD_ERR_CANCELLED (unless a
                                   target already delivered); when it is
                                   true at the start nothing is sent.
                                   May be NULL. */
} publish_opts;

/* Longest deadline accepted by publish_opts_validate, ms (1 hour). */
#define PUBLISH_DEADLINE_MAX_MS 3600000

/* Fills opts with the defaults documented in publish_opts. */
void publish_opts_default(publish_opts *opts);

/*
 * Checks opts: deadline_ms in 1..PUBLISH_DEADLINE_MAX_MS, a known strategy,
 * max_concurrent_targets >= 0. Returns HERALD_OK, or HERALD_ERR_INVALID
 * with errstr naming the field ("deadline_ms must be between 1 and
 * 3600000, got 0"). Pure, any thread.
 */
herald_err publish_opts_validate(const publish_opts *opts, char *errstr,
                                 size_t errstr_size);

/* "skip_unhealthy", "skip_unhealthy_and_degraded", "publish_to_all";
 * "unknown" for other values. Static. */
const char *publish_strategy_name(publish_strategy strategy);

/* Parses the names above (case-sensitive). Returns HERALD_OK and sets *out,
 * or HERALD_ERR_INVALID for NULL or an unknown name. */
herald_err publish_strategy_parse(const char *name, publish_strategy *out);

/* ------------------------------------------------------------------ */
/* Result                                                               */
/* ------------------------------------------------------------------ */

/* Final outcome of one leg. */
typedef enum publish_outcome {
    PUBLISH_OUTCOME_DELIVERED = 0, /* "delivered" */
    PUBLISH_OUTCOME_FAILED = 1,    /* "failed" */
    PUBLISH_OUTCOME_SKIPPED = 2    /* "skipped" */
} publish_outcome;

/* Why a leg was skipped. */
typedef enum publish_skip_reason {
    PUBLISH_REASON_NONE = 0,        /* "" (not skipped) */
    PUBLISH_REASON_DISABLED = 1,    /* "disabled" */
    PUBLISH_REASON_FILTERED = 2,    /* "filtered" (matchers) */
    PUBLISH_REASON_UNHEALTHY = 3,   /* "unhealthy" */
    PUBLISH_REASON_DEGRADED = 4,    /* "degraded" */
    PUBLISH_REASON_CIRCUIT_OPEN = 5 /* "circuit_open" */
} publish_skip_reason;

/* "delivered", "failed", "skipped"; "unknown" otherwise. Static. */
const char *publish_outcome_name(publish_outcome outcome);

/* Names listed in publish_skip_reason ("" for NONE). Static. */
const char *publish_skip_reason_name(publish_skip_reason reason);

/* What happened to one target. Owned by the publish_result. */
typedef struct publish_target_result {
    char *name;       /* Target name (owned copy). */
    const char *type; /* Plugin name ("webhook"); static. */
    publish_outcome outcome;
    long http_status;       /* Last HTTP status, 0 when no response came. */
    char error[256];        /* Why the last attempt failed; "" if delivered
                               or skipped. Never holds a URL or secret. */
    const char *error_type; /* Static metric label ("http_5xx", "timeout",
                               "deadline", "cancelled", "build",
                               "circuit_open", ...), NULL when delivered
                               or skipped. */
    int attempts;           /* Attempts sent (0 when skipped). */
    double duration_ms;     /* From the leg's first attempt to its outcome. */
    publish_skip_reason skip_reason; /* NONE unless skipped. */
    int64_t first_attempt_ms; /* Wall clock, ms since the epoch; 0 if none. */
    int64_t last_attempt_ms;  /* Wall clock, ms since the epoch; 0 if none. */
} publish_target_result;

/*
 * The result of one publish call. Caller-allocated value:
 * publish_result_init() before the call, publish_result_free() after.
 * Invariant: total == succeeded + failed + skipped == n_targets.
 */
typedef struct publish_result {
    size_t total;         /* Targets given to the call. */
    size_t succeeded;     /* Delivered. */
    size_t failed;        /* Attempted and not delivered (incl. deadline). */
    size_t skipped;       /* Not attempted (see skip_reason). */
    double duration_ms;   /* Wall time of the whole call. */
    bool partial_success; /* succeeded > 0 and failed > 0. */
    herald_err err;       /* What the call returned. */
    publish_target_result *targets; /* Owned, n_targets entries, in the
                                       order of the targets given. */
    size_t n_targets;
} publish_result;

/* Initialises an empty result. */
void publish_result_init(publish_result *res);

/* Frees what res owns and re-initialises it. NULL is a no-op. */
void publish_result_free(publish_result *res);

/* True when at least one target delivered. */
bool publish_result_success(const publish_result *res);

/* True when at least one target was attempted and every attempted target
 * delivered (none failed; skipped ones do not count). */
bool publish_result_all_succeeded(const publish_result *res);

/* True when at least one target was attempted and none delivered. */
bool publish_result_all_failed(const publish_result *res);

/* succeeded / (succeeded + failed) in [0, 1]; 0 when none attempted. */
double publish_result_success_rate(const publish_result *res);

/*
 * The result as a new json-c object (caller owns: json_object_put):
 * {"total","succeeded","failed","skipped","duration_ms","partial_success",
 *  "success","error" (null or herald_err2str), "targets":[{"name","type",
 *  "outcome","http_status","error","error_type","attempts","duration_ms",
 *  "skip_reason","first_attempt_ms","last_attempt_ms"}]}.
 * Absent values are null. Returns NULL when out of memory.
 */
struct json_object *publish_result_to_json(const publish_result *res);

/* ------------------------------------------------------------------ */
/* Publishing                                                           */
/* ------------------------------------------------------------------ */

/*
 * Publishes a to the n targets in targets (each borrowed for the call;
 * targets may be NULL when n is 0), selecting as described at the top of
 * this file. a is borrowed for the call. opts may be NULL for the
 * defaults. res (caller-allocated, publish_result_init'ed) is always
 * filled, also on error (res->err is the return value); earlier content
 * is freed. On HERALD_ERR_INVALID nothing was attempted and res holds no
 * targets (all counts 0).
 *
 * Returns HERALD_OK when at least one target delivered (check
 * res->partial_success), else:
 *   HERALD_ERR_INVALID    NULL pp, a or res, NULL targets with n > 0, a
 *                         NULL target, or invalid opts;
 *   HERALD_ERR_NO_ENABLED no target given, or all disabled or filtered;
 *   HERALD_ERR_NO_HEALTHY every remaining target skipped by the health
 *                         strategy or an open breaker;
 *   HERALD_ERR_CANCELLED  *opts->cancel became true first;
 *   HERALD_ERR_DEADLINE   the deadline passed before any delivery;
 *   HERALD_ERR_ALL_FAILED every attempted target failed.
 * Blocks the calling thread up to opts->deadline_ms (plus a few ms to
 * collect results): a wrapper that calls publish_start() and waits for
 * its callback. Any thread except a transport I/O thread (so never from
 * a publish_done_cb); concurrent calls are fine.
 */
herald_err publish_to_multiple(parallel_publisher *pp, const alert *a,
                               target *const *targets, size_t n,
                               const publish_opts *opts, publish_result *res);

/* Publishes to every enabled, matching target of the list. As above. */
herald_err publish_to_all(parallel_publisher *pp, const alert *a,
                          target *const *targets, size_t n,
                          const publish_opts *opts, publish_result *res);

/* Publishes to every enabled, matching target of the list that passes
 * opts->strategy. As above. */
herald_err publish_to_healthy(parallel_publisher *pp, const alert *a,
                              target *const *targets, size_t n,
                              const publish_opts *opts, publish_result *res);

/* ------------------------------------------------------------------ */
/* Asynchronous publishing                                              */
/* ------------------------------------------------------------------ */

/* Which targets of the list a publish selects (as the three entry points). */
typedef enum publish_mode {
    PUBLISH_MODE_MULTIPLE = 0, /* publish_to_multiple */
    PUBLISH_MODE_ALL = 1,      /* publish_to_all */
    PUBLISH_MODE_HEALTHY = 2   /* publish_to_healthy */
} publish_mode;

/*
 * Called exactly once per publish_start() that returned HERALD_OK, when
 * every leg is final, the deadline passed, or *opts->cancel became true.
 * err is what the synchronous call would have returned (also res->err);
 * res is the caller's result, filled (the pointer given to publish_start;
 * still caller-owned). opaque is publish_start's opaque.
 *
 * Called on a transport I/O thread (the last leg's response), on the
 * timer engine's thread (deadline or cancel flag), on the calling
 * thread inside publish_start() when nothing needs sending (every target
 * skipped, cancelled before the start, out of memory) or when every leg
 * ended before publish_start() returned, or on the thread running
 * parallel_destroy(). No lock of the publisher is held. It must not block
 * for long (it runs on an I/O thread and delays that thread's other
 * requests): hand heavy work to another thread. It may call
 * publish_start(); it must not call parallel_destroy() or a synchronous
 * publish_to_* (which would wait for the thread it runs on).
 */
typedef void (*publish_done_cb)(void *opaque, herald_err err,
                                publish_result *res);

/*
 * Starts publishing a as the synchronous entry point of mode would, and
 * returns at once (it never waits for a target; the request building of
 * the first attempts runs on the calling thread).
 *
 * Ownership: a, targets (and the targets they point to), opts and
 * *opts->cancel are borrowed until cb has been called; opts may be NULL
 * for the defaults. res (publish_result_init'ed, caller-owned; earlier
 * content is freed) is written only by the completion, and may be read
 * by the caller from cb on. opaque is passed to cb untouched.
 *
 * Returns HERALD_OK when cb will be (or already was) called: every other
 * outcome, including HERALD_ERR_NOMEM, reaches cb as err (see
 * publish_to_multiple for the values). Returns HERALD_ERR_INVALID for
 * invalid arguments (NULL pp, a, res or cb, an unknown mode, NULL targets
 * with n > 0, a NULL target or one without a name, invalid opts): cb is
 * NOT called and res is filled as the synchronous call would fill it
 * (unless res is NULL).
 *
 * Deadline: opts->deadline_ms from this call; the fan-out's timer
 * completes it at the deadline. Cancel: polled every ~10 ms by that
 * timer; true at the start means nothing is sent (cb is then called
 * inside publish_start with HERALD_ERR_CANCELLED). Any thread, including
 * a publish_done_cb; not concurrently with parallel_destroy().
 */
herald_err publish_start(parallel_publisher *pp, publish_mode mode,
                         const alert *a, target *const *targets, size_t n,
                         const publish_opts *opts, publish_result *res,
                         publish_done_cb cb, void *opaque);

#endif
