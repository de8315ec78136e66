"""Production Redis (deploy/redis/): vault's flows run as the ACL user, which can do nothing else,
and a kill -9 of Redis followed by a restart from its AOF loses nothing acknowledged.

Both run redis-server with deploy/redis/redis.conf and users.acl (tests/production_redis.py):
if vault starts using a command the ACL does not grant, the flows test fails, and the ACL log
(read as the ops user) says which one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
import redis
from click.testing import CliRunner
from harness import KEYS, Clock, base_config
from helpers import WP_FIELDS, keys_of_ticket, sealed, share
from passkey_authenticator import Authenticator
from production_redis import ProductionRedis, production_redis
from test_accounts import PASSWORD, cookie_of, login, with_cookie
from test_webhooks import convo, hs_post, std_post

from vault import create_app
from vault.cli import cli
from vault.crypto.envelope import open_envelope
from vault.crypto.keyring import KeyRing, generate_key_spec
from vault.passkeys import new_browser_nonce
from vault.rotation import rotate_all

HELPDESK_KEY_NAME = "helpscout"


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProductionRedis]:
    with production_redis(tmp_path_factory.mktemp("prod-redis")) as server:
        yield server


def make_app(server: ProductionRedis, clock: Clock, **overrides: Any) -> Any:
    # Rate limits on (the default), so their counters are written as `vault` too.
    app = create_app(base_config(server.url, clock=clock, ratelimit_enabled=True, **overrides))
    app.testing = True
    return app


def cli_env(server: ProductionRedis, keys: str = KEYS) -> dict[str, str | None]:
    config = base_config(server.url)
    return {"VAULT_ENV": "production", "VAULT_REDIS_URL": server.url,
            "VAULT_SECRET_KEY": config["secret_key"], "VAULT_KEYS": keys,
            "VAULT_RATELIMIT_ENABLED": "1"}


def sidebar_post(client: Any, number: int) -> Any:
    raw = json.dumps({"ticket": {"id": 8000 + number, "number": number, "subject": "s"},
                      "customer": {"email": "c@example.com"}, "user": {"id": 4711},
                      "mailbox": {"id": 1}}).encode()
    signature = base64.b64encode(hmac.new(b"hs-app-secret", raw, hashlib.sha1).digest()).decode()
    return client.post("/integrations/helpscout/sidebar", data=raw, headers={
        "X-HelpScout-Signature": signature, "Content-Type": "application/json"})


def acl_denials(server: ProductionRedis) -> list[dict[str, Any]]:
    """What the ACL refused since the last reset, as the ops user sees it. CLIENT SETINFO (sent
    by redis-py on connect, its refusal ignored; Redis 7.0 does not know it) is not a flow."""
    with server.ops_client() as ops:
        entries = ops.acl_log()
    return [e for e in entries if not str(e.get("object", "")).startswith("client|setinfo")]


def test_every_flow_runs_as_the_acl_user(prod: ProductionRedis) -> None:
    clock = Clock(time.time())
    app = make_app(prod, clock)
    ext = app.extensions["vault"]
    client = app.test_client(use_cookies=False)
    try:
        # -- accounts: the CLI's first admin, agents, tokens, helpdesk keys --------------------
        runner = CliRunner()
        added = runner.invoke(cli, ["agent", "add", "boss@example.com", "--admin",
                                    "--password-stdin"], input=PASSWORD + "\n", env=cli_env(prod))
        assert added.exit_code == 0, added.output
        listed = runner.invoke(cli, ["agent", "list"], env=cli_env(prod))
        assert listed.exit_code == 0 and "boss@example.com" in listed.output
        ext.accounts.add_agent("alice@example.com", PASSWORD, name="Alice")
        ext.accounts.add_agent("bob@example.com", PASSWORD, name="Bob")
        ext.accounts.edit_agent("alice@example.com", helpscout_id="4711")
        alice = {"Authorization": f"Bearer {ext.accounts.create_token('alice@example.com')[0]}"}
        boss = {"Authorization": f"Bearer {ext.accounts.create_token('boss@example.com')[0]}"}
        helpdesk = {"Authorization": f"Bearer {ext.accounts.create_api_key(HELPDESK_KEY_NAME)}"}
        assert ext.accounts.list_tokens("alice@example.com")
        assert ext.accounts.list_api_keys()

        # -- web session: login, session lookup, CSRF-checked call ----------------------------
        rv = login(client, "alice@example.com")
        assert rv.status_code == 200, rv.get_json()
        cookie, csrf = cookie_of(rv), rv.get_json()["csrf_token"]
        assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 200

        # -- request flow: create, customer state, fill, reveal (by the web session), ack ------
        rv = client.post("/api/v1/requests", json={"ticket": "7001", "note": "staging"},
                         headers=alice)
        assert rv.status_code == 201, rv.get_json()
        request_id = rv.get_json()["id"]
        assert client.get(f"/api/v1/requests/{request_id}").get_json()["state"] == "open"
        envelope, key = sealed("7001")
        rv = client.post(f"/api/v1/requests/{request_id}/secret",
                         json={"kind": "wordpress", "envelope": envelope})
        assert rv.status_code == 201, rv.get_json()
        secret_id = rv.get_json()["secret_id"]
        rv = client.post(f"/api/v1/secrets/{secret_id}/reveal", headers=with_cookie(cookie, csrf))
        assert rv.status_code == 200, rv.get_json()
        assert open_envelope(key, rv.get_json()["envelope"], ticket="7001",
                             kind="wordpress") == WP_FIELDS
        assert client.post(f"/api/v1/secrets/{secret_id}/ack",
                           headers=with_cookie(cookie, csrf)).status_code == 204
        assert client.get(f"/api/v1/secrets/{secret_id}").get_json()["state"] == "revealed"

        # -- share flow: submit, metadata, customer delete, reveal by token, refused reveal ----
        shared = share(client, "7002")
        assert client.get(f"/api/v1/secrets/{shared['id']}").get_json()["state"] == "waiting"
        deleted = share(client, "7002")
        assert client.delete(f"/api/v1/secrets/{deleted['id']}",
                             headers={"X-Manage-Token": deleted["manage_token"]}
                             ).status_code == 204
        # -- assignment by an admin, a wrong agent refused, the assignee reveals --------------
        assert client.put("/api/v1/tickets/7002/assignee", json={"agent": "alice@example.com"},
                          headers=boss).status_code == 200
        bob = {"Authorization": f"Bearer {ext.accounts.create_token('bob@example.com')[0]}"}
        assert client.post(f"/api/v1/secrets/{shared['id']}/reveal", headers=bob
                           ).status_code == 403
        rv = client.post(f"/api/v1/secrets/{shared['id']}/reveal", headers=alice)
        assert rv.status_code == 200, rv.get_json()
        assert client.post(f"/api/v1/secrets/{shared['id']}/ack", headers=alice
                           ).status_code == 204

        # -- close (purge), tombstone, reopen --------------------------------------------------
        doomed = share(client, "7003")
        rv = client.post("/api/v1/tickets/7003/close", headers=helpdesk)
        assert rv.status_code == 200 and rv.get_json()["purged"] == 1
        assert client.get(f"/api/v1/secrets/{doomed['id']}").get_json()["reason"] == "purged"
        envelope, _ = sealed("7003")
        assert client.post("/api/v1/secrets", json={"ticket": "7003", "kind": "wordpress",
                                                    "envelope": envelope}).status_code == 409
        assert client.post("/api/v1/tickets/7003/reopen", headers=helpdesk).status_code == 200
        share(client, "7003")

        # -- the helpdesk's webhooks: Help Scout and Standard Webhooks, each replayed once -----
        waiting = share(client, "7004")
        assigned = convo(7004, conv_id=990004, assignee={"email": "alice@example.com"},
                         userUpdatedAt="2026-01-01T00:00:00Z")
        assert hs_post(client, "convo.assigned", assigned).status_code == 200
        closed = convo(7004, "closed", conv_id=990004)
        first = hs_post(client, "convo.status", closed)
        assert first.status_code == 200 and first.get_json()["purged"] == 1
        replay = hs_post(client, "convo.status", closed).get_json()
        assert replay["duplicate"] and replay["purged"] == 1
        assert hs_post(client, "convo.deleted", {"id": 990004}).status_code == 200
        assert client.get(f"/api/v1/secrets/{waiting['id']}").status_code == 410
        now = int(clock())
        share(client, "7005")
        assert std_post(client, {"type": "ticket.assigned", "timestamp": "2026-01-01T00:00:00Z",
                                 "data": {"ticket": "7005", "agent": "bob@example.com"}},
                        msg_id="msg_a", timestamp=now).status_code == 200
        rv = std_post(client, {"type": "ticket.closed", "timestamp": "2026-01-01T00:00:01Z",
                               "data": {"ticket": "7005"}}, msg_id="msg_b", timestamp=now)
        assert rv.status_code == 200 and rv.get_json()["purged"] == 1
        replay = std_post(client, {"type": "ticket.closed", "timestamp": "2026-01-01T00:00:01Z",
                                   "data": {"ticket": "7005"}}, msg_id="msg_b", timestamp=now)
        assert replay.get_json()["duplicate"] and replay.get_json()["purged"] == 1
        assert std_post(client, {"type": "ticket.reopened", "timestamp": "2026-01-01T00:00:02Z",
                                 "data": {"ticket": "7005"}}, msg_id="msg_c", timestamp=now
                        ).status_code == 200
        assert sidebar_post(client, 7001).status_code == 200

        # -- reading: ticket view, dashboard, pages, audit (API, service, CLI) -----------------
        view = client.get("/api/v1/tickets/7001", headers=alice)
        assert view.status_code == 200 and view.get_json()["events"]
        mine = {t["ticket"] for t in ext.vault.agent_tickets("alice@example.com")}
        assert {"7001", "7002"} <= mine
        for page in ("/dashboard", "/tickets/7001"):
            assert client.get(page, headers=with_cookie(cookie)).status_code == 200, page
        tail = ext.store.audit_tail(50)
        assert {"request.created", "secret.revealed", "ticket.purged"} <= {e.event for e in tail}
        assert ext.store.audit_tail(10, after=tail[-1].stream_id, block_ms=1) == []
        assert ext.vault.audit_log(agent="alice@example.com")["events"]
        assert ext.vault.audit_log(ticket="7001")["events"]
        audit = runner.invoke(cli, ["audit", "-n", "5"], env=cli_env(prod))
        assert audit.exit_code == 0 and len(audit.stdout.splitlines()) == 5
        audit = runner.invoke(cli, ["audit", "--ticket", "7003"], env=cli_env(prod))
        assert audit.exit_code == 0 and "ticket.purged" in audit.stdout

        # -- second factor: start, confirm, then a login needs a code ----------------------------
        enrolment = ext.accounts.start_totp("bob@example.com")
        ext.accounts.confirm_totp("bob@example.com", pyotp.TOTP(enrolment.secret).at(clock()))
        assert login(client, "bob@example.com").get_json()["reason"] == "totp-required"
        clock.advance(30)
        rv = client.post("/api/v1/session", json={
            "email": "bob@example.com", "password": PASSWORD,
            "totp": pyotp.TOTP(enrolment.secret).at(clock())})
        assert rv.status_code == 200, rv.get_json()

        # -- passkeys: register, sign in (the counter), the second look, remove ------------------
        device, nonce = Authenticator(ext.passkeys.origin), new_browser_nonce()
        bob_cookie = rv.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        assert ext.accounts.signed_in_recently(bob_cookie)
        bob_who = ext.accounts.authenticate_session(bob_cookie)
        for name, authenticator in (("Laptop", device), ("Key", Authenticator(device.origin))):
            options = ext.passkeys.registration_options(bob_who, browser=nonce, session="s")
            ext.passkeys.register(bob_who, name, authenticator.create(options), browser=nonce,
                                  session="s")
        ext.passkeys.sign_in(device.get(ext.passkeys.sign_in_options(browser=nonce)),
                             browser=nonce)
        laptop = ext.passkeys.list("bob@example.com")[0]["id"]
        ext.passkeys.remove("bob@example.com", laptop, actor="bob@example.com")

        # -- key rotation (library and CLI) re-wraps envelopes and TOTP secrets ----------------
        share(client, "7006")
        new_key = generate_key_spec()
        report = rotate_all(ext.store, KeyRing.from_string(f"{new_key},{KEYS}"))
        assert report.failed == 0 and report.rewrapped >= 2, report
        rotated = runner.invoke(cli, ["keys", "rotate"], env=cli_env(prod, f"{new_key},{KEYS}"))
        assert rotated.exit_code == 0, rotated.output
        assert "failed 0" in rotated.stdout

        # -- account changes that end sessions, revocations, removal ------------------------------
        ext.accounts.reset_2fa("bob@example.com")  # and the passkey left
        assert ext.passkeys.list("bob@example.com") == []
        ext.accounts.set_password("bob@example.com", PASSWORD + "!")
        ext.accounts.set_disabled("bob@example.com", True)
        ext.accounts.set_disabled("bob@example.com", False)
        token_id = ext.accounts.list_tokens("alice@example.com")[0]["id"]
        ext.accounts.revoke_token(token_id)
        ext.accounts.revoke_api_key(HELPDESK_KEY_NAME)
        assert client.post("/api/v1/tickets/7002/close", headers=helpdesk).status_code == 401
        ext.accounts.remove_agent("bob@example.com")
        assert client.delete("/api/v1/session",
                             headers=with_cookie(cookie, csrf)).status_code == 204
        assert client.get("/readyz").status_code == 200

        assert acl_denials(prod) == [], "vault needed a command or key the ACL refuses"
    finally:
        ext.close()


REFUSED = [
    ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("CONFIG", "GET", "maxmemory"),
    ("CONFIG", "SET", "appendonly", "no"), ("DEBUG", "OBJECT", "vault:x"), ("SHUTDOWN", "NOSAVE"),
    ("SCRIPT", "FLUSH"), ("MONITOR",), ("ACL", "LIST"), ("SELECT", "1"), ("BGREWRITEAOF",),
    ("SWAPDB", "0", "1"), ("MIGRATE", "h", "1", "vault:x", "0", "1"), ("MODULE", "LIST"),
    ("SET", "other:key", "x"), ("GET", "other:key"), ("DEL", "LIMITSX"), ("RENAME", "vault:a", "b"),
]


@pytest.mark.parametrize("command", REFUSED, ids=lambda c: " ".join(c[:2]))
def test_the_acl_user_is_refused_everything_else(prod: ProductionRedis,
                                                  command: tuple[str, ...]) -> None:
    with prod.ops_client() as ops:  # the ACL itself says no (ACL DRYRUN runs nothing)
        verdict = ops.execute_command("ACL", "DRYRUN", "vault", *command)
        assert verdict != b"OK" and b"no permissions" in verdict.lower(), verdict
    with prod.vault_client() as r:
        if command[0] == "DEBUG":  # refused even before the ACL: enable-debug-command no
            with pytest.raises(redis.exceptions.ResponseError, match="DEBUG command not allowed"):
                r.execute_command(*command)
        else:
            with pytest.raises(redis.exceptions.NoPermissionError):
                r.execute_command(*command)
        assert r.ping()  # still connected, still allowed what it needs
        r.set("vault:acl-probe", "1", px=1000)


@pytest.mark.parametrize("script", [
    "return redis.call('SET', 'other:key', 'x')",
    "return redis.call('FLUSHALL')",
    "return redis.call('FLUSHDB')",
    "return redis.call('KEYS', '*')",
])
def test_scripts_run_under_the_same_acl(prod: ProductionRedis, script: str) -> None:
    with prod.vault_client() as r:
        with pytest.raises(redis.exceptions.NoPermissionError):  # a key outside, as an argument
            r.eval("return redis.call('SET', KEYS[1], 'x')", 1, "other:key")
        with pytest.raises(redis.exceptions.ResponseError, match="user executing the script can't"):
            r.eval(script, 0)
    with prod.ops_client() as ops:
        assert not ops.exists("other:key"), "a script wrote outside vault's keys"


def test_nobody_gets_in_without_the_password(prod: ProductionRedis) -> None:
    for username, password in ((None, None), ("default", ""), ("default", "x"),
                               ("vault", "wrong"), ("ops", "")):
        with prod.client(username, password) as r, \
                pytest.raises(redis.exceptions.AuthenticationError):
            r.ping()
    with prod.ops_client() as ops:
        # The settings in force are the file's, not defaults.
        assert ops.config_get("appendonly") == {"appendonly": "yes"}
        assert ops.config_get("appendfsync") == {"appendfsync": "always"}
        assert ops.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
        assert ops.config_get("protected-mode") == {"protected-mode": "yes"}
        with pytest.raises(redis.exceptions.NoPermissionError):
            ops.execute_command("FLUSHALL")


# -- kill -9 and restart from the AOF ------------------------------------------------------------

def everything(server: ProductionRedis) -> dict[bytes, tuple[str, Any, bool]]:
    """Every key: its type, its value, whether it expires (read as the ops user).

    Values, not DUMP bytes: a hash's field order may differ after a reload, its content not.
    """
    read = {"string": lambda r, k: r.get(k), "hash": lambda r, k: r.hgetall(k),
            "set": lambda r, k: r.smembers(k), "list": lambda r, k: r.lrange(k, 0, -1),
            "zset": lambda r, k: r.zrange(k, 0, -1, withscores=True),
            "stream": lambda r, k: r.xrange(k)}
    out = {}
    with server.ops_client() as ops:
        for key in ops.scan_iter(count=1000):
            kind = ops.type(key).decode()
            out[key] = (kind, read[kind](ops, key), ops.pttl(key) != -1)
    return out


def test_kill_9_and_restart_from_the_aof_loses_nothing_acknowledged(tmp_path: Path) -> None:
    clock = Clock(time.time())
    with production_redis(tmp_path / "redis") as server:
        app = make_app(server, clock)
        ext = app.extensions["vault"]
        client = app.test_client(use_cookies=False)
        try:
            ext.accounts.add_agent("alice@example.com", PASSWORD, name="Alice")
            token = ext.accounts.create_token("alice@example.com")[0]
            alice = {"Authorization": f"Bearer {token}"}
            helpdesk = {"Authorization": f"Bearer {ext.accounts.create_api_key('helpscout')}"}
            # Acknowledged submissions: a share and a filled request.
            shared = share(client, "8001")
            request_id = client.post("/api/v1/requests", json={"ticket": "8002"},
                                     headers=alice).get_json()["id"]
            envelope, key = sealed("8002")
            filled = client.post(f"/api/v1/requests/{request_id}/secret",
                                 json={"kind": "wordpress", "envelope": envelope})
            assert filled.status_code == 201
            # An acknowledged purge: its secret gone, its tombstone kept.
            purged = share(client, "8003")
            assert client.post("/api/v1/tickets/8003/close", headers=helpdesk
                               ).get_json()["purged"] == 1
            purged_keys = set(keys_of_ticket(ext.store, "8003"))
            before = everything(server)
            assert len(before) > 20

            server.kill()
            server.start()  # the same conf, port and directory: it loads the AOF

            log = server.log()
            assert "DB loaded from append only file" in log
            # Redis before 8.x refused to replay a MULTI/EXEC of its AOF (every script's writes)
            # when the default user may not run them: it logs this and drops them silently.
            assert "CRITICAL" not in log
            assert everything(server) == before  # every key, every value
            # And as vault sees it, through the same app (its pool reconnects by itself):
            assert client.get(f"/api/v1/secrets/{shared['id']}").get_json()["state"] == "waiting"
            rv = client.post(f"/api/v1/secrets/{filled.get_json()['secret_id']}/reveal",
                             headers=alice)  # the agent's token survived
            assert rv.status_code == 200, rv.get_json()
            assert open_envelope(key, rv.get_json()["envelope"], ticket="8002",
                                 kind="wordpress") == WP_FIELDS
            assert login(client, "alice@example.com").status_code == 200  # the agent survived
            assert client.get(f"/api/v1/secrets/{purged['id']}").get_json()["reason"] == "purged"
            assert set(keys_of_ticket(ext.store, "8003")) == purged_keys  # still purged
            assert not any(":e:" in k for k in purged_keys)
            envelope, _ = sealed("8003")
            assert client.post("/api/v1/secrets", json={  # the tombstone still refuses
                "ticket": "8003", "kind": "wordpress", "envelope": envelope}).status_code == 409
            assert client.post("/api/v1/tickets/8003/reopen",  # the helpdesk key survived
                               headers=helpdesk).status_code == 200
        finally:
            ext.close()
