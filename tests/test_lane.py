"""The scripts' own connections (vault.storage.runner.Lane) against a real redis-server: a reply is
read by the caller who asked for it and by nobody else, a connection the server dropped is
reopened once, and a fork starts without its parent's connections."""

from __future__ import annotations

import os
from typing import Any

import pytest
from harness import private_redis
from helpers import sealed, ticket_record

from vault.errors import Unavailable


def waiting(client: Any, agent: Any, ticket: str) -> str:
    client.post("/api/v1/requests", json={"ticket": ticket}, headers=agent.headers)
    envelope, _ = sealed(ticket)
    return str(client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "sftp",
                                                    "envelope": envelope}).get_json()["id"])


def test_the_scripts_of_a_plain_redis_run_through_the_lane_and_reads_through_the_pool(ext):
    lane, pool = ext.store.lane, ext.store.client.connection_pool
    assert lane is not None
    lane.reset()
    ticket_record(ext.store, "lane-1")  # a plain read: a connection of the client's pool
    pooled = list(pool._available_connections)
    ext.vault.close("lane-1", reason="closed", actor="test")  # a script: the lane's own
    assert len(lane._idle) == 1 and lane._idle[0] not in pooled
    assert list(pool._available_connections) == pooled


def agent_of(app: Any) -> Any:
    """An agent of `app` (the `agent` fixture belongs to the default app)."""
    ext = app.extensions["vault"]
    ext.accounts.add_agent("lane@example.com", "correct horse battery staple")
    token, _ = ext.accounts.create_token("lane@example.com")
    return type("Agent", (), {"headers": {"Authorization": f"Bearer {token}"}})()


def test_a_reply_its_caller_gave_up_on_is_never_read_by_the_next_caller(make_app, redis_client):
    app = make_app(redis_socket_timeout=0.3)
    client = app.test_client()
    agent = agent_of(app)
    first, second = waiting(client, agent, "LANE-A"), waiting(client, agent, "LANE-B")
    # Writes wait while the server is paused: the reveal's reply comes after its caller gave up.
    redis_client.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
    try:
        late = client.post(f"/api/v1/secrets/{first}/reveal", headers=agent.headers)
    finally:
        redis_client.execute_command("CLIENT", "UNPAUSE")
    assert late.status_code == 503
    # Were that connection kept, the next caller would read the first reveal's late reply.
    rv = client.post(f"/api/v1/secrets/{second}/reveal", headers=agent.headers)
    assert rv.status_code == 200
    assert rv.get_json()["ticket"] == "LANE-B"


def test_a_connection_the_server_dropped_is_reopened_once(make_app, redis_client):
    app = make_app()
    client = app.test_client()
    agent = agent_of(app)
    first, second = waiting(client, agent, "LANE-C"), waiting(client, agent, "LANE-D")
    lane = app.extensions["vault"].store.lane
    assert len(lane._idle) == 1  # one caller at a time: one connection, waiting in the lane
    conn = lane._idle[0]
    conn.send_command("CLIENT", "ID")
    # The server drops it: the lane finds it dead when it next uses it.
    assert redis_client.execute_command("CLIENT", "KILL", "ID", conn.read_response()) == 1
    assert client.post(f"/api/v1/secrets/{first}/reveal", headers=agent.headers
                       ).status_code == 200
    assert client.post(f"/api/v1/secrets/{second}/reveal", headers=agent.headers
                       ).status_code == 200


def test_a_redis_that_is_gone_is_a_503_not_a_hang():
    with private_redis("vault-lane-") as server:
        from harness import base_config

        from vault import create_app

        app = create_app(base_config(server.url, redis_socket_timeout=0.5,
                                     redis_connect_timeout=0.5))
        ext = app.extensions["vault"]
        ext.vault.close("LANE-E", reason="closed", actor="test")  # the lane has a connection
        server.process.kill()
        server.process.wait()
        with pytest.raises(Unavailable):
            ext.vault.close("LANE-E", reason="closed", actor="test")
        ext.close()


def test_a_forked_process_starts_with_none_of_its_parents_connections(ext):
    ext.vault.close("LANE-F", reason="closed", actor="test")
    lane = ext.store.lane
    parent = list(lane._idle)
    assert parent
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: one script of its own, then report which connection it used
        try:
            ext.vault.close("LANE-F", reason="closed", actor="test")
            shared = any(conn in parent for conn in lane._idle)
            os.write(write, b"shared" if shared else b"own")
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 16)
    os.waitpid(pid, 0)
    assert answer == b"own"
    ext.vault.close("LANE-F", reason="closed", actor="test")  # the parent's still works
    assert lane._idle[0] in parent
