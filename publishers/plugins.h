/*
 * plugins.h: the one list of target types (STYLE.md rule 2, Fluent Bit's
 * output plugin registry). Adding a type is one folder under publishers/
 * and one line in plugins.c.
 *
 * Thread-safety: the list is static and read-only; any thread.
 */
#ifndef HERALD_PLUGINS_H
#define HERALD_PLUGINS_H

#include <stddef.h>

#include "publishers/target.h"

/*
 * The plugin named name ("webhook", "slack", "pagerduty", "rootly"), or NULL
 * when there is none. The result is static: never freed. Any thread.
 */
const target_plugin *plugins_find(const char *name);

/* The number of plugins; plugins_get(i) for i < plugins_count(). */
size_t plugins_count(void);

/* The i-th plugin in registration order, or NULL past the end. Static. */
const target_plugin *plugins_get(size_t i);

#endif
