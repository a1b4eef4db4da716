/*
 * re2.c: Go RE2 regular expressions on PCRE2 (see re2.h).
 *
 * Data flow: matcher_parse() (publishers/matchers.c) calls re2_compile()
 * once per =~ or !~ matcher when targets.yaml is loaded; the compiled regex
 * lives in the matcher. Dispatcher threads call re2_match() for every
 * (alert, target) pair. A compiled regex is never written after
 * re2_compile() returns, so no lock is needed.
 *
 * The check is an allow-list walk over the pattern that copies it into the
 * PCRE2 pattern, translating the few escapes whose meaning differs.
 */
#define PCRE2_CODE_UNIT_WIDTH 8

#include "publishers/re2.h"

#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"

/*
 * Matching uses PCRE2's DFA matcher (pcre2_dfa_match): like RE2 it never
 * backtracks, so its time grows with the value's length times the
 * pattern's states, and `(x+x+)+y` or 22 `a+` in a row cost nothing. A
 * matcher needs only yes or no, which the DFA matcher gives; it lacks only
 * what RE2 lacks too (backreferences, \C). The workspace holds the active
 * states: 16,384 ints (64 KiB) fit more states than a label regex of
 * RE2's sizes has in practice. The match and depth limits cap the DFA
 * matcher's recursion (100,000 calls, depth 1,000) and the heap limit its
 * extra memory (1 MiB), whatever the pattern.
 */
#define RE2_DFA_WORKSPACE 16384
#define RE2_MATCH_LIMIT 100000
#define RE2_DEPTH_LIMIT 1000
#define RE2_HEAP_LIMIT_KIB 1024

struct re2_regex {
    pcre2_code *code;
    pcre2_match_context *mctx;
};

/* Per thread, so a caller can tell which of its matches hit a limit. */
static _Thread_local uint64_t limit_hits;

/* The state of one walk over a pattern. */
typedef struct re2_walk {
    const char *p; /* The pattern. */
    size_t i;      /* Byte offset of the next character. */
    buf *out;      /* The PCRE2 pattern being built. */
    char *errstr;
    size_t errstr_size;
} re2_walk;

static herald_err refuse(re2_walk *w, size_t pos, const char *what)
{
    snprintf(w->errstr, w->errstr_size, "%s at position %zu is not RE2 syntax",
             what, pos + 1);
    return HERALD_ERR_CONFIG;
}

static herald_err bad(re2_walk *w, size_t pos, const char *what)
{
    snprintf(w->errstr, w->errstr_size, "%s at position %zu", what, pos + 1);
    return HERALD_ERR_CONFIG;
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_xdigit(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static herald_err emit(re2_walk *w, const char *s, size_t n)
{
    return buf_append(w->out, s, n);
}

/* \x{h...} or \xhh starting at w->i (on the 'x'); copies it. */
static herald_err walk_hex(re2_walk *w, size_t at)
{
    const char *p = w->p;
    size_t j = w->i + 1;

    if (p[j] == '{') {
        size_t k = j + 1;

        while (is_xdigit(p[k]))
            k++;
        if (k == j + 1 || p[k] != '}' || k - j - 1 > 8)
            return bad(w, at, "bad \\x{...} escape");
        j = k + 1;
    } else {
        if (!is_xdigit(p[j]) || !is_xdigit(p[j + 1]))
            return bad(w, at, "\\x needs two hex digits");
        j += 2;
    }
    if (emit(w, "\\", 1) || emit(w, p + w->i, j - w->i))
        return HERALD_ERR_NOMEM;
    w->i = j;
    return HERALD_OK;
}

/* \pL, \p{Name} or \p{^Name} (and \P) starting at w->i (on the letter). */
static herald_err walk_prop(re2_walk *w, size_t at)
{
    const char *p = w->p;
    size_t j = w->i + 1;

    if (p[j] == '{') {
        size_t k = j + 1;

        if (p[k] == '^')
            k++;
        while (is_alpha(p[k]) || p[k] == '_')
            k++;
        if (p[k] != '}' || k == j + 1)
            return bad(w, at, "bad Unicode class escape");
        j = k + 1;
    } else if (is_alpha(p[j])) {
        j++;
    } else {
        return bad(w, at, "bad Unicode class escape");
    }
    if (emit(w, "\\", 1) || emit(w, p + w->i, j - w->i))
        return HERALD_ERR_NOMEM;
    w->i = j;
    return HERALD_OK;
}

/*
 * One escape starting at w->i (on the backslash), in a character class when
 * in_class.
 */
static herald_err walk_escape(re2_walk *w, bool in_class)
{
    size_t at = w->i;
    char c = w->p[at + 1];
    const char *rep = NULL;

    w->i = at + 1;
    if (c == '\0')
        return bad(w, at, "trailing backslash");
    if (c >= '1' && c <= '9')
        return refuse(w, at, in_class ? "octal escape" : "backreference");
    switch (c) {
    case 'x': return walk_hex(w, at);
    case 'p':
    case 'P': return walk_prop(w, at);
    case 'k':
    case 'g': return refuse(w, at, "backreference \\k or \\g");
    case 'C': return refuse(w, at, "\\C (one code unit)");
    case 'v': rep = "\\x{0b}"; break;
    case 's': rep = in_class ? "\\t\\n\\f\\r " : "[\\t\\n\\f\\r ]"; break;
    case 'S':
        if (in_class)
            return refuse(w, at, "\\S inside a character class");
        rep = "[^\\t\\n\\f\\r ]";
        break;
    case '0': {
        size_t j = at + 2;

        while (j < at + 4 && w->p[j] >= '0' && w->p[j] <= '7')
            j++;
        if (emit(w, w->p + at, j - at))
            return HERALD_ERR_NOMEM;
        w->i = j;
        return HERALD_OK;
    }
    case 'a':
    case 'f':
    case 't':
    case 'n':
    case 'r':
    case 'd':
    case 'D':
    case 'w':
    case 'W': break;
    case 'b':
    case 'B':
    case 'A':
    case 'z':
        if (in_class)
            return refuse(w, at, "this escape inside a character class");
        break;
    default:
        /* Escaped ASCII punctuation is the character itself, in both. */
        if ((unsigned char)c >= 0x80 || is_alpha(c))
            return refuse(w, at, "this escape");
        break;
    }
    w->i = at + 2;
    if (rep)
        return emit(w, rep, strlen(rep));
    return emit(w, w->p + at, 2);
}

/* [:name:] or [:^name:] at w->i (on the '['), inside a class. */
static herald_err walk_posix(re2_walk *w)
{
    static const char *const names[] = {
        "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph",
        "lower", "print", "punct", "space", "upper", "word",  "xdigit"};
    const char *s = w->p + w->i + 2;
    const char *end;
    size_t n;

    if (*s == '^')
        s++;
    end = strstr(s, ":]");
    if (!end)
        return bad(w, w->i, "unterminated [: character class");
    n = (size_t)(end - s);
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (strlen(names[k]) == n && strncmp(names[k], s, n) == 0) {
            size_t len = (size_t)(end + 2 - (w->p + w->i));

            if (emit(w, w->p + w->i, len))
                return HERALD_ERR_NOMEM;
            w->i += len;
            return HERALD_OK;
        }
    }
    return bad(w, w->i, "unknown POSIX character class");
}

/* A character class starting at w->i (on the '['). */
static herald_err walk_class(re2_walk *w)
{
    size_t at = w->i;
    herald_err err;

    if (emit(w, "[", 1))
        return HERALD_ERR_NOMEM;
    w->i++;
    if (w->p[w->i] == '^') {
        if (emit(w, "^", 1))
            return HERALD_ERR_NOMEM;
        w->i++;
    }
    if (w->p[w->i] == ']') {
        if (emit(w, "\\]", 2))
            return HERALD_ERR_NOMEM;
        w->i++;
    }
    for (;;) {
        char c = w->p[w->i];

        if (c == '\0')
            return bad(w, at, "missing ] for the character class");
        if (c == ']')
            break;
        if (c == '[' && w->p[w->i + 1] == ':') {
            err = walk_posix(w);
        } else if (c == '\\') {
            err = walk_escape(w, true);
        } else if (c == '[') {
            /* A literal in RE2; PCRE2 would read [. and [= as collating
             * elements. */
            err = emit(w, "\\[", 2);
            w->i++;
        } else {
            err = emit(w, &c, 1);
            w->i++;
        }
        if (err)
            return err;
    }
    w->i++;
    return emit(w, "]", 1);
}

/* Inline flags "(?flags)" or "(?flags:" at w->i (on the first flag). */
static herald_err walk_flags(re2_walk *w, size_t at)
{
    size_t j = w->i;
    bool neg = false;
    bool any = false;

    for (;; j++) {
        char c = w->p[j];

        if (c == 'i' || c == 'm' || c == 's' || c == 'U') {
            any = true;
        } else if (c == '-' && !neg) {
            if (!any && j != w->i)
                break;
            neg = true;
            any = false;
        } else {
            break;
        }
    }
    if (is_alpha(w->p[j]))
        return refuse(w, j, "this flag (RE2 has i, m, s, U)");
    if ((w->p[j] != ')' && w->p[j] != ':') || !any)
        return refuse(w, at, "this group syntax");
    if (emit(w, "(?", 2) || emit(w, w->p + w->i, j + 1 - w->i))
        return HERALD_ERR_NOMEM;
    w->i = j + 1;
    return HERALD_OK;
}

/* A group name and its '>' at w->i; copies "(?P<" name ">". */
static herald_err walk_name(re2_walk *w, size_t at)
{
    size_t j = w->i;

    if (!is_alpha(w->p[j]) && w->p[j] != '_')
        return bad(w, at, "bad group name");
    while (is_alpha(w->p[j]) || is_digit(w->p[j]) || w->p[j] == '_')
        j++;
    if (w->p[j] != '>')
        return bad(w, at, "bad group name");
    if (emit(w, "(?P<", 4) || emit(w, w->p + w->i, j + 1 - w->i))
        return HERALD_ERR_NOMEM;
    w->i = j + 1;
    return HERALD_OK;
}

/* "(" at w->i: a group, or flags such as "(?i)". */
static herald_err walk_group(re2_walk *w)
{
    size_t at = w->i;
    const char *p = w->p + at;

    if (p[1] == '*')
        return refuse(w, at, "backtracking verb \"(*\"");
    if (p[1] != '?') {
        w->i++;
        return emit(w, "(", 1);
    }
    switch (p[2]) {
    case ':': w->i += 3; return emit(w, "(?:", 3);
    case '=': return refuse(w, at, "lookahead \"(?=\"");
    case '!': return refuse(w, at, "negative lookahead \"(?!\"");
    case '>': return refuse(w, at, "atomic group \"(?>\"");
    case '(': return refuse(w, at, "conditional \"(?(\"");
    case '|': return refuse(w, at, "branch reset \"(?|\"");
    case '#': return refuse(w, at, "comment \"(?#\"");
    case 'C': return refuse(w, at, "callout \"(?C\"");
    case '\'': return refuse(w, at, "quoted group name \"(?'\"");
    case 'R':
    case '&':
    case '+': return refuse(w, at, "recursion");
    case '<':
        if (p[3] == '=')
            return refuse(w, at, "lookbehind \"(?<=\"");
        if (p[3] == '!')
            return refuse(w, at, "negative lookbehind \"(?<!\"");
        w->i += 3;
        return walk_name(w, at);
    case 'P':
        if (p[3] == '=')
            return refuse(w, at, "named backreference \"(?P=\"");
        if (p[3] == '>')
            return refuse(w, at, "recursion \"(?P>\"");
        if (p[3] != '<')
            return refuse(w, at, "this group syntax");
        w->i += 4;
        return walk_name(w, at);
    default: break;
    }
    if (is_digit(p[2]) || (p[2] == '-' && is_digit(p[3])))
        return refuse(w, at, "recursion");
    w->i += 2;
    return walk_flags(w, at);
}

/*
 * A counted repeat {n}, {n,} or {n,m} at w->i. *is_repeat is false when the
 * brace is a literal (as in both RE2 and PCRE2 when it is not a repeat).
 */
static herald_err walk_repeat(re2_walk *w, bool *is_repeat)
{
    size_t at = w->i;
    size_t j = at + 1;
    long n = 0;
    long m = -1;

    *is_repeat = false;
    w->i = at + 1; /* A literal brace unless it is a repeat. */
    if (!is_digit(w->p[j]))
        return emit(w, "\\{", 2);
    while (is_digit(w->p[j]) && n <= RE2_MAX_REPEAT)
        n = n * 10 + (w->p[j++] - '0');
    if (w->p[j] == ',') {
        j++;
        if (is_digit(w->p[j])) {
            m = 0;
            while (is_digit(w->p[j]) && m <= RE2_MAX_REPEAT)
                m = m * 10 + (w->p[j++] - '0');
        }
    } else {
        m = n;
    }
    if (w->p[j] != '}') {
        /* Not a repeat after all: a literal brace. */
        if (is_digit(w->p[j]))
            return bad(w, at, "repeat count above 1000");
        return emit(w, "\\{", 2);
    }
    if (n > RE2_MAX_REPEAT || m > RE2_MAX_REPEAT)
        return bad(w, at, "repeat count above 1000");
    if (m >= 0 && m < n)
        return bad(w, at, "repeat {n,m} with m < n");
    *is_repeat = true;
    if (emit(w, w->p + at, j + 1 - at))
        return HERALD_ERR_NOMEM;
    w->i = j + 1;
    return HERALD_OK;
}

/* Walks the whole pattern into w->out. */
static herald_err walk(re2_walk *w)
{
    bool atom = false;     /* A quantifier may follow. */
    bool repeated = false; /* The last item was a quantifier. */
    herald_err err = HERALD_OK;

    while (!err && w->p[w->i]) {
        size_t at = w->i;
        char c = w->p[at];
        bool is_repeat = false;

        switch (c) {
        case '\\':
            if (w->p[at + 1] == 'Q') {
                const char *e = strstr(w->p + at + 2, "\\E");
                size_t len =
                    e ? (size_t)(e + 2 - (w->p + at)) : strlen(w->p + at);

                err = emit(w, w->p + at, len);
                w->i += len;
            } else {
                err = walk_escape(w, false);
            }
            atom = true;
            break;
        case '[':
            err = walk_class(w);
            atom = true;
            break;
        case '(':
            /* Nothing to repeat right after "(" or "(?i)". */
            err = walk_group(w);
            atom = false;
            break;
        case '{':
            err = walk_repeat(w, &is_repeat);
            if (!is_repeat)
                atom = true;
            break;
        default:
            /* One character: a literal, ")", "^" or "$" may be repeated,
             * "|" may not; "*", "+" and "?" are repeats. */
            err = emit(w, &c, 1);
            w->i++;
            is_repeat = c == '*' || c == '+' || c == '?';
            if (!is_repeat)
                atom = c != '|';
            break;
        }
        if (err || !is_repeat) {
            repeated = false;
            continue;
        }
        if (repeated)
            return refuse(w, at, "nested repetition operator");
        if (!atom)
            return bad(w, at, "repetition operator with nothing to repeat");
        if (w->p[w->i] == '+')
            return refuse(w, w->i, "possessive quantifier");
        if (w->p[w->i] == '?') {
            w->i++;
            err = emit(w, "?", 1);
        }
        repeated = true;
    }
    return err;
}

herald_err re2_compile(const char *pattern, re2_regex **out, char *errstr,
                       size_t errstr_size)
{
    re2_regex *re = NULL;
    pcre2_compile_context *cctx = NULL;
    herald_err err;
    buf b;
    re2_walk w = {.p = pattern, .errstr = errstr, .errstr_size = errstr_size};
    size_t n = strlen(pattern);
    int rc;
    PCRE2_SIZE off;

    *out = NULL;
    buf_init(&b, 8 * n + 64);
    w.out = &b;
    if (n > RE2_MAX_PATTERN) {
        snprintf(errstr, errstr_size,
                 "regex is %zu bytes long, the limit is %d", n,
                 RE2_MAX_PATTERN);
        err = HERALD_ERR_CONFIG;
        goto out;
    }
    err = buf_append_str(&b, "^(?:");
    if (!err)
        err = walk(&w);
    if (!err)
        err = buf_append_str(&b, ")$");
    if (err)
        goto out;
    re = calloc(1, sizeof(*re));
    cctx = pcre2_compile_context_create(NULL);
    if (!re || !cctx) {
        err = HERALD_ERR_NOMEM;
        goto out;
    }
    pcre2_set_max_pattern_length(cctx, 8 * RE2_MAX_PATTERN + 64);
    re->code = pcre2_compile((PCRE2_SPTR)buf_str(&b), b.len,
                             PCRE2_UTF | PCRE2_DOLLAR_ENDONLY |
                                 PCRE2_NEVER_BACKSLASH_C | PCRE2_NEVER_UCP |
                                 PCRE2_NO_AUTO_CAPTURE,
                             &rc, &off, cctx);
    if (!re->code) {
        PCRE2_UCHAR why[160];

        pcre2_get_error_message(rc, why, sizeof(why));
        snprintf(errstr, errstr_size, "%s", (const char *)why);
        err = rc == PCRE2_ERROR_NOMEMORY ? HERALD_ERR_NOMEM : HERALD_ERR_CONFIG;
        goto out;
    }
    re->mctx = pcre2_match_context_create(NULL);
    if (!re->mctx) {
        err = HERALD_ERR_NOMEM;
        goto out;
    }
    pcre2_set_match_limit(re->mctx, RE2_MATCH_LIMIT);
    pcre2_set_depth_limit(re->mctx, RE2_DEPTH_LIMIT);
    pcre2_set_heap_limit(re->mctx, RE2_HEAP_LIMIT_KIB);
    *out = re;
    re = NULL;
out:
    if (err == HERALD_ERR_NOMEM)
        snprintf(errstr, errstr_size, "out of memory compiling a regex");
    pcre2_compile_context_free(cctx);
    re2_destroy(re);
    buf_free(&b);
    return err;
}

void re2_destroy(re2_regex *re)
{
    if (!re)
        return;
    pcre2_code_free(re->code);
    pcre2_match_context_free(re->mctx);
    free(re);
}

bool re2_match(const re2_regex *re, const char *s, size_t len)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int *ws = malloc(RE2_DFA_WORKSPACE * sizeof(*ws));
    int rc = PCRE2_ERROR_NOMEMORY;

    if (md && ws)
        rc = pcre2_dfa_match(re->code, (PCRE2_SPTR)s, len, 0, 0, md, re->mctx,
                             ws, RE2_DFA_WORKSPACE);
    pcre2_match_data_free(md);
    free(ws);
    /* A full state table is a limit as well: the answer is unknown. */
    if (rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT ||
        rc == PCRE2_ERROR_HEAPLIMIT || rc == PCRE2_ERROR_DFA_WSSIZE)
        limit_hits++;
    /* 0 means a match with more matches than the data holds. A value that
     * is not UTF-8 is an error, so no match (herald's alerts are UTF-8). */
    return rc >= 0;
}

uint64_t re2_limit_hits(void)
{
    return limit_hits;
}
