/*
 * err.h: the one project-wide error enum of herald.
 *
 * Every fallible function returns a herald_err: 0 is success, every error is
 * negative. herald_err2str() names an error for logs and API answers.
 * Constructors and loaders also fill an errstr buffer with a sentence that
 * names the field and the place (file:line:col, topic/partition/offset).
 */
#ifndef HERALD_ERR_H
#define HERALD_ERR_H

typedef enum herald_err {
    HERALD_OK = 0,
    HERALD_ERR_INVALID = -1,     /* Invalid argument or input. */
    HERALD_ERR_NOMEM = -2,       /* Allocation failed. */
    HERALD_ERR_PARSE = -3,       /* Malformed message or document. */
    HERALD_ERR_CONFIG = -4,      /* Invalid configuration. */
    HERALD_ERR_IO = -5,          /* File or socket I/O failed. */
    HERALD_ERR_KAFKA = -6,       /* librdkafka reported an error. */
    HERALD_ERR_TIMEOUT = -7,     /* An operation ran out of time. */
    HERALD_ERR_ALL_FAILED = -8,  /* Every selected target failed. */
    HERALD_ERR_DEADLINE = -9,    /* The publish deadline passed. */
    HERALD_ERR_CANCELLED = -10,  /* Cancelled (revoke, shutdown). */
    HERALD_ERR_NO_HEALTHY = -11, /* No target passed the health strategy. */
    HERALD_ERR_NO_ENABLED = -12, /* No target is enabled or selected. */
    HERALD_ERR_FULL = -13,       /* A bounded queue or window is full. */
    HERALD_ERR_TOO_LARGE = -14,  /* A size cap was reached. */
    HERALD_ERR_NOT_FOUND = -15,  /* A named object does not exist. */
    HERALD_ERR_STATE = -16,      /* Not allowed in the current state. */
    HERALD_ERR_HTTP = -17        /* An HTTP exchange failed. */
} herald_err;

/*
 * Returns a short, static, lower-case name for err ("all targets failed").
 * Never NULL; unknown values give "unknown error". Any thread.
 */
const char *herald_err2str(herald_err err);

#endif
