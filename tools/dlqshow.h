/*
 * dlqshow.h: `herald dlq show`, printing the records of the dead-letter
 * topic.
 *
 *   herald dlq show --brokers LIST --dlq-topic NAME [--json]
 *       [-X prop=value]...
 *
 * Reads every partition of the dead-letter topic from its low watermark
 * up to the end offset seen at start (records written during the run are
 * left out) and prints each record. The consumer assigns the partitions
 * itself: it never joins a group and never commits, so it can run at any
 * time next to `herald run` and `herald dlq replay` without disturbing
 * them.
 *
 * Output with --json: one JSON object per line and record,
 *   {"partition": P, "offset": O, "key": "..."|null,
 *    "value": "..."|null, "headers": {"herald-reason": "...", ...}}
 * where key, value and header values are the bytes as JSON strings: valid
 * UTF-8 as is, every byte that is not part of valid UTF-8 as \u00XX (so
 * the byte value can be recovered), null for a null key or value. Without
 * --json: one line per record, "P:O reason=... target=... source=TOPIC/P/O
 * error=...". Then, on stderr, "dlq show TOPIC: N records". Exit status: 0
 * done, 1 a Kafka error, 2 usage error.
 *
 * Thread-safety: a command entry point; main thread, once at a time.
 */
#ifndef HERALD_DLQSHOW_H
#define HERALD_DLQSHOW_H

/*
 * Runs `herald dlq show`. argv[0] is the subcommand name ("show"): main
 * dispatches `herald dlq show ...` as dlqshow_main(argc - 2, argv + 2).
 * Every flag has its environment variable (core/options.h:
 * HERALD_BROKERS, HERALD_DLQ_TOPIC, HERALD_JSON, HERALD_KAFKA_*); the
 * dead-letter topic defaults to HERALD_TOPIC + ".dlq". Returns the exit
 * status above.
 */
int dlqshow_main(int argc, char **argv);

#endif
