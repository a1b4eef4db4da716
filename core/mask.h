/*
 * mask.h: hides the secrets a URL can hold, in a URL or in free text (a
 * curl error message, a log line). One rule for every output surface:
 * check-config, GET /targets, logs and dead-letter headers.
 */
#ifndef HERALD_MASK_H
#define HERALD_MASK_H

#include "core/buf.h"
#include "core/err.h"

/* What a masked part is replaced with. */
#define MASK "***"

/*
 * Appends in (borrowed) to out with every URL ("scheme://...") in it
 * masked: its userinfo becomes "***@", its query and fragment "?***", and
 * the whole path becomes "/" MASK on hosts whose path is the credential
 * (Slack hooks.slack.com, Discord, Telegram api.telegram.org, Microsoft
 * Teams *.webhook.office.com and outlook.office.com). The scheme, host,
 * port and other paths are kept; text around URLs is copied. Returns
 * HERALD_OK, or buf_append()'s error (out holds a prefix then). Any
 * thread.
 */
herald_err mask_urls(const char *in, buf *out);

/*
 * Copies in (borrowed) to out (out_size bytes, NUL-terminated, truncated
 * to fit) with URLs masked as mask_urls() does. Any thread.
 */
void mask_urls_copy(const char *in, char *out, size_t out_size);

#endif
