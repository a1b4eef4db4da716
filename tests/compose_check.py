#!/usr/bin/env python3
"""Static check of docker-compose.yml and the Dockerfile (no Docker engine
here): services, images, ports, environment, healthchecks, and that the
herald service can be scaled (no fixed host port, no container_name)."""
import os
import sys

import yaml

ROOT = os.environ.get("HERALD_SOURCE_DIR",
                      os.path.join(os.path.dirname(__file__), ".."))
failures = []


def check(cond, msg):
    if not cond:
        failures.append(msg)


def kafka_version():
    with open(os.path.join(ROOT, "integration", "kafka")) as f:
        for line in f:
            if line.startswith("KAFKA_VERSION_PIN="):
                return line.split("=", 1)[1].split()[0].strip('"')
    return None


with open(os.path.join(ROOT, "docker-compose.yml")) as f:
    doc = yaml.safe_load(f)
svc = doc.get("services", {})
for name in ("kafka", "topic-init", "herald", "receiver-ops",
             "receiver-audit", "receiver-team"):
    check(name in svc, f"service {name} missing")

version = kafka_version()
check(version is not None, "integration/kafka pins no KAFKA_VERSION")
k = svc.get("kafka", {})
check(k.get("image") == f"apache/kafka:{version}",
      f"kafka image {k.get('image')} is not apache/kafka:{version}")
env = k.get("environment", {})
check(env.get("KAFKA_PROCESS_ROLES") == "broker,controller", "not KRaft")
for key in ("KAFKA_NODE_ID", "KAFKA_LISTENERS", "KAFKA_ADVERTISED_LISTENERS",
            "KAFKA_CONTROLLER_QUORUM_VOTERS",
            "KAFKA_CONTROLLER_LISTENER_NAMES"):
    check(key in env, f"kafka env {key} missing")
check("healthcheck" in k, "kafka has no healthcheck")

ti = svc.get("topic-init", {})
check(ti.get("depends_on", {}).get("kafka", {}).get("condition")
      == "service_healthy", "topic-init must wait for a healthy broker")
check("--partitions 6" in " ".join(ti.get("entrypoint", [])),
      "topic-init must create 6 partitions")

h = svc.get("herald", {})
check(h.get("build", {}).get("context") == ".", "herald not built from .")
check("ports" not in h, "herald maps a host port: --scale would collide")
check("container_name" not in h, "herald has a container_name: no --scale")
henv = h.get("environment", {})
for key in ("HERALD_BROKERS", "HERALD_TOPIC", "HERALD_GROUP",
            "HERALD_TARGETS"):
    check(key in henv, f"herald env {key} missing")
check(henv.get("HERALD_BROKERS") == "kafka:9092", "brokers not kafka:9092")
check("healthcheck" in h, "herald has no healthcheck")
deps = h.get("depends_on", {})
check(deps.get("topic-init", {}).get("condition")
      == "service_completed_successfully", "herald must wait for topics")
for v in h.get("volumes", []):
    src = v.split(":", 1)[0]
    check(os.path.exists(os.path.join(ROOT, src)), f"volume {src} missing")

# Receivers answer where the compose targets file points.
with open(os.path.join(ROOT, "deploy", "targets.compose.yaml")) as f:
    tdoc = yaml.safe_load(f)
for t in tdoc["targets"]:
    host_port = t["url"].split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.split(":")
    check(host in svc, f"target {t['name']} points at unknown service {host}")
    cmd = " ".join(svc.get(host, {}).get("command", []))
    check(f":{port}" in cmd, f"service {host} does not listen on {port}")
    check("healthcheck" in svc.get(host, {}), f"{host} has no healthcheck")

# The API listens on 0.0.0.0: its token comes from an env file that is
# not committed, never from the compose file or an open API.
check("HERALD_API_TOKEN" not in henv, "API token written in compose")
env_files = [e["path"] if isinstance(e, dict) else e
             for e in h.get("env_file", [])]
check("./deploy/herald.env" in env_files, "herald has no token env file")
with open(os.path.join(ROOT, ".gitignore")) as f:
    check("deploy/herald.env" in f.read().split(),
          "deploy/herald.env is not ignored by git")
with open(os.path.join(ROOT, "deploy", "herald.env.example")) as f:
    check("HERALD_API_TOKEN=" in f.read(), "no HERALD_API_TOKEN example")
check("--insecure-no-token" not in h.get("command", []),
      "compose runs an open API")

with open(os.path.join(ROOT, "Dockerfile")) as f:
    dockerfile = f.read()
check("AS runtime" in dockerfile, "Dockerfile has no runtime stage")
check("ENTRYPOINT [\"herald\"]" in dockerfile, "Dockerfile entrypoint")
check("--insecure-no-token" not in dockerfile, "Dockerfile runs an open API")
check("HERALD_API_TOKEN" in dockerfile,
      "Dockerfile does not say where the API token comes from")

for msg in failures:
    print("FAIL:", msg)
print(f"compose: {0 if failures else 1} passed, {1 if failures else 0} failed")
sys.exit(1 if failures else 0)
