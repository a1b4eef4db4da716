/*
 * slack.h: the Slack target: posts a message to a Slack incoming webhook.
 * The plugin is listed in publishers/plugins.c; see slack.c for the
 * vendor documentation it follows. Read-only; any thread.
 */
#ifndef HERALD_SLACK_H
#define HERALD_SLACK_H

#include "publishers/target.h"

extern const target_plugin slack_plugin;

#endif
