/*
 * webhook.h: the generic webhook target: POSTs the Alertmanager webhook v4 body
 * (or the raw alert) to the configured URL with an Idempotency-Key header.
 * The plugin is listed in publishers/plugins.c; see webhook.c for the
 * vendor documentation it follows. Read-only; any thread.
 */
#ifndef HERALD_WEBHOOK_H
#define HERALD_WEBHOOK_H

#include "publishers/target.h"

extern const target_plugin webhook_plugin;

#endif
