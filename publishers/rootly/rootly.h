/*
 * rootly.h: the Rootly target: creates and resolves Rootly alerts through
 * Rootly's JSON:API alerts endpoint, deduplicated by fingerprint.
 * The plugin is listed in publishers/plugins.c; see rootly.c for the
 * vendor documentation it follows. Read-only; any thread.
 */
#ifndef HERALD_ROOTLY_H
#define HERALD_ROOTLY_H

#include "publishers/target.h"

extern const target_plugin rootly_plugin;

#endif
