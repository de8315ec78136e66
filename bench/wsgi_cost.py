#!/usr/bin/env python3
"""CPU microseconds of one vault request without gunicorn or sockets: `bench/run --wsgi`.

Builds vault with the benchmark's production settings on a private redis-server, then calls the
WSGI app directly with the environ gunicorn would give it, for a create, a fill and a reveal, and
prints the process CPU time per request (one thread, so nothing queues). `--profile OP` adds a
cProfile of that operation, sorted by own time. A quick loop for work on the request path;
`bench/run` and `bench/run --profile` remain what the numbers in the README come from.

`--callgrind` runs the same loop under valgrind's callgrind and prints instructions per request
instead: this process's user-space work only (not the kernel's socket work, not Redis), but
repeatable to a fraction of a percent on a machine whose CPU time per request moves by 20%
between two runs (a shared host's steal). The way to compare two versions of the request path.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

_HERE = str(Path(__file__).resolve().parent)
# cProfile imports the stdlib's `profile`, which bench/profile.py would shadow: import it with
# this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(_HERE)]
import cProfile  # noqa: E402

sys.path.insert(0, _HERE)

import harness
import loader
from benchmark import agent_token, assigned_targets


def environ(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
            ) -> dict[str, Any]:
    env: dict[str, Any] = {
        "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": "", "RAW_URI": path,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "50000", "HTTP_HOST": "127.0.0.1:8000",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False,
        "wsgi.version": (1, 0), "CONTENT_LENGTH": str(len(body)),
    }
    if body:
        env["CONTENT_TYPE"] = "application/json"
    for name, value in (headers or {}).items():
        env["HTTP_" + name.upper().replace("-", "_")] = value
    return env


def call(app: Any, env: dict[str, Any]) -> int:
    status: list[str] = []

    def start_response(s: str, headers: list[Any], exc_info: Any = None) -> None:
        status.append(s)

    body = app(env, start_response)
    for _ in body:
        pass
    if hasattr(body, "close"):
        body.close()
    return int(status[0].split()[0])


UNDER_CALLGRIND = "VAULT_BENCH_CALLGRIND_OUT"


def callgrind(*args: str) -> None:
    """Switch callgrind's counting in this process (it runs under valgrind: `--callgrind`)."""
    harness.callgrind_control(os.getpid(), *args)


def redis_stats(client: Any, label: str, n: int) -> None:
    """What Redis did for one request of `label`: its commands (scripts and the calls made from
    inside them), calls and microseconds per request, from INFO commandstats."""
    stats = client.info("commandstats")
    rows = sorted(((name.removeprefix("cmdstat_"), v["calls"] / n, v["usec"] / n)
                   for name, v in stats.items()), key=lambda r: -r[2])
    top = ", ".join(f"{name} {calls:.1f}x {us:.1f}" for name, calls, us in rows if calls >= 0.05)
    print(f"{'':<8} redis: {top} (us per request; a script's time includes its calls')")


REDIS_CALLGRIND: dict[str, Any] = {}  # {"pid": ..., "out": ...} under --redis-callgrind


def measure(label: str, make: Callable[[int], dict[str, Any]], app: Any, n: int,
            profile: bool, redis_client: Any = None) -> float:
    envs = [make(i) for i in range(n)]
    for env in envs[:50]:  # warm: connections, scripts
        call(app, env)
    envs = envs[50:]
    counting = UNDER_CALLGRIND in os.environ
    if counting:
        callgrind("--instr=on")
        callgrind("--zero")
    # CPU time, not wall time: the wait for Redis is not the request path's cost.
    prof = cProfile.Profile(time.process_time) if profile else None
    if redis_client is not None:
        redis_client.config_resetstat()
    if REDIS_CALLGRIND:
        harness.callgrind_control(REDIS_CALLGRIND["pid"], "--instr=on")
        harness.callgrind_control(REDIS_CALLGRIND["pid"], "--zero")
    started = time.process_time()
    if prof:
        prof.enable()
    codes = [call(app, env) for env in envs]
    if prof:
        prof.disable()
    used = time.process_time() - started
    bad = sum(1 for c in codes if not 200 <= c < 300)
    if REDIS_CALLGRIND:
        redis_pid = REDIS_CALLGRIND["pid"]
        harness.callgrind_control(redis_pid, f"--dump=redis-{label}")
        harness.callgrind_control(redis_pid, "--instr=off")
        per = harness.callgrind_instructions(REDIS_CALLGRIND["out"], f"redis-{label}") / len(envs)
        print(f"{label:<8} {per / 1000:8.1f} k instructions per request in redis-server "
              f"({len(envs)} requests, {bad} not 2xx)", flush=True)
    if counting:
        callgrind(f"--dump={label}")
        callgrind("--instr=off")
        per = harness.callgrind_instructions(os.environ[UNDER_CALLGRIND], label) / len(envs)
        print(f"{label:<8} {per / 1000:8.1f} k instructions per request ({len(envs)} requests, "
              f"{bad} not 2xx)", flush=True)
        return per
    us = used * 1e6 / len(envs)
    print(f"{label:<8} {us:7.1f} us CPU per request ({len(envs)} requests, {bad} not 2xx)")
    if redis_client is not None:
        redis_stats(redis_client, label, len(envs))
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "40")))
        print(out.getvalue())
    return us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--profile", choices=["create", "fill", "reveal"], default=None)
    parser.add_argument("--callgrind", action="store_true",
                        help="instructions per request under valgrind (repeatable), not CPU time")
    parser.add_argument("--redis", action="store_true",
                        help="also Redis's commands and microseconds per request (commandstats)")
    parser.add_argument("--redis-callgrind", action="store_true",
                        help="also redis-server's instructions per request (it runs under "
                             "callgrind): the way to compare two versions of a script")
    args = parser.parse_args()
    if args.callgrind and UNDER_CALLGRIND not in os.environ:
        return under_callgrind(args)
    with harness.scratch() as work:
        wrap: list[str] = []
        if args.redis_callgrind:
            out = str(work / "redis-callgrind.out")
            wrap = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                    f"--callgrind-out-file={out}"]
        redis_server = harness.start_redis(work, wrap)
        if args.redis_callgrind:
            REDIS_CALLGRIND.update(pid=redis_server.proc.process.pid, out=out)
        try:
            settings = harness.VaultSettings(redis_url=redis_server.url, port=8000)
            from vault import create_app

            variables: dict[str, Any] = dict(settings.variables())
            app = create_app(variables)
            logfile = open(work / "app.log", "w")  # noqa: SIM115
            sys.stderr = logfile  # the JSON log lines, as gunicorn's stderr would take them
            ext = settings.driver_app().extensions["vault"]
            token = agent_token(ext)
            n = args.n + 50
            bodies = [loader.vault_create_body(f"W-{i}").encode() for i in range(1000)]
            ids = assigned_targets(ext, n, 100, "WSGI-")
            reqs = [ext.vault.create_request(ext.accounts.authenticate_bearer(token),
                                             f"WSGI-{i % 100}")["id"] for i in range(n)]
            auth = {"Authorization": f"Bearer {token}"}
            envelope = json.loads(bodies[0])["envelope"]
            fill_body = json.dumps({"kind": "other", "envelope": envelope}).encode()
            ops = {
                # The floor: Flask, vault's WSGI layer and a small JSON answer, no Redis.
                "healthz": lambda i: environ("GET", "/healthz"),
                "create": lambda i: environ("POST", "/api/v1/secrets", bodies[i % 1000]),
                "fill": lambda i: environ("POST", f"/api/v1/requests/{reqs[i]}/secret",
                                          fill_body),
                "reveal": lambda i: environ("POST", f"/api/v1/secrets/{ids[i]}/reveal",
                                            headers=auth),
            }
            for op, make in ops.items():
                measure(op, make, app, n, args.profile == op,
                        redis_server.client() if args.redis else None)
        finally:
            sys.stderr = sys.__stderr__
            redis_server.proc.stop()
    return 0


def under_callgrind(args: argparse.Namespace) -> int:
    """This script again, under callgrind, counting only the measured loops."""
    for tool in ("valgrind", "callgrind_control"):
        if not shutil.which(tool):
            print(f"{tool} is missing: apt-get install valgrind", file=sys.stderr)
            return 1
    with harness.scratch("vault-callgrind-") as work:
        out = str(work / "callgrind.out")
        env = dict(os.environ, **{UNDER_CALLGRIND: out})
        # The interpreter by the path it was started by (a virtualenv's python finds its
        # site-packages from it), counting off until the loop starts.
        cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
               f"--callgrind-out-file={out}", sys.executable, __file__, "-n", str(args.n)]
        return subprocess.run(cmd, env=env, stderr=subprocess.DEVNULL).returncode


if __name__ == "__main__":
    sys.exit(main())
