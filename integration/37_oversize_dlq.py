#!/usr/bin/env python3
"""An oversize dead letter never pins its partition (issue 9).

The source topic takes records up to 3,000,000 bytes; the dead-letter
topic already exists with the broker's default max.message.bytes (about
1 MB), so herald cannot enlarge it. A 2 MB alert (oversize poison for
--max-message-bytes 1 MiB; `herald produce` gives an invalid record no
key) is followed by small alerts with the same labels and by other
alerts, all in one partition. The 2 MB dead letter is refused by the broker;
herald must write a truncated copy carrying the original's size and
SHA-256 and the source coordinates, deliver every later alert, commit
every partition to its end, and exit on SIGTERM in under 5 s.
"""
import hashlib
import json
import sys
import time

from harness import (Scenario, create_topic, dlq_records, end_offsets,
                     fingerprint, log, make_alerts, produce_raw, report,
                     wait_until)

# One partition: every later record sits behind the oversize one, so the
# commit point reaches the end only if its dead-letter write finished.
PARTITIONS = 1
BIG_BYTES = 2 * 1024 * 1024
LABELS = {"alertname": "Big", "instance": "h1"}


def main():
    sc = Scenario("oversize_dlq")
    try:
        topic = create_topic(sc, f"oversize-{sc.tag}", PARTITIONS,
                             ["max.message.bytes=3000000"])
        # Default-sized, created before herald starts: herald keeps it.
        create_topic(sc, f"{topic}.dlq", PARTITIONS)
        group = f"g-{sc.tag}"
        sc.receiver("ops")
        targets = sc.targets_file(
            [("ops", f"http://127.0.0.1:{sc.receivers['ops']['port']}/a",
              [])])
        big = {"status": "firing", "labels": LABELS,
               "annotations": {"summary": ""}}
        pad = BIG_BYTES - len(json.dumps(big))
        big["annotations"]["summary"] = "x" * pad
        big_value = json.dumps(big).encode()
        same_key = [{"status": s, "labels": LABELS,
                     "annotations": {"summary": f"small {i}"}}
                    for i, s in enumerate(["firing", "firing", "resolved"])]
        others = make_alerts(20, prefix="Other")
        lines = [big_value] + [json.dumps(a).encode()
                               for a in same_key + others]
        err = produce_raw(sc, topic, lines, ["--allow-invalid", "-X",
                                             "message.max.bytes=3000000"])
        produced = sum(end_offsets(sc, topic, group).values())
        assert produced == len(lines), f"{produced} produced: {err}"
        h = sc.herald(topic, group, targets)
        big_fp = fingerprint(LABELS)
        want = {fingerprint(a["labels"]) for a in others} | {big_fp}
        wait_until(lambda: want <= set(sc.delivered("ops")) and
                   sc.delivered("ops")[big_fp] >= len(same_key), 60,
                   "every alert after the oversize one delivered")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed offsets == end offsets")
        t0 = time.monotonic()
        rc = sc.stop(h, timeout=30)
        stop_s = time.monotonic() - t0
        log(f"SIGTERM to exit: {stop_s:.2f} s (rc {rc})")
        recs = dlq_records(topic)
        truncated = [r for r in recs
                     if r["headers"].get("herald-truncated") == "true"]
        report("oversize_dlq", f"1 x {len(big_value)} B + {len(lines) - 1}",
               {"ops": sum(sc.delivered("ops").values())}, {},
               f"{len(recs)} ({len(truncated)} truncated)", 0,
               f"SIGTERM exit {stop_s:.2f} s")
        assert rc == 0, f"herald exited {rc}"
        assert stop_s < 5, f"SIGTERM took {stop_s:.2f} s"
        assert len(recs) == 1 and len(truncated) == 1, recs
        hd = truncated[0]["headers"]
        assert hd["herald-reason"] == "oversize", hd
        assert hd["herald-source-topic"] == topic, hd
        assert int(hd["herald-original-size"]) == len(big_value), hd
        assert hd["herald-original-sha256"] == \
            hashlib.sha256(big_value).hexdigest(), hd
        assert hd["herald-dlq-error"] in ("MSG_SIZE_TOO_LARGE",
                                          "RECORD_LIST_TOO_LARGE"), hd
        assert truncated[0]["key"] is None, truncated[0]["key"]
        assert int(hd["herald-source-offset"]) == 0, hd
        assert len(truncated[0]["value"]) < len(big_value)
        print("oversize_dlq: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
