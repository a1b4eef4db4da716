#!/usr/bin/env python3
"""A revoke with jobs waiting for a retry backoff completes at once (issue 9).

One replica consumes 20 alerts for a target that answers 500, so every
job fails and waits out a job retry backoff (up to seconds, full jitter).
A second replica then joins the group (eager assignor: the first replica
revokes every partition). The waiting jobs must be cancelled, not
retried: the first replica's revoke (its "revoking partitions" line to
its last "revoked" line) and the whole hand-over (the second replica's
start of consumption to its assignment) each take under 2 s, although
--revoke-timeout-ms is 10 s, and no job of the first replica is attempted
again after the revoke began. The cancelled offsets are not committed by
the first replica: the new owners consume them again.
"""
import re
import sys
from datetime import datetime

from harness import Scenario, log, log_lines, make_alerts, wait_until

PARTS = 4
ALERTS = 20
# Both replicas notice a rebalance within a heartbeat; 200 ms keeps the
# group protocol's share of the hand-over small.
# Debug: every job's retry line (the warn line is rate-limited).
EXTRA = ["--job-max-attempts", "100", "--revoke-timeout-ms", "10000",
         "--log-level", "debug",
         "-X", "heartbeat.interval.ms=200", "-X", "session.timeout.ms=6000"]


def ts(rec):
    return datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def first(sc, name, pattern):
    for rec in log_lines(sc, name):
        if re.search(pattern, rec.get("msg", "")):
            return rec
    return None


def main():
    sc = Scenario("revoke_waiting")
    try:
        topic = sc.topic(PARTS)
        group = f"g-{sc.tag}"
        sc.receiver("down", ["/:status=500"])
        targets = sc.targets_file(
            [("down", f"http://127.0.0.1:{sc.receivers['down']['port']}/a",
              [])])
        sc.produce(topic, make_alerts(ALERTS, prefix="Wait"))
        h1 = sc.herald(topic, group, targets, EXTRA, name="w1")
        # Jobs that failed three times wait out backoffs of up to 4-8 s.
        wait_until(lambda: sum(
            1 for r in log_lines(sc, "w1")
            if re.match(r"total failure on attempt [3-9]",
                        r.get("msg", ""))) >= ALERTS // 2, 90,
            "jobs waiting for a retry backoff")
        h2 = sc.herald(topic, group, targets, EXTRA, name="w2")
        wait_until(lambda: first(sc, "w2", r"^assigned partitions \[.+\]"),
                   30, "second replica assigned")
        start = first(sc, "w2", r"^consuming ")
        assigned = first(sc, "w2", r"^assigned partitions \[.+\]")
        revoking = first(sc, "w1", r"^revoking partitions")
        wait_until(lambda: sum(1 for r in log_lines(sc, "w1")
                               if re.search(r"revoked", r.get("msg", ""))
                               and r.get("partition") is not None)
                   >= PARTS, 30, "every partition revoked by w1")
        lines = log_lines(sc, "w1")
        revoked = [r for r in lines
                   if re.search(r"revoked", r.get("msg", "")) and
                   r.get("partition") is not None]
        revoke_end = max(ts(r) for r in revoked[:PARTS])
        # Backoffs that were still running when the revoke began: their
        # jobs were waiting, and must not have been attempted again.
        due = []
        for r in lines:
            m = re.match(r"total failure on attempt \d+: retrying .* in "
                         r"(\d+) ms", r.get("msg", ""))
            if m and ts(r) <= ts(revoking):
                due.append(ts(r) + int(m.group(1)) / 1000)
        waiting = [d for d in due if d > revoke_end]
        late = [r for r in lines
                if r.get("msg", "").startswith("total failure on attempt")
                and ts(revoking) < ts(r)]
        revoke_s = revoke_end - ts(revoking)
        handover_s = ts(assigned) - ts(start)
        log(f"revoke on w1: {revoke_s:.3f} s with {len(waiting)} job(s) "
            f"waiting for a backoff that ended later; w2 start of "
            f"consumption to assignment: {handover_s:.3f} s")
        assert waiting, "no job was waiting for a backoff at the revoke"
        assert not late, f"attempts after the revoke began: {late[:3]}"
        assert revoke_s < 2, f"revoke took {revoke_s:.3f} s"
        assert handover_s < 2, f"hand-over took {handover_s:.3f} s"
        for p in (h1, h2):
            assert sc.stop(p, timeout=40) == 0
        print("revoke_waiting: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
