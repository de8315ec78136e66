"""vault on a real three-master Redis Cluster (issue 4, point 1).

The app is configured with `redis+cluster://` (two of the three nodes as startup nodes) and runs
with its rate limits on, so their counters live on the Cluster too. Every ticket's keys share one
hash slot; tickets are spread over the nodes. The Cluster itself counts errors by kind
(`INFO errorstats`): no test may leave a CROSSSLOT (or any other) error behind, and nothing is
logged at ERROR.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from harness import KEYS, Clock, base_config
from helpers import fire, keys_of_ticket, sealed, standard_signature, ticket_record
from redis.connection import Connection

from vault import create_app
from vault.crypto.envelope import open_envelope
from vault.crypto.keyring import KeyRing, generate_key_spec
from vault.ids import slot_tag
from vault.rotation import rotate_all
from vault.storage.keys import envelope as envelope_key
from vault.storage.keys import secret as secret_key
from vault.storage.keys import ticket as ticket_key

pytestmark = pytest.mark.slow

RAISED = {"ratelimit_reveal": "1000000/minute", "ratelimit_submit": "1000000/minute",
          "max_waiting_per_ticket": 1000}
STANDARD_KEY = base64.b64decode("c2VjcmV0LWtleS1mb3Itc3RhbmRhcmQtd2ViaG9va3M=")
# Errors a client meets in normal life: a script not yet cached on that node, and redis-py's
# connection handshake (CLIENT SETINFO, which Redis 7.0 does not know: plain ERR, ignored).
# Anything else (CROSSSLOT, MOVED, ASK, TRYAGAIN, CLUSTERDOWN, WRONGTYPE...) fails the test.
HARMLESS = {"NOSCRIPT", "ERR"}


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        return "\n".join(f"{r.levelname} {r.getMessage()} {r.exc_text or ''}"
                         for r in self.records)


@pytest.fixture(scope="module")
def world(redis_cluster: Any) -> Iterator[dict[str, Any]]:
    redis_cluster.flush()
    clock = Clock(time.time())
    app = create_app(base_config(redis_cluster.url, clock=clock, cheap_passwords=True, **RAISED))
    app.testing = True
    ext = app.extensions["vault"]
    assert ext.store.cluster, "redis+cluster:// must give the store a Cluster client"
    ext.accounts.add_agent("alice@example.com", "correct horse battery staple", name="Alice")
    ext.accounts.add_agent("bob@example.com", "correct horse battery staple", name="Bob")
    ext.accounts.add_agent("admin@example.com", "correct horse battery staple", admin=True)
    tokens = {who: ext.accounts.create_token(f"{who}@example.com")[0]
              for who in ("alice", "bob", "admin")}
    desk = ext.accounts.create_api_key("helpscout")
    yield {"app": app, "ext": ext, "clock": clock, "cluster": redis_cluster,
           "headers": {who: {"Authorization": f"Bearer {t}"} for who, t in tokens.items()},
           "desk": {"Authorization": f"Bearer {desk}"}}
    ext.close()


@pytest.fixture(autouse=True)
def no_cluster_errors(redis_cluster: Any) -> Iterator[Recorder]:
    """Around every test: the Cluster counts no new error but the HARMLESS kinds, no log says
    CROSSSLOT, vault logs no error, and the store never had to give up on the writes it makes
    after a script (the global audit stream, the agents' index)."""
    before = redis_cluster.error_stats()
    recorder = Recorder()
    loggers = [logging.getLogger(), logging.getLogger("vault")]  # "vault" does not propagate
    for logger in loggers:
        logger.addHandler(recorder)
    try:
        yield recorder
    finally:
        for logger in loggers:
            logger.removeHandler(recorder)
    after = redis_cluster.error_stats()
    new = {kind: n - before.get(kind, 0) for kind, n in after.items()
           if n > before.get(kind, 0) and kind not in HARMLESS}
    assert not new, f"errors counted by the Cluster during the test: {new}"
    assert "CROSSSLOT" not in recorder.text()
    assert "CROSSSLOT" not in redis_cluster.logs()
    errors = [r for r in recorder.records if r.levelno >= logging.ERROR
              or (r.name == "vault.storage" and r.levelno >= logging.WARNING)]
    assert not errors, recorder.text()


def node_of(world: dict[str, Any], key: str) -> str:
    client = world["ext"].store.client
    return str(client.nodes_manager.get_node_from_slot(client.keyslot(key)).name)


def tickets_on_different_nodes(world: dict[str, Any], prefix: str, n: int) -> list[str]:
    """`n` ticket names of the form prefix-i whose slots are served by `n` different nodes."""
    found: list[str] = []
    nodes: set[Any] = set()
    for i in range(200):
        name = f"{prefix}-{i}"
        node = node_of(world, ticket_key(name))
        if node not in nodes:
            nodes.add(node)
            found.append(name)
            if len(found) == n:
                return found
    raise AssertionError(f"no {n} tickets on {n} nodes among 200 names")


def mine_after(ext: Any, ticket: str) -> dict[str, Any]:
    """Alice's dashboard entry for `ticket`."""
    return {t["ticket"]: t for t in ext.vault.agent_tickets("alice@example.com")}[ticket]


def std_webhook(client: Any, body: dict[str, Any], msg_id: str) -> Any:
    raw = json.dumps(body).encode()
    ts = int(time.time())
    sig = standard_signature(STANDARD_KEY, msg_id, ts, raw)
    return client.post("/api/v1/webhooks/standard", data=raw, headers={
        "webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig,
        "Content-Type": "application/json"})


def hs_webhook(client: Any, event: str, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    sig = base64.b64encode(hmac.new(b"hs-secret-one", raw, hashlib.sha1).digest()).decode()
    return client.post("/api/v1/webhooks/helpscout", data=raw, headers={
        "X-HelpScout-Event": event, "X-HelpScout-Signature": sig,
        "Content-Type": "application/json"})


def test_every_key_of_a_ticket_is_in_one_slot_and_tickets_spread_over_the_nodes(world):
    client, store = world["app"].test_client(), world["ext"].store
    tickets = tickets_on_different_nodes(world, "spread", 3)
    for ticket in tickets:
        rid = client.post("/api/v1/requests", json={"ticket": ticket},
                          headers=world["headers"]["alice"]).get_json()["id"]
        envelope, _ = sealed(ticket)
        assert client.post(f"/api/v1/requests/{rid}/secret", json={
            "kind": "wordpress", "envelope": envelope}).status_code == 201
    cluster = store.client
    slots = {}
    for ticket in tickets:
        keys = keys_of_ticket(store, ticket)
        assert len(keys) >= 5, keys  # record, index, request, secret, envelope, log
        assert all(f"{{{slot_tag(ticket)}}}" in k for k in keys)
        slots[ticket] = {cluster.keyslot(k) for k in keys}
        assert len(slots[ticket]) == 1, (ticket, slots[ticket])
    # Meaningful: three tickets, three slots, three nodes.
    assert len({next(iter(s)) for s in slots.values()}) == 3
    assert len({node_of(world, ticket_key(t)) for t in tickets}) == 3


def test_the_full_request_flow(world):
    app, ext, h = world["app"], world["ext"], world["headers"]
    client = app.test_client()
    ticket, other = tickets_on_different_nodes(world, "flow", 2)

    # The agent asks; the customer fills; the agent reveals, decrypts and acknowledges.
    created = client.post("/api/v1/requests", json={"ticket": ticket, "note": "wp admin"},
                          headers=h["alice"])
    assert created.status_code == 201, created.get_json()
    rid = created.get_json()["id"]
    assert client.get(f"/api/v1/requests/{rid}").get_json()["state"] == "open"
    envelope, key = sealed(ticket)
    filled = client.post(f"/api/v1/requests/{rid}/secret",
                         json={"kind": "wordpress", "envelope": envelope})
    assert filled.status_code == 201, filled.get_json()
    sid = filled.get_json()["secret_id"]
    assert client.get(f"/api/v1/requests/{rid}").get_json()["state"] == "submitted"
    assert client.get(f"/api/v1/secrets/{sid}").get_json()["state"] == "waiting"
    # A retried fill of the same envelope is answered from the first.
    again = client.post(f"/api/v1/requests/{rid}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    assert again.status_code == 201 and again.get_json()["secret_id"] == sid

    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["bob"]).status_code == 403
    revealed = client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["alice"])
    assert revealed.status_code == 200, revealed.get_json()
    body = revealed.get_json()
    fields = open_envelope(key, body["envelope"], ticket=ticket, kind="wordpress")
    assert fields["username"] == "rocket-temp"
    assert client.post(f"/api/v1/secrets/{sid}/ack", headers=h["alice"]).status_code == 204
    gone = client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["alice"])
    assert gone.status_code == 410 and gone.get_json()["reason"] == "revealed"
    assert client.get(f"/api/v1/requests/{rid}").get_json()["state"] == "revealed"
    assert not ext.store.client.exists(envelope_key(sid))

    # Share flow on the same ticket, one deleted by its customer; a request on another ticket.
    shared = []
    for _ in range(2):
        envelope, _ = sealed(ticket, "sftp")
        rv = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "sftp",
                                                  "envelope": envelope})
        assert rv.status_code == 201, rv.get_json()
        shared.append(rv.get_json())
    assert client.delete(f"/api/v1/secrets/{shared[1]['id']}",
                         headers={"X-Manage-Token": shared[1]["manage_token"]}).status_code == 204
    assert client.get(f"/api/v1/secrets/{shared[1]['id']}").get_json()["reason"] == "deleted"
    assert client.post("/api/v1/requests", json={"ticket": other},
                       headers=h["alice"]).status_code == 201

    # The ticket page and the agent's dashboard, which reads tickets in several slots.
    view = client.get(f"/api/v1/tickets/{ticket}", headers=h["alice"])
    assert view.status_code == 200, view.get_json()
    view = view.get_json()
    assert view["assignee"] == "alice@example.com" and view["state"] == "open"
    assert [r["state"] for r in view["requests"]] == ["revealed"]
    assert sorted(s["state"] for s in view["secrets"]) == ["revealed", "waiting"]
    events = [e["event"] for e in view["events"]]
    for event in ("request.created", "secret.submitted", "secret.revealed", "secret.deleted",
                  "reveal.refused"):
        assert event in events, events
    # Help Scout's sidebar: the ticket's script and the {acct} user lookup, one pipeline.
    ext.accounts.edit_agent("alice@example.com", helpscout_id="4711")
    side = ext.vault.sidebar_view(ticket, "4711")
    assert side["agent"] == "alice@example.com"
    assert sorted(r["state"] for r in side["rows"]) == ["revealed", "waiting"]
    assert [d["id"] for d in side["deleted"]] == [shared[1]["id"]]
    mine = {t["ticket"]: t for t in ext.vault.agent_tickets("alice@example.com")}
    assert {ticket, other} <= set(mine)
    assert mine[ticket]["waiting"] == 1 and mine[ticket]["revealed"] == 1
    assert mine[other]["open_requests"] == 1
    # The same through the web: a session login (its own Lua step in the {acct} slot), then
    # the dashboard page.
    browser = app.test_client()
    login = browser.post("/api/v1/session", json={"email": "alice@example.com",
                                                  "password": "correct horse battery staple"})
    assert login.status_code == 200, login.get_json()
    cookie = re.search(r"__Host-vault_session=([^;]+)", login.headers["Set-Cookie"])
    assert cookie is not None
    browser.set_cookie("__Host-vault_session", cookie.group(1))
    dashboard = browser.get("/dashboard")
    assert dashboard.status_code == 200
    page = dashboard.get_data(as_text=True)
    assert ticket in page and other in page
    assert browser.get(f"/tickets/{ticket}").status_code == 200

    # Close: everything of the ticket goes at once, a tombstone stays and refuses submissions.
    closed = client.post(f"/api/v1/tickets/{ticket}/close", headers=world["desk"])
    assert closed.status_code == 200 and closed.get_json()["purged"] == 2, closed.get_json()
    assert client.get(f"/api/v1/secrets/{shared[0]['id']}").get_json()["reason"] == "purged"
    envelope, _ = sealed(ticket)
    refused = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                   "envelope": envelope})
    assert refused.status_code == 409
    assert client.post(f"/api/v1/tickets/{ticket}/close",
                       headers=world["desk"]).get_json()["purged"] == 0  # idempotent
    assert mine_after(ext, ticket)["state"] == "closed"

    # Reopen, submit again, then the helpdesk closes it by webhook (both kinds).
    assert client.post(f"/api/v1/tickets/{ticket}/reopen",
                       headers=world["desk"]).status_code == 200
    envelope, _ = sealed(ticket)
    again = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                 "envelope": envelope})
    assert again.status_code == 201
    hooked = std_webhook(client, {"type": "ticket.closed", "timestamp": "2026-01-01T00:00:00Z",
                                  "data": {"ticket": ticket}}, "msg_cluster_1")
    assert hooked.status_code == 200 and hooked.get_json()["purged"] == 1, hooked.get_json()
    assert client.get(f"/api/v1/secrets/{again.get_json()['id']}").get_json()["reason"] == \
        "purged"
    number = 880_001
    envelope, _ = sealed(str(number))
    hs = client.post("/api/v1/secrets", json={"ticket": str(number), "kind": "wordpress",
                                              "envelope": envelope}).get_json()
    rv = hs_webhook(client, "convo.status", {"id": 77001, "number": number, "status": "closed"})
    assert rv.status_code == 200 and rv.get_json()["purged"] == 1, rv.get_json()
    assert client.get(f"/api/v1/secrets/{hs['id']}").get_json()["reason"] == "purged"


def test_the_global_audit_stream_has_every_ticket_event(world):
    """On a single Redis the scripts write the global stream themselves; on a Cluster the store
    writes it after the script. Either way it holds the same events as the ticket's stream."""
    app, ext, h = world["app"], world["ext"], world["headers"]
    client = app.test_client()
    (ticket,) = tickets_on_different_nodes(world, "audit", 1)
    envelope, _ = sealed(ticket)
    sid = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                               "envelope": envelope}).get_json()["id"]
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["bob"]).status_code == 200
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["bob"]).status_code == 200
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=h["alice"]).status_code == 403
    assert client.post(f"/api/v1/secrets/{sid}/ack", headers=h["bob"]).status_code == 204
    rid = client.post("/api/v1/requests", json={"ticket": ticket},
                      headers=h["bob"]).get_json()["id"]
    envelope, _ = sealed(ticket)
    assert client.post(f"/api/v1/requests/{rid}/secret",
                       json={"kind": "wordpress", "envelope": envelope}).status_code == 201
    assert client.put(f"/api/v1/tickets/{ticket}/assignee", json={"agent": "alice@example.com"},
                      headers=world["desk"]).status_code == 200
    # Junk through the share page, discarded unread by the new assignee; bob may not any more.
    envelope, _ = sealed(ticket)
    junk = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "other",
                                                "envelope": envelope}).get_json()["id"]
    assert client.delete(f"/api/v1/secrets/{junk}", headers=h["bob"]).status_code == 403
    assert client.delete(f"/api/v1/secrets/{junk}", headers=h["alice"]).status_code == 204
    assert client.post(f"/api/v1/tickets/{ticket}/close", headers=world["desk"]).status_code == 200
    assert client.post(f"/api/v1/tickets/{ticket}/reopen",
                       headers=world["desk"]).status_code == 200

    def key(e: Any) -> tuple[Any, ...]:
        return (e.ts, e.event, e.ticket, e.id, e.actor, e.detail)

    own = [key(e) for e in ext.store.ticket_audit(ticket, count=1000)]
    everything = [key(e) for e in ext.store.audit_tail(10_000) if e.ticket == ticket]
    assert len(own) >= 10
    assert everything == own
    assert {"discard.refused", "secret.discarded"} <= {e[1] for e in own}
    # Dashboards follow reassignment: the index moved from bob to alice.
    assert ticket not in {t["ticket"] for t in ext.vault.agent_tickets("bob@example.com")}
    assert ticket in {t["ticket"] for t in ext.vault.agent_tickets("alice@example.com")}


def test_one_of_100_sessions_gets_the_envelope(world):
    app, ext = world["app"], world["ext"]
    email = "racer@example.com"
    ext.accounts.add_agent(email, "correct horse battery staple", name="Racer")
    tokens = [ext.accounts.create_token(email)[0] for _ in range(100)]
    clients = [app.test_client() for _ in range(100)]
    tickets = tickets_on_different_nodes(world, "race", 3)
    for ticket in tickets:
        assert clients[0].post("/api/v1/requests", json={"ticket": ticket}, headers={
            "Authorization": f"Bearer {tokens[0]}"}).status_code == 201
    for round_ in range(10):
        ticket = tickets[round_ % len(tickets)]
        envelope, _ = sealed(ticket)
        sid = clients[0].post("/api/v1/secrets", json={
            "ticket": ticket, "kind": "wordpress", "envelope": envelope}).get_json()["id"]

        def reveal(i: int, sid: str = sid) -> tuple[int, str | None]:
            rv = clients[i].post(f"/api/v1/secrets/{sid}/reveal",
                                 headers={"Authorization": f"Bearer {tokens[i]}"})
            return rv.status_code, rv.get_json().get("envelope")

        results = fire(100, reveal)
        assert not [r for r in results if isinstance(r, Exception)], results
        codes = sorted(code for code, _ in results)
        winners = [env for code, env in results if code == 200]
        assert len(winners) == 1, f"round {round_}: {codes}"
        assert winners[0] == envelope
        assert codes.count(410) == 99, f"round {round_}: {codes}"


def test_a_purge_of_1000_secrets_leaves_only_the_tombstone(world):
    app, ext = world["app"], world["ext"]
    client, store, vault = app.test_client(), ext.store, ext.vault
    (ticket,) = tickets_on_different_nodes(world, "big", 1)
    assert client.post("/api/v1/requests", json={"ticket": ticket},
                       headers=world["headers"]["alice"]).status_code == 201
    envelope, _ = sealed(ticket)
    ids = [vault.create_secret(ticket, "wordpress", envelope)["id"] for _ in range(1000)]
    full = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                "envelope": envelope})
    assert full.status_code == 409 and full.get_json()["reason"] == "ticket-full"
    assert len(keys_of_ticket(store, ticket)) > 2000
    started = time.perf_counter()
    rv = client.post(f"/api/v1/tickets/{ticket}/close", headers=world["desk"])
    took = time.perf_counter() - started
    assert rv.status_code == 200, rv.get_json()
    assert rv.get_json()["purged"] == 1001  # 1000 secrets and the open request
    print(f"purge of 1000 secrets on the Cluster: {took * 1000:.0f} ms")
    left = keys_of_ticket(store, ticket)
    record = ticket_key(ticket)
    for k in left:
        assert k == record or ":g:" in k or k.endswith(f":log:{ticket}"), k
    assert sum(":g:" in k for k in left) == 1001
    cluster = store.client
    assert len({cluster.keyslot(k) for k in left}) == 1
    for sid in ids[:: 100]:
        assert client.get(f"/api/v1/secrets/{sid}").get_json()["reason"] == "purged"
    assert ticket_record(store, ticket)["closed"] == "1"


def test_key_rotation_finds_every_envelope_on_every_node(world):
    """`vault keys rotate` SCANs each master and re-wraps with a single-slot compare-and-set;
    afterwards an app holding only the new key reveals every secret."""
    app, ext = world["app"], world["ext"]
    client = app.test_client()
    tickets = tickets_on_different_nodes(world, "rot", 3)
    made = {}
    for ticket in tickets:
        assert client.post("/api/v1/requests", json={"ticket": ticket},
                           headers=world["headers"]["alice"]).status_code == 201
        for _ in range(3):
            envelope, _ = sealed(ticket)
            made[ext.vault.create_secret(ticket, "wordpress", envelope)["id"]] = envelope
    new_key = generate_key_spec()
    report = rotate_all(ext.store, KeyRing.from_string(f"{new_key},{KEYS}"))
    assert report.failed == 0 and report.rewrapped >= len(made), report
    rotated = create_app(base_config(world["cluster"].url, clock=world["clock"],
                                     cheap_passwords=True, keys=new_key, **RAISED))
    try:
        after = rotated.test_client()
        for sid, envelope in made.items():
            rv = after.post(f"/api/v1/secrets/{sid}/reveal", headers=world["headers"]["alice"])
            assert rv.status_code == 200, rv.get_json()
            assert rv.get_json()["envelope"] == envelope
    finally:
        rotated.extensions["vault"].close()


class Counting(Connection):
    """A connection that counts its writes to the socket: one write is one round trip. The
    request's own (`sends`) apart from the store's follow-up thread's (`follow_ups`), every
    command's name by thread in `commands` (for a failure's message), and the connections
    opened (`opened`): opening one is four more writes (HELLO, CLIENT MAINT_NOTIFICATIONS,
    CLIENT SETINFO twice), counted for whichever thread found no idle connection."""

    sends = 0
    follow_ups = 0
    opened = 0
    commands: ClassVar[list[str]] = []

    @classmethod
    def start(cls) -> None:
        cls.sends = cls.follow_ups = cls.opened = 0
        cls.commands = []

    def on_connect_check_health(self, check_health: bool = True) -> None:
        Counting.opened += 1
        super().on_connect_check_health(check_health)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        thread = threading.current_thread().name
        if thread == "vault-follow-ups":
            Counting.follow_ups += 1
        else:
            Counting.sends += 1
        first = bytes(command[0] if isinstance(command, list | tuple) else command)
        name = re.match(rb"\*\d+\r\n\$\d+\r\n([^\r]*)", first)
        Counting.commands.append(f"{thread}: {(name[1] if name else first[:16]).decode()}")
        super().send_packed_command(command, check_health)


def count_round_trips(cluster_client: Any, *, idle: int = 2) -> None:
    """Count the writes of every connection to the Cluster from here on, each node's pool
    holding `idle` open connections. Two are what a request and the follow-up thread use at
    once: the thread sends a step's batch while the next request runs, so with one connection
    per node, whichever of them came second opened a connection of its own, and its four
    handshake writes counted as round trips (on a busy machine, where the thread is late:
    `assert 6 <= 4`, or a reveal of 6). Open beforehand, they leave only commands to count."""
    for node in cluster_client.get_nodes():
        pool = node.redis_connection.connection_pool
        pool.disconnect()
        pool.connection_class = Counting
        pool.reset()
        ready = [pool.get_connection() for _ in range(idle)]
        for connection in ready:
            pool.release(connection)


def test_round_trips_on_the_cluster(world):
    """docs/architecture.md, "Round trips": on a Cluster a create and a reveal are two round trips, the
    account slot (rate limit, and for the reveal the token with its revocation epoch) and then
    the ticket's slot. What lives outside both (the global audit stream, the agents' index)
    follows off the request's path, and is there once the process has sent it."""
    app, ext = world["app"], world["ext"]
    client, store = app.test_client(), ext.store
    count_round_trips(store.client)
    (ticket,) = tickets_on_different_nodes(world, "trips", 1)
    headers = world["headers"]["alice"]
    assert client.post("/api/v1/requests", json={"ticket": ticket},
                       headers=headers).status_code == 201
    envelope, _ = sealed(ticket)
    warm = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                "envelope": envelope}).get_json()["id"]
    assert client.post(f"/api/v1/secrets/{warm}/reveal", headers=headers).status_code == 200
    assert store.follow_ups.flush()

    Counting.start()
    sid = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                               "envelope": envelope}).get_json()["id"]
    create = Counting.sends
    Counting.sends = 0
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=headers).status_code == 200
    reveal = Counting.sends
    assert store.follow_ups.flush()
    follow_up = Counting.follow_ups
    sent = Counting.commands
    print(f"Cluster round trips: create {create}, reveal {reveal} (single Redis: 1 each); "
          f"then {follow_up} batch(es) for the global stream and the index")
    # Every write above was a command: no connection was opened (and handshaken) meanwhile.
    assert Counting.opened == 0, sent
    assert create == 2, sent
    assert reveal == 2, sent
    assert 1 <= follow_up <= 4, sent  # a pipeline or two, a batch per node each touches
    events = [(e.event, e.id) for e in store.audit_tail(50) if e.ticket == ticket]
    assert ("secret.submitted", sid) in events and ("secret.revealed", sid) in events


def test_rate_limits_are_counted_on_the_cluster(world):
    clock = Clock(time.time())
    app = create_app(base_config(world["cluster"].url, clock=clock, cheap_passwords=True,
                                 ratelimit_submit="3/minute"))
    try:
        client = app.test_client()
        envelope, _ = sealed("limited")
        codes = [client.post("/api/v1/secrets", json={"ticket": "limited", "kind": "wordpress",
                                                      "envelope": envelope},
                             environ_base={"REMOTE_ADDR": "203.0.113.9"}).status_code
                 for _ in range(4)]
        assert codes == [201, 201, 201, 429]
        # The counter lives in the account slot, beside the credentials it follows.
        store = app.extensions["vault"].store
        key = "vault:{acct}:LIMITS:LIMITER/submit/203.0.113.9/3/1/minute"
        assert store.client.get(key) == b"4"
        assert store.client.keyslot(key) == store.client.keyslot("vault:{acct}:agents")
    finally:
        app.extensions["vault"].close()


# -- VAULT_REDIS_MIN_REPLICAS on a Cluster with replicas ----------------------------------------

@pytest.fixture(scope="module")
def replicated() -> Iterator[Any]:
    """Three masters with one replica each (its own Cluster: this module pauses replicas)."""
    from redis_ha import cluster

    with cluster(replicas=1) as c:
        yield c


class Paused:
    """SIGSTOP a replica for a block: WAIT on its master times out; SIGCONT after."""

    def __init__(self, node: Any) -> None:
        self.pid = node.process.pid

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: Any) -> None:
        os.kill(self.pid, signal.SIGCONT)


def test_writes_wait_for_the_replica_of_the_tickets_own_master(replicated):
    clock = Clock(time.time())
    app = create_app(base_config(replicated.url, clock=clock, cheap_passwords=True,
                                 redis_min_replicas=1, redis_wait_timeout_ms=300, **RAISED))
    ext = app.extensions["vault"]
    try:
        ext.accounts.add_agent("rep@example.com", "correct horse battery staple")
        headers = {"Authorization": f"Bearer {ext.accounts.create_token('rep@example.com')[0]}"}
        client = app.test_client()
        here, there = tickets_on_different_nodes({"ext": ext}, "rep", 2)
        for ticket in (here, there):
            assert client.post("/api/v1/requests", json={"ticket": ticket},
                               headers=headers).status_code == 201
        envelope, _ = sealed(here)
        sid = client.post("/api/v1/secrets", json={"ticket": here, "kind": "wordpress",
                                                   "envelope": envelope}).get_json()["id"]
        (replica,) = replicated.replicas_of(node_of({"ext": ext}, ticket_key(here)))
        with Paused(replica):
            # WAIT runs on the connection that wrote, to the ticket's own master: its replica
            # is paused, so a write here is not acknowledged...
            blocked = client.post("/api/v1/secrets", json={"ticket": here, "kind": "wordpress",
                                                           "envelope": envelope})
            assert blocked.status_code == 503 and blocked.headers["Retry-After"]
            # ...while the other masters' replicas acknowledge theirs.
            other, _ = sealed(there)
            assert client.post("/api/v1/secrets", json={"ticket": there, "kind": "wordpress",
                                                        "envelope": other}).status_code == 201
            refused = client.post(f"/api/v1/secrets/{sid}/reveal", headers=headers)
            assert refused.status_code == 503
        # The winning session's retry gets the envelope (it stayed bound to that session).
        revealed = client.post(f"/api/v1/secrets/{sid}/reveal", headers=headers)
        assert revealed.status_code == 200 and revealed.get_json()["envelope"] == envelope
        # And the replica has every acknowledged write.
        with contextlib.closing(replica.client()) as c:
            assert c.execute_command("READONLY") in {b"OK", "OK", True}
            assert c.hget(secret_key(sid), "state") == b"revealed"
    finally:
        ext.close()
