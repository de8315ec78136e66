"""Help Scout's App Developer Platform (issue 12, points 1, 2, 4 and 5): the framed sidebar page.

Help Scout loads `GET /integrations/helpscout/app?<context>&X-HelpScout-Signature=<sig>` in an
iframe; the signature is base64 HMAC-SHA1 of the JSON encoding of the other parameters. These
tests sign like Help Scout (tests/helpers.py, checked here against node's own JSON.stringify)
and check what the page shows, in which language, with which headers, and that nothing
unsigned reaches Redis.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import subprocess
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from harness import base_config, free_port
from helpers import helpscout_app_query, helpscout_js_signature, sealed, share

from vault import create_app
from vault.storage.keys import envelope as envelope_key

APP = "/integrations/helpscout/app"
APP_SECRET = "hs-app-secret"  # VAULT_HELPSCOUT_APP_SECRET of base_config
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
       "connect-src 'self'; form-action 'self'; frame-ancestors https://secure.helpscout.net; "
       "base-uri 'none'")


def context(number: str | None = "6001", *, user: str = "4711", conversation: str = "912345678",
            **more: str) -> dict[str, str]:
    """The parameters Help Scout puts in the app's URL, in its order (docs/helpscout.md)."""
    params = {"conversation-id": conversation, "conversation-number": number or "",
              "customer-id": "555", "mailbox-id": "42", "user-id": user,
              "installation-ids": "8,9", "application-id": "77", "application-slug": "vault"}
    if number is None:
        del params["conversation-number"]
    params.update(more)
    return params


def signed_url(params: dict[str, str], secret: str = APP_SECRET, *, own: str = "") -> str:
    """The URL Help Scout loads: the callback URL (with its own query `own`, unsigned), the
    context, then the signature."""
    query = helpscout_app_query(params, secret)
    return f"{APP}?{own + '&' if own else ''}{query}"


def load(client: Any, params: dict[str, str] | None = None, *, secret: str = APP_SECRET,
         own: str = "", **headers: str) -> Any:
    return client.get(signed_url(context() if params is None else params, secret, own=own),
                      headers=headers)


def page_of(rv: Any) -> str:
    assert rv.status_code == 200, rv.get_data(as_text=True)
    assert rv.mimetype == "text/html"
    return str(rv.get_data(as_text=True))


def items(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", li) for li in re.findall(r"<li>(.*?)</li>", html)]


def test_a_signed_load_shows_the_ticket_by_names_with_links_that_open_a_new_tab(
        client, make_agent, ext):
    ann = make_agent("ann@example.com", name="Ann Rocketeer")
    ext.accounts.edit_agent(ann.email, helpscout_id="4711")
    client.post("/api/v1/requests", json={"ticket": "6001"}, headers=ann.headers)
    revealed = share(client, "6001", "sftp")
    assert client.post(f"/api/v1/secrets/{revealed['id']}/reveal", headers=ann.headers
                       ).status_code == 200
    share(client, "6001")
    rv = load(client)
    html = page_of(rv)
    assert "vault · ticket 6001" in html
    assert "Assignee: Ann Rocketeer</p>" in html and "ann@example.com" not in html
    assert sorted(re.sub(r"\d\d \w{3} \d{4} \d\d:\d\d UTC$", "<t>", r) for r in items(html)) == [
        "Request: waiting for the customer since <t>", "WordPress admin: waiting to be read since <t>",
        "sFTP / SSH: revealed by Ann Rocketeer at <t>"]
    assert '<a href="https://vault.test/requests/new?ticket=6001" target="_blank" ' \
           'rel="noopener noreferrer">Ask for credentials</a>' in html
    assert '<a href="https://vault.test/tickets/6001" target="_blank" ' \
           'rel="noopener noreferrer">Open in vault</a>' in html
    assert re.search(r'<link rel="stylesheet" href="/static/vault\.css\?v=[0-9a-f]{12}">', html)
    assert "<script" not in html  # nothing to run: the page is the state
    assert rv.headers["Content-Security-Policy"] == CSP
    assert rv.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in rv.headers


def test_the_page_holds_no_envelope_key_token_or_customer_field(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    req = client.post("/api/v1/requests", json={"ticket": "6002", "note": "note-canary-2"},
                      headers=agent.headers).get_json()
    envelope, key = sealed("6002", "wordpress", {"url": "https://canary.example/wp-admin",
                                                  "username": "canary-user", "password": "pw-c"})
    filled = client.post(f"/api/v1/requests/{req['id']}/secret",
                         json={"kind": "wordpress", "envelope": envelope}).get_json()
    html = page_of(load(client, context("6002")))
    assert "waiting to be read" in html
    stored = ext.store.client.get(envelope_key(filled["secret_id"])).decode()
    for canary in (envelope, key, filled["manage_token"], agent.token, req["id"],
                   filled["secret_id"], "canary", "pw-c", "note-canary-2", stored, "555"):
        assert canary not in html, canary


def test_the_agents_language_french_from_the_browser_or_the_callback_url(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    share(client, "6003")
    ext.vault.assign("6003", agent.email, actor="test")
    french = page_of(load(client, context("6003"), **{"Accept-Language": "fr-FR,fr;q=0.9"}))
    assert '<html lang="fr" dir="ltr">' in french
    assert "vault · ticket 6003" in french and "Assigné à\u00a0: Alice</p>" in french
    assert "Demander des identifiants" in french and "Ouvrir dans vault" in french
    assert re.search(r"en attente de lecture depuis le <time datetime=\"[^\"]+\">\d\d [a-zéû.]+ "
                     r"\d{4} \d\d:\d\d UTC</time>", french), french
    assert "Ask for credentials" not in french and "Assignee" not in french
    # The callback URL may say it (unsigned: Help Scout signs only its own parameters).
    rv = load(client, context("6003"), own="lang=fr", **{"Accept-Language": "en"})
    assert '<html lang="fr" dir="ltr">' in page_of(rv) and "Set-Cookie" not in rv.headers
    english = page_of(load(client, context("6003"), **{"Accept-Language": "sv, en;q=0.5"}))
    assert '<html lang="en" dir="ltr">' in english and "Ask for credentials" in english
    # The 401 page too.
    rv = client.get(APP + "?conversation-number=6003", headers={"Accept-Language": "fr"})
    assert rv.status_code == 401 and "Ouvrez" in rv.get_data(as_text=True)


def test_unsigned_wrongly_signed_or_tampered_loads_are_401_plain_pages_without_redis(
        client, counted):
    params = context("6004")
    good = signed_url(params)
    tampered = good.replace("conversation-number=6004", "conversation-number=6005")
    duplicated = good + "&conversation-number=6005"
    unsigned = APP + "?" + urlencode(params)
    cases = {"unsigned": unsigned, "empty signature": unsigned + "&X-HelpScout-Signature=",
             "wrong secret": signed_url(params, "not-the-secret"), "tampered": tampered,
             "a parameter twice": duplicated, "garbage": APP + "?%ff%fe=1&&&",
             "not base64": unsigned + "&X-HelpScout-Signature=%%%", "nothing": APP}
    for what, url in cases.items():
        rv, trips = counted.measure(lambda url=url: client.get(url))
        body = rv.get_data(as_text=True)
        assert rv.status_code == 401, what
        assert rv.mimetype == "text/html", what
        assert "Open this from Help Scout" in body and "<script" not in body, what
        assert rv.headers["Content-Security-Policy"] == CSP, what  # it shows in the frame
        assert "Set-Cookie" not in rv.headers, what
        assert trips == 0, what  # the signature is checked before any Redis
    assert client.get(good).status_code == 200


def test_a_secret_rotated_out_or_an_old_signed_timestamp_is_stale(make_app, clock):
    """Rotation: every secret of the list is accepted; one removed from it is stale. Help
    Scout's parameters carry no time today; a signed `timestamp`, if it comes, must be fresh."""
    client = make_app(helpscout_app_secret="new-app-secret, hs-app-secret").test_client()
    assert load(client, secret="new-app-secret").status_code == 200
    assert load(client, secret="hs-app-secret").status_code == 200
    rotated = make_app(helpscout_app_secret="new-app-secret").test_client()
    assert load(rotated, secret="hs-app-secret").status_code == 401
    now = int(clock.now)
    for stamp, status in ((str(now), 200), (str(now * 1000), 200), (str(now - 299), 200),
                          (str(now - 301), 401), (str(now + 301), 401), ("soon", 401)):
        assert load(client, context(timestamp=stamp)).status_code == status, stamp


def test_help_scouts_own_javascript_encoding_and_its_guides_php_encoding_are_both_accepted(
        client):
    """What Help Scout's servers compute (JSON.stringify, run by node here) and what its guide's
    PHP computes (json_encode: `\\/` and `\\u00e9`) over the same parameters."""
    node = shutil.which("node")
    assert node, "node is installed by scripts/test (npm for axe-core)"
    params = context("6006", **{"application-slug": "vault/é", "extra": "a b+c"})
    script = ("const c=require('crypto');const p=JSON.parse(process.argv[1]);"
              "process.stdout.write(c.createHmac('sha1',process.argv[2])"
              ".update(JSON.stringify(p)).digest('base64'))")
    by_node = subprocess.run([node, "-e", script, json.dumps(params), APP_SECRET],
                             capture_output=True, text=True, check=True, timeout=30).stdout
    assert by_node == helpscout_js_signature(APP_SECRET, params)  # the helper is Help Scout's
    query = urlencode(params, quote_via=quote)
    assert client.get(f"{APP}?{query}&X-HelpScout-Signature={quote(by_node, safe='')}"
                      ).status_code == 200
    php = json.dumps(params, separators=(",", ":")).replace("/", "\\/")
    assert "\\/" in php and "\\u00e9" in php
    by_php = base64.b64encode(hmac.new(APP_SECRET.encode(), php.encode(), hashlib.sha1).digest())
    assert client.get(f"{APP}?{query}&X-HelpScout-Signature={quote(by_php.decode(), safe='')}"
                      ).status_code == 200
    # A `+` of the signature that was not percent-encoded (it arrives as a space) still counts.
    plus = next(p for p in (context("6006", extra=str(i)) for i in range(200))
                if "+" in helpscout_js_signature(APP_SECRET, p))
    raw = f"{APP}?{urlencode(plus, quote_via=quote)}&X-HelpScout-Signature=" \
          + helpscout_js_signature(APP_SECRET, plus)
    assert client.get(raw).status_code == 200


def test_two_round_trips_for_a_ticket_one_more_when_only_the_conversation_id_is_known(
        client, agent, ext, counted):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    share(client, "6007")
    ext.vault.assign("6007", agent.email, actor="test")
    load(client, context("6007"))  # warm: scripts cached, as in a server
    rv, trips = counted.measure(lambda: load(client, context("6007")))
    assert "waiting to be read" in page_of(rv) and trips == 2
    # Help Scout's conversation id, learnt from its webhooks, finds the ticket.
    ext.store.remember_conversation("912340007", "6007", 60_000)
    rv, trips = counted.measure(lambda: load(client, context(None, conversation="912340007")))
    assert "vault · ticket 6007" in page_of(rv) and trips == 3
    # An id no webhook told vault about: says so (not the draft's message), after one lookup.
    rv, trips = counted.measure(lambda: load(client, context(None, conversation="912349999")))
    assert "does not know this conversation's number yet" in page_of(rv) and trips == 1
    html = page_of(load(client, context("", conversation="")))  # a draft: no number yet
    assert "Save this one" in html and "ticket" not in html.split("<main")[1]


def test_a_disabled_agent_sees_the_states_but_no_ask_link(client, agent, ext):
    ext.accounts.edit_agent(agent.email, helpscout_id="4711")
    share(client, "6008")
    assert "requests/new?ticket=6008" in page_of(load(client, context("6008")))
    ext.accounts.set_disabled(agent.email, True)
    html = page_of(load(client, context("6008")))
    assert "waiting to be read" in html and "tickets/6008" in html
    assert "requests/new" not in html and "Your vault account is disabled" in html
    unknown = page_of(load(client, context("6008", user="999")))
    assert "requests/new" not in unknown and "disabled" not in unknown


def test_loads_are_counted_per_ticket_and_over_the_limit_say_so_in_the_frame(make_app, clock):
    client = make_app(ratelimit_webhook="2/minute").test_client()
    for _ in range(2):
        assert load(client, context("6009")).status_code == 200
    rv = load(client, context("6009"))
    assert rv.status_code == 429 and 1 <= int(rv.headers["Retry-After"]) <= 60
    assert "Too many loads" in rv.get_data(as_text=True)
    assert rv.headers["Content-Security-Policy"] == CSP
    clock.advance(61)
    assert load(client, context("6009")).status_code == 200


def test_redis_down_is_a_503_page_in_the_frame():
    app = create_app(base_config(f"redis://127.0.0.1:{free_port()}/0"))
    try:
        rv = load(app.test_client(), context("6010"))
        assert rv.status_code == 503 and int(rv.headers["Retry-After"]) > 0
        assert "briefly unavailable" in rv.get_data(as_text=True)
        assert rv.headers["Content-Security-Policy"] == CSP
        assert "Traceback" not in rv.get_data(as_text=True)
    finally:
        app.extensions["vault"].close()


def test_an_app_without_a_secret_configured_refuses_every_load(make_app):
    client = make_app(helpscout_app_secret="").test_client()
    rv = load(client)
    assert rv.status_code == 401 and "Open this from Help Scout" in rv.get_data(as_text=True)


@pytest.mark.parametrize("value", ["", "https://a.example; script-src *", "*", "'none' https://x",
                                   "https://a.example/path", "javascript:alert(1)"])
def test_frame_ancestors_takes_only_origins(make_app, value):
    from vault.errors import ConfigError
    with pytest.raises(ConfigError, match="VAULT_HELPSCOUT_FRAME_ANCESTORS"):
        make_app(helpscout_frame_ancestors=value)


def test_only_get_and_head(client):
    assert client.post(signed_url(context())).status_code == 405
    assert load(client).status_code == 200
    assert client.head(signed_url(context())).status_code == 200
