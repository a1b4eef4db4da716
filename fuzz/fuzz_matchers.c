/*
 * fuzz_matchers.c: libFuzzer target of the matcher parser
 * (publishers/matchers) and the RE2 check and compiler (publishers/re2).
 *
 * Each input is parsed as a matcher list, as a targets.yaml `matchers:`
 * entry is; what parses is matched against a few label sets and printed
 * back, and the printed form must parse again to the same matcher. The
 * input is also compiled as a regex on its own. ASan and UBSan (built in
 * with -fsanitize=fuzzer,address,undefined) catch memory errors; the
 * assertions catch a round trip that changes meaning.
 *
 * Built only with clang (CMake option HERALD_FUZZ); scripts/test runs it
 * briefly, scripts/soak longer. Threads: libFuzzer's one thread.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "publishers/matchers.h"
#include "publishers/re2.h"

/* Inputs longer than this only repeat what shorter ones exercise. */
#define FUZZ_MAX_INPUT 4096

static alert_kv kv_a[] = {{"alertname", "HighLatency"},
                          {"instance", "host12"},
                          {"severity", "critical"}};
static alert_kv kv_b[] = {{"instance", "hostdd"}, {"team", "db, web\n\"q\""}};

static void check_round_trip(const target_matcher *m)
{
    target_matcher m2;
    char why[512];
    buf b;

    buf_init(&b, 1024 * 1024);
    if (matcher_format(m, &b) != HERALD_OK) {
        buf_free(&b);
        return;
    }
    if (matcher_parse(buf_str(&b), &m2, why, sizeof(why)) != HERALD_OK)
        abort();
    if (strcmp(m->name, m2.name) != 0 || m->op != m2.op ||
        strcmp(m->value, m2.value) != 0)
        abort();
    matcher_free(&m2);
    buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const alert_kvs sets[] = {{kv_a, 3}, {kv_b, 2}, {NULL, 0}};
    target_matcher *ms = NULL;
    re2_regex *re = NULL;
    char why[1024];
    size_t n = 0;
    char *text;

    if (size > FUZZ_MAX_INPUT)
        return 0;
    text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    if (matchers_parse(text, &ms, &n, why, sizeof(why)) == HERALD_OK) {
        for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++)
            (void)matchers_match_all(ms, n, &sets[i]);
        for (size_t i = 0; i < n; i++) {
            (void)matcher_match(&ms[i], text);
            check_round_trip(&ms[i]);
        }
        matchers_free(ms, n);
    }
    if (re2_compile(text, &re, why, sizeof(why)) == HERALD_OK) {
        (void)re2_match(re, text, size);
        (void)re2_match(re, "host12", 6);
        re2_destroy(re);
    }
    free(text);
    return 0;
}
