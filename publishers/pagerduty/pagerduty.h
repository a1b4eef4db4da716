/*
 * pagerduty.h: the PagerDuty target: sends Events API v2 trigger and resolve
 * events with dedup_key = fingerprint.
 * The plugin is listed in publishers/plugins.c; see pagerduty.c for the
 * vendor documentation it follows. Read-only; any thread.
 */
#ifndef HERALD_PAGERDUTY_H
#define HERALD_PAGERDUTY_H

#include "publishers/target.h"

extern const target_plugin pagerduty_plugin;

#endif
