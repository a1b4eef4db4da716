#!/usr/bin/env python3
"""Broker restart while herald runs with alerts pending (issue 4, Proof).

1,500 alerts on 6 partitions, two receivers that answer in 20 ms. Once
some alerts were delivered and many are pending, the broker is stopped
(integration/kafka stop) and started again on the same port and state.
herald must reconnect, deliver every alert (including 300 produced after
the restart) and commit up to the end offsets, without a restart of its
own. The scenario always leaves the broker running and ready, as the
other scenarios of the run share it.
"""
import sys
import time

from harness import (Scenario, broker_start, broker_stop, duplicates,
                     fingerprint, log, make_alerts, report, wait_until)

N = 1500
AFTER = 300
WINDOW = 100


def main():
    sc = Scenario("brokerrestart")
    broker_down = False
    try:
        topic = sc.topic(6)
        group = f"g-{sc.tag}"
        names = ["ops", "audit"]
        for n in names:
            sc.receiver(n, ["/alerts:delay_ms=20"])
        targets = sc.targets_file(
            [(n, f"http://127.0.0.1:{sc.receivers[n]['port']}/alerts", [])
             for n in names])
        alerts = make_alerts(N)
        later = make_alerts(AFTER, prefix="Later")
        want = {fingerprint(a["labels"]) for a in alerts + later}
        sc.produce(topic, alerts)
        h = sc.herald(topic, group, targets,
                      ["--window", str(WINDOW), "--dispatchers", "4"])

        def delivered_n():
            return len(set(sc.delivered("ops")) & want)

        wait_until(lambda: delivered_n() >= 200, 60, "200 alerts delivered")
        log(f"stopping the broker after {delivered_n()}/{N} alerts")
        broker_down = True
        t_stop = time.monotonic()
        broker_stop()
        at_stop = delivered_n()
        assert at_stop < N, "everything was delivered before the stop"
        assert h.poll() is None, "herald exited while the broker was down"
        broker_start()
        broker_down = False
        log(f"broker back after {time.monotonic() - t_stop:.1f}s; "
            f"{delivered_n()} delivered meanwhile")
        assert h.poll() is None, "herald exited while the broker was down"
        sc.produce(topic, later)
        wait_until(lambda: all(want <= set(sc.delivered(n)) for n in names),
                   180, "every alert at every receiver after the restart")
        wait_until(lambda: sc.fully_committed(topic, group), 120,
                   "committed offsets == end offsets")
        assert sc.stop(h) == 0, "herald exited non-zero on SIGTERM"
        delivered = {n: sc.delivered(n) for n in names}
        lost = sum(len(want - set(c)) for c in delivered.values())
        report("broker_restart", N + AFTER,
               {n: sum(c.values()) for n, c in delivered.items()},
               {n: duplicates(c) for n, c in delivered.items()}, 0, lost,
               f"{at_stop} delivered when the broker stopped")
        assert lost == 0
        print("broker_restart: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()
        if broker_down:
            broker_start()


if __name__ == "__main__":
    sys.exit(main())
