#!/usr/bin/env python3
"""Which gunicorn workers x threads serve vault fastest here: `bench/run --sweep`.

vault alone (production settings, as the benchmark runs it) under the benchmark's wrk load
(`-t2 -c32`), a create run and a reveal run for each set-up, on a private redis-server. Every
set-up runs as its own server from the start, and the rounds interleave them (set-up A, B, C,
then A, B, C again): on a shared host a rate moves by 20% within minutes, so set-ups measured
one after another compare the host's minutes, not the set-ups. Prints the median req/s and p99
of each; `vault.serve.default_concurrency` is chosen from this (the fastest set-up whose p99
stays under 50 ms). A set-up is `WORKERSxTHREADS`, with `-unpinned` for workers the kernel
places (VAULT_PIN_WORKERS=0). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import statistics
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
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--pairs", default="2x4-unpinned,2x2,2x4,2x8,2x12",
                        help="set-ups, comma-separated: WORKERSxTHREADS[-unpinned]")
    args = parser.parse_args()
    setups = []
    for spec in args.pairs.split(","):
        pair, _, flag = spec.strip().partition("-")
        workers, threads = (int(n) for n in pair.split("x"))
        setups.append((spec.strip(), workers, threads, flag != "unpinned"))
    wrk = harness.WrkSettings(threads=2, connections=32, seconds=args.seconds)
    runs: dict[tuple[str, str], list[harness.WrkResult]] = {}
    servers: list[harness.Proc] = []
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        try:
            settings = harness.VaultSettings(redis_url=redis_server.url, port=0)
            ext = settings.driver_app().extensions["vault"]
            token = agent_token(ext)
            bodies = work / "bodies.txt"
            bodies.write_text("\n".join(loader.vault_create_body(f"S-{i}") for i in range(1000)))
            create_args = [str(bodies), "application/json", "application/json"]
            for i, (_, workers, threads, pin) in enumerate(setups):
                own = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port(),
                                            secret_key=settings.secret_key, keys=settings.keys)
                folder = work / f"setup-{i}"
                folder.mkdir()
                servers.append(harness.start_vault(folder, own, workers, threads, pinned=pin))
                harness.wrk(servers[-1].url + "/api/v1/secrets", wrk, script="bodies.lua",
                            script_args=create_args, seconds=2)
            for rnd in range(1, args.rounds + 1):
                say(f"round {rnd} of {args.rounds}")
                for (label, _, _, _), vault in zip(setups, servers, strict=True):
                    watch = {"server": vault.process.pid}
                    create = harness.wrk(vault.url + "/api/v1/secrets", wrk, script="bodies.lua",
                                         script_args=create_args, watch=watch)
                    ids = assigned_targets(ext, int(create.rps * args.seconds * 3) + 2000,
                                           1000, f"SWEEP-{rnd}-{label}-")
                    paths = work / f"paths-{rnd}-{label}.txt"
                    paths.write_text("\n".join(reveal_paths(ids)))
                    reveal = harness.wrk(vault.url + "/", wrk, script="paths.lua",
                                         script_args=[str(paths), "2", f"Bearer {token}"],
                                         watch=watch)
                    runs.setdefault((label, "create"), []).append(create)
                    runs.setdefault((label, "reveal"), []).append(reveal)
                    say(f"  {label:<14} create {create.rps:6,.0f} req/s p99 {create.p99_ms:5.1f} "
                        f"ms ({create.non_2xx} non-2xx), reveal {reveal.rps:6,.0f} req/s p99 "
                        f"{reveal.p99_ms:5.1f} ms ({reveal.non_2xx} non-2xx)")
        finally:
            for vault in servers:
                vault.stop()
            redis_server.proc.stop()

    def med(label: str, op: str, key: str) -> float:
        return statistics.median(getattr(r, key) for r in runs[(label, op)])

    say(f"\nmedians of {args.rounds} interleaved rounds, wrk {' '.join(wrk.args())}\n"
        "\n| workers x threads | create req/s | create p99 ms | reveal req/s | reveal p99 ms |"
        "\n|---|---:|---:|---:|---:|")
    for label, _, _, _ in setups:
        say(f"| {label} | {med(label, 'create', 'rps'):,.0f} | "
            f"{med(label, 'create', 'p99_ms'):.1f} | {med(label, 'reveal', 'rps'):,.0f} | "
            f"{med(label, 'reveal', 'p99_ms'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
