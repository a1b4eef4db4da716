/*
 * targets.c: the immutable target set (see targets.h): lookups, reference
 * counting, and freeing a set and its targets.
 *
 * Data flow: targets_load() (targets_load.c) builds a set; the set is
 * handed out by reference (targets_acquire/release) and freed when its
 * last holder releases it; the registry (targets_registry.c) swaps sets on
 * reload.
 *
 * Threads: a loaded set is immutable, so any thread may read it while it
 * holds a reference; the reference count is atomic.
 */
#include "publishers/targets.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/matchers.h"
#include "publishers/plugins.h"
#include "publishers/targets_int.h"

bool targets_meta_is_env(const tmeta *m, const void *field)
{
    for (size_t i = 0; m && i < m->n_env; i++)
        if (m->env_fields[i] == field)
            return true;
    return false;
}

void targets_free_gen_fields(target *tgt, const gkey *keys)
{
    for (const gkey *k = keys; k->key; k++) {
        char **sp = (char **)((char *)tgt + k->offset);

        switch (k->type) {
        case G_STRING:
        case G_SECRET:
        case G_URL:
        case G_ENUM:
            if (strcmp(k->key, "type") != 0 || keys != targets_gen_keys) {
                free(*sp);
                *sp = NULL;
            }
            break;
        case G_SECTION: targets_free_gen_fields(tgt, k->section); break;
        default: break;
        }
    }
}

static void type_config_free(target *tgt)
{
    const target_plugin *p = tgt->plugin;

    if (!tgt->type_config)
        return;
    if (p && p->config_free)
        p->config_free(tgt->type_config);
    for (const target_key *k = p ? p->keys : NULL; k && k->key; k++) {
        char *base = (char *)tgt->type_config + k->offset;

        switch (k->type) {
        case TARGET_KEY_STRING:
        case TARGET_KEY_SECRET:
        case TARGET_KEY_ENUM:
            free(*(char **)base);
            *(char **)base = NULL;
            break;
        case TARGET_KEY_MAP: alert_kvs_free((alert_kvs *)base); break;
        default: break;
        }
    }
    free(tgt->type_config);
    tgt->type_config = NULL;
}

void targets_headers_free(target *tgt)
{
    for (size_t i = 0; i < tgt->n_headers; i++) {
        free(tgt->headers[i].name);
        free(tgt->headers[i].value);
    }
    free(tgt->headers);
    tgt->headers = NULL;
    tgt->n_headers = 0;
}

void targets_matchers_free(target *tgt)
{
    for (size_t i = 0; i < tgt->n_matchers; i++)
        matcher_free(&tgt->matchers[i]);
    free(tgt->matchers);
    tgt->matchers = NULL;
    tgt->n_matchers = 0;
}

void targets_target_destroy(target *tgt)
{
    if (!tgt)
        return;
    type_config_free(tgt);
    targets_free_gen_fields(tgt, targets_gen_keys);
    targets_headers_free(tgt);
    targets_matchers_free(tgt);
    free(tgt->source_file);
    free(tgt);
}

void targets_set_free(target_set *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->n; i++) {
        targets_target_destroy(set->items[i]);
        free(set->meta[i].env_fields);
    }
    free(set->items);
    free(set->meta);
    free(set->source);
    free(set);
}

size_t targets_count(const target_set *set)
{
    return set ? set->n : 0;
}

target *const *targets_list(const target_set *set)
{
    return set ? set->items : NULL;
}

target *targets_find(const target_set *set, const char *name)
{
    for (size_t i = 0; set && name && i < set->n; i++)
        if (strcmp(set->items[i]->name, name) == 0)
            return set->items[i];
    return NULL;
}

const char *targets_source(const target_set *set)
{
    return set ? set->source : NULL;
}

target_set *targets_acquire(target_set *set)
{
    if (set)
        atomic_fetch_add_explicit(&set->refs, 1, memory_order_relaxed);
    return set;
}

void targets_release(target_set *set)
{
    if (!set)
        return;
    if (atomic_fetch_sub_explicit(&set->refs, 1, memory_order_acq_rel) == 1)
        targets_set_free(set);
}
