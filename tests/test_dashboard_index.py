"""The agents' ticket index ("my tickets"): kept by the store's scripts, bounded, read in bulk."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import sealed, share
from test_roundtrips import Counting, instrument

from vault import create_app
from vault.errors import ValidationFailed
from vault.service import Principal, Vault
from vault.storage import Store
from vault.storage.keys import mine as mine_key
from vault.storage.keys import ticket as ticket_key


def request(client: Any, agent: Any, ticket: str) -> dict[str, Any]:
    rv = client.post("/api/v1/requests", json={"ticket": ticket}, headers=agent.headers)
    assert rv.status_code == 201, rv.get_json()
    body: dict[str, Any] = rv.get_json()
    return body


def fill(client: Any, req: dict[str, Any]) -> str:
    envelope, _ = sealed(req["ticket"])
    rv = client.post(f"/api/v1/requests/{req['id']}/secret",
                     json={"kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 201, rv.get_json()
    return str(rv.get_json()["secret_id"])


def tickets_of(ext: Any, email: str) -> list[str]:
    return [t["ticket"] for t in ext.vault.agent_tickets(email)]


def test_a_request_lists_the_ticket_for_the_agent_who_becomes_its_assignee(client, ext, agent):
    request(client, agent, "D-1")
    (summary,) = ext.vault.agent_tickets(agent.email)
    assert summary["ticket"] == "D-1" and summary["state"] == "open"
    assert summary["assignee"] == agent.email
    assert (summary["open_requests"], summary["waiting"], summary["revealed"]) == (1, 0, 0)
    assert [r["state"] for r in summary["requests"]] == ["open"]
    assert summary["last_activity"]


def test_counts_follow_submission_and_reveal(client, ext, agent):
    req = request(client, agent, "D-2")
    request(client, agent, "D-2")
    sid = fill(client, req)
    (summary,) = ext.vault.agent_tickets(agent.email)
    assert (summary["open_requests"], summary["waiting"], summary["revealed"]) == (1, 1, 0)
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=agent.headers).status_code == 200
    (summary,) = ext.vault.agent_tickets(agent.email)
    assert (summary["open_requests"], summary["waiting"], summary["revealed"]) == (1, 0, 1)
    assert {s["state"] for s in summary["secrets"]} == {"revealed"}


def test_most_recently_active_first(client, ext, agent, clock):
    first = request(client, agent, "D-old")
    clock.advance(60)
    request(client, agent, "D-new")
    assert tickets_of(ext, agent.email) == ["D-new", "D-old"]
    clock.advance(60)
    fill(client, first)  # the customer's answer is activity on the assignee's ticket
    assert tickets_of(ext, agent.email) == ["D-old", "D-new"]
    assert ext.vault.agent_tickets(agent.email, limit=1)[0]["ticket"] == "D-old"


def test_another_agents_request_lists_the_ticket_for_its_assignee_only(client, ext, agent,
                                                                     make_agent):
    bob = make_agent("bob@example.com")
    request(client, agent, "D-3")
    request(client, bob, "D-3")
    assert tickets_of(ext, agent.email) == ["D-3"]
    assert tickets_of(ext, bob.email) == []


def test_an_assignment_moves_the_ticket_to_the_new_assignee(client, ext, agent, make_agent,
                                                          helpdesk, redis_client):
    bob = make_agent("bob@example.com")
    request(client, agent, "D-4")
    rv = client.put("/api/v1/tickets/D-4/assignee", json={"agent": bob.email}, headers=helpdesk)
    assert rv.status_code == 200
    assert tickets_of(ext, bob.email) == ["D-4"]
    assert tickets_of(ext, agent.email) == []
    # Removed from the former assignee's index in the same step, not just hidden on reading.
    assert redis_client.zscore(mine_key(agent.email), "D-4") is None


def test_a_claim_at_reveal_lists_the_ticket(client, ext, agent):
    s = share(client, "D-5")
    assert tickets_of(ext, agent.email) == []
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers
                       ).status_code == 200
    (summary,) = ext.vault.agent_tickets(agent.email)
    assert summary["ticket"] == "D-5" and summary["revealed"] == 1


def test_a_refused_reveal_lists_nothing_for_the_refused_agent(client, ext, agent, make_agent):
    bob = make_agent("bob@example.com")
    request(client, agent, "D-6")
    s = share(client, "D-6")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=bob.headers
                       ).status_code == 403
    assert tickets_of(ext, bob.email) == []


def test_a_closed_ticket_stays_listed_as_closed_with_nothing_left(client, ext, agent, helpdesk):
    req = request(client, agent, "D-7")
    fill(client, req)
    request(client, agent, "D-7")
    # Purged: the waiting secret and the open request (the answered request goes with its secret).
    assert client.post("/api/v1/tickets/D-7/close", headers=helpdesk).get_json()["purged"] == 2
    (summary,) = ext.vault.agent_tickets(agent.email)
    assert summary["state"] == "closed" and summary["purged"] == 2 and summary["closed_at"]
    assert (summary["open_requests"], summary["waiting"], summary["revealed"]) == (0, 0, 0)


def test_a_ticket_whose_record_expired_is_left_out(client, ext, agent, redis_client):
    request(client, agent, "D-8")
    redis_client.delete(ticket_key("D-8"))
    assert tickets_of(ext, agent.email) == []


def test_a_stale_entry_for_a_ticket_assigned_elsewhere_is_left_out(client, ext, agent,
                                                                 make_agent, redis_client):
    bob = make_agent("bob@example.com")
    request(client, bob, "D-9")
    redis_client.zadd(mine_key(agent.email), {"D-9": 1})
    assert tickets_of(ext, agent.email) == []


def test_the_index_expires_with_what_it_indexes(client, ext, agent, redis_client):
    request(client, agent, "D-10")
    ttl_ms = redis_client.pttl(mine_key(agent.email))
    config = ext.config
    assert 0 < ttl_ms <= (config.max_ttl + config.tombstone_ttl) * 1000
    assert ext.store.index_ttl_ms == (config.max_ttl + config.tombstone_ttl) * 1000


def test_the_index_drops_entries_older_than_a_ticket_can_live_and_keeps_a_cap(redis_client, ext,
                                                                             clock):
    store = Store(redis_client, index_ttl_ms=10_000, index_cap=3)
    vault = Vault(store, ext.keyring, ext.config, clock)
    alice = Principal(kind="agent", email="alice@example.com", name="Alice", role="agent",
                      session="t:1")
    try:
        vault.create_request(alice, "old")
        clock.advance(11)  # older than the index's lifetime
        for n in range(4):
            vault.create_request(alice, f"t{n}")
            clock.advance(1)
        names = [n.decode() for n in redis_client.zrange(mine_key(alice.email), 0, -1)]
        assert names == ["t1", "t2", "t3"]  # "old" trimmed by age, "t0" by the cap
        assert 0 < redis_client.pttl(mine_key(alice.email)) <= 10_000
    finally:
        store.close()  # its lane's connection too


def test_reading_the_index_is_two_round_trips_whatever_the_number_of_tickets(client, ext, agent):
    for n in range(5):
        request(client, agent, f"RT-{n}")
    ext.store.load_scripts()
    instrument(ext.store)
    ext.vault.agent_tickets(agent.email)  # warm: the connection is opened (and introduced)
    Counting.sends = 0
    assert len(ext.vault.agent_tickets(agent.email)) == 5
    assert Counting.sends == 2  # the index, then one pipeline reading every listed ticket


def test_the_limit_is_validated(ext, agent):
    for bad in (0, 501, "10", True):
        with pytest.raises(ValidationFailed):
            ext.vault.agent_tickets(agent.email, limit=bad)


def test_on_a_cluster_the_index_is_written_after_the_script(redis_client, ext, clock):
    """Cluster mode (other slots are written by Python after the script), on one Redis."""
    store = Store(redis_client, cluster=True, index_ttl_ms=ext.store.index_ttl_ms)
    vault = Vault(store, ext.keyring, ext.config, clock)
    alice = Principal(kind="agent", email="alice@example.com", name="Alice", role="agent",
                      session="t:1")
    vault.create_request(alice, "C-1")
    assert [t["ticket"] for t in vault.agent_tickets(alice.email)] == ["C-1"]
    vault.assign("C-1", "bob@example.com", actor="helpdesk")
    assert vault.agent_tickets(alice.email) == []
    assert redis_client.zscore(mine_key(alice.email), "C-1") is None
    assert [t["ticket"] for t in vault.agent_tickets("bob@example.com")] == ["C-1"]
    assert 0 < redis_client.pttl(mine_key("bob@example.com")) <= store.index_ttl_ms
    # The global audit stream is still written too.
    assert [e.event for e in store.audit_tail(10)][-1] == "ticket.assigned"


def test_the_embedded_store_keeps_the_index_too():
    app = create_app({"embedded": True, "cheap_passwords": True})
    client, ext = app.test_client(), app.extensions["vault"]
    try:
        ext.accounts.add_agent("demo@example.com", "correct horse battery", admin=True)
        token, _ = ext.accounts.create_token("demo@example.com")
        client.post("/api/v1/requests", json={"ticket": "E-1"},
                    headers={"Authorization": f"Bearer {token}"})
        assert [t["ticket"] for t in ext.vault.agent_tickets("demo@example.com")] == ["E-1"]
    finally:
        ext.close()
