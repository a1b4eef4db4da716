#!/usr/bin/env python3
"""Out-of-order completion, then a crash (issue 4, Proof).

One partition. The first message (offset 0, alert "Early") is routed by
matchers to a target whose receiver holds the request for 60 s; the 50
messages after it go to another target and finish at once. The commit
point must stay at offset 0 while Early is in flight (a slow job pins the
commit point but never blocks the others). herald is then killed with
SIGKILL; the receiver stops delaying; a restarted herald delivers Early
(the commit did not pass it) and the committed offset reaches the end.
"""
import signal
import sys
import time

from harness import (Scenario, control_rule, duplicates, fingerprint,
                     ledger_records, log, make_alerts, report, wait_until)

FAST = 50


def main():
    sc = Scenario("outoforder")
    try:
        topic = sc.topic(1)
        group = f"g-{sc.tag}"
        sc.receiver("ops")
        sc.receiver("pager", ["/:delay_ms=60000"])
        targets = sc.targets_file([
            ("ops", f"http://127.0.0.1:{sc.receivers['ops']['port']}/alerts",
             ["matchers:", "  - alertname!=Early"]),
            ("pager",
             f"http://127.0.0.1:{sc.receivers['pager']['port']}/alerts",
             ["matchers:", "  - alertname=Early", "timeout_ms: 90000",
              "retry:", "  max_attempts: 1"]),
        ])
        early = make_alerts(1, prefix="Early")
        early[0]["labels"]["alertname"] = "Early"
        efp = fingerprint(early[0]["labels"])
        fast = make_alerts(FAST, prefix="Fast")
        want = {fingerprint(a["labels"]) for a in fast}
        extra = ["--window", "100", "--publish-deadline-ms", "120000",
                 "-X", "session.timeout.ms=6000"]
        sc.produce(topic, early)
        sc.produce(topic, fast)
        h = sc.herald(topic, group, targets, extra, name="herald")
        wait_until(lambda: want <= set(sc.delivered("ops")), 60,
                   "the later, fast jobs delivered")
        # Several commit intervals (200 ms) pass with the later jobs final:
        # the committed offset must still be 0 (or nothing committed).
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            c = sc.offsets(topic, group)["partitions"][0]["committed"]
            assert c is None or c <= 0, \
                f"commit passed the in-flight job: committed {c}"
            time.sleep(0.2)
        assert efp not in sc.delivered("pager"), "Early was not slowed"
        log(f"fast jobs final, Early in flight, committed offset "
            f"{c} (end {FAST + 1})")
        sc.stop(h, signal.SIGKILL)
        # The receiver answers at once from now on; the request of the
        # killed herald is still held and is never answered to it.
        control_rule(sc, "pager", "/:status=200")
        restart_t = time.time()
        h = sc.herald(topic, group, targets, extra, name="herald-restart")

        def early_after_restart():
            return any(r.get("status") == 200 and r["t"] >= restart_t and
                       efp in r.get("fingerprints", [])
                       for r in ledger_records(sc, "pager"))

        wait_until(early_after_restart, 60, "Early delivered after restart")
        wait_until(lambda: sc.fully_committed(topic, group), 30,
                   "committed offsets == end offsets")
        assert sc.stop(h) == 0
        ops = sc.delivered("ops")
        lost = len(want - set(ops))
        report("out_of_order", FAST + 1,
               {"ops": sum(ops.values()),
                "pager": sc.delivered("pager")[efp]},
               {"ops": duplicates(ops)}, 0, lost,
               "Early delivered after the restart; committed == end")
        assert lost == 0
        assert duplicates(ops) <= 100, "duplicates beyond the window"
        print("out_of_order: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
