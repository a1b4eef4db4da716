#!/usr/bin/env python3
"""SIGKILL one of two workers mid-stream (issue 4, Proof).

6 partitions, two herald workers in one group, 3,000 alerts, two
receivers. Once some alerts were delivered (and before all were), one
worker is killed with SIGKILL and started again. Every alert must reach
every receiver at least once, and the duplicates on each partition stay
within the in-flight window (a crash redelivers at most the jobs between
the committed offset and the last consumed one, which the window bounds).
"""
import re
import signal
import sys

from harness import (Scenario, duplicates, fingerprint, log, log_lines,
                     make_alerts, partition_of_key, report, wait_until)

N = 3000
PARTS = 6
WINDOW = 100


def assigned_partitions(sc, name):
    """Partitions the worker's log says it was assigned last."""
    parts = set()
    for rec in log_lines(sc, name):
        m = re.match(r"assigned partitions \[([0-9,]*)\]", rec.get("msg", ""))
        if m:
            parts |= {int(x) for x in m.group(1).split(",") if x}
        m = re.match(r"revoking partitions \[([0-9,]*)\]", rec.get("msg", ""))
        if m:
            parts -= {int(x) for x in m.group(1).split(",") if x}
    return parts


def main():
    sc = Scenario("sigkill")
    try:
        topic = sc.topic(PARTS)
        group = f"g-{sc.tag}"
        names = ["ops", "audit"]
        for n in names:
            # A small delay keeps the run long enough to kill mid-stream.
            sc.receiver(n, ["/alerts:delay_ms=15"])
        targets = sc.targets_file(
            [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/alerts", [])
             for n in names])
        alerts = make_alerts(N)
        want = {fingerprint(a["labels"]) for a in alerts}
        part_of = {f: partition_of_key(f, PARTS) for f in want}
        # A short session lets the group notice the killed member quickly.
        extra = ["--window", str(WINDOW), "--dispatchers", "8",
                 "-X", "session.timeout.ms=6000",
                 "-X", "heartbeat.interval.ms=1000"]
        workers = {
            "w1": sc.herald(topic, group, targets, extra, name="w1"),
            "w2": sc.herald(topic, group, targets, extra, name="w2"),
        }
        # Both workers hold partitions before the stream starts.
        wait_until(lambda: assigned_partitions(sc, "w1") and
                   assigned_partitions(sc, "w2") and
                   len(assigned_partitions(sc, "w1") |
                       assigned_partitions(sc, "w2")) == PARTS,
                   60, "both workers assigned")
        sc.produce(topic, alerts)

        def ops_delivered():
            return len(set(sc.delivered("ops")) & want)

        wait_until(lambda: ops_delivered() >= N // 4, 120,
                   "a quarter of the alerts delivered")
        owned = assigned_partitions(sc, "w2")
        done_at_kill = ops_delivered()
        sc.stop(workers["w2"], signal.SIGKILL)
        log(f"SIGKILL w2 (partitions {sorted(owned)}) after "
            f"{done_at_kill}/{N} alerts at ops")
        assert done_at_kill < N, "the stream finished before the kill"
        workers["w2b"] = sc.herald(topic, group, targets, extra, name="w2b")

        def all_delivered():
            return all(want <= set(sc.delivered(n)) for n in names)

        wait_until(all_delivered, 180, "every alert at every receiver")
        wait_until(lambda: sc.fully_committed(topic, group), 60,
                   "committed offsets == end offsets")
        for k in ("w1", "w2b"):
            assert sc.stop(workers[k]) == 0, f"{k} exited non-zero"

        delivered = {n: sc.delivered(n) for n in names}
        lost = {n: len(want - set(delivered[n])) for n in names}
        dups = {n: duplicates(delivered[n]) for n in names}
        per_part = {}
        for n in names:
            for f, c in delivered[n].items():
                if c > 1:
                    p = part_of[f]
                    per_part[(n, p)] = per_part.get((n, p), 0) + c - 1
        report("sigkill", N,
               {n: sum(delivered[n].values()) for n in names}, dups, 0,
               sum(lost.values()),
               f"killed worker owned {sorted(owned)}; duplicates by "
               f"(target, partition) {dict(sorted(per_part.items()))}; "
               f"window {WINDOW}")
        assert sum(lost.values()) == 0, f"alerts lost: {lost}"
        for (n, p), d in per_part.items():
            assert d <= WINDOW, \
                f"{n}: {d} duplicates on partition {p} > window {WINDOW}"
        for n in names:
            assert dups[n] <= WINDOW * max(1, len(owned)), \
                f"{n}: {dups[n]} duplicates > window x killed partitions"
        print("sigkill: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
