"""The Help Scout sidebar app: signed, escaped, states only."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from helpers import share

APP_SECRET = "hs-app-secret"


def sidebar(client: Any, body: dict[str, Any], secret: str = APP_SECRET,
            signature: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    if signature is None:
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()
                                     ).decode()
    return client.post("/integrations/helpscout/sidebar", data=raw, headers={
        "X-HelpScout-Signature": signature, "Content-Type": "application/json"})


def context(number: int | bool, user_id: int = 4711) -> dict[str, Any]:
    ticket: Any = False if number is False else {"id": 8000 + int(number), "number": number,
                                                 "subject": "Slow <b>site</b>"}
    return {"ticket": ticket, "customer": {"email": "c@example.com"}, "user": {"id": user_id},
            "mailbox": {"id": 1}}


def test_the_sidebar_shows_states_and_no_secrets(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    req = client.post("/api/v1/requests", json={"ticket": "5001"}, headers=agent.headers)
    waiting, revealed = share(client, "5001"), share(client, "5001")
    client.post(f"/api/v1/secrets/{revealed['id']}/reveal", headers=agent.headers)
    rv = sidebar(client, context(5001))
    assert rv.status_code == 200
    html = rv.get_json()["html"]
    assert "waiting for the customer" in html  # the open request
    assert "waiting to be read" in html and "revealed by Alice" in html
    assert "https://vault.test/requests/new?ticket=5001" in html
    assert "https://vault.test/tickets/5001" in html
    for canary in (waiting["envelope"], waiting["key"], waiting["manage_token"],
                   revealed["envelope"], agent.token, req.get_json()["id"], "rocket-temp"):
        assert canary not in html


def test_an_unknown_helpscout_user_gets_no_new_request_link(client, agent):
    share(client, "5002")
    html = sidebar(client, context(5002, user_id=999)).get_json()["html"]
    assert "waiting to be read" in html
    assert "requests/new" not in html


def test_a_draft_gets_the_neutral_message(client):
    rv = sidebar(client, context(False))
    assert rv.status_code == 200 and "Save this one" in rv.get_json()["html"]


def test_a_wrong_or_missing_signature_is_401(client):
    assert sidebar(client, context(5003), secret="wrong").status_code == 401
    assert sidebar(client, context(5003), signature="").status_code == 401
