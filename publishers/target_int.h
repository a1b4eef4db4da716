/*
 * target_int.h: helpers shared by the target-type plugins
 * (publishers/<type>/), implemented in target.c. Not part of the public
 * interface of the publishers module.
 *
 * Thread-safety: pure functions on caller-owned values; any thread.
 */
#ifndef HERALD_TARGET_INT_H
#define HERALD_TARGET_INT_H

#include <json-c/json.h>
#include <stddef.h>

#include "publishers/target.h"

/* A JSON object of the set's names and values (a new object, caller owns
 * it), or NULL when out of memory. */
json_object *target_kvs_json(const alert_kvs *kvs);

/* Serialises obj compactly into req->body (replacing it) and sets
 * Content-Type to content_type. Errors: HERALD_ERR_TOO_LARGE past the
 * body cap, HERALD_ERR_NOMEM. */
herald_err target_body_json(http_request *req, json_object *obj,
                            const char *content_type);

/* Sets req->url to base with suffix appended ("" for none), one '/' between
 * them. Errors: HERALD_ERR_NOMEM. */
herald_err target_request_set_url(http_request *req, const char *base,
                                  const char *suffix);

/* The longest prefix length <= max bytes of s that does not split a UTF-8
 * sequence. */
size_t target_utf8_cut(const char *s, size_t max);

/* A new JSON string of s cut to at most max bytes on a character boundary,
 * with "..." appended when cut (the result stays <= max bytes). */
json_object *target_json_string_cut(const char *s, size_t max);

#endif
