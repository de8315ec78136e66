"""Round trips to Redis, counted on the client side (docs/architecture.md, "Round trips").

The `counted` fixture (conftest.py) swaps each Redis connection used by the app (the store's:
rate limits are counted by its scripts too) for one that counts how many times it writes to the
socket: one write is one round trip, a pipeline included. Any one more fails.
"""

from __future__ import annotations

from typing import Any

from harness import Counting, instrument
from helpers import sealed


def warm(client: Any, agent: Any) -> None:
    """One of each first: connections are opened and scripts cached, as in a running server."""
    envelope, _ = sealed("warm")
    client.post("/api/v1/requests", json={"ticket": "warm"}, headers=agent.headers)
    sid = client.post("/api/v1/secrets", json={"ticket": "warm", "kind": "wordpress",
                                               "envelope": envelope}).get_json()["id"]
    client.post(f"/api/v1/secrets/{sid}/reveal", headers=agent.headers)


def waiting_secret(client: Any, agent: Any, ticket: str) -> str:
    """A secret waiting on `ticket`, which `agent` is assigned to (by creating a request)."""
    client.post("/api/v1/requests", json={"ticket": ticket}, headers=agent.headers)
    envelope, _ = sealed(ticket)
    return str(client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                    "envelope": envelope}).get_json()["id"])


def test_a_create_is_one_round_trip_with_its_rate_limit(client, agent, counted):
    warm(client, agent)
    envelope, _ = sealed("rt-1")
    rv, trips = counted.measure(lambda: client.post("/api/v1/secrets", json={
        "ticket": "rt-1", "kind": "wordpress", "envelope": envelope}))
    assert rv.status_code == 201
    assert trips == 1  # the rate limit, the create and both audit entries: one script


def test_a_reveal_is_one_round_trip_with_auth_epoch_and_rate_limit(client, agent, counted):
    warm(client, agent)
    sid = waiting_secret(client, agent, "rt-2")
    rv, trips = counted.measure(lambda: client.post(f"/api/v1/secrets/{sid}/reveal",
                                                    headers=agent.headers))
    assert rv.status_code == 200
    assert trips == 1  # token lookup with the revocation epoch, limit, reveal, audit: one script


def test_a_reveal_by_a_web_session_is_one_round_trip_too(client, agent, counted):
    warm(client, agent)
    sid = waiting_secret(client, agent, "rt-5")
    login = client.post("/api/v1/session", json={"email": agent.email,
                                                 "password": agent.password})
    csrf = login.get_json()["csrf_token"]  # the test client keeps the session cookie
    rv, trips = counted.measure(lambda: client.post(f"/api/v1/secrets/{sid}/reveal",
                                                    headers={"X-CSRF-Token": csrf}))
    assert rv.status_code == 200 and rv.get_json()["ticket"] == "rt-5"
    assert trips == 1  # the CSRF token is checked before Redis; the session inside the script


def test_a_request_fill_is_one_round_trip_with_its_rate_limit(client, agent, counted):
    warm(client, agent)
    rid = client.post("/api/v1/requests", json={"ticket": "rt-3"},
                      headers=agent.headers).get_json()["id"]
    envelope, _ = sealed("rt-3")
    rv, trips = counted.measure(lambda: client.post(f"/api/v1/requests/{rid}/secret", json={
        "kind": "wordpress", "envelope": envelope}))
    assert rv.status_code == 201
    assert trips == 1


def test_a_fill_on_a_ticket_whose_share_room_is_full_is_still_one_round_trip(make_app, agent):
    """A fill skips the share flow's room instead of checking it elsewhere: no round trip more."""
    app = make_app(max_waiting_per_ticket=2)
    client = app.test_client()
    ext = app.extensions["vault"]
    ext.store.load_scripts()
    instrument(ext.store)
    warm(client, agent)
    rid = client.post("/api/v1/requests", json={"ticket": "rt-9"},
                      headers=agent.headers).get_json()["id"]
    for _ in range(2):
        envelope, _ = sealed("rt-9")
        assert client.post("/api/v1/secrets", json={"ticket": "rt-9", "kind": "wordpress",
                                                    "envelope": envelope}).status_code == 201
    envelope, _ = sealed("rt-9")
    assert client.post("/api/v1/secrets", json={"ticket": "rt-9", "kind": "wordpress",
                                                "envelope": envelope}).status_code == 409
    Counting.sends = 0
    rv = client.post(f"/api/v1/requests/{rid}/secret", json={"kind": "wordpress",
                                                              "envelope": envelope})
    assert rv.status_code == 201
    assert Counting.sends == 1


def test_creating_a_request_is_one_round_trip_with_auth(client, agent, counted):
    warm(client, agent)
    rv, trips = counted.measure(lambda: client.post("/api/v1/requests", json={"ticket": "rt-6"},
                                                    headers=agent.headers))
    assert rv.status_code == 201
    assert trips == 1


def test_a_refused_credential_costs_one_round_trip_and_reveals_nothing(client, agent, ext,
                                                                         counted):
    warm(client, agent)
    sid = waiting_secret(client, agent, "rt-7")
    ext.accounts.set_disabled(agent.email, True)
    rv, trips = counted.measure(lambda: client.post(f"/api/v1/secrets/{sid}/reveal",
                                                    headers=agent.headers))
    assert rv.status_code == 401 and trips == 1
    assert client.get(f"/api/v1/secrets/{sid}").get_json()["state"] == "waiting"


def test_without_rate_limits_a_create_is_exactly_one_round_trip(make_app, agent):
    app = make_app(ratelimit_enabled=False)
    client = app.test_client()
    ext = app.extensions["vault"]
    ext.store.load_scripts()
    instrument(ext.store)
    envelope, _ = sealed("rt-4")
    client.post("/api/v1/secrets", json={"ticket": "rt-4", "kind": "wordpress",
                                         "envelope": envelope})
    Counting.sends = 0
    envelope, _ = sealed("rt-4")
    assert client.post("/api/v1/secrets", json={"ticket": "rt-4", "kind": "wordpress",
                                                "envelope": envelope}).status_code == 201
    assert Counting.sends == 1


def test_a_note_that_looks_like_a_placeholder_stays_what_the_agent_typed(client, agent):
    """The gate puts the agent's e-mail in place of its placeholders only where they may stand,
    never in a request's note."""
    from vault.storage import AGENT

    rv = client.post("/api/v1/requests", json={"ticket": "rt-8", "note": AGENT},
                     headers=agent.headers)
    assert rv.status_code == 201
    assert client.get(f"/api/v1/requests/{rv.get_json()['id']}").get_json()["note"] == AGENT
