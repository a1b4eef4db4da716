#!/usr/bin/env python3
"""The README's demo: real broker, three real receivers, herald in between.

Produces sample alerts, runs herald until every offset is committed, and
prints a summary: alerts consumed, deliveries per target, partial and total
failures, committed offsets, p50/p99 delivery latency. Started by
scripts/demo, which starts and stops the broker.
"""
import json
import os
import random
import re
import sys
import urllib.request

from harness import Scenario, log, make_alerts, wait_until

API = "127.0.0.1:18080"


def sample_alerts():
    random.seed(7)
    alerts = []
    for sev, n in (("critical", 40), ("warning", 100), ("info", 60)):
        alerts += make_alerts(n, prefix=f"Demo{sev.title()}", severity=sev)
    resolved = make_alerts(40, prefix="DemoWarning", status="resolved")
    return alerts + resolved


def get(path):
    with urllib.request.urlopen(f"http://{API}{path}", timeout=5) as r:
        return r.read().decode()


def main():
    sc = Scenario("demo")
    try:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        topic = sc.topic(6)
        group = f"demo-{sc.tag}"
        names = [("ops-webhook", 9101), ("audit-webhook", 9102),
                 ("team-webhook", 9103)]
        for name, _ in names:
            sc.receiver(name)
        targets = sc.targets_file(
            [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/alerts", [])
             for n, _ in names])
        alerts = sample_alerts()
        sc.produce(topic, alerts)
        log(f"produced {len(alerts)} alerts to {topic} (6 partitions)")
        h = sc.herald(topic, group, targets,
                      extra=["--api-listen", API])
        wait_until(lambda: sc.fully_committed(topic, group), 120,
                   "every offset committed")
        stats = json.loads(get("/stats"))
        metrics = get("/metrics")
        sc.stop(h)

        def metric_sum(name, label=None):
            total = 0.0
            for line in metrics.splitlines():
                if line.startswith(name) and (label is None or label in line):
                    total += float(line.rsplit(" ", 1)[1])
            return int(total)

        print("\n==== herald demo summary ====")
        print(f"alerts produced:      {len(alerts)}")
        print(f"messages consumed:    "
              f"{metric_sum('herald_consumer_messages_total')}")
        print("deliveries per target (receiver ledgers):")
        for n, _ in names:
            got = sc.delivered(n)
            print(f"  {n:15s} {sum(got.values()):5d} deliveries, "
                  f"{len(got)} distinct fingerprints")
        print(f"partial failures:     "
              f"{metric_sum('herald_jobs_total', 'partial_success')}")
        print(f"total failures:       "
              f"{metric_sum('herald_jobs_total', 'dead_lettered')}")
        offs = sc.offsets(topic, group)
        print("committed offsets:    " + ", ".join(
            f"p{p['partition']}={p['committed']}/{p['end']}"
            for p in offs["partitions"]))
        print("delivery latency per target (ms):")
        for name, t in sorted(stats.get("targets", {}).items()):
            d = t.get("duration_ms") or {}
            print(f"  {name:15s} p50 {d.get('p50') or 0:7.2f}"
                  f"  p99 {d.get('p99') or 0:7.2f}"
                  f"  success rate {t.get('success_rate') or 0:.3f}"
                  f"  breaker {t.get('breaker', '?')}"
                  f"  health {t.get('health', '?')}")
        pub = stats.get("publishes", {})
        pd = pub.get("duration_ms") or {}
        print(f"publish (fan-out) latency: p50 {pd.get('p50') or 0:.2f} ms,"
              f" p99 {pd.get('p99') or 0:.2f} ms over {pub.get('total')}"
              f" publishes")
        print(f"\nwork dir (ledgers, herald.log): {sc.dir}")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
