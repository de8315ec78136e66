"""VAULT_REDIS_MIN_REPLICAS: acknowledged writes are replicated, and a WAIT that times out
never costs the customer their submission or the agent their reveal.

A private primary and one replica; the replica is paused (SIGSTOP) to make WAIT time out.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from harness import RedisServer, base_config, free_port, private_redis
from helpers import sealed

from vault import create_app
from vault.errors import Unavailable

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[RedisServer, subprocess.Popen[bytes]]]:
    with private_redis("vault-primary-") as primary:
        yield from _with_replica(primary)


def _with_replica(primary: RedisServer) -> Iterator[tuple[RedisServer, subprocess.Popen[bytes]]]:
    replica_dir, port, replica_port = tempfile.mkdtemp(), primary.port, free_port()
    replica = subprocess.Popen(
        ["redis-server", "--port", str(replica_port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", replica_dir, "--replicaof", "127.0.0.1", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    # WAIT blocks in the primary until the replica has synced and acknowledged this write.
    client.set("vault-test:sync", "1")
    assert client.execute_command("WAIT", 1, 30_000) == 1, "the replica did not sync"
    client.close()
    try:
        yield primary, replica
    finally:
        replica.terminate()
        replica.wait(10)
        shutil.rmtree(replica_dir, ignore_errors=True)


@pytest.fixture
def world(pair: Any) -> Iterator[dict[str, Any]]:
    primary, replica = pair
    redis.Redis.from_url(primary.url).flushdb()
    # Accounts are set up without waiting (a replica can take a moment to acknowledge its first
    # writes, longer than this module's short WAIT timeout on a busy machine)...
    setup = create_app(base_config(primary.url, cheap_passwords=True)).extensions["vault"]
    setup.accounts.add_agent("rep@example.com", "correct horse battery staple")
    tokens = [setup.accounts.create_token("rep@example.com")[0] for _ in range(2)]
    setup.close()
    client = redis.Redis.from_url(primary.url)
    assert client.execute_command("WAIT", 1, 30_000) == 1, "the replica is not in sync"
    client.close()
    # ... then every write of the app under test waits for the replica.
    app = create_app(base_config(primary.url, cheap_passwords=True, redis_min_replicas=1,
                                 redis_wait_timeout_ms=300, reveal_grace=0))
    ext = app.extensions["vault"]
    yield {"client": app.test_client(), "ext": ext, "replica": replica,
           "agents": [{"Authorization": f"Bearer {t}"} for t in tokens]}
    ext.close()


class Paused:
    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self.pid = process.pid

    def __enter__(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def __exit__(self, *exc: Any) -> None:
        os.kill(self.pid, signal.SIGCONT)


def test_acknowledged_writes_wait_for_the_replica(world):
    envelope, _ = sealed("r-1")
    rv = world["client"].post("/api/v1/secrets", json={"ticket": "r-1", "kind": "wordpress",
                                                       "envelope": envelope})
    assert rv.status_code == 201


def test_a_reveal_whose_wait_times_out_stays_with_the_winning_session(world):
    client, (winner, other) = world["client"], world["agents"]
    client.post("/api/v1/requests", json={"ticket": "r-2"}, headers=winner)
    envelope, _ = sealed("r-2")
    sid = client.post("/api/v1/secrets", json={"ticket": "r-2", "kind": "wordpress",
                                               "envelope": envelope}).get_json()["id"]
    with Paused(world["replica"]):
        rv = client.post(f"/api/v1/secrets/{sid}/reveal", headers=winner)
        assert rv.status_code == 503 and "Retry-After" in rv.headers
    assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=other).status_code == 410
    retry = client.post(f"/api/v1/secrets/{sid}/reveal", headers=winner)
    assert retry.status_code == 200 and retry.get_json()["envelope"] == envelope


def test_a_fill_whose_wait_times_out_is_answered_on_retry(world):
    client, (agent, _) = world["client"], world["agents"]
    rid = client.post("/api/v1/requests", json={"ticket": "r-3"},
                      headers=agent).get_json()["id"]
    envelope, _ = sealed("r-3")
    with Paused(world["replica"]):
        rv = client.post(f"/api/v1/requests/{rid}/secret",
                         json={"kind": "wordpress", "envelope": envelope})
        assert rv.status_code == 503
    retry = client.post(f"/api/v1/requests/{rid}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    assert retry.status_code == 201
    sid = retry.get_json()["secret_id"]
    assert client.delete(f"/api/v1/secrets/{sid}",
                         headers={"X-Manage-Token": retry.get_json()["manage_token"]}
                         ).status_code == 204


def test_account_and_webhook_writes_wait_for_the_replica_too(world):
    """Not only the ticket scripts: a login, a new token, a revocation or a webhook's
    deduplication that a failover could lose is refused (503) until a replica has it."""
    ext, client = world["ext"], world["client"]
    login = {"email": "rep@example.com", "password": "correct horse battery staple"}
    token_id = ext.accounts.list_tokens("rep@example.com")[0]["id"]
    with Paused(world["replica"]):
        with pytest.raises(Unavailable):
            ext.accounts.create_token("rep@example.com")
        with pytest.raises(Unavailable):
            ext.accounts.revoke_token(token_id)
        rv = client.post("/api/v1/session", json=login)
        assert rv.status_code == 503 and rv.headers["Retry-After"]
    assert client.post("/api/v1/session", json=login).status_code == 200
    # A 503 says "not confirmed", not "undone": the primary applied the revocation, and once
    # the replica has it too the token is gone everywhere.
    assert token_id not in [t["id"] for t in ext.accounts.list_tokens("rep@example.com")]
