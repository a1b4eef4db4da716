/*
 * check_config.c: `herald check-config FILE [--route LABELS]`
 * (tools/check_config.h).
 *
 * Data flow: the option table -> targets_load() -> targets_print() on
 * stdout, or with --route: the labels (parsed as a list of `name="value"`
 * matchers) -> targets_route() on stdout. Threads: the calling thread only.
 */
#include "tools/check_config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/options.h"
#include "publishers/matchers.h"
#include "publishers/targets.h"

typedef struct check_config_settings {
    const char *route; /* Labels of an alert to route, or NULL. */
} check_config_settings;

/* The one option table of `herald check-config`. */
static const options_entry check_config_entries[] = {
    {.name = "route",
     .short_name = 'r',
     .type = OPTIONS_STRING,
     .offset = offsetof(check_config_settings, route),
     .arg = "LABELS",
     .help = "print which targets an alert with these labels goes\n"
             "to and why the others do not; exit 0 when one\n"
             "target or more takes it, 1 when none does.\n"
             "LABELS: 'instance=\"host12\", severity=\"critical\"'"},
};

static const options_spec check_config_spec = {
    .command = "herald check-config",
    .usage = "Usage: herald check-config FILE [--route LABELS]\n\n"
             "Validates targets.yaml and prints the effective targets with "
             "secrets\nmasked. Exits 1 with FILE:LINE:COL and the key on the "
             "first error.\n",
    OPTIONS_TABLE(check_config_entries),
    .max_args = 1,
};

/*
 * Turns the --route text into a label set: a matcher list whose matchers
 * all use "=". On success *ms (n of them) owns the strings labels borrows.
 */
static int route_labels(const char *text, target_matcher **ms, size_t *n,
                        alert_kv **items)
{
    char errstr[1024];

    *items = NULL;
    if (matchers_parse(text, ms, n, errstr, sizeof(errstr)) != HERALD_OK) {
        fprintf(stderr, "herald check-config: --route: %s\n", errstr);
        return 2;
    }
    *items = calloc(*n ? *n : 1, sizeof(**items));
    if (!*items) {
        fprintf(stderr, "herald check-config: out of memory\n");
        return 2;
    }
    for (size_t i = 0; i < *n; i++) {
        if ((*ms)[i].op != TARGET_MATCH_EQ) {
            fprintf(stderr,
                    "herald check-config: --route: %s%s...: labels are "
                    "given as name=\"value\"\n",
                    (*ms)[i].name, matcher_op_name((*ms)[i].op));
            return 2;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp((*ms)[j].name, (*ms)[i].name) == 0) {
                fprintf(stderr,
                        "herald check-config: --route: label %s is given "
                        "twice\n",
                        (*ms)[i].name);
                return 2;
            }
        }
        (*items)[i].name = (*ms)[i].name;
        (*items)[i].value = (*ms)[i].value;
    }
    return 0;
}

int check_config_main(int argc, char **argv)
{
    check_config_settings s = {0};
    options_state st;
    target_set *set = NULL;
    target_matcher *ms = NULL;
    size_t n = 0;
    alert_kv *items = NULL;
    char errstr[1024];
    int rc = options_cli(&check_config_spec, argc, argv, &s, &st);

    if (rc >= 0)
        goto out;
    rc = 2;
    if (st.argi >= argc) {
        options_help(&check_config_spec, &s, stderr);
        goto out;
    }
    if (s.route) {
        rc = route_labels(s.route, &ms, &n, &items);
        if (rc)
            goto out;
    }
    if (targets_load(argv[st.argi], &set, errstr, sizeof(errstr)) !=
        HERALD_OK) {
        fprintf(stderr, "%s\n", errstr);
        rc = 1;
        goto out;
    }
    if (s.route) {
        alert_kvs labels = {items, n};
        size_t taken = 0;

        rc = 2;
        if (targets_route(set, &labels, stdout, &taken) == HERALD_OK)
            rc = taken > 0 ? 0 : 1;
        goto out;
    }
    targets_print(set, stdout);
    rc = 0;
out:
    targets_release(set);
    free(items);
    matchers_free(ms, n);
    options_state_free(&st);
    return rc;
}
