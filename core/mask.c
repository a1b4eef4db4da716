/*
 * mask.c: masking of the secrets in URLs (mask.h). A URL in text is found
 * by its "://"; it ends at white space, a quote or an angle bracket. No
 * URL parser: the text may be a truncated error message, and a parser
 * that rejects it would show it whole.
 *
 * Threads: pure functions; any thread.
 */
#include "core/mask.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

/* Hosts whose URL path is itself the credential. */
static const char *const secret_path_hosts[] = {"hooks.slack.com",
                                                "discord.com",
                                                "discordapp.com",
                                                "api.telegram.org",
                                                "outlook.office.com",
                                                ".webhook.office.com",
                                                NULL};

static bool url_end(char c)
{
    return c == '\0' || c == ' ' || c == '\t' || c == '\n' || c == '\r' ||
           c == '"' || c == '\'' || c == '<' || c == '>';
}

static bool host_has_secret_path(const char *host, size_t len)
{
    for (size_t i = 0; secret_path_hosts[i]; i++) {
        const char *h = secret_path_hosts[i];
        size_t hl = strlen(h);

        if (h[0] == '.' ? len > hl && strncasecmp(host + len - hl, h, hl) == 0
                        : len == hl && strncasecmp(host, h, hl) == 0)
            return true;
    }
    return false;
}

/* Appends the URL that starts at url (after its "://", which is written
 * already) and returns where it ends. */
static const char *mask_one(const char *url, buf *out, herald_err *err)
{
    const char *p = url;
    const char *at = NULL;
    const char *host;
    size_t host_len;

    while (!url_end(*p) && *p != '/' && *p != '?' && *p != '#') {
        if (*p == '@')
            at = p;
        p++;
    }
    host = at ? at + 1 : url;
    host_len = (size_t)(p - host);
    if (at && !*err)
        *err = buf_append(out, MASK "@", sizeof(MASK "@") - 1);
    if (!*err)
        *err = buf_append(out, host, host_len);
    if (*p == '/' && host_has_secret_path(host, host_len)) {
        while (!url_end(*p))
            p++;
        if (!*err)
            *err = buf_append(out, "/" MASK, sizeof("/" MASK) - 1);
        return p;
    }
    url = p;
    while (!url_end(*p) && *p != '?' && *p != '#')
        p++;
    if (!*err)
        *err = buf_append(out, url, (size_t)(p - url));
    if (*p == '?' || *p == '#') {
        while (!url_end(*p))
            p++;
        if (!*err)
            *err = buf_append(out, "?" MASK, sizeof("?" MASK) - 1);
    }
    return p;
}

herald_err mask_urls(const char *in, buf *out)
{
    herald_err err = HERALD_OK;
    const char *p = in;
    const char *sep;

    while (!err && (sep = strstr(p, "://")) != NULL) {
        err = buf_append(out, p, (size_t)(sep + 3 - p));
        p = mask_one(sep + 3, out, &err);
    }
    if (!err)
        err = buf_append(out, p, strlen(p));
    return err;
}

void mask_urls_copy(const char *in, char *out, size_t out_size)
{
    buf b;
    size_t n;

    if (!out_size)
        return;
    /* The cap keeps the copy to what out can hold; a longer text is cut. */
    buf_init(&b, out_size - 1);
    (void)mask_urls(in, &b);
    n = b.len < out_size - 1 ? b.len : out_size - 1;
    memcpy(out, b.len ? buf_str(&b) : "", n);
    out[n] = '\0';
    buf_free(&b);
}
