"""No secret in logs, in the audit stream or in Redis (issue 2, item 8)."""

from __future__ import annotations

import io
import logging
from typing import Any

from helpers import sealed

from vault.crypto import open_envelope
from vault.logs import JsonFormatter
from vault.storage.keys import envelope as envelope_key
from vault.web import SESSION_COOKIE

PLAINTEXT = {"url": "https://canary-site.example", "username": "canary-user-7f3a",
             "password": "canary-pass-Zq9!x"}


def dump_redis(client: Any) -> bytes:
    """Every byte Redis holds: strings, hashes, sets, sorted sets and streams."""
    out = io.BytesIO()
    for key in client.scan_iter("*"):
        out.write(key + b"\n")
        kind = client.type(key)
        if kind == b"string":
            out.write(client.get(key) or b"")
        elif kind == b"hash":
            for f, v in client.hgetall(key).items():
                out.write(f + b"=" + v + b"\n")
        elif kind == b"set":
            out.write(b"\n".join(client.smembers(key)))
        elif kind == b"zset":
            out.write(b"\n".join(client.zrange(key, 0, -1)))
        elif kind == b"stream":
            for _, fields in client.xrange(key):
                for f, v in fields.items():
                    out.write(f + b"=" + v + b"\n")
        out.write(b"\n")
    return out.getvalue()


def test_a_full_flow_at_debug_leaks_nothing(make_app, redis_client):
    app = make_app(log_level="DEBUG")
    client = app.test_client()
    ext = app.extensions["vault"]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("vault")
    root.addHandler(handler)
    try:
        password = "agent-password-canary-42"
        ext.accounts.add_agent("leak@example.com", password, name="Leak")
        token, _ = ext.accounts.create_token("leak@example.com")
        api_key = ext.accounts.create_api_key("leak-desk")
        agent = {"Authorization": f"Bearer {token}"}

        login = client.post("/api/v1/session", json={"email": "leak@example.com",
                                                     "password": password})
        assert login.status_code == 200
        cookie = login.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        csrf = login.get_json()["csrf_token"]
        assert client.post("/api/v1/session", json={"email": "leak@example.com",
                                                    "password": password + "x"}).status_code \
            == 401

        req = client.post("/api/v1/requests", json={"ticket": "leak-1"}, headers=agent).get_json()
        envelope, key = sealed("leak-1", fields=PLAINTEXT)
        filled = client.post(f"/api/v1/requests/{req['id']}/secret",
                             json={"kind": "wordpress", "envelope": envelope}).get_json()
        shared_env, shared_key = sealed("leak-1", fields=PLAINTEXT)
        shared = client.post("/api/v1/secrets", json={"ticket": "leak-1", "kind": "wordpress",
                                                      "envelope": shared_env}).get_json()
        assert client.delete(f"/api/v1/secrets/{shared['id']}",
                             headers={"X-Manage-Token": shared["manage_token"]}).status_code == 204
        revealed = client.post(f"/api/v1/secrets/{filled['secret_id']}/reveal", headers={
            "Cookie": f"{SESSION_COOKIE}={cookie}", "X-CSRF-Token": csrf})
        assert revealed.status_code == 200
        assert open_envelope(key, revealed.get_json()["envelope"], ticket="leak-1",
                             kind="wordpress") == PLAINTEXT
        assert client.post(f"/api/v1/secrets/{filled['secret_id']}/ack", headers=agent
                           ).status_code == 403  # another session: refused, logged
        client.post("/api/v1/tickets/leak-1/close", headers={"Authorization": f"Bearer {api_key}"})
        client.post("/api/v1/secrets", json={"ticket": "x", "kind": "wordpress",
                                             "envelope": envelope + "garbage!"})
    finally:
        root.removeHandler(handler)

    logs = stream.getvalue()
    assert "secret.revealed" in logs and "login.failed" in logs  # the logs did record the flow
    audit = dump_redis(redis_client)
    secrets_ = {"plaintext password": PLAINTEXT["password"], "plaintext user":
                PLAINTEXT["username"], "envelope": envelope, "shared envelope": shared_env,
                "key K": key, "shared K": shared_key, "agent password": password,
                "agent token": token, "api key": api_key, "session cookie": cookie,
                "csrf token": csrf, "manage token": filled["manage_token"],
                "shared manage token": shared["manage_token"]}
    for name, value in secrets_.items():
        assert value not in logs, f"{name} found in the logs"
    for name in ("plaintext password", "plaintext user", "key K", "shared K", "envelope",
                 "agent password", "agent token", "api key", "session cookie",
                 "manage token"):
        assert secrets_[name].encode() not in audit, f"{name} found in Redis"


def test_stored_envelopes_are_wrapped_at_rest(client, ext, redis_client):
    envelope, _ = sealed("rest-1", fields=PLAINTEXT)
    sid = client.post("/api/v1/secrets", json={"ticket": "rest-1", "kind": "wordpress",
                                               "envelope": envelope}).get_json()["id"]
    stored = redis_client.get(envelope_key(sid))
    assert stored is not None and stored.startswith(b"w1.")
    assert envelope.encode() not in stored
    assert ext.keyring.unwrap(stored, context=b"vault-envelope:" + sid.encode()) \
        == envelope.encode()
