#!/usr/bin/env python3
"""Which gunicorn workers x threads serve vault fastest here: `bench/run --sweep`.

vault alone (production settings, as the benchmark runs it) under the benchmark's wrk load
(`-t2 -c32`), a create run and a reveal run for each workers x threads pair, on a private
redis-server. Prints req/s and p99 per pair; `vault.serve.default_concurrency` is chosen from
this (the fastest pair whose p99 stays under 50 ms). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader
from benchmark import agent_token, assigned_targets, reveal_paths
from harness import say


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=6)
    parser.add_argument("--pairs", default="2x1,2x2,2x4,3x2,4x2,5x2,5x4",
                        help="workers x threads pairs, comma-separated")
    args = parser.parse_args()
    pairs = [tuple(int(n) for n in p.split("x")) for p in args.pairs.split(",")]
    wrk = harness.WrkSettings(threads=2, connections=32, seconds=args.seconds)
    rows = []
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        try:
            settings = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port())
            ext = settings.driver_app().extensions["vault"]
            token = agent_token(ext)
            bodies = work / "bodies.txt"
            bodies.write_text("\n".join(loader.vault_create_body(f"S-{i}") for i in range(1000)))
            for workers, threads in pairs:
                vault = harness.start_vault(work, settings, workers, threads)
                try:
                    harness.wrk(vault.url + "/api/v1/secrets", wrk, script="bodies.lua",
                                script_args=[str(bodies), "application/json",
                                             "application/json"], seconds=2)
                    create = harness.wrk(vault.url + "/api/v1/secrets", wrk, script="bodies.lua",
                                         script_args=[str(bodies), "application/json",
                                                      "application/json"],
                                         watch={"server": vault.process.pid})
                    ids = assigned_targets(ext, int(create.rps * args.seconds * 1.5) + 1000,
                                           1000, f"SWEEP-{workers}-{threads}-")
                    paths = work / f"paths-{workers}-{threads}.txt"
                    paths.write_text("\n".join(reveal_paths(ids)))
                    reveal = harness.wrk(vault.url + "/", wrk, script="paths.lua",
                                         script_args=[str(paths), "2", f"Bearer {token}"],
                                         watch={"server": vault.process.pid})
                finally:
                    vault.stop()
                rows.append((workers, threads, create, reveal))
                say(f"{workers} workers x {threads} threads: create {create.rps:,.0f} req/s "
                    f"p99 {create.p99_ms:.1f} ms ({create.non_2xx} non-2xx), reveal "
                    f"{reveal.rps:,.0f} req/s p99 {reveal.p99_ms:.1f} ms ({reveal.non_2xx} "
                    f"non-2xx)")
        finally:
            redis_server.proc.stop()
    say("\n| workers x threads | create req/s | create p99 ms | reveal req/s | reveal p99 ms |"
        "\n|---|---:|---:|---:|---:|")
    for workers, threads, c, r in rows:
        say(f"| {workers} x {threads} | {c.rps:,.0f} | {c.p99_ms:.1f} | {r.rps:,.0f} | "
            f"{r.p99_ms:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
