"""The second look: enrolling or removing a second factor or a passkey, an admin setting a password
or resetting a factor, and creating a key need a sign-in within VAULT_REAUTH_WINDOW (ten
minutes). A stale session is asked to sign in again on the same page (password and code, a
passkey, or the identity provider); the API answers 403 `reauth`. Time is the tests' clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from oidc_provider import OidcProvider, sign_in
from test_openapi import assert_documented
from test_passkeys import BASE, PASSWORD, Browser

WINDOW = 600  # VAULT_REAUTH_WINDOW's default


@pytest.fixture
def alice(app: Any) -> Browser:
    """Alice, an agent, signed in with her password now."""
    app.extensions["vault"].accounts.add_agent("alice@example.com", PASSWORD, name="Alice")
    browser = Browser(app)
    assert browser.log_in("alice@example.com").status_code == 200
    return browser


@pytest.fixture
def boss(app: Any) -> Browser:
    """An admin, signed in with her password now."""
    app.extensions["vault"].accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    browser = Browser(app)
    assert browser.log_in("boss@example.com").status_code == 200
    return browser


def text(rv: Any) -> str:
    return unescape(rv.get_data(as_text=True))


def asked_again(rv: Any, next_path: str) -> bool:
    """The page answered 403 and asks, in place, to sign in again and come back here."""
    html = text(rv)
    return rv.status_code == 403 and "This change needs a recent sign-in." in html \
        and 'id="reauth"' in html and f'data-next="{next_path}"' in html


# -- what counts as recent ---------------------------------------------------------------------

def test_a_sign_in_counts_as_recent_for_the_window_and_not_a_second_longer(alice, clock):
    accounts = alice.app.extensions["vault"].accounts
    cookie = alice.client.get_cookie("__Host-vault_session", domain="vault.test").value
    clock.advance(WINDOW)
    assert accounts.signed_in_recently(cookie)
    clock.advance(1)
    assert not accounts.signed_in_recently(cookie)
    assert alice.me().status_code == 200  # the session itself goes on (idle 30 minutes)


def test_the_window_is_a_setting(make_app, clock):
    app = make_app(reauth_window=60)
    app.extensions["vault"].accounts.add_agent("quick@example.com", PASSWORD)
    browser = Browser(app)
    browser.log_in("quick@example.com")
    clock.advance(61)
    assert asked_again(browser.form("/account", {"action": "start-2fa"}), "/account")


def test_using_a_session_does_not_make_its_sign_in_recent(alice, clock):
    for _ in range(4):
        clock.advance(WINDOW // 3)
        assert alice.page("/account").status_code == 200
    assert not alice.app.extensions["vault"].accounts.signed_in_recently(
        alice.client.get_cookie("__Host-vault_session", domain="vault.test").value)


# -- each sensitive change ----------------------------------------------------------------------

def test_enrolling_a_second_factor_needs_a_recent_sign_in(alice, clock):
    ext = alice.app.extensions["vault"]
    clock.advance(WINDOW + 1)
    rv = alice.form("/account", {"action": "start-2fa"})
    assert asked_again(rv, "/account")
    assert ext.accounts.get_agent("alice@example.com", with_2fa=True)["two_factor_pending"] \
        is False
    assert alice.log_in("alice@example.com").status_code == 200  # the card's form does this
    rv = alice.form("/account", {"action": "start-2fa"})
    assert rv.status_code == 200 and "Add vault to your authenticator app" in text(rv)


def test_confirming_a_setup_started_in_time_needs_no_second_look(alice, clock):
    html = text(alice.form("/account", {"action": "start-2fa"}))
    secret = parse_qs(urlsplit(html.split('value="otpauth://')[1].split('"')[0]).query)
    clock.advance(WINDOW + 1)
    code = pyotp.TOTP(secret["secret"][0]).at(clock())
    rv = alice.form("/account", {"action": "confirm-2fa", "code": code})
    assert rv.status_code == 303 and rv.headers["Location"] == "/account?done=2fa-on"


def test_adding_a_passkey_needs_a_recent_sign_in(alice, clock):
    clock.advance(WINDOW + 1)
    rv = alice.register_options()
    assert rv.status_code == 403 and rv.get_json()["reason"] == "reauth"
    assert_documented(rv, "/api/v1/passkeys/options", "POST")
    alice.log_in("alice@example.com")
    options = alice.register_options().get_json()["publicKey"]
    credential = alice.authenticator.create(options)
    clock.advance(WINDOW + 1)  # fresh when asked, stale when answered
    rv = alice.call("POST", "/api/v1/passkeys", json={"name": "x", "credential": credential})
    assert rv.status_code == 403 and rv.get_json()["reason"] == "reauth"
    assert alice.app.extensions["vault"].passkeys.list("alice@example.com") == []


def test_removing_a_passkey_needs_a_recent_sign_in(alice, clock):
    ext = alice.app.extensions["vault"]
    assert alice.register("Laptop").status_code == 201
    [passkey] = ext.passkeys.list("alice@example.com")
    clock.advance(WINDOW + 1)
    rv = alice.form("/account", {"action": "remove-passkey", "passkey": passkey["id"]})
    assert asked_again(rv, "/account")
    assert len(ext.passkeys.list("alice@example.com")) == 1
    # Signing in again with that very passkey is a recent sign-in.
    assert alice.sign_in().status_code == 200
    rv = alice.form("/account", {"action": "remove-passkey", "passkey": passkey["id"]})
    assert rv.status_code == 303
    assert ext.passkeys.list("alice@example.com") == []


def test_an_admin_setting_a_password_needs_a_recent_sign_in(boss, alice, clock):
    clock.advance(WINDOW + 1)
    rv = boss.form("/admin/agents", {"action": "password", "email": "alice@example.com",
                                     "password": "a brand new password"})
    assert asked_again(rv, "/admin/agents")
    assert Browser(boss.app).log_in("alice@example.com").status_code == 200  # unchanged
    boss.log_in("boss@example.com")
    rv = boss.form("/admin/agents", {"action": "password", "email": "alice@example.com",
                                     "password": "a brand new password"})
    assert rv.status_code == 303
    assert Browser(boss.app).log_in("alice@example.com").status_code == 401


def test_an_admin_resetting_a_second_factor_needs_a_recent_sign_in(boss, alice, clock):
    ext = boss.app.extensions["vault"]
    assert alice.register("Laptop").status_code == 201
    clock.advance(WINDOW + 1)
    rv = boss.form("/admin/agents", {"action": "reset-2fa", "email": "alice@example.com"})
    assert asked_again(rv, "/admin/agents")
    assert len(ext.passkeys.list("alice@example.com")) == 1


def test_an_admin_adding_an_agent_or_making_an_admin_needs_a_recent_sign_in(boss, alice, clock):
    """Either would leave a stolen admin session a lasting way in of its own choosing."""
    ext = boss.app.extensions["vault"]
    clock.advance(WINDOW + 1)
    rv = boss.form("/admin/agents", {"action": "add", "email": "mallory@example.com",
                                     "name": "Mallory", "password": "a password of mallory's",
                                     "admin": "1"})
    assert asked_again(rv, "/admin/agents")
    assert not ext.accounts.agent_exists("mallory@example.com")
    rv = boss.form("/admin/agents", {"action": "make-admin", "email": "alice@example.com"})
    assert asked_again(rv, "/admin/agents")
    assert ext.accounts.get_agent("alice@example.com")["role"] == "agent"
    boss.log_in("boss@example.com")
    assert boss.form("/admin/agents", {"action": "make-admin",
                                       "email": "alice@example.com"}).status_code == 303
    assert ext.accounts.get_agent("alice@example.com")["role"] == "admin"


def test_a_stale_session_guessing_a_code_is_never_shown_the_pending_key(alice, clock):
    """A setup started in time may be confirmed later, but its key is shown again only to a
    recent sign-in: a stolen cookie that posts a wrong code gets the error, not the secret."""
    accounts = alice.app.extensions["vault"].accounts
    assert alice.form("/account", {"action": "start-2fa"}).status_code == 200
    secret = accounts.pending_totp("alice@example.com").secret
    rv = alice.form("/account", {"action": "confirm-2fa", "code": "000000"})
    assert rv.status_code == 400 and secret in text(rv)  # a recent sign-in may try again
    clock.advance(WINDOW + 1)
    rv = alice.form("/account", {"action": "confirm-2fa", "code": "000000"})
    assert rv.status_code == 400 and "That code is not valid." in text(rv)
    assert secret not in text(rv) and "<svg" not in text(rv)
    # Confirming with the right code still works: the setup itself was started in time.
    code = pyotp.TOTP(secret).at(clock())
    assert alice.form("/account", {"action": "confirm-2fa", "code": code}).status_code == 303


def test_creating_a_helpdesk_key_needs_a_recent_sign_in(boss, clock):
    ext = boss.app.extensions["vault"]
    clock.advance(WINDOW + 1)
    rv = boss.form("/admin/keys", {"action": "create", "name": "helpscout"})
    assert asked_again(rv, "/admin/keys")
    assert 'id="new-key"' not in text(rv) and ext.accounts.list_api_keys() == []
    boss.log_in("boss@example.com")
    rv = boss.form("/admin/keys", {"action": "create", "name": "helpscout"})
    assert rv.status_code == 201 and 'id="new-key"' in text(rv)


def test_changes_that_do_not_touch_sign_in_need_no_second_look(boss, alice, clock):
    clock.advance(WINDOW + 1)
    assert boss.form("/admin/agents", {"action": "disable",
                                       "email": "alice@example.com"}).status_code == 303
    assert boss.form("/admin/keys", {"action": "revoke", "name": "none"}).status_code == 404


# -- asking again, in place ---------------------------------------------------------------------

def test_a_stale_account_page_offers_each_way_to_sign_in_again(alice, clock):
    assert alice.register("Laptop").status_code == 201
    fresh = text(alice.page("/account"))
    assert 'id="reauth"' not in fresh and 'id="passkey-form"' in fresh
    assert "Set up two-factor authentication" in fresh
    clock.advance(WINDOW + 1)
    html = text(alice.page("/account"))
    assert 'id="reauth"' in html and "Confirm it is you" in html
    assert 'id="reauth-form"' in html and 'value="alice@example.com" readonly' in html
    assert "data-passkey-sign-in" in html  # she has a passkey
    assert "Sign in with your company account" not in html  # no identity provider here
    # The changes themselves are not offered until then.
    assert 'id="passkey-form"' not in html and "Set up two-factor authentication" not in html
    assert 'value="remove-passkey"' not in html


def test_an_agent_without_a_passkey_is_not_offered_one(alice, clock):
    clock.advance(WINDOW + 1)
    html = text(alice.page("/account"))
    assert 'id="reauth-form"' in html and "data-passkey-sign-in" not in html


def test_signing_in_again_ends_the_stale_session(alice, clock):
    old = alice.client.get_cookie("__Host-vault_session", domain="vault.test").value
    clock.advance(WINDOW + 1)
    assert alice.log_in("alice@example.com").status_code == 200
    stale = alice.app.test_client()
    stale.set_cookie("__Host-vault_session", old, domain="vault.test")
    assert stale.get("/api/v1/session", base_url=BASE).status_code == 401


def test_an_api_token_never_counts_as_a_recent_sign_in(app, make_agent):
    agent = make_agent("tok@example.com")
    rv = app.test_client().post("/api/v1/passkeys/options", json={}, headers=agent.headers,
                                base_url=BASE)
    assert rv.status_code == 403 and rv.get_json()["reason"] == "reauth"
    assert "recent sign-in" in rv.get_json()["detail"]


# -- the identity provider as the second look ------------------------------------------------------

@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OidcProvider]:
    found = OidcProvider(tmp_path_factory.mktemp("oidc"), [BASE + "/login/oidc/callback"])
    yield found
    found.stop()


def test_signing_in_again_through_the_identity_provider_comes_back_recent(
        make_app: Callable[..., Any], provider: OidcProvider, clock: Any) -> None:
    app = make_app(**provider.settings())
    app.extensions["vault"].accounts.add_agent("alice@example.com", PASSWORD)
    browser = Browser(app)
    rv = browser.client.get(sign_in(browser.client.get("/login/oidc?next=/account",
                                                       base_url=BASE).headers["Location"],
                                    "alice@example.com").replace(BASE, ""), base_url=BASE)
    assert rv.status_code == 303 and rv.headers["Location"] == "/account"
    browser.csrf = browser.me().get_json()["csrf_token"]
    clock.advance(WINDOW + 1)
    html = text(browser.page("/account"))
    assert "Sign in with your company account" in html
    assert "/login/oidc?next=/account" in html
    assert asked_again(browser.form("/account", {"action": "start-2fa"}), "/account")
    old = browser.client.get_cookie("__Host-vault_session", domain="vault.test").value
    start = browser.client.get("/login/oidc?next=/account", base_url=BASE)
    rv = browser.client.get(sign_in(start.headers["Location"], "alice@example.com")
                            .replace(BASE, ""), base_url=BASE)
    assert rv.status_code == 303 and rv.headers["Location"] == "/account"
    browser.csrf = browser.me().get_json()["csrf_token"]
    rv = browser.form("/account", {"action": "start-2fa"})
    assert rv.status_code == 200 and "Add vault to your authenticator app" in text(rv)
    # The session it replaced is over, as after a password or passkey sign-in.
    stale = app.test_client()
    stale.set_cookie("__Host-vault_session", old, domain="vault.test")
    assert stale.get("/api/v1/session", base_url=BASE).status_code == 401
