/*
 * matchers.h: Alertmanager-style label matchers for routing alerts to targets.
 *
 * A matcher is one string of the form used in Alertmanager's `matchers:`
 * lists (https://prometheus.io/docs/alerting/latest/configuration/#matcher):
 *   name="value"   name!="value"   name=~"regex"   name!~"regex"
 * The value may be double-quoted (with \" \\ and \n escapes) or bare.
 * Regular expressions are fully anchored, as in Alertmanager: the value is
 * compiled as the POSIX extended regex "^(value)$" (POSIX ERE has no
 * "(?:...)" group; Go RE2-only syntax such as \d is not available). A label
 * that the alert does not have matches as the empty string, so
 * `team!="ops"` matches an alert without a team label and `team=~".*"`
 * matches every alert.
 *
 * Thread-safety: parsing is pure; a parsed matcher is immutable and may be
 * matched from any number of threads (regexec on a shared regex_t is
 * thread-safe in glibc).
 */
#ifndef HERALD_MATCHERS_H
#define HERALD_MATCHERS_H

#include <stdbool.h>
#include <stddef.h>

#include "publishers/target.h"
#include "core/alert.h"
#include "core/buf.h"
#include "core/err.h"

/*
 * Parses one matcher string into out (caller-allocated; zeroed by this
 * function). On success out owns its strings and regex: free with
 * matcher_free(). On failure out is left empty (freeing it is allowed) and
 * errstr gets a sentence such as `bad regex "(": ...`.
 * Errors: HERALD_ERR_CONFIG (syntax or regex), HERALD_ERR_NOMEM. Any thread.
 */
herald_err matcher_parse(const char *text, target_matcher *out, char *errstr,
                         size_t errstr_size);

/* Frees what m owns and zeroes it. NULL and zeroed matchers are fine. */
void matcher_free(target_matcher *m);

/*
 * True when the label value (NULL for a missing label, which counts as "")
 * satisfies m. Any thread.
 */
bool matcher_match(const target_matcher *m, const char *value);

/*
 * True when every one of the n matchers matches the label set (n == 0 is
 * true). Any thread.
 */
bool matchers_match_all(const target_matcher *ms, size_t n,
                        const alert_kvs *labels);

/*
 * Appends the canonical text of m (name, operator, double-quoted value) to
 * out, e.g. `severity=~"critical|error"`. Errors: as buf_append().
 */
herald_err matcher_format(const target_matcher *m, buf *out);

/* "=", "!=", "=~" or "!~". */
const char *matcher_op_name(target_match_op op);

#endif
