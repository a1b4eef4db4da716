/*
 * targets.c: the immutable target set and the hot-reload registry (see
 * targets.h).
 *
 * Data flow: targets_load() (targets_load.c) builds a set from the file;
 * the set is handed out by reference (targets_acquire/release); a reload
 * builds a new set and swaps the pointer in the registry, and the old set
 * is freed when its last holder releases it.
 *
 * Threads: a loaded set is immutable, so any thread may read it while it
 * holds a reference. The registry's mutex guards only its current
 * pointer; a second mutex serialises reloads.
 */
#include "publishers/targets.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

/* ------------------------------------------------------------------ */
/* Registry                                                            */
/* ------------------------------------------------------------------ */

struct targets_registry {
    pthread_mutex_t lock;        /* Guards cur. */
    pthread_mutex_t reload_lock; /* Serialises reloads. */
    target_set *cur;
};

targets_registry *targets_registry_new(target_set *initial)
{
    targets_registry *reg = calloc(1, sizeof(*reg));

    if (!reg)
        return NULL;
    pthread_mutex_init(&reg->lock, NULL);
    pthread_mutex_init(&reg->reload_lock, NULL);
    reg->cur = initial;
    return reg;
}

void targets_registry_destroy(targets_registry *reg)
{
    if (!reg)
        return;
    targets_release(reg->cur);
    pthread_mutex_destroy(&reg->lock);
    pthread_mutex_destroy(&reg->reload_lock);
    free(reg);
}

target_set *targets_registry_current(targets_registry *reg)
{
    target_set *set;

    pthread_mutex_lock(&reg->lock);
    set = targets_acquire(reg->cur);
    pthread_mutex_unlock(&reg->lock);
    return set;
}

void targets_registry_swap(targets_registry *reg, target_set *set)
{
    target_set *old;

    pthread_mutex_lock(&reg->lock);
    old = reg->cur;
    reg->cur = set;
    pthread_mutex_unlock(&reg->lock);
    /* The last reference may free a big set: never under the lock. */
    targets_release(old);
}

herald_err targets_registry_reload(targets_registry *reg, const char *path,
                                   char *errstr, size_t errstr_size)
{
    target_set *set = NULL;
    herald_err err;

    pthread_mutex_lock(&reg->reload_lock);
    err = targets_load(path, &set, errstr, errstr_size);
    if (!err)
        targets_registry_swap(reg, set);
    pthread_mutex_unlock(&reg->reload_lock);
    return err;
}

bool targets_file_changed(const char *path, struct timespec *last_mtime)
{
    struct stat st;

    if (stat(path, &st) != 0)
        return false;
    if (st.st_mtim.tv_sec == last_mtime->tv_sec &&
        st.st_mtim.tv_nsec == last_mtime->tv_nsec)
        return false;
    *last_mtime = st.st_mtim;
    return true;
}
