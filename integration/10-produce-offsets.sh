#!/usr/bin/env bash
# integration/10-produce-offsets.sh: `herald produce`, `herald offsets` and
# `herald dlq replay` against a real Kafka broker and a real HTTP receiver.
#
# Starts no broker: expects one at $HERALD_BROKERS (integration/kafka start),
# the herald binary at $HERALD_BIN and the test receiver at $HERALD_RECEIVER
# (CTest sets all three). Topics get a unique suffix, so the scenario can run
# again on the same broker. Prints its figures and exits non-zero on the
# first failed check.
set -euo pipefail

: "${HERALD_BROKERS:?set HERALD_BROKERS to the broker (e.g. 127.0.0.1:19092)}"
: "${HERALD_BIN:?set HERALD_BIN to the herald binary}"
: "${HERALD_RECEIVER:?set HERALD_RECEIVER to the herald-receiver binary}"

run_id="$(date +%s)-$$"
topic="it10-alerts-$run_id"
dlq="it10-alerts-$run_id.dlq"
work=$(mktemp -d /tmp/herald-it10.XXXXXX)
receiver_pid=

cleanup() {
    if [ -n "$receiver_pid" ]; then
        kill "$receiver_pid" 2>/dev/null || true
        wait "$receiver_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

fail() { printf '10-produce-offsets: FAIL: %s\n' "$*" >&2; exit 1; }
pass() { printf '10-produce-offsets: ok: %s\n' "$*"; }
herald() { "$HERALD_BIN" "$@"; }

# Prints field $2 of the JSON object in file $1 (python3 is a dependency of
# the integration suite).
json_field() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

# ---- produce: one alert per line, keyed by fingerprint, topic created ----
n=300
for i in $(seq 1 "$n"); do
    printf '{"status":"firing","labels":{"alertname":"It10","instance":"host-%d","severity":"warning"},"annotations":{"summary":"alert %d"},"startsAt":"2024-05-01T12:00:00Z"}\n' "$i" "$i"
    # A blank line now and then: skipped.
    if [ $((i % 100)) -eq 0 ]; then echo; fi
done >"$work/alerts.jsonl"

herald produce --brokers "$HERALD_BROKERS" --topic "$topic" --create-topic 6 \
    "$work/alerts.jsonl" >"$work/produce.out"
grep -q "produced $n messages to $topic (0 invalid skipped)" "$work/produce.out" ||
    fail "produce summary: $(cat "$work/produce.out")"
pass "produced $n alerts to $topic (6 partitions created)"

# --create-topic again: an existing topic is fine; stdin input; env defaults.
HERALD_TOPIC="$topic" HERALD_BROKERS="$HERALD_BROKERS" \
    herald produce --create-topic 6 - <"$work/alerts.jsonl" >"$work/produce2.out"
grep -q "produced $n messages" "$work/produce2.out" ||
    fail "second produce: $(cat "$work/produce2.out")"
pass "topic creation is idempotent; stdin and environment defaults work"

# ---- offsets: a group that never committed ----
herald offsets --brokers "$HERALD_BROKERS" --topic "$topic" --group "it10-none-$run_id" \
    --json >"$work/offsets.json"
total_end=$(json_field "$work/offsets.json" total_end)
total_lag=$(json_field "$work/offsets.json" total_lag)
fully=$(json_field "$work/offsets.json" fully_committed)
parts=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d["partitions"]), sum(1 for p in d["partitions"] if p["committed"] is None))' "$work/offsets.json")
[ "$total_end" -eq $((2 * n)) ] || fail "total end offset $total_end, want $((2 * n))"
[ "$total_lag" -eq $((2 * n)) ] || fail "total lag $total_lag, want $((2 * n))"
[ "$fully" = "False" ] || fail "fully_committed should be false"
[ "$parts" = "6 6" ] || fail "partitions/uncommitted: $parts, want 6 6"
# Keys are fingerprints: both copies of an alert land in one partition, so
# every partition holds an even number of messages.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(any(p["end"] % 2 for p in d["partitions"]))' "$work/offsets.json" ||
    fail "a partition holds an odd number of messages: keys are not stable"
if herald offsets --brokers "$HERALD_BROKERS" --topic "$topic" \
    --group "it10-none-$run_id" --fail-on-lag >/dev/null; then
    fail "--fail-on-lag should fail with lag $total_lag"
fi
herald offsets --brokers "$HERALD_BROKERS" --topic "$topic" --group "it10-none-$run_id" |
    grep -q "^ *total .* $((2 * n)) *$((2 * n))$" || fail "offsets table totals"
pass "offsets: end $total_end, lag $total_lag over 6 partitions, none committed"

# ---- invalid input: reported as FILE:LINE, skipped, exit status 3 ----
printf '%s\n' '{"status":"firing","labels":{"alertname":"Ok"}}' 'not json' \
    '{"status":"firing","labels":"wrong"}' >"$work/bad.jsonl"
set +e
herald produce --brokers "$HERALD_BROKERS" --topic "$topic" "$work/bad.jsonl" \
    >"$work/bad.out" 2>"$work/bad.err"
rc=$?
set -e
[ "$rc" -eq 3 ] || fail "invalid lines: exit status $rc, want 3"
grep -q "^$work/bad.jsonl:2: " "$work/bad.err" || fail "no FILE:2: report: $(cat "$work/bad.err")"
grep -q "^$work/bad.jsonl:3: " "$work/bad.err" || fail "no FILE:3: report"
grep -q "produced 1 messages to $topic (2 invalid skipped)" "$work/bad.out" ||
    fail "bad summary: $(cat "$work/bad.out")"
pass "invalid lines reported as FILE:LINE and skipped (exit 3)"

set +e
herald produce --brokers "$HERALD_BROKERS" --topic "$topic" -X no.such.property=1 \
    "$work/bad.jsonl" >/dev/null 2>&1
rc=$?
set -e
[ "$rc" -eq 2 ] || fail "unknown -X property: exit status $rc, want 2"
pass "unknown -X property refused (exit 2)"

# ---- dlq replay: re-publish to the recorded target, commit, never twice ----
"$HERALD_RECEIVER" --listen 127.0.0.1:0 --port-file "$work/port" \
    --ledger "$work/ledger.jsonl" --name it10 --rule /broken:status=500 \
    >"$work/receiver.log" 2>&1 &
receiver_pid=$!
for _ in $(seq 1 100); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || fail "receiver did not start: $(cat "$work/receiver.log")"
port=$(cat "$work/port")
cat >"$work/targets.yaml" <<EOF
targets:
  - name: good
    type: webhook
    url: http://127.0.0.1:$port/good
    retry: {max_attempts: 1}
    health: {enabled: false}
  - name: broken
    type: webhook
    url: http://127.0.0.1:$port/broken
    retry: {max_attempts: 1}
    health: {enabled: false}
EOF
head -n 5 "$work/alerts.jsonl" >"$work/five.jsonl"
herald produce --brokers "$HERALD_BROKERS" --topic "$dlq" --create-topic 2 \
    -H herald-reason=target_failed -H herald-target=good \
    -H herald-source-topic="$topic" "$work/five.jsonl" >/dev/null
sed -n 6p "$work/alerts.jsonl" | herald produce --brokers "$HERALD_BROKERS" \
    --topic "$dlq" -H herald-reason=target_failed -H herald-target=broken >/dev/null
printf 'not json\n' | herald produce --brokers "$HERALD_BROKERS" --topic "$dlq" \
    -H herald-reason=not_json --allow-invalid >/dev/null 2>&1

# Dry run: nothing sent, nothing committed.
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "it10-replay-$run_id" --dry-run >"$work/dry.out"
grep -q "read 7, replayed 6, delivered 0, failed 0, skipped by filter 0, unreplayable 1" \
    "$work/dry.out" || fail "dry run summary: $(tail -1 "$work/dry.out")"
[ ! -s "$work/ledger.jsonl" ] || fail "dry run sent requests"

# Only the "good" records: delivered and committed.
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "it10-replay-$run_id" --target good >"$work/replay1.out"
grep -q "replayed 5, delivered 5, failed 0, skipped by filter 2" "$work/replay1.out" ||
    fail "replay --target good: $(tail -1 "$work/replay1.out")"
good=$(grep -c '"/good' "$work/ledger.jsonl" || true)
[ "$good" -eq 5 ] || fail "receiver got $good requests on /good, want 5"
herald offsets --brokers "$HERALD_BROKERS" --topic "$dlq" --group "it10-replay-$run_id" \
    --json >"$work/replay-offsets.json"
[ "$(json_field "$work/replay-offsets.json" fully_committed)" = "True" ] ||
    fail "replay group not fully committed: $(cat "$work/replay-offsets.json")"

# The same group again: nothing is replayed twice.
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "it10-replay-$run_id" >"$work/replay2.out"
grep -q "read 0, replayed 0" "$work/replay2.out" || fail "second replay: $(tail -1 "$work/replay2.out")"
pass "replay delivered 5 records to their target once; the group is fully committed"

# A record that fails again stops the run, uncommitted, and is retried next
# time.
g2="it10-replay2-$run_id"
set +e
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "$g2" --reason target_failed \
    --since 2000-01-01T00:00:00Z >"$work/replay3.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "failing replay: exit status $rc, want 1"
grep -q "failed 1" "$work/replay3.out" || fail "failing replay: $(tail -1 "$work/replay3.out")"
herald offsets --brokers "$HERALD_BROKERS" --topic "$dlq" --group "$g2" --json >"$work/g2.json"
[ "$(json_field "$work/g2.json" fully_committed)" = "False" ] || fail "failed record was committed"
lag_before=$(json_field "$work/g2.json" total_lag)
set +e
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "$g2" --reason target_failed >"$work/replay4.out" 2>&1
rc=$?
set -e
[ "$rc" -eq 1 ] || fail "retry of the failing record: exit status $rc, want 1"
grep -q "broken" "$work/replay4.out" || fail "retry did not start at the failed record"
herald offsets --brokers "$HERALD_BROKERS" --topic "$dlq" --group "$g2" --json >"$work/g2b.json"
[ "$(json_field "$work/g2b.json" total_lag)" -le "$lag_before" ] || fail "lag grew"
pass "a record that fails again stops the replay uncommitted (lag $lag_before) and is retried"

# --until in the past selects nothing: every record skipped and committed.
herald dlq replay --brokers "$HERALD_BROKERS" --dlq-topic "$dlq" \
    --targets "$work/targets.yaml" --group "it10-replay3-$run_id" --until-ms 1 >"$work/replay5.out"
grep -q "read 7, replayed 0, delivered 0, failed 0, skipped by filter 7" "$work/replay5.out" ||
    fail "--until filter: $(tail -1 "$work/replay5.out")"
pass "time filter skips records"

printf '10-produce-offsets: all checks passed (topic %s: %d messages; dlq %s: 7 records)\n' \
    "$topic" $((2 * n + 1)) "$dlq"
