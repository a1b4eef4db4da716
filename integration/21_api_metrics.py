#!/usr/bin/env python3
"""The HTTP API of a running herald (issue 3): probes, /metrics through
`promtool check metrics`, /targets with secrets masked, /stats, and the
publish API with its bearer token, against real receivers. With a token
every endpoint but the probes needs it; a non-loopback listen address
without a token is refused at start (issue 13)."""
import json
import os
import shutil
import subprocess
import sys

from harness import (BIN, BROKERS, api_call, free_port, log, make_alerts,
                     Scenario, wait_until)

TOKEN = "s3cret-token-for-test"
SECRET = "bearer-secret-of-target"



def no_herald_env():
    """The environment without HERALD_* settings (HERALD_API_TOKEN would
    defeat the refusal under test)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith("HERALD_") or k == "HERALD_KAFKA_PORT"}


def main():
    sc = Scenario("api")
    try:
        topic = sc.topic(3)
        group = f"g-{sc.tag}"
        sc.receiver("good")
        sc.receiver("bad", rules=["/:status=500"])
        targets = sc.targets_file([
            ("good", f"http://127.0.0.1:{sc.receivers['good']['port']}/a",
             ["auth:", "  type: bearer", f"  token: {SECRET}"]),
            ("bad", f"http://127.0.0.1:{sc.receivers['bad']['port']}/a",
             ["retry:", "  max_attempts: 2", "  initial_backoff_ms: 10"]),
        ])
        # An open API on the network is refused before Kafka is contacted.
        p = subprocess.run([BIN, "run", "-b", BROKERS, "-t", topic,
                            "-g", group, "-c", targets, "--api-listen",
                            f"0.0.0.0:{free_port()}"],
                           capture_output=True, text=True, timeout=30,
                           env=no_herald_env())
        want = "is not a loopback address and no --api-token is set"
        assert p.returncode == 2 and want in p.stderr, \
            f"0.0.0.0 without a token: exit {p.returncode}: {p.stderr}"
        log("0.0.0.0 without a token refused: " + p.stderr.strip())

        api = f"127.0.0.1:{free_port()}"
        h = sc.herald(topic, group, targets,
                      extra=["--api-listen", api, "--api-token", TOKEN])
        wait_until(lambda: api_call(api, "GET", "/healthz")[0] == 200, 30,
                   "/healthz")
        wait_until(lambda: api_call(api, "GET", "/readyz")[0] == 200, 60,
                   "/readyz after the first assignment")

        alert = make_alerts(1, prefix="ApiTest")[0]
        code, _ = api_call(api, "POST", "/publish/all", {"alert": alert})
        assert code == 401, f"POST without token answered {code}"
        code, body = api_call(api, "POST", "/publish/all", {"alert": alert},
                          token=TOKEN)
        res = json.loads(body)
        log(f"/publish/all -> {code}: succeeded {res['succeeded']} failed "
            f"{res['failed']} partial {res['partial_success']}")
        assert res["succeeded"] == 1 and res["failed"] == 1
        assert res["partial_success"] is True
        by_name = {t["name"]: t for t in res["targets"]}
        assert by_name["good"]["outcome"] == "delivered"
        assert by_name["bad"]["http_status"] == 500
        assert by_name["bad"]["attempts"] == 2

        code, body = api_call(api, "POST", "/publish/multiple",
                          {"alert": alert, "targets": ["nope"]}, TOKEN)
        assert code == 404 and "error" in json.loads(body), body

        for path in ("/targets", "/stats", "/metrics"):
            code, _ = api_call(api, "GET", path)
            assert code == 401, f"GET {path} without token answered {code}"
        code, body = api_call(api, "GET", "/targets", token=TOKEN)
        assert code == 200 and SECRET not in body, "secret served"
        code, body = api_call(api, "GET", "/stats", token=TOKEN)
        stats = json.loads(body)
        assert code == 200 and "good" in stats["targets"], body

        sc.produce(topic, make_alerts(20, prefix="ApiFlow"))
        wait_until(lambda: sc.fully_committed(topic, group), 60,
                   "committed")
        code, metrics = api_call(api, "GET", "/metrics", token=TOKEN)
        assert code == 200 and "herald_consumer_messages_total" in metrics
        assert SECRET not in metrics and TOKEN not in metrics
        promtool = shutil.which("promtool")
        if promtool:
            p = subprocess.run([promtool, "check", "metrics"],
                               input=metrics, text=True,
                               capture_output=True)
            assert p.returncode == 0, f"promtool: {p.stdout}{p.stderr}"
            log("promtool check metrics: ok")
        else:
            log("promtool not installed: exposition check skipped")
        with open(f"{sc.dir}/herald.log") as f:
            logs = f.read()
        assert SECRET not in logs and TOKEN not in logs, "secret logged"
        assert sc.stop(h) == 0
        print("api: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
