/*
 * plugins.c: the static array of target-type plugins (see plugins.h).
 * Read-only data; any thread.
 */
#include "publishers/plugins.h"

#include <string.h>

#include "publishers/pagerduty/pagerduty.h"
#include "publishers/rootly/rootly.h"
#include "publishers/slack/slack.h"
#include "publishers/webhook/webhook.h"

static const target_plugin *const plugins[] = {
    &webhook_plugin,
    &slack_plugin,
    &pagerduty_plugin,
    &rootly_plugin,
};

#define N_PLUGINS (sizeof(plugins) / sizeof(plugins[0]))

const target_plugin *plugins_find(const char *name)
{
    if (!name)
        return NULL;
    for (size_t i = 0; i < N_PLUGINS; i++)
        if (strcmp(plugins[i]->name, name) == 0)
            return plugins[i];
    return NULL;
}

size_t plugins_count(void)
{
    return N_PLUGINS;
}

const target_plugin *plugins_get(size_t i)
{
    return i < N_PLUGINS ? plugins[i] : NULL;
}
