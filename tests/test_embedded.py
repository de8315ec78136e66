"""The embedded store (fakeredis, for the demo mode only) runs every script the real one does.

A pure check of script compatibility: the behaviour itself is tested on the real Redis.
"""

from __future__ import annotations

import os
import subprocess
import sys

from harness import free_port
from helpers import sealed, share

from vault import create_app


def test_every_flow_runs_on_the_embedded_store():
    app = create_app({"embedded": True, "cheap_passwords": True})
    client, ext = app.test_client(), app.extensions["vault"]
    try:
        ext.accounts.add_agent("demo@example.com", "correct horse battery", admin=True)
        token, _ = ext.accounts.create_token("demo@example.com")
        agent = {"Authorization": f"Bearer {token}"}
        rid = client.post("/api/v1/requests", json={"ticket": "1"}, headers=agent
                          ).get_json()["id"]
        envelope, _ = sealed("1")
        sid = client.post(f"/api/v1/requests/{rid}/secret", json={
            "kind": "wordpress", "envelope": envelope}).get_json()["secret_id"]
        deleted = share(client, "1")
        assert client.delete(f"/api/v1/secrets/{deleted['id']}",
                             headers={"X-Manage-Token": deleted["manage_token"]}
                             ).status_code == 204
        assert client.post(f"/api/v1/secrets/{sid}/reveal", headers=agent).get_json()[
            "envelope"] == envelope
        assert client.post(f"/api/v1/secrets/{sid}/ack", headers=agent).status_code == 204
        assert client.get("/api/v1/tickets/1", headers=agent).status_code == 200
        view = ext.vault.sidebar_view("1", "4711")  # Help Scout's sidebar (its own script)
        assert [(r["what"], r["state"]) for r in view["rows"]] == [("wordpress", "revealed")]
        assert [d["id"] for d in view["deleted"]] == [deleted["id"]]
        assert client.post("/api/v1/tickets/1/close", headers=agent).get_json()["purged"] == 1
        assert client.post("/api/v1/tickets/1/reopen", headers=agent).status_code == 200
        assert client.post("/api/v1/session", json={
            "email": "demo@example.com", "password": "correct horse battery"}).status_code == 200
    finally:
        ext.close()


def test_vault_serve_without_fakeredis_says_what_to_install():
    """A production install has no fakeredis (it is the `demo` extra): `vault serve` with
    nothing configured says so in one line, instead of failing on an import."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("VAULT_")}
    # The import system's own "not installed": a None in sys.modules makes `import` fail.
    code = ("import sys; sys.modules['fakeredis'] = None; "
            f"sys.argv = ['vault', 'serve', '--bind', '127.0.0.1:{free_port()}']; "
            "from vault.cli import main; main()")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert (done.returncode, done.stdout) == (2, ""), done.stderr
    # Before it, only the demo's usual log line (a throwaway key ring); no traceback.
    *logged, error = done.stderr.splitlines()
    assert error == ("Error: the embedded demo mode (no VAULT_REDIS_URL) needs fakeredis: "
                     "install vault[demo] (scripts/serve does), or set VAULT_REDIS_URL")
    assert all(line.startswith('{"level": "WARNING"') for line in logged), logged
