/*
 * matchers.h: Alertmanager-style label matchers for routing alerts to targets.
 *
 * The syntax is Alertmanager's matcher syntax
 * (https://prometheus.io/docs/alerting/latest/configuration/#matcher):
 *   name="value"   name!="value"   name=~"regex"   name!~"regex"
 * and lists of them, `{a="b", c=~"d"}` or `a="b", c=~"d"`; the matchers of
 * a list must all match. The label name is [a-zA-Z_:][a-zA-Z0-9_:]*. The
 * value may be double-quoted or bare; in both, \" is a quote, \\ a
 * backslash and \n a line feed, and any other backslash is kept as written
 * (so regexes such as "host\d+" need no doubling). An unescaped '"' may
 * only open and close the value. Spaces around the name, the operator and
 * the value are ignored.
 *
 * Regular expressions are Go RE2 (publishers/re2.h), fully anchored as in
 * Alertmanager: =~"re" matches when the whole value matches ^(?:re)$. A
 * label that the alert does not have matches as the empty string, so
 * `team!="ops"` matches an alert without a team label and `team=~".*"`
 * matches every alert.
 *
 * Thread-safety: parsing is pure; a parsed matcher is immutable and may be
 * matched from any number of threads.
 */
#ifndef HERALD_MATCHERS_H
#define HERALD_MATCHERS_H

#include <stdbool.h>
#include <stddef.h>

#include "core/alert.h"
#include "core/buf.h"
#include "core/err.h"
#include "publishers/target.h"

/*
 * Parses one matcher string into out (caller-allocated; zeroed by this
 * function). On success out owns its strings and regex: free with
 * matcher_free(). On failure out is left empty (freeing it is allowed) and
 * errstr gets a sentence such as
 * `regex "a(?=b)": lookahead "(?=" at position 2 is not RE2 syntax`.
 * Errors: HERALD_ERR_CONFIG (syntax or regex), HERALD_ERR_NOMEM. Any thread.
 */
herald_err matcher_parse(const char *text, target_matcher *out, char *errstr,
                         size_t errstr_size);

/* Frees what m owns and zeroes it. NULL and zeroed matchers are fine. */
void matcher_free(target_matcher *m);

/*
 * Parses a list of matchers as Alertmanager does: an optional '{' and '}',
 * matchers separated by commas outside double quotes, an optional trailing
 * comma. "{}" and "" give an empty list. On success *out is a new array of
 * *n matchers (NULL when *n is 0); caller owns it, free with
 * matchers_free(). On failure *out is NULL, *n is 0 and errstr says which
 * matcher of the list is wrong and why.
 * Errors: HERALD_ERR_CONFIG, HERALD_ERR_NOMEM. Any thread.
 */
herald_err matchers_parse(const char *text, target_matcher **out, size_t *n,
                          char *errstr, size_t errstr_size);

/* Frees the n matchers of ms and the array. NULL is a no-op. */
void matchers_free(target_matcher *ms, size_t n);

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
 * Index of the first of the n matchers that does not match labels, or n
 * when they all match. Any thread.
 */
size_t matchers_first_failed(const target_matcher *ms, size_t n,
                             const alert_kvs *labels);

/*
 * Appends the canonical text of m (name, operator, double-quoted value) to
 * out, e.g. `severity=~"critical|error"`. Errors: as buf_append().
 */
herald_err matcher_format(const target_matcher *m, buf *out);

/* "=", "!=", "=~" or "!~". */
const char *matcher_op_name(target_match_op op);

#endif
