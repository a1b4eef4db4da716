"""Shared helpers of the integration scenarios (real broker, real receivers).

Environment (set by CTest, see CMakeLists.txt, or by hand):
  HERALD_BIN       path of the herald binary
  HERALD_RECEIVER  path of the herald-receiver binary
  HERALD_BROKERS   bootstrap servers of a running broker (integration/kafka)
Every process a scenario starts is stopped by Scenario.close(), also when
an assertion fails. Waiting is always on a condition with a deadline.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import ledger  # noqa: E402

BIN = os.environ.get("HERALD_BIN", os.path.join(HERE, "..", "build", "herald"))
RECEIVER = os.environ.get(
    "HERALD_RECEIVER", os.path.join(HERE, "..", "build", "herald-receiver"))
BROKERS = os.environ.get("HERALD_BROKERS", "127.0.0.1:9092")
KAFKA = os.path.join(HERE, "kafka")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_call(api, method, path, body=None, token=None, timeout=30):
    """(status, body text) of one request to herald's API at api
    ("ADDR:PORT"); body is sent as JSON, token as a bearer token; status 0
    when the connection fails."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"http://{api}{path}", data=data,
                                 method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError:
        return 0, ""


def wait_until(cond, timeout, what, interval=0.1):
    """Polls cond() until it returns a truthy value or timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def make_alerts(n, prefix="Alert", status="firing", severity="warning"):
    """n distinct Alertmanager alerts (one label set each)."""
    out = []
    for i in range(n):
        out.append({
            "status": status,
            "labels": {"alertname": f"{prefix}{i}", "instance": f"host-{i}",
                       "severity": severity},
            "annotations": {"summary": f"{prefix} {i} is {status}"},
            "startsAt": "2026-11-29T09:00:00Z",
            "generatorURL": "http://prometheus.local/graph",
        })
    return out


def fingerprint(labels):
    """Prometheus LabelSet.Fingerprint: FNV-1a 64, 0xff separators."""
    h = 14695981039346656037
    for name in sorted(labels):
        for part in (name, labels[name]):
            for b in part.encode():
                h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
            h = ((h ^ 0xFF) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


class Scenario:
    def __init__(self, name):
        self.name = name
        self.dir = tempfile.mkdtemp(prefix=f"herald-{name}-")
        self.procs = []
        self.receivers = {}
        self.tag = uuid.uuid4().hex[:8]
        log(f"scenario {name}: work dir {self.dir}")

    # -- Kafka -------------------------------------------------------------
    def topic(self, partitions=6):
        name = f"{self.name}-{self.tag}"
        subprocess.run([KAFKA, "create-topic", name, str(partitions)],
                       check=True, stdout=subprocess.DEVNULL,
                       env=self._kafka_env())
        return name

    def _kafka_env(self):
        env = dict(os.environ)
        port = BROKERS.rsplit(":", 1)[1].split(",")[0]
        env.setdefault("HERALD_KAFKA_PORT", port)
        return env

    def produce(self, topic, alerts, extra=()):
        path = os.path.join(self.dir, f"produce-{uuid.uuid4().hex[:6]}.jsonl")
        with open(path, "w") as f:
            for a in alerts:
                f.write((a if isinstance(a, str) else json.dumps(a)) + "\n")
        subprocess.run([BIN, "produce", "--brokers", BROKERS, "--topic",
                        topic, *extra, path], check=True,
                       stdout=subprocess.DEVNULL)

    def offsets(self, topic, group):
        out = subprocess.run([BIN, "offsets", "--brokers", BROKERS,
                              "--topic", topic, "--group", group, "--json"],
                             check=True, capture_output=True, text=True)
        return json.loads(out.stdout)

    def fully_committed(self, topic, group):
        o = self.offsets(topic, group)
        parts = o["partitions"]
        # An empty partition has nothing to commit (committed stays -1).
        return all(p["committed"] == p["end"] or
                   (p["committed"] in (None, -1) and p["end"] == p["low"])
                   for p in parts) and parts

    # -- receivers ---------------------------------------------------------
    def receiver(self, name, rules=()):
        ledger_path = os.path.join(self.dir, f"{name}.ledger")
        port_file = os.path.join(self.dir, f"{name}.port")
        args = [RECEIVER, "--listen", "127.0.0.1:0", "--ledger", ledger_path,
                "--name", name, "--port-file", port_file]
        for r in rules:
            args += ["--rule", r]
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.dir,
                                                      f"{name}.log"), "w"))
        self.procs.append(p)
        port = wait_until(lambda: _read(port_file), 10, f"receiver {name}")
        self.receivers[name] = {"port": int(port), "ledger": ledger_path,
                                "proc": p}
        return self.receivers[name]

    def delivered(self, name):
        """Counter of fingerprints answered 2xx by receiver name."""
        path = self.receivers[name]["ledger"]
        if not os.path.exists(path):
            return ledger.Counter()
        return ledger.delivered_fingerprints(ledger.load([path]))

    def targets_file(self, entries):
        """entries: list of (name, url, extra-yaml-lines)."""
        path = os.path.join(self.dir, "targets.yaml")
        with open(path, "w") as f:
            f.write("targets:\n")
            for name, url, extra in entries:
                f.write(f"  - name: {name}\n    type: webhook\n"
                        f"    url: {url}\n")
                for line in extra:
                    f.write(f"    {line}\n")
        return path

    # -- herald ------------------------------------------------------------
    def herald(self, topic, group, targets, extra=(), name="herald"):
        logf = open(os.path.join(self.dir, f"{name}.log"), "a")
        args = [BIN, "run", "--brokers", BROKERS, "--topic", topic,
                "--group", group, "--targets", targets, "--api-listen", "",
                "--log-format", "json", "--commit-interval-ms", "200",
                *extra]
        p = subprocess.Popen(args, stdout=logf, stderr=logf)
        self.procs.append(p)
        return p

    def herald_api(self, topic, group, targets, token, extra=(), port=None):
        """herald with its API on 127.0.0.1 (port, or a free one) and
        token, once /readyz answers 200: (process, "ADDR:PORT")."""
        api = f"127.0.0.1:{port or free_port()}"
        p = self.herald(topic, group, targets,
                        extra=["--api-listen", api, "--api-token", token,
                               *extra])
        wait_until(lambda: api_call(api, "GET", "/readyz")[0] == 200, 60,
                   "/readyz")
        return p, api

    def stop(self, p, sig=signal.SIGTERM, timeout=60):
        if p.poll() is None:
            p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            raise AssertionError(f"process {p.args[:2]} did not stop in "
                                 f"{timeout}s after {sig}")

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


# -- Added for the delivery-contract scenarios (3x_*.py) -------------------
# Everything below is appended; the functions above keep their signatures.

def dlq_records(topic, dlq_topic=None):
    """Every record of the dead-letter topic, read by `herald dlq show
    --json` (assign only: joins no group, commits nothing). Returns a list
    of dicts {partition, offset, key, value, headers}; [] when the topic
    does not exist yet."""
    out = subprocess.run([BIN, "dlq", "show", "--brokers", BROKERS,
                          "--dlq-topic", dlq_topic or f"{topic}.dlq",
                          "--json"], capture_output=True, text=True,
                         errors="surrogateescape", timeout=120)
    if out.returncode != 0:
        if "no such topic" in out.stderr.lower() or \
                "unknown topic" in out.stderr.lower() or \
                "not found" in out.stderr.lower():
            return []
        raise AssertionError(f"herald dlq show failed: {out.stderr}")
    return [json.loads(line) for line in out.stdout.splitlines()
            if line.strip()]


def dlq_legs(records):
    """Set of (fingerprint, target) pairs dead-lettered for a target, from
    dlq_records(); the fingerprint is the record key."""
    return {(r["key"], r["headers"].get("herald-target"))
            for r in records if r["headers"].get("herald-target")}


def end_offsets(sc, topic, group):
    """{partition: end offset} of topic."""
    return {p["partition"]: p["end"]
            for p in sc.offsets(topic, group)["partitions"]}


def committed_offsets(sc, topic, group):
    """{partition: committed offset (-1 when none)} of topic for group."""
    return {p["partition"]: p["committed"]
            for p in sc.offsets(topic, group)["partitions"]}


def duplicates(counter):
    """Deliveries beyond the first, summed over fingerprints."""
    return sum(n - 1 for n in counter.values() if n > 1)


def ledger_records(sc, name):
    """The raw ledger records of receiver name, oldest first."""
    path = sc.receivers[name]["ledger"]
    if not os.path.exists(path):
        return []
    return ledger.load([path])


def partition_of_key(key, partitions):
    """Partition librdkafka's default partitioner (consistent_random:
    CRC32 of the key modulo the count) gives a keyed message."""
    import zlib
    return zlib.crc32(key.encode()) % partitions


def report(name, produced, delivered, dups, in_dlq, lost, extra=""):
    """Prints a scenario's figures in one block (the issue's Proof)."""
    log(f"{name} figures: produced {produced}; delivered per target "
        f"{delivered}; duplicates {dups}; in DLQ {in_dlq}; lost {lost}"
        + (f"; {extra}" if extra else ""))


def broker_restart(timeout=180):
    """Stops the scenario's broker and starts it again on the same port
    and state, waiting until it is ready (integration/kafka start waits)."""
    env = Scenario._kafka_env(None)
    subprocess.run([KAFKA, "stop"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=timeout)
    subprocess.run([KAFKA, "start"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=timeout)


def broker_stop(timeout=120):
    env = Scenario._kafka_env(None)
    subprocess.run([KAFKA, "stop"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=timeout)


def broker_start(timeout=180):
    env = Scenario._kafka_env(None)
    subprocess.run([KAFKA, "start"], check=True, env=env,
                   stdout=subprocess.DEVNULL, timeout=timeout)


def control_rule(sc, name, spec):
    """Sets a rule on receiver name at runtime (POST /_control/rule)."""
    port = sc.receivers[name]["port"]
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_control/rule",
                                 data=spec.encode(), method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status


def log_lines(sc, name):
    """JSON log lines of the herald started with name (non-JSON skipped)."""
    path = os.path.join(sc.dir, f"{name}.log")
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass
    except OSError:
        pass
    return out


def produce_raw(sc, topic, lines, extra=()):
    """Produces lines (bytes, one record each, no newline inside) with
    `herald produce` and the given extra flags (e.g. --allow-invalid,
    --null-values). Returns the tool's stderr text."""
    path = os.path.join(sc.dir, f"produce-{uuid.uuid4().hex[:6]}.raw")
    with open(path, "wb") as f:
        for line in lines:
            f.write(line + b"\n")
    out = subprocess.run([BIN, "produce", "--brokers", BROKERS, "--topic",
                          topic, *extra, path], capture_output=True)
    if out.returncode not in (0, 3):
        raise AssertionError(f"herald produce failed: {out.stderr!r}")
    return out.stderr.decode(errors="replace")


def create_topic(sc, name, partitions, configs=()):
    """Creates topic name with partitions partitions and the topic configs
    ("key=value", e.g. "max.message.bytes=3000000") through
    integration/kafka; no error if it exists."""
    subprocess.run([KAFKA, "create-topic", name, str(partitions), *configs],
                   check=True, stdout=subprocess.DEVNULL,
                   env=sc._kafka_env())
    return name
