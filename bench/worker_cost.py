#!/usr/bin/env python3
"""Instructions per request of a whole gunicorn worker: `bench/run --instructions`.

Each server (the hello-world ceiling, snappass's create, vault's create) runs one gunicorn
worker of 4 threads under valgrind's callgrind, counting off until a light wrk load (`-t1 -c4`)
has warmed it, then counting the worker's user-space instructions over a measured run: the
HTTP parsing, the WSGI app, the Redis client, the logs, everything in the process but the
kernel. Instructions are repeatable where CPU time is not (a shared host's steal moves CPU time
by 20% between runs); what this leaves out is exactly what it cannot count: system calls,
context switches, cache misses and Redis. Slow (valgrind runs the worker 50 times slower: a
few minutes in all). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader


def measure(name: str, argv: list[str], env: dict[str, str], port: int, probe: str, path: str,
            wrk_args: list[str], work: Path, seconds: int) -> None:
    """The server `argv` listens on 127.0.0.1:`port`; `probe` is the path that says it is up,
    `path` the one the load requests."""
    url = f"http://127.0.0.1:{port}{path}"
    out = work / f"callgrind-{name}.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", "--trace-children=yes",
           f"--callgrind-out-file={out}.%p", *argv]
    proc = harness.spawn(name, cmd, work / f"{name}.log", env=env, port=port)
    try:
        harness.wait_http(proc, probe, timeout=600)
        # valgrind execs gunicorn in place: the master's one child is the worker.
        workers = harness.tree(proc.process.pid)[1:]
        if len(workers) != 1:
            raise RuntimeError(f"{name}: expected one worker, found {workers}")
        worker = workers[0]
        load = ["wrk", "-t1", "-c4", "--latency"]
        subprocess.run([*load, "-d3s", *wrk_args[:2], url, *wrk_args[2:]], capture_output=True,
                       check=True)
        harness.callgrind_control(worker, "--instr=on")
        harness.callgrind_control(worker, "--zero")
        run = subprocess.run([*load, f"-d{seconds}s", *wrk_args[:2], url, *wrk_args[2:]],
                             capture_output=True, text=True, check=True).stdout
        harness.callgrind_control(worker, f"--dump={name}")
        harness.callgrind_control(worker, "--instr=off")
        requests = int(re.search(r"(\d+) requests in", run).group(1))  # type: ignore[union-attr]
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", run)
        total = harness.callgrind_instructions(f"{out}.", name)
        print(f"{name:<16} {total / requests / 1000:8.1f} k instructions per request "
              f"({requests} requests, {non_2xx.group(1) if non_2xx else 0} non-2xx)", flush=True)
    finally:
        proc.stop(60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    for tool in ("valgrind", "callgrind_control", "wrk"):
        if subprocess.run(["which", tool], capture_output=True).returncode:
            print(f"{tool} is missing: apt-get install valgrind wrk", file=sys.stderr)
            return 1
    bodies = str(harness.BENCH / "bodies.lua")
    gunicorn = ["--workers", "1", "--threads", "4", "--worker-class", "gthread", "--preload",
                "--keep-alive", "5", "--timeout", "600", "--no-control-socket"]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108
        gunicorn += ["--worker-tmp-dir", "/dev/shm"]  # noqa: S108
    with harness.scratch("vault-instructions-") as work:
        redis_server = harness.start_redis(work)
        try:
            plain = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
            snap_bodies = work / "snappass-bodies.txt"
            snap_bodies.write_text("\n".join(loader.snappass_create_body() for _ in range(100)))
            vault_bodies = work / "vault-bodies.txt"
            vault_bodies.write_text("\n".join(loader.vault_create_body(f"I-{i}")
                                              for i in range(1000)))

            port = harness.free_port()
            measure("ceiling", [str(harness.VAULT_VENV / "bin" / "gunicorn"), "--bind",
                                f"127.0.0.1:{port}", *gunicorn, "--chdir", str(harness.BENCH),
                                "ceiling:app"], plain, port, "/", "/", [], work, args.seconds)

            port = harness.free_port()
            measure("snappass create", [str(harness.PEER_VENV / "bin" / "gunicorn"), "--bind",
                                        f"127.0.0.1:{port}", *gunicorn, "snappass.main:app"],
                    harness.snappass_env(redis_server.url), port, "/", "/",
                    ["-s", bodies, "--", str(snap_bodies), "application/x-www-form-urlencoded",
                     "application/json"], work, args.seconds)

            # vault as `vault serve` runs it (its own gunicorn settings), one worker.
            port = harness.free_port()
            settings = harness.VaultSettings(redis_url=redis_server.url, port=port)
            env = dict(plain, **settings.variables())
            env["PROMETHEUS_MULTIPROC_DIR"] = str(work / "vault-metrics")
            measure("vault create", [str(harness.VAULT_VENV / "bin" / "vault"), "serve", "--bind",
                                     f"127.0.0.1:{port}", "--workers", "1", "--threads", "4"],
                    env, port, "/healthz", "/api/v1/secrets",
                    ["-s", bodies, "--", str(vault_bodies), "application/json",
                     "application/json"], work, args.seconds)
        finally:
            redis_server.proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
