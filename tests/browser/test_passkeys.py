"""Passkeys in Chromium, with the DevTools virtual authenticator (a platform authenticator with
resident keys and user verification, ctap2 over the internal transport): register on the account
page, log out, sign in with the passkey alone, add a second one, remove one, and be asked to sign
in again before a change when the sign-in is old. axe checks the new pages; the registration and
the sign-in are screenshotted.

WebAuthn needs a relying party that is a domain, never an IP address, so this vault of its own
(on the live server's Redis, so the same agents) is http://localhost:<port>, its VAULT_BASE_URL
too: a secure context, as https would be.
"""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from harness import LiveServer, ServeVault, free_port
from playwright.sync_api import CDPSession, Page, expect

from browser.flows import log_in
from browser.harness import GENEROUS_LIMITS, LiveAgent, RecordedContext, assert_accessible, shot

NewContext = Callable[..., RecordedContext]
# A browser without passkey autofill (conditional mediation): the login page's button is its way.
# Chromium's virtual authenticator answers an autofill request at once, which would sign in
# before any button is pressed (test_the_login_pages_autofill_signs_in covers that path).
NO_AUTOFILL = ("if (window.PublicKeyCredential) "
               "PublicKeyCredential.isConditionalMediationAvailable = async () => false;")


@pytest.fixture(scope="module")
def passkey_server(live_redis: str, serve_vault: ServeVault) -> Iterator[LiveServer]:
    port = free_port()
    origin = f"http://localhost:{port}"
    with serve_vault(live_redis, port=port, base_url=origin, **GENEROUS_LIMITS) as server:
        yield dataclasses.replace(server, url=origin)


class Authenticators:
    """The page's virtual authenticators (WebAuthn domain of the DevTools protocol)."""

    def __init__(self, page: Page) -> None:
        self.cdp: CDPSession = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})

    def add(self, transport: str = "internal") -> str:
        """An authenticator that verifies its user (as a fingerprint or a PIN would) at once:
        the device's own ("internal", one at most), or a security key ("usb")."""
        return str(self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
            "protocol": "ctap2", "transport": transport, "hasResidentKey": True,
            "hasUserVerification": True, "isUserVerified": True,
            "automaticPresenceSimulation": True}})["authenticatorId"])

    def only(self, chosen: str, every: list[str]) -> None:
        """Let `chosen` answer alone (the others are out of reach, as another device is)."""
        for authenticator in every:
            self.cdp.send("WebAuthn.setAutomaticPresenceSimulation",
                          {"authenticatorId": authenticator, "enabled": authenticator == chosen})

    def credentials(self, authenticator: str) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self.cdp.send(
            "WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
        return found


def log_out(page: Page) -> None:
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/login"))


def add_passkey(page: Page, name: str) -> None:
    page.goto("/account")
    page.fill("#f-passkey-name", name)
    page.click("#passkey-form button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/account?done=passkey-added"))


def sign_in_with_passkey(page: Page) -> None:
    page.goto("/login")
    button = page.locator("button[data-passkey-sign-in]")
    expect(button).to_be_visible()
    button.click()
    page.wait_for_url(lambda url: url.endswith("/dashboard"))


def passkey_names(page: Page) -> list[str]:
    return [name.strip() for name in page.locator("#passkeys tbody th").all_inner_texts()]


def make_stale(server: LiveServer, page: Page) -> None:
    """Date the browser's sign-in eleven minutes back, as time would (the live server runs on
    real time: this stands for waiting)."""
    [cookie] = [c for c in page.context.cookies() if c["name"] == "__Host-vault_session"]
    key = "vault:{acct}:sess:" + hashlib.sha256(cookie["value"].encode()).hexdigest()
    with redis.Redis.from_url(server.env["VAULT_REDIS_URL"]) as client:
        assert client.hset(key, "auth_at", int((time.time() - 11 * 60) * 1000)) == 0


def test_register_sign_in_add_a_second_and_remove_one(passkey_server: LiveServer,
                                                     new_context: NewContext,
                                                     live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent(name="Pat Passkey")
    context, record = new_context(server=passkey_server)
    context.add_init_script(NO_AUTOFILL)
    page = context.new_page()
    authenticators = Authenticators(page)
    laptop = authenticators.add()

    log_in(page, agent)
    add_passkey(page, "Work laptop")
    expect(page.locator("p.alert.info")).to_have_text("Passkey added.")
    assert passkey_names(page) == ["Work laptop"]
    [credential] = authenticators.credentials(laptop)
    assert credential["isResidentCredential"] is True
    assert_accessible(page, "the account page with a passkey")
    shot(page, "passkey-register")

    log_out(page)
    page.goto("/login")
    expect(page.locator("button[data-passkey-sign-in]")).to_be_visible()
    assert page.get_attribute("#f-email", "autocomplete") == "username webauthn"
    assert_accessible(page, "the login page with the passkey button")
    shot(page, "passkey-login")
    sign_in_with_passkey(page)
    expect(page.locator(".who")).to_contain_text("Pat Passkey")
    assert record.requests_to("/api/v1/passkeys/sign-in", "POST")

    # A second passkey, on a security key (the laptop's own is out of reach meanwhile).
    key = authenticators.add("usb")
    authenticators.only(key, [laptop, key])
    add_passkey(page, "Security key")
    assert passkey_names(page) == ["Work laptop", "Security key"]
    assert len(authenticators.credentials(key)) == 1
    log_out(page)
    sign_in_with_passkey(page)  # with the security key

    # Remove the laptop's; the laptop then signs in no more, the security key still does.
    page.goto("/account")
    page.locator("#passkeys tr", has_text="Work laptop").locator("button.danger").click()
    page.wait_for_url(lambda url: url.endswith("/account?done=passkey-removed"))
    assert passkey_names(page) == ["Security key"]
    log_out(page)
    authenticators.only(laptop, [laptop, key])
    page.goto("/login")
    page.click("button[data-passkey-sign-in]")
    expect(page.locator("#passkey-error")).to_have_text(
        "The passkey did not sign you in. Try again, or sign in another way.")
    assert page.url.endswith("/login")
    authenticators.only(key, [laptop, key])
    sign_in_with_passkey(page)


def test_a_stale_sign_in_is_asked_again_in_place(passkey_server: LiveServer,
                                                 new_context: NewContext,
                                                 live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent()
    context, _ = new_context(server=passkey_server)
    context.add_init_script(NO_AUTOFILL)
    page = context.new_page()
    authenticators = Authenticators(page)
    authenticators.add()
    log_in(page, agent)
    add_passkey(page, "Laptop")

    make_stale(passkey_server, page)
    page.goto("/account")
    card = page.locator("#reauth")
    expect(card).to_be_visible()
    expect(page.locator("#passkey-form")).to_have_count(0)
    assert page.input_value("#r-email") == agent.email
    assert_accessible(page, "the account page asking to sign in again")
    shot(page, "passkey-reauth")
    with page.expect_navigation():
        card.locator("button[data-passkey-sign-in]").click()
    assert page.url.endswith("/account")
    expect(page.locator("#reauth")).to_have_count(0)
    expect(page.locator("#passkey-form")).to_be_visible()

    # The password form of the card does the same.
    make_stale(passkey_server, page)
    page.goto("/account")
    page.fill("#r-password", agent.password)
    with page.expect_navigation():
        page.click("#reauth-form button[type=submit]")
    assert page.url.endswith("/account")
    expect(page.locator("#passkey-form")).to_be_visible()


def test_the_login_pages_autofill_signs_in(passkey_server: LiveServer, new_context: NewContext,
                                           live_agent: Callable[..., LiveAgent]) -> None:
    """Where the browser offers passkeys in the e-mail field's autofill, picking one signs in
    (the virtual authenticator picks at once): no button pressed."""
    agent = live_agent()
    context, record = new_context(server=passkey_server)
    page = context.new_page()
    Authenticators(page).add()
    log_in(page, agent)
    add_passkey(page, "Laptop")
    assert page.evaluate("PublicKeyCredential.isConditionalMediationAvailable()") is True
    record.clear()
    page.click("form[action='/logout'] button[type=submit]")
    page.wait_for_url(lambda url: url.endswith("/dashboard"))
    posts = [urlsplit(r.url).path for r in record.requests if r.method == "POST"]
    assert posts == ["/logout", "/api/v1/passkeys/sign-in/options", "/api/v1/passkeys/sign-in"]
