#!/usr/bin/env python3
"""The API contract test: a real ephd checked against docs/openapi.json by schemathesis.

Starts ephd on 127.0.0.1:0 with fresh SQLite state and a write token, creates an environment so
the stateful phase has something to work on, then runs `schemathesis run --checks all` bounded
to a few examples per operation. The event stream never ends, so schemathesis skips it; this
script reads it itself and validates every event's data against the document's Environment
schema. Exits non-zero on any response that contradicts the document.

  EPH_BINARY_DIR=build/dev python3 test/e2e/openapi_contract.py

schemathesis comes from scripts/install-deps (a venv under ${EPH_CACHE_DIR:-~/.cache/eph}).
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.path.join(REPO, "docs", "openapi.json")
CACHE = os.environ.get("EPH_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "eph")
MAX_EXAMPLES = os.environ.get("EPH_CONTRACT_MAX_EXAMPLES", "20")
# A fixed seed, so CI explores the same cases on every run; set EPH_CONTRACT_SEED to explore
# others, or to "random" for schemathesis's own (scripts/contract-explore, which reports only).
SEED = os.environ.get("EPH_CONTRACT_SEED", "1")
# The venv schemathesis runs from: the pinned one scripts/install-deps makes, unless told.
VENV = os.environ.get("EPH_CONTRACT_VENV") or os.path.join(CACHE, "venv")


def find_schemathesis():
    for candidate in (os.path.join(VENV, "bin", "schemathesis"), shutil.which("schemathesis")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    sys.exit("schemathesis is not installed: run scripts/install-deps (it installs it into "
             f"{CACHE}/venv)")


def start_ephd(binary_dir, tmp):
    ephd = os.path.join(binary_dir, "cmd", "ephd", "ephd")
    state = f"sqlite:{tmp}/eph.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPH_")}
    env.update(EPH_GITHUB_API_URL="http://127.0.0.1:9", EPH_GITHUB_WEBHOOK_SECRET="contract")
    out = subprocess.run([ephd, "token", "create", "--name", "contract", "--scope", "write",
                          "--state", state], env=env, check=True, capture_output=True, text=True)
    token = out.stdout.strip().splitlines()[-1].split()[-1]
    log = open(os.path.join(tmp, "ephd.log"), "w+")
    child = subprocess.Popen([ephd, "--listen", "127.0.0.1:0", "--state", state], env=env,
                             stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 20
    while time.time() < deadline:
        log.seek(0)
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", log.read())
        if m:
            return child, f"http://127.0.0.1:{m.group(1)}", token, log
        if child.poll() is not None:
            break
        time.sleep(0.05)
    log.seek(0)
    child.kill()
    sys.exit("ephd did not start:\n" + log.read())


def call(base, token, method, path, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {token}",
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as res:
        return res.status, json.loads(res.read())


def check_event_stream(base, token, schema_doc):
    """Reads the replayed event stream and validates each event against Environment."""
    import jsonschema_rs  # a dependency of schemathesis, so present in its venv
    validator = jsonschema_rs.Draft202012Validator({"$ref": "#/components/schemas/Environment",
                                                 "components": schema_doc["components"]})
    req = urllib.request.Request(base + "/api/v1/events", headers={
        "Authorization": f"Bearer {token}", "Last-Event-ID": "0"})
    problems, events = [], 0
    with urllib.request.urlopen(req, timeout=10) as res:
        if res.status != 200 or not res.headers.get("Content-Type", "").startswith("text/event-stream"):
            return [f"GET /api/v1/events answered {res.status} {res.headers.get('Content-Type')}"]
        buffer = ""
        deadline = time.time() + 5
        while events < 2 and time.time() < deadline:
            buffer += res.read1(65536).decode()
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line and not line.startswith(":"))
                if not fields:
                    continue
                events += 1
                if fields.get("event") != "environment" or not fields.get("id", "").isdigit():
                    problems.append(f"event without id/event fields: {block!r}")
                for error in validator.iter_errors(json.loads(fields.get("data", "null"))):
                    problems.append(f"event {fields.get('id')}: {error}")
    if events < 2:
        problems.append(f"expected at least 2 replayed events, got {events}")
    return problems


def main():
    # jsonschema comes with schemathesis: run under its venv's interpreter.
    venv_python = os.path.join(VENV, "bin", "python")
    if os.path.realpath(sys.prefix) != os.path.realpath(VENV) and os.access(venv_python, os.X_OK):
        os.execv(venv_python, [venv_python] + sys.argv)
    binary_dir = os.environ.get("EPH_BINARY_DIR") or sys.exit("EPH_BINARY_DIR is not set")
    schemathesis = find_schemathesis()
    tmp = tempfile.mkdtemp(prefix="eph-contract-")
    child, base, token, log = start_ephd(binary_dir, tmp)
    try:
        for pr in (7, 8):
            status, _ = call(base, token, "POST", "/api/v1/environments", {"project": "acme/shop", "pr": pr})
            assert status == 201, status
        with open(DOC) as f:
            doc = json.load(f)
        problems = check_event_stream(base, token, doc)
        for p in problems:
            print("event stream:", p)
        # use_after_free is left out on purpose: a deleted environment stays readable (destroying,
        # then destroyed, with its history), as the document says.
        rc = subprocess.run([schemathesis, "run", DOC, "--url", base,
                             "-H", f"Authorization: Bearer {token}",
                             "--checks", "all", "--exclude-checks", "use_after_free",
                             "--exclude-path", "/api/v1/events",
                             "--max-examples", MAX_EXAMPLES, "--workers", "1",
                             *([] if SEED == "random" else ["--seed", SEED]),
                             "--max-response-time", "5"], cwd=tmp).returncode
        if rc != 0 or problems:
            log.seek(0)
            print("--- ephd log (tail) ---\n" + "".join(log.readlines()[-40:]))
            return 1
        print("contract: ephd's responses match docs/openapi.json")
        return 0
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(20)
        except subprocess.TimeoutExpired:
            child.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
