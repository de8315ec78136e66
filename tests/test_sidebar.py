"""The legacy Help Scout sidebar app (issue 6, points 2 and 3; issue 12, points 4 and 5): signed,
escaped, states only, agents by name, two round trips. The App Developer Platform page renders
the same template: tests/test_helpscout_app.py."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from typing import Any

from helpers import sealed, share

from vault.storage.keys import envelope as envelope_key

APP_SECRET = "hs-app-secret"
CANARY = {"url": "https://canary-site.example/wp-admin/", "username": "canary-user-7f3a",
          "password": "canary-password-9b1c", "note": "canary-note-5e2d"}


def sidebar(client: Any, body: dict[str, Any], secret: str = APP_SECRET,
            signature: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    if signature is None:
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()
                                     ).decode()
    headers = {"Content-Type": "application/json"}
    if signature:
        headers["X-HelpScout-Signature"] = signature
    return client.post("/integrations/helpscout/sidebar", data=raw, headers=headers)


def context(number: int | bool, user_id: int = 4711) -> dict[str, Any]:
    """The body Help Scout's dynamic app posts when an agent opens conversation `number`."""
    ticket: Any = False if number is False else {"id": 8000 + int(number), "number": number,
                                                 "subject": "Slow <b>site</b>"}
    return {"ticket": ticket,
            "customer": {"id": 42, "fname": "Jo", "lname": "Doe", "email": "c@example.com",
                         "emails": ["c@example.com"]},
            "user": {"id": user_id, "fname": "Alice", "lname": "R", "role": "user",
                     "convRedirect": 0},
            "mailbox": {"id": 1, "email": "help@example.com"}}


def html_of(rv: Any) -> str:
    assert rv.status_code == 200, rv.get_json()
    assert rv.mimetype == "application/json"
    return str(rv.get_json()["html"])


def items(html: str) -> list[str]:
    """The list rows, tags stripped."""
    return [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>(.*?)</li>", html)]


def test_waiting_revealed_and_open_request_each_show_with_state_and_links(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    req = client.post("/api/v1/requests", json={"ticket": "5001"}, headers=agent.headers)
    assert req.status_code == 201
    share(client, "5001", "sftp")
    revealed = share(client, "5001", "wordpress")
    assert client.post(f"/api/v1/secrets/{revealed['id']}/reveal",
                       headers=agent.headers).status_code == 200
    html = html_of(sidebar(client, context(5001)))
    rows = items(html)
    assert sorted(re.sub(r"\d\d \w{3} \d{4} \d\d:\d\d UTC$", "<time>", r) for r in rows) == [
        "Request: waiting for the customer since <time>",
        "WordPress admin: revealed by Alice at <time>",
        "sFTP / SSH: waiting to be read since <time>"]
    assert re.search(r'<time datetime="\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ">', html)
    assert "Assignee: Alice</p>" in html  # vault's display name, not the e-mail
    new_link = '<a href="https://vault.test/requests/new?ticket=5001" target="_blank" ' \
               'rel="noopener noreferrer">Ask for credentials</a>'
    assert new_link in html
    assert '<a href="https://vault.test/tickets/5001" target="_blank" ' \
           'rel="noopener noreferrer">Open in vault</a>' in html
    assert "\n" not in html and "  " not in html  # compact


def test_the_sidebar_holds_no_envelope_key_token_or_customer_field(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    req = client.post("/api/v1/requests", json={"ticket": "5002", "note": "note-canary-1"},
                      headers=agent.headers).get_json()
    envelope, key = sealed("5002", "wordpress", CANARY)
    filled = client.post(f"/api/v1/requests/{req['id']}/secret",
                         json={"kind": "wordpress", "envelope": envelope}).get_json()
    other = share(client, "5002", "other")
    client.post(f"/api/v1/secrets/{other['id']}/reveal", headers=agent.headers)
    html = html_of(sidebar(client, context(5002)))
    assert "waiting to be read" in html and "revealed by" in html
    stored = ext.store.client.get(envelope_key(filled["secret_id"]))
    assert stored  # the waiting secret's wrapped envelope
    canaries = [envelope, key, filled["manage_token"], other["envelope"], other["key"],
                other["manage_token"], agent.token, req["id"], filled["secret_id"], other["id"],
                *CANARY.values(), "canary text", "c@example.com", "Slow", "note-canary-1",
                stored.decode()]
    for canary in canaries:
        assert canary not in html, canary


def test_deleted_purged_and_reopened_tickets_say_so(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    gone = share(client, "5003")
    assert client.delete(f"/api/v1/secrets/{gone['id']}",
                         headers={"X-Manage-Token": gone["manage_token"]}).status_code == 204
    share(client, "5003")
    rows = items(html_of(sidebar(client, context(5003))))
    assert [r.split(" since ")[0].split(" at ")[0] for r in rows] == [
        "WordPress admin: waiting to be read", "Secret: deleted by the customer"]  # deletions last
    ext.vault.close("5003", reason="closed", actor="helpscout")
    html = html_of(sidebar(client, context(5003)))
    assert "Closed <time" in html and ": 1 credential or request deleted." in html
    assert "deleted by the customer" not in html  # the ticket's earlier life is over
    assert "requests/new" not in html  # a closed ticket takes no new request
    ext.vault.reopen("5003", actor="helpscout")
    html = html_of(sidebar(client, context(5003)))
    assert "Reopened; 1 credential or request deleted when it was closed." in html
    assert "requests/new?ticket=5003" in html
    assert items(html) == []  # the deletion before the close is not shown again
    again = share(client, "5003")
    client.delete(f"/api/v1/secrets/{again['id']}",
                  headers={"X-Manage-Token": again["manage_token"]})
    assert [r.split(" at ")[0] for r in items(html_of(sidebar(client, context(5003))))] == [
        "Secret: deleted by the customer"]


def test_every_value_is_escaped(client, make_agent, ext):
    odd = make_agent("odd@example.com", name='Ann <img src=x onerror="alert(1)"> & co')
    ext.accounts.edit_agent(odd.email, helpscout_id="4711")
    s = share(client, "5004")
    client.post("/api/v1/tickets/5004/assignee", json={"agent": odd.email})
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=odd.headers
                       ).status_code == 200
    html = html_of(sidebar(client, context(5004)))
    assert "revealed by Ann &lt;img src=x onerror=&#34;alert(1)&#34;&gt; &amp; co at" in html
    assert "<img" not in html


def test_an_unknown_helpscout_user_sees_the_states_but_no_new_request_link(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    share(client, "5005")
    for user_id in (999, -1, 10**30):
        html = html_of(sidebar(client, context(5005, user_id=user_id)))
        assert "waiting to be read" in html
        assert "requests/new" not in html and "tickets/5005" in html


def test_a_ticket_vault_never_saw_says_nothing_stored(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    html = html_of(sidebar(client, context(5006)))
    assert "Nothing stored." in html and "Assignee: nobody yet" in html
    assert "requests/new?ticket=5006" in html


def test_a_draft_or_a_number_vault_cannot_use_gets_the_neutral_message(client):
    assert "Save this one" in html_of(sidebar(client, context(False)))
    for number in ("", "a b", "x" * 65, True, None, 1.5):
        body = context(1)
        body["ticket"]["number"] = number
        assert "Save this one" in html_of(sidebar(client, body)), number


def test_a_wrong_or_missing_signature_is_401_and_touches_no_redis(client, counted):
    for rv in (sidebar(client, context(5007), secret="wrong"),
               sidebar(client, context(5007), signature=""),
               sidebar(client, context(5007), signature="not base64 at all")):
        assert rv.status_code == 401
        assert rv.mimetype == "application/problem+json"
    _, trips = counted.measure(lambda: sidebar(client, context(5007), secret="wrong"))
    assert trips == 0


def test_the_sidebar_of_a_ticket_with_100_secrets_is_two_round_trips(client, agent, ext,
                                                                    counted):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    for _ in range(100):
        envelope, _ = sealed("5008")
        ext.vault.create_secret("5008", "wordpress", envelope)
    sidebar(client, context(5008))  # warm: connection open, script cached, as in a server
    rv, trips = counted.measure(lambda: sidebar(client, context(5008)))
    assert len(items(html_of(rv))) == 100
    assert trips == 2  # the script with the user lookup, then the names of who it mentions
    # Nobody to name (no assignee, no reveal, an unknown Help Scout user): one.
    rv, trips = counted.measure(lambda: sidebar(client, context(5008, user_id=999)))
    assert len(items(html_of(rv))) == 100 and trips == 1
    # From a cold script cache: NOSCRIPT, load, retry (the only time it costs more).
    ext.store.client.script_flush()
    rv, trips = counted.measure(lambda: sidebar(client, context(5008)))
    assert len(items(html_of(rv))) == 100 and trips == 4


def test_agents_are_named_by_their_display_name_of_today(client, make_agent, ext):
    ann = make_agent("ann@example.com", name="Ann Rocketeer")
    bob = make_agent("bob@example.com", name="Bob")
    ext.accounts.edit_agent(ann.email, helpscout_id="4711")
    first, second = share(client, "5014"), share(client, "5014", "sftp")
    assert client.post(f"/api/v1/secrets/{first['id']}/reveal", headers=ann.headers
                       ).status_code == 200  # claims the ticket
    html = html_of(sidebar(client, context(5014)))
    assert "Assignee: Ann Rocketeer</p>" in html and "ann@example.com" not in html
    assert "revealed by Ann Rocketeer at" in html
    ext.accounts.edit_agent(ann.email, name="Ann R. (support lead)")
    html = html_of(sidebar(client, context(5014)))
    assert "Assignee: Ann R. (support lead)</p>" in html
    assert "revealed by Ann R. (support lead) at" in html  # today's name, not the one then
    # Bob takes over and reads the other; then his account is removed: his name of then stays.
    ext.vault.assign("5014", bob.email, actor="test")
    assert client.post(f"/api/v1/secrets/{second['id']}/reveal", headers=bob.headers
                       ).status_code == 200
    ext.accounts.remove_agent(bob.email)
    html = html_of(sidebar(client, context(5014)))
    assert "sFTP / SSH</strong>: revealed by Bob at" in html
    assert "Assignee: bob@example.com</p>" in html  # no agent of that e-mail any more


def test_a_helpscout_user_mapped_to_a_disabled_agent_sees_states_but_cannot_ask(client, agent,
                                                                               ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    share(client, "5015")
    assert "requests/new?ticket=5015" in html_of(sidebar(client, context(5015)))
    ext.accounts.set_disabled(agent.email, True)
    html = html_of(sidebar(client, context(5015)))
    assert "waiting to be read since" in html and "tickets/5015" in html
    assert "requests/new" not in html and "Ask for credentials" not in html
    assert "Your vault account is disabled" in html
    ext.accounts.set_disabled(agent.email, False)
    assert "requests/new?ticket=5015" in html_of(sidebar(client, context(5015)))


def test_expired_requests_and_secrets_say_so(client, agent, ext, clock):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    client.post("/api/v1/requests", json={"ticket": "5009"}, headers=agent.headers)
    share(client, "5009")
    clock.advance(ext.config.default_ttl + 1)
    rows = items(html_of(sidebar(client, context(5009))))
    assert [re.sub(r" \d\d \w{3} \d{4} \d\d:\d\d UTC$", "", r) for r in rows] == [
        "Request: expired", "WordPress admin: expired unread"], rows


def test_many_deletions_show_the_newest_twenty_and_count_the_rest(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    for _ in range(23):
        envelope, _ = sealed("5010")
        made = ext.vault.create_secret("5010", "wordpress", envelope)
        ext.vault.delete_secret(made["id"], made["manage_token"])
    rows = items(html_of(sidebar(client, context(5010))))
    assert len(rows) == 21
    assert all(r.startswith("Secret: deleted by the customer at ") for r in rows[:20])
    assert rows[20] == "Secret: 3 earlier ones deleted by the customer"


def test_calls_are_counted_per_ticket_in_the_same_round_trip(make_app, agent, clock):
    app = make_app(ratelimit_webhook="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert sidebar(client, context(5011)).status_code == 200
    rv = sidebar(client, context(5011))
    assert rv.status_code == 429 and 1 <= int(rv.headers["Retry-After"]) <= 60
    assert sidebar(client, context(5012)).status_code == 200  # another ticket: its own count
    clock.advance(61)
    assert sidebar(client, context(5011)).status_code == 200


def test_the_app_secret_may_list_several_for_rotation(make_app):
    client = make_app(helpscout_app_secret="new-app-secret, hs-app-secret").test_client()
    assert sidebar(client, context(5013), secret="new-app-secret").status_code == 200
    assert sidebar(client, context(5013), secret="hs-app-secret").status_code == 200
    assert sidebar(client, context(5013), secret="other").status_code == 401
