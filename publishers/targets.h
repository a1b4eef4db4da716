/*
 * targets.h: loading targets.yaml into an immutable, reference-counted set
 * of targets, printing it with secrets masked, and swapping it on reload.
 *
 * The file (docs/TARGETS.md is the reference of every key):
 *
 *   defaults:            # any generic key; applied to every target first
 *     timeout_ms: 5000
 *   targets:
 *     - name: ops-webhook        # unique, [a-z0-9-], at most 63 bytes
 *       type: webhook            # webhook | slack | pagerduty | rootly
 *       url: http://127.0.0.1:9101/alerts
 *       auth: {type: bearer, token: "${OPS_TOKEN}"}
 *       matchers: ['severity=~"critical|error"']
 *
 * The schema is table-driven (STYLE.md rule 16): one static table of generic
 * keys in targets.c and one per plugin (target_plugin.keys). Every mistake is
 * reported as "FILE:LINE:COL: targets[2].retry.max_attempts: expected an
 * integer, got \"x\"" (1-based line and column of the offending node).
 *
 * Values may hold ${NAME}; the variable is expanded when the file is loaded
 * and the value is then treated as a secret (masked in every output). "$$"
 * stands for a literal "$". An unset variable is an error, except in a
 * target with `enabled: false`, where the value stays empty: shipping
 * disabled examples whose secrets are not set is allowed.
 *
 * Merging of `defaults:`: scalars and sections (retry, health, ...) merge key
 * by key, `headers` merge by header name (the target wins), `matchers` and
 * `auth` are replaced as a whole by a target that sets them.
 *
 * Per-type keys (target_plugin.keys): the loader stores STRING, SECRET and
 * ENUM values as malloc'd char *, INT as int, BOOL as bool and MAP as an
 * alert_kvs (sorted by name) at key.offset in type_config, and frees them
 * itself; plugin->config_free only frees what config_finish added. When
 * config_finish runs, tgt->rate_per_sec is negative if the user did not set
 * rate_limit.per_second (so a plugin may choose its own default); the loader
 * turns a value still negative afterwards into 0 (unlimited).
 *
 * Thread-safety: a target_set is immutable; targets_acquire/release use an
 * atomic reference count and may be called from any thread. A
 * targets_registry may be used from any thread (one mutex guards the
 * current pointer; nothing is loaded or logged under it).
 */
#ifndef HERALD_TARGETS_H
#define HERALD_TARGETS_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "core/err.h"
#include "publishers/target.h"

/* Longest targets.yaml accepted, bytes (a few thousand targets fit). */
#define TARGETS_MAX_FILE_BYTES (4 * 1024 * 1024)

typedef struct target_set target_set;

/*
 * Loads and validates the file at path. On success *out is a new set with
 * one reference (release with targets_release()). On failure *out is NULL
 * and errstr gets "FILE:LINE:COL: KEY: what is wrong" (or "FILE: why" when
 * the file cannot be read).
 * Errors: HERALD_ERR_CONFIG (invalid content), HERALD_ERR_IO (unreadable,
 * larger than TARGETS_MAX_FILE_BYTES), HERALD_ERR_NOMEM. Any thread.
 */
herald_err targets_load(const char *path, target_set **out, char *errstr,
                        size_t errstr_size);

/*
 * Like targets_load() for a YAML text in memory; name_for_errors (borrowed
 * during the call) is the FILE part of messages and each target's
 * source_file.
 */
herald_err targets_load_string(const char *yaml, const char *name_for_errors,
                               target_set **out, char *errstr,
                               size_t errstr_size);

/* Number of targets (enabled or not) in set, in file order. */
size_t targets_count(const target_set *set);

/* The targets in file order; borrowed while the caller holds a reference. */
target *const *targets_list(const target_set *set);

/* The target named name, or NULL. Borrowed like targets_list(). */
target *targets_find(const target_set *set, const char *name);

/* The file the set was loaded from (borrowed like targets_list()). */
const char *targets_source(const target_set *set);

/* Takes one more reference to set and returns it. NULL gives NULL. */
target_set *targets_acquire(target_set *set);

/* Drops one reference; the last one frees the set. NULL is a no-op. */
void targets_release(target_set *set);

/*
 * Writes the effective configuration (defaults applied, secrets shown as
 * "***") to out as YAML, one document with a `targets:` list: what
 * `herald check-config FILE` prints. Errors: HERALD_ERR_IO, HERALD_ERR_NOMEM.
 */
herald_err targets_print(const target_set *set, FILE *out);

/*
 * Writes to out, one line per target in file order, whether an alert with
 * the given labels would be published to it and, when not, why (the
 * target is disabled, or which matcher does not match and the label's
 * value), as `amtool config routes test` does; then a summary line. Only
 * `enabled` and `matchers` decide: health, breakers and the
 * herald-targets header are run-time states. *n_taken gets the number of
 * targets that take the alert. Errors: HERALD_ERR_IO, HERALD_ERR_NOMEM.
 * Any thread holding a reference to set.
 */
herald_err targets_route(const target_set *set, const alert_kvs *labels,
                         FILE *out, size_t *n_taken);

/*
 * Builds the effective configuration as JSON, an array with one object per
 * target, secrets masked: what GET /targets serves. *out is a new json-c
 * object, caller owns it (json_object_put()). Errors: HERALD_ERR_NOMEM.
 */
herald_err targets_to_json(const target_set *set, json_object **out);

/*
 * Writes the reference of every key (generic and per type) as Markdown
 * tables, generated from the schema tables (docs/TARGETS.md holds it).
 * Errors: HERALD_ERR_IO.
 */
herald_err targets_schema_markdown(FILE *out);

/* The hot-reload holder of the current target set. */
typedef struct targets_registry targets_registry;

/*
 * Creates a registry holding initial (takes ownership of that reference on
 * success; initial may be NULL for an empty registry). Returns NULL when
 * out of memory (initial is then still the caller's).
 * Free with targets_registry_destroy().
 */
targets_registry *targets_registry_new(target_set *initial);

/*
 * Drops the registry's reference to its set and frees it; sets still
 * acquired by users stay valid until released. NULL is a no-op.
 */
void targets_registry_destroy(targets_registry *reg);

/*
 * The current set with a new reference (release with targets_release()),
 * or NULL when the registry is empty. A job keeps the set it acquired for
 * its whole life, so a reload never changes the config under it. Any thread.
 */
target_set *targets_registry_current(targets_registry *reg);

/*
 * Loads and validates path, then swaps it in as the current set. On error
 * the current set stays, errstr says why, and the error of targets_load()
 * is returned. Any thread; concurrent reloads are serialised.
 */
herald_err targets_registry_reload(targets_registry *reg, const char *path,
                                   char *errstr, size_t errstr_size);

/* Replaces the current set with set (takes the caller's reference). */
void targets_registry_swap(targets_registry *reg, target_set *set);

/*
 * True when the modification time of path differs from *last_mtime (then
 * *last_mtime is updated), for polling the file for changes. A file that
 * cannot be stat'ed counts as unchanged. Any thread, with its own
 * last_mtime.
 */
bool targets_file_changed(const char *path, struct timespec *last_mtime);

#endif
