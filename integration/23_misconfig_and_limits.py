#!/usr/bin/env python3
"""Operator mistakes and rate limits, found by trying to break herald:
the dead-letter topic may not be the source topic; a missing source topic
is an error that creates nothing; a receiver answering 429 with
Retry-After is waited for (no breaker opening, nothing dead-lettered); a
receiver that refuses the request (400) is dead-lettered at once, without
job retries."""
import subprocess
import sys

from harness import (BIN, BROKERS, KAFKA, Scenario, dlq_records,
                     ledger_records, log, make_alerts, wait_until)


def run_fails(args, needle):
    p = subprocess.run([BIN, "run", *args], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode != 0, f"herald run {args} succeeded"
    assert needle in p.stderr, f"stderr lacks {needle!r}: {p.stderr}"
    return p


def main():
    sc = Scenario("limits")
    try:
        topic = sc.topic(3)
        group = f"g-{sc.tag}"
        sc.receiver("ok")
        # 429 with Retry-After: 1 on the first 10 requests, then 200.
        sc.receiver("limited", rules=[
            "/:status=429,header=Retry-After: 1,fail_first=10"])
        sc.receiver("refusing", rules=["/:status=400,body=bad request"])
        targets = sc.targets_file([
            (n, f"http://127.0.0.1:{sc.receivers[n]['port']}/a",
             ["retry:", "  max_attempts: 4", "  initial_backoff_ms: 50",
              "circuit_breaker:", "  failure_threshold: 3"])
            for n in ("ok", "limited", "refusing")])

        run_fails(["-b", BROKERS, "-t", topic, "-g", group, "-c", targets,
                   "--dlq-topic", topic], "must differ")
        missing = f"missing-{sc.tag}"
        run_fails(["-b", BROKERS, "-t", missing, "-g", group, "-c", targets,
                   "--api-listen", ""], "does not exist")
        topics = subprocess.run([KAFKA, "list-topics"], capture_output=True,
                                text=True, env=sc._kafka_env()).stdout
        assert f"{missing}.dlq" not in topics, "stray dead-letter topic"
        log("misconfigurations refused, no stray topic created")

        alerts = make_alerts(10, prefix="Limited")
        sc.produce(topic, alerts)
        h = sc.herald(topic, group, targets,
                      extra=["--job-max-attempts", "5"])
        wait_until(lambda: sc.fully_committed(topic, group), 90,
                   "committed")
        assert sc.stop(h) == 0
        limited = sc.delivered("limited")
        assert len(limited) == 10, f"limited got {len(limited)} of 10"
        recs = dlq_records(topic)
        by_target = {}
        for r in recs:
            by_target.setdefault(r["headers"].get("herald-target"),
                                 []).append(r)
        assert "limited" not in by_target, \
            f"429 legs dead-lettered: {by_target.get('limited')[:1]}"
        refused = by_target.get("refusing", [])
        assert len(refused) == 10, f"refusing: {len(refused)} records"
        # A 400 is given up at once: one request per alert at most, no job
        # retries. Once the breaker or health saw enough 400s, later legs
        # are skipped (circuit_open / unhealthy), never sent again.
        reasons = {}
        for r in refused:
            h = r["headers"]
            reasons[h["herald-reason"]] = reasons.get(h["herald-reason"],
                                                      0) + 1
            assert h["herald-reason"] in ("target_failed", "circuit_open",
                                          "unhealthy"), r
            if h["herald-reason"] == "target_failed":
                assert h["herald-http-status"] == "400", r
                assert h["herald-attempts"] == "1", r
        assert reasons.get("target_failed", 0) >= 1, reasons
        sent = sum(1 for x in ledger_records(sc, "refusing"))
        assert sent <= 10, f"refusing got {sent} requests for 10 alerts"
        with open(f"{sc.dir}/herald.log") as f:
            opened = [line for line in f
                      if '"component":"breaker"' in line and
                      '"target":"limited"' in line]
        assert not opened, f"the breaker of a 429 target changed: {opened}"
        log(f"limited: 10/10 delivered after Retry-After waits, 0 "
            f"dead-lettered; refusing: 10 dead-lettered without retries "
            f"({sent} requests; reasons {reasons})")
        print("limits: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
