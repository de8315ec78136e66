"""The embedded store (fakeredis, for the demo mode only) runs every script the real one does.

A pure check of script compatibility: the behaviour itself is tested on the real Redis.
"""

from __future__ import annotations

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
