#!/usr/bin/env python3
"""vault against snappass 1.6.2 and a hello-world ceiling, on this machine. Run by `bench/run`.

One private redis-server (no persistence) serves everything; the three servers run one at a
time under the same gunicorn worker and thread counts (vault's production default for this
machine), driven by the same wrk settings. Then, on vault alone: Redis memory per stored secret,
reveal latency with 10,000 and with 1,000,000 secrets stored, purge time of a ticket holding
1,000 and 10,000 secrets; and the race (bench/race_peer.py). Prints Markdown tables and writes
bench/results/<date>-<cores>c.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader
import race_peer
from harness import say

AGENT = "bench@bench.example.com"
AGENT_PASSWORD = "bench agent password, never used to log in"  # noqa: S105

TARGETS = {
    "vs_snappass": 1.0,  # required (bench/README.md): create and reveal each >= 1.0x
    "vs_snappass_goal": 1.5,  # the goal beyond it
    "vs_ceiling": 0.6,  # a goal: at least 0.6 of the ceiling's rate
    "p99_ms": 50.0,  # p99 under 50 ms at 32 connections
    "flat": 0.20,  # reveal latency within 20% from 10,000 to 1,000,000 stored secrets
    "purge_10k_s": 1.0,  # a 10,000-secret purge under 1 s
}


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_total() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def versions(redis_server: harness.RedisServer) -> dict[str, str]:
    out: dict[str, str] = {"python": platform.python_version()}
    for name in ("vault", "flask", "werkzeug", "gunicorn", "redis", "cryptography",
                 "flask-limiter", "prometheus-client"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "?"
    peer = subprocess.run(
        [str(harness.PEER_VENV / "bin" / "python"), "-c",
         "import importlib.metadata as m, json; print(json.dumps({n: m.version(n) for n in "
         "('snappass', 'flask', 'gunicorn', 'redis', 'cryptography')}))"],
        capture_output=True, text=True, check=True)
    out.update({f"peer:{k}": v for k, v in json.loads(peer.stdout).items()})
    out["redis-server"] = redis_server.version()
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    text = (wrk.stdout or wrk.stderr).strip()
    out["wrk"] = text.splitlines()[0].split(" [")[0] if text else "?"
    return out


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def agent_token(ext: Any) -> str:
    if not ext.store.get_agent(AGENT):
        ext.accounts.add_agent(AGENT, AGENT_PASSWORD, name="Bench agent")
    token, _ = ext.accounts.create_token(AGENT, actor="bench")
    return str(token)


def assigned_targets(ext: Any, count: int, tickets: int, prefix: str) -> list[str]:
    """`count` waiting secrets spread over `tickets` tickets assigned to the bench agent."""
    names = [f"{prefix}{i}" for i in range(tickets)]
    for name in names:
        ext.vault.assign(name, AGENT, actor="bench")
    return loader.BulkLoader(ext).create(names[i % tickets] for i in range(count))


def reveal_paths(ids: list[str]) -> list[str]:
    return [f"/api/v1/secrets/{id_}/reveal" for id_ in ids]


class Revealer:
    """One keep-alive connection, one reveal after another: latency without queueing."""

    def __init__(self, port: int, token: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.headers = {"Authorization": f"Bearer {token}"}
        self.times: list[float] = []
        self.non_200 = 0

    def reveal(self, ids: list[str], *, keep: bool = True) -> None:
        for id_ in ids:
            t0 = time.perf_counter()
            self.conn.request("POST", f"/api/v1/secrets/{id_}/reveal", body=b"",
                              headers=self.headers)
            resp = self.conn.getresponse()
            resp.read()
            elapsed = time.perf_counter() - t0
            if resp.status != 200:
                self.non_200 += 1
            if keep:
                self.times.append(elapsed * 1000)

    def stats(self) -> dict[str, Any]:
        times = sorted(self.times)
        return {"reveals": len(times), "p50_ms": round(statistics.median(times), 3),
                "p90_ms": round(times[int(0.90 * len(times)) - 1], 3),
                "p99_ms": round(times[int(0.99 * len(times)) - 1], 3),
                "mean_ms": round(statistics.fmean(times), 3), "non_200": self.non_200}


def memory_breakdown(redis_server: harness.RedisServer, secrets_stored: int) -> dict[str, int]:
    """Bytes per stored secret by kind of key (MEMORY USAGE of a sample of each kind; the
    ticket's own keys shared by its secrets, the global audit stream by all)."""
    client = redis_server.client()
    kinds = {"s": "secret metadata (hash)", "e": "wrapped envelope (string)",
             "ix": "ticket index (zset)", "w": "ticket waiting set (zset)",
             "t": "ticket record (hash)", "log": "ticket audit stream"}
    sizes: dict[str, list[int]] = {k: [] for k in kinds}
    counts: dict[str, int] = dict.fromkeys(kinds, 0)
    for key in client.scan_iter(match="vault:{*}:*", count=10_000):
        kind = key.decode().split(":")[2]
        if kind in counts:
            counts[kind] += 1
            if len(sizes[kind]) < 300:
                sizes[kind].append(int(client.memory_usage(key, samples=0) or 0))
    out = {label: round(statistics.fmean(sizes[k]) * counts[k] / secrets_stored)
           for k, label in kinds.items() if sizes[k]}
    audit = client.memory_usage("vault:audit", samples=0)
    if audit:
        out["global audit stream"] = round(int(audit) / secrets_stored)
    return out


def count_secrets(redis_server: harness.RedisServer) -> int:
    """Secret records stored (`vault:{tag}:s:<id>`), counted by SCAN."""
    client = redis_server.client()
    return sum(1 for _ in client.scan_iter(match="vault:{*}:s:*", count=10_000))


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.wrk = harness.WrkSettings(threads=args.wrk_threads, connections=args.connections,
                                       seconds=args.seconds)
        default_workers, default_threads = harness.concurrency()
        self.workers = args.workers or default_workers
        self.threads = args.threads or default_threads
        self.results: dict[str, Any] = {}
        self.procs: list[harness.Proc] = []
        self.redis_pid = 0
        self.runs: dict[str, list[harness.WrkResult]] = {}
        self.pools = 0

    def stop(self, proc: harness.Proc) -> None:
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()

    def file(self, name: str, lines: list[str]) -> str:
        return str(write_lines(self.work / name, lines))

    def run_wrk(self, label: str, url: str, server: harness.Proc, **kw: Any) -> harness.WrkResult:
        watch = {"server": server.process.pid, "redis": self.redis_pid}
        res = harness.wrk(url, self.wrk, watch=watch, **kw)
        note = f"  ({res.non_2xx} non-2xx!)" if res.non_2xx else ""
        note += f"  ({res.socket_errors} socket errors!)" if res.socket_errors else ""
        cpu = res.cpu_ms
        say(f"  {label:<36} {res.rps:>7.0f} req/s  p50 {res.p50_ms:6.2f} ms  "
            f"p99 {res.p99_ms:6.2f} ms  CPU/request: server {cpu['server']:.2f} ms, "
            f"redis {cpu['redis']:.2f} ms, wrk {cpu['wrk']:.2f} ms{note}")
        return res

    # -- throughput ---------------------------------------------------------------------------

    def pool_size(self, op: str) -> int:
        """Distinct secrets a reveal run may consume. wrk's threads each take their own share
        of the file and may serve unequal numbers of requests, so each share alone covers the
        run: twice 1.25x the best rate seen for this op so far, or before any, 1.5x the
        ceiling's (nothing on this stack is faster; a run that still runs out is run again
        with twice as many)."""
        seen = [r.rps for r in self.runs.get(op, [])]
        rate = max(seen) * 1.25 * 2 if seen else max(r.rps for r in self.runs["ceiling"]) * 1.5
        return int(rate * self.wrk.seconds) + 2000

    def snappass_pool(self, redis_server: harness.RedisServer, n: int) -> str:
        """`n` snappass secrets made by snappass's own code; returns the file of reveal paths."""
        self.pools += 1
        paths = self.work / f"snappass-paths-{self.pools}.txt"
        subprocess.run([str(harness.PEER_VENV / "bin" / "python"),
                        str(harness.BENCH / "snappass_fill.py"), str(n), str(paths),
                        str(self.work / "snappass-password.txt")],
                       env=harness.snappass_env(redis_server.url), check=True)
        return str(paths)

    def vault_pool(self, ext: Any, n: int) -> str:
        self.pools += 1
        ids = assigned_targets(ext, n, 1000, "REVEAL-")
        return self.file(f"vault-paths-{self.pools}.txt", reveal_paths(ids))

    def throughput(self, redis_server: harness.RedisServer, ext: Any,
                   servers: dict[str, harness.Proc], token: str) -> None:
        """`rounds` rounds of the five wrk runs, interleaved (a machine shared with other work
        disturbs them all alike); the table shows each one's median."""
        ceiling, snappass, vault = servers["ceiling"], servers["snappass"], servers["vault"]
        (self.work / "snappass-password.txt").write_text(loader.realistic_password())
        snap_bodies = self.file("snappass-bodies.txt",
                                [loader.snappass_create_body() for _ in range(100)])
        vault_bodies = self.file("vault-bodies.txt",
                                 [loader.vault_create_body(f"CREATE-{i}") for i in range(1000)])
        snap_create = [snap_bodies, "application/x-www-form-urlencoded", "application/json"]
        vault_create = [vault_bodies, "application/json", "application/json"]
        # Warm-up: every worker of every server has served requests of its kind.
        harness.wrk(ceiling.url + "/", self.wrk, seconds=2)
        harness.wrk(snappass.url + "/", self.wrk, script="bodies.lua", script_args=snap_create,
                    seconds=2)
        harness.wrk(vault.url + "/api/v1/secrets", self.wrk, script="bodies.lua",
                    script_args=vault_create, seconds=2)
        auth = f"Bearer {token}"
        for rnd in range(1, self.args.rounds + 1):
            say(f"round {rnd} of {self.args.rounds} (load average {load_average()})")
            self.record("ceiling", "ceiling: GET /", ceiling.url + "/", ceiling)
            self.record("snappass_create", "snappass create: POST /", snappass.url + "/", snappass,
                        script="bodies.lua", script_args=snap_create)
            n = self.pool_size("snappass_reveal")
            for _ in range(2):
                paths = self.snappass_pool(redis_server, n)
                res = self.record("snappass_reveal", "snappass reveal: POST /<key>",
                                  snappass.url + "/", snappass, script="paths.lua",
                                  script_args=[paths, str(self.wrk.threads)], pool=n)
                if not res.non_2xx:
                    break
                self.runs["snappass_reveal"].pop()
                n *= 2
                say(f"  (a wrk thread ran out of secrets: again with {n})")
            self.record("vault_create", "vault create: POST /api/v1/secrets",
                        vault.url + "/api/v1/secrets", vault, script="bodies.lua",
                        script_args=vault_create)
            n = self.pool_size("vault_reveal")
            for _ in range(2):
                paths = self.vault_pool(ext, n)
                stored = count_secrets(redis_server)
                res = self.record("vault_reveal", "vault reveal: POST …/reveal", vault.url + "/",
                                  vault, script="paths.lua",
                                  script_args=[paths, str(self.wrk.threads), auth],
                                  pool=n, stored=stored)
                if not res.non_2xx:
                    break
                self.runs["vault_reveal"].pop()
                n *= 2
                say(f"  (a wrk thread ran out of secrets: again with {n})")
        out = self.results["throughput"]
        for op, runs in self.runs.items():
            out[op] = summarize_runs(runs)

    def record(self, op: str, label: str, url: str, server: harness.Proc, *, pool: int = 0,
               stored: int = 0, **kw: Any) -> harness.WrkResult:
        res = self.run_wrk(label, url, server, **kw)
        res.extra = {"load_average": load_average()}
        if pool:
            res.extra["secrets_provided"] = pool
        if stored:
            res.extra["stored_secrets_at_start"] = stored
        self.runs.setdefault(op, []).append(res)
        return res

    # -- vault at scale --------------------------------------------------------------------------

    def memory(self, redis_server: harness.RedisServer, settings: harness.VaultSettings) -> None:
        n = self.args.memory_count
        say(f"Redis memory per stored secret ({n:,} secrets, 10 per ticket, 1 KiB envelopes)")
        redis_server.flush()
        before = redis_server.used_memory()
        seconds = loader.parallel_fill(settings, [f"MEM-{i // 10}" for i in range(n)],
                                       processes=self.args.fill_processes)
        after = redis_server.used_memory()
        per = (after - before) / n
        self.results["memory"] = {"secrets": n, "used_memory_before": before,
                                  "used_memory_after": after, "bytes_per_secret": round(per),
                                  "envelope_chars": loader.ENVELOPE_CHARS,
                                  "fill_seconds": round(seconds, 1),
                                  "breakdown_bytes_per_secret": memory_breakdown(redis_server, n)}
        say(f"  {per:,.0f} bytes per secret (used_memory {before:,} -> {after:,}; "
            f"stored in {seconds:.1f} s)")
        parts = self.results["memory"]["breakdown_bytes_per_secret"]
        say("  by key (MEMORY USAGE, sampled): " + ", ".join(f"{k} {v:,}" for k, v in parts.items()))

    def scale(self, redis_server: harness.RedisServer, settings: harness.VaultSettings,
              proc: harness.Proc, ext: Any) -> None:
        """Reveal latency with 10,000 and with 1,000,000 secrets stored, measured side by side:
        a second redis-server and vault hold the small store, and the two are measured in
        alternating blocks, so that whatever else the machine does falls on both alike."""
        small, big = 10_000, self.args.fill
        per_stage, warmup, block = self.args.latency_reveals, 200, 100
        say(f"reveal latency with {small:,} and {big:,} secrets stored ({per_stage:,} sequential "
            f"reveals on one connection each, alternating in blocks of {block}; {warmup} more "
            f"to warm up)")
        small_dir = self.work / "small"
        small_dir.mkdir(exist_ok=True)
        small_redis = harness.start_redis(small_dir)
        self.procs.append(small_redis.proc)
        small_settings = harness.VaultSettings(redis_url=small_redis.url, port=harness.free_port(),
                                               secret_key=settings.secret_key, keys=settings.keys)
        small_proc = harness.start_vault(small_dir, small_settings, self.workers, self.threads)
        self.procs.append(small_proc)
        small_ext = small_settings.driver_app().extensions["vault"]
        redis_server.flush()
        out: dict[str, Any] = {"stages": []}
        stages = []
        for total, rs, st, e, p, tag in ((small, small_redis, small_settings, small_ext, small_proc,
                                          "S"),
                                         (big, redis_server, settings, ext, proc, "B")):
            token = agent_token(e)
            targets = assigned_targets(e, per_stage + warmup, (per_stage + warmup) // 10,
                                       f"LAT{tag}-")
            filler = total - count_secrets(rs)
            seconds = loader.parallel_fill(st, [f"FILL{tag}-{i // 10}" for i in range(filler)],
                                           processes=self.args.fill_processes) if filler else 0.0
            stages.append((rs, Revealer(p.port, token), targets, count_secrets(rs), seconds))
        time.sleep(2)
        for _, revealer, targets, _, _ in stages:
            revealer.reveal(targets[:warmup], keep=False)
        for start in range(warmup, warmup + per_stage, block):
            for _, revealer, targets, _, _ in stages:
                revealer.reveal(targets[start:start + block])
        for rs, revealer, _, stored, seconds in stages:
            lat = revealer.stats()
            lat.update(stored_secrets=stored, fill_seconds=round(seconds, 1),
                       used_memory=rs.used_memory())
            out["stages"].append(lat)
            say(f"  {stored:>9,} stored: p50 {lat['p50_ms']:.2f} ms  p90 {lat['p90_ms']:.2f} ms  "
                f"p99 {lat['p99_ms']:.2f} ms  (filled in {seconds:.1f} s)")
        self.stop(small_proc)
        self.stop(small_redis.proc)
        a, b = out["stages"]
        out["p50_growth"] = round(b["p50_ms"] / a["p50_ms"] - 1, 3)
        out["p99_growth"] = round(b["p99_ms"] / a["p99_ms"] - 1, 3)
        # The same wrk run as the throughput table, now with a million secrets stored.
        token = agent_token(ext)
        needed = self.pool_size("vault_reveal")
        ids = assigned_targets(ext, needed, 1000, "BIGREVEAL-")
        paths = self.file("vault-paths-big.txt", reveal_paths(ids))
        stored = count_secrets(redis_server)
        res = self.run_wrk("reveal, 1M stored", proc.url + "/", proc, script="paths.lua",
                           script_args=[paths, str(self.wrk.threads), f"Bearer {token}"])
        out["wrk_reveal_at_scale"] = res.as_dict()
        out["wrk_reveal_at_scale"]["stored_secrets_at_start"] = stored
        self.results["scale"] = out

    def purge(self, ext: Any, redis_server: harness.RedisServer) -> None:
        say("purge: closing a ticket that holds 1,000 or 10,000 secrets (Vault.close)")
        out: dict[str, Any] = {"stored_secrets_around": count_secrets(redis_server)}
        bulk = loader.BulkLoader(ext)
        for size in (1_000, 10_000):
            runs = []
            for rep in range(self.args.purge_repeats):
                ticket = f"PURGE-{size}-{rep}"
                bulk.create([ticket] * size)
                t0 = time.perf_counter()
                purged = ext.vault.close(ticket, reason="closed", actor="bench")["purged"]
                runs.append((time.perf_counter() - t0) * 1000)
                if purged != size:
                    raise RuntimeError(f"purge of {ticket} removed {purged}, not {size}")
            out[str(size)] = {"runs_ms": [round(r, 1) for r in runs],
                              "median_ms": round(statistics.median(runs), 1),
                              "max_ms": round(max(runs), 1)}
            say(f"  {size:>6,} secrets: median {statistics.median(runs):.1f} ms, "
                f"max {max(runs):.1f} ms ({len(runs)} runs)")
        self.results["purge"] = out

    def race(self, redis_server: harness.RedisServer, snappass: harness.Proc,
             vault: harness.Proc, ext: Any) -> None:
        rounds, callers = self.args.race_rounds, self.args.race_callers
        say(f"race: {callers} concurrent reveals of one secret, {rounds} rounds")
        redis_server.flush()
        peer = race_peer.race_snappass(snappass.url, rounds, callers)
        say("  " + peer.line())
        ours = race_peer.race_vault(vault.url, ext, rounds, callers)
        say("  " + ours.line())
        self.results["race"] = {"snappass": peer.as_dict(), "vault": ours.as_dict()}


# -- report -------------------------------------------------------------------------------------

def summarize_runs(runs: list[harness.WrkResult]) -> dict[str, Any]:
    """The median of each measure over the rounds, the spread of the rate, and every run."""
    def med(key: str) -> float:
        return round(statistics.median(getattr(r, key) for r in runs), 3)

    cpu = {k: round(statistics.median(r.cpu_ms[k] for r in runs), 3) for k in runs[0].cpu_ms}
    return {"rps": round(statistics.median(r.rps for r in runs), 1),
            "rps_min": round(min(r.rps for r in runs), 1),
            "rps_max": round(max(r.rps for r in runs), 1),
            "p50_ms": med("p50_ms"), "p90_ms": med("p90_ms"), "p99_ms": med("p99_ms"),
            "cpu_ms_per_request": cpu,
            "non_2xx": sum(r.non_2xx for r in runs),
            "runs": [{**r.as_dict(), **r.extra} for r in runs]}


def ratios(r: dict[str, Any]) -> dict[str, float]:
    t = r["throughput"]
    out = {}
    for op in ("create", "reveal"):
        out[f"{op}_vs_snappass"] = round(t[f"vault_{op}"]["rps"] / t[f"snappass_{op}"]["rps"], 2)
        out[f"{op}_vs_ceiling"] = round(t[f"vault_{op}"]["rps"] / t["ceiling"]["rps"], 2)
    return out


def verdicts(r: dict[str, Any]) -> list[tuple[str, str, bool]]:
    out: list[tuple[str, str, bool]] = []
    t, q = r["throughput"], r["ratios"]
    for op in ("create", "reveal"):
        v = q[f"{op}_vs_snappass"]
        out.append((f"vault {op} >= {TARGETS['vs_snappass']}x snappass (required)", f"{v:.2f}x",
                    v >= TARGETS["vs_snappass"]))
        out.append((f"vault {op} >= {TARGETS['vs_snappass_goal']}x snappass (goal)",
                    f"{v:.2f}x", v >= TARGETS["vs_snappass_goal"]))
        v = q[f"{op}_vs_ceiling"]
        out.append((f"vault {op} >= {TARGETS['vs_ceiling']} of the ceiling (goal)", f"{v:.2f}",
                    v >= TARGETS["vs_ceiling"]))
        p99 = t[f"vault_{op}"]["p99_ms"]
        out.append((f"vault {op} p99 < {TARGETS['p99_ms']:.0f} ms at "
                    f"{r['settings']['wrk']['connections']} connections", f"{p99:.1f} ms",
                    p99 < TARGETS["p99_ms"]))
    if "scale" in r:
        s = r["scale"]
        for key in ("p50", "p99"):
            g = s[f"{key}_growth"]
            out.append((f"reveal {key} flat within {TARGETS['flat']:.0%}, "
                        f"{s['stages'][0]['stored_secrets']:,} to "
                        f"{s['stages'][1]['stored_secrets']:,} stored", f"{g:+.1%}",
                        g <= TARGETS["flat"]))
    if "purge" in r:
        ms = r["purge"]["10000"]["max_ms"]
        out.append((f"10,000-secret purge < {TARGETS['purge_10k_s']:.0f} s", f"{ms:.0f} ms (max)",
                    ms < TARGETS["purge_10k_s"] * 1000))
    if "race" in r:
        v = r["race"]["vault"]
        out.append(("vault race: exactly one winner every round",
                    f"{v['leaked_rounds']} leaked, {v['rounds_without_winner']} empty",
                    v["leaked_rounds"] == 0 and v["rounds_without_winner"] == 0))
    return out


def table(r: dict[str, Any]) -> str:
    t, q, s = r["throughput"], r["ratios"], r["settings"]
    w = s["wrk"]
    lines = [
        f"Machine: {r['machine']['cores']} cores ({r['machine']['cpu']}), "
        f"load average at start {r['machine']['load_average_start']}; "
        f"gunicorn {s['gunicorn_workers']} workers x {s['gunicorn_threads']} threads (gthread) "
        f"for all three; wrk -t{w['threads']} -c{w['connections']} -d{w['seconds']}s; "
        f"medians of {s['rounds']} interleaved rounds (the req/s range in brackets).",
        "",
        "| server | request | req/s | p50 ms | p99 ms | CPU ms/request: server, redis |",
        "|---|---|---:|---:|---:|---:|",
    ]
    rows = [("ceiling (hello-world Flask)", "GET /", "ceiling"),
            ("snappass 1.6.2", "create: POST / (form)", "snappass_create"),
            ("snappass 1.6.2", "reveal: POST /<key>", "snappass_reveal"),
            ("vault", "create: POST /api/v1/secrets (1 KiB envelope)", "vault_create"),
            ("vault", "reveal: POST /api/v1/secrets/<id>/reveal", "vault_reveal")]
    for server, what, key in rows:
        x = t[key]
        cpu = x.get("cpu_ms_per_request", {})
        lines.append(f"| {server} | {what} | {x['rps']:,.0f} ({x['rps_min']:,.0f} to {x['rps_max']:,.0f}) "
                     f"| {x['p50_ms']:.2f} | {x['p99_ms']:.2f} "
                     f"| {cpu.get('server', 0):.2f}, {cpu.get('redis', 0):.3f} |")
    lines += ["", "| ratio | create | reveal |", "|---|---:|---:|",
              f"| vault / snappass | {q['create_vs_snappass']:.2f}x | {q['reveal_vs_snappass']:.2f}x |",
              f"| vault / ceiling | {q['create_vs_ceiling']:.2f} | {q['reveal_vs_ceiling']:.2f} |"]
    extra = []
    if "memory" in r:
        m = r["memory"]
        extra.append(f"| Redis memory per stored secret ({m['secrets']:,} stored, 1 KiB envelopes) "
                     f"| {m['bytes_per_secret']:,} bytes |")
    if "scale" in r:
        sc = r["scale"]
        for st in sc["stages"]:
            extra.append(f"| reveal latency, {st['stored_secrets']:,} stored (one connection) "
                         f"| p50 {st['p50_ms']:.2f} ms, p99 {st['p99_ms']:.2f} ms |")
        a, b = sc["stages"]
        extra.append(f"| growth from {a['stored_secrets']:,} to {b['stored_secrets']:,} stored "
                     f"| p50 {sc['p50_growth']:+.1%}, p99 {sc['p99_growth']:+.1%} |")
        wa = sc["wrk_reveal_at_scale"]
        extra.append(f"| reveal with {wa['stored_secrets_at_start']:,} stored, wrk as above "
                     f"| {wa['rps']:,.0f} req/s, p50 {wa['p50_ms']:.2f} ms, p99 {wa['p99_ms']:.2f} ms |")
        fill = sum(st["fill_seconds"] for st in sc["stages"])
        extra.append(f"| time to store {sc['stages'][1]['stored_secrets']:,} secrets (bench loader) "
                     f"| {fill:.0f} s |")
    if "purge" in r:
        for size in ("1000", "10000"):
            p = r["purge"][size]
            extra.append(f"| purge a ticket of {int(size):,} secrets | {p['median_ms']:.0f} ms "
                         f"(max {p['max_ms']:.0f} ms) |")
    if "race" in r:
        for name in ("snappass", "vault"):
            x = r["race"][name]
            extra.append(f"| race, {name}: rounds of {x['callers']} concurrent reveals that "
                         f"leaked to >1 caller | {x['leaked_rounds']} of {x['rounds']} "
                         f"(most in one round: {x['max_winners']}) |")
    if extra:
        lines += ["", "| vault at scale | |", "|---|---|", *extra]
    lines += ["", "| target | measured | |", "|---|---|---|"]
    for name, value, ok in r["targets"]:
        lines.append(f"| {name} | {value} | {'met' if ok else '**missed**'} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="vault vs snappass vs a hello-world ceiling")
    parser.add_argument("--seconds", type=int, default=10, help="each wrk run (default 10)")
    # Five, not three: on this kind of shared 2-core host one run in four or five, of any
    # server, falls into a state of some 35 context switches a request at a third of its rate
    # for its whole 10 s (seen for snappass and vault alike); two such runs of three move a
    # median, two of five do not.
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds of the five throughput runs; the table shows medians")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--memory-count", type=int, default=100_000)
    parser.add_argument("--fill", type=int, default=1_000_000,
                        help="stored secrets for the large latency stage (default 1,000,000)")
    parser.add_argument("--fill-processes", type=int, default=2)
    parser.add_argument("--latency-reveals", type=int, default=3000)
    parser.add_argument("--purge-repeats", type=int, default=3)
    parser.add_argument("--race-rounds", type=int, default=100)
    parser.add_argument("--race-callers", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2,
                        help="gunicorn workers for every server (default 2, the judged "
                             "setup: vault serve --workers 2)")
    parser.add_argument("--no-default-run", action="store_true",
                        help="skip the second throughput table, at vault's production default "
                             "workers and threads for this machine")
    parser.add_argument("--threads", type=int, default=0,
                        help="gunicorn threads per worker (default: vault's own default)")
    parser.add_argument("--quick", action="store_true",
                        help="throughput table only (no memory, scale, purge or race)")
    parser.add_argument("--out", default=str(harness.BENCH / "results"))
    args = parser.parse_args()

    cores = len(os.sched_getaffinity(0))
    started = time.perf_counter()
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": cores, "cpu": cpu_model(), "memory_bytes": memory_total(),
                    "kernel": platform.release(), "load_average_start": load_average()},
        "throughput": {},
    }
    with harness.scratch() as work:
        bench = Bench(args, work)
        results["settings"] = {
            "gunicorn_workers": bench.workers, "gunicorn_threads": bench.threads,
            "gunicorn_worker_class": "gthread", "rounds": args.rounds,
            "wrk": {"threads": args.wrk_threads, "connections": args.connections,
                    "seconds": args.seconds},
            "vault_env": {k: ("<random>" if k in {"VAULT_SECRET_KEY", "VAULT_KEYS",
                                                   "VAULT_HELPSCOUT_APP_SECRET"} else v)
                          for k, v in harness.VaultSettings("redis://…", 0, "x", "k:x")
                          .variables().items() if k not in {"VAULT_REDIS_URL", "VAULT_BASE_URL"}},
        }
        redis_server = harness.start_redis(work)
        bench.procs.append(redis_server.proc)
        bench.redis_pid = redis_server.proc.process.pid
        results["versions"] = versions(redis_server)
        bench.results = results
        try:
            say(f"{cores} cores; gunicorn {bench.workers} workers x {bench.threads} threads for "
                f"every server; wrk {' '.join(bench.wrk.args())}; load average "
                f"{results['machine']['load_average_start']}")
            servers = {
                "ceiling": harness.start_ceiling(work, bench.workers, bench.threads),
                "snappass": harness.start_snappass(work, redis_server.url, bench.workers,
                                                   bench.threads),
            }
            bench.procs.extend(servers.values())
            settings = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port())
            servers["vault"] = harness.start_vault(work, settings, bench.workers, bench.threads)
            bench.procs.append(servers["vault"])
            ext = settings.driver_app().extensions["vault"]
            token = agent_token(ext)
            bench.throughput(redis_server, ext, servers, token)
            bench.stop(servers["ceiling"])
            results["ratios"] = ratios(results)
            if not args.quick:
                bench.memory(redis_server, settings)
                bench.scale(redis_server, settings, servers["vault"], ext)
                bench.purge(ext, redis_server)
                bench.race(redis_server, servers["snappass"], servers["vault"], ext)
            default = harness.concurrency()
            if not args.no_default_run and default != (bench.workers, bench.threads):
                # The same table at what `vault serve` picks on this machine without --workers.
                for name in ("snappass", "vault"):
                    bench.stop(servers[name])
                judged, results["throughput"] = results["throughput"], {}
                bench.workers, bench.threads = default
                bench.runs = {}
                say(f"\nthe production default: {bench.workers} workers x {bench.threads} "
                    f"threads for every server")
                servers = {
                    "ceiling": harness.start_ceiling(work, *default),
                    "snappass": harness.start_snappass(work, redis_server.url, *default),
                    "vault": harness.start_vault(work, settings, *default),
                }
                bench.procs.extend(servers.values())
                bench.throughput(redis_server, ext, servers, token)
                results["throughput_default"] = {
                    "gunicorn_workers": default[0], "gunicorn_threads": default[1],
                    **results["throughput"]}
                results["ratios_default"] = ratios(results)
                results["throughput"] = judged
        finally:
            bench.stop_all()
    results["machine"]["load_average_end"] = load_average()
    results["targets"] = verdicts(results)
    results["seconds"] = round(time.perf_counter() - started)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{dt.date.today().isoformat()}-{cores}c.json"
    path.write_text(json.dumps(results, indent=2) + "\n")
    say("")
    say(table(results))
    if "ratios_default" in results:
        d, q = results["throughput_default"], results["ratios_default"]
        say(f"\nAt the production default ({d['gunicorn_workers']} workers x "
            f"{d['gunicorn_threads']} threads): vault / snappass create "
            f"{q['create_vs_snappass']:.2f}x, reveal {q['reveal_vs_snappass']:.2f}x; vault p99 "
            f"create {d['vault_create']['p99_ms']:.1f} ms, reveal "
            f"{d['vault_reveal']['p99_ms']:.1f} ms")
    say("")
    rel = path.relative_to(harness.ROOT) if path.is_relative_to(harness.ROOT) else path
    say(f"results: {rel} ({results['seconds']} s in all)")
    if not all(ok for _, _, ok in results["targets"]):
        say("some targets were missed: bench/run --profile shows where vault's time goes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
