#!/usr/bin/env python3
"""Walking skeleton end to end (issue 2).

6 partitions, 3 receivers, 1,000 alerts: herald delivers every alert to
every receiver (ledger check by fingerprint), the committed offset of every
partition equals its end offset, and a restarted herald redelivers nothing.
"""
import sys

from harness import Scenario, fingerprint, log, make_alerts, wait_until

N = 1000


def main():
    sc = Scenario("e2e")
    try:
        topic = sc.topic(6)
        group = f"g-{sc.tag}"
        names = ["ops", "audit", "team"]
        for n in names:
            sc.receiver(n)
        targets = sc.targets_file(
            [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/alerts", [])
             for n in names])
        alerts = make_alerts(N)
        want = {fingerprint(a["labels"]) for a in alerts}
        sc.produce(topic, alerts)
        h = sc.herald(topic, group, targets)

        def all_delivered():
            return all(want <= set(sc.delivered(n)) for n in names)

        wait_until(all_delivered, 120, "every alert at every receiver")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed offsets == end offsets")
        assert sc.stop(h) == 0, "herald exited non-zero on SIGTERM"
        before = {n: sum(sc.delivered(n).values()) for n in names}
        dups = {n: before[n] - N for n in names}
        log(f"produced {N}; delivered per receiver {before}; "
            f"duplicates {dups}")
        assert all(d == 0 for d in dups.values()), \
            "a clean run must not deliver twice"

        # Restart: nothing is redelivered. Sentinels produced after the
        # restart land on every partition; once they are delivered, herald
        # has read past every earlier message of every partition.
        h = sc.herald(topic, group, targets, name="herald-restart")
        high_before = {p["partition"]: p["end"]
                       for p in sc.offsets(topic, group)["partitions"]}
        sentinels = make_alerts(60, prefix="Sentinel")
        sc.produce(topic, sentinels)
        high_after = {p["partition"]: p["end"]
                      for p in sc.offsets(topic, group)["partitions"]}
        assert all(high_after[p] > high_before[p] for p in high_before), \
            "sentinels did not reach every partition"
        swant = {fingerprint(a["labels"]) for a in sentinels}
        wait_until(lambda: all(swant <= set(sc.delivered(n)) for n in names),
                   60, "sentinels delivered")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed after restart")
        assert sc.stop(h) == 0
        for n in names:
            got = sc.delivered(n)
            again = sum(got[f] for f in want) - N
            assert again == 0, f"{n}: {again} alerts redelivered on restart"
        log(f"restart redelivered 0 alerts; committed == end on all 6 "
            f"partitions")
        print("e2e: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
