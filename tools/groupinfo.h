/*
 * groupinfo.h: `herald offsets`, the committed offsets and lag of a
 * consumer group on one topic.
 *
 *   herald offsets --brokers LIST --topic NAME --group ID [--json]
 *                  [--fail-on-lag] [-X prop=value]...
 *
 * Prints one row per partition: committed offset ("-" when the group has
 * none), low watermark, end offset (high watermark) and lag, then the
 * totals. With --json it prints one JSON object instead:
 *   {"topic":..., "group":..., "partitions":[{"partition":0,
 *    "committed":42 (or null), "low":0, "end":42, "lag":0}, ...],
 *    "total_end":..., "total_lag":..., "fully_committed":true}
 * where fully_committed says the committed offset of every partition equals
 * its end offset (a partition with no messages and no commit counts as
 * committed). The group is read with a temporary consumer handle that never
 * joins it (core/admin.h).
 *
 * Exit status: 0 done; 1 Kafka error or, with --fail-on-lag, a partition
 * with lag > 0; 2 usage error.
 *
 * Thread-safety: a command entry point; main thread, once at a time.
 */
#ifndef HERALD_GROUPINFO_H
#define HERALD_GROUPINFO_H

/*
 * Runs `herald offsets`. argv[0] is the command name ("offsets"). Every
 * flag has its environment variable (core/options.h: HERALD_BROKERS,
 * HERALD_TOPIC, HERALD_GROUP, ..., HERALD_KAFKA_*). Returns the exit
 * status above.
 */
int offsets_main(int argc, char **argv);

#endif
