/*
 * replay.h: `herald dlq replay`, re-publishing dead-letter records.
 *
 *   herald dlq replay --brokers LIST --dlq-topic NAME --targets FILE
 *       [--group ID] [--target NAME] [--reason KIND]
 *       [--since TIME] [--until TIME] [--dry-run] [-X prop=value]...
 *
 * Reads the dead-letter topic (format in worker/dlq.h) from the group's
 * committed position (the beginning when it has none) up to the end
 * offsets seen at start; records written during the run wait for the next
 * run. For each record that passes the filters, the original value is
 * parsed as a job message and every alert of it is re-published through
 * the ParallelPublisher (publishers/parallel.h) to the target named in its
 * herald-target header (publish_to_multiple; the target must exist in
 * FILE), or, when the record has no target (a poison or whole-job record),
 * to every enabled, matching target of FILE (publish_to_all), which must
 * all deliver. Then the record's offset is committed for the group, so the
 * same group never replays it twice.
 *
 * Filters: --target NAME (the herald-target header), --reason KIND (the
 * herald-reason header), --since/--until TIME (RFC 3339, e.g.
 * 2024-05-01T12:00:00Z, or milliseconds since the epoch) applied to the
 * herald-dlq-time-ms header (the record's Kafka timestamp when absent);
 * --since is inclusive, --until exclusive. A record that does not pass
 * is skipped and its offset committed too: the group's position is a
 * cursor over the topic, so use another --group to scan it again with
 * other filters. A record whose value cannot be parsed as alerts (most
 * poison records) cannot be replayed: it is reported, counted as
 * "unreplayable" and committed.
 *
 * Failure: a record that fails again stops the run with exit status 1
 * without committing it, so the next run retries from that record (the
 * targets that delivered in the failed attempt may then receive it twice:
 * at-least-once). --dry-run prints what would be replayed and commits
 * nothing.
 *
 * The replay consumer assigns the partitions itself and does not join the
 * group (run one replay per group at a time).
 *
 * Output: one line per record on stdout, then a summary
 * "replay of TOPIC by group G: read N, replayed R, delivered D, failed F,
 * skipped by filter S, unreplayable U".
 * Exit status: 0 done, 1 a record failed or a Kafka error, 2 usage or
 * configuration error.
 *
 * Thread-safety: a command entry point; main thread, once at a time.
 */
#ifndef HERALD_REPLAY_H
#define HERALD_REPLAY_H

#include <stdint.h>

#include "core/err.h"

/*
 * Runs `herald dlq replay`. argv[0] is the subcommand name ("replay"):
 * main dispatches `herald dlq replay ...` as replay_main(argc - 2,
 * argv + 2). Every flag has its environment variable (core/options.h:
 * HERALD_BROKERS, HERALD_TARGETS, HERALD_DLQ_TOPIC, ..., HERALD_KAFKA_*),
 * except --group, which reads HERALD_REPLAY_GROUP: HERALD_GROUP names the
 * group of `herald run`. The dead-letter topic defaults to HERALD_TOPIC +
 * ".dlq". Returns the exit status above.
 */
int replay_main(int argc, char **argv);

/*
 * Parses an RFC 3339 date-time ("2024-05-01T12:00:00Z",
 * "2024-05-01T14:00:00.250+02:00") or a plain integer of milliseconds
 * since the epoch into *ms (milliseconds since the epoch, UTC).
 * Errors: HERALD_ERR_PARSE. Pure, any thread.
 */
herald_err replay_time_parse(const char *text, int64_t *ms);

#endif
