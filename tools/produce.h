/*
 * produce.h: `herald produce`, a small producer of alert messages for
 * demos, tests and operators (kcat-like flags).
 *
 *   herald produce --brokers LIST --topic NAME [options] [FILE|-]
 *
 * Input (FILE, or stdin when FILE is absent or "-"):
 *   - one whole JSON document, when the entire input parses as a single
 *     JSON object (an Alertmanager webhook payload, or one alert); or
 *   - JSON lines: one alert or payload per line; blank lines are skipped.
 * Every record is validated with alert_batch_parse(); an invalid one is
 * reported on stderr as "FILE:LINE: error (reason)" and skipped, unless
 * --allow-invalid is given (then it is produced as is, without a key: how
 * the poison tests feed bad messages). With --null-values a line that is
 * exactly `null` is produced as a Kafka null value (a tombstone).
 *
 * Payload splitting (default on, --no-split turns it off): an Alertmanager
 * payload with more than one alert becomes one message per alert, each a
 * version "4" payload holding that one alert, with the payload's receiver,
 * groupKey, groupLabels and externalURL, status = the alert's status, and
 * commonLabels/commonAnnotations = the alert's own labels/annotations (as
 * Alertmanager would send for a group of one). Splitting is the default
 * because the message key is then the alert's fingerprint, so every
 * message of one alert lands on one partition and stays in order (the
 * ordering contract of ARCHITECTURE.md). Without splitting a payload is
 * one message keyed by its first alert's fingerprint (or its groupKey with
 * --key-from group).
 *
 * Key (--key-from): "fingerprint" (default; computed as Prometheus does
 * when the alert has none), "group" (the payload's groupKey, falling back
 * to the fingerprint), "none" (no key: partitioner's choice).
 *
 * Producer settings: enable.idempotence=true, acks=all, linger.ms=5, then
 * the -X properties. The command waits for every delivery report.
 *
 * Exit status: 0 every record delivered; 1 a delivery or Kafka error; 2 a
 * usage or input (read) error; 3 all valid records delivered but invalid
 * ones were skipped. A summary "produced N messages to TOPIC (M invalid
 * skipped)" goes to stdout.
 *
 * Thread-safety: a command entry point; call from the main thread, once
 * at a time (it uses getopt).
 */
#ifndef HERALD_PRODUCE_H
#define HERALD_PRODUCE_H

/*
 * Runs `herald produce`. argv[0] is the command name ("produce"), the
 * flags follow; every flag has its environment variable (core/options.h:
 * HERALD_BROKERS, HERALD_TOPIC, ..., HERALD_KAFKA_*; not -H). Returns the
 * exit status documented above. Calls log_init() with the --log-level
 * (default "warn").
 */
int produce_main(int argc, char **argv);

#endif
