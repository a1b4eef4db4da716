#!/usr/bin/env python3
"""No output surface shows a secret (issue 13): a targets.yaml with literal
secrets of every kind (URL userinfo and query, a Slack webhook path, a
Telegram bot token in a path, header values, bearer, basic and header
auth, a PagerDuty routing key, a Rootly token) is loaded by check-config
and by a running herald at debug level, which publishes alerts to every
enabled target, one of them on a closed port (curl errors). None of the
secrets appears in check-config's output, GET /targets, GET /stats, a
publish result, or the log."""
import json
import subprocess
import sys

from harness import (BIN, api_call, free_port, log, make_alerts, Scenario,
                     wait_until)

TOKEN = "secrets-test-api-token"
SECRETS = ["leakuser", "leakpw", "leakquery", "leakslackpath",
           "leaktelegram", "leakauthhdr", "leakapikey", "leakbearer",
           "leakbasic", "leakhdrvalue", "leakrouting", "leakrootly",
           "leakclosedpw", "leakclosedq", TOKEN]



def leaks(text):
    return [s for s in SECRETS if s in text]


def main():
    sc = Scenario("secrets")
    try:
        topic = sc.topic(1)
        group = f"g-{sc.tag}"
        port = sc.receiver("good")["port"]
        closed = free_port()
        path = f"{sc.dir}/targets.yaml"
        with open(path, "w") as f:
            f.write(f"""targets:
  - name: a
    type: webhook
    url: http://leakuser:leakpw@127.0.0.1:{port}/a?token=leakquery
    headers:
      Authorization: Bearer leakauthhdr
      X-Api-Key: leakapikey
      Content-Type: application/json
    auth: {{type: bearer, token: leakbearer}}
  - name: b
    type: webhook
    url: http://127.0.0.1:{port}/b
    auth: {{type: basic, username: bob, password: leakbasic}}
  - name: c
    type: webhook
    url: http://127.0.0.1:{port}/c
    auth: {{type: header, header: X-Token, value: leakhdrvalue}}
  - name: closed
    type: webhook
    url: http://u:leakclosedpw@127.0.0.1:{closed}/x?k=leakclosedq
    retry: {{max_attempts: 1}}
  - name: tg
    type: webhook
    enabled: false
    url: https://api.telegram.org/botleaktelegram/sendMessage
  - name: s
    type: slack
    enabled: false
    url: https://hooks.slack.com/services/T0/B0/leakslackpath
  - name: pd
    type: pagerduty
    enabled: false
    routing_key: leakrouting
  - name: ro
    type: rootly
    enabled: false
    token: leakrootly
""")
        p = subprocess.run([BIN, "check-config", path], capture_output=True,
                           text=True, timeout=30)
        assert p.returncode == 0, f"check-config: {p.stdout}{p.stderr}"
        assert "hooks.slack.com" in p.stdout, p.stdout
        assert not leaks(p.stdout + p.stderr), \
            f"check-config shows {leaks(p.stdout + p.stderr)}"

        h, api = sc.herald_api(topic, group, path, TOKEN,
                               ["--log-level", "debug"])
        code, body = api_call(api, "POST", "/publish/all",
                              {"alert": make_alerts(1, prefix="Leak")[0]},
                              token=TOKEN)
        res = json.loads(body)
        outcomes = {t["name"]: t for t in res["targets"]}
        assert outcomes["a"]["outcome"] == "delivered", body
        assert outcomes["closed"]["outcome"] != "delivered", body
        assert not leaks(body), f"publish result shows {leaks(body)}"
        sc.produce(topic, make_alerts(3, prefix="LeakFlow"))
        wait_until(lambda: sc.fully_committed(topic, group), 90, "committed")
        for path_ in ("/targets", "/stats"):
            code, body = api_call(api, "GET", path_, token=TOKEN)
            assert code == 200, f"GET {path_}: {code}"
            assert not leaks(body), f"GET {path_} shows {leaks(body)}"
        assert sc.stop(h) == 0
        with open(f"{sc.dir}/herald.log") as f:
            logs = f.read()
        assert '"level":"debug"' in logs or "debug" in logs, "no debug log"
        assert not leaks(logs), f"the log shows {leaks(logs)}"
        log(f"check-config, /targets, /stats, a publish result and "
            f"{len(logs.splitlines())} log lines: none of {len(SECRETS)} "
            f"secrets shown")
        print("secrets: 1 passed, 0 failed")
        return 0
    finally:
        sc.close()


if __name__ == "__main__":
    sys.exit(main())
