"""Help Scout, end to end in Chromium (issue 6, point 4; issue 12, point 3).

A stand-in for Help Scout's conversation page, served from another site (http://localhost:<port>,
while vault is http://127.0.0.1:<port>), shows vault two ways:

- the App Developer Platform: it frames the signed app URL, as Help Scout does (the live server
  lets it, through VAULT_HELPSCOUT_FRAME_ANCESTORS); a wrongly signed frame shows the 401 page,
  and the same site framing /login or /dashboard is refused by the browser;
- the legacy dynamic app: it shows the sidebar HTML vault answered to a signed call.

From either's "Ask for credentials" link (a new tab, no referrer) a logged-in agent lands on the
prefilled new-request page and creates the request in one click; the customer fills the link;
the agent reveals; the sidebar follows each step. The screenshots are docs/helpscout.md's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Callable
from typing import Any

import requests
from harness import LiveServer
from helpers import helpscout_app_query
from playwright.sync_api import FrameLocator, Page, expect

from browser.flows import WP_FIELDS, log_in, reveal, submit_request
from browser.harness import (
    FakeHelpdesk,
    RecordedContext,
    assert_accessible,
    run_cli,
    shot,
)

NewContext = Callable[..., RecordedContext]
APP_SECRET = "hs-app-secret"  # VAULT_HELPSCOUT_APP_SECRET of the live server (base_config)


def sidebar_html(server: LiveServer, number: str, user_id: int) -> str:
    """What vault answers Help Scout's dynamic app for conversation `number` opened by
    Help Scout user `user_id`."""
    raw = json.dumps({"ticket": {"id": 10**9 + int(number) % 10**6, "number": int(number),
                                 "subject": "My WordPress admin loops back"},
                      "customer": {"id": 77, "fname": "Jo", "lname": "Doe",
                                   "email": "jo@example.com", "emails": ["jo@example.com"]},
                      "user": {"id": user_id, "fname": "Ann", "lname": "Rocketeer",
                               "role": "user", "convRedirect": 0},
                      "mailbox": {"id": 1, "email": "help@example.com"}}).encode()
    signature = base64.b64encode(hmac.new(APP_SECRET.encode(), raw, hashlib.sha1).digest())
    rv = requests.post(server.url + "/integrations/helpscout/sidebar", data=raw, timeout=10,
                       headers={"Content-Type": "application/json",
                                "X-HelpScout-Signature": signature.decode()})
    assert rv.status_code == 200, rv.text
    return str(rv.json()["html"])


def app_url(server: LiveServer, number: str, user_id: int, *, secret: str = APP_SECRET) -> str:
    """The URL Help Scout's App Developer Platform frames for conversation `number` opened by
    Help Scout user `user_id`: the context, then its signature."""
    params = {"conversation-id": str(10**9 + int(number) % 10**6),
              "conversation-number": number, "customer-id": "77", "mailbox-id": "1",
              "user-id": str(user_id), "installation-ids": "5", "application-id": "9",
              "application-slug": "vault"}
    return f"{server.url}/integrations/helpscout/app?{helpscout_app_query(params, secret)}"


def mapped_agent(server: LiveServer, live_agent: Callable[..., Any], **kwargs: Any
                 ) -> tuple[Any, int]:
    """A vault agent mapped to a fresh Help Scout user id (as `vault agent edit
    --helpscout-id` does it): (agent, Help Scout user id)."""
    agent = live_agent(**kwargs)
    hs_user = 1000 + secrets.randbelow(10**6)
    run_cli(server, "agent", "edit", agent.email, "--helpscout-id", str(hs_user))
    return agent, hs_user


def conversation(base: int) -> str:
    """A conversation number of its own (the live server's Redis is shared by the session)."""
    return str(base + uuid.uuid4().int % 10**6)


def open_from_sidebar(context: Any, page: Page | FrameLocator, link_text: str) -> Page:
    """Click a sidebar link (target=_blank, rel="noopener noreferrer") and return the tab it
    opened."""
    with context.expect_page() as opened:
        page.get_by_role("link", name=link_text).click()
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def test_the_framed_app_shows_the_ticket_and_its_link_opens_the_request_flow(
        live_server: LiveServer, new_context: NewContext, live_agent: Callable[..., Any],
        helpdesk: FakeHelpdesk) -> None:
    agent, hs_user = mapped_agent(live_server, live_agent, name="Ann Rocketeer")
    number = conversation(300000)
    context, record = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    log_in(page, agent)

    # Help Scout frames the app: it renders inside the frame, in vault's CSS, nothing stored.
    cookies_before = context.cookies(live_server.url)
    page.goto(helpdesk.frame(number, app_url(live_server, number, hs_user)))
    app = page.frame_locator("#vault-app")
    expect(app.locator("main")).to_contain_text(f"vault · ticket {number}")
    expect(app.locator("main")).to_contain_text("Nothing stored.")
    expect(app.locator("main")).to_contain_text("Assignee: nobody yet")
    frame = page.frame(url=lambda url: "/integrations/helpscout/app" in url)
    assert frame is not None
    assert context.cookies(live_server.url) == cookies_before  # the app set no cookie
    assert frame.evaluate(
        "getComputedStyle(document.body).fontFamily").startswith("system-ui")  # vault.css
    assert record.requests_to("/static/vault.css")
    shot(page, "helpscout-app")

    tab = open_from_sidebar(context, app, "Ask for credentials")
    assert tab.url == f"{live_server.url}/requests/new?ticket={number}"
    assert tab.evaluate("document.referrer") == ""  # rel=noreferrer: the conversation stays
    assert tab.evaluate("window.opener") is None  # and the frame cannot be reached from here
    expect(tab.locator("#f-ticket")).to_have_value(number)  # logged in, prefilled
    tab.click("#create-request")
    expect(tab.locator("#request-done")).to_be_visible()
    link = tab.input_value("#request-link")
    assert link.startswith(f"{live_server.url}/r/") and "#" in link

    page.reload()
    expect(app.locator("main")).to_contain_text("Request: waiting for the customer since")
    expect(app.locator("main")).to_contain_text("Assignee: Ann Rocketeer")
    customer, _ = new_context()
    submit_request(customer.new_page(), link, "wordpress", WP_FIELDS)
    page.reload()
    expect(app.locator("main")).to_contain_text("WordPress admin: waiting to be read since")
    assert reveal(tab, link) == WP_FIELDS
    page.reload()
    expect(app.locator("main")).to_contain_text("WordPress admin: revealed by Ann Rocketeer at")
    shot(page, "helpscout-app-revealed")
    again = open_from_sidebar(context, app, "Open in vault")
    assert again.url == f"{live_server.url}/tickets/{number}"

    # The same conversation for an agent whose browser speaks French.
    french, _ = new_context(locale="fr-FR", also=(helpdesk.origin,))
    fr_page = french.new_page()
    fr_page.goto(helpdesk.frame(number, app_url(live_server, number, hs_user), name="fr"))
    fr_app = fr_page.frame_locator("#vault-app")
    expect(fr_app.locator("main")).to_contain_text("consulté par Ann Rocketeer le")
    expect(fr_app.locator("main")).to_contain_text("Demander des identifiants")
    expect(fr_app.locator("html")).to_have_attribute("lang", "fr")
    shot(fr_page, "helpscout-app-fr")
    alone = french.new_page()  # the app's page itself, for axe (which cannot enter the frame)
    alone.goto(app_url(live_server, number, hs_user))
    assert_accessible(alone, "the Help Scout app (French)")


def test_a_wrongly_signed_frame_shows_the_401_page(
        live_server: LiveServer, new_context: NewContext, helpdesk: FakeHelpdesk) -> None:
    context, _ = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    forged = app_url(live_server, "400001", 1, secret="not-the-app-secret")
    with page.expect_response(lambda r: "/integrations/helpscout/app" in r.url) as answered:
        page.goto(helpdesk.frame("400001", forged, name="forged"))
    assert answered.value.status == 401
    app = page.frame_locator("#vault-app")
    expect(app.locator("main")).to_contain_text("Open this from Help Scout")
    expect(app.locator("main")).not_to_contain_text("400001")


def test_the_same_site_framing_login_or_dashboard_is_refused_by_the_browser(
        live_server: LiveServer, new_context: NewContext, live_agent: Callable[..., Any],
        helpdesk: FakeHelpdesk) -> None:
    agent = live_agent()
    context, record = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    log_in(page, agent)
    for path, name in (("/login", "login"), ("/dashboard", "dashboard")):
        with page.expect_console_message(lambda m: "frame-ancestors 'none'" in m.text
                                         and live_server.url in m.text) as refused, \
                page.expect_response(lambda r, path=path: r.url == live_server.url + path
                                     ) as answered:
            page.goto(helpdesk.frame("500001", live_server.url + path, name=name))
        # vault answered (/dashboard: the login page, a Lax cookie stays out of a cross-site
        # frame) with frame-ancestors 'none', and Chromium refused to show it.
        assert "blocked" in refused.value.text, refused.value.text
        assert "frame-ancestors 'none'" in answered.value.headers["content-security-policy"]
        [frame] = page.main_frame.child_frames
        assert not frame.url.startswith(live_server.url), frame.url  # an error page instead
        assert frame.evaluate("document.querySelector('#f-email')") is None
        record.clear()  # the refusal was the point: not a problem of this test


def test_from_the_legacy_sidebar_a_logged_in_agent_creates_a_request_in_one_click_and_reads_it_once(
        live_server: LiveServer, new_context: NewContext, live_agent: Callable[..., Any],
        helpdesk: FakeHelpdesk) -> None:
    agent, hs_user = mapped_agent(live_server, live_agent, name="Ann Rocketeer")
    number = conversation(100000)

    context, record = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    log_in(page, agent)
    cookie = next(c for c in context.cookies() if c["name"] == "__Host-vault_session")
    assert cookie["sameSite"] == "Lax"  # what lets the cross-site link land logged in

    # Help Scout shows the conversation and vault's sidebar: nothing stored yet.
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    expect(page.locator("#vault-app")).to_contain_text("Nothing stored.")
    shot(page, "helpscout-sidebar-empty")

    tab = open_from_sidebar(context, page, "Ask for credentials")
    assert tab.url == f"{live_server.url}/requests/new?ticket={number}"
    assert tab.evaluate("document.referrer") == ""  # rel=noreferrer: the conversation stays
    expect(tab.locator("#f-ticket")).to_have_value(number)  # logged in, prefilled
    tab.click("#create-request")  # the one click
    expect(tab.locator("#request-done")).to_be_visible()
    link = tab.input_value("#request-link")
    assert link.startswith(f"{live_server.url}/r/") and "#" in link
    sentence = tab.input_value("#request-sentence")
    assert link in sentence and "temporary account" in sentence and "back up" in sentence
    assert len(record.requests_to("/api/v1/requests", "POST")) == 1
    shot(tab, "helpscout-new-request")

    # The sidebar shows the open request.
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    expect(page.locator("#vault-app")).to_contain_text("Request: waiting for the customer since")
    expect(page.locator("#vault-app")).to_contain_text("Assignee: Ann Rocketeer")

    # The customer fills the link in their own browser.
    customer, _ = new_context()
    submit_request(customer.new_page(), link, "wordpress", WP_FIELDS)
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    expect(page.locator("#vault-app")).to_contain_text("WordPress admin: waiting to be read since")
    shot(page, "helpscout-sidebar-waiting")

    # The agent reads it once, in the tab the sidebar opened.
    assert reveal(tab, link) == WP_FIELDS
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    expect(page.locator("#vault-app")).to_contain_text(
        "WordPress admin: revealed by Ann Rocketeer at")
    shot(page, "helpscout-sidebar-revealed")
    again = open_from_sidebar(context, page, "Open in vault")
    assert again.url == f"{live_server.url}/tickets/{number}"
    expect(again.locator("main")).to_contain_text("Ann Rocketeer")


def test_a_logged_out_agent_goes_through_the_login_and_lands_on_the_prefilled_page(
        live_server: LiveServer, new_context: NewContext, live_agent: Callable[..., Any],
        helpdesk: FakeHelpdesk) -> None:
    agent, hs_user = mapped_agent(live_server, live_agent)
    number = conversation(200000)
    context, _ = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    tab = open_from_sidebar(context, page, "Ask for credentials")
    assert tab.url.startswith(f"{live_server.url}/login?next=")
    log_in(tab, agent, path=tab.url)
    assert tab.url == f"{live_server.url}/requests/new?ticket={number}"
    expect(tab.locator("#f-ticket")).to_have_value(number)
