/*
 * buf.h: the one growable byte buffer of herald, always capped.
 *
 * Modelled on curl's dynbuf: a buffer has a hard maximum size given at init,
 * appending past it fails with HERALD_ERR_TOO_LARGE and leaves the buffer as
 * it was. The content is always NUL-terminated (the NUL is not counted in
 * len). A buf is a caller-allocated value type: buf_init()/buf_free().
 * Not thread-safe: one owner at a time.
 */
#ifndef HERALD_BUF_H
#define HERALD_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "core/err.h"

typedef struct buf {
    char *data; /* Owned; NULL until the first append. */
    size_t len; /* Bytes used, without the trailing NUL. */
    size_t cap; /* Bytes allocated. */
    size_t max; /* Hard cap on len, in bytes. */
} buf;

/* Initialises an empty buffer that may hold at most max bytes. */
void buf_init(buf *b, size_t max);

/*
 * Appends n bytes from p. Errors: HERALD_ERR_TOO_LARGE past b->max,
 * HERALD_ERR_NOMEM; on error the buffer is unchanged.
 */
herald_err buf_append(buf *b, const void *p, size_t n);

/* Appends a NUL-terminated string. Errors as buf_append(). */
herald_err buf_append_str(buf *b, const char *s);

/* Appends printf-formatted text. Errors as buf_append(). */
herald_err buf_appendf(buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* va_list form of buf_appendf(). */
herald_err buf_vappendf(buf *b, const char *fmt, va_list ap);

/* The content as a C string; "" when empty. Borrowed until the next change. */
const char *buf_str(const buf *b);

/*
 * Hands the content to the caller (free() it; never NULL unless out of
 * memory) and leaves the buffer empty.
 */
char *buf_steal(buf *b);

/* Empties the buffer, keeping its memory. */
void buf_reset(buf *b);

/* Frees the memory; the buffer is empty and reusable afterwards. */
void buf_free(buf *b);

#endif
