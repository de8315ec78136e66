"""Security headers on every response, no-store on everything that concerns a secret."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import re
from typing import Any

import pytest
from harness import base_config, free_port
from helpers import helpscout_app_query, sealed, share

from vault import create_app

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


@pytest.fixture
def app(make_app):
    """Limits out of reach: the route walk below sends hundreds of requests from one address
    (429 has its own test)."""
    return make_app(ratelimit_submit="100000/minute", ratelimit_login_address="100000/minute",
                    ratelimit_login_account="100000/minute", ratelimit_webhook="100000/minute",
                    ratelimit_reveal="100000/minute")


def check(rv):
    for name, value in COMMON.items():
        assert rv.headers.get(name) == value, name
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method,path", [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/secrets/" + "A" * 28), ("POST", "/api/v1/secrets"),
    ("GET", "/no/such/page"), ("DELETE", "/healthz"),
])
def test_every_response_carries_the_security_headers(client, method, path):
    rv = client.open(path, method=method)
    check(rv)
    if rv.mimetype != "text/html":
        assert rv.headers["Content-Security-Policy"] == DATA_CSP


def test_secret_responses_are_no_store(client, agent):
    s = share(client, "h-1")
    for rv in (client.get(f"/api/v1/secrets/{s['id']}"),
               client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers),
               client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)):
        check(rv)
        assert rv.headers["Content-Security-Policy"] == DATA_CSP


def test_html_errors_get_the_page_csp(client):
    rv = client.get("/no/such/page")
    assert rv.status_code == 404
    assert rv.mimetype == "text/html"
    assert rv.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")


def test_development_sends_no_hsts(make_app):
    client = make_app(env="development").test_client()
    assert "Strict-Transport-Security" not in client.get("/healthz").headers


# -- every route, every status it can give (issue 5, point 7) ----------------------------------

PAGE_CSP_EXACT = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                  "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                  "base-uri 'none'")


APP_PATH = "/integrations/helpscout/app"  # Help Scout's framed app: the one frameable route
APP_CSP_EXACT = PAGE_CSP_EXACT.replace("frame-ancestors 'none'",
                                       "frame-ancestors https://secure.helpscout.net")


def check_any(rv: Any, what: str) -> None:
    """The header set of docs/api.md on one response, whatever its route and status."""
    for name, value in COMMON.items():
        assert rv.headers.get(name) == value, f"{what}: {name}"
    path = what.split()[1]
    is_static = path.startswith("/static/")
    page = rv.mimetype == "text/html" and not path.startswith("/api/")
    # The app's own pages (200, 401, 429, 503) may be framed; a 405 from Flask is JSON.
    expected = (APP_CSP_EXACT if path.split("?")[0] == APP_PATH else PAGE_CSP_EXACT) \
        if page else DATA_CSP
    assert rv.headers["Content-Security-Policy"] == expected, what
    assert "X-Frame-Options" not in rv.headers, what  # frame-ancestors says it all
    # Only the sign-ins set a cookie (the session, or a passkey ceremony's binding to the browser).
    assert "Set-Cookie" not in rv.headers or path.startswith(
        ("/api/v1/session", "/login", "/api/v1/passkeys/sign-in")), what
    if is_static and rv.status_code == 200:
        # Cacheable: revalidated without the content-hash version, a year with it (below).
        assert "no-store" not in rv.headers.get("Cache-Control", ""), what
    else:
        assert rv.headers.get("Cache-Control") == "no-store", what


def test_every_route_for_every_status_carries_the_header_set(app, client, agent, admin,
                                                             helpdesk):
    """Walk the app's URL map: each route and method, anonymous and with each kind of
    credential, with no body, with bad JSON, with an empty object and with a body over the
    limit; plus the states that give 201, 204, 409 and 410. Every answer carries the headers."""
    req = client.post("/api/v1/requests", json={"ticket": "hdr-1"}, headers=agent.headers)
    waiting = share(client, "hdr-1")
    gone = share(client, "hdr-1")
    assert client.post(f"/api/v1/secrets/{gone['id']}/reveal", headers=agent.headers
                       ).status_code == 200
    deleted = share(client, "hdr-1")
    assert client.delete(f"/api/v1/secrets/{deleted['id']}",
                         headers={"X-Manage-Token": deleted["manage_token"]}).status_code == 204
    login = client.post("/api/v1/session", json={"email": agent.email,
                                                  "password": agent.password})
    cookie = login.headers["Set-Cookie"].split(";")[0]
    values = {"request_id": [req.get_json()["id"], "A" * 28, "bad"],
              "secret_id": [waiting["id"], gone["id"], deleted["id"], "A" * 28, "bad"],
              "ticket": ["hdr-1", "bad ticket!"], "filename": ["vault.css", "nope.css"]}
    who = {"anonymous": {}, "agent": agent.headers, "admin": admin.headers,
           "helpdesk": helpdesk, "cookie": {"Cookie": cookie}}
    bodies = {"none": None, "bad json": b"{not json", "empty object": b"{}",
              "too large": b"{" + b" " * (70 * 1024) + b"}"}
    seen: dict[int, str] = {}
    for rule in app.url_map.iter_rules():
        # PATCH: no route takes it, so each route also answers 405.
        for method in [*sorted(rule.methods - {"OPTIONS"}), "PATCH"]:
            choices = [dict(zip(rule.arguments, combo, strict=True)) for combo in
                       itertools.product(*(values[a] for a in sorted(rule.arguments)))] \
                if rule.arguments else [{}]
            for args in choices:
                path = rule.rule
                for name, value in args.items():
                    path = re.sub(rf"<(?:[a-z]+:)?{name}>", value, path)
                for label, headers in who.items():
                    for body_label, body in bodies.items():
                        if body is not None and method in {"GET", "HEAD", "PATCH"}:
                            continue
                        rv = client.open(path, method=method, data=body, headers={
                            **headers, "Content-Type": "application/json",
                            "X-HelpScout-Signature": "x"})
                        what = f"{method} {path} ({label}, {body_label}) -> {rv.status_code}"
                        rv.close()  # a static file's answer holds the file open
                        check_any(rv, what)
                        seen.setdefault(rv.status_code, what)
    with app.test_request_context():
        from vault.pages import static_url

        versioned = static_url("vault.css")
    rv = client.get(versioned)
    rv.close()
    check_any(rv, f"GET {versioned} -> {rv.status_code}")
    assert rv.status_code == 200 and "max-age=31536000" in rv.headers["Cache-Control"]
    # Signed calls: the walk's bogus signature never gets past the check.
    for path, secret, event in (("/integrations/helpscout/sidebar", "hs-app-secret", ""),
                                ("/api/v1/webhooks/helpscout", "hs-secret-one",
                                 "helpscout.test")):
        raw = json.dumps({"ticket": {"id": 1, "number": 77}, "user": {"id": 1}}).encode()
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest())
        rv = client.post(path, data=raw, headers={
            "Content-Type": "application/json", "X-HelpScout-Signature": signature.decode(),
            "X-HelpScout-Event": event})
        assert rv.status_code == 200, (path, rv.get_json())
        check_any(rv, f"POST {path} (signed) -> 200")
    signed = helpscout_app_query({"conversation-id": "1", "conversation-number": "77",
                                  "user-id": "1"}, "hs-app-secret")
    rv = client.get(f"{APP_PATH}?{signed}")
    assert rv.status_code == 200 and "vault · ticket 77" in rv.get_data(as_text=True)
    check_any(rv, f"GET {APP_PATH}?(signed) -> 200")
    # States the walk does not reach with empty bodies.
    envelope, _ = sealed("hdr-2")
    created = client.post("/api/v1/secrets", json={"ticket": "hdr-2", "kind": "wordpress",
                                                   "envelope": envelope})
    removed = client.delete(f"/api/v1/secrets/{created.get_json()['id']}",
                            headers={"X-Manage-Token": created.get_json()["manage_token"]})
    client.post("/api/v1/tickets/hdr-2/close", headers=helpdesk)
    closed = client.post("/api/v1/secrets", json={"ticket": "hdr-2", "kind": "wordpress",
                                                  "envelope": envelope})
    for rv, what in ((created, "POST /api/v1/secrets"), (removed, "DELETE /api/v1/secrets/x"),
                     (closed, "POST /api/v1/secrets (closed)")):
        check_any(rv, f"{what} -> {rv.status_code}")
        seen.setdefault(rv.status_code, what)
    assert {200, 201, 204, 303, 400, 401, 403, 404, 405, 409, 410, 413} <= set(seen), \
        sorted(seen)


def test_429_and_503_carry_the_header_set_too(make_app):
    limited = make_app(ratelimit_login_address="1/minute").test_client()
    for _ in range(2):
        rv = limited.post("/api/v1/session", json={"email": "a@example.com", "password": "x"})
    assert rv.status_code == 429
    check_any(rv, "POST /api/v1/session -> 429")
    down_app = create_app(base_config(f"redis://127.0.0.1:{free_port()}/0"))
    down = down_app.test_client()
    for method, path in (("GET", "/api/v1/secrets/" + "A" * 28), ("GET", "/s/" + "A" * 28),
                         ("GET", "/readyz"), ("POST", "/api/v1/secrets")):
        rv = down.open(path, method=method, json={})
        assert rv.status_code == 503, (path, rv.status_code)
        check_any(rv, f"{method} {path} -> 503")
    down_app.extensions["vault"].close()


def frame_ancestors(rv: Any) -> str:
    [directive] = [d.strip() for d in rv.headers["Content-Security-Policy"].split(";")
                   if d.strip().startswith("frame-ancestors")]
    return directive


def test_only_the_helpscout_app_may_be_framed_and_only_by_help_scout(app, client, agent,
                                                                     make_app):
    """Per route (issue 12, point 2): every page vault serves says frame-ancestors 'none',
    the Help Scout app alone says VAULT_HELPSCOUT_FRAME_ANCESTORS (Help Scout by default), on
    its 200 and on its 401 alike."""
    s = share(client, "fa-1")
    req = client.post("/api/v1/requests", json={"ticket": "fa-1"}, headers=agent.headers)
    login = client.post("/api/v1/session", json={"email": agent.email,
                                                  "password": agent.password})
    cookie = {"Cookie": login.headers["Set-Cookie"].split(";")[0]}
    values = {"request_id": req.get_json()["id"], "secret_id": s["id"], "ticket": "fa-1",
              "filename": "vault.css"}
    framed: dict[str, str] = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        path = rule.rule
        for name, value in values.items():
            path = re.sub(rf"<(?:[a-z]+:)?{name}>", value, path)
        for headers in ({}, cookie):
            rv = client.get(path, headers=headers)
            rv.close()
            framed[f"{path} {bool(headers)}"] = frame_ancestors(rv)
    expected = {what: "frame-ancestors 'none'" for what in framed}
    expected[f"{APP_PATH} False"] = expected[f"{APP_PATH} True"] = \
        "frame-ancestors https://secure.helpscout.net"  # unsigned: the 401 page, frameable
    assert framed == expected
    assert len(framed) > 30  # the walk saw every page, the agent's and the admin's included
    signed = f"{APP_PATH}?" + helpscout_app_query({"conversation-number": "fa-1",
                                                   "user-id": "1"}, "hs-app-secret")
    assert frame_ancestors(client.get(signed)) == \
        "frame-ancestors https://secure.helpscout.net"
    other = make_app(helpscout_frame_ancestors="https://secure.helpscout.net "
                                               "https://*.hsenv.io").test_client()
    rv = other.get(signed)
    assert rv.status_code == 200
    assert frame_ancestors(rv) == "frame-ancestors https://secure.helpscout.net https://*.hsenv.io"
    assert frame_ancestors(other.get("/login")) == "frame-ancestors 'none'"


def test_json_answers_are_the_bytes_flask_would_write(app):
    """vault.web.JsonProvider builds its encoder once; what it writes is Flask's own output."""
    import datetime as dt
    import uuid

    from flask.json.provider import DefaultJSONProvider

    from vault.web import JsonProvider

    assert isinstance(app.json, JsonProvider)
    flask_json = DefaultJSONProvider(app)
    bodies: list[Any] = [
        {"b": 1, "a": [None, True, 1.5, "é\u2028\U0001f600"], "c": {"z": "<&>", "y": ""}},
        [1, 2], "text", {"when": dt.datetime(2026, 12, 3, 12, 0, tzinfo=dt.UTC)},
        {"id": uuid.UUID(int=7)},
    ]
    with app.app_context():
        for body in bodies:
            ours, theirs = app.json.response(body), flask_json.response(body)
            assert ours.get_data() == theirs.get_data()
            assert ours.mimetype == theirs.mimetype == "application/json"
        assert app.json.response(a=1).get_data() == flask_json.response(a=1).get_data()
