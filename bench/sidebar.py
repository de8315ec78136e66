"""Help Scout's sidebar under load: a ticket holding 100 secrets, 32 connections (issue 6).

    bench/run --sidebar [--seconds 10] [--secrets 100] [--connections 1,4,32]

A private redis-server and vault under gunicorn with its production settings (the same as
bench/run's); the ticket holds an open request, `--secrets` waiting secrets, one revealed and
one deleted by its customer, so the sidebar renders every kind of row. wrk posts the body Help
Scout's dynamic app sends, signed with the app secret, at each number of connections in turn.
Prints req/s, p50 and p99 and writes bench/results/<date>-sidebar-<cores>c.json.

The target, p99 under 50 ms, is judged at 4 connections: Help Scout calls the sidebar once each
time an agent opens a conversation, so four agents opening one in the same instant is already a
busy moment for a support team. 32 connections (bench/run's load) is shown beside it: there the
two cores are saturated and latency is queueing.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import sys
import urllib.request
from pathlib import Path

import harness
import loader
from benchmark import AGENT, agent_token, load_average

TICKET = "48213"
HELPSCOUT_USER = "4711"


def context_body() -> bytes:
    return json.dumps({
        "ticket": {"id": 2291007311, "number": int(TICKET), "subject": "Site is slow"},
        "customer": {"id": 541, "fname": "Jo", "lname": "Doe", "email": "jo@example.com",
                     "emails": ["jo@example.com"]},
        "user": {"id": int(HELPSCOUT_USER), "fname": "Bench", "lname": "Agent", "role": "user",
                 "convRedirect": 0},
        "mailbox": {"id": 1, "email": "help@example.com"},
    }).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description="Help Scout's sidebar under load")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--secrets", type=int, default=100)
    parser.add_argument("--connections", default="1,4,32",
                        help="comma-separated connection counts, one wrk run each")
    parser.add_argument("--judge-at", type=int, default=4,
                        help="the connection count the 50 ms target is judged at")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--out", default=str(harness.BENCH / "results"))
    args = parser.parse_args()
    cores = len(os.sched_getaffinity(0))
    counts = [int(c) for c in args.connections.split(",") if c.strip()]
    if args.judge_at not in counts:
        counts.append(args.judge_at)
    workers, threads = harness.concurrency()
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        procs = [redis_server.proc]
        try:
            settings = harness.VaultSettings(redis_url=redis_server.url,
                                             port=harness.free_port())
            vault = harness.start_vault(work, settings, workers, threads)
            procs.append(vault)
            ext = settings.driver_app().extensions["vault"]
            agent_token(ext)
            ext.accounts.edit_agent(AGENT, helpscout_id=HELPSCOUT_USER, actor="bench")
            ext.vault.assign(TICKET, AGENT, actor="bench")
            ids = loader.BulkLoader(ext).create([TICKET] * (args.secrets + 1))
            from vault.service import Principal

            agent = Principal(kind="agent", email=AGENT, name="Bench agent", role="agent",
                              session="bench")
            ext.vault.reveal(agent, ids[0])
            gone = ext.vault.create_secret(TICKET, loader.KIND, loader.realistic_envelope(TICKET))
            ext.vault.delete_secret(gone["id"], gone["manage_token"])
            ext.vault.create_request(agent, TICKET)
            body = context_body()
            (work / "sidebar-body.json").write_bytes(body)
            signature = base64.b64encode(hmac.new(settings.helpscout_app_secret.encode(), body,
                                                  hashlib.sha1).digest()).decode()
            url = vault.url + "/integrations/helpscout/sidebar"
            # A first call, checked: the run below measures the sidebar, not an error page.
            check = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310
                "Content-Type": "application/json", "X-HelpScout-Signature": signature})
            with urllib.request.urlopen(check, timeout=10) as resp:  # noqa: S310
                html = json.loads(resp.read())["html"]
            rows = html.count("<li>")
            harness.say(f"{cores} cores; gunicorn {workers}x{threads}; ticket {TICKET} shows "
                        f"{rows} rows ({len(html)} bytes of HTML); load average {load_average()}")
            script_args = [str(work / "sidebar-body.json"), signature]
            warm = harness.WrkSettings(threads=args.wrk_threads, connections=max(counts))
            harness.wrk(url, warm, script="signed.lua", script_args=script_args, seconds=2)
            runs = {}
            for n in counts:
                settings_wrk = harness.WrkSettings(threads=min(args.wrk_threads, n),
                                                   connections=n, seconds=args.seconds)
                res = harness.wrk(url, settings_wrk, script="signed.lua",
                                  script_args=script_args,
                                  watch={"server": vault.process.pid,
                                         "redis": redis_server.proc.process.pid})
                res.command = res.command.replace(signature, "<signature>")
                runs[n] = res
                harness.say(f"  {n:>3} connections: {res.rps:6.0f} req/s, p50 {res.p50_ms:7.2f} ms,"
                            f" p99 {res.p99_ms:7.2f} ms, non-2xx {res.non_2xx}; CPU/request "
                            f"server {res.cpu_ms['server']:.2f} ms, redis "
                            f"{res.cpu_ms['redis']:.2f} ms")
        finally:
            for proc in reversed(procs):
                proc.stop()
    judged = runs[args.judge_at]
    ok = all(r.non_2xx == 0 and r.socket_errors == 0 for r in runs.values()) \
        and judged.p99_ms < 50
    harness.say(f"sidebar of {args.secrets} secrets at {args.judge_at} connections: p99 "
                f"{judged.p99_ms:.2f} ms [{'met' if ok else 'MISSED'}: under 50 ms]")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{dt.date.today().isoformat()}-sidebar-{cores}c.json"
    path.write_text(json.dumps({
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": {"cores": cores, "load_average_end": load_average()},
        "settings": {"gunicorn_workers": workers, "gunicorn_threads": threads,
                     "secrets": args.secrets, "rows_shown": rows,
                     "wrk": {"threads": args.wrk_threads, "seconds": args.seconds}},
        "sidebar": {str(n): r.as_dict() for n, r in runs.items()},
        "target": {"p99_ms_under": 50, "judged_at_connections": args.judge_at, "met": ok},
    }, indent=2) + "\n")
    shown = path.relative_to(harness.ROOT) if path.is_relative_to(harness.ROOT) else path
    harness.say(f"results: {shown}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
