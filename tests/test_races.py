"""Concurrency: one winner per secret, one assignee per claim, nothing survives a purge.

Races go through a real gunicorn (several workers and threads) on the real Redis. Threads line
up on a barrier and fire together; nothing here waits by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from harness import LiveServer, ServeVault, base_config
from helpers import fire, keys_of_ticket, sealed, ticket_record

from vault import create_app
from vault.storage.keys import envelope as envelope_key
from vault.storage.keys import ticket as ticket_key

pytestmark = pytest.mark.slow

SESSIONS = 100
ROUNDS = 50
RAISED = {"ratelimit_reveal": "1000000/minute", "ratelimit_submit": "1000000/minute",
          "max_waiting_per_ticket": 100000,
          # What is raced is who wins, not latency: a busy machine must not turn a slow
          # Redis answer into a 503.
          "redis_socket_timeout": 10}


@pytest.fixture(scope="module")
def server(redis_server: Any, serve_vault: ServeVault) -> Iterator[LiveServer]:
    redis_server.client().flushdb()
    with serve_vault(redis_server.url, workers=3, threads=8, access_log=False, **RAISED) as srv:
        yield srv


@pytest.fixture(scope="module")
def local(redis_server: Any) -> Iterator[Any]:
    """An app on the same Redis, to set up accounts without going through HTTP."""
    ext = create_app(base_config(redis_server.url, cheap_passwords=True, **RAISED)
                     ).extensions["vault"]
    yield ext
    ext.close()


def test_one_of_100_sessions_gets_the_envelope_every_round(server, local):
    email = "racer@example.com"
    local.accounts.add_agent(email, "correct horse battery staple", name="Racer")
    tokens = [local.accounts.create_token(email)[0] for _ in range(SESSIONS)]
    sessions = [requests.Session() for _ in range(SESSIONS)]
    ticket = "race-1"
    owner = requests.post(f"{server.url}/api/v1/requests", json={"ticket": ticket},
                          headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=10)
    assert owner.status_code == 201
    for round_ in range(ROUNDS):
        envelope, _ = sealed(ticket)
        rv = requests.post(f"{server.url}/api/v1/secrets", timeout=10,
                           json={"ticket": ticket, "kind": "wordpress", "envelope": envelope})
        assert rv.status_code == 201
        sid = rv.json()["id"]

        def reveal(i: int, sid: str = sid) -> tuple[int, str | None]:
            r = sessions[i].post(f"{server.url}/api/v1/secrets/{sid}/reveal", timeout=30,
                                 headers={"Authorization": f"Bearer {tokens[i]}"})
            return r.status_code, r.json().get("envelope")

        results = fire(SESSIONS, reveal)
        assert not [r for r in results if isinstance(r, Exception)], results
        codes = sorted(code for code, _ in results)
        winners = [env for code, env in results if code == 200]
        assert len(winners) == 1, f"round {round_}: {codes}"
        assert winners[0] == envelope
        assert codes.count(410) == SESSIONS - 1, f"round {round_}: {codes}"


def test_a_claim_race_between_agents_leaves_one_assignee_and_one_winner(server, local):
    agents = [f"claimer{i}@example.com" for i in range(20)]
    tokens = []
    for email in agents:
        local.accounts.add_agent(email, "correct horse battery staple")
        tokens.append(local.accounts.create_token(email)[0])
    envelope, _ = sealed("claim-1")
    sid = requests.post(f"{server.url}/api/v1/secrets", timeout=10, json={
        "ticket": "claim-1", "kind": "wordpress", "envelope": envelope}).json()["id"]

    def reveal(i: int) -> int:
        return requests.post(f"{server.url}/api/v1/secrets/{sid}/reveal", timeout=30,
                             headers={"Authorization": f"Bearer {tokens[i]}"}).status_code

    codes = fire(len(agents), reveal)
    assert codes.count(200) == 1, codes
    assert codes.count(403) == len(agents) - 1, codes
    assignee = ticket_record(local.store, "claim-1")["assignee"]
    assert assignee == agents[codes.index(200)]


def test_submissions_racing_a_close_never_survive_the_purge(server, local, redis_server):
    ticket = "close-race"
    key = local.accounts.create_api_key("racer-desk")
    writers = 40
    envelopes = [sealed(ticket)[0] for _ in range(writers)]

    def act(i: int) -> tuple[str, int, str | None]:
        if i == writers:
            r = requests.post(f"{server.url}/api/v1/tickets/{ticket}/close", timeout=30,
                              headers={"Authorization": f"Bearer {key}"})
            return "close", r.status_code, None
        r = requests.post(f"{server.url}/api/v1/secrets", timeout=30, json={
            "ticket": ticket, "kind": "wordpress", "envelope": envelopes[i]})
        return "submit", r.status_code, r.json().get("id")

    results = fire(writers + 1, act)
    assert not [r for r in results if isinstance(r, Exception)], results
    close = next(r for r in results if r[0] == "close")
    assert close[1] == 200
    accepted = [sid for kind, code, sid in results if kind == "submit" and code == 201]
    refused = [code for kind, code, _ in results if kind == "submit" and code != 201]
    assert set(refused) <= {409}
    assert len(accepted) + len(refused) == writers
    print(f"accepted before the close: {len(accepted)}, refused after it: {len(refused)}")
    for sid in accepted:
        rv = requests.get(f"{server.url}/api/v1/secrets/{sid}", timeout=10)
        assert rv.status_code == 410 and rv.json()["reason"] == "purged"
    # Redis holds only the tombstone: the ticket record, gone-markers and the audit stream.
    client = redis_server.client()
    store = local.store
    left = set(keys_of_ticket(store, ticket))
    for k in left:
        assert k == ticket_key(ticket) or ":g:" in k or k.endswith(f":log:{ticket}"), k
    assert not any(client.exists(envelope_key(sid)) for sid in accepted)
