/*
 * targets_int.h: what the files of the targets.yaml module share (private;
 * include only from publishers/targets*.c).
 *
 *   targets.c         the immutable target set (refcounted)
 *   targets_registry.c the current set and its reload
 *   targets_schema.c  the schema tables of the generic keys
 *   targets_load.c    the YAML loader: file:line:col errors, ${ENV}
 *   targets_print.c   the masked JSON/YAML view (check-config, GET
 *                     /targets) and the Markdown schema (docs/TARGETS.md)
 */
#ifndef HERALD_TARGETS_INT_H
#define HERALD_TARGETS_INT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "publishers/targets.h"

typedef enum gkey_type {
    G_STRING = 0, /* char * */
    G_SECRET,     /* char *, always masked */
    G_URL,        /* char *, http or https URL checked with curl_url() */
    G_INT,        /* int within [min, max] */
    G_BOOL,       /* bool */
    G_DOUBLE,     /* double within [min, max] */
    G_ENUM,       /* char *, one of allowed */
    G_AUTH_KIND,  /* target_auth_kind, one of auth_kinds */
    G_SECTION,    /* nested mapping described by section */
    G_HEADERS,    /* mapping of header name to value */
    G_MATCHERS    /* list of matcher strings */
} gkey_type;

/* One generic key of a target. Offsets are into struct target. */
typedef struct gkey {
    const char *key;
    gkey_type type;
    const char *def; /* Built-in default as text, or NULL. */
    size_t offset;
    const char *help;
    const char *const *allowed; /* G_ENUM, G_AUTH_KIND */
    double min, max;            /* G_INT, G_DOUBLE */
    const struct gkey *section; /* G_SECTION, terminated by {NULL} */
} gkey;

/* Largest int bound of the tables, as a double. */
#define INT_MAXV 2147483647.0

/* The generic keys of a target, terminated by {NULL}. Read-only. */
extern const gkey targets_gen_keys[];

/* The keys of the auth: section. Read-only. */
extern const gkey targets_auth_keys[];

/* The words of target_auth_kind, indexed by it, NULL-terminated. */
extern const char *const targets_auth_kinds[];

/* Per-target facts kept beside the target: where it is and which fields
 * came from the environment (those are masked like secrets). */
typedef struct tmeta {
    const void **env_fields; /* Addresses of fields set from ${ENV}. */
    size_t n_env;
    size_t cap_env;
    int line;
    int col;
} tmeta;

struct target_set {
    atomic_int refs;
    char *source;
    target **items;
    tmeta *meta;
    size_t n;
};

/* True when field (an address inside a target) was set from ${ENV}, so it
 * is printed masked. m may be NULL. Pure; any thread. */
bool targets_meta_is_env(const tmeta *m, const void *field);

/* Free the string fields of keys (recursively through sections), the
 * headers, or the matchers of tgt, and leave them empty. */
void targets_free_gen_fields(target *tgt, const gkey *keys);
void targets_headers_free(target *tgt);
void targets_matchers_free(target *tgt);

/* Frees a target and everything it owns; NULL is a no-op. */
void targets_target_destroy(target *tgt);

/* Frees a set whose last reference is gone (or a half-built set); NULL is
 * a no-op. */
void targets_set_free(target_set *set);

#endif
