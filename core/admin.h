/*
 * admin.h: short-lived Kafka administration helpers of herald: create a
 * topic, count a topic's partitions, read a consumer group's committed
 * offsets and lag, and build a librdkafka configuration from herald's
 * defaults plus the user's -X properties.
 *
 * Every call that talks to the cluster creates its own temporary
 * rd_kafka_t, uses it on the calling thread only and destroys it before
 * returning, so these functions never touch another module's handle
 * (STYLE.md 14). They are meant for command-line tools (`herald produce
 * --create-topic`, `herald offsets`, `herald dlq replay`) and start-up
 * checks, not for the per-message path.
 *
 * Thread-safety: every function may be called from any thread; concurrent
 * calls share nothing.
 *
 * librdkafka references: rd_kafka_CreateTopics() (Admin API, rdkafka.h),
 * rd_kafka_metadata(), rd_kafka_committed() and
 * rd_kafka_query_watermark_offsets(); property names in librdkafka's
 * CONFIGURATION.md.
 */
#ifndef HERALD_ADMIN_H
#define HERALD_ADMIN_H

#include <librdkafka/rdkafka.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/*
 * Builds a librdkafka configuration: bootstrap.servers = brokers (when not
 * NULL), then the n_defaults "key=value" strings of defaults (herald's
 * defaults for this handle), then the n_props "key=value" strings of props
 * (the user's -X flags, applied last so they win). Also installs a log
 * callback that forwards librdkafka's log lines to core/log (component
 * "rdkafka"). Either array may be NULL when its count is 0; strings are
 * borrowed for the call.
 * Returns a new configuration (caller owns it: pass it to rd_kafka_new(),
 * which takes it on success, or free it with rd_kafka_conf_destroy()), or
 * NULL with errstr naming the property ("-X foo=1: No such configuration
 * property") for a string without '=', an unknown property or an invalid
 * value. Any thread.
 */
rd_kafka_conf_t *admin_conf_new(const char *brokers,
                                const char *const *defaults, size_t n_defaults,
                                const char *const *props, size_t n_props,
                                char *errstr, size_t errstr_size);

/*
 * Creates topic with partitions partitions (>= 1) and replication_factor
 * replicas (-1 for the broker's default.replication.factor, Kafka >= 2.4)
 * and the n_configs "key=value" topic configs of configs (for example
 * "max.message.bytes=2097152"; NULL when n_configs is 0) through the Admin
 * API, waiting up to timeout_ms (milliseconds, > 0) for
 * the broker to finish. A topic that already exists is success (its
 * partition count is not changed; see admin_partition_count()). props as
 * in admin_conf_new(). Any thread.
 * Errors: HERALD_ERR_INVALID (bad arguments or properties),
 * HERALD_ERR_KAFKA (the broker refused; errstr has its message),
 * HERALD_ERR_TIMEOUT.
 */
herald_err admin_create_topic(const char *brokers, const char *const *props,
                              size_t n_props, const char *topic, int partitions,
                              int replication_factor,
                              const char *const *configs, size_t n_configs,
                              int timeout_ms, char *errstr, size_t errstr_size);

/*
 * Reads the value of topic config name (for example "max.message.bytes")
 * of topic through the Admin API (DescribeConfigs) into value (value_size
 * bytes, NUL-terminated, truncated if longer), waiting up to timeout_ms
 * (milliseconds, > 0). props as in admin_conf_new(). Any thread.
 * Errors: HERALD_ERR_INVALID, HERALD_ERR_NOT_FOUND (no such topic or
 * config), HERALD_ERR_KAFKA, HERALD_ERR_TIMEOUT, HERALD_ERR_NOMEM.
 */
herald_err admin_topic_config(const char *brokers, const char *const *props,
                              size_t n_props, const char *topic,
                              const char *name, char *value, size_t value_size,
                              int timeout_ms, char *errstr, size_t errstr_size);

/*
 * Sets *count to the number of partitions of topic, from a metadata
 * request for all topics (so it never triggers broker-side automatic topic
 * creation). timeout_ms in milliseconds. Any thread.
 * Errors: HERALD_ERR_NOT_FOUND (no such topic), HERALD_ERR_INVALID,
 * HERALD_ERR_KAFKA, HERALD_ERR_TIMEOUT.
 */
herald_err admin_partition_count(const char *brokers, const char *const *props,
                                 size_t n_props, const char *topic, int *count,
                                 int timeout_ms, char *errstr,
                                 size_t errstr_size);

/* Offsets of one partition for one consumer group. */
typedef struct admin_partition_offsets {
    int32_t partition;
    int64_t committed; /* Next offset the group will read; -1 when none. */
    int64_t low;       /* Low watermark: first offset still stored. */
    int64_t high;      /* High watermark: the end offset (next to write). */
    int64_t lag;       /* high - committed, or high - low when none. */
} admin_partition_offsets;

/*
 * Reads the committed offset of group for every partition of topic, and
 * each partition's low and high watermark, with a temporary consumer
 * handle carrying that group.id. The handle never subscribes, so the group
 * is not joined and no rebalance is caused. On success *out is a new array
 * of *n entries sorted by partition (caller owns it: free()). timeout_ms
 * (milliseconds) bounds the whole call. Any thread.
 * Errors: HERALD_ERR_NOT_FOUND (no such topic), HERALD_ERR_INVALID,
 * HERALD_ERR_KAFKA, HERALD_ERR_TIMEOUT, HERALD_ERR_NOMEM.
 */
herald_err admin_group_offsets(const char *brokers, const char *const *props,
                               size_t n_props, const char *group,
                               const char *topic, admin_partition_offsets **out,
                               size_t *n, int timeout_ms, char *errstr,
                               size_t errstr_size);

#endif
