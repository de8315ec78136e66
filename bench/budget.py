#!/usr/bin/env python3
"""The CPU budget table: `bench/run --budget [BEFORE_PROFILE AFTER_PROFILE BEFORE_RUN AFTER_RUN]`.

Microseconds of server CPU per request (gunicorn master and workers, from /proc, under the
benchmark's wrk load, no profiler attached): the hello-world ceiling, snappass and vault from
two throughput runs (bench/run --quick, before and after a change), and vault's create and
reveal split by step: each step's share of the py-spy samples of a profile of the same load
(bench/run --profile: each sample goes to one step) times that CPU. Defaults: the newest
*-profile-before.json, the newest other *-profile*.json, the newest *-before.json run and the
newest other run in bench/results. Prints Markdown.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

RESULTS = Path(__file__).resolve().parent / "results"


def newest(pattern: str, *, without: str = "") -> Path:
    found = sorted(p for p in RESULTS.glob(pattern) if not without or without not in p.name)
    if not found:
        raise SystemExit(f"no {pattern} in {RESULTS}: run bench/run --profile / --quick first")
    return found[-1]


def steps(report: dict[str, Any], op: str, cpu_us: float) -> dict[str, float]:
    out = {"total": cpu_us}
    for name, share in report[op]["steps"]:
        out[name] = cpu_us * share / 100
    return out


def server_us(run: dict[str, Any], op: str) -> float:
    t = run["throughput"]
    return float(t[op]["cpu_ms_per_request"]["server"]) * 1000 if op in t else 0.0


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] + [
        newest("*-profile-before.json"), newest("*-profile*.json", without="before"),
        newest("*-before.json", without="profile"), newest("*c.json")][len(argv):]
    before, after, run_before, run_after = (json.loads(p.read_text()) for p in paths)
    print(f"Server CPU per request, µs (runs: {paths[2].name} → {paths[3].name}; profiles: "
          f"{paths[0].name} → {paths[1].name})\n")
    print("| server | create before | reveal before | create after | reveal after |\n"
          "|---|---:|---:|---:|---:|")
    for label, ops in (("hello-world Flask (ceiling)", ("ceiling", "ceiling")),
                       ("snappass 1.6.2", ("snappass_create", "snappass_reveal")),
                       ("vault", ("vault_create", "vault_reveal"))):
        cells = [server_us(run, op) for run in (run_before, run_after) for op in ops]
        print(f"| {label} | " + " | ".join(f"{v:,.0f}" for v in cells) + " |")
    rows: dict[str, list[float]] = {}
    for i, (report, run) in enumerate(((before, run_before), (after, run_after))):
        for j, op in enumerate(("create", "reveal")):
            for name, us in steps(report, op, server_us(run, f"vault_{op}")).items():
                rows.setdefault(name, [0.0] * 4)[i * 2 + j] = us
    print("\n| vault's step (µs of server CPU per request) | create before | reveal before | "
          "create after | reveal after |\n|---|---:|---:|---:|---:|")
    total = rows.pop("total")
    for name, values in sorted(rows.items(), key=lambda kv: -sum(kv[1])):
        print(f"| {name} | " + " | ".join(f"{v:,.0f}" if v else "–" for v in values) + " |")
    print("| **total** | " + " | ".join(f"**{v:,.0f}**" for v in total) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
