/*
 * buf.c: capped growable buffer (see buf.h). Growth doubles the allocation
 * so appends are amortised O(1); the cap bounds memory whatever the input.
 * No shared state: thread-safety is the owner's.
 */
#include "core/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void buf_init(buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static herald_err buf_reserve(buf *b, size_t extra)
{
    size_t need;
    size_t ncap;
    char *p;

    if (extra > b->max || b->len > b->max - extra)
        return HERALD_ERR_TOO_LARGE;
    need = b->len + extra + 1;
    if (need <= b->cap)
        return HERALD_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < need)
        ncap *= 2;
    p = realloc(b->data, ncap);
    if (!p)
        return HERALD_ERR_NOMEM;
    b->data = p;
    b->cap = ncap;
    return HERALD_OK;
}

herald_err buf_append(buf *b, const void *p, size_t n)
{
    herald_err err = buf_reserve(b, n);

    if (err)
        return err;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return HERALD_OK;
}

herald_err buf_append_str(buf *b, const char *s)
{
    return buf_append(b, s, strlen(s));
}

herald_err buf_vappendf(buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    int n;
    herald_err err;

    va_copy(cp, ap);
    n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return HERALD_ERR_INVALID;
    err = buf_reserve(b, (size_t)n);
    if (err)
        return err;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return HERALD_OK;
}

herald_err buf_appendf(buf *b, const char *fmt, ...)
{
    va_list ap;
    herald_err err;

    va_start(ap, fmt);
    err = buf_vappendf(b, fmt, ap);
    va_end(ap);
    return err;
}

const char *buf_str(const buf *b)
{
    return b->data ? b->data : "";
}

char *buf_steal(buf *b)
{
    char *p = b->data;

    if (!p)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void buf_reset(buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}
