"""Sign-in through the identity provider, in Chromium (issue 13, point 2).

A vault of its own (on the live server's Redis, so the same agents) is set up for a real
OpenID Provider (oidc-provider under node, tests/oidc_provider.py). The agent clicks the
button, signs in on the provider's own pages, lands on the dashboard, and a reveal then works:
with the provider's claims in the ID token, and again with its conformant default, where they
are at UserInfo only (issue 24), each provider with a vault of its own.
The provider's development pages import a web font from Google: the test blocks it, so nothing
leaves the machine. The login page with the button is screenshotted in English and French.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import LiveServer, ServeVault, free_port
from oidc_provider import MODES, OidcProvider
from playwright.sync_api import Page, expect

from browser.flows import WP_FIELDS, reveal, share
from browser.harness import GENEROUS_LIMITS, RecordedContext, assert_accessible, shot

NewContext = Callable[..., RecordedContext]
FONTS = "https://fonts.googleapis.com"


@contextlib.contextmanager
def vault_for_a_provider(live_redis: str, serve_vault: ServeVault, *, conform: bool
                         ) -> Iterator[tuple[LiveServer, OidcProvider]]:
    tmp = Path(tempfile.mkdtemp(prefix="vault-sso-"))
    port = free_port()
    provider = OidcProvider(tmp, [f"http://127.0.0.1:{port}/login/oidc/callback"],
                            conform=conform)
    try:
        with serve_vault(live_redis, port=port, **GENEROUS_LIMITS, **provider.settings()) as server:
            yield server, provider
    finally:
        provider.stop()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="module")
def sso(live_redis: str, serve_vault: ServeVault) -> Iterator[tuple[LiveServer, OidcProvider]]:
    """vault, and the provider with the scope's claims in the ID token as well."""
    with vault_for_a_provider(live_redis, serve_vault, conform=False) as found:
        yield found


@pytest.fixture(scope="module")
def sso_conformant(live_redis: str, serve_vault: ServeVault
                   ) -> Iterator[tuple[LiveServer, OidcProvider]]:
    """vault, and the provider as it comes: claims at UserInfo only."""
    with vault_for_a_provider(live_redis, serve_vault, conform=True) as found:
        yield found


def at_provider(page: Page, login: str) -> None:
    """The provider's own pages: its login form (any password), then its consent button."""
    page.fill('input[name="login"]', login)
    page.fill('input[name="password"]', "whatever the provider asks")
    page.click("button[type=submit]")
    page.click("button:has-text('Continue')")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_an_agent_signs_in_at_the_provider_lands_on_the_dashboard_and_reveals(
        mode: str, request: pytest.FixtureRequest, new_context: NewContext,
        live_agent: Callable[..., Any]) -> None:
    """[id-token]: the claims in the ID token, UserInfo never asked; [userinfo]: the ID token
    carries `sub` alone, and vault asks UserInfo once."""
    server, provider = request.getfixturevalue("sso_conformant" if MODES[mode] else "sso")
    agent = live_agent(name="Ann Rocketeer")
    asked = provider.fetched()["userinfo"]
    context, _ = new_context(server=server, also=(provider.issuer, FONTS))
    context.route(FONTS + "/**", lambda route: route.abort())
    page = context.new_page()
    page.goto("/login")
    button = page.locator("#sso-button")
    expect(button).to_have_text("Sign in with your company account")
    if mode == "id-token":
        assert_accessible(page, "the login page with SSO")
        shot(page, "login-sso")
    button.click()
    page.wait_for_url(provider.issuer + "/interaction/**")
    at_provider(page, agent.email)
    page.wait_for_url(server.url + "/dashboard")
    expect(page.locator("h1")).to_contain_text("My tickets")
    assert any(c["name"] == "__Host-vault_session" and c["httpOnly"] and c["secure"]
               for c in context.cookies(server.url))
    assert not any(c["name"] == "__Host-vault_sso" for c in context.cookies(server.url))
    assert provider.fetched()["userinfo"] - asked == (1 if provider.conform else 0)
    # A customer shares credentials; the agent, signed in through the provider, reads them.
    customer, _ = new_context(server=server)
    link, _ = share(customer.new_page(), f"sso-browser-{mode}", "wordpress", WP_FIELDS)
    assert reveal(page, link) == WP_FIELDS


def test_the_login_page_in_french_offers_the_provider(sso: tuple[LiveServer, OidcProvider],
                                                      new_context: NewContext) -> None:
    server, _ = sso
    context, _ = new_context(locale="fr-FR", server=server)
    page = context.new_page()
    page.goto("/login")
    expect(page.locator("#sso-button")).to_have_text("Se connecter avec votre compte d\u2019entreprise")
    expect(page.locator("#login-form")).to_be_visible()  # the password form stays, below
    assert_accessible(page, "the French login page with SSO")
    shot(page, "login-sso-fr")


def test_cancelling_at_the_provider_shows_why_and_logs_nobody_in(
        sso: tuple[LiveServer, OidcProvider], new_context: NewContext) -> None:
    server, provider = sso
    context, _ = new_context(server=server, also=(provider.issuer, FONTS))
    context.route(FONTS + "/**", lambda route: route.abort())
    page = context.new_page()
    page.goto("/login")
    page.click("#sso-button")
    page.wait_for_url(provider.issuer + "/interaction/**")
    page.click("a[href$='/abort']")
    page.wait_for_url(server.url + "/login/oidc/callback**")
    expect(page.locator("h1")).to_have_text("The identity provider did not sign you in")
    assert not any(c["name"] == "__Host-vault_session" for c in context.cookies(server.url))
