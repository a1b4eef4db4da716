/*
 * err.c: names for the project-wide error enum. Pure, any thread.
 */
#include "core/err.h"

const char *herald_err2str(herald_err err)
{
    switch (err) {
    case HERALD_OK: return "success";
    case HERALD_ERR_INVALID: return "invalid input";
    case HERALD_ERR_NOMEM: return "out of memory";
    case HERALD_ERR_PARSE: return "malformed input";
    case HERALD_ERR_CONFIG: return "invalid configuration";
    case HERALD_ERR_IO: return "i/o error";
    case HERALD_ERR_KAFKA: return "kafka error";
    case HERALD_ERR_TIMEOUT: return "timed out";
    case HERALD_ERR_ALL_FAILED: return "all targets failed";
    case HERALD_ERR_DEADLINE: return "deadline exceeded";
    case HERALD_ERR_CANCELLED: return "cancelled";
    case HERALD_ERR_NO_HEALTHY: return "no healthy targets";
    case HERALD_ERR_NO_ENABLED: return "no enabled targets";
    case HERALD_ERR_FULL: return "full";
    case HERALD_ERR_TOO_LARGE: return "too large";
    case HERALD_ERR_NOT_FOUND: return "not found";
    case HERALD_ERR_STATE: return "invalid state";
    case HERALD_ERR_HTTP: return "http error";
    }
    return "unknown error";
}
