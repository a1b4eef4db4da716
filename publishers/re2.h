/*
 * re2.h: regular expressions in Go's RE2 dialect (the one Alertmanager
 * matchers use), implemented with PCRE2.
 *
 * re2_compile() first checks the pattern against an allow-list of RE2
 * syntax: anything RE2 does not have (backreferences, lookaround, atomic
 * groups, possessive quantifiers, recursion, conditionals, \C, \K, \R, \X,
 * (*VERB)s, callouts, flags other than i m s U, repeat counts above 1000)
 * is refused with its position, so that a pattern means in herald what it
 * means in Alertmanager. The escapes whose meaning differs are translated:
 * RE2's \v is the vertical tab, and RE2's \s is [\t\n\f\r ] (no \v).
 * The pattern is then compiled fully anchored, "^(?:pattern)$", with
 * PCRE2_UTF, PCRE2_DOLLAR_ENDONLY and PCRE2_NEVER_BACKSLASH_C, without UCP
 * (so \d, \w and \b are ASCII, as in RE2).
 *
 * Matching never backtracks (PCRE2's DFA matcher) and runs under match,
 * depth, heap and workspace limits: no pattern can take a dispatcher
 * thread or its memory for long. A match that hits a limit counts as no
 * match and is counted (re2_limit_hits()).
 *
 * Thread-safety: a compiled re2_regex is immutable; re2_match() may be
 * called on it from any number of threads at once.
 */
#ifndef HERALD_RE2_H
#define HERALD_RE2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Longest pattern accepted, in bytes. PCRE2 (LINK_SIZE 2, as Debian builds
 * it) cannot hold much more compiled code, and no label regex needs it. */
#define RE2_MAX_PATTERN 65536

/* Largest repeat count, as RE2 ({n,m} with n or m above 1000 is refused). */
#define RE2_MAX_REPEAT 1000

typedef struct re2_regex re2_regex;

/*
 * Compiles pattern (NUL-terminated, UTF-8). On success *out is a new regex
 * owned by the caller (free with re2_destroy()). On failure *out is NULL
 * and errstr gets a sentence such as
 * `lookahead "(?=" at position 3 is not RE2 syntax`.
 * Errors: HERALD_ERR_CONFIG, HERALD_ERR_NOMEM. Any thread.
 */
herald_err re2_compile(const char *pattern, re2_regex **out, char *errstr,
                       size_t errstr_size);

/* Frees re. NULL is a no-op. */
void re2_destroy(re2_regex *re);

/*
 * True when the whole of s (len bytes, any bytes) matches re. A match that
 * hits a limit, or that cannot get memory, is false. Any thread.
 */
bool re2_match(const re2_regex *re, const char *s, size_t len);

/*
 * Matches on the calling thread that hit a limit (match, depth, heap or
 * DFA workspace) since the thread started: compare before and after a
 * match to count them. Any thread.
 */
uint64_t re2_limit_hits(void);

#endif
