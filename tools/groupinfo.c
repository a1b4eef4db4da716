/*
 * groupinfo.c: `herald offsets` (see groupinfo.h).
 *
 * Data flow: flags -> admin_group_offsets() (a temporary consumer handle:
 * metadata, OffsetFetch, ListOffsets) -> a table or one JSON object on
 * stdout.
 *
 * Threads: the calling thread only.
 */
#include "tools/groupinfo.h"

#include <getopt.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"
#include "core/log.h"

/* Whole-command timeout, ms. */
#define OFFSETS_TIMEOUT_MS 30000

static void offsets_usage(FILE *out)
{
    fprintf(
        out,
        "usage: herald offsets --brokers LIST --topic NAME --group ID\n"
        "                      [--json] [--fail-on-lag] [-X prop=value]...\n"
        "\n"
        "Prints the committed offset, end offset and lag of a consumer group\n"
        "for every partition of a topic, and the totals. Does not join the\n"
        "group.\n"
        "\n"
        "options:\n"
        "  -b, --brokers LIST        bootstrap brokers (env HERALD_BROKERS)\n"
        "  -t, --topic NAME          topic (env HERALD_TOPIC)\n"
        "  -g, --group ID            consumer group (env HERALD_GROUP)\n"
        "  -X, --property KEY=VALUE  librdkafka property, repeatable\n"
        "      --json                one JSON object instead of a table\n"
        "      --fail-on-lag         exit 1 when any partition has lag\n"
        "      --log-level LEVEL     debug, info, warn (default), error, off\n"
        "  -h, --help                show this help\n");
}

static void offsets_print_json(const char *topic, const char *group,
                               const admin_partition_offsets *offs, size_t n,
                               int64_t total_end, int64_t total_lag, bool fully)
{
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();

    json_object_object_add(root, "topic", json_object_new_string(topic));
    json_object_object_add(root, "group", json_object_new_string(group));
    for (size_t i = 0; i < n; i++) {
        json_object *p = json_object_new_object();

        json_object_object_add(p, "partition",
                               json_object_new_int(offs[i].partition));
        json_object_object_add(p, "committed",
                               offs[i].committed >= 0
                                   ? json_object_new_int64(offs[i].committed)
                                   : NULL);
        json_object_object_add(p, "low", json_object_new_int64(offs[i].low));
        json_object_object_add(p, "end", json_object_new_int64(offs[i].high));
        json_object_object_add(p, "lag", json_object_new_int64(offs[i].lag));
        json_object_array_add(arr, p);
    }
    json_object_object_add(root, "partitions", arr);
    json_object_object_add(root, "total_end", json_object_new_int64(total_end));
    json_object_object_add(root, "total_lag", json_object_new_int64(total_lag));
    json_object_object_add(root, "fully_committed",
                           json_object_new_boolean(fully));
    printf("%s\n",
           json_object_to_json_string_ext(
               root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
    json_object_put(root);
}

int offsets_main(int argc, char **argv)
{
    enum { OPT_JSON = 256, OPT_FAIL_ON_LAG, OPT_LOG_LEVEL };
    static const struct option longopts[] = {
        {"brokers", required_argument, NULL, 'b'},
        {"topic", required_argument, NULL, 't'},
        {"group", required_argument, NULL, 'g'},
        {"property", required_argument, NULL, 'X'},
        {"json", no_argument, NULL, OPT_JSON},
        {"fail-on-lag", no_argument, NULL, OPT_FAIL_ON_LAG},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    const char *brokers = getenv("HERALD_BROKERS");
    const char *topic = getenv("HERALD_TOPIC");
    const char *group = getenv("HERALD_GROUP");
    const char **props = calloc((size_t)argc + 1, sizeof *props);
    size_t n_props = 0;
    bool as_json = false;
    bool fail_on_lag = false;
    log_level level = LOG_LEVEL_WARN;
    admin_partition_offsets *offs = NULL;
    size_t n = 0;
    int64_t total_end = 0;
    int64_t total_lag = 0;
    bool fully = true;
    char errstr[512];
    herald_err err;
    int status = 2;
    int c;

    if (!props) {
        fprintf(stderr, "herald offsets: out of memory\n");
        return 2;
    }
    optind = 0; /* Full getopt re-initialisation (GNU). */
    while ((c = getopt_long(argc, argv, "b:t:g:X:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'b': brokers = optarg; break;
        case 't': topic = optarg; break;
        case 'g': group = optarg; break;
        case 'X': props[n_props++] = optarg; break;
        case OPT_JSON: as_json = true; break;
        case OPT_FAIL_ON_LAG: fail_on_lag = true; break;
        case OPT_LOG_LEVEL:
            if (log_level_parse(optarg, &level) != 0) {
                fprintf(stderr,
                        "herald offsets: --log-level %s: unknown "
                        "level\n",
                        optarg);
                goto out;
            }
            break;
        case 'h':
            offsets_usage(stdout);
            status = 0;
            goto out;
        default: offsets_usage(stderr); goto out;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "herald offsets: unexpected argument %s\n",
                argv[optind]);
        goto out;
    }
    if (!brokers || !*brokers || !topic || !*topic || !group || !*group) {
        fprintf(stderr, "herald offsets: --brokers, --topic and --group are "
                        "required\n");
        goto out;
    }
    log_init(level, LOG_FORMAT_AUTO);
    err = admin_group_offsets(brokers, props, n_props, group, topic, &offs, &n,
                              OFFSETS_TIMEOUT_MS, errstr, sizeof errstr);
    if (err != HERALD_OK) {
        fprintf(stderr, "herald offsets: %s\n", errstr);
        status = err == HERALD_ERR_INVALID ? 2 : 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        total_end += offs[i].high;
        total_lag += offs[i].lag;
        if (offs[i].committed != offs[i].high &&
            !(offs[i].committed < 0 && offs[i].high == offs[i].low))
            fully = false;
    }
    if (as_json) {
        offsets_print_json(topic, group, offs, n, total_end, total_lag, fully);
    } else {
        printf("topic %s, group %s\n", topic, group);
        printf("%9s %12s %12s %12s %10s\n", "partition", "committed", "low",
               "end", "lag");
        for (size_t i = 0; i < n; i++) {
            char committed[24] = "-";

            if (offs[i].committed >= 0)
                snprintf(committed, sizeof committed, "%lld",
                         (long long)offs[i].committed);
            printf("%9d %12s %12lld %12lld %10lld\n", (int)offs[i].partition,
                   committed, (long long)offs[i].low, (long long)offs[i].high,
                   (long long)offs[i].lag);
        }
        printf("%9s %12s %12s %12lld %10lld\n", "total", "", "",
               (long long)total_end, (long long)total_lag);
        printf("fully committed: %s\n", fully ? "yes" : "no");
    }
    status = fail_on_lag && total_lag > 0 ? 1 : 0;
out:
    fflush(stdout);
    free(offs);
    free(props);
    return status;
}
