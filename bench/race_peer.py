#!/usr/bin/env python3
"""Race at scale, on the peer: 200 callers reveal one secret at the same instant, 100 rounds.

For snappass 1.6.2 (`POST /<token>` after its preview page) and, for comparison, for vault
(`POST /api/v1/secrets/<id>/reveal`, 200 API tokens of the ticket's assigned agent): each round
stores one fresh secret, releases 200 threads at once from a barrier (each with its own
keep-alive connection), and counts how many callers got the secret. A round "leaked" when more
than one caller did. vault must never leak (tests/ prove it too); snappass reads and then
deletes in two separate Redis commands, so concurrent readers all get the secret.

`bench/run` runs this as part of the benchmark. Alone (after `bench/run` has made the peer's
virtualenv), with its own redis-server and both servers:

    .venv/bin/python bench/race_peer.py [--rounds 100] [--callers 200]
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness
import loader

RACE_AGENT = "race@bench.example.com"
RACE_TICKET = "RACE-1"


@dataclass
class RaceResult:
    server: str
    rounds: int
    callers: int
    winners: list[int] = field(default_factory=list)  # callers that got the secret, per round
    errors: int = 0  # transport errors or 5xx
    seconds: float = 0.0

    @property
    def leaked_rounds(self) -> int:
        return sum(1 for w in self.winners if w > 1)

    @property
    def empty_rounds(self) -> int:
        return sum(1 for w in self.winners if w == 0)

    def as_dict(self) -> dict[str, Any]:
        return {"server": self.server, "rounds": self.rounds, "callers": self.callers,
                "leaked_rounds": self.leaked_rounds, "rounds_without_winner": self.empty_rounds,
                "max_winners": max(self.winners, default=0),
                "mean_winners": round(statistics.fmean(self.winners), 2) if self.winners else 0,
                "errors": self.errors, "seconds": round(self.seconds, 1)}

    def line(self) -> str:
        d = self.as_dict()
        return (f"{self.server}: {d['leaked_rounds']} of {self.rounds} rounds leaked to more than "
                f"one caller ({self.callers} callers each; most in one round: {d['max_winners']}, "
                f"mean {d['mean_winners']}; rounds with no winner: {d['rounds_without_winner']}; "
                f"errors: {d['errors']})")


class _Caller(threading.Thread):
    """One caller: its own connection; fires when the barrier opens, reports, waits again."""

    def __init__(self, race: _Race, index: int) -> None:
        super().__init__(daemon=True)
        self.race, self.index = race, index
        self.conn: http.client.HTTPConnection | None = None

    def _send(self, method: str, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.race.port, timeout=30)
            try:
                self.conn.request(method, path, body=b"", headers=headers)
                resp = self.conn.getresponse()
                return resp.status, resp.read()
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        race = self.race
        while True:
            race.start.wait()
            if race.stop:
                return
            method, path, headers = race.request_for(self.index)
            try:
                status, body = self._send(method, path, headers)
                race.results[self.index] = (status, body)
            except (OSError, http.client.HTTPException):
                race.results[self.index] = (0, b"")
            race.done.wait()


class _Race:
    def __init__(self, port: int, callers: int,
                 request_for: Callable[[int], tuple[str, str, dict[str, str]]]) -> None:
        self.port = port
        self.request_for = request_for
        self.start = threading.Barrier(callers + 1)
        self.done = threading.Barrier(callers + 1)
        self.stop = False
        self.results: list[tuple[int, bytes]] = [(0, b"")] * callers
        self.threads = [_Caller(self, i) for i in range(callers)]
        for t in self.threads:
            t.start()

    def round(self) -> list[tuple[int, bytes]]:
        self.results = [(0, b"")] * len(self.threads)
        self.start.wait()  # all callers fire at once
        self.done.wait()
        return list(self.results)

    def close(self) -> None:
        self.stop = True
        self.start.wait()
        for t in self.threads:
            t.join(5)


def race_snappass(url: str, rounds: int, callers: int) -> RaceResult:
    port = urlsplit(url).port or 80
    password = loader.realistic_password()
    marker = password[:40].encode()  # what only a response carrying the secret contains
    body = loader.snappass_create_body()
    target = {"path": ""}
    result = RaceResult("snappass 1.6.2", rounds, callers)

    def create() -> str:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"snappass create answered {resp.status}")
        link = json.loads(data)["link"]
        return urlsplit(link).path

    race = _Race(port, callers, lambda i: ("POST", target["path"], {}))
    started = time.perf_counter()
    try:
        for _ in range(rounds):
            target["path"] = create()
            answers = race.round()
            result.winners.append(sum(1 for status, data in answers
                                      if status == 200 and marker in data))
            result.errors += sum(1 for status, _ in answers if status == 0 or status >= 500)
    finally:
        race.close()
    result.seconds = time.perf_counter() - started
    return result


def race_vault(url: str, ext: Any, rounds: int, callers: int) -> RaceResult:
    """`ext`: the service layer on the same Redis and keys as the server at `url`."""
    port = urlsplit(url).port or 80
    accounts, vault = ext.accounts, ext.vault
    if not ext.store.get_agent(RACE_AGENT):
        accounts.add_agent(RACE_AGENT, "race agent password, bench only", name="Race")
    tokens = [accounts.create_token(RACE_AGENT, actor="bench")[0] for _ in range(callers)]
    vault.assign(RACE_TICKET, RACE_AGENT, actor="bench")
    envelope = loader.realistic_envelope(RACE_TICKET)
    target = {"id": ""}
    result = RaceResult("vault", rounds, callers)

    def request_for(i: int) -> tuple[str, str, dict[str, str]]:
        return ("POST", f"/api/v1/secrets/{target['id']}/reveal",
                {"Authorization": f"Bearer {tokens[i]}"})

    race = _Race(port, callers, request_for)
    started = time.perf_counter()
    try:
        for _ in range(rounds):
            target["id"] = vault.create_secret(RACE_TICKET, loader.KIND, envelope)["id"]
            answers = race.round()
            winners = 0
            for status, data in answers:
                if status == 200 and json.loads(data).get("envelope") == envelope:
                    winners += 1
            result.winners.append(winners)
            result.errors += sum(1 for status, _ in answers if status == 0 or status >= 500)
    finally:
        race.close()
    result.seconds = time.perf_counter() - started
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--callers", type=int, default=200)
    args = parser.parse_args()
    if not (harness.PEER_VENV / "bin" / "gunicorn").exists():
        print("the peer's virtualenv is missing: run bench/run once (it makes bench/.venv-peer)",
              file=sys.stderr)
        return 2
    workers, threads = harness.concurrency()
    with harness.scratch() as work:
        redis_server = harness.start_redis(work)
        procs = [redis_server.proc]
        try:
            snappass = harness.start_snappass(work, redis_server.url, workers, threads)
            procs.append(snappass)
            settings = harness.VaultSettings(redis_url=redis_server.url, port=harness.free_port())
            procs.append(harness.start_vault(work, settings, workers, threads))
            ext = settings.driver_app().extensions["vault"]
            harness.say(f"gunicorn: {workers} workers x {threads} threads each; "
                        f"{args.rounds} rounds of {args.callers} concurrent reveals")
            peer = race_snappass(snappass.url, args.rounds, args.callers)
            harness.say(peer.line())
            ours = race_vault(procs[-1].url, ext, args.rounds, args.callers)
            harness.say(ours.line())
            return 1 if ours.leaked_rounds or ours.empty_rounds else 0
        finally:
            for p in reversed(procs):
                p.stop()


if __name__ == "__main__":
    sys.exit(main())
