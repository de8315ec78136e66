#!/usr/bin/env python3
"""Where the machine's time goes per create, snappass beside vault: `bench/run --split`.

The benchmark's setup (vault's default workers x threads for both, `wrk -t2 -c32`, a private
redis-server, vault with its production settings) and its create load, in interleaved rounds. For each run,
per request: the server's user and kernel CPU and its voluntary context switches (all threads
of the master and workers, from /proc), Redis's CPU, and the share of the two cores that
stayed idle (/proc/stat). CPU time alone cannot say why vault's rate trails snappass's when its
worker CPU per request is level with it: this shows the rest (kernel, Redis, idle). Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader
from harness import say

_TICK = os.sysconf("SC_CLK_TCK")


def _usage(root: int) -> tuple[float, float, int]:
    """(user s, kernel s, voluntary context switches) of a process tree, every thread."""
    user = kernel = 0.0
    switches = 0
    for pid in harness.tree(root):
        try:
            text = Path(f"/proc/{pid}/stat").read_text()
            fields = text[text.rindex(")") + 2:].split()
            user += int(fields[11]) / _TICK
            kernel += int(fields[12]) / _TICK
            for status in Path(f"/proc/{pid}/task").glob("*/status"):
                for line in status.read_text().splitlines():
                    if line.startswith("voluntary_ctxt_switches:"):
                        switches += int(line.split()[1])
        except OSError:
            pass
    return user, kernel, switches


def _machine() -> list[int]:
    with open("/proc/stat") as f:
        return [int(x) for x in f.readline().split()[1:9]]


def run(label: str, url: str, server: harness.Proc, redis_pid: int,
        wrk: harness.WrkSettings, **kw: Any) -> None:
    before, redis_before, cores_before = _usage(server.process.pid), _usage(redis_pid), _machine()
    res = harness.wrk(url, wrk, **kw)
    after, redis_after, cores_after = _usage(server.process.pid), _usage(redis_pid), _machine()
    n = max(1, res.requests)
    ticks = [b - a for a, b in zip(cores_before, cores_after)]
    idle = ticks[3] / max(1, sum(ticks))
    us = [(b - a) * 1e6 / n for a, b in zip(before[:2], after[:2])]
    redis_us = sum(b - a for a, b in zip(redis_before[:2], redis_after[:2])) * 1e6 / n
    switches = (after[2] - before[2]) / n
    # Wall time of the two cores per request, and the idle part of it.
    idle_us = idle * 2 * 1e6 / max(1.0, res.rps)
    say(f"  {label:<16} {res.rps:7,.0f} req/s  p99 {res.p99_ms:5.1f} ms | server user {us[0]:4.0f}"
        f" kernel {us[1]:4.0f} µs, {switches:4.1f} voluntary switches | redis {redis_us:3.0f} µs"
        f" | idle {100 * idle:3.0f}% ({idle_us:3.0f} µs) | non-2xx {res.non_2xx}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    args = parser.parse_args()
    workers, threads = harness.concurrency()  # vault's defaults, for both servers
    wrk = harness.WrkSettings(threads=2, connections=32, seconds=args.seconds)
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        servers: list[harness.Proc] = []
        try:
            snappass = harness.start_snappass(work, redis_server.url, workers, threads)
            servers.append(snappass)
            settings = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port())
            vault = harness.start_vault(work, settings, workers, threads)
            servers.append(vault)
            snap_bodies = work / "snappass-bodies.txt"
            snap_bodies.write_text("\n".join(loader.snappass_create_body() for _ in range(100)))
            vault_bodies = work / "vault-bodies.txt"
            vault_bodies.write_text("\n".join(loader.vault_create_body(f"SPLIT-{i}")
                                              for i in range(1000)))
            snap = {"script": "bodies.lua", "script_args": [
                str(snap_bodies), "application/x-www-form-urlencoded", "application/json"]}
            mine = {"script": "bodies.lua", "script_args": [
                str(vault_bodies), "application/json", "application/json"]}
            # Warm-up, long enough: a first run of snappass a few seconds after its start can
            # fall into a state of 30 context switches a request and a third of its rate.
            harness.wrk(snappass.url + "/", wrk, seconds=5, **snap)
            harness.wrk(vault.url + "/api/v1/secrets", wrk, seconds=5, **mine)
            say(f"{workers} workers x {threads} threads each; wrk {' '.join(wrk.args())}; "
                "per create:")
            pid = redis_server.proc.process.pid
            for rnd in range(1, args.rounds + 1):
                say(f"round {rnd} of {args.rounds}")
                run("snappass create", snappass.url + "/", snappass, pid, wrk, **snap)
                run("vault create", vault.url + "/api/v1/secrets", vault, pid, wrk, **mine)
        finally:
            for server in servers:
                server.stop()
            redis_server.proc.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
