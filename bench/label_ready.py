#!/usr/bin/env python3
"""Driver of bench/label_ready.sh: opens pull requests on the stand-in, delivers `labeled`
webhooks through it, waits for `ready` and breaks each run down from ephd's debug log, the
stand-in's request log and the environment row's version. Prints figures; asserts nothing."""
import argparse
import datetime
from http.client import HTTPConnection
import os
import socket
import json
import re
import sqlite3
import statistics
import time
import urllib.request

REPO = "acme/demo"
# Forge reads by kind, from the stand-in's request paths (GitHub REST).
KINDS = [
    ("eph.yaml", re.compile(r"/repos/[^/]+/[^/]+/contents/eph\.yaml$")),
    ("tarball", re.compile(r"/repos/[^/]+/[^/]+/tarball/")),
    ("files", re.compile(r"/repos/[^/]+/[^/]+/pulls/\d+/files$")),
    ("pr", re.compile(r"/repos/[^/]+/[^/]+/pulls/\d+$")),
    ("checks", re.compile(r"/repos/[^/]+/[^/]+/commits/[^/]+/(check-runs|status|statuses|check-suites)$")),
]
LOG_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (\w+) (.*)$")


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


class UnixConnection(HTTPConnection):
    def __init__(self, path):
        super().__init__("docker", timeout=10)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def engine_start_seconds(docker_host, name):
    """The engine's own share of Apply: the web container's Created -> State.StartedAt (its
    create and start calls, up to the app's process running)."""
    conn = UnixConnection(docker_host.removeprefix("unix://"))
    conn.request("GET", f"/v1.41/containers/eph-{name}-web-1/json")
    c = json.loads(conn.getresponse().read())
    conn.close()
    at = lambda t: datetime.datetime.fromisoformat(t[:26].rstrip("Z") + "+00:00").timestamp()
    return at(c["State"]["StartedAt"]) - at(c["Created"])


def log_lines(path):
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = LOG_TIME.match(line.rstrip("\n"))
            if m:
                t = datetime.datetime.fromisoformat(m.group(1)).replace(
                    tzinfo=datetime.timezone.utc).timestamp()
                out.append((t, m.group(3)))
    return out


def kind_of(path):
    for name, pattern in KINDS:
        if pattern.search(path):
            return name
    return None


def one_run(args, n):
    key = f"{REPO}#{n}"
    commit = http("POST", f"{args.standin}/_standin/repos/{REPO}/commits",
                  {"branch": f"feature-{n}", "files": {"RUN": f"run {n}\n"}})
    http("PUT", f"{args.standin}/_standin/repos/{REPO}/pulls/{n}",
         {"labels": ["preview"], "head_sha": commit["sha"], "title": f"bench {n}"})
    seq0 = max([r["seq"] for r in http("GET", f"{args.standin}/_standin/requests")] or [0])
    sent = time.time()
    http("POST", f"{args.standin}/_standin/deliver",
                  {"url": f"{args.ephd}/webhooks/github", "secret": args.secret,
                   "event": "pull_request", "action": "labeled", "repo": REPO, "number": n,
                   "label": "preview"})
    name = None
    deadline = time.time() + 120
    while time.time() < deadline:
        items = http("GET", f"{args.ephd}/api/v1/environments?project={REPO}", token=args.token)
        env = [e for e in items["items"] if e["pr"] == n]
        if env and env[-1]["state"] in ("ready", "failed"):
            name = env[-1]["name"]
            if env[-1]["state"] == "failed":
                raise SystemExit(f"run {n}: failed: {env[-1]['reason']}")
            break
        time.sleep(0.02)
    if name is None:
        raise SystemExit(f"run {n}: not ready within 120 s")
    # Let any pass still running finish, so the counts are the whole story.
    time.sleep(0.5)
    lines = log_lines(args.log)
    stored = next(t for t, m in lines if t >= sent - 0.01 and m.startswith("webhook: delivery=")
                  and "event=pull_request" in m)
    begins = [t for t, m in lines if m.startswith(f"work queue: begin {key} as") and t >= stored]
    dones = [t for t, m in lines if m.startswith(f"work queue: done {key} as") and t >= stored]
    ready_at = next(t for t, m in lines if m.startswith(f"environment {name}: ")
                    and m.endswith("-> ready"))
    applies = [int(re.search(r"apply took (\d+) ms", m).group(1)) / 1000 for t, m in lines
               if m.startswith(f"environment {name}: apply took")]
    apply_end = next(t for t, m in lines if m.startswith(f"environment {name}: apply took"))
    passes_to_ready = len([b for b in begins if b <= ready_at])
    requests = [r for r in http("GET", f"{args.standin}/_standin/requests?since={seq0}")
                if r["method"] == "GET"]
    first_end = dones[0] if dones else ready_at
    pass1 = first_end - begins[0]
    forge_first = sum(r.get("ms", 0) for r in requests if r["at_ms"] / 1000 <= first_end) / 1000
    counts = {k: 0 for k, _ in KINDS}
    for r in requests:
        k = kind_of(r["path"])
        if k:
            counts[k] += 1
    with sqlite3.connect(args.db) as db:
        version = db.execute("SELECT version FROM environments WHERE name = ?", (name,)).fetchone()[0]
    passes = len(begins)
    total = ready_at - sent
    return {
        "run": n, "total": total, "intake": stored - sent, "queue": begins[0] - stored,
        "forge_first_pass": forge_first, "apply": sum(applies),
        "readiness": ready_at - apply_end, "pass1": pass1, "after_pass1": ready_at - first_end,
        "passes": passes, "passes_to_ready": passes_to_ready,
        "engine_start": engine_start_seconds(args.docker_host, name),
        "fetches": counts, "row_writes": version, "gets": len(requests),
    }


def warm_up(args):
    """One `labeled` delivery of a label Eph does not act on, before the timed runs: the stand-in's
    first delivery compiles its webhook schema validator and loads its HTTP client (0.5-1 s
    here), which GitHub does not do and which is not Eph's."""
    n = 100000
    commit = http("POST", f"{args.standin}/_standin/repos/{REPO}/commits",
                  {"branch": "warm-up", "files": {"RUN": "warm-up\n"}})
    http("PUT", f"{args.standin}/_standin/repos/{REPO}/pulls/{n}",
         {"labels": ["docs"], "head_sha": commit["sha"], "title": "warm-up"})
    http("POST", f"{args.standin}/_standin/deliver",
         {"url": f"{args.ephd}/webhooks/github", "secret": args.secret, "event": "pull_request",
          "action": "labeled", "repo": REPO, "number": n, "label": "docs"})
    time.sleep(0.5)


def main():
    p = argparse.ArgumentParser()
    for flag in ("standin", "ephd", "token", "secret", "repo-dir", "log", "db", "interval",
                 "docker-host"):
        p.add_argument("--" + flag, required=True)
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args()
    files = {}
    for f in sorted(os.listdir(args.repo_dir)):
        with open(os.path.join(args.repo_dir, f), encoding="utf-8") as fh:
            files[f] = fh.read()
    http("POST", f"{args.standin}/_standin/repos", {"owner": "acme", "repo": "demo", "files": files})
    warm_up(args)
    print(f"== label -> ready on Docker: demo app, {args.runs} runs, healthcheck interval "
          f"{args.interval}")
    print("run  total  intake queue  pass1 (forge-reads apply (engine) rest)  ready-after-pass1  "
          "passes  eph.yaml tarball pr checks files  row-writes")
    results = []
    for n in range(1, args.runs + 1):
        r = one_run(args, n)
        results.append(r)
        c = r["fetches"]
        rest = r["pass1"] - r["forge_first_pass"] - r["apply"]
        print(f"{n:<4} {r['total']:.3f}  {r['intake']:.3f}  {r['queue']:.3f}  {r['pass1']:.3f} "
              f"({r['forge_first_pass']:.3f}       {r['apply']:.3f} ({r['engine_start']:.3f}) "
              f"{rest:.3f})  "
              f"{r['after_pass1']:.3f}              {r['passes']:<7} {c['eph.yaml']:<8} "
              f"{c['tarball']:<7} {c['pr']:<2} {c['checks']:<6} {c['files']:<6} {r['row_writes']}")
    med = lambda k: statistics.median(r[k] for r in results)
    print(f"median (s): label -> ready {med('total'):.3f}: intake {med('intake'):.3f}, queue wait "
          f"{med('queue'):.3f}, first pass {med('pass1'):.3f} (forge reads "
          f"{med('forge_first_pass'):.3f}, apply {med('apply'):.3f} of which the engine's "
          f"container create+start {med('engine_start'):.3f}), first pass end -> ready "
          f"{med('after_pass1'):.3f} (apply end -> ready {med('readiness'):.3f})")
    passes = sum(r["passes"] for r in results)
    per = lambda k: sum(r["fetches"][k] for r in results) / passes
    print(f"per reconcile pass ({passes} passes): eph.yaml {per('eph.yaml'):.2f}, tarball "
          f"{per('tarball'):.2f}, pr {per('pr'):.2f}, checks {per('checks'):.2f}, files "
          f"{per('files'):.2f}; environment-row writes "
          f"{sum(r['row_writes'] for r in results) / passes:.2f} "
          f"(per run: {statistics.median(r['row_writes'] for r in results)} writes in "
          f"{statistics.median(r['passes'] for r in results)} passes)")


if __name__ == "__main__":
    main()
