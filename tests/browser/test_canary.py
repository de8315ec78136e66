"""Canary (issue 5, point 6): a full flow through the browser pages with unique canary values,
then a search of everything vault and Redis wrote: the server's logs (vault's JSON logs at DEBUG
and the access log), the audit streams, a Redis DUMP of every key, the AOF files and an RDB
snapshot. The canary plaintext, the keys K, the agent's password and token, the session cookie,
the CSRF token and the manage tokens appear nowhere; an envelope appears only wrapped.

Redis compresses long strings in DUMP and RDB output unless told not to, which would hide a
canary from a byte search: compression is turned off first, and a control value written to Redis
on purpose (for the audit streams: the agent's e-mail, which every event names) must be found in
each of them, so each search is shown able to find what it looks for.
"""

from __future__ import annotations

import json
import secrets
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from harness import LiveServer, ServeVault, private_redis
from playwright.sync_api import Browser

from browser.flows import create_request, log_in, reveal, share, submit_request
from browser.harness import GENEROUS_LIMITS, add_agent, recorded_contexts
from vault.crypto.keyring import KeyRing
from vault.service import envelope_context


def production_server(serve_vault: ServeVault,
                      redis_url: str) -> AbstractContextManager[LiveServer]:
    """vault as deployed (-c deploy/gunicorn.conf.py: JSON access log and app logs), at DEBUG."""
    return serve_vault(redis_url, access_log=False, extra_args=["-c", "deploy/gunicorn.conf.py"],
                       log_level="DEBUG", **GENEROUS_LIMITS)


def canary(label: str) -> str:
    return f"canary-{label}-{secrets.token_hex(6)}"


def redis_bytes(client: Any, workdir: Path) -> dict[str, bytes]:
    """What Redis holds and wrote, by where: DUMP of every key, the audit streams' entries, the
    AOF files and an RDB snapshot (all uncompressed)."""
    dumps = b"".join(key + b"\n" + (client.dump(key) or b"") + b"\n"
                     for key in client.scan_iter("*", count=1000))
    streams = b""
    for key in client.scan_iter("*log*", count=1000):
        if client.type(key) == b"stream":
            streams += json.dumps([[k.decode(), v.decode()] for _, f in client.xrange(key)
                                   for k, v in f.items()]).encode()
    client.save()
    aof = b"".join(p.read_bytes() for p in sorted((workdir / "appendonlydir").glob("*"))
                   if p.is_file())
    return {"DUMP of every key": dumps, "audit streams": streams, "AOF": aof,
            "RDB": (workdir / "dump.rdb").read_bytes()}


def test_a_full_flow_in_the_browser_leaves_no_canary_anywhere(
        browser: Browser, serve_vault: ServeVault) -> None:
    fields = {"url": f"https://{canary('site')}.example/wp-admin/",
              "username": canary("user"), "password": canary("password"),
              "note": canary("note")}
    shared_fields = {"text": canary("shared-text")}
    password = canary("agent-password")
    with private_redis("vault-canary-redis-") as redis_server:
        client = redis_server.client()
        client.config_set("rdbcompression", "no")
        control = canary("control")
        client.set("control:plain", control)  # must be found by every search below
        with production_server(serve_vault, redis_server.url) as server:
            # The agent's e-mail is the audit streams' control: every event names its actor.
            audit_control = canary("audit-control")
            agent = add_agent(server, f"{audit_control}@example.com", password=password,
                              name="Canary Agent", token=True)
            with recorded_contexts(browser, server) as new_context:
                agent_ctx, agent_record = new_context(server=server)
                page = agent_ctx.new_page()
                log_in(page, agent)
                cookie = next(c["value"] for c in agent_ctx.cookies()
                              if c["name"] == "__Host-vault_session")
                csrf = page.get_attribute('meta[name="csrf-token"]', "content") or ""
                link = create_request(page, "canary-1")

                customer_ctx, customer_record = new_context(server=server)
                customer = customer_ctx.new_page()
                manage = submit_request(customer, link, "wordpress", fields)
                shared_link, shared_manage = share(customer, "canary-1", "other", shared_fields)
                assert reveal(page, link) == fields
                uploads = [json.loads(r.post_data or "{}")["envelope"]
                           for r in customer_record.requests
                           if r.method == "POST" and r.post_data and "envelope" in r.post_data]
            assert len(uploads) == 2
            logs = server.output.text()
            stored = redis_bytes(client, Path(redis_server.workdir))
            # The shared secret is still waiting: its envelope is in Redis, wrapped.
            shared_id = shared_link.split("/s/")[1].split("#")[0]
            wrapped = client.get(f"vault:{{{shared_id[:6]}}}:e:{shared_id}")
            keyring = KeyRing.from_string(server.env["VAULT_KEYS"])

    assert wrapped is not None and wrapped.startswith(b"w1.")
    assert keyring.unwrap(wrapped, context=envelope_context(shared_id)).decode() in uploads
    assert "secret.revealed" in logs and '"path"' in logs  # vault's logs and the access log
    for where, data in stored.items():
        expected = audit_control if where == "audit streams" else control
        assert expected.encode() in data, f"the control is not found in {where}"
    secrets_ = {
        **{f"plaintext {k}": v for k, v in fields.items()}, "shared plaintext":
        shared_fields["text"], "K of the request link": link.split("#")[1],
        "K of the shared link": shared_link.split("#")[1], "agent password": password,
        "agent token": agent.token or "", "session cookie": cookie, "CSRF token": csrf,
        "manage token": manage.split("#")[1], "shared manage token": shared_manage.split("#")[1],
        **{f"envelope {i}": env for i, env in enumerate(uploads)},
    }
    assert all(len(v) >= 20 for v in secrets_.values()), secrets_.keys()
    for name, value in secrets_.items():
        assert value not in logs, f"{name} is in the server's logs"
        for where, data in stored.items():
            assert value.encode() not in data, f"{name} is in {where}"
    del agent_record  # recorded: its own checks ran when the contexts closed
