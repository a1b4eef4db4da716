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

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/admin.h"
#include "core/log.h"
#include "core/options.h"

/* Whole-command timeout, ms. */
#define OFFSETS_TIMEOUT_MS 30000

/* What the option table fills. */
typedef struct offsets_settings {
    const char *brokers;
    const char *topic;
    const char *group;
    options_list props; /* -X and HERALD_KAFKA_*. */
    bool json;
    bool fail_on_lag;
    int level; /* log_level. */
} offsets_settings;

#define OFFSETS_FIELD(f) offsetof(offsets_settings, f)

/* The one option table of `herald offsets`. */
static const options_entry offsets_entries[] = {
    OPTIONS_ENTRY_BROKERS(offsets_settings, brokers),
    {.name = "topic",
     .short_name = 't',
     .type = OPTIONS_STRING,
     .offset = OFFSETS_FIELD(topic),
     .flags = OPTIONS_REQUIRED,
     .arg = "NAME",
     .help = "topic"},
    {.name = "group",
     .short_name = 'g',
     .type = OPTIONS_STRING,
     .offset = OFFSETS_FIELD(group),
     .flags = OPTIONS_REQUIRED,
     .arg = "ID",
     .help = "consumer group"},
    OPTIONS_ENTRY_PROPERTY(offsets_settings, props),
    {.name = "json",
     .type = OPTIONS_BOOL,
     .offset = OFFSETS_FIELD(json),
     .help = "one JSON object instead of a table"},
    {.name = "fail-on-lag",
     .type = OPTIONS_BOOL,
     .offset = OFFSETS_FIELD(fail_on_lag),
     .help = "exit 1 when any partition has lag"},
    OPTIONS_ENTRY_LOG_LEVEL(offsets_settings, level, 0),
};

static const options_spec offsets_spec = {
    .command = "herald offsets",
    .usage = "Usage: herald offsets --brokers LIST --topic NAME --group ID\n"
             "                      [--json] [--fail-on-lag] "
             "[-X prop=value]...\n"
             "\n"
             "Prints the committed offset, end offset and lag of a consumer "
             "group\n"
             "for every partition of a topic, and the totals. Does not join "
             "the\n"
             "group.\n",
    OPTIONS_TABLE(offsets_entries),
    .max_args = 0,
};

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
    offsets_settings set = {.level = LOG_LEVEL_WARN};
    options_state st;
    admin_partition_offsets *offs = NULL;
    size_t n = 0;
    int64_t total_end = 0;
    int64_t total_lag = 0;
    bool fully = true;
    char errstr[512];
    herald_err err;
    const char *topic;
    const char *group;
    int status = options_cli(&offsets_spec, argc, argv, &set, &st);

    if (status >= 0)
        goto out;
    topic = set.topic;
    group = set.group;
    log_init((log_level)set.level, LOG_FORMAT_AUTO);
    err = admin_group_offsets(set.brokers, (const char **)set.props.items,
                              set.props.n, group, topic, &offs, &n,
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
    if (set.json) {
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
    status = set.fail_on_lag && total_lag > 0 ? 1 : 0;
out:
    fflush(stdout);
    free(offs);
    options_list_free(&set.props);
    options_state_free(&st);
    return status;
}
