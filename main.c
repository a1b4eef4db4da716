/*
 * main.c: the herald command line, a thin dispatcher.
 *
 * main() first blocks the signals herald handles, before any thread
 * exists, and starts the signal thread (core/signals.h); then it sets up
 * libcurl's global state once and runs the subcommand named by argv[1]
 * (argv[1] and argv[2] for `dlq show`/`dlq replay`) from the table below.
 * Each subcommand parses its own flags with its option table
 * (core/options.h). The main thread becomes the consumer thread of `run`.
 *
 * This is the only file that includes both worker/ and tools/.
 */
#include <curl/curl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/metrics.h"
#include "core/signals.h"
#include "tools/check_config.h"
#include "tools/dlqshow.h"
#include "tools/groupinfo.h"
#include "tools/produce.h"
#include "tools/replay.h"
#include "worker/worker.h"

/* One subcommand: its name (one or two words), entry point, summary. */
typedef struct main_command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary;
} main_command;

static int main_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("herald %s\n", HERALD_VERSION);
    return 0;
}

static const main_command main_commands[] = {
    {"run", worker_cli_main,
     "consume a topic in a consumer group and publish every\n"
     "alert to its targets; commit after the outcome"},
    {"produce", produce_main,
     "produce JSON alerts (a file or stdin) to a topic"},
    {"offsets", offsets_main,
     "show a group's committed offsets, end offsets and lag"},
    {"dlq replay", replay_main, "re-publish records of the dead-letter topic"},
    {"dlq show", dlqshow_main,
     "print the records of the dead-letter topic (no commit)"},
    {"check-config", check_config_main,
     "validate targets.yaml (FILE) and print the effective\n"
     "targets (secrets masked)"},
    {"version", main_version, "print the version"},
};

#define MAIN_N_COMMANDS (sizeof main_commands / sizeof *main_commands)

/* Prints the commands whose name starts with prefix ("" for all). */
static void main_list(FILE *out, const char *prefix)
{
    for (size_t i = 0; i < MAIN_N_COMMANDS; i++) {
        const char *s = main_commands[i].summary;

        if (strncmp(main_commands[i].name, prefix, strlen(prefix)) != 0)
            continue;
        fprintf(out, "  %-15s", main_commands[i].name);
        while (*s) {
            size_t len = strcspn(s, "\n");

            fprintf(out, "%.*s\n", (int)len, s);
            s += len;
            if (*s == '\n' && *++s)
                fprintf(out, "  %-15s", "");
        }
    }
}

static void main_usage(FILE *out)
{
    fprintf(out,
            "herald %s: delivers Alertmanager alerts from Kafka to the "
            "people on call.\n\n"
            "Usage: herald COMMAND [OPTIONS]\n\nCommands:\n",
            HERALD_VERSION);
    main_list(out, "");
    fprintf(out, "\n`herald COMMAND --help` explains the options of a "
                 "command.\n");
}

/* The entry of argv[1] (and argv[2]); *words is how many it takes. */
static const main_command *main_find(int argc, char **argv, int *words)
{
    for (size_t i = 0; i < MAIN_N_COMMANDS; i++) {
        const char *name = main_commands[i].name;
        const char *space = strchr(name, ' ');
        size_t len = space ? (size_t)(space - name) : strlen(name);

        if (strncmp(argv[1], name, len) != 0 || argv[1][len])
            continue;
        if (!space) {
            *words = 1;
            return &main_commands[i];
        }
        if (argc > 2 && strcmp(argv[2], space + 1) == 0) {
            *words = 2;
            return &main_commands[i];
        }
    }
    return NULL;
}

/* `herald dlq` without a known subcommand. */
static int main_group_usage(int argc, char **argv)
{
    bool help = argc > 2 &&
                (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0);
    FILE *out = help ? stdout : stderr;
    char prefix[64];

    snprintf(prefix, sizeof prefix, "%s ", argv[1]);
    fprintf(out, "Usage: herald %s COMMAND [OPTIONS]\n\n", argv[1]);
    main_list(out, prefix);
    fprintf(out, "\n`herald %s COMMAND --help` lists the options.\n", argv[1]);
    return help ? 0 : 2;
}

/* True when some command's first word is name ("dlq"). */
static bool main_is_group(const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < MAIN_N_COMMANDS; i++)
        if (strncmp(main_commands[i].name, name, len) == 0 &&
            main_commands[i].name[len] == ' ')
            return true;
    return false;
}

int main(int argc, char **argv)
{
    const main_command *cmd;
    int words = 0;
    int rc;

    /* First, before any thread exists: every thread inherits the mask. */
    if (signals_block() != HERALD_OK || signals_start() != HERALD_OK) {
        fprintf(stderr, "herald: cannot set up signal handling\n");
        return 1;
    }
    if (argc < 2) {
        main_usage(stderr);
        rc = 2;
        goto out;
    }
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        main_usage(stdout);
        rc = 0;
        goto out;
    }
    if (strcmp(argv[1], "--version") == 0) {
        rc = main_version(argc, argv);
        goto out;
    }
    cmd = main_find(argc, argv, &words);
    if (!cmd) {
        if (main_is_group(argv[1])) {
            rc = main_group_usage(argc, argv);
        } else {
            fprintf(stderr, "herald: unknown command \"%s\"\n\n", argv[1]);
            main_usage(stderr);
            rc = 2;
        }
        goto out;
    }
    /* libcurl's global state is set up once, before any worker thread. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "herald: libcurl initialisation failed\n");
        rc = 1;
        goto out;
    }
    rc = cmd->main(argc - words, argv + words);
    metrics_shutdown();
    curl_global_cleanup();
out:
    signals_stop();
    return rc;
}
