"""Faults in the middle of the work: a gunicorn worker killed mid-reveal, a frozen Redis.

- A worker killed with SIGKILL while many sessions race to reveal many secrets never delivers
  one envelope to two sessions; afterwards every secret is either revealed (to one session,
  whose retry inside the grace window recovers an answer the kill swallowed) or still
  revealable.
- A Redis frozen with SIGSTOP for longer than the socket timeout makes creates and reveals
  answer 503 with Retry-After within a bound (never a hang, never a 500); after SIGCONT they
  succeed again, and a reveal that Redis ran after its caller had been told 503 is still bound
  to that caller's session alone.

Each test runs its own gunicorn (the first on the suite's Redis, the second on a private
redis-server it freezes). Nothing waits by the clock: worker pids and readiness come from
gunicorn's own output, every blocking call has a deadline.
"""

from __future__ import annotations

import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import (
    RedisServer,
    base_config,
    gunicorn_env,
    private_redis,
    start_gunicorn,
    stop_server,
)
from helpers import sealed

from vault import create_app

pytestmark = pytest.mark.slow

RAISED = {"ratelimit_reveal": "100000000/minute", "ratelimit_submit": "100000000/minute",
          "max_waiting_per_ticket": 100000, "log_level": "WARNING"}
DEADLINE = 30.0  # the longest any blocking step may take before the test fails


class Workers:
    """Gunicorn's worker pids, read from its own output ("Booting worker with pid: N")."""

    BOOT = re.compile(rb"Booting worker with pid: (\d+)")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pids: list[int] = []
        self.booted = threading.Condition(self.lock)

    def on_line(self, line: bytes) -> None:
        found = self.BOOT.search(line)
        if found:
            with self.booted:
                self.pids.append(int(found.group(1)))
                self.booted.notify_all()

    def wait_for(self, count: int) -> list[int]:
        """Block until `count` workers have booted in all (a deadline, not a poll)."""
        with self.booted:
            assert self.booted.wait_for(lambda: len(self.pids) >= count, DEADLINE), self.pids
            return list(self.pids)


# -- a worker killed in the middle of reveals -----------------------------------------------------

SESSIONS = 30
RIVALS = 3  # sessions racing for each secret: a kill often swallows a winner's answer
SECRETS_PER_GROUP = 30
WORKERS = 3


@pytest.fixture
def killable(redis_server: RedisServer, redis_client: Any, tmp_path: Path
             ) -> Iterator[tuple[Any, Workers, Any]]:
    workers = Workers()
    local = create_app(base_config(redis_server.url, cheap_passwords=True, **RAISED)
                       ).extensions["vault"]
    server = start_gunicorn(gunicorn_env(redis_server.url, **RAISED), tmp_path,
                            workers=WORKERS, threads=8, on_line=workers.on_line)
    yield server, workers, local
    stop_server(server)
    local.close()


def test_a_worker_killed_mid_reveal_never_hands_an_envelope_to_two_sessions(killable):
    server, workers, local = killable
    url = server.url
    workers.wait_for(WORKERS)
    email = "storm@example.com"
    local.accounts.add_agent(email, "correct horse battery staple", name="Storm")
    tokens = [local.accounts.create_token(email)[0] for _ in range(SESSIONS)]
    ticket = "storm-1"
    rv = requests.post(f"{url}/api/v1/requests", json={"ticket": ticket}, timeout=10,
                       headers={"Authorization": f"Bearer {tokens[0]}"})
    assert rv.status_code == 201
    envelopes: dict[str, str] = {}
    groups: list[list[str]] = []  # the secrets of each group of RIVALS sessions
    for _ in range(SESSIONS // RIVALS):
        groups.append([])
        for _ in range(SECRETS_PER_GROUP):
            envelope, _ = sealed(ticket)
            sid = local.vault.create_secret(ticket, "wordpress", envelope)["id"]
            envelopes[sid] = envelope
            groups[-1].append(sid)
        random.Random(len(groups)).shuffle(groups[-1])

    # The sessions of a group walk the group's secrets in the same order, so each secret is
    # raced by its RIVALS sessions at once, while all SESSIONS sessions reveal concurrently; one
    # worker is killed a third of the way in, another two thirds in.
    total = SESSIONS * SECRETS_PER_GROUP
    outcomes: list[tuple[str, int, int, str | None]] = []  # (secret, session, status, envelope)
    errors: list[tuple[str, int, str]] = []  # answers the kill swallowed
    lock = threading.Lock()
    progress = {"done": 0}
    marks = {total // 3: threading.Event(), 2 * total // 3: threading.Event()}
    go = threading.Barrier(SESSIONS)

    def storm(i: int) -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {tokens[i]}"}
        go.wait(DEADLINE)
        for sid in groups[i // RIVALS]:
            try:
                r = session.post(f"{url}/api/v1/secrets/{sid}/reveal", headers=headers,
                                 timeout=DEADLINE)
                entry = (sid, i, r.status_code, r.json().get("envelope"))
                with lock:
                    outcomes.append(entry)
            except requests.RequestException as exc:
                with lock:
                    errors.append((sid, i, type(exc).__name__))
            with lock:
                progress["done"] += 1
                mark = marks.get(progress["done"])
            if mark is not None:
                mark.set()
        session.close()

    threads = [threading.Thread(target=storm, args=(i,), daemon=True) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    killed = []
    for n, (_, mark) in enumerate(sorted(marks.items())):
        assert mark.wait(DEADLINE), "the reveals stopped making progress"
        alive = [pid for pid in workers.wait_for(WORKERS + n) if pid not in killed]
        victim = alive[n % len(alive)]
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)
    for t in threads:
        t.join(DEADLINE)
    assert not any(t.is_alive() for t in threads)
    # The master noticed each death and booted a replacement.
    workers.wait_for(WORKERS + len(killed))

    print(f"{len(outcomes)} answers, {len(errors)} lost to the kills of {killed}")
    assert len(outcomes) + len(errors) == total
    assert errors, "the kills hit no request in flight: the test proved nothing"
    assert {status for _, _, status, _ in outcomes} <= {200, 410}, \
        sorted({status for _, _, status, _ in outcomes})

    winners: dict[str, set[int]] = {sid: set() for sid in envelopes}
    for sid, i, status, envelope in outcomes:
        if status == 200:
            assert envelope == envelopes[sid]
            winners[sid].add(i)
    assert all(len(w) <= 1 for w in winners.values()), {s: w for s, w in winners.items()
                                                        if len(w) > 1}

    # Every secret is revealed once, or still revealable. An answer swallowed by a kill is
    # recovered by the session it was meant for (inside the grace window), and by no other.
    lost: dict[str, list[int]] = {}
    for sid, i, _ in errors:
        lost.setdefault(sid, []).append(i)
    recovered = still_waiting = 0
    for sid, envelope in envelopes.items():
        meta = requests.get(f"{url}/api/v1/secrets/{sid}", timeout=10).json()
        if winners[sid]:
            assert meta["state"] == "revealed", (sid, meta)
            continue
        if meta["state"] == "waiting":
            rv = requests.post(f"{url}/api/v1/secrets/{sid}/reveal", timeout=10,
                               headers={"Authorization": f"Bearer {tokens[0]}"})
            assert rv.status_code == 200 and rv.json()["envelope"] == envelope
            still_waiting += 1
            continue
        assert meta["state"] == "revealed", (sid, meta)
        retried = {}
        for i in [*lost.get(sid, []), *range(SESSIONS)]:
            if i in retried:
                continue
            rv = requests.post(f"{url}/api/v1/secrets/{sid}/reveal", timeout=10,
                               headers={"Authorization": f"Bearer {tokens[i]}"})
            retried[i] = rv.status_code
            if rv.status_code == 200:
                assert rv.json()["envelope"] == envelope
        assert sorted(retried.values()).count(200) == 1, (sid, retried)
        winner = next(i for i, code in retried.items() if code == 200)
        assert winner in lost.get(sid, []), (sid, retried, lost.get(sid))
        recovered += 1
    print(f"{recovered} answers swallowed by a kill recovered by their own session; "
          f"{still_waiting} secrets never revealed, still revealable")


# -- Redis frozen longer than the socket timeout --------------------------------------------------

SOCKET_TIMEOUT = 0.5
FROZEN_BOUND = 5.0  # a request queued behind others still answers well within this


@pytest.fixture(scope="module")
def freezable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with private_redis("vault-redis-frozen-") as own:
        overrides = {"redis_socket_timeout": SOCKET_TIMEOUT,
                     "redis_connect_timeout": SOCKET_TIMEOUT, **RAISED}
        local = create_app(base_config(own.url, cheap_passwords=True, **overrides)
                           ).extensions["vault"]
        local.accounts.add_agent("frozen@example.com", "correct horse battery staple")
        tokens = [local.accounts.create_token("frozen@example.com")[0] for _ in range(2)]
        server = start_gunicorn(gunicorn_env(own.url, **overrides),
                                Path(tmp_path_factory.mktemp("frozen")), workers=2, threads=4)
        try:
            yield {"redis": own, "server": server, "tokens": tokens}
        finally:
            stop_server(server)
            local.close()


def _create(url: str, ticket: str) -> tuple[requests.Response, str]:
    envelope, _ = sealed(ticket)
    return requests.post(f"{url}/api/v1/secrets", timeout=DEADLINE, json={
        "ticket": ticket, "kind": "wordpress", "envelope": envelope}), envelope


def _reveal(url: str, sid: str, token: str) -> requests.Response:
    return requests.post(f"{url}/api/v1/secrets/{sid}/reveal", timeout=DEADLINE,
                         headers={"Authorization": f"Bearer {token}"})


def _assert_503(rv: requests.Response, took: float, what: str) -> None:
    assert rv.status_code == 503, (what, rv.status_code, rv.text)
    assert rv.headers["Content-Type"].startswith("application/problem+json"), what
    assert int(rv.headers["Retry-After"]) >= 1, what
    assert rv.json()["status"] == 503
    assert took < FROZEN_BOUND, (what, took)


def test_a_frozen_redis_gives_503_with_retry_after_then_recovers(freezable):
    url, own = freezable["server"].url, freezable["redis"]
    token, other = freezable["tokens"]
    ticket = "frozen-1"
    rv = requests.post(f"{url}/api/v1/requests", json={"ticket": ticket}, timeout=10,
                       headers={"Authorization": f"Bearer {token}"})
    assert rv.status_code == 201
    created, envelope = _create(url, ticket)
    assert created.status_code == 201
    sid = created.json()["id"]
    assert own.process is not None
    pid = own.process.pid

    os.kill(pid, signal.SIGSTOP)
    try:
        # One at a time: each answers 503 about one socket timeout later.
        for what, call in [("create", lambda: _create(url, ticket)[0]),
                           ("reveal", lambda: _reveal(url, sid, token))]:
            started = time.monotonic()
            rv = call()
            _assert_503(rv, time.monotonic() - started, what)
        # Many at once, more than the workers have threads: none hangs, none is a 500.
        results: list[Any] = [None] * 16
        go = threading.Barrier(len(results))

        def hit(i: int) -> None:
            go.wait(DEADLINE)
            started = time.monotonic()
            try:
                rv = _create(url, ticket)[0] if i % 2 else _reveal(url, sid, token)
                results[i] = (rv, time.monotonic() - started)
            except Exception as exc:  # a hang past the deadline lands here
                results[i] = exc

        threads = [threading.Thread(target=hit, args=(i,)) for i in range(len(results))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(DEADLINE)
        for i, result in enumerate(results):
            assert isinstance(result, tuple), result
            _assert_503(*result, what=f"concurrent {'create' if i % 2 else 'reveal'}")
    finally:
        os.kill(pid, signal.SIGCONT)

    # Recovery, with nothing to wait for: the clients reconnect on their next command.
    rv, fresh = _create(url, ticket)
    assert rv.status_code == 201, rv.text
    rv = _reveal(url, rv.json()["id"], token)
    assert rv.status_code == 200 and rv.json()["envelope"] == fresh
    # The reveals that were told 503 may still have run once Redis woke up: then the secret is
    # bound to their session (the same token), whose retry gets it; another session never does.
    rv = _reveal(url, sid, token)
    assert rv.status_code == 200 and rv.json()["envelope"] == envelope
    rv = _reveal(url, sid, other)
    assert rv.status_code == 410 and rv.json()["reason"] == "revealed"
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
