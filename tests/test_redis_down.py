"""Redis goes away: every endpoint that needs it answers 503 fast, the rest keep serving,
and the service recovers by itself with nothing acknowledged lost.

This module runs its own redis-server (killed and restarted here), so the shared one is untouched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
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


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    with private_redis("vault-redis-down-") as server:
        yield server


@pytest.fixture(scope="module")
def world(own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    overrides = {"redis_socket_timeout": 0.5, "redis_connect_timeout": 0.5}
    local = create_app(base_config(own_redis.url, cheap_passwords=True, **overrides)
                       ).extensions["vault"]
    local.accounts.add_agent("ops@example.com", "correct horse battery staple", admin=True)
    token, _ = local.accounts.create_token("ops@example.com")
    key = local.accounts.create_api_key("desk")
    server = start_gunicorn(gunicorn_env(own_redis.url, **overrides),
                            Path(tmp_path_factory.mktemp("down")), workers=2, threads=4)
    yield {"server": server, "token": token, "key": key, "local": local}
    stop_server(server)
    local.close()


def needs_redis(url: str, token: str, key: str, secret_id: str, request_id: str
                ) -> list[tuple[str, str, dict[str, Any]]]:
    """Every endpoint that needs Redis, with a request good enough to reach the store."""
    agent = {"Authorization": f"Bearer {token}"}
    desk = {"Authorization": f"Bearer {key}"}
    envelope, _ = sealed("7000")
    hs_body = json.dumps({"id": 1, "number": 7000, "status": "closed"}).encode()
    hs_sig = base64.b64encode(hmac.new(b"hs-secret-one", hs_body, hashlib.sha1).digest()).decode()
    return [
        ("POST", "/api/v1/secrets", {"json": {"ticket": "7000", "kind": "wordpress",
                                              "envelope": envelope}}),
        ("GET", f"/api/v1/secrets/{secret_id}", {}),
        ("DELETE", f"/api/v1/secrets/{secret_id}", {"headers": {"X-Manage-Token": "vm_" + "A" * 43}}),
        ("POST", f"/api/v1/secrets/{secret_id}/reveal", {"headers": agent}),
        ("POST", f"/api/v1/secrets/{secret_id}/ack", {"headers": agent}),
        ("POST", "/api/v1/requests", {"headers": agent, "json": {"ticket": "7000"}}),
        ("GET", f"/api/v1/requests/{request_id}", {}),
        ("POST", f"/api/v1/requests/{request_id}/secret", {"json": {"kind": "wordpress",
                                                                   "envelope": envelope}}),
        ("GET", "/api/v1/tickets/7000", {"headers": agent}),
        ("PUT", "/api/v1/tickets/7000/assignee", {"headers": desk,
                                                 "json": {"agent": "ops@example.com"}}),
        ("POST", "/api/v1/tickets/7000/close", {"headers": desk}),
        ("POST", "/api/v1/tickets/7000/reopen", {"headers": desk}),
        ("POST", "/api/v1/session", {"json": {"email": "ops@example.com",
                                              "password": "correct horse battery staple"}}),
        ("POST", "/api/v1/webhooks/helpscout", {"data": hs_body, "headers": {
            "X-HelpScout-Signature": hs_sig, "X-HelpScout-Event": "convo.status"}}),
    ]


def assert_all_503(world: dict[str, Any], secret_id: str, request_id: str) -> None:
    url = world["server"].url
    for method, path, kwargs in needs_redis(url, world["token"], world["key"], secret_id,
                                            request_id):
        started = time.monotonic()
        rv = requests.request(method, url + path, timeout=10, **kwargs)
        took = time.monotonic() - started
        assert rv.status_code == 503, (method, path, rv.status_code, rv.text)
        assert rv.headers["Content-Type"] == "application/problem+json", (method, path)
        assert int(rv.headers["Retry-After"]) >= 1, (method, path)
        assert rv.json()["status"] == 503
        assert took < 2.0, (method, path, took)
    assert requests.get(url + "/healthz", timeout=5).status_code == 200
    assert requests.get(url + "/readyz", timeout=5).status_code == 503
    assert requests.get(url + "/metrics", timeout=5).status_code == 200
    assert requests.get(url + "/api/v1/openapi.json", timeout=5).status_code == 200


def test_redis_killed_gives_fast_503s_and_recovery_loses_nothing(world, own_redis):
    url = world["server"].url
    agent = {"Authorization": f"Bearer {world['token']}"}
    envelope, _ = sealed("7000")
    rv = requests.post(url + "/api/v1/secrets", timeout=5, json={
        "ticket": "7000", "kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 201
    acknowledged = rv.json()["id"]
    request_id = requests.post(url + "/api/v1/requests", json={"ticket": "7000"}, headers=agent,
                               timeout=5).json()["id"]

    assert own_redis.process is not None
    own_redis.process.kill()  # no goodbye: only what was fsynced (appendfsync always) survives
    own_redis.process.wait(10)
    assert_all_503(world, acknowledged, request_id)

    own_redis.start()  # returns once redis-server says it accepts connections
    # No waiting on vault's side: its clients reconnect on the next command by themselves.
    assert requests.get(url + "/readyz", timeout=5).status_code == 200
    meta = requests.get(f"{url}/api/v1/secrets/{acknowledged}", timeout=5)
    assert meta.status_code == 200 and meta.json()["state"] == "waiting"
    rv = requests.post(f"{url}/api/v1/secrets/{acknowledged}/reveal", headers=agent, timeout=5)
    assert rv.status_code == 200 and rv.json()["envelope"] == envelope


def test_a_paused_redis_gives_503_within_the_socket_timeout(world, own_redis):
    url = world["server"].url
    assert requests.get(url + "/readyz", timeout=5).status_code == 200
    assert own_redis.process is not None
    pid = own_redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        for path in ("/api/v1/secrets/" + "A" * 28, "/readyz"):
            started = time.monotonic()
            rv = requests.get(url + path, timeout=10)
            assert rv.status_code == 503, rv.text
            assert time.monotonic() - started < 2.0
    finally:
        os.kill(pid, signal.SIGCONT)
    # A connection that timed out during the pause was dropped; the next command reconnects.
    assert requests.get(url + "/readyz", timeout=5).status_code == 200
