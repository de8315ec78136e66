"""Sign-in through the team's identity provider (issue 13): against a real OpenID Provider.

The provider is panva's oidc-provider under node (tests/oidc_provider.py), signing in through
its own login and consent pages; vault runs in-process (Flask's test client over
https://vault.test, so its Secure cookies flow). Each refusal: a page, a 4xx, no session,
`login.failed` with the reason in the audit, and no code, token or state in any log line.

The provider runs in both of its modes (issue 24): the scope's claims in the ID token as well
(`provider`), and its conformant default, claims at UserInfo only (`conformant`). The tests
that take `either` run once in each.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from harness import free_port
from helpers import share
from oidc_provider import (
    CLIENT_ID,
    CLIENT_SECRET,
    MODES,
    OTHER_CLIENT_ID,
    SIGNED_USERINFO_CLIENT_ID,
    OidcProvider,
    sign_in,
)

from vault.errors import NotFound

BASE = "https://vault.test"
CALLBACK = BASE + "/login/oidc/callback"


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """The provider with the scope's claims in the ID token as well."""
    found = OidcProvider(tmp_path_factory.mktemp("oidc"), [CALLBACK])
    yield found
    found.stop()


@pytest.fixture(scope="module")
def conformant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    """The provider as it comes: the code flow's ID token carries `sub` alone, the claims are
    at UserInfo."""
    found = OidcProvider(tmp_path_factory.mktemp("oidc-conformant"), [CALLBACK], conform=True)
    yield found
    found.stop()


@pytest.fixture(params=sorted(MODES))
def either(request: pytest.FixtureRequest) -> OidcProvider:
    """The provider in each mode in turn: `[id-token]`, then `[userinfo]`."""
    found: OidcProvider = request.getfixturevalue("conformant" if MODES[request.param]
                                                  else "provider")
    return found


def app_factory(make_app: Callable[..., Any], idp: OidcProvider) -> Callable[..., Any]:
    def factory(**overrides: Any) -> Any:
        return make_app(**{**idp.settings(), **overrides})
    return factory


@pytest.fixture
def sso_app(make_app: Callable[..., Any], provider: OidcProvider) -> Callable[..., Any]:
    """make_app with SSO set up for the provider (more settings as keyword arguments)."""
    return app_factory(make_app, provider)


@pytest.fixture
def either_app(make_app: Callable[..., Any], either: OidcProvider) -> Callable[..., Any]:
    """sso_app, for the provider in each of its modes."""
    return app_factory(make_app, either)


class Browser:
    """One browser's visit to vault: its cookies (Flask's test client), and what it was told."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.client = app.test_client()

    def get(self, url: str, **kwargs: Any) -> Any:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return self.client.get(path, base_url=BASE, **kwargs)

    def start(self, next_path: str = "/dashboard") -> str:
        rv = self.get(f"/login/oidc?next={next_path}")
        assert rv.status_code == 303, rv.get_data(as_text=True)
        return str(rv.headers["Location"])

    def sign_in(self, login: str, **kwargs: Any) -> Any:
        """The whole flow: the button, the provider's pages, the callback; the callback's
        answer."""
        return self.get(sign_in(self.start(), login, **kwargs))

    def session(self) -> Any:
        return self.client.get("/api/v1/session", base_url=BASE)


def cookies_set(rv: Any) -> dict[str, str]:
    return {h.split("=", 1)[0]: h for h in rv.headers.getlist("Set-Cookie")}


def audit(app: Any) -> list[Any]:
    return app.extensions["vault"].store.audit_tail(50)


def test_the_button_goes_to_the_provider_with_pkce_state_nonce_and_the_scopes(sso_app,
                                                                              provider):
    app = sso_app()
    browser = Browser(app)
    page = browser.get("/login").get_data(as_text=True)
    assert 'id="sso-button"' in page and "Sign in with your company account" in page
    assert 'id="login-form"' in page  # and the password form next to it
    rv = browser.get("/login/oidc?next=/tickets/7")
    assert rv.status_code == 303
    target = urlsplit(rv.headers["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == provider.issuer + "/auth"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK and query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert len(query["state"]) >= 32 and len(query["nonce"]) >= 32
    assert query["state"] != query["nonce"]
    cookie = cookies_set(rv)["__Host-vault_sso"]
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=600"):
        assert flag in cookie, cookie
    assert "__Host-vault_session" not in cookies_set(rv)
    # The sign-in waits in Redis for ten minutes at most; the state itself is not a key.
    store = app.extensions["vault"].store
    [key] = list(store.client.scan_iter(match="vault:{acct}:sso:*"))
    assert 0 < store.client.pttl(key) <= 600_000
    assert query["state"] not in key.decode()


def test_an_existing_agent_signs_in_as_a_web_session_and_a_reveal_works(either_app, either,
                                                                       make_agent, capfd):
    app = either_app()
    make_agent("alice@example.com", name="Alice")
    browser = Browser(app)
    secret = share(app.test_client(), "sso-1")
    rv = browser.get(sign_in(browser.start("/tickets/sso-1"), "alice@example.com"))
    assert rv.status_code == 303 and rv.headers["Location"] == "/tickets/sso-1"
    session_cookie = cookies_set(rv)["__Host-vault_session"]
    for flag in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/"):
        assert flag in session_cookie
    assert "__Host-vault_sso=;" in cookies_set(rv)["__Host-vault_sso"]  # the binding is spent
    me = browser.session()
    assert me.status_code == 200 and me.get_json()["agent"]["email"] == "alice@example.com"
    csrf = me.get_json()["csrf_token"]
    reveal = browser.client.post(f"/api/v1/secrets/{secret['id']}/reveal", base_url=BASE,
                                 headers={"X-CSRF-Token": csrf})
    assert reveal.status_code == 200 and reveal.get_json()["envelope"] == secret["envelope"]
    [event] = [e for e in audit(app) if e.event == "login.succeeded"]
    assert event.actor == "alice@example.com" and event.detail.startswith("oidc")
    logged = capfd.readouterr()
    assert '"method": "oidc"' in logged.err
    code = parse_qs(urlsplit(rv.request.url).query)  # what the callback carried
    secrets = [*code.get("code", []), *code.get("state", []), session_cookie.split(";")[0]]
    if either.conform:  # and the access token vault asked UserInfo with
        secrets.append(either.userinfo_token())
    for value in secrets:
        assert value and value not in logged.out + logged.err


def test_entra_ids_domain_owner_claim_stands_in_for_a_missing_email_verified(sso_app,
                                                                            make_agent):
    app = sso_app()
    make_agent("entra@example.com")
    assert Browser(app).sign_in("entra@example.com").status_code == 303


def test_a_signed_in_session_has_the_password_sessions_idle_and_absolute_timeouts(
        sso_app, make_agent, clock):
    app = sso_app(session_idle=600, session_max=1800)
    make_agent("alice@example.com")
    idle, busy = Browser(app), Browser(app)
    for browser in (idle, busy):
        assert browser.sign_in("alice@example.com").status_code == 303
    for _ in range(3):  # the busy one keeps using its session; the idle one does not
        clock.advance(500)
        assert busy.session().status_code == 200
    assert idle.session().status_code == 401  # idle for 1500 s, over VAULT_SESSION_IDLE
    clock.advance(400)  # 1900 s after the sign-in: over VAULT_SESSION_MAX however busy
    assert busy.session().status_code == 401


def test_next_is_honoured_for_same_site_paths_only(sso_app, make_agent):
    app = sso_app()
    make_agent("alice@example.com")
    for asked, landed in (("/requests/new?ticket=5", "/requests/new?ticket=5"),
                          ("https://evil.example/x", "/dashboard"), ("//evil.example", "/dashboard")):
        browser = Browser(app)
        rv = browser.get(sign_in(browser.start(asked.replace("?", "%3F").replace("&", "%26")),
                                 "alice@example.com"))
        assert rv.status_code == 303 and rv.headers["Location"] == landed, asked


REFUSALS = {
    # login at the provider, vault settings, status, reason
    "unknown e-mail": ("stranger@example.com", {}, 403, "unknown-agent"),
    "email_verified false": ("unverified@example.com", {}, 403, "email-unverified"),
    "no e-mail at all": ("no-email", {}, 403, "email-missing"),
    "verification not stated": ("silent@example.com", {}, 403, "email-unverified"),
    "xms_edov over email_verified false": ("entra-false@example.com", {}, 403,
                                           "email-unverified"),
    "xms_edov not a boolean": ("entra-string@example.com", {}, 403, "email-unverified"),
    "domain not allowed": ("outsider@elsewhere.test",
                           {"oidc_autocreate": True, "oidc_allowed_domains": "example.com"},
                           403, "domain-not-allowed"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_a_refused_sign_in_is_a_clear_page_nobody_logged_in_and_audited(either_app, case,
                                                                        capfd):
    login, settings, status, reason = REFUSALS[case]
    app = either_app(**settings)
    browser = Browser(app)
    rv = browser.sign_in(login)
    assert_refused(app, browser, rv, status, reason, capfd)
    if "@" in login:  # and nobody was created for it
        with pytest.raises(NotFound):
            app.extensions["vault"].accounts.get_agent(login)


def assert_refused(app: Any, browser: Browser, rv: Any, status: int, reason: str,
                   capfd: Any) -> None:
    page = rv.get_data(as_text=True)
    assert rv.status_code == status, page
    assert rv.mimetype == "text/html" and f'data-reason="{reason}"' in page
    assert "__Host-vault_session" not in cookies_set(rv)
    assert browser.session().status_code == 401  # nobody is logged in
    [event] = [e for e in audit(app) if e.event == "login.failed"]
    assert reason in event.detail
    logged = capfd.readouterr()
    query = parse_qs(urlsplit(rv.request.url).query)
    for value in [*query.get("code", []), *query.get("state", [])]:
        assert value not in logged.out + logged.err
        assert value not in page  # not even in the language switcher's links


def test_a_disabled_agent_is_refused(either_app, make_agent, capfd):
    app = either_app()
    make_agent("alice@example.com")
    app.extensions["vault"].accounts.set_disabled("alice@example.com", True)
    browser = Browser(app)
    assert_refused(app, browser, browser.sign_in("alice@example.com"), 403, "agent-disabled",
                   capfd)


def test_a_replayed_forged_missing_or_foreign_state_is_refused(sso_app, make_agent, capfd):
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    assert browser.get(callback).status_code == 303  # the first use signs in
    browser.client.delete_cookie("__Host-vault_session", domain="vault.test")
    capfd.readouterr()
    assert_refused(app, browser, browser.get(callback), 400, "state-unknown", capfd)  # replay
    parts = urlsplit(callback)
    code = parse_qs(parts.query)["code"][0]
    for query, reason in ((f"code={code}&state=forged-{'x' * 40}", "state-unknown"),
                          (f"code={code}", "state-missing")):
        app.extensions["vault"].store.client.delete("vault:audit")
        assert_refused(app, browser, browser.get(f"/login/oidc/callback?{query}"), 400, reason,
                       capfd)
    # Started in one browser, finished in another (a link someone else was sent): refused, and
    # the state is spent, so the one who started cannot be logged in by it either.
    started, other = Browser(app), Browser(app)
    callback = sign_in(started.start(), "alice@example.com")
    app.extensions["vault"].store.client.delete("vault:audit")
    assert_refused(app, other, other.get(callback), 400, "state-other-browser", capfd)
    assert started.get(callback).status_code == 400


@pytest.mark.parametrize("mode,reason", [("wrong-nonce", "id-token-nonce"),
                                         ("other-key", "id-token-signature"),
                                         ("expired", "id-token-expired")])
def test_an_id_token_with_a_wrong_nonce_another_key_or_expired_is_refused(
        sso_app, make_agent, provider, mode, reason, capfd):
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    provider.tamper(mode)  # the provider's next token answer carries that ID token
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    assert_refused(app, browser, rv, 400, reason, capfd)


def test_a_genuine_id_token_past_its_expiry_on_vaults_clock_is_refused(sso_app, make_agent,
                                                                        clock, capfd):
    """The provider's own token (10 minutes, tests/oidc/provider.mjs), checked when vault's
    clock is past its expiry and the 60 s of tolerance."""
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    clock.advance(600 + 61)
    assert_refused(app, browser, browser.get(callback), 400, "id-token-expired", capfd)


def test_the_provider_answering_access_denied_is_refused(sso_app, make_agent, capfd):
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    rv = browser.sign_in("alice@example.com", abort=True)
    assert "error=access_denied" in rv.request.url
    assert_refused(app, browser, rv, 403, "provider-access_denied", capfd)


def test_autocreate_makes_a_non_admin_agent_for_an_allowed_domain_only(either_app, capfd):
    app = either_app(oidc_autocreate=True, oidc_allowed_domains="example.com, example.org")
    accounts = app.extensions["vault"].accounts
    browser = Browser(app)
    rv = browser.sign_in("Newcomer@Example.org")
    assert rv.status_code == 303
    agent = accounts.get_agent("newcomer@example.org")
    assert agent["role"] == "agent" and not agent["disabled"]
    [created] = [e for e in audit(app) if e.event == "agent.created"]
    assert created.actor == "oidc" and created.detail == "newcomer@example.org"
    assert '"via": "oidc"' in capfd.readouterr().err
    assert browser.session().get_json()["agent"]["role"] == "agent"
    # It has no password: the password form cannot open it.
    login = app.test_client().post("/api/v1/session", json={"email": "newcomer@example.org",
                                                            "password": "!"})
    assert login.status_code == 401
    # Without autocreate, nobody is created (test_a_refused_sign_in...: unknown e-mail).


def test_oidc_only_removes_the_password_form_and_refuses_passwords_but_tokens_work(
        sso_app, make_agent):
    app = sso_app(oidc_only=True)
    alice = make_agent("alice@example.com")
    boss = make_agent("boss@example.com", admin=True)
    page = Browser(app).get("/login").get_data(as_text=True)
    assert 'id="sso-button"' in page and 'id="login-form"' not in page
    client = app.test_client()
    for who in (alice, boss):
        rv = client.post("/api/v1/session", json={"email": who.email, "password": who.password})
        assert rv.status_code == 403 and rv.get_json()["reason"] == "sso-only", who.email
    secret = share(client, "sso-only-1")
    assert client.post(f"/api/v1/secrets/{secret['id']}/reveal", headers=alice.headers
                       ).status_code == 200  # API tokens keep working
    # Break-glass: admins keep their password (and its second factor), agents do not.
    glass = sso_app(oidc_only=True, oidc_admin_password=True)
    client = glass.test_client()
    assert client.post("/api/v1/session", json={"email": boss.email, "password": boss.password}
                       ).status_code == 200
    rv = client.post("/api/v1/session", json={"email": alice.email, "password": alice.password})
    assert rv.status_code == 401  # as for a wrong password: it does not tell that it was right
    page = Browser(glass).get("/login").get_data(as_text=True)
    assert 'id="break-glass"' in page and 'id="login-form"' in page


def test_an_unreachable_issuer_never_blocks_start_up_and_password_login_still_works(
        make_app, make_agent):
    app = make_app(oidc_issuer=f"http://127.0.0.1:{free_port()}", oidc_client_id="x",
                   oidc_client_secret="y")
    alice = make_agent("alice@example.com")
    client = app.test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.get_json()["status"] == "ok"
    assert ready.get_json()["identity_provider"]["status"] == "unreachable"
    rv = Browser(app).get("/login/oidc")
    assert rv.status_code == 503 and "did not answer" in rv.get_data(as_text=True)
    assert int(rv.headers["Retry-After"]) > 0
    assert client.post("/api/v1/session", json={"email": alice.email, "password": alice.password}
                       ).status_code == 200


def test_discovery_and_keys_are_cached_and_an_unknown_kid_fetches_the_keys_again(
        sso_app, make_agent, provider, capfd, clock):
    app = sso_app()
    make_agent("alice@example.com")
    before = provider.fetched()
    for _ in range(2):
        assert Browser(app).sign_in("alice@example.com").status_code == 303
    after = provider.fetched()  # once each for both sign-ins (the browser part fetches none)
    assert after == {"jwks": before["jwks"] + 1, "discovery": before["discovery"] + 1,
                     "userinfo": before["userinfo"]}  # the ID token said it all
    assert app.extensions["vault"].sso.status() == "ok"
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    clock.advance(31)  # unknown kids fetch the keys again at most every 30 s
    provider.tamper("unknown-kid")  # as after a key rotation: a kid vault does not hold
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    assert provider.fetched()["jwks"] == before["jwks"] + 2  # fetched again, once
    assert_refused(app, browser, rv, 400, "id-token-signature", capfd)


def test_half_set_sso_refuses_to_start_in_production_naming_what_is_missing(make_app):
    from vault.errors import ConfigError
    with pytest.raises(ConfigError, match=r"needs VAULT_OIDC_CLIENT_ID, VAULT_OIDC_CLIENT_SECRET"):
        make_app(oidc_issuer="https://idp.example")
    with pytest.raises(ConfigError, match=r"VAULT_OIDC_ONLY set, but .* needs VAULT_OIDC_ISSUER"):
        make_app(oidc_only=True)
    with pytest.raises(ConfigError, match="VAULT_OIDC_AUTOCREATE needs VAULT_OIDC_ALLOWED_DOMAINS"):
        make_app(oidc_issuer="https://idp.example", oidc_client_id="a", oidc_client_secret="b",
                 oidc_autocreate=True)
    with pytest.raises(ConfigError, match="https"):
        make_app(oidc_issuer="http://idp.example", oidc_client_id="a", oidc_client_secret="b")


class GarbageIssuer:
    """Not a provider: an issuer URL whose answers are broken the way proxies and misconfigured
    providers break them, to show vault answers its 503 page and never a 500. (Every test of
    the protocol itself runs against the real provider above.)"""

    def __init__(self, jwks: Any, token: Any) -> None:
        import json
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        port = free_port()
        self.issuer = f"http://127.0.0.1:{port}"
        doc = {"issuer": self.issuer, "authorization_endpoint": self.issuer + "/auth",
               "token_endpoint": self.issuer + "/token", "jwks_uri": self.issuer + "/jwks"}
        answers = {"/.well-known/openid-configuration": doc, "/jwks": jwks, "/token": token}

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                if "Content-Length" in self.headers:
                    self.rfile.read(int(self.headers["Content-Length"]))
                body = json.dumps(answers.get(self.path.split("?")[0], {})).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


A_JWT = ("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJ4In0."
         "c2lnbmF0dXJlLW9mLW5vYm9keQ")


@pytest.mark.parametrize("jwks,token", [
    ({}, {"access_token": "a", "token_type": "Bearer", "id_token": A_JWT}),  # a proxy's {}
    ({"keys": []}, {"access_token": "a", "token_type": "Bearer", "id_token": A_JWT}),
    ({"keys": []}, {"access_token": "a", "token_type": "Bearer", "expires_in": [1]}),
    ({"keys": []}, ["not", "an", "object"]),
])
def test_a_provider_answering_garbage_gets_the_503_page_not_a_500(make_app, jwks, token):
    garbage = GarbageIssuer(jwks, token)
    try:
        app = make_app(oidc_issuer=garbage.issuer, oidc_client_id="c", oidc_client_secret="s")
        browser = Browser(app)
        target = browser.start()
        state = parse_qs(urlsplit(target).query)["state"][0]
        rv = browser.get(f"/login/oidc/callback?code=anything&state={state}")
        assert rv.status_code == 503, rv.get_data(as_text=True)[:300]
        assert "did not answer" in rv.get_data(as_text=True)
        assert browser.session().status_code == 401
    finally:
        garbage.close()


def test_an_issuer_that_never_answers_holds_readyz_a_second_at_most(make_app, make_agent):
    """A listening socket that never replies (a provider hung, or a firewall swallowing the
    answer): /readyz gives up after its one-second timeout and stays 200; the button then gets
    the 503 page at once (the failure is remembered for ten seconds), and passwords work."""
    import socket
    import time

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # connections complete in the backlog; nothing is ever read or answered
    try:
        app = make_app(oidc_issuer=f"http://127.0.0.1:{silent.getsockname()[1]}",
                       oidc_client_id="x", oidc_client_secret="y")
        alice = make_agent("alice@example.com")
        client = app.test_client()
        started = time.monotonic()
        ready = client.get("/readyz")
        waited = time.monotonic() - started
        assert ready.status_code == 200
        assert ready.get_json()["identity_provider"]["status"] == "unreachable"
        assert waited < 5, waited  # the probe's own timeout (1 s), far under a 5 s fetch
        rv = Browser(app).get("/login/oidc")
        assert rv.status_code == 503 and "did not answer" in rv.get_data(as_text=True)
        assert client.post("/api/v1/session", json={"email": alice.email,
                                                    "password": alice.password}
                           ).status_code == 200
    finally:
        silent.close()


# -- the token exchange: the provider's refusal, or its outage (issue 21) ----------------------

def callback_query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def with_state(callback: str, state: str) -> str:
    """The provider's callback (its code and iss), with another sign-in's state."""
    return CALLBACK + "?" + urlencode({**callback_query(callback), "state": state})


def waiting_sign_in(app: Any) -> dict[str, Any]:
    """The one sign-in waiting in Redis (what vault keeps between the button and the callback:
    its PKCE verifier among it)."""
    store = app.extensions["vault"].store
    [key] = list(store.client.scan_iter(match="vault:{acct}:sso:*"))
    return dict(json.loads(store.client.get(key)))


def assert_outage(app: Any, browser: Browser, rv: Any, capfd: Any) -> str:
    """The friendly 503 page, nobody logged in, no login.failed (nothing was refused), and the
    code and state in no log line; the log's warning, for the caller to look at."""
    page = rv.get_data(as_text=True)
    assert rv.status_code == 503, page[:400]
    assert rv.mimetype == "text/html" and 'data-reason="unavailable"' in page
    assert "did not answer" in page and int(rv.headers["Retry-After"]) > 0
    assert "__Host-vault_session" not in cookies_set(rv)
    assert browser.session().status_code == 401
    assert [e for e in audit(app) if e.event == "login.failed"] == []
    logged = capfd.readouterr()
    for value in callback_query(rv.request.url).values():
        assert value not in logged.out + logged.err
    [warning] = [line for line in logged.err.splitlines()
                 if "identity provider unavailable" in line]
    return warning


def test_a_code_used_twice_is_refused_as_the_providers_refusal_not_an_outage(
        sso_app, make_agent, provider, capfd):
    """The code is exchanged first by someone holding it and its verifier (as a captured
    callback would be): vault's own exchange, with everything else right, is the provider's
    invalid_grant."""
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    first = requests.post(provider.issuer + "/token", auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "authorization_code",
                                "code": callback_query(callback)["code"],
                                "redirect_uri": CALLBACK,
                                "code_verifier": waiting_sign_in(app)["verifier"]},
                          timeout=10)
    assert first.status_code == 200 and "id_token" in first.json()
    capfd.readouterr()
    assert_refused(app, browser, browser.get(callback), 400, "code-refused", capfd)


def test_a_code_vault_already_exchanged_is_refused_in_a_new_sign_in(sso_app, make_agent,
                                                                   capfd):
    """A callback replayed with the state of a sign-in of its own (the replay's own browser
    and state are valid; its code was spent when it signed someone in)."""
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    assert browser.get(callback).status_code == 303
    browser.client.delete_cookie("__Host-vault_session", domain="vault.test")
    state = callback_query(browser.start())["state"]
    capfd.readouterr()
    rv = browser.get(with_state(callback, state))
    assert_refused(app, browser, rv, 400, "code-refused", capfd)


def test_a_code_injected_into_another_browsers_sign_in_is_refused(sso_app, make_agent, capfd):
    """Someone's unspent code, pasted with the state of a sign-in the attacker started: PKCE
    binds the code to its own verifier, so the provider refuses it."""
    app = sso_app()
    make_agent("alice@example.com")
    victim, attacker = Browser(app), Browser(app)
    callback = sign_in(victim.start(), "alice@example.com")
    state = callback_query(attacker.start())["state"]
    capfd.readouterr()
    rv = attacker.get(with_state(callback, state))
    assert_refused(app, attacker, rv, 400, "code-refused", capfd)


@pytest.mark.parametrize("forged", ["forged-" + "x" * 40, "QQforged", "%00%0a<script>", "é" * 300])
def test_a_forged_code_with_a_valid_state_is_refused(sso_app, make_agent, provider, forged,
                                                     capfd):
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    query = callback_query(browser.start())
    rv = browser.get("/login/oidc/callback?" + urlencode(
        {"code": forged, "state": query["state"], "iss": provider.issuer}))
    assert_refused(app, browser, rv, 400, "code-refused", capfd)


def test_a_code_issued_to_another_client_is_refused(sso_app, make_agent, capfd):
    """The provider's sign-in for another application of the same provider, come back to vault
    with vault's state: the provider does not let vault exchange another client's code."""
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    parts = urlsplit(browser.start())
    query = {**callback_query(parts.geturl()), "client_id": OTHER_CLIENT_ID}
    callback = sign_in(parts._replace(query=urlencode(query)).geturl(), "alice@example.com")
    assert_refused(app, browser, browser.get(callback), 400, "code-refused", capfd)


def test_a_wrong_client_secret_is_refused_as_the_client_not_the_sign_in(sso_app, make_agent,
                                                                       capfd):
    """The provider answers invalid_client (HTTP 401): vault's own registration is refused,
    which the audit names, so whoever runs vault sees that every sign-in fails for it."""
    app = sso_app(oidc_client_secret="not-the-secret-the-provider-holds-0123456789")
    make_agent("alice@example.com")
    browser = Browser(app)
    assert_refused(app, browser, browser.sign_in("alice@example.com"), 400, "client-refused",
                   capfd)


# The token endpoint's answer, made by the real provider after it handled the exchange (so the
# code is spent): its OAuth errors are refusals, by the reason vault audits.
REFUSING_ANSWERS = {
    "invalid_grant": (400, {"error": "invalid_grant", "error_description": "grant request is "
                            "invalid"}, "code-refused"),
    "invalid_grant in a 200": (200, {"error": "invalid_grant"}, "code-refused"),
    "invalid_client": (401, {"error": "invalid_client"}, "client-refused"),
    "unauthorized_client": (400, {"error": "unauthorized_client"}, "client-refused"),
    "unsupported_grant_type": (400, {"error": "unsupported_grant_type"}, "client-refused"),
    "invalid_request": (400, {"error": "invalid_request"}, "token-refused"),
    "invalid_scope": (400, {"error": "invalid_scope"}, "token-refused"),
    "an error no RFC names": (403, {"error": "interaction_required"}, "token-refused"),
    "an error that is no string": (400, {"error": ["invalid_grant"]}, "token-refused"),
    "no id_token": (200, {"access_token": "a", "token_type": "Bearer"}, "id-token-missing"),
    "an id_token that is no string": (200, {"access_token": "a", "token_type": "Bearer",
                                            "id_token": 5}, "id-token-missing"),
    "an id_token that is no JWT": (200, {"access_token": "a", "token_type": "Bearer",
                                         "id_token": "not-a-jwt"}, "id-token-malformed"),
    "an id_token of three bad parts": (200, {"access_token": "a", "token_type": "Bearer",
                                             "id_token": "a.b.c"}, "id-token-malformed"),
}


@pytest.mark.parametrize("case", sorted(REFUSING_ANSWERS))
def test_the_token_endpoints_oauth_errors_are_refusals_with_a_precise_reason(
        sso_app, make_agent, provider, case, capfd):
    status, body, reason = REFUSING_ANSWERS[case]
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    provider.tamper("answer", status=status, type="application/json", body=json.dumps(body))
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    assert_refused(app, browser, rv, 400, reason, capfd)


# ... and what is no refusal is its outage: a 5xx, a 429, a server_error or
# temporarily_unavailable, anything that is no JSON object (a proxy's page), a 4xx without an
# OAuth error, a token Authlib cannot hold.
OUTAGE_ANSWERS = {
    "500 server_error": (500, "application/json", '{"error": "server_error"}'),
    "502 from a proxy": (502, "text/html", "<html><h1>502 Bad Gateway</h1></html>"),
    "503 empty": (503, "text/plain", ""),
    "504 with invalid_grant": (504, "application/json", '{"error": "invalid_grant"}'),
    "429 rate limited": (429, "application/json", '{"error": "invalid_grant"}'),
    "temporarily_unavailable": (400, "application/json",
                                '{"error": "temporarily_unavailable"}'),
    "server_error in a 400": (400, "application/json", '{"error": "server_error"}'),
    "200 HTML": (200, "text/html", "<html><body>Welcome to nginx!</body></html>"),
    "200 JSON that is no object": (200, "application/json", '["access_token", "a"]'),
    "200 empty": (200, "application/json", ""),
    "200 truncated JSON": (200, "application/json", '{"access_token": "a", "id_tok'),
    "200 bytes that are no text": (200, "application/json", "\udcff\udcfe{}"),
    "400 HTML from a firewall": (400, "text/html", "<html>Request blocked</html>"),
    "404 at the token endpoint": (404, "text/html", "Not Found"),
    "401 JSON without an error": (401, "application/json", '{"message": "Unauthorized"}'),
    "a token Authlib cannot hold": (200, "application/json",
                                    '{"access_token": "a", "token_type": "Bearer", '
                                    '"expires_in": [1]}'),
}


@pytest.mark.parametrize("case", sorted(OUTAGE_ANSWERS))
def test_the_token_endpoint_failing_or_answering_garbage_is_an_outage_never_a_500(
        sso_app, make_agent, provider, case, capfd):
    status, kind, body = OUTAGE_ANSWERS[case]
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    provider.tamper("answer", status=status, type=kind, body=body)
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    warning = assert_outage(app, browser, rv, capfd)
    assert "token endpoint" in warning


def test_a_token_endpoint_slower_than_vaults_timeout_is_an_outage(sso_app, make_agent,
                                                                 provider, capfd):
    """The provider answers, but only after vault's five seconds for it (vault.sso)."""
    from vault.sso import HTTP_TIMEOUT

    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    provider.tamper("slow", seconds=HTTP_TIMEOUT + 2)
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    warning = assert_outage(app, browser, rv, capfd)
    assert "in time" in warning


def test_a_provider_stopped_after_the_redirect_is_an_outage(make_app, make_agent,
                                                           tmp_path, capfd):
    """The provider signs the person in, then goes away before vault exchanges the code: the
    503 page (the sign-in can be started again once it is back), not a refusal."""
    own = OidcProvider(tmp_path / "oidc", [CALLBACK])
    try:
        app = make_app(**own.settings())
        make_agent("alice@example.com")
        browser = Browser(app)
        callback = sign_in(browser.start(), "alice@example.com")
    finally:
        own.stop()
    warning = assert_outage(app, browser, browser.get(callback), capfd)
    assert "ConnectionError" in warning


# The ID token's claims, re-signed with the provider's own key: each fails one of the checks.
HOSTILE_CLAIMS = {
    "another audience": ({"aud": OTHER_CLIENT_ID}, "id-token-claims"),
    "another issuer": ({"iss": "https://idp.elsewhere.example"}, "id-token-claims"),
    "two audiences and no azp": ({"aud": [CLIENT_ID, OTHER_CLIENT_ID], "azp": None},
                                 "id-token-claims"),
    "no iat": ({"iat": None}, "id-token-claims"),
    "an exp that is no number": ({"exp": "tomorrow"}, "id-token-claims"),
    "an at_hash of another token": ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, "id-token-claims"),
    "an at_hash that is no string": ({"at_hash": ["x"]}, "id-token-claims"),
    "no nonce": ({"nonce": None}, "id-token-nonce"),
    "a nonce that is no string": ({"nonce": 5}, "id-token-nonce"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CLAIMS))
def test_an_id_token_whose_claims_fail_a_check_is_refused_never_an_outage(
        sso_app, make_agent, provider, case, capfd):
    claims, reason = HOSTILE_CLAIMS[case]
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    provider.tamper("claims", claims=claims)
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    assert_refused(app, browser, rv, 400, reason, capfd)


def _unsigned(header: dict[str, Any], claims: dict[str, Any], key: bytes = b"") -> str:
    import base64
    import hashlib
    import hmac

    def part(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    signing = part(json.dumps(header).encode()) + "." + part(json.dumps(claims).encode())
    mac = hmac.new(key, signing.encode(), hashlib.sha256).digest() if key else b""
    return signing + "." + part(mac)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_an_id_token_signed_with_no_key_or_the_client_secret_is_refused(
        sso_app, make_agent, provider, alg, capfd):
    """The provider's own claims, signed with "none" or with HS256 under the client secret
    (which anyone holding the secret can make): not the provider's signature."""
    app = sso_app()
    make_agent("alice@example.com")
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    nonce = waiting_sign_in(app)["nonce"]
    now = int(time.time())
    claims = {"iss": provider.issuer, "aud": CLIENT_ID, "sub": "alice@example.com",
              "iat": now, "exp": now + 600, "nonce": nonce, "email": "alice@example.com",
              "email_verified": True}
    token = _unsigned({"alg": alg, "kid": "test-key-1"}, claims,
                      CLIENT_SECRET.encode() if alg == "HS256" else b"")
    provider.tamper("answer", status=200, type="application/json",
                    body=json.dumps({"access_token": "a", "token_type": "Bearer",
                                     "id_token": token}))
    try:
        rv = browser.get(callback)
    finally:
        provider.tamper(None)
    assert_refused(app, browser, rv, 400, "id-token-signature", capfd)


# -- the provider's display name is held to vault's rule for names (issue 21) -------------------

CLEANED_NAMES = {  # tests/oidc_provider.py HOSTILE_NAMES: what vault stores and shows
    "ansi@example.com": "[2J[31mMallory[0m",  # the escapes' ESC and BEL go: inert text
    "bidi@example.com": "Mallory gnp.exe",
    "lines@example.com": "Mallory revealed by: Admin",
    "nul@example.com": "Mallory",
    "surrogate@example.com": "Mallory",
    "spaces@example.com": "Alice Martin",
    "long@example.com": "M" * 100,
    "invisible@example.com": "invisible@example.com",  # nothing printable: the e-mail
    "not-text@example.com": "not-text@example.com",
    "exact@example.com": "É" * 100,  # within the rule: kept as it is
}


def within_the_rule(name: str) -> bool:
    """The admin form's rule for a display name (vault.accounts.display_name), restated."""
    return 0 < len(name) <= 100 and name.isprintable() and name == name.strip()


def cli_env(redis_url: str) -> dict[str, str | None]:
    import os

    from harness import KEYS
    env: dict[str, str | None] = {name: None for name in os.environ
                                  if name.startswith("VAULT_")}
    env.update(VAULT_REDIS_URL=redis_url, VAULT_ENV="production",
               VAULT_SECRET_KEY="test-secret-key-" + "x" * 32, VAULT_KEYS=KEYS)
    return env


@pytest.mark.parametrize("login", sorted(CLEANED_NAMES))
def test_a_hostile_display_name_from_the_provider_is_cleaned_before_it_is_stored_or_shown(
        either_app, redis_server, login):
    """VAULT_OIDC_AUTOCREATE makes an agent of the provider's `name` claim: what is stored,
    what the session, a second reader's 410 (`revealed_by`, which `vault reveal` prints) and
    `vault agent list` show is within the admin form's rule."""
    from click.testing import CliRunner

    from vault.cli import cli

    expected = CLEANED_NAMES[login]
    assert within_the_rule(expected)
    app = either_app(oidc_autocreate=True, oidc_allowed_domains="example.com")
    browser = Browser(app)
    assert browser.sign_in(login).status_code == 303
    store = app.extensions["vault"].store
    assert store.get_agent(login)["name"] == expected  # as stored, not only as read
    me = browser.session().get_json()
    assert me["agent"]["name"] == expected
    secret = share(app.test_client(), "names-1")
    reveal = f"/api/v1/secrets/{secret['id']}/reveal"
    first = browser.client.post(reveal, base_url=BASE, headers={"X-CSRF-Token": me["csrf_token"]})
    assert first.status_code == 200
    # The agent's own token (as `vault reveal` uses it) is another session: it is told who
    # revealed it, and when.
    token, _ = app.extensions["vault"].accounts.create_token(login)
    again = app.test_client().post(reveal, headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 410 and again.get_json()["revealed_by"] == expected
    listed = CliRunner().invoke(cli, ["agent", "list"], env=cli_env(redis_server.url))
    assert listed.exit_code == 0, listed.output
    [line] = [line for line in listed.stdout.splitlines() if line.startswith(login + "\t")]
    assert line.split("\t")[1] == expected and line.replace("\t", " ").isprintable()


def test_a_name_stored_before_the_rule_is_shown_within_it(sso_app, make_agent, redis_server):
    """An agent created by a sign-in before vault held provider names to the rule keeps its
    name in Redis; the session, the agents list and `vault agent list` show it cleaned."""
    from click.testing import CliRunner

    from vault.cli import cli

    app = sso_app()
    make_agent("alice@example.com")
    ext = app.extensions["vault"]
    ext.store.update_agent("alice@example.com", {"name": "\u202eAlice\x1b[0m" + "A" * 300},
                           revoke=False)  # as an older vault stored it
    expected = ("Alice[0m" + "A" * 300)[:100]
    browser = Browser(app)
    assert browser.sign_in("alice@example.com").status_code == 303
    assert browser.session().get_json()["agent"]["name"] == expected
    assert ext.accounts.get_agent("alice@example.com")["name"] == expected
    assert [a["name"] for a in ext.accounts.list_agents()
            if a["email"] == "alice@example.com"] == [expected]
    listed = CliRunner().invoke(cli, ["agent", "list"], env=cli_env(redis_server.url))
    assert f"alice@example.com\t{expected}\t" in listed.stdout


@pytest.mark.parametrize("name,kept", [
    ("\x1b[31mRed", False), ("\u202eevil", False), ("two\nlines", False), ("tab\there", False),
    ("zero\u200bwidth", False), ("A" * 101, False), ("A" * 100, True), ("Zoë Ångström", True),
])
def test_the_command_line_and_the_admin_rule_refuse_what_a_sign_in_cleans(sso_app,
                                                                          redis_server, name,
                                                                          kept):
    """One rule: `vault agent add/edit --name` (and so the admin form, which adds through the
    same Accounts) refuse a name that a sign-in would have cleaned, and keep one within it."""
    from click.testing import CliRunner

    from vault.cli import cli

    app = sso_app()
    accounts = app.extensions["vault"].accounts
    env = cli_env(redis_server.url)
    added = CliRunner().invoke(cli, ["agent", "add", "named@example.com", "--name", name,
                                     "--password-stdin"], input="a long enough password\n",
                               env=env)
    if kept:
        assert added.exit_code == 0, added.output
        assert accounts.get_agent("named@example.com")["name"] == name
        return
    assert added.exit_code != 0 and "display_name" in added.output, added.output
    assert "Traceback" not in added.output
    with pytest.raises(NotFound):
        accounts.get_agent("named@example.com")
    accounts.add_agent("named@example.com", "a long enough password", name="Named")
    edited = CliRunner().invoke(cli, ["agent", "edit", "named@example.com", "--name", name],
                                env=env)
    assert edited.exit_code != 0 and "display_name" in edited.output, edited.output
    assert accounts.get_agent("named@example.com")["name"] == "Named"


@pytest.mark.parametrize("login,status,reason", [("hostile-unverified", 403, "email-unverified"),
                                                 ("hostile-verified", 403, "email-invalid")])
def test_an_e_mail_that_is_none_is_refused_and_not_written_into_the_audit(either_app, login,
                                                                         status, reason, capfd):
    """The provider's `email` claim, with a bidi override, an escape and 500 more characters:
    refused, and the audit entry names nobody rather than that text."""
    app = either_app(oidc_autocreate=True, oidc_allowed_domains="example.com")
    browser = Browser(app)
    rv = browser.sign_in(login)
    err = capfd.readouterr().err
    [event] = [e for e in audit(app) if e.event == "login.failed"]
    assert rv.status_code == status and f'data-reason="{reason}"' in rv.get_data(as_text=True)
    assert event.actor == "" and reason in event.detail
    assert "mallory" not in err and app.extensions["vault"].accounts.list_agents() == []


# -- UserInfo, where the ID token is silent (issue 24) ----------------------------------------

def decoded_payload(token: str) -> dict[str, Any]:
    """A JWT's claims, unverified: what the provider put in it, for the test to look at."""
    import base64

    part = token.split(".")[1]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


@pytest.mark.parametrize("conform", [False, True], ids=["id-token", "userinfo"])
def test_the_provider_really_runs_in_both_modes(make_app, request, conform):
    """What the two modes hand any client for the code flow: the same claims, in the ID token
    as well, or at UserInfo only (so the tests of either mode test what they say)."""
    idp = request.getfixturevalue("conformant" if conform else "provider")
    app = app_factory(make_app, idp)()
    browser = Browser(app)
    callback = sign_in(browser.start(), "alice@example.com")
    token = requests.post(idp.issuer + "/token", auth=(CLIENT_ID, CLIENT_SECRET),
                          data={"grant_type": "authorization_code",
                                "code": callback_query(callback)["code"],
                                "redirect_uri": CALLBACK,
                                "code_verifier": waiting_sign_in(app)["verifier"]},
                          timeout=10).json()
    claims = decoded_payload(token["id_token"])
    assert claims["sub"] == "alice@example.com"
    assert ("email" in claims, "email_verified" in claims) == (not conform, not conform)
    userinfo = requests.get(idp.issuer + "/me", timeout=10,
                            headers={"Authorization": f"Bearer {token['access_token']}"}).json()
    assert userinfo == {"sub": "alice@example.com", "email": "alice@example.com",
                        "email_verified": True, "name": "Alice Martin"}


def test_userinfo_is_asked_once_where_the_id_token_is_silent_and_never_otherwise(
        either_app, either, make_agent):
    """The round trip budget: a provider that puts the claims in the ID token is never asked;
    one that keeps them at UserInfo, once per sign-in."""
    app = either_app()
    make_agent("alice@example.com")
    before = either.fetched()["userinfo"]
    for _ in range(2):
        assert Browser(app).sign_in("alice@example.com").status_code == 303
    assert either.fetched()["userinfo"] - before == (2 if either.conform else 0)


def test_a_display_name_at_userinfo_names_an_agent_created_by_a_sign_in(make_app, conformant):
    app = app_factory(make_app, conformant)(oidc_autocreate=True,
                                            oidc_allowed_domains="example.com")
    browser = Browser(app)
    assert browser.sign_in("alice@example.com").status_code == 303
    assert browser.session().get_json()["agent"]["name"] == "Alice Martin"


def test_entras_xms_edov_counts_in_the_id_token_only(make_app, conformant, capfd):
    """Entra ID puts xms_edov into the ID token (an optional claim); met at UserInfo, where no
    provider documents it, it is no word on the address."""
    app = app_factory(make_app, conformant)()
    browser = Browser(app)
    assert_refused(app, browser, browser.sign_in("entra@example.com"), 403, "email-unverified",
                   capfd)


def sign_in_tampered(app: Any, idp: OidcProvider, login: str = "alice@example.com", *,
                     id_token: dict[str, Any] | None = None, **userinfo: Any) -> tuple[Browser, Any]:
    """A whole sign-in whose ID token carries `id_token` over the provider's own claims (None
    removes one) and whose UserInfo answer is changed as `userinfo` says (a tamper mode and its
    details, tests/oidc/provider.mjs)."""
    browser = Browser(app)
    callback = sign_in(browser.start(), login)
    try:
        if id_token is not None:
            idp.tamper("claims", claims=id_token)
        if userinfo:
            idp.tamper(**userinfo)
        rv = browser.get(callback)
    finally:
        idp.tamper(None)
    return browser, rv


# The ID token decides; UserInfo fills in only what it left out, for the address it named. Each
# case: the ID token's claims over the provider's, UserInfo's over its own, then whether UserInfo
# is asked and how the sign-in ends (303, or the refusal's reason).
MERGES = {
    "ID token complete: UserInfo never asked, whatever it would say": (
        {}, {"email": "mallory@example.com", "email_verified": False}, False, 303),
    "ID token unverified: refused without asking UserInfo": (
        {"email_verified": False}, {"email_verified": True}, False, "email-unverified"),
    "no email_verified: UserInfo confirms the same address": (
        {"email_verified": None}, {}, True, 303),
    "no email_verified: UserInfo confirms it in other letter case": (
        {"email": "Alice@Example.COM", "email_verified": None}, {}, True, 303),
    "no email_verified: UserInfo verifies another address": (
        {"email_verified": None}, {"email": "mallory@example.com"}, True, "email-unverified"),
    "no email_verified: UserInfo says unverified": (
        {"email_verified": None}, {"email_verified": False}, True, "email-unverified"),
    "no email_verified: UserInfo says nothing of it": (
        {"email_verified": None}, {"email_verified": None}, True, "email-unverified"),
    "no email_verified: UserInfo's is a string": (
        {"email_verified": None}, {"email_verified": "true"}, True, "email-unverified"),
    "no email, a verified flag: UserInfo's address unverified": (
        {"email": None}, {"email_verified": False}, True, "email-unverified"),
    "no email, a false flag: UserInfo's verified address": (
        {"email": None, "email_verified": False}, {}, True, "email-unverified"),
    "no email at all, anywhere": (
        {"email": None, "email_verified": None}, {"email": None}, True, "email-missing"),
}


@pytest.mark.parametrize("case", sorted(MERGES))
def test_the_id_tokens_claims_win_and_userinfo_only_fills_what_it_left_out(
        sso_app, make_agent, provider, case, capfd):
    id_token, userinfo, asked, outcome = MERGES[case]
    app = sso_app()
    make_agent("alice@example.com")
    make_agent("mallory@example.com")
    before = provider.fetched()["userinfo"]
    browser, rv = sign_in_tampered(app, provider, id_token=id_token, mode="userinfo-claims",
                                   claims=userinfo)
    assert provider.fetched()["userinfo"] - before == int(asked)
    if outcome == 303:
        assert rv.status_code == 303, rv.get_data(as_text=True)[:300]
        assert browser.session().get_json()["agent"]["email"] == "alice@example.com"
    else:
        assert_refused(app, browser, rv, 403, outcome, capfd)


@pytest.mark.parametrize("sub", ["someone-else", "ALICE@example.com", "alice@example.com ", None,
                                 5, ["alice@example.com"]],
                         ids=["another", "other case", "a space more", "none", "a number",
                              "a list"])
def test_a_userinfo_answer_about_another_subject_is_refused_and_audited(make_app, make_agent,
                                                                       conformant, sub, capfd):
    """The ID token's `sub` is who signed in; UserInfo's must be exactly it (a verified
    e-mail of somebody else must not sign alice in, nor the other way round)."""
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-claims", claims={"sub": sub})
    assert_refused(app, browser, rv, 403, "userinfo-sub", capfd)
    [event] = [e for e in audit(app) if e.event == "login.failed"]
    assert event.actor == "" and event.detail.startswith("oidc userinfo-sub")


def test_no_claim_of_a_refused_userinfo_answer_reaches_a_log(make_app, make_agent, conformant,
                                                            capfd):
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    marker = "sub-marker-4f1c9e"
    _, rv = sign_in_tampered(app, conformant, mode="userinfo-claims",
                             claims={"sub": marker, "name": marker + " name"})
    assert rv.status_code == 403
    logged = capfd.readouterr()
    token = conformant.userinfo_token()
    for value in (marker, token):
        assert value and value not in logged.out + logged.err


# UserInfo not answering, or answering what is no answer: the 503 page, not a sign-in, and no
# refusal either (the provider's trouble, not the person's).
USERINFO_OUTAGES = {
    "500 JSON": (500, "application/json", '{"error": "server_error"}', {}),
    "502 from a proxy": (502, "text/html", "<html><h1>502 Bad Gateway</h1></html>", {}),
    "503 empty": (503, "text/plain", "", {}),
    "429 rate limited": (429, "application/json", "{}", {"Retry-After": "30"}),
    "a redirect elsewhere": (302, "text/html", "", {"Location": "https://idp.elsewhere.example/me"}),
    "404 HTML": (404, "text/html", "Not Found", {}),
    "401 without a Bearer challenge": (401, "text/html", "<html>Login</html>", {}),
    "200 HTML": (200, "text/html", "<html><body>Welcome to nginx!</body></html>", {}),
    "200 JSON that is no object": (200, "application/json", '["sub", "alice@example.com"]', {}),
    "200 empty": (200, "application/json", "", {}),
    "200 truncated JSON": (200, "application/json", '{"sub": "alice@exa', {}),
}


@pytest.mark.parametrize("case", sorted(USERINFO_OUTAGES))
def test_userinfo_failing_or_answering_garbage_is_an_outage_never_a_sign_in(
        make_app, make_agent, conformant, case, capfd):
    status, kind, body, headers = USERINFO_OUTAGES[case]
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-answer", status=status,
                                   type=kind, body=body, headers=headers)
    warning = assert_outage(app, browser, rv, capfd)
    assert "UserInfo" in warning and f"HTTP {status}" in warning


def test_a_userinfo_endpoint_slower_than_vaults_timeout_is_an_outage(make_app, make_agent,
                                                                    conformant, capfd):
    from vault.sso import HTTP_TIMEOUT

    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-slow",
                                   seconds=HTTP_TIMEOUT + 2)
    assert "UserInfo endpoint did not answer in time" in assert_outage(app, browser, rv, capfd)


def test_a_userinfo_endpoint_that_drops_the_connection_is_an_outage(make_app, make_agent,
                                                                   conformant, capfd):
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-drop")
    assert "UserInfo endpoint did not answer (ConnectionError)" in assert_outage(
        app, browser, rv, capfd)


@pytest.mark.parametrize("status,challenge", [
    (401, 'Bearer realm="x", error="invalid_token", error_description="expired"'),
    (403, 'Bearer error="insufficient_scope", scope="openid"'),
    (400, 'Bearer error="invalid_request"'),
])
def test_userinfo_refusing_the_access_token_is_a_refusal(make_app, make_agent, conformant,
                                                         status, challenge, capfd):
    """RFC 6750: the provider's own word about vault's access token, in its Bearer challenge,
    is a refusal with its reason, as the token endpoint's OAuth errors are."""
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-answer", status=status,
                                   type="application/json", body="{}",
                                   headers={"WWW-Authenticate": challenge})
    assert_refused(app, browser, rv, 400, "userinfo-refused", capfd)


def test_without_a_userinfo_endpoint_a_silent_id_token_is_refused_as_before(make_app,
                                                                            make_agent,
                                                                            conformant, capfd):
    app = app_factory(make_app, conformant)()
    make_agent("alice@example.com")
    conformant.tamper("discovery", claims={"userinfo_endpoint": None})
    try:
        browser = Browser(app)
        callback = sign_in(browser.start(), "alice@example.com")
    finally:
        conformant.tamper(None)
    before = conformant.fetched()["userinfo"]
    assert_refused(app, browser, browser.get(callback), 403, "email-missing", capfd)
    assert conformant.fetched()["userinfo"] == before


def test_the_access_token_is_never_sent_to_a_userinfo_endpoint_without_https(
        make_app, make_agent, conformant, capfd):
    """A discovery document naming an http UserInfo endpoint on another host: the bearer
    token would cross the network in clear text. vault does not send it; the 503 page."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    try:
        app = app_factory(make_app, conformant)()
        make_agent("alice@example.com")
        elsewhere = f"http://localhost:{listener.getsockname()[1]}/me"  # another origin
        conformant.tamper("discovery", claims={"userinfo_endpoint": elsewhere})
        try:
            browser = Browser(app)
            callback = sign_in(browser.start(), "alice@example.com")
        finally:
            conformant.tamper(None)
        warning = assert_outage(app, browser, browser.get(callback), capfd)
        assert "userinfo_endpoint is not https" in warning
        with pytest.raises(BlockingIOError):
            listener.accept()  # nobody connected
    finally:
        listener.close()


# UserInfo as a JWT signed by the provider (a client registered with
# userinfo_signed_response_alg): verified with the provider's keys, and meant for vault.
def test_a_signed_userinfo_answer_is_verified_and_signs_in(make_app, make_agent, conformant):
    app = make_app(**conformant.settings(SIGNED_USERINFO_CLIENT_ID))
    make_agent("alice@example.com")
    rv = Browser(app).sign_in("alice@example.com")
    assert rv.status_code == 303, rv.get_data(as_text=True)[:300]
    answer = requests.get(conformant.issuer + "/me", timeout=10,
                          headers={"Authorization": f"Bearer {conformant.userinfo_token()}"})
    assert answer.headers["Content-Type"].startswith("application/jwt")  # what vault was given


SIGNED_USERINFO_REFUSALS = {
    "signed by another key": ({"key": "other", "claims": {}}, 400, "userinfo-signature"),
    "for another client": ({"claims": {"aud": OTHER_CLIENT_ID}}, 400, "userinfo-claims"),
    "without an audience": ({"claims": {"aud": None}}, 400, "userinfo-claims"),
    "from another issuer": ({"claims": {"iss": "https://idp.elsewhere.example"}}, 400,
                            "userinfo-claims"),
    "without an issuer": ({"claims": {"iss": None}}, 400, "userinfo-claims"),
    "expired an hour ago": ({"claims": {"exp": int(time.time()) - 3600}}, 400,
                            "userinfo-claims"),
    "about another subject": ({"claims": {"sub": "someone-else"}}, 403, "userinfo-sub"),
    "an unverified address": ({"claims": {"email_verified": False}}, 403, "email-unverified"),
}


@pytest.mark.parametrize("case", sorted(SIGNED_USERINFO_REFUSALS))
def test_a_signed_userinfo_answer_that_fails_a_check_is_refused(make_app, make_agent,
                                                                conformant, case, capfd):
    details, status, reason = SIGNED_USERINFO_REFUSALS[case]
    app = make_app(**conformant.settings(SIGNED_USERINFO_CLIENT_ID))
    make_agent("alice@example.com")
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-claims", **details)
    assert_refused(app, browser, rv, status, reason, capfd)


@pytest.mark.parametrize("body,reason", [
    ("alg-none", "userinfo-signature"), ("hs256", "userinfo-signature"),
    ("a.b.c", "userinfo-malformed"), ("e.n.c.r.ypted", "userinfo-malformed"),
    ("not a jwt", "userinfo-malformed"),
])
def test_an_application_jwt_answer_vault_cannot_verify_is_refused(make_app, make_agent,
                                                                  conformant, body, reason,
                                                                  capfd):
    """"none", the client secret (HS256), a JWE (encrypted UserInfo, which vault does not
    register for) or no JWT at all, under application/jwt: refused, never read unverified."""
    app = make_app(**conformant.settings(SIGNED_USERINFO_CLIENT_ID))
    make_agent("alice@example.com")
    now = int(time.time())
    claims = {"iss": conformant.issuer, "aud": SIGNED_USERINFO_CLIENT_ID,
              "sub": "alice@example.com", "iat": now, "exp": now + 600,
              "email": "alice@example.com", "email_verified": True}
    if body == "alg-none":
        body = _unsigned({"alg": "none", "kid": "test-key-1"}, claims)
    elif body == "hs256":
        body = _unsigned({"alg": "HS256", "kid": "test-key-1"}, claims, CLIENT_SECRET.encode())
    browser, rv = sign_in_tampered(app, conformant, mode="userinfo-answer", status=200,
                                   type="application/jwt", body=body)
    assert_refused(app, browser, rv, 400, reason, capfd)
