#!/usr/bin/env python3
"""Where vault's time goes under the benchmark's load: `bench/run --profile`.

Starts a private redis-server and vault exactly as the benchmark does, then for create and for
reveal runs the same wrk load while py-spy (from the peer's virtualenv) samples every gunicorn
worker (on-CPU samples only, without pausing them), and Redis's INFO commandstats counts the
commands each request costs. Prints, for each: the functions with the most samples of their own
(self), the functions with the most samples beneath them (inclusive), the share of samples by
library, and Redis calls and microseconds per request. The collapsed stacks are kept in
bench/results/<date>-<cores>c-profile-<op>.txt (flame-graph input; not committed).
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader
from benchmark import agent_token, assigned_targets, reveal_paths
from harness import say

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")

# Where a sample's own frame lives, by the first part of its path as py-spy prints it.
LIBRARIES = {
    "vault": "vault", "flask_limiter": "flask-limiter + limits", "limits": "flask-limiter + limits",
    "prometheus_client": "prometheus-client (metrics)", "redis": "redis-py",
    "gunicorn": "gunicorn", "werkzeug": "werkzeug", "flask": "flask", "flask_babel": "flask-babel",
    "babel": "babel", "jinja2": "jinja2", "cryptography": "cryptography", "logging": "logging",
    "json": "json", "threading.py": "threading (locks, queues)", "queue.py": "threading (locks, queues)",
    "concurrent": "threading (locks, queues)", "selectors.py": "selectors", "socket.py": "socket",
}


def library(path: str) -> str:
    first = path.split("/", 1)[0]
    return LIBRARIES.get(first, f"python stdlib ({first})" if first.endswith(".py") else first)


def parse_frame(frame: str) -> tuple[str, str]:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip(), ""
    return m.group("func"), m.group("file")


def short(func: str, path: str) -> str:
    path = re.sub(r"^.*?/(site-packages|lib/python3\.\d+)/", "", path)
    path = re.sub(r"^.*/work/main/", "", path)
    return f"{func} ({path})"


# Each sample goes to the first step whose frame is on its stack (most specific first), so the
# shares add up to 100%: what a request spends its CPU on. The budget table multiplies each share
# by the server's CPU time per request (from /proc), so each row is microseconds per request.
# Before the gate (vault/storage/lua/access.lua), authentication and the rate limit were round trips of their own;
# since, they run inside the domain step's one script and count in its row.
STEPS = [
    ("access log line", ("JsonLogger.access (vault/serve.py)",)),
    ("audit log line", ("emit (vault/service.py)",)),
    ("metrics (prometheus-client)", ("prometheus_client/",)),
    ("auth: token lookup, its own round trip", ("Accounts.authenticate_bearer (",)),
    ("rate limit, its own round trip", ("VaultExtension.check_limit (vault/extension.py)",)),
    ("domain script round trip (with auth and limit since the gate)",
     ("Store.create_secret (", "Store.reveal (")),
    ("wrap/unwrap (AES-GCM key ring)", ("KeyRing.wrap (", "KeyRing.unwrap (")),
    ("JSON in (request body)", ("json_body (vault/web.py)",)),
    ("JSON out (jsonify)", ("jsonify (flask/json/__init__.py)",)),
    ("headers (after_request, now Plumbing)", ("install.<locals>._headers (vault/web.py)",
                                                "Plumbing._finish (vault/web.py)")),
    ("rest of the view and service (ids, checks, tokens)",
     ("create_secret (vault/api/routes.py)", "reveal (vault/api/routes.py)")),
    ("Flask dispatch (request context, routing, hooks)", ("Flask.__call__ (flask/app.py)",)),
    ("gunicorn + werkzeug parsing, writing, keep-alive, threads", ("gunicorn/",)),
]


def step_of(names: list[str]) -> str:
    for step, needles in STEPS:
        if any(needle in name for name in names for needle in needles):
            return step
    return "other (idle loops, selectors, interpreter)"


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    self_count: collections.Counter[str] = collections.Counter()
    incl: collections.Counter[str] = collections.Counter()
    libs: collections.Counter[str] = collections.Counter()
    steps: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [parse_frame(f) for f in stack.split(";")]
        frames = [(f, p) for f, p in frames if p]  # drop the process and thread pseudo-frames
        if not frames:
            continue
        total += count
        func, path = frames[-1]
        self_count[short(func, path)] += count
        libs[library(path)] += count
        names = [f"{f} ({p})" for f, p in frames]
        steps[step_of(names)] += count
        for name in {short(f, p) for f, p in frames}:
            incl[name] += count

    def pct(n: int) -> float:
        return round(100 * n / total, 1) if total else 0.0

    return {
        "samples": total,
        "self": [(name, pct(n)) for name, n in self_count.most_common(top)],
        "inclusive": [(name, pct(n)) for name, n in incl.most_common(top * 3)
                      if not _generic(name)][:top],
        "libraries": [(name, pct(n)) for name, n in libs.most_common()],
        "steps": [(name, pct(n)) for name, n in steps.most_common()],
    }


_PLUMBING = re.compile(
    r"^(Thread\.\w+ \(threading\.py|_worker \(concurrent|_WorkItem\.run \(concurrent|"
    r"ThreadWorker\.handle(_request)? \(gunicorn|Flask\.(__call__|wsgi_app|full_dispatch_request|"
    r"dispatch_request) \(flask|<module> |Arbiter\.|WSGIApplication\.|BaseApplication\.|"
    r"Application\.run|run \(gunicorn|main \(vault|serve \(vault|_serve \(vault|"
    r"_Gunicorn\.|ThreadWorker\.run|Worker\.init_process|ThreadWorker\.init_process)")


def _generic(name: str) -> bool:
    """Frames every request passes through (thread pools, the worker loop, Flask's dispatch)."""
    return bool(_PLUMBING.match(name))


def redis_per_request(stats: dict[str, Any], requests: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in sorted(stats.items(), key=lambda kv: -kv[1]["usec"]):
        name = key.removeprefix("cmdstat_")
        out[name] = {"calls_per_request": round(value["calls"] / requests, 2),
                     "usec_per_request": round(value["usec"] / requests, 1),
                     "usec_per_call": value["usec_per_call"]}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description="py-spy profile of vault under the bench load")
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rate", type=int, default=400, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--workers", type=int, default=0, help="default: vault's own default")
    parser.add_argument("--threads", type=int, default=0, help="default: vault's own default")
    parser.add_argument("--label", default="", help="added to the result file names")
    parser.add_argument("--wall", action="store_true",
                        help="sample threads whatever they do (default: only while they hold the "
                             "GIL, i.e. run Python: the CPU profile)")
    args = parser.parse_args()
    py_spy = harness.PEER_VENV / "bin" / "py-spy"
    if not py_spy.exists():
        print("py-spy is missing: run bench/run once (it makes bench/.venv-peer)", file=sys.stderr)
        return 2
    cores = len(os.sched_getaffinity(0))
    default_workers, default_threads = harness.concurrency()
    workers, threads = args.workers or default_workers, args.threads or default_threads
    settings_wrk = harness.WrkSettings(threads=2, connections=args.connections,
                                       seconds=args.seconds)
    out_dir = harness.BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    report: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                              "cores": cores, "gunicorn": [workers, threads],
                              "load_average_start": list(os.getloadavg())}
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        procs = [redis_server.proc]
        try:
            settings = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port())
            vault = harness.start_vault(work, settings, workers, threads)
            procs.append(vault)
            ext = settings.driver_app().extensions["vault"]
            token = agent_token(ext)
            ids = assigned_targets(ext, 6000 * args.seconds, 1000, "PROFILE-")
            bodies = work / "bodies.txt"
            bodies.write_text("\n".join(loader.vault_create_body(f"P-{i}") for i in range(1000)))
            paths = work / "paths.txt"
            paths.write_text("\n".join(reveal_paths(ids)))
            runs = {
                "create": dict(url=vault.url + "/api/v1/secrets", script="bodies.lua",
                               script_args=[str(bodies), "application/json", "application/json"]),
                "reveal": dict(url=vault.url + "/", script="paths.lua",
                               script_args=[str(paths), "2", f"Bearer {token}"]),
            }
            # Warm the workers up first, as the benchmark does.
            harness.wrk(runs["create"]["url"], settings_wrk, script="bodies.lua",
                        script_args=runs["create"]["script_args"], seconds=2)
            client = redis_server.client()
            for op, run in runs.items():
                raw = out_dir / f"{dt.date.today().isoformat()}-{cores}c-profile{args.label}-{op}.txt"
                client.config_resetstat()
                spy = subprocess.Popen(
                    [str(py_spy), "record", "--pid", str(vault.process.pid), "--subprocesses",
                     "--nonblocking", "--rate", str(args.rate), "--format", "raw",
                     *([] if args.wall else ["--gil"]),
                     "--duration", str(args.seconds + 1), "--output", str(raw)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(1.0)  # py-spy attaches to every worker
                res = harness.wrk(run["url"], settings_wrk, script=run["script"],
                                  script_args=run["script_args"],
                                  watch={"server": vault.process.pid,
                                         "redis": redis_server.proc.process.pid})
                _, err = spy.communicate(timeout=60)
                if spy.returncode != 0 or not raw.exists():
                    raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
                summary = summarize(raw, args.top)
                summary["wrk"] = res.as_dict()
                summary["redis"] = redis_per_request(client.info("commandstats"), res.requests)
                report[op] = summary
                print_summary(op, summary)
        finally:
            for p in reversed(procs):
                p.stop()
    path = out_dir / f"{dt.date.today().isoformat()}-{cores}c-profile{args.label}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    say(f"\nprofile summary: {path.relative_to(harness.ROOT)}; collapsed stacks beside it")
    return 0


def budget(report: dict[str, Any]) -> dict[str, dict[str, float]]:
    """{op: {step: microseconds of server CPU per request}} of a profile report."""
    out: dict[str, dict[str, float]] = {}
    for op in ("create", "reveal"):
        if op not in report:
            continue
        cpu_us = report[op]["wrk"]["cpu_ms_per_request"]["server"] * 1000
        out[op] = {"total": round(cpu_us)}
        for name, share in report[op]["steps"]:
            out[op][name] = round(cpu_us * share / 100)
    return out


def print_summary(op: str, s: dict[str, Any]) -> None:
    w = s["wrk"]
    say(f"\n=== vault {op}: {w['rps']:.0f} req/s under py-spy, p50 {w['p50_ms']:.1f} ms, "
        f"p99 {w['p99_ms']:.1f} ms; CPU per request: server "
        f"{w['cpu_ms_per_request']['server']:.2f} ms, redis "
        f"{w['cpu_ms_per_request']['redis']:.3f} ms; {s['samples']} samples")
    say("where a request's samples go (each sample counted once, first matching step):")
    for name, p in s["steps"]:
        say(f"  {p:5.1f}%  {name}")
    say("share of samples by library (own frame):")
    for name, p in s["libraries"]:
        if p >= 0.5:
            say(f"  {p:5.1f}%  {name}")
    say("top functions, own samples (self):")
    for name, p in s["self"]:
        say(f"  {p:5.1f}%  {name}")
    say("top functions, with everything beneath them (inclusive):")
    for name, p in s["inclusive"]:
        say(f"  {p:5.1f}%  {name}")
    say("Redis commands per request:")
    for name, r in s["redis"].items():
        say(f"  {name:<12} {r['calls_per_request']:5.2f} calls, {r['usec_per_request']:7.1f} us "
            f"({r['usec_per_call']} us/call)")


if __name__ == "__main__":
    sys.exit(main())
