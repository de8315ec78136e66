"""Passkeys on a real Redis: register on the account page's API, sign in with one alone, and every
way a sign-in must be refused. The browser's side is tests/passkey_authenticator.py (a software
authenticator); vault's side is the real py_webauthn, its real Lua and its real sessions."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from click.testing import CliRunner
from harness import base_config
from passkey_authenticator import Authenticator, b64u
from test_openapi import assert_documented

from vault.cli import cli
from vault.passkeys import CHALLENGE_TTL, MAX_PASSKEYS

BASE = "https://vault.test"
PASSWORD = "correct horse battery staple"
OIDC = {"oidc_issuer": "https://idp.example", "oidc_client_id": "vault",
        "oidc_client_secret": "s3cret-of-the-client"}


class Browser:
    """One browser: its cookies (Flask's test client over https, so `__Host-` cookies stick)
    and its own passkey authenticator."""

    def __init__(self, app: Any, authenticator: Authenticator | None = None) -> None:
        self.app = app
        self.client = app.test_client()
        self.authenticator = authenticator or Authenticator(BASE)
        self.csrf = ""

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = kwargs.pop("headers", {})
        if self.csrf:
            headers = {"X-CSRF-Token": self.csrf, **headers}
        return self.client.open(path, method=method, base_url=BASE, headers=headers, **kwargs)

    def log_in(self, email: str, password: str = PASSWORD, **extra: Any) -> Any:
        rv = self.call("POST", "/api/v1/session", json={"email": email, "password": password,
                                                        **extra})
        if rv.status_code == 200:
            self.csrf = rv.get_json()["csrf_token"]
        return rv

    def form(self, path: str, data: dict[str, str]) -> Any:
        return self.client.post(path, base_url=BASE, data={"csrf_token": self.csrf, **data})

    def page(self, path: str) -> Any:
        return self.client.get(path, base_url=BASE)

    def register_options(self) -> Any:
        return self.call("POST", "/api/v1/passkeys/options", json={})

    def register(self, name: str = "Laptop", **lies: Any) -> Any:
        options = self.register_options()
        assert options.status_code == 200, options.get_json()
        credential = self.authenticator.create(options.get_json()["publicKey"], **lies)
        return self.call("POST", "/api/v1/passkeys", json={"name": name,
                                                           "credential": credential})

    def sign_in_options(self) -> dict[str, Any]:
        rv = self.call("POST", "/api/v1/passkeys/sign-in/options", json={})
        assert rv.status_code == 200, rv.get_json()
        return dict(rv.get_json()["publicKey"])

    def answer(self, credential: Any) -> Any:
        rv = self.call("POST", "/api/v1/passkeys/sign-in", json={"credential": credential})
        if rv.status_code == 200:
            self.csrf = rv.get_json()["csrf_token"]
        return rv

    def sign_in(self, **lies: Any) -> Any:
        return self.answer(self.authenticator.get(self.sign_in_options(), **lies))

    def me(self) -> Any:
        return self.call("GET", "/api/v1/session")


def audit(app: Any, event: str) -> list[Any]:
    return [e for e in app.extensions["vault"].store.audit_tail(200) if e.event == event]


def failures(app: Any) -> list[str]:
    """The reasons of the passkey sign-ins refused, oldest first."""
    return [e.detail.split()[1] for e in audit(app, "login.failed")
            if e.detail.startswith("passkey ")]


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def alice(app: Any) -> Browser:
    """Alice, an agent signed in with her password a moment ago, with one passkey."""
    app.extensions["vault"].accounts.add_agent("alice@example.com", PASSWORD, name="Alice")
    browser = Browser(app)
    assert browser.log_in("alice@example.com").status_code == 200
    assert browser.register("Alice's laptop").status_code == 201
    return browser


def a_new_browser(alice: Browser) -> Browser:
    """Another browser on the same device (the same passkeys), signed in as nobody."""
    return Browser(alice.app, alice.authenticator)


# -- registration -------------------------------------------------------------------------------

def test_an_agent_registers_a_passkey_named_and_listed(app, clock):
    ext = app.extensions["vault"]
    ext.accounts.add_agent("alice@example.com", PASSWORD)
    browser = Browser(app)
    browser.log_in("alice@example.com")
    options = browser.register_options()
    assert options.status_code == 200
    assert_documented(options, "/api/v1/passkeys/options", "POST")
    public_key = options.get_json()["publicKey"]
    assert public_key["rp"] == {"id": "vault.test", "name": "vault"}
    assert public_key["authenticatorSelection"]["residentKey"] == "required"
    assert public_key["authenticatorSelection"]["userVerification"] == "required"
    assert public_key["user"]["name"] == "alice@example.com"
    assert "alice" not in b64u(public_key["user"]["id"].encode())  # a random handle
    assert public_key["excludeCredentials"] == []
    cookie = [c for c in options.headers.getlist("Set-Cookie") if c.startswith("__Host-vault_pk=")]
    assert cookie and all(f in cookie[0] for f in ("HttpOnly", "Secure", "SameSite=Strict",
                                                   "Path=/", f"Max-Age={CHALLENGE_TTL}"))
    credential = browser.authenticator.create(public_key)
    rv = browser.call("POST", "/api/v1/passkeys", json={"name": "Work laptop",
                                                        "credential": credential})
    assert rv.status_code == 201, rv.get_json()
    assert_documented(rv, "/api/v1/passkeys", "POST")
    body = rv.get_json()
    assert re.fullmatch(r"pk_[0-9a-f]{12}", body["id"]) and body["name"] == "Work laptop"
    assert ext.passkeys.list("alice@example.com") == [
        {"id": body["id"], "name": "Work laptop", "created_at": int(clock() * 1000),
         "last_used_at": 0}]
    html = unescape(browser.page("/account").get_data(as_text=True))
    assert "Work laptop" in html and "Remove" in html
    [event] = audit(app, "passkey.registered")
    assert (event.actor, event.detail) == ("alice@example.com", f"alice@example.com {body['id']}")


def test_a_second_passkey_from_another_device_and_the_first_is_excluded(alice, clock):
    clock.advance(60)
    phone = Browser(alice.app, Authenticator(BASE))
    phone.client, phone.csrf = alice.client, alice.csrf  # the same session, another device
    first = alice.authenticator.passkeys[0]
    options = phone.register_options().get_json()["publicKey"]
    assert [c["id"] for c in options["excludeCredentials"]] == [b64u(first.credential_id)]
    with pytest.raises(ValueError, match="InvalidStateError"):  # the laptop cannot add twice
        alice.authenticator.create(options)
    assert phone.register("Phone").status_code == 201
    names = [p["name"] for p in alice.app.extensions["vault"].passkeys.list("alice@example.com")]
    assert names == ["Alice's laptop", "Phone"]
    for device in (alice.authenticator, phone.authenticator):
        browser = Browser(alice.app, device)
        assert browser.sign_in().status_code == 200
        assert browser.me().get_json()["agent"]["email"] == "alice@example.com"


def test_a_registration_needs_a_name(alice):
    options = alice.register_options().get_json()["publicKey"]
    credential = Authenticator(BASE).create(options)
    for name in ("", "   ", "x" * 65, "bad\u202ename", None):
        rv = alice.call("POST", "/api/v1/passkeys", json={"name": name, "credential": credential})
        assert rv.status_code == 400
        assert rv.get_json()["invalid_params"][0]["name"] == "name"


def test_a_registration_answer_is_good_once_for_its_own_browser_and_session(alice):
    app = alice.app
    options = alice.register_options().get_json()["publicKey"]
    credential = Authenticator(BASE).create(options)
    # Another browser of Alice's, signed in too, cannot answer this browser's challenge.
    other = Browser(app)
    other.log_in("alice@example.com")
    rv = other.call("POST", "/api/v1/passkeys", json={"name": "x", "credential": credential})
    assert rv.status_code == 400 and rv.get_json()["reason"] == "passkey"
    # ... and that attempt spent it.
    rv = alice.call("POST", "/api/v1/passkeys", json={"name": "x", "credential": credential})
    assert rv.status_code == 400
    options = alice.register_options().get_json()["publicKey"]
    credential = Authenticator(BASE).create(options)
    assert alice.call("POST", "/api/v1/passkeys",
                      json={"name": "x", "credential": credential}).status_code == 201
    rv = alice.call("POST", "/api/v1/passkeys", json={"name": "x", "credential": credential})
    assert rv.status_code == 400  # replayed


@pytest.mark.parametrize("lie", [{"origin": "https://vault.test.evil.example"},
                                 {"rp_id": "evil.example"}, {"verified": False}])
def test_a_registration_from_another_origin_or_relying_party_or_unverified_is_refused(alice, lie):
    options = alice.register_options().get_json()["publicKey"]
    credential = Authenticator(BASE).create(options, **lie)
    rv = alice.call("POST", "/api/v1/passkeys", json={"name": "x", "credential": credential})
    assert rv.status_code == 400 and rv.get_json()["reason"] == "passkey"
    assert len(alice.app.extensions["vault"].passkeys.list("alice@example.com")) == 1


def test_a_credential_registered_to_someone_cannot_be_registered_again(alice):
    app = alice.app
    app.extensions["vault"].accounts.add_agent("mallory@example.com", PASSWORD)
    mallory = Browser(app)
    mallory.log_in("mallory@example.com")
    # Mallory's authenticator lies: its new key comes with the id of Alice's credential, which
    # would point Alice's sign-ins at Mallory's key.
    alices = alice.authenticator.passkeys[0].credential_id
    options = mallory.register_options().get_json()["publicKey"]
    forged = mallory.authenticator.create(options, credential_id=alices)
    rv = mallory.call("POST", "/api/v1/passkeys", json={"name": "mine", "credential": forged})
    assert rv.status_code == 409 and rv.get_json()["reason"] == "passkey-taken"
    assert_documented(rv, "/api/v1/passkeys", "POST")
    assert Browser(app, alice.authenticator).sign_in().status_code == 200  # still Alice's
    assert app.extensions["vault"].passkeys.list("mallory@example.com") == []


def test_an_agent_has_at_most_so_many_passkeys(alice):
    for n in range(MAX_PASSKEYS - 1):
        phone = Browser(alice.app, Authenticator(BASE))
        phone.client, phone.csrf = alice.client, alice.csrf
        assert phone.register(f"Key {n}").status_code == 201
    rv = alice.register_options()
    assert rv.status_code == 409 and rv.get_json()["reason"] == "passkey-limit"


def test_an_api_token_cannot_register_a_passkey(app, make_agent):
    agent = make_agent("tok@example.com")
    client = app.test_client()
    rv = client.post("/api/v1/passkeys/options", json={}, headers=agent.headers, base_url=BASE)
    assert rv.status_code == 403 and rv.get_json()["reason"] == "reauth"
    assert_documented(rv, "/api/v1/passkeys/options", "POST")
    rv = client.post("/api/v1/passkeys", json={"name": "x", "credential": {}},
                     headers=agent.headers, base_url=BASE)
    assert rv.status_code == 403 and rv.get_json()["reason"] == "reauth"
    assert client.post("/api/v1/passkeys/options", json={}, base_url=BASE).status_code == 401


# -- sign-in -------------------------------------------------------------------------------------

def test_an_agent_signs_in_with_a_passkey_alone(alice, capfd):
    app = alice.app
    browser = a_new_browser(alice)
    options = browser.call("POST", "/api/v1/passkeys/sign-in/options", json={})
    assert_documented(options, "/api/v1/passkeys/sign-in/options", "POST")
    public_key = options.get_json()["publicKey"]
    assert public_key["rpId"] == "vault.test" and public_key["userVerification"] == "required"
    assert public_key["allowCredentials"] == []  # discoverable: no e-mail typed
    credential = browser.authenticator.get(public_key)
    rv = browser.answer(credential)
    assert rv.status_code == 200, rv.get_json()
    assert_documented(rv, "/api/v1/passkeys/sign-in", "POST")
    cookies = "\n".join(rv.headers.getlist("Set-Cookie"))
    assert "__Host-vault_session=vs_" in cookies and "__Host-vault_pk=;" in cookies
    me = browser.me().get_json()
    assert me["agent"] == {"email": "alice@example.com", "name": "Alice", "role": "agent"}
    event = audit(app, "login.succeeded")[-1]
    assert event.actor == "alice@example.com" and event.detail.startswith("passkey")
    [passkey] = app.extensions["vault"].passkeys.list("alice@example.com")
    assert passkey["last_used_at"] > 0
    logged = capfd.readouterr().err
    assert '"method": "passkey"' in logged
    # Nothing the ceremony carried reaches the log: challenge, credential id, signature.
    for value in (public_key["challenge"], credential["id"],
                  credential["response"]["signature"], credential["response"]["userHandle"]):
        assert value not in logged


def test_the_session_keeps_when_and_how_its_agent_signed_in(alice, clock):
    browser = a_new_browser(alice)
    browser.sign_in()
    store = alice.app.extensions["vault"].store
    [key] = [k for k in store.client.scan_iter(match="vault:{acct}:sess:*")
             if store.client.hget(k, "method") == b"passkey"]
    assert store.client.hget(key, "auth_at") == str(int(clock() * 1000)).encode()


def test_a_replayed_assertion_is_refused(alice):
    browser = a_new_browser(alice)
    credential = browser.authenticator.get(browser.sign_in_options())
    assert browser.answer(credential).status_code == 200
    thief = Browser(alice.app)
    thief.client = browser.client  # the same browser even: the challenge is spent
    rv = thief.answer(credential)
    assert rv.status_code == 401 and rv.get_json()["reason"] == "passkey"
    assert failures(alice.app) == ["challenge-unknown"]


def test_a_challenge_is_bound_to_the_browser_that_asked(alice):
    asked = a_new_browser(alice)
    credential = asked.authenticator.get(asked.sign_in_options())
    other = a_new_browser(alice)  # its own cookie jar: no ceremony cookie, or another one
    assert other.answer(credential).status_code == 401
    other.sign_in_options()
    credential = asked.authenticator.get(asked.sign_in_options())
    assert other.answer(credential).status_code == 401
    assert failures(alice.app) == ["challenge-other-browser", "challenge-other-browser"]
    assert asked.answer(credential).status_code == 401  # taken by the attempt: good once


def test_an_expired_challenge_is_refused(alice, clock):
    browser = a_new_browser(alice)
    options = browser.sign_in_options()
    store = alice.app.extensions["vault"].store
    [key] = store.client.scan_iter(match="vault:{acct}:pkc:*")
    assert 0 < store.client.pttl(key) <= CHALLENGE_TTL * 1000
    assert options["challenge"] not in key.decode()  # kept under its digest
    clock.advance(CHALLENGE_TTL + 1)
    rv = browser.answer(browser.authenticator.get(options))
    assert rv.status_code == 401
    assert failures(alice.app) == ["challenge-expired"]


def test_a_challenge_just_inside_its_lifetime_still_works(alice, clock):
    browser = a_new_browser(alice)
    options = browser.sign_in_options()
    clock.advance(CHALLENGE_TTL - 1)
    assert browser.answer(browser.authenticator.get(options)).status_code == 200


@pytest.mark.parametrize(("lie", "reason"), [
    ({"origin": "https://vault.test.evil.example"}, "origin"),
    ({"origin": "http://vault.test"}, "origin"),
    ({"rp_id": "evil.example"}, "rp-id"),
    ({"verified": False}, "user-verification"),
    ({"user_handle": b"someone else's handle"}, "user-handle"),
])
def test_an_assertion_for_another_origin_or_relying_party_is_refused(alice, lie, reason):
    rv = a_new_browser(alice).sign_in(**lie)
    assert rv.status_code == 401 and rv.get_json()["reason"] == "passkey"
    assert failures(alice.app) == [reason]


def test_a_forged_signature_is_refused(alice):
    browser = a_new_browser(alice)
    credential = browser.authenticator.get(browser.sign_in_options())
    credential["response"]["signature"] = b64u(b"\x30\x06\x02\x01\x01\x02\x01\x01")
    assert browser.answer(credential).status_code == 401
    assert failures(alice.app) == ["invalid"]


def test_a_signature_counter_that_goes_backwards_is_refused(alice):
    browser = a_new_browser(alice)
    assert browser.sign_in(counter=5).status_code == 200
    assert browser.sign_in(counter=5).status_code == 401  # the same count again: a clone
    assert browser.sign_in(counter=3).status_code == 401  # backwards
    assert browser.sign_in(counter=6).status_code == 200
    assert failures(alice.app) == ["sign-count", "sign-count"]


def test_a_passkey_that_keeps_no_counter_signs_in_again_and_again(app):
    app.extensions["vault"].accounts.add_agent("sync@example.com", PASSWORD)
    browser = Browser(app, Authenticator(BASE, counting=False))
    browser.log_in("sync@example.com")
    assert browser.register("Synced").status_code == 201
    for _ in range(3):
        assert Browser(app, browser.authenticator).sign_in().status_code == 200


def test_the_counter_is_checked_and_written_in_one_step(alice):
    store = alice.app.extensions["vault"].store
    [passkey] = alice.app.extensions["vault"].passkeys.list("alice@example.com")
    assert store.use_passkey(passkey["id"], count=7, now_ms=1) == "ok"
    assert store.use_passkey(passkey["id"], count=7, now_ms=2) == "count"
    assert store.use_passkey("pk_000000000000", count=1, now_ms=3) == "gone"


def test_a_removed_passkey_no_longer_signs_in(alice):
    ext = alice.app.extensions["vault"]
    [passkey] = ext.passkeys.list("alice@example.com")
    rv = alice.form("/account", {"action": "remove-passkey", "passkey": passkey["id"]})
    assert rv.status_code == 303 and rv.headers["Location"] == "/account?done=passkey-removed"
    assert "Passkey removed." in unescape(alice.page("/account?done=passkey-removed")
                                          .get_data(as_text=True))
    assert ext.passkeys.list("alice@example.com") == []
    assert ext.accounts.get_agent("alice@example.com", with_2fa=True)["passkeys"] == 0
    rv = a_new_browser(alice).sign_in()
    assert rv.status_code == 401
    assert failures(alice.app) == ["unknown-passkey"]
    [event] = audit(alice.app, "passkey.removed")
    assert event.detail == f"alice@example.com {passkey['id']}"
    assert not list(ext.store.client.scan_iter(match="vault:{acct}:pk:*"))
    assert not ext.store.client.hlen("vault:{acct}:pkids")


def test_an_agent_cannot_remove_someone_elses_passkey(alice):
    ext = alice.app.extensions["vault"]
    ext.accounts.add_agent("mallory@example.com", PASSWORD)
    mallory = Browser(alice.app)
    mallory.log_in("mallory@example.com")
    [passkey] = ext.passkeys.list("alice@example.com")
    rv = mallory.form("/account", {"action": "remove-passkey", "passkey": passkey["id"]})
    assert rv.status_code == 404
    assert len(ext.passkeys.list("alice@example.com")) == 1


def test_a_disabled_agent_cannot_sign_in_with_a_passkey(alice):
    alice.app.extensions["vault"].accounts.set_disabled("alice@example.com", True)
    rv = a_new_browser(alice).sign_in()
    assert rv.status_code == 401 and rv.get_json()["reason"] == "passkey"
    assert failures(alice.app) == ["agent-disabled"]


def test_a_removed_agent_leaves_no_passkey_behind(alice):
    ext = alice.app.extensions["vault"]
    ext.accounts.remove_agent("alice@example.com")
    assert not list(ext.store.client.scan_iter(match="vault:{acct}:pk*"))
    assert a_new_browser(alice).sign_in().status_code == 401


@pytest.mark.parametrize("credential", [
    None, "text", [], {}, {"id": "x"},
    {"id": "AA", "rawId": "AA", "type": "public-key", "response": {
        "clientDataJSON": "e30", "authenticatorData": "AA", "signature": "AA"}},
    {"id": "AA", "rawId": "AA", "type": "public-key", "response": {
        "clientDataJSON": "!!", "authenticatorData": "%%", "signature": "AA"}},
])
def test_anything_that_is_no_assertion_is_refused_never_a_500(alice, credential):
    browser = a_new_browser(alice)
    browser.sign_in_options()
    rv = browser.answer(credential)
    assert rv.status_code == 401 and rv.get_json()["reason"] == "passkey"


def test_the_passkey_sign_in_takes_json_only(alice):
    browser = a_new_browser(alice)
    rv = browser.client.post("/api/v1/passkeys/sign-in", base_url=BASE,
                             data={"credential": "x"})
    assert rv.status_code == 400


def test_signing_in_again_replaces_the_browsers_session(alice):
    old_cookie = alice.client.get_cookie("__Host-vault_session", domain="vault.test").value
    assert alice.sign_in().status_code == 200
    new_cookie = alice.client.get_cookie("__Host-vault_session", domain="vault.test").value
    assert new_cookie != old_cookie
    stale = alice.app.test_client()
    stale.set_cookie("__Host-vault_session", old_cookie, domain="vault.test")
    assert stale.get("/api/v1/session", base_url=BASE).status_code == 401


# -- the login page ----------------------------------------------------------------------------

def test_the_login_page_offers_a_passkey_and_the_browsers_passkey_autofill(app):
    html = Browser(app).page("/login").get_data(as_text=True)
    assert "data-passkey-sign-in" in html and "Sign in with a passkey" in html
    assert 'autocomplete="username webauthn"' in html


# -- VAULT_OIDC_ONLY ----------------------------------------------------------------------------

def test_with_oidc_only_passkeys_are_off_as_passwords_are(make_app, alice):
    # Alice registered hers while passkeys were allowed; the operator then turned on
    # VAULT_OIDC_ONLY (the same Redis, a new app).
    app = make_app(**OIDC, oidc_only=True)
    browser = Browser(app, alice.authenticator)
    rv = browser.sign_in()
    assert rv.status_code == 403 and rv.get_json()["reason"] == "sso-only"
    assert failures(app) == ["sso-only"]
    html = browser.page("/login").get_data(as_text=True)
    assert "data-passkey-sign-in" not in html and "webauthn" not in html
    assert browser.log_in("alice@example.com").status_code == 403
    # Her passkey is kept (it works again without VAULT_OIDC_ONLY), and listed, not offered.
    assert len(app.extensions["vault"].passkeys.list("alice@example.com")) == 1
    assert Browser(alice.app, alice.authenticator).sign_in().status_code == 200


def test_with_oidc_only_and_break_glass_admins_keep_their_passkeys(make_app):
    app = make_app(**OIDC, oidc_only=True, oidc_admin_password=True)
    ext = app.extensions["vault"]
    ext.accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    boss = Browser(app)
    boss.log_in("boss@example.com")
    assert boss.register("Security key").status_code == 201
    assert Browser(app, boss.authenticator).sign_in().status_code == 200
    html = Browser(app).page("/login").get_data(as_text=True)
    assert "data-passkey-sign-in" in html  # inside the admins' break-glass form
    # An agent's passkey, from before VAULT_OIDC_ONLY, is refused.
    ext.accounts.add_agent("agent@example.com", PASSWORD)
    assert ext.passkeys.allowed_for("agent@example.com") is False
    assert ext.passkeys.allowed_for("boss@example.com") is True


def test_with_oidc_only_an_sso_session_cannot_register_a_passkey(make_app):
    app = make_app(**OIDC, oidc_only=True)
    ext = app.extensions["vault"]
    ext.accounts.add_agent("sso@example.com", PASSWORD)
    cookie, who = ext.accounts.sso_login("sso@example.com", "SSO")
    client = app.test_client()
    client.set_cookie("__Host-vault_session", cookie, domain="vault.test")
    rv = client.post("/api/v1/passkeys/options", json={}, base_url=BASE,
                     headers={"X-CSRF-Token": who.csrf})
    assert rv.status_code == 403 and rv.get_json()["reason"] == "sso-only"
    html = unescape(client.get("/account", base_url=BASE).get_data(as_text=True))
    assert "Passkeys are off here" in html and 'id="passkey-form"' not in html


# -- VAULT_REQUIRE_2FA --------------------------------------------------------------------------

def test_a_passkey_is_the_second_factor_an_admin_needs(make_app):
    app = make_app(require_2fa=True, clock=time.time)
    ext = app.extensions["vault"]
    ext.accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    secret = parse_qs(urlsplit(ext.accounts.enroll_totp("boss@example.com")).query)["secret"][0]
    boss = Browser(app)
    assert boss.log_in("boss@example.com", totp=pyotp.TOTP(secret).now()).status_code == 200
    # An agent whose only factor is a passkey may be made admin ...
    ext.accounts.add_agent("next@example.com", PASSWORD)
    agent = Browser(app)
    agent.log_in("next@example.com")
    assert agent.register("Phone").status_code == 201
    rv = boss.form("/admin/agents", {"action": "make-admin", "email": "next@example.com"})
    assert rv.status_code == 303
    # ... and then signs in with it, not with the password alone.
    rv = Browser(app).log_in("next@example.com")
    assert rv.status_code == 401 and rv.get_json()["reason"] == "passkey-required"
    admin = Browser(app, agent.authenticator)
    assert admin.sign_in().status_code == 200
    assert admin.me().get_json()["agent"]["role"] == "admin"
    # They cannot remove their own last second factor.
    [passkey] = ext.passkeys.list("next@example.com")
    rv = admin.form("/account", {"action": "remove-passkey", "passkey": passkey["id"]})
    assert rv.status_code == 409
    assert len(ext.passkeys.list("next@example.com")) == 1
    # An agent with no factor at all still cannot be made admin.
    ext.accounts.add_agent("plain@example.com", PASSWORD)
    rv = boss.form("/admin/agents", {"action": "make-admin", "email": "plain@example.com"})
    assert rv.status_code == 409


# -- an admin removes an agent's passkeys ----------------------------------------------------------

def test_an_admin_resets_an_agents_second_factor_and_passkeys_on_the_agents_page(alice):
    app = alice.app
    ext = app.extensions["vault"]
    ext.accounts.add_agent("admin@example.com", PASSWORD, admin=True)
    admin = Browser(app)
    admin.log_in("admin@example.com")
    html = unescape(admin.page("/admin/agents").get_data(as_text=True))
    assert "1 passkey" in html and "Reset two-factor" in html
    rv = admin.form("/admin/agents", {"action": "reset-2fa", "email": "alice@example.com"})
    assert rv.status_code == 303
    assert ext.passkeys.list("alice@example.com") == []
    assert alice.me().status_code == 401  # her sessions ended
    assert a_new_browser(alice).sign_in().status_code == 401
    [event] = audit(app, "passkey.removed")
    assert event.actor == "admin@example.com" and event.detail.startswith("alice@example.com pk_")
    assert audit(app, "agent.2fa_reset")[0].actor == "admin@example.com"


def test_vault_agent_reset_2fa_removes_passkeys_too(alice, redis_server):
    config = base_config(redis_server.url)
    env = {"VAULT_ENV": "production", "VAULT_REDIS_URL": redis_server.url,
           "VAULT_SECRET_KEY": config["secret_key"], "VAULT_KEYS": config["keys"]}
    result = CliRunner().invoke(cli, ["agent", "reset-2fa", "alice@example.com"], env=env)
    assert result.exit_code == 0, result.output
    assert alice.app.extensions["vault"].passkeys.list("alice@example.com") == []
    assert a_new_browser(alice).sign_in().status_code == 401
    [event] = audit(alice.app, "passkey.removed")
    assert event.actor == "cli"


# -- what is stored ---------------------------------------------------------------------------------

def test_what_redis_holds_of_a_passkey_is_public(alice):
    store = alice.app.extensions["vault"].store
    [key] = store.client.scan_iter(match="vault:{acct}:pk:*")
    record = {k.decode(): v.decode() for k, v in store.client.hgetall(key).items()}
    assert set(record) == {"email", "id", "cred_digest", "name", "cred_id", "key", "count",
                           "handle", "created_at", "used_at", "backed_up"}
    passkey = alice.authenticator.passkeys[0]
    assert record["cred_id"] == b64u(passkey.credential_id)
    numbers = passkey.key.private_numbers().private_value.to_bytes(32, "big")
    blob = b"".join(store.client.dump(k) or b"" for k in store.client.scan_iter("*"))
    assert numbers not in blob  # a public key only, as it must be


# -- rate limits ------------------------------------------------------------------------------------

def test_passkey_sign_ins_are_rate_limited_and_page_loads_leave_the_password_its_tries(
        make_app):
    app = make_app(ratelimit_login_address="3/minute")
    app.extensions["vault"].accounts.add_agent("rate@example.com", PASSWORD)
    browser = Browser(app)
    for _ in range(3):
        browser.sign_in_options()  # the login page, loaded three times
    rv = browser.call("POST", "/api/v1/passkeys/sign-in/options", json={})
    assert rv.status_code == 429 and int(rv.headers["Retry-After"]) >= 1
    assert browser.log_in("rate@example.com").status_code == 200  # its own count
    for _ in range(2):
        assert browser.answer({}).status_code == 401  # sign-ins count with logins
    rv = browser.answer({})
    assert rv.status_code == 429


# -- an address browsers refuse as a relying party -----------------------------------------------

@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8000", "https://10.0.0.5", "http://[::1]:8000"])
def test_an_ip_address_offers_no_passkey_and_refuses_every_ceremony(make_app: Callable[..., Any],
                                                                     base_url: str) -> None:
    """WebAuthn refuses an IP address as relying party id, so `./scripts/serve`'s demo
    (http://127.0.0.1) would offer a button that always fails: vault offers none."""
    app = make_app(base_url=base_url)
    app.extensions["vault"].accounts.add_agent("alice@example.com", PASSWORD, name="Alice")
    client = app.test_client()
    login_page = client.get("/login", base_url=base_url).get_data(as_text=True)
    assert 'id="login-form"' in login_page
    assert "passkey-sign-in" not in login_page and "webauthn" not in login_page
    rv = client.post("/api/v1/passkeys/sign-in/options", json={}, base_url=base_url)
    assert rv.status_code == 403 and rv.get_json()["reason"] == "passkeys-unavailable"
    assert "IP address" in rv.get_json()["detail"] and "Set-Cookie" not in rv.headers

    browser = Browser(app)
    browser.client.environ_base["HTTP_HOST"] = urlsplit(base_url).netloc
    assert browser.client.post("/api/v1/session", base_url=base_url, json={
        "email": "alice@example.com", "password": PASSWORD}).status_code == 200
    account = browser.client.get("/account", base_url=base_url).get_data(as_text=True)
    assert 'id="two-factor-state"' in account
    assert 'id="passkeys-title"' not in account and 'id="passkey-form"' not in account
    ext = app.extensions["vault"]
    assert not ext.passkeys.usable and not ext.passkeys.allowed_for("alice@example.com")


@pytest.mark.parametrize("base_url", ["http://localhost:8000", "https://vault.example.com"])
def test_a_host_name_offers_passkeys(make_app: Callable[..., Any], base_url: str) -> None:
    app = make_app(base_url=base_url)
    page = app.test_client().get("/login", base_url=base_url).get_data(as_text=True)
    assert 'id="passkey-sign-in"' in page and 'autocomplete="username webauthn"' in page
    assert app.extensions["vault"].passkeys.usable
