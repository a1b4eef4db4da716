#!/usr/bin/env python3
"""targets.yaml hot reload in a running herald (issue 5): a changed file is
picked up, a bad file keeps the running targets, SIGHUP reloads."""
import os
import signal
import sys

from harness import Scenario, fingerprint, log, make_alerts, wait_until


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def entry(sc, name):
    return (f"  - name: {name}\n    type: webhook\n"
            f"    url: http://127.0.0.1:{sc.receivers[name]['port']}/x\n")


def main():
    sc = Scenario("reload")
    try:
        topic = sc.topic(3)
        group = f"g-{sc.tag}"
        sc.receiver("a")
        sc.receiver("b")
        path = os.path.join(sc.dir, "targets.yaml")
        write(path, "targets:\n" + entry(sc, "a"))
        h = sc.herald(topic, group, path)
        logpath = os.path.join(sc.dir, "herald.log")

        def log_count(text):
            with open(logpath) as f:
                return f.read().count(text)

        def batch(prefix, want_a, want_b):
            alerts = make_alerts(10, prefix=prefix)
            fps = {fingerprint(x["labels"]) for x in alerts}
            sc.produce(topic, alerts)
            wait_until(lambda: sc.fully_committed(topic, group), 60,
                       f"{prefix} committed")
            got_a = fps <= set(sc.delivered("a"))
            got_b = fps <= set(sc.delivered("b"))
            none_b = not (fps & set(sc.delivered("b")))
            none_a = not (fps & set(sc.delivered("a")))
            assert got_a == want_a and (got_a or none_a), f"{prefix}: a"
            assert got_b == want_b and (got_b or none_b), f"{prefix}: b"
            log(f"{prefix}: a={'yes' if got_a else 'no'} "
                f"b={'yes' if got_b else 'no'}")

        batch("Before", True, False)
        write(path, "targets:\n" + entry(sc, "a") + entry(sc, "b"))
        wait_until(lambda: log_count("reloaded") >= 1, 30,
                   "file change picked up")
        batch("Added", True, True)
        write(path, "targets:\n  - name: a\n    type: nope\n")
        wait_until(lambda: log_count("reload rejected") >= 1, 30,
                   "bad file rejected")
        batch("BadFile", True, True)
        # SIGHUP: reload now, without waiting for the file watch.
        write(path, "targets:\n" + entry(sc, "b"))
        h.send_signal(signal.SIGHUP)
        wait_until(lambda: log_count("reloaded") >= 2, 30, "SIGHUP reload")
        batch("OnlyB", False, True)
        assert sc.stop(h) == 0
        print("reload: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
