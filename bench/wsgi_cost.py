#!/usr/bin/env python3
"""CPU microseconds of one vault request without gunicorn or sockets: `bench/run --wsgi`.

Builds vault with the benchmark's production settings on a private redis-server, then calls the
WSGI app directly with the environ gunicorn would give it, for a create, a fill and a reveal, and
prints the process CPU time per request (one thread, so nothing queues). `--profile OP` adds a
cProfile of that operation, sorted by own time. A quick loop for work on the request path;
`bench/run` and `bench/run --profile` remain what the numbers in the README come from.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import pstats
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


def measure(label: str, make: Callable[[int], dict[str, Any]], app: Any, n: int,
            profile: bool) -> float:
    envs = [make(i) for i in range(n)]
    for env in envs[:50]:  # warm: connections, scripts
        call(app, env)
    envs = envs[50:]
    prof = cProfile.Profile() if profile else None
    started = time.process_time()
    if prof:
        prof.enable()
    codes = [call(app, env) for env in envs]
    if prof:
        prof.disable()
    used = time.process_time() - started
    bad = sum(1 for c in codes if not 200 <= c < 300)
    us = used * 1e6 / len(envs)
    print(f"{label:<8} {us:7.1f} us CPU per request ({len(envs)} requests, {bad} not 2xx)")
    if prof:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "40")))
        print(out.getvalue())
    return us


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--profile", choices=["create", "fill", "reveal"], default=None)
    args = parser.parse_args()
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
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
                "create": lambda i: environ("POST", "/api/v1/secrets", bodies[i % 1000]),
                "fill": lambda i: environ("POST", f"/api/v1/requests/{reqs[i]}/secret",
                                          fill_body),
                "reveal": lambda i: environ("POST", f"/api/v1/secrets/{ids[i]}/reveal",
                                            headers=auth),
            }
            for op, make in ops.items():
                measure(op, make, app, n, args.profile == op)
        finally:
            sys.stderr = sys.__stderr__
            redis_server.proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
