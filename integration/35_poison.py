#!/usr/bin/env python3
"""Every poison kind mixed with valid jobs (issue 4, Proof).

Poison records of every kind (not UTF-8, not JSON, truncated JSON, JSON
without alerts, wrong types, a null value, oversize, nested too deep) are
produced between 100 valid alerts. herald runs with --max-message-bytes
4096. Each poison record must be in the dead-letter topic with the right
herald-reason header and with source topic/partition/offset headers that
point at that very record of the source topic (same value); every valid
alert is delivered; committed == end offsets.
"""
import json
import sys

from harness import (BIN, BROKERS, Scenario, dlq_records, duplicates,
                     fingerprint, log, make_alerts, produce_raw, report,
                     wait_until)
import subprocess

VALID = 100
MAX_BYTES = 4096

BIG = json.dumps({"status": "firing",
                  "labels": {"alertname": "Big", "instance": "h"},
                  "annotations": {"summary": "x" * (2 * MAX_BYTES)}})
DEEP = ('{"status":"firing","labels":{"alertname":"Deep"},'
        '"annotations":{"x":' + "[" * 40 + "]" * 40 + "}}")
POISON = [
    ("not_utf8", b'{"status":"firing","labels":{"alertname":"Bad\xff\xfe"}}'),
    ("not_json", b"this is not json"),
    ("truncated_json", b'{"status":"firing","labels":{"alertname":"Trunc"'),
    ("no_alerts", b'{"version":"4","status":"firing","alerts":[]}'),
    ("no_alerts", b'{"foo": 1}'),
    ("wrong_type", b'{"status":"firing","labels":{"alertname":5}}'),
    ("wrong_type", b'{"status":"firing","labels":{"alertname":"T"},'
                   b'"annotations":{"summary":["not","a","string"]}}'),
    ("null_value", None),
    ("oversize", BIG.encode()),
    ("too_deep", DEEP.encode()),
]


def as_text(b):
    """The JSON-string form `herald dlq show` gives bytes: valid UTF-8 as
    is, every other byte as the code point of the same value."""
    out = []
    i = 0
    while i < len(b):
        for n in (1, 2, 3, 4):
            try:
                out.append(b[i:i + n].decode("utf-8"))
                i += n
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append(chr(b[i]))
            i += 1
    return "".join(out)


def source_records(topic):
    """{(partition, offset): value} of the source topic, read with `herald
    dlq show` (it reads any topic without a group)."""
    out = subprocess.run([BIN, "dlq", "show", "--brokers", BROKERS,
                          "--dlq-topic", topic, "--json"],
                         capture_output=True, text=True, check=True)
    recs = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    return {(r["partition"], r["offset"]): r["value"] for r in recs}


def main():
    sc = Scenario("poison")
    try:
        topic = sc.topic(6)
        group = f"g-{sc.tag}"
        sc.receiver("ops")
        targets = sc.targets_file(
            [("ops", f"http://127.0.0.1:{sc.receivers['ops']['port']}/a",
              [])])
        valid = make_alerts(VALID, prefix="Good")
        want = {fingerprint(a["labels"]) for a in valid}
        lines = []
        step = VALID // len(POISON)
        for i, a in enumerate(valid):
            lines.append(json.dumps(a).encode())
            if i % step == 0 and i // step < len(POISON):
                v = POISON[i // step][1]
                lines.append(b"null" if v is None else v)
        produce_raw(sc, topic, lines, ["--allow-invalid", "--null-values"])
        h = sc.herald(topic, group, targets,
                      ["--window", "100", "--max-message-bytes",
                       str(MAX_BYTES)])
        wait_until(lambda: want <= set(sc.delivered("ops")), 60,
                   "every valid alert delivered")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed offsets == end offsets")
        assert sc.stop(h) == 0
        recs = dlq_records(topic)
        src = source_records(topic)
        # Match each poison record to its dead-letter record by value.
        found = {}
        problems = []
        for r in recs:
            hd = r["headers"]
            if hd.get("herald-source-topic") != topic:
                problems.append(f"wrong source topic {hd}")
                continue
            where = (int(hd["herald-source-partition"]),
                     int(hd["herald-source-offset"]))
            if where not in src or src[where] != r["value"]:
                problems.append(f"{where}: source record differs")
            found.setdefault(r["value"], []).append(hd.get("herald-reason"))
            if hd.get("herald-reason") == "wrong_type" and not any(
                    x in hd.get("herald-error", "") for x in
                    ("labels.alertname", "annotations.summary")):
                problems.append(f"error does not name the field: {hd}")
        missing = []
        wrong = []
        for kind, v in POISON:
            key = None if v is None else as_text(v)
            reasons = found.get(key, [])
            if not reasons:
                missing.append(kind)
            elif kind not in reasons:
                wrong.append((kind, reasons))
        ops = sc.delivered("ops")
        lost = len(want - set(ops)) + len(missing)
        by_reason = {}
        for r in recs:
            k = r["headers"].get("herald-reason")
            by_reason[k] = by_reason.get(k, 0) + 1
        report("poison", f"{VALID} valid + {len(POISON)} poison",
               {"ops": sum(ops.values())}, {"ops": duplicates(ops)},
               f"{len(recs)} {by_reason}", lost,
               f"poison missing from DLQ {missing}; wrong reason {wrong}; "
               f"header problems {len(problems)}")
        assert not problems, problems[:5]
        assert not missing, f"poison records not dead-lettered: {missing}"
        assert not wrong, f"wrong herald-reason: {wrong}"
        assert len(recs) == len(POISON), \
            f"{len(recs)} dead-letter records for {len(POISON)} poison"
        assert lost == 0
        print("poison: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
