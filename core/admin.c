/*
 * admin.c: temporary-handle Kafka administration (topic creation, partition
 * count, group offsets) and the shared configuration builder.
 *
 * Data flow: each public call builds a configuration with admin_conf_new(),
 * creates a private rd_kafka_t, issues blocking requests (Admin API result
 * on a private queue, metadata, OffsetFetch, ListOffsets) and destroys the
 * handle before it returns.
 *
 * Threads: whichever thread calls; the handle never leaves that call.
 * librdkafka's own threads call admin_log_cb(), which only calls the
 * thread-safe log module.
 */
#include "core/admin.h"
#include "core/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

/*
 * Forwards librdkafka's log lines (syslog levels 0-7) to the log module.
 * Called on librdkafka's internal threads.
 */
static void admin_log_cb(const rd_kafka_t *rk, int level, const char *fac,
                         const char *msg)
{
    log_level lvl = LOG_LEVEL_DEBUG;

    if (level <= 3)
        lvl = LOG_LEVEL_ERROR;
    else if (level == 4)
        lvl = LOG_LEVEL_WARN;
    else if (level <= 6)
        lvl = LOG_LEVEL_INFO;
    LOG_AT(lvl, "rdkafka", NULL, "%s: %s: %s", rd_kafka_name(rk), fac, msg);
}

/* Sets one "key=value" string on conf; what names the source in errstr. */
static herald_err admin_conf_set_kv(rd_kafka_conf_t *conf, const char *kv,
                                    const char *what, char *errstr,
                                    size_t errstr_size)
{
    char key[256];
    char rkerr[256];
    const char *eq = kv ? strchr(kv, '=') : NULL;
    size_t klen;

    if (!eq || eq == kv) {
        snprintf(errstr, errstr_size, "%s %s: expected key=value", what,
                 kv ? kv : "(null)");
        return HERALD_ERR_INVALID;
    }
    klen = (size_t)(eq - kv);
    if (klen >= sizeof key) {
        snprintf(errstr, errstr_size, "%s %s: property name too long", what,
                 kv);
        return HERALD_ERR_INVALID;
    }
    memcpy(key, kv, klen);
    key[klen] = '\0';
    if (rd_kafka_conf_set(conf, key, eq + 1, rkerr, sizeof rkerr) !=
        RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "%s %s: %s", what, kv, rkerr);
        return HERALD_ERR_INVALID;
    }
    return HERALD_OK;
}

rd_kafka_conf_t *admin_conf_new(const char *brokers,
                                const char *const *defaults, size_t n_defaults,
                                const char *const *props, size_t n_props,
                                char *errstr, size_t errstr_size)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char rkerr[256];

    if (!conf) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, admin_log_cb);
    if (brokers && rd_kafka_conf_set(conf, "bootstrap.servers", brokers, rkerr,
                                     sizeof rkerr) != RD_KAFKA_CONF_OK) {
        snprintf(errstr, errstr_size, "brokers %s: %s", brokers, rkerr);
        goto fail;
    }
    for (size_t i = 0; i < n_defaults; i++) {
        if (admin_conf_set_kv(conf, defaults[i], "default", errstr,
                              errstr_size) != HERALD_OK)
            goto fail;
    }
    for (size_t i = 0; i < n_props; i++) {
        if (admin_conf_set_kv(conf, props[i], "-X", errstr, errstr_size) !=
            HERALD_OK)
            goto fail;
    }
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* Creates a temporary handle of type with the given defaults. */
static rd_kafka_t *admin_handle_new(rd_kafka_type_t type, const char *brokers,
                                    const char *const *defaults,
                                    size_t n_defaults, const char *const *props,
                                    size_t n_props, char *errstr,
                                    size_t errstr_size)
{
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    char rkerr[512];

    if (!brokers || !*brokers) {
        snprintf(errstr, errstr_size, "no brokers given");
        return NULL;
    }
    conf = admin_conf_new(brokers, defaults, n_defaults, props, n_props, errstr,
                          errstr_size);
    if (!conf)
        return NULL;
    rk = rd_kafka_new(type, conf, rkerr, sizeof rkerr);
    if (!rk) {
        snprintf(errstr, errstr_size, "rd_kafka_new: %s", rkerr);
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return rk;
}

/* Maps a librdkafka error to herald's enum. */
static herald_err admin_err_from_kafka(rd_kafka_resp_err_t err)
{
    if (err == RD_KAFKA_RESP_ERR__TIMED_OUT ||
        err == RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
        return HERALD_ERR_TIMEOUT;
    if (err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC ||
        err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
        return HERALD_ERR_NOT_FOUND;
    return HERALD_ERR_KAFKA;
}

/*
 * Waits for the result event of an Admin request on q: timeout_ms plus a
 * second, so that librdkafka reports its own request timeout first.
 * HERALD_OK with *evp set (caller destroys it); otherwise errstr says
 * "<what> <topic>: ..." and *evp is the failed event or NULL (caller
 * destroys a non-NULL one).
 */
static herald_err admin_result_wait(rd_kafka_queue_t *q, int timeout_ms,
                                    const char *what, const char *topic,
                                    rd_kafka_event_t **evp, char *errstr,
                                    size_t errstr_size)
{
    *evp = rd_kafka_queue_poll(q, timeout_ms + 1000);
    if (!*evp) {
        snprintf(errstr, errstr_size, "%s %s: timed out", what, topic);
        return HERALD_ERR_TIMEOUT;
    }
    if (rd_kafka_event_error(*evp)) {
        snprintf(errstr, errstr_size, "%s %s: %s", what, topic,
                 rd_kafka_event_error_string(*evp));
        return admin_err_from_kafka(rd_kafka_event_error(*evp));
    }
    return HERALD_OK;
}

herald_err admin_create_topic(const char *brokers, const char *const *props,
                              size_t n_props, const char *topic, int partitions,
                              int replication_factor,
                              const char *const *configs, size_t n_configs,
                              int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_NewTopic_t *nt = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    herald_err ret = HERALD_ERR_KAFKA;
    char rkerr[512];

    if (!topic || !*topic || partitions < 1 || replication_factor < -1 ||
        replication_factor == 0 || timeout_ms <= 0) {
        snprintf(errstr, errstr_size,
                 "create topic: invalid topic, partitions (%d), replication "
                 "factor (%d) or timeout (%d ms)",
                 partitions, replication_factor, timeout_ms);
        return HERALD_ERR_INVALID;
    }
    rk = admin_handle_new(RD_KAFKA_PRODUCER, brokers, NULL, 0, props, n_props,
                          errstr, errstr_size);
    if (!rk)
        return HERALD_ERR_INVALID;
    nt = rd_kafka_NewTopic_new(topic, partitions, replication_factor, rkerr,
                               sizeof rkerr);
    if (!nt) {
        snprintf(errstr, errstr_size, "create topic %s: %s", topic, rkerr);
        ret = HERALD_ERR_INVALID;
        goto out;
    }
    for (size_t i = 0; i < n_configs; i++) {
        char name[256];
        const char *eq = strchr(configs[i], '=');

        if (!eq || (size_t)(eq - configs[i]) >= sizeof name) {
            snprintf(errstr, errstr_size, "create topic %s: bad config \"%s\"",
                     topic, configs[i]);
            ret = HERALD_ERR_INVALID;
            goto out;
        }
        snprintf(name, sizeof name, "%.*s", (int)(eq - configs[i]), configs[i]);
        if (rd_kafka_NewTopic_set_config(nt, name, eq + 1)) {
            snprintf(errstr, errstr_size, "create topic %s: cannot set %s",
                     topic, configs[i]);
            ret = HERALD_ERR_INVALID;
            goto out;
        }
    }
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    q = rd_kafka_queue_new(rk);
    if (!opts || !q) {
        snprintf(errstr, errstr_size, "create topic %s: out of memory", topic);
        ret = HERALD_ERR_NOMEM;
        goto out;
    }
    /* The broker waits up to operation_timeout for the topic to exist on
     * every replica; the request itself gets the same budget. */
    if (rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, rkerr,
                                                    sizeof rkerr) ||
        rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rkerr,
                                                  sizeof rkerr)) {
        snprintf(errstr, errstr_size, "create topic %s: %s", topic, rkerr);
        ret = HERALD_ERR_INVALID;
        goto out;
    }
    rd_kafka_CreateTopics(rk, &nt, 1, opts, q);
    ret = admin_result_wait(q, timeout_ms, "create topic", topic, &ev, errstr,
                            errstr_size);
    if (ret)
        goto out;
    ret = HERALD_ERR_KAFKA;
    {
        const rd_kafka_CreateTopics_result_t *res =
            rd_kafka_event_CreateTopics_result(ev);
        size_t n = 0;
        const rd_kafka_topic_result_t **tr =
            res ? rd_kafka_CreateTopics_result_topics(res, &n) : NULL;
        rd_kafka_resp_err_t err;

        if (!tr || n != 1) {
            snprintf(errstr, errstr_size, "create topic %s: unexpected result",
                     topic);
            goto out;
        }
        err = rd_kafka_topic_result_error(tr[0]);
        if (err && err != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            const char *msg = rd_kafka_topic_result_error_string(tr[0]);

            snprintf(errstr, errstr_size, "create topic %s: %s", topic,
                     msg ? msg : rd_kafka_err2str(err));
            ret = admin_err_from_kafka(err);
            goto out;
        }
        LOG_INFO("admin", NULL, "topic %s %s", topic,
                 err ? "already exists" : "created");
    }
    ret = HERALD_OK;
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (nt)
        rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return ret;
}

herald_err admin_topic_config(const char *brokers, const char *const *props,
                              size_t n_props, const char *topic,
                              const char *name, char *value, size_t value_size,
                              int timeout_ms, char *errstr, size_t errstr_size)
{
    rd_kafka_t *rk = NULL;
    rd_kafka_ConfigResource_t *res = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_event_t *ev = NULL;
    herald_err ret = HERALD_ERR_KAFKA;
    const rd_kafka_DescribeConfigs_result_t *dres;
    const rd_kafka_ConfigResource_t **rs;
    const rd_kafka_ConfigEntry_t **entries;
    size_t n = 0;
    char rkerr[512];

    if (!topic || !*topic || !name || !value || value_size == 0 ||
        timeout_ms <= 0) {
        snprintf(errstr, errstr_size, "topic config: invalid arguments");
        return HERALD_ERR_INVALID;
    }
    rk = admin_handle_new(RD_KAFKA_PRODUCER, brokers, NULL, 0, props, n_props,
                          errstr, errstr_size);
    if (!rk)
        return HERALD_ERR_INVALID;
    res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    q = rd_kafka_queue_new(rk);
    if (!res || !opts || !q) {
        snprintf(errstr, errstr_size, "topic config %s: out of memory", topic);
        ret = HERALD_ERR_NOMEM;
        goto out;
    }
    if (rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, rkerr,
                                                  sizeof rkerr)) {
        snprintf(errstr, errstr_size, "topic config %s: %s", topic, rkerr);
        ret = HERALD_ERR_INVALID;
        goto out;
    }
    rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
    ret = admin_result_wait(q, timeout_ms, "topic config", topic, &ev, errstr,
                            errstr_size);
    if (ret)
        goto out;
    ret = HERALD_ERR_KAFKA;
    dres = rd_kafka_event_DescribeConfigs_result(ev);
    rs = dres ? rd_kafka_DescribeConfigs_result_resources(dres, &n) : NULL;
    if (!rs || n != 1) {
        snprintf(errstr, errstr_size, "topic config %s: unexpected result",
                 topic);
        goto out;
    }
    if (rd_kafka_ConfigResource_error(rs[0])) {
        snprintf(errstr, errstr_size, "topic config %s: %s", topic,
                 rd_kafka_ConfigResource_error_string(rs[0]));
        ret = admin_err_from_kafka(rd_kafka_ConfigResource_error(rs[0]));
        goto out;
    }
    entries = rd_kafka_ConfigResource_configs(rs[0], &n);
    snprintf(errstr, errstr_size, "topic %s has no config %s", topic, name);
    ret = HERALD_ERR_NOT_FOUND;
    for (size_t i = 0; i < n; i++) {
        const char *v = rd_kafka_ConfigEntry_value(entries[i]);

        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) != 0 || !v)
            continue;
        snprintf(value, value_size, "%s", v);
        errstr[0] = '\0';
        ret = HERALD_OK;
        break;
    }
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (q)
        rd_kafka_queue_destroy(q);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    if (res)
        rd_kafka_ConfigResource_destroy(res);
    rd_kafka_destroy(rk);
    return ret;
}

/*
 * Finds topic in a metadata snapshot of all topics on rk; sets *count.
 * Errors as admin_partition_count().
 */
static herald_err admin_metadata_count(rd_kafka_t *rk, const char *topic,
                                       int *count, int timeout_ms, char *errstr,
                                       size_t errstr_size)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err;
    herald_err ret = HERALD_ERR_NOT_FOUND;

    err = rd_kafka_metadata(rk, 1, NULL, &md, timeout_ms);
    if (err) {
        snprintf(errstr, errstr_size, "metadata for %s: %s", topic,
                 rd_kafka_err2str(err));
        return err == RD_KAFKA_RESP_ERR__TRANSPORT ? HERALD_ERR_KAFKA
                                                   : admin_err_from_kafka(err);
    }
    snprintf(errstr, errstr_size, "topic %s does not exist", topic);
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = &md->topics[i];

        if (strcmp(t->topic, topic) != 0)
            continue;
        if (t->err) {
            snprintf(errstr, errstr_size, "topic %s: %s", topic,
                     rd_kafka_err2str(t->err));
            ret = admin_err_from_kafka(t->err);
            break;
        }
        *count = t->partition_cnt;
        errstr[0] = '\0';
        ret = HERALD_OK;
        break;
    }
    rd_kafka_metadata_destroy(md);
    return ret;
}

herald_err admin_partition_count(const char *brokers, const char *const *props,
                                 size_t n_props, const char *topic, int *count,
                                 int timeout_ms, char *errstr,
                                 size_t errstr_size)
{
    rd_kafka_t *rk;
    herald_err ret;

    if (!topic || !*topic || !count || timeout_ms <= 0) {
        snprintf(errstr, errstr_size, "partition count: invalid arguments");
        return HERALD_ERR_INVALID;
    }
    rk = admin_handle_new(RD_KAFKA_PRODUCER, brokers, NULL, 0, props, n_props,
                          errstr, errstr_size);
    if (!rk)
        return HERALD_ERR_INVALID;
    ret =
        admin_metadata_count(rk, topic, count, timeout_ms, errstr, errstr_size);
    rd_kafka_destroy(rk);
    return ret;
}

/* Milliseconds left until deadline, at least 1. */
static int admin_left_ms(int64_t deadline)
{
    int64_t left = deadline - herald_now_ms();

    return left < 1 ? 1 : (int)left;
}

herald_err admin_group_offsets(const char *brokers, const char *const *props,
                               size_t n_props, const char *group,
                               const char *topic, admin_partition_offsets **out,
                               size_t *n, int timeout_ms, char *errstr,
                               size_t errstr_size)
{
    /* A passive consumer: it never subscribes, never commits, and asks for
     * committed offsets only. */
    static const char *const defaults[] = {"enable.auto.commit=false",
                                           "enable.auto.offset.store=false"};
    char group_kv[512];
    const char *group_default[3];
    rd_kafka_t *rk = NULL;
    rd_kafka_topic_partition_list_t *parts = NULL;
    admin_partition_offsets *offs = NULL;
    int64_t deadline = herald_now_ms() + timeout_ms;
    herald_err ret;
    int count = 0;

    if (out)
        *out = NULL;
    if (n)
        *n = 0;
    if (!group || !*group || !topic || !*topic || !out || !n ||
        timeout_ms <= 0 || strlen(group) > 400) {
        snprintf(errstr, errstr_size, "group offsets: invalid arguments");
        return HERALD_ERR_INVALID;
    }
    snprintf(group_kv, sizeof group_kv, "group.id=%s", group);
    group_default[0] = defaults[0];
    group_default[1] = defaults[1];
    group_default[2] = group_kv;
    rk = admin_handle_new(RD_KAFKA_CONSUMER, brokers, group_default, 3, props,
                          n_props, errstr, errstr_size);
    if (!rk)
        return HERALD_ERR_INVALID;
    ret = admin_metadata_count(rk, topic, &count, admin_left_ms(deadline),
                               errstr, errstr_size);
    if (ret != HERALD_OK)
        goto out;
    parts = rd_kafka_topic_partition_list_new(count > 0 ? count : 1);
    offs = calloc(count > 0 ? (size_t)count : 1, sizeof *offs);
    if (!parts || !offs) {
        snprintf(errstr, errstr_size, "group offsets: out of memory");
        ret = HERALD_ERR_NOMEM;
        goto out;
    }
    for (int p = 0; p < count; p++)
        rd_kafka_topic_partition_list_add(parts, topic, p);
    if (count > 0) {
        rd_kafka_resp_err_t err =
            rd_kafka_committed(rk, parts, admin_left_ms(deadline));

        if (err) {
            snprintf(errstr, errstr_size, "committed offsets of group %s: %s",
                     group, rd_kafka_err2str(err));
            ret = admin_err_from_kafka(err);
            goto out;
        }
    }
    for (int i = 0; i < parts->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &parts->elems[i];
        admin_partition_offsets *o = &offs[i];
        rd_kafka_resp_err_t err;

        o->partition = tp->partition;
        o->committed = tp->err || tp->offset < 0 ? -1 : tp->offset;
        err =
            rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &o->low,
                                             &o->high, admin_left_ms(deadline));
        if (err) {
            snprintf(errstr, errstr_size, "watermarks of %s [%d]: %s", topic,
                     (int)tp->partition, rd_kafka_err2str(err));
            ret = admin_err_from_kafka(err);
            goto out;
        }
        o->lag = o->high - (o->committed >= 0 ? o->committed : o->low);
        if (o->lag < 0)
            o->lag = 0;
    }
    *out = offs;
    *n = (size_t)count;
    offs = NULL;
    ret = HERALD_OK;
out:
    free(offs);
    if (parts)
        rd_kafka_topic_partition_list_destroy(parts);
    rd_kafka_destroy(rk);
    return ret;
}
