#!/usr/bin/env python3
"""`herald check-config FILE --route LABELS`: the targets an alert with
those labels goes to, why the others do not, and the exit status (0 when
a target takes it, 1 when none does, 2 for bad labels). Needs no broker.

Environment: HERALD_BIN, the herald binary (default build/herald)."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("HERALD_BIN", os.path.join(HERE, "..", "build", "herald"))

TARGETS = r"""targets:
  - name: ops
    type: webhook
    url: http://127.0.0.1:9/ops
    matchers:
      - '{instance=~"host\d+", severity="critical"}'
  - name: off
    type: webhook
    url: http://127.0.0.1:9/off
    enabled: false
  - name: db
    type: webhook
    url: http://127.0.0.1:9/db
    matchers: ['team=~"(?i)db|web"']
"""

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def herald(args, route_env=None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}
    if route_env is not None:
        env["HERALD_ROUTE"] = route_env
    p = subprocess.run([BIN, "check-config"] + args, env=env,
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout, p.stderr


def main():
    with tempfile.NamedTemporaryFile("w", suffix=".yaml",
                                     delete=False) as f:
        f.write(TARGETS)
        path = f.name
    try:
        rc, out, err = herald(
            [path, "--route", 'instance="host12", severity="critical"'])
        check(rc == 0, f"host12 critical: exit {rc}, stderr {err!r}")
        check(out == "ops: receives the alert\n"
                     "off: does not: disabled (enabled: false)\n"
                     "db: does not: matcher team=~\"(?i)db|web\" does not "
                     "match: label team is not set\n"
                     "1 of 3 targets receive the alert\n",
              f"host12 critical: got {out!r}")

        rc, out, err = herald([path, "-r", '{instance="hostdd", team="DB"}'])
        check(rc == 0, f"hostdd DB: exit {rc}")
        check("ops: does not: matcher instance=~" in out
              and 'instance is "hostdd"' in out
              and "db: receives the alert\n" in out,
              f"hostdd DB: got {out!r}")

        rc, out, err = herald([path, "--route", 'instance="hostdd"'])
        check(rc == 1, f"no target: exit {rc}")
        check(out.endswith("0 of 3 targets receive the alert\n"),
              f"no target: got {out!r}")

        # HERALD_ROUTE stands for --route; the flag wins over it.
        rc, out, _ = herald([path], route_env='instance="host1", '
                                              'severity="critical"')
        check(rc == 0 and "ops: receives the alert" in out,
              f"HERALD_ROUTE: exit {rc}, got {out!r}")
        rc, out, _ = herald([path, "--route", "team=web"],
                            route_env='instance="host1", severity="critical"')
        check(rc == 0 and "db: receives the alert" in out
              and "ops: does not" in out,
              f"flag over HERALD_ROUTE: exit {rc}, got {out!r}")

        # Labels are name="value"; a regex, a repeat or a bad list is 2.
        for bad, why in (('a=~"x"', 'labels are given as name="value"'),
                         ("a=1, a=2", "label a is given twice"),
                         ('a="x', "unescaped double quote")):
            rc, out, err = herald([path, "--route", bad])
            check(rc == 2 and why in err,
                  f"--route {bad!r}: exit {rc}, stderr {err!r}")

        # Without --route the configuration is printed as before.
        rc, out, _ = herald([path])
        check(rc == 0 and "\ntargets:\n" in out,
              f"no --route: exit {rc}, got {out[:80]!r}")
    finally:
        os.unlink(path)
    for f in failures:
        print("FAIL:", f)
    print(f"check_config_route: {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
