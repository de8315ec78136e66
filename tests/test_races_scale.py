"""The race at scale: 200 sessions of the assigned agent reveal one secret at once, 100 rounds.

Through a real gunicorn (several workers, threads each) on the real Redis, with the rate limits
raised (as docs/api.md asks of concurrency tests). 200 threads live for the whole test, each with
its own API token (its own session) and its own keep-alive connection; every round they are
released together by a barrier, like tests/test_races.py does, and exactly one of them must get
the envelope while the 199 others get 410 `revealed`. Nothing waits by the clock: barriers and
the calls' own answers pace it, every blocking call has a deadline.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from harness import LiveServer, ServeVault, base_config
from helpers import sealed

from vault import create_app

pytestmark = pytest.mark.slow

SESSIONS = 200
ROUNDS = 100
DEADLINE = 60.0  # seconds any one blocking step may take before the test fails
RAISED = {"ratelimit_reveal": "100000000/minute", "ratelimit_submit": "100000000/minute",
          "max_waiting_per_ticket": 100000, "log_level": "WARNING",
          # What is raced is who wins, not latency: a busy machine must not turn a slow
          # Redis answer into a 503.
          "redis_socket_timeout": 10}


class Crowd:
    """`n` threads that each run `call(i, target)` once per round, all released together.

    Two barriers of n + 1 parties (the threads and the caller): one releases a round, the other
    tells the caller that every answer is in. A thread that hangs breaks the barrier at its
    deadline instead of hanging the test.
    """

    def __init__(self, n: int, call: Callable[[int, Any], Any]) -> None:
        self.n, self.call = n, call
        self.go = threading.Barrier(n + 1)
        self.done = threading.Barrier(n + 1)
        self.target: Any = None
        self.stopping = False
        self.results: list[Any] = [None] * n
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True,
                                         name=f"crowd-{i}") for i in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, i: int) -> None:
        while True:
            try:
                self.go.wait(DEADLINE)
            except threading.BrokenBarrierError:
                return
            if self.stopping:
                return
            try:
                self.results[i] = self.call(i, self.target)
            except Exception as exc:  # surfaced by the caller's assertions
                self.results[i] = exc
            try:
                self.done.wait(DEADLINE)
            except threading.BrokenBarrierError:
                return

    def round(self, target: Any) -> list[Any]:
        self.target = target
        self.results = [None] * self.n
        self.go.wait(DEADLINE)
        self.done.wait(DEADLINE)
        return list(self.results)

    def stop(self) -> None:
        self.stopping = True
        self.go.abort()  # releases every thread waiting for a round that will not come
        self.done.abort()
        for t in self.threads:
            t.join(DEADLINE)


@pytest.fixture(scope="module")
def server(redis_server: Any, serve_vault: ServeVault) -> Iterator[LiveServer]:
    redis_server.client().flushdb()
    with serve_vault(redis_server.url, workers=4, threads=16, access_log=False,
                     extra_args=["--keep-alive", "60"], **RAISED) as srv:
        yield srv


@pytest.fixture(scope="module")
def local(redis_server: Any) -> Iterator[Any]:
    ext = create_app(base_config(redis_server.url, cheap_passwords=True, **RAISED)
                     ).extensions["vault"]
    yield ext
    ext.close()


def test_one_of_200_sessions_gets_the_envelope_in_each_of_100_rounds(server, local):
    email = "crowd@example.com"
    local.accounts.add_agent(email, "correct horse battery staple", name="Crowd")
    tokens = [local.accounts.create_token(email)[0] for _ in range(SESSIONS)]
    assert len(set(tokens)) == SESSIONS
    host, port = server.url.removeprefix("http://").split(":")
    # One keep-alive connection per session, plain http.client: the client's own work per
    # call stays small next to the server's, so 20,000 reveals fit in well under a minute.
    conns = [http.client.HTTPConnection(host, int(port), timeout=DEADLINE)
             for _ in range(SESSIONS)]
    ticket = "race-scale-1"
    rv = requests.post(f"{server.url}/api/v1/requests", json={"ticket": ticket}, timeout=10,
                       headers={"Authorization": f"Bearer {tokens[0]}"})
    assert rv.status_code == 201  # the agent is now the ticket's assignee

    def reveal(i: int, sid: str) -> tuple[int, dict[str, Any]]:
        conns[i].request("POST", f"/api/v1/secrets/{sid}/reveal", body=b"",
                         headers={"Authorization": f"Bearer {tokens[i]}"})
        answer = conns[i].getresponse()
        return answer.status, json.loads(answer.read())

    crowd = Crowd(SESSIONS, reveal)
    winners_by_session: dict[int, int] = {}
    started = time.monotonic()
    try:
        for round_ in range(ROUNDS):
            envelope, _ = sealed(ticket)
            rv = requests.post(f"{server.url}/api/v1/secrets", timeout=10, json={
                "ticket": ticket, "kind": "wordpress", "envelope": envelope})
            assert rv.status_code == 201, rv.text
            sid = rv.json()["id"]
            results = crowd.round(sid)
            errors = [r for r in results if not isinstance(r, tuple)]
            assert not errors, f"round {round_}: {errors[:3]}"
            winners = [i for i, (code, _) in enumerate(results) if code == 200]
            assert len(winners) == 1, f"round {round_}: {sorted(c for c, _ in results)}"
            assert results[winners[0]][1]["envelope"] == envelope
            losers = [body for code, body in results if code != 200]
            assert all(code in (200, 410) for code, _ in results), round_
            assert {body["reason"] for body in losers} == {"revealed"}, round_
            winners_by_session[winners[0]] = winners_by_session.get(winners[0], 0) + 1
            meta = requests.get(f"{server.url}/api/v1/secrets/{sid}", timeout=10).json()
            assert meta["state"] == "revealed"
    finally:
        crowd.stop()
        for c in conns:
            c.close()
    took = time.monotonic() - started
    print(f"{ROUNDS} rounds x {SESSIONS} sessions: {took:.1f} s "
          f"({ROUNDS * SESSIONS / took:.0f} reveals/s); "
          f"{len(winners_by_session)} different sessions won")
