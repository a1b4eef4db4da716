#!/usr/bin/env python3
"""Scale 1 -> 3 -> 1 workers while producing, then rolling SIGTERM
restarts (issue 4, Proof). Runs twice: with the default (eager range)
assignor and with cooperative-sticky.

Alerts are produced in batches by a background thread during the whole
membership dance. Nothing may be lost, every worker must exit 0 on
SIGTERM (drain, commit, leave), and at the end the committed offset of
every partition equals its end offset.
"""
import re
import sys
import threading
import time

from harness import (Scenario, duplicates, fingerprint, log, log_lines,
                     make_alerts, report, wait_until)

PARTS = 6
BATCH = 100
BATCHES = 24
WINDOW = 100


def assignment_count(sc, name):
    """Assign events in a worker's log (one per rebalance it took part in)."""
    return sum(1 for rec in log_lines(sc, name)
               if re.match(r"assigned partitions", rec.get("msg", "")))


def run(label, props):
    sc = Scenario(f"scaling-{label}")
    try:
        _run(sc, label, props)
    finally:
        sc.close()


def _run(sc, label, props):
    for n in ("ops", "audit"):
        sc.receiver(n, [f"/{label}:delay_ms=10"])
    topic = sc.topic(PARTS)
    group = f"g-{label}-{sc.tag}"
    names = ["ops", "audit"]
    targets = sc.targets_file(
        [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/{label}", [])
         for n in names])
    extra = ["--window", str(WINDOW), "--dispatchers", "8",
             "--drain-timeout-ms", "10000", "--revoke-timeout-ms", "5000",
             "-X", "session.timeout.ms=6000",
             "-X", "heartbeat.interval.ms=1000", *props]
    all_alerts = make_alerts(BATCH * BATCHES, prefix=f"Scale{label}")
    want = {fingerprint(a["labels"]) for a in all_alerts}
    produced = [0]
    stop = threading.Event()
    errors = []

    def producer():
        try:
            for b in range(BATCHES):
                if stop.is_set():
                    return
                sc.produce(topic, all_alerts[b * BATCH:(b + 1) * BATCH])
                produced[0] += BATCH
                stop.wait(0.5)  # Pacing, not synchronisation.
        except Exception as e:  # Reported by the main thread.
            errors.append(e)

    seq = [0]

    def start():
        seq[0] += 1
        name = f"{label}-w{seq[0]}"
        return name, sc.herald(topic, group, targets, extra, name=name)

    def delivered_n():
        return len(set(sc.delivered("ops")) & want)

    def progress(at_least):
        wait_until(lambda: delivered_n() >= at_least, 90,
                   f"{at_least} alerts delivered")
        log(f"[{label}] {delivered_n()} delivered, {produced[0]} produced")

    def stop_worker(name, p):
        rc = sc.stop(p)
        assert rc == 0, f"{name} exited {rc} on SIGTERM"
        log(f"[{label}] stopped {name} (SIGTERM), delivered so far "
            f"{delivered_n()}")

    t = threading.Thread(target=producer, daemon=True)
    live = [start()]
    wait_until(lambda: assignment_count(sc, live[0][0]) >= 1, 60,
               "first worker assigned")
    t.start()
    progress(300)
    # Scale 1 -> 3.
    live.append(start())
    live.append(start())
    wait_until(lambda: all(assignment_count(sc, n) >= 1 for n, _ in live),
               60, "three workers assigned")
    log(f"[{label}] scaled to 3, delivered so far {delivered_n()}")
    progress(900)
    # Scale 3 -> 1.
    for name, p in live[1:]:
        stop_worker(name, p)
    live = live[:1]
    progress(1300)
    # Rolling restarts: two rounds of (start a new one, stop the oldest).
    for _ in range(2):
        new = start()
        wait_until(lambda: assignment_count(sc, new[0]) >= 1, 60,
                   f"{new[0]} assigned")
        stop_worker(*live[0])
        live = [new]
        progress(delivered_n() + 300)
    t.join(120)
    assert not errors, f"producer failed: {errors}"
    assert produced[0] == BATCH * BATCHES
    wait_until(lambda: all(want <= set(sc.delivered(n)) for n in names),
               120, "every alert at every receiver")
    wait_until(lambda: sc.fully_committed(topic, group), 60,
               "committed offsets == end offsets")
    for name, p in live:
        stop_worker(name, p)
    o = sc.offsets(topic, group)["partitions"]
    assert all(p["committed"] == p["end"] for p in o), o
    delivered = {n: sc.delivered(n) for n in names}
    lost = sum(len(want - set(delivered[n])) for n in names)
    report(f"scaling[{label}]", len(want),
           {n: sum(delivered[n].values()) for n in names},
           {n: duplicates(delivered[n]) for n in names}, 0, lost,
           "committed == end on "
           f"{len(o)} partitions ({sum(p['end'] for p in o)} messages)")
    assert lost == 0, f"{lost} (alert, target) pairs lost"
    # Graceful restarts drain and commit; what a rebalance can still
    # redeliver is bounded by the window.
    for n in names:
        assert duplicates(delivered[n]) <= WINDOW, \
            f"{n}: {duplicates(delivered[n])} duplicates after SIGTERMs"


def main():
    started = time.monotonic()
    run("eager", [])
    run("coop", ["-X", "partition.assignment.strategy=cooperative-sticky"])
    log(f"both assignors done in {time.monotonic() - started:.0f}s")
    print("scaling: 2 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
