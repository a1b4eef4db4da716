#!/usr/bin/env python3
"""Every `herald run` option through its environment variable, checked
with `herald run --print-config` (which contacts no broker, so this also
runs as a unit test).

The option list comes from `herald run --help`, so a new option cannot be
missed: each option must name its environment variable there (the test
fails otherwise), must appear in --print-config with that variable as its
source, and must be overridden by its flag. Secrets (--api-token and
librdkafka passwords from -X or HERALD_KAFKA_*) must print as ***.

Environment: HERALD_BIN, the herald binary (default build/herald)."""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("HERALD_BIN", os.path.join(HERE, "..", "build", "herald"))
# Options about the command itself, not settings.
META = {"help", "print-config"}
SECRET_ENV = "env-s3cret-token"
SECRET_FLAG = "flag-s3cret-token"
KAFKA_SECRET_ENV = "kafka-env-passw0rd"
KAFKA_SECRET_FLAG = "kafka-flag-passw0rd"

failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def clean_env():
    """The caller's environment without any HERALD_ variable."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HERALD_")}


def herald(args, env):
    p = subprocess.run([BIN, "run", *args], env=env, capture_output=True,
                       text=True, timeout=60)
    return p


def parse_help(text):
    """{name: {"env": VAR or None, "default": str or None, "range": (lo, hi),
    "words": [...], "arg": METAVAR or None}} from `herald run --help`."""
    options = {}
    current = None
    facts = ""
    flag_line = re.compile(
        r"^  (?:-\w, |    )--([a-z0-9-]+)(?:, --[a-z0-9-]+)?(?: (\S+))?")

    def close():
        if current is None:
            return
        opt = options[current]
        m = re.search(r"\benv (HERALD_[A-Z0-9_<>]+)", facts)
        opt["env"] = m.group(1) if m else None
        m = re.search(r"default (\"[^\"]*\"|\S+?)[,)]", facts)
        opt["default"] = m.group(1) if m else None
        m = re.search(r"range (-?\d+)\.\.(-?\d+)", facts)
        opt["range"] = (int(m.group(1)), int(m.group(2))) if m else None
        m = re.search(r"one of ([\w,\s]+)\)", facts)
        opt["words"] = re.split(r",\s*", m.group(1).strip()) if m else None

    for line in text.splitlines():
        m = flag_line.match(line)
        if m:
            close()
            current = m.group(1)
            options[current] = {"arg": m.group(2)}
            facts = ""
            continue
        if current and re.match(r"^\s{30}", line):
            facts += " " + line.strip()
        elif current and not line.strip():
            close()
            current = None
    close()
    return options


def parse_print(text):
    """{name: (value, source)} and the -X lines {prop: (value, source)}."""
    settings, props = {}, {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        m = re.match(r"^(-X )?(\S+) = (.*?)  # (.*)$", line)
        assert m, f"malformed --print-config line: {line!r}"
        value = m.group(3)
        if value.startswith('"') and value.endswith('"'):
            value = value[1:-1]
        (props if m.group(1) else settings)[m.group(2)] = (value, m.group(4))
    return settings, props


def pick(name, opt, avoid):
    """A valid value for the option that differs from its default and from
    avoid (the environment's value, when picking the flag's)."""
    default = (opt["default"] or "").strip('"')
    if name == "api-token":
        return SECRET_FLAG if avoid else SECRET_ENV
    if opt["range"]:
        lo, hi = opt["range"]
        return str(next(c for c in (hi, lo, lo + 1)
                        if str(c) not in (default, avoid)))
    if opt["words"]:
        # Words in --help order; an alias (warning) prints as its first
        # spelling (warn), so aliases listed last are never picked.
        return next(w for w in opt["words"] if w not in (default, avoid))
    if opt["arg"] is None:  # a boolean switch
        return "yes"
    return f"{'flag' if avoid else 'env'}-{name}"


def main():
    p = herald(["--help"], clean_env())
    check(p.returncode == 0, f"herald run --help: exit {p.returncode}")
    options = parse_help(p.stdout)
    check(len(options) >= 20, f"only {len(options)} options in --help")
    settings_opts = {n: o for n, o in options.items() if n not in META}
    for name, opt in settings_opts.items():
        check(opt["env"] is not None, f"--{name} has no environment variable")
        if name == "property":
            check(opt["env"] == "HERALD_KAFKA_<PROPERTY>",
                  f"-X documents {opt['env']}")
            continue
        if opt["env"]:
            want = "HERALD_" + name.upper().replace("-", "_")
            check(opt["env"] == want, f"--{name}: env {opt['env']} != {want}")
    if failures:
        return

    # 1. Every option from its environment variable.
    env = clean_env()
    env_values = {}
    for name, opt in settings_opts.items():
        if name == "property":
            continue
        env_values[name] = pick(name, opt, None)
        env[opt["env"]] = env_values[name]
    env["HERALD_KAFKA_SASL_PASSWORD"] = KAFKA_SECRET_ENV
    env["HERALD_KAFKA_CLIENT_ID"] = "client-from-env"
    env["HERALD_KAFKA_SESSION_TIMEOUT_MS"] = "12345"
    env["HERALD_KAFKA_PORT"] = "39092"  # integration/kafka's, not librdkafka's
    p = herald(["--print-config"], env)
    check(p.returncode == 0, f"--print-config (env): exit {p.returncode}: "
                             f"{p.stderr}")
    settings, props = parse_print(p.stdout)
    for name, opt in settings_opts.items():
        if name == "property":
            continue
        got = settings.get(name)
        want = "***" if name == "api-token" else env_values[name]
        if opt["arg"] is None:  # a boolean switch prints true/false
            want = "true"
        check(got == (want, f"env {opt['env']}"),
              f"--{name} from {opt['env']}={env_values[name]}: got {got}")
    for name in settings:
        check(name in options, f"--print-config shows {name}, --help not")
    check(props.get("sasl.password") ==
          ("***", "env HERALD_KAFKA_SASL_PASSWORD"),
          f"sasl.password: {props.get('sasl.password')}")
    check(props.get("client.id") ==
          ("client-from-env", "env HERALD_KAFKA_CLIENT_ID"),
          f"client.id: {props.get('client.id')}")
    check(props.get("session.timeout.ms") ==
          ("12345", "env HERALD_KAFKA_SESSION_TIMEOUT_MS"),
          f"session.timeout.ms: {props.get('session.timeout.ms')}")
    check("port" not in props, "HERALD_KAFKA_PORT became a property")
    check("# ignored HERALD_KAFKA_PORT" in p.stdout,
          "HERALD_KAFKA_PORT not listed as ignored")
    check(SECRET_ENV not in p.stdout + p.stderr, "--api-token printed")
    check(KAFKA_SECRET_ENV not in p.stdout + p.stderr, "sasl.password printed")

    # 2. Every flag wins over its environment variable; -X over
    #    HERALD_KAFKA_*.
    args = ["--print-config", "-X", f"sasl.password={KAFKA_SECRET_FLAG}",
            "-X", "session.timeout.ms=6000"]
    flag_values = {}
    for name, opt in settings_opts.items():
        if name == "property":
            continue
        if opt["arg"] is None:  # a switch takes no value
            flag_values[name] = "true"
            args.append(f"--{name}")
            continue
        flag_values[name] = pick(name, opt, env_values[name])
        args += [f"--{name}", flag_values[name]]
    p = herald(args, env)
    check(p.returncode == 0, f"--print-config (flags): exit {p.returncode}: "
                             f"{p.stderr}")
    settings, props = parse_print(p.stdout)
    for name in flag_values:
        got = settings.get(name)
        want = "***" if name == "api-token" else flag_values[name]
        check(got == (want, "flag"),
              f"--{name} {flag_values[name]} over the env: got {got}")
    check(props.get("sasl.password") == ("***", "flag"),
          f"-X sasl.password: {props.get('sasl.password')}")
    check(props.get("session.timeout.ms") == ("6000", "flag"),
          f"-X session.timeout.ms: {props.get('session.timeout.ms')}")
    check(props.get("client.id") ==
          ("client-from-env", "env HERALD_KAFKA_CLIENT_ID"),
          "client.id from the env lost")
    for secret in (SECRET_ENV, SECRET_FLAG, KAFKA_SECRET_ENV,
                   KAFKA_SECRET_FLAG):
        check(secret not in p.stdout + p.stderr, f"secret {secret} printed")

    # 3. An empty variable is the empty value: HERALD_API_LISTEN= turns
    #    the API off as --api-listen "" does; defaults otherwise.
    env = clean_env()
    env.update(HERALD_BROKERS="b:9092", HERALD_TOPIC="t", HERALD_GROUP="g",
               HERALD_TARGETS="targets.yaml", HERALD_API_LISTEN="")
    p = herald(["--print-config"], env)
    settings, _ = parse_print(p.stdout)
    check(settings.get("api-listen") == ("", "env HERALD_API_LISTEN"),
          f"empty HERALD_API_LISTEN: {settings.get('api-listen')}")
    check(settings.get("window", ("", ""))[1] == "default",
          f"window without env: {settings.get('window')}")

    # 4. A bad value names the variable; the flag's message is unchanged.
    env["HERALD_WINDOW"] = "x"
    p = herald(["--print-config"], env)
    check(p.returncode == 2 and
          'herald: HERALD_WINDOW: expected an integer in 1..1000000, got "x"'
          in p.stderr, f"bad HERALD_WINDOW: {p.returncode} {p.stderr}")
    p = herald(["--print-config", "--window", "0"], env)
    check(p.returncode == 2 and
          'herald: --window: expected an integer in 1..1000000, got "0"'
          in p.stderr, f"bad --window: {p.returncode} {p.stderr}")


if __name__ == "__main__":
    main()
    for f in failures:
        print(f"FAIL: {f}", file=sys.stderr)
    if not failures:
        print("options: every run option has an environment variable; "
              "env, flags, precedence and masking checked")
    sys.exit(1 if failures else 0)
