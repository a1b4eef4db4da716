/*
 * check_config.c: `herald check-config FILE` (tools/check_config.h).
 *
 * Data flow: the (empty) option table -> targets_load() -> targets_print()
 * on stdout. Threads: the calling thread only.
 */
#include "tools/check_config.h"

#include <stdio.h>

#include "core/options.h"
#include "publishers/targets.h"

typedef struct check_config_settings {
    int unused; /* The command has no flags besides --help. */
} check_config_settings;

static const options_spec check_config_spec = {
    .command = "herald check-config",
    .usage = "Usage: herald check-config FILE\n\n"
             "Validates targets.yaml and prints the effective targets with "
             "secrets\nmasked. Exits 1 with FILE:LINE:COL and the key on the "
             "first error.\n",
    .entries = NULL,
    .n_entries = 0,
    .max_args = 1,
};

int check_config_main(int argc, char **argv)
{
    check_config_settings s = {0};
    options_state st;
    target_set *set = NULL;
    char errstr[1024];
    int rc = options_cli(&check_config_spec, argc, argv, &s, &st);

    if (rc >= 0)
        goto out;
    rc = 2;
    if (st.argi >= argc) {
        options_help(&check_config_spec, &s, stderr);
        goto out;
    }
    if (targets_load(argv[st.argi], &set, errstr, sizeof(errstr)) !=
        HERALD_OK) {
        fprintf(stderr, "%s\n", errstr);
        rc = 1;
        goto out;
    }
    targets_print(set, stdout);
    targets_release(set);
    rc = 0;
out:
    options_state_free(&st);
    return rc;
}
