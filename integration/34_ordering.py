#!/usr/bin/env python3
"""A firing and its resolved, the firing slowed down (issue 4, Proof).

For 30 fingerprints a firing message is produced, then a resolved one
with the same labels (same key, so the same partition, later offset).
Both receivers delay every request whose body holds a firing alert by
1.5 s (receiver rule match=). The resolved must never overtake: at every
receiver, the resolved request of a fingerprint arrives only after its
firing request was answered.
"""
import json
import sys

from harness import (Scenario, duplicates, fingerprint, ledger_records, log,
                     make_alerts, report, wait_until)

N = 30
DELAY_S = 1.5


def kinds(sc, name):
    """{fingerprint: {"firing": [(t, status)], "resolved": [...]}}."""
    out = {}
    for r in ledger_records(sc, name):
        try:
            status = json.loads(r["body"])["alerts"][0]["status"]
        except (ValueError, KeyError, IndexError, TypeError):
            continue
        for f in r.get("fingerprints", []):
            out.setdefault(f, {"firing": [], "resolved": []})[status].append(
                (r["t"], r.get("status", 0)))
    return out


def main():
    sc = Scenario("ordering")
    try:
        topic = sc.topic(6)
        group = f"g-{sc.tag}"
        names = ["ops", "audit"]
        rule = f'/:delay_ms={int(DELAY_S * 1000)},match="status":"firing"'
        for n in names:
            sc.receiver(n, [rule])
        targets = sc.targets_file(
            [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/alerts", [])
             for n in names])
        firing = make_alerts(N, prefix="Order")
        resolved = make_alerts(N, prefix="Order", status="resolved")
        for a in resolved:
            a["endsAt"] = "2026-11-29T09:30:00Z"
        want = {fingerprint(a["labels"]) for a in firing}
        assert want == {fingerprint(a["labels"]) for a in resolved}
        # One file, firing lines first: per key the resolved is later.
        sc.produce(topic, firing + resolved)
        h = sc.herald(topic, group, targets, ["--window", "100"])

        def both_seen():
            for n in names:
                k = kinds(sc, n)
                if not all(f in k and any(s == 200 for _, s in
                                          k[f]["resolved"]) for f in want):
                    return False
            return True

        wait_until(both_seen, 60, "every firing and resolved delivered")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed offsets == end offsets")
        assert sc.stop(h) == 0
        overtaken = []
        for n in names:
            k = kinds(sc, n)
            for f in want:
                fired = [t for t, s in k[f]["firing"] if s == 200]
                assert fired, f"{n}: firing of {f} not delivered"
                # The firing's answer came DELAY_S after its arrival.
                answered = min(fired) + DELAY_S
                early = [t for t, _ in k[f]["resolved"] if t < answered]
                if early:
                    overtaken.append((n, f))
        delivered = {n: sc.delivered(n) for n in names}
        report("ordering", 2 * N,
               {n: sum(c.values()) for n, c in delivered.items()},
               {n: duplicates(c) - N for n, c in delivered.items()}, 0,
               sum(len(want - set(c)) for c in delivered.values()),
               f"resolved before its firing was answered: {len(overtaken)}")
        assert not overtaken, f"resolved overtook firing: {overtaken[:5]}"
        print("ordering: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
