/*
 * targets_registry.c: the hot-reload registry of targets (see targets.h).
 *
 * Data flow: the registry holds the current target set. A reader takes a
 * reference to it (targets_registry_current) and keeps it for as long as
 * it works with it; a reload loads a new set (targets_load.c) and swaps
 * the pointer, and the old set is freed when its last holder releases it.
 *
 * Threads: any thread. One mutex guards only the current pointer; a second
 * serialises reloads, so two reloads never race on the file.
 */
#include "publishers/targets.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>

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
