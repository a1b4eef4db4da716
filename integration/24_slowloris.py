#!/usr/bin/env python3
"""Slow clients cannot stop the API (issue 13). 200 connections that send
one header line every 2 s (8 per address, the per-address limit, from
127.0.0.2 up, plus one more per address that must be refused) and 50 that
send nothing (from other addresses) are held open and reopened when cut,
for 15 s. Meanwhile /healthz and /metrics from 127.0.0.1 answer every probe
within 1 s, POST /publish with the token delivers, the read deadline
(--api-read-deadline-ms 4000) cuts the slow connections although they
never stop sending, and the process's threads stay as many as before."""
import json
import socket
import sys
import threading
import time

from harness import (api_call, free_port, log, make_alerts, Scenario,
                     wait_until)

TOKEN = "slowloris-test-token"
PER_IP = 8
SLOW_ADDRS = 25          # 127.0.0.2 .. 127.0.0.26: 200 slow connections
SILENT_ADDRS = 7         # 127.0.1.1 .. 127.0.1.7: 50 silent connections
SILENT = 50
LINE_EVERY_S = 2.0
ATTACK_S = 15.0
PROBE_BOUND_S = 1.0



class Attacker:
    """Keeps the slow and silent connections open, reopening what the
    server closes; counts the closes it sees."""

    def __init__(self, port):
        self.port = port
        self.stop = threading.Event()
        self.slow = []    # [source address, socket or None, lines sent]
        self.silent = []
        self.cut = 0      # slow connections the server closed
        self.refused = 0  # connections over the per-address limit closed
        for a in range(SLOW_ADDRS):
            for _ in range(PER_IP):
                self.slow.append([f"127.0.0.{2 + a}", None, 0])
        for i in range(SILENT):
            self.silent.append([f"127.0.1.{1 + i % SILENT_ADDRS}", None, 0])

    def connect(self, src):
        s = socket.socket()
        s.bind((src, 0))
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", self.port))
        except OSError:
            s.close()
            return None
        s.setblocking(False)
        return s

    def alive(self, s):
        try:
            return s.recv(1) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def over_limit(self):
        """One more connection per slow address: the server closes it."""
        extra = [self.connect(f"127.0.0.{2 + a}") for a in range(SLOW_ADDRS)]
        deadline = time.monotonic() + 5
        pending = [s for s in extra if s]
        while pending and time.monotonic() < deadline:
            still = []
            for s in pending:
                if self.alive(s):
                    still.append(s)
                else:
                    self.refused += 1
                    s.close()
            pending = still
            time.sleep(0.05)
        for s in pending:
            s.close()

    def run(self):
        while not self.stop.is_set():
            for c in self.slow:
                if c[1] is not None and not self.alive(c[1]):
                    c[1].close()
                    c[1] = None
                    self.cut += 1
                if c[1] is None:
                    c[1], c[2] = self.connect(c[0]), 0
                    if c[1] is None:
                        continue
                    line = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                else:
                    line = f"X-Slow-{c[2]}: {'a' * 20}\r\n".encode()
                try:
                    c[1].send(line)
                    c[2] += 1
                except OSError:
                    pass
            for c in self.silent:
                if c[1] is not None and not self.alive(c[1]):
                    c[1].close()
                    c[1] = None
                if c[1] is None:
                    c[1] = self.connect(c[0])
            self.stop.wait(LINE_EVERY_S)

    def open_count(self):
        return sum(1 for c in self.slow + self.silent if c[1] is not None)

    def close(self):
        for c in self.slow + self.silent:
            if c[1] is not None:
                c[1].close()


def proc_status(pid, key):
    """An integer field of /proc/PID/status ("Threads", "VmRSS" in KiB)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def main():
    sc = Scenario("slowloris")
    attacker = None
    try:
        topic = sc.topic(1)
        group = f"g-{sc.tag}"
        sc.receiver("good")
        targets = sc.targets_file([
            ("good", f"http://127.0.0.1:{sc.receivers['good']['port']}/a",
             [])])
        port = free_port()
        h, api = sc.herald_api(topic, group, targets, TOKEN,
                               ["--api-read-deadline-ms", "4000"], port)
        threads_before = proc_status(h.pid, "Threads")
        rss_before = proc_status(h.pid, "VmRSS")

        attacker = Attacker(port)
        th = threading.Thread(target=attacker.run, daemon=True)
        th.start()
        wait_until(lambda: attacker.open_count() >= 200, 20,
                   "200 attacking connections open")
        attacker.over_limit()
        log(f"attack: {attacker.open_count()} connections open, "
            f"{attacker.refused}/{SLOW_ADDRS} over the per-address limit "
            f"closed")
        assert attacker.refused == SLOW_ADDRS, \
            f"only {attacker.refused} connections over the limit closed"

        worst = 0.0
        probes = 0
        published = 0
        end = time.monotonic() + ATTACK_S
        alert = make_alerts(1, prefix="Slowloris")[0]
        while time.monotonic() < end:
            for path in ("/healthz", "/metrics"):
                t0 = time.monotonic()
                code, _ = api_call(api, "GET", path,
                               token=TOKEN if path == "/metrics" else None)
                took = time.monotonic() - t0
                worst = max(worst, took)
                probes += 1
                assert code == 200, f"{path} answered {code} under attack"
                assert took < PROBE_BOUND_S, f"{path} took {took:.3f} s"
            if published < 3:
                code, body = api_call(api, "POST", "/publish/all",
                                  {"alert": alert}, token=TOKEN)
                assert code == 200 and json.loads(body)["succeeded"] == 1, \
                    f"publish under attack: {code} {body}"
                published += 1
            time.sleep(0.25)
        threads_after = proc_status(h.pid, "Threads")
        rss_after = proc_status(h.pid, "VmRSS")
        code, metrics = api_call(api, "GET", "/metrics", token=TOKEN)
        cut_line = [ln for ln in metrics.splitlines()
                    if ln.startswith("herald_api_connections_cut_total")]
        log(f"{probes} probes, slowest {worst * 1000:.0f} ms; "
            f"{published} publishes delivered; slow connections cut "
            f"(client view) {attacker.cut}, {cut_line}; threads "
            f"{threads_before} -> {threads_after}; RSS {rss_before} -> "
            f"{rss_after} KiB")
        assert attacker.cut >= 100, \
            f"the read deadline cut only {attacker.cut} slow connections"
        assert threads_after == threads_before, "threads grew"
        attacker.stop.set()
        th.join()
        attacker.close()
        assert sc.stop(h) == 0
        print("slowloris: 1 passed, 0 failed")
        return 0
    finally:
        if attacker:
            attacker.stop.set()
            attacker.close()
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
