#!/usr/bin/env python3
"""The CPU budget table: `bench/run --budget [BEFORE AFTER [THROUGHPUT]]`.

Microseconds of server CPU per request (gunicorn master and workers, from /proc, under the
benchmark's wrk load): the hello-world ceiling and snappass from a throughput run
(bench/run --quick), and vault's create and reveal split by step from two profiles
(bench/run --profile: each py-spy sample goes to one step, its share times the measured CPU).
Defaults: the newest *-profile-before.json, the newest other *-profile*.json and the newest
throughput run in bench/results. Prints Markdown.
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


def steps(report: dict[str, Any], op: str) -> dict[str, float]:
    cpu_us = report[op]["wrk"]["cpu_ms_per_request"]["server"] * 1000
    out = {"total": cpu_us}
    for name, share in report[op]["steps"]:
        out[name] = cpu_us * share / 100
    return out


def main(argv: list[str]) -> int:
    before_path = Path(argv[0]) if argv else newest("*-profile-before.json")
    after_path = Path(argv[1]) if len(argv) > 1 else newest("*-profile*.json", without="before")
    run_path = Path(argv[2]) if len(argv) > 2 else newest("*-2c*.json", without="profile")
    before, after = json.loads(before_path.read_text()), json.loads(after_path.read_text())
    run = json.loads(run_path.read_text())
    t = run["throughput"]

    def cpu(op: str) -> str:
        return f"{t[op]['cpu_ms_per_request']['server'] * 1000:,.0f}" if op in t else "?"

    print(f"Server CPU per request, µs (throughput: {run_path.name}; profiles: "
          f"{before_path.name} → {after_path.name})\n")
    print("| server | create | reveal |\n|---|---:|---:|")
    print(f"| hello-world Flask (ceiling) | {cpu('ceiling')} | {cpu('ceiling')} |")
    print(f"| snappass 1.6.2 | {cpu('snappass_create')} | {cpu('snappass_reveal')} |")
    print(f"| vault | {cpu('vault_create')} | {cpu('vault_reveal')} |\n")
    rows: dict[str, list[float]] = {}
    for i, report in enumerate((before, after)):
        for j, op in enumerate(("create", "reveal")):
            for name, us in steps(report, op).items():
                rows.setdefault(name, [0.0] * 4)[i * 2 + j] = us
    print("| vault's step (µs of server CPU per request) | create before | reveal before | "
          "create after | reveal after |\n|---|---:|---:|---:|---:|")
    total = rows.pop("total")
    for name, values in sorted(rows.items(), key=lambda kv: -(kv[1][2] + kv[1][3])):
        print(f"| {name} | " + " | ".join(f"{v:,.0f}" if v else "–" for v in values) + " |")
    print("| **total** | " + " | ".join(f"**{v:,.0f}**" for v in total) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
