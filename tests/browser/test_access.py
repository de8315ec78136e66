"""Accessibility, keyboard-only use, languages, CSRF and the second factor, in Chromium."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
import requests
from harness import ServeVault
from playwright.sync_api import Page, expect

from browser.flows import WP_FIELDS, create_request, log_in, share, shown_fields, submit_request
from browser.harness import (
    AGENT_PASSWORD,
    GENEROUS_LIMITS,
    LiveAgent,
    RecordedContext,
    add_agent,
    assert_accessible,
    shot,
)

NewContext = Callable[..., RecordedContext]


def ticket_number() -> str:
    return str(uuid.uuid4().int % 10**9)


# -- 9. axe on every page, in English, French, Japanese and Arabic (right to left) ------------------

@pytest.mark.parametrize("locale", ["en-US", "fr-FR", "ja-JP", "ar-EG"])
def test_axe_finds_no_serious_violation_on_any_page(
        new_context: NewContext, live_agent: Callable[..., LiveAgent], locale: str) -> None:
    lang = locale[:2]
    admin = live_agent(admin=True, name="Ada Admin")
    ticket = ticket_number()
    agent_ctx, _ = new_context(locale=locale)
    agent = agent_ctx.new_page()
    customer_ctx, _ = new_context(locale=locale)
    customer = customer_ctx.new_page()

    def check(page: Page, what: str, name: str = "") -> None:
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert_accessible(page, f"{what} ({locale})")
        if name:
            shot(page, f"{name}-{lang}" if lang != "en" else name)

    customer.goto("/")
    check(customer, "share form")
    customer.click("#share-form button[type=submit]")  # every error shown at once
    expect(customer.locator("#form-error")).to_be_visible()
    check(customer, "share form with errors", "customer-share-errors")
    agent.goto("/login")
    check(agent, "login", "agent-login")
    log_in(agent, admin)
    check(agent, "dashboard")
    agent.goto(f"/requests/new?ticket={ticket}")
    check(agent, "new request")
    link = create_request(agent, ticket)
    check(agent, "new request done")
    customer.goto(link)
    check(customer, "request form", "customer-request-form")
    manage = submit_request(customer, link, "wordpress", WP_FIELDS)
    check(customer, "request sent", "customer-request-sent")
    customer.goto(manage)
    check(customer, "manage link", "customer-manage")
    agent.goto(link)
    check(agent, "reveal before", "agent-reveal-before")
    agent.click("#reveal-button")
    expect(agent.locator("#revealed")).to_be_visible()
    check(agent, "reveal after")
    customer.goto(manage)
    check(customer, "manage link after reveal")
    for path, name in [(f"/tickets/{ticket}", "agent-ticket"), ("/account", "agent-account"),
                       ("/admin/agents", "admin-agents"), ("/admin/keys", "admin-keys"),
                       ("/admin/audit", "admin-audit"), ("/r/" + "A" * 28, "")]:
        agent.goto(path)
        check(agent, path, name if lang == "en" else "")


@pytest.mark.parametrize("locale", ["en-US", "fr-FR"])
def test_axe_finds_no_serious_violation_in_the_other_states(
        new_context: NewContext, live_agent: Callable[..., LiveAgent], live_server: Any,
        locale: str) -> None:
    admin, plain = live_agent(admin=True, token=True), live_agent()
    ctx, _ = new_context(locale=locale)
    page = ctx.new_page()
    ticket = ticket_number()
    link, manage = share(page, ticket, "other", {"text": "line one\nline two"})
    assert_accessible(page, f"share done ({locale})")
    page.goto(link)  # anonymous: the status page with "log in to reveal"
    assert_accessible(page, f"anonymous status ({locale})")
    page.click("details.lang summary")  # the switcher itself, then back
    page.click('.lang a[hreflang="en"]')
    page.goto(f"/login?lang={locale[:2]}")
    log_in(page, plain)
    page.goto("/admin/agents")  # a 403 page
    assert_accessible(page, f"403 ({locale})")
    page.goto("/account")
    page.click("#main form button[type=submit]")  # start the two-factor set-up: QR code and key
    expect(page.locator("figure.qr svg")).to_be_visible()
    assert_accessible(page, f"two-factor set-up ({locale})")
    page.click("#main form.card button[type=submit]")  # confirm with no code: the field's error
    assert_accessible(page, f"two-factor error ({locale})")
    assert requests.post(f"{live_server.url}/api/v1/tickets/{ticket}/close", headers=admin.headers,
                         timeout=10).status_code == 200
    page.goto(manage)  # purged: the reminder to delete the temporary accounts
    expect(page.locator("#state")).to_have_class(re.compile("reason-purged"))
    assert_accessible(page, f"purged ({locale})")


# -- 9. the whole request flow with the keyboard alone -----------------------------------------------

def tab_to(page: Page, selector: str, *, limit: int = 60) -> None:
    """Press Tab until `selector` has the focus (Shift+Tab is never needed in these forms)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement && document.activeElement.matches(s)",
                         selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_the_full_request_flow_works_with_the_keyboard_alone(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent(name="Kim Keyboard")
    ticket = ticket_number()
    agent_ctx, _ = new_context()
    page = agent_ctx.new_page()
    page.goto("/login")
    tab_to(page, "#f-email")
    page.keyboard.type(agent.email)
    page.keyboard.press("Tab")
    page.keyboard.type(agent.password)
    page.keyboard.press("Enter")
    page.wait_for_url("**/dashboard")

    tab_to(page, 'nav a[href="/requests/new"]')
    page.keyboard.press("Enter")
    page.wait_for_url("**/requests/new")
    tab_to(page, "#f-ticket")
    page.keyboard.type(ticket)
    tab_to(page, "#create-request")
    page.keyboard.press("Enter")
    expect(page.locator("#request-done")).to_be_focused()
    link = page.input_value("#request-link")

    customer_ctx, _ = new_context()
    customer = customer_ctx.new_page()
    customer.goto(link)
    tab_to(customer, 'input[name="kind"]:checked')
    customer.keyboard.press("ArrowRight")  # radio group: sFTP / SSH
    expect(customer.locator('fieldset[data-kind="sftp"]')).to_be_visible()
    customer.keyboard.press("ArrowLeft")  # back to WordPress admin
    expect(customer.locator('fieldset[data-kind="wordpress"]')).to_be_visible()
    tab_to(customer, "#f-wordpress-url")
    customer.keyboard.type(WP_FIELDS["url"])
    customer.keyboard.press("Tab")
    customer.keyboard.type(WP_FIELDS["username"])
    customer.keyboard.press("Tab")
    customer.keyboard.press("Enter")  # password still empty: the error is announced, focus on it
    expect(customer.locator("#f-wordpress-password")).to_be_focused()
    expect(customer.locator("#f-wordpress-password")).to_have_attribute("aria-invalid", "true")
    expect(customer.locator("#form-error")).to_be_visible()
    assert customer.input_value("#f-wordpress-url") == WP_FIELDS["url"]  # nothing typed is lost
    customer.keyboard.type(WP_FIELDS["password"])
    tab_to(customer, "#fill-form button[type=submit]")
    customer.keyboard.press("Enter")
    expect(customer.locator("#fill-done")).to_be_focused()

    page.goto(link)
    tab_to(page, "#reveal-button")
    page.keyboard.press("Enter")
    expect(page.locator("#revealed")).to_be_focused()
    assert shown_fields(page) == WP_FIELDS
    tab_to(page, "#hide-button")
    page.keyboard.press("Space")
    expect(page.locator("#revealed")).to_be_hidden()


# -- 10. the switcher keeps the choice, and the link's key ----------------------------------------

def test_the_language_switcher_keeps_the_choice_and_the_links_key(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent()
    agent_ctx, _ = new_context()
    agent_page = agent_ctx.new_page()
    log_in(agent_page, agent)
    link = create_request(agent_page, ticket_number())

    customer_ctx, _ = new_context(locale="en-US")
    customer = customer_ctx.new_page()
    customer.goto(link)
    expect(customer.locator("html")).to_have_attribute("lang", "en")
    customer.click("details.lang summary")
    customer.click('.lang a[hreflang="fr"]')
    expect(customer.locator("html")).to_have_attribute("lang", "fr")
    assert customer.url == link  # same page, same #key, no ?lang left behind
    expect(customer.locator("h1")).to_contain_text("identifiants")
    customer.goto("/")
    expect(customer.locator("html")).to_have_attribute("lang", "fr")
    customer.goto(link)
    submit_request(customer, link, "wordpress", WP_FIELDS)
    expect(customer.locator("#fill-done h2")).to_contain_text("agent peut maintenant")
    customer.click("details.lang summary")
    customer.click('.lang a[hreflang="en"]')
    expect(customer.locator("html")).to_have_attribute("lang", "en")


# -- 11. CSRF and the login page -------------------------------------------------------------------

FETCH = """async ([path, body, token]) => {
  const headers = {"Content-Type": "application/json"};
  if (token) headers["X-CSRF-Token"] = token;
  const r = await fetch(path, {method: "POST", headers, body: JSON.stringify(body)});
  return r.status;
}"""


def test_cookie_calls_without_the_csrf_token_are_refused_and_change_nothing(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent()
    ctx, _ = new_context()
    page = ctx.new_page()
    log_in(page, agent)
    ticket = ticket_number()
    assert page.evaluate(FETCH, ["/api/v1/requests", {"ticket": ticket}, ""]) == 403
    assert page.evaluate(FETCH, ["/api/v1/requests", {"ticket": ticket}, "x" * 43]) == 403
    view: dict[str, Any] = page.evaluate(
        "async (t) => (await fetch('/api/v1/tickets/' + t)).json()", ticket)
    assert view["requests"] == [] and view["assignee"] is None
    token = page.get_attribute('meta[name="csrf-token"]', "content")
    assert page.evaluate(FETCH, ["/api/v1/requests", {"ticket": ticket}, token]) == 201

    # A form post (log out) with a wrong token is refused and the session stays.
    page.evaluate("""() => { const f = document.querySelector('form[action="/logout"]');
                              f.querySelector('[name=csrf_token]').value = 'forged'; f.submit(); }""")
    expect(page.locator("h1")).to_have_text("Not allowed")
    page.goto("/dashboard")
    expect(page).to_have_url(re.compile(r"/dashboard$"))


def test_login_says_the_same_for_a_wrong_password_and_an_unknown_email(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent()
    ctx, _ = new_context()
    page = ctx.new_page()
    messages = []
    for email in (agent.email, "nobody-" + ticket_number() + "@example.com"):
        page.goto("/login")
        page.fill("#f-email", email)
        page.fill("#f-password", "not the password")
        page.click("#login-form button[type=submit]")
        expect(page.locator("#form-error")).to_be_visible()
        messages.append(page.locator("#form-error").text_content())
    assert messages[0] == messages[1] == "Wrong e-mail or password."


# -- the second factor: enrolment in the account page, then the login asks for it ------------------

def test_an_agent_sets_up_two_factor_and_login_then_needs_the_code(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent(name="Tess Totp")
    ctx, _ = new_context()
    page = ctx.new_page()
    log_in(page, agent)
    page.goto("/account")
    expect(page.locator("#two-factor-state")).to_have_text("off")
    page.click("text=Set up two-factor authentication")
    secret = page.input_value("#totp-secret")
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret)
    assert page.locator("figure.qr svg").count() == 1
    shot(page, "agent-account-2fa")
    page.fill("#f-code", "000000" if pyotp.TOTP(secret).now() != "000000" else "111111")
    page.click("text=Turn on two-factor authentication")
    expect(page.locator("#f-code")).to_have_attribute("aria-invalid", "true")
    totp = pyotp.TOTP(secret)
    page.fill("#f-code", totp.now())
    page.click("text=Turn on two-factor authentication")
    expect(page.locator("#two-factor-state")).to_have_text("on")

    fresh_ctx, _ = new_context()
    fresh = fresh_ctx.new_page()
    fresh.goto("/login")
    fresh.fill("#f-email", agent.email)
    fresh.fill("#f-password", agent.password)
    fresh.click("#login-form button[type=submit]")
    expect(fresh.locator("#f-totp")).to_be_focused()
    expect(fresh.locator("#f-totp-error")).to_have_text("Enter the 6-digit code from your authenticator app.")
    # The confirming code's time step is spent; the next step's code is within the drift allowed.
    fresh.fill("#f-totp", totp.at(time.time() + 30))
    fresh.click("#login-form button[type=submit]")
    fresh.wait_for_url("**/dashboard")


def test_the_login_page_locks_out_by_rate_limit_and_says_when_to_retry(
        new_context: NewContext, live_redis: str, serve_vault: ServeVault) -> None:
    with serve_vault(live_redis, **{**GENEROUS_LIMITS, "ratelimit_login_account": "3/minute"}
                     ) as server:
        agent = add_agent(server, f"locked-{ticket_number()}@example.com", password=AGENT_PASSWORD)
        ctx, record = new_context(server=server)
        page = ctx.new_page()
        page.goto("/login")
        for _ in range(3):
            page.fill("#f-email", agent.email)
            page.fill("#f-password", "not the password")
            page.click("#login-form button[type=submit]")
            expect(page.locator("#form-error")).to_have_text("Wrong e-mail or password.")
        page.fill("#f-password", agent.password)  # even the right password is refused now
        page.click("#login-form button[type=submit]")
        expect(page.locator("#form-error")).to_contain_text("Too many attempts")
        expect(page.locator("#form-error")).to_contain_text(re.compile(r"Try again in \d+ s"))
        assert page.url.endswith("/login")
        assert len(record.requests_to("/api/v1/session", "POST")) == 4


def test_field_validation_says_what_to_fix_and_loses_nothing(
        new_context: NewContext, live_agent: Callable[..., LiveAgent], live_server: Any) -> None:
    admin = live_agent(admin=True, token=True)
    ctx, _ = new_context()
    page = ctx.new_page()
    page.goto("/")
    page.fill("#f-ticket", "not a ticket!")
    page.check('input[name="kind"][value="sftp"]')
    page.fill("#f-sftp-host", "sftp.example.com")
    page.fill("#f-sftp-port", "70000")
    page.fill("#f-sftp-username", "temp")
    page.click("#share-form button[type=submit]")
    expect(page.locator("#f-ticket-error")).to_have_text("Use 1 to 64 letters, digits, '-' or '_'.")
    expect(page.locator("#f-sftp-port-error")).to_have_text("Enter a port number between 1 and 65535.")
    expect(page.locator("#f-sftp-password-error")).to_have_text("This field is required.")
    expect(page.locator("#f-ticket")).to_be_focused()

    page.check('input[name="kind"][value="other"]')
    page.fill("#f-ticket", "1234")
    page.click("#share-form button[type=submit]")
    expect(page.locator("#f-other-text-error")).to_have_text("This field is required.")

    # A refusal from the server (a closed ticket) keeps everything typed.
    ticket = ticket_number()
    assert requests.post(f"{live_server.url}/api/v1/tickets/{ticket}/close", headers=admin.headers,
                         timeout=10).status_code == 200
    page.fill("#f-ticket", ticket)
    page.fill("#f-other-text", "keep me\nplease")
    page.click("#share-form button[type=submit]")
    expect(page.locator("#form-error")).to_contain_text("This ticket is closed")
    expect(page.locator("#form-error")).to_be_focused()
    assert page.input_value("#f-other-text") == "keep me\nplease"
    assert page.input_value("#f-ticket") == ticket


def test_copy_buttons_are_named_for_what_they_copy_and_announce_each_copy(
        new_context: NewContext) -> None:
    ctx, _ = new_context(permissions=["clipboard-read", "clipboard-write"])
    page = ctx.new_page()
    link, manage = share(page, ticket_number(), "other", {"text": "x"})
    buttons = page.locator("#share-done button.copy")
    names = [buttons.nth(i).text_content() for i in range(buttons.count())]
    assert names == ["Copy: Link for the agent", "Copy: Manage link (keep it private)"]
    buttons.nth(0).click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == link
    buttons.nth(1).click()
    expect(page.locator("#copy-status")).to_have_text("Copied.")
    assert page.evaluate("() => navigator.clipboard.readText()") == manage
