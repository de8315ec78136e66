"""Help Scout, end to end in Chromium (issue 6, point 4).

A fake Help Scout conversation page, served from another site (http://localhost:<port>, while
vault is http://127.0.0.1:<port>), shows the sidebar HTML vault answered to a signed call, as
Help Scout's dynamic app would. From its "Ask for credentials" link a logged-in agent lands
logged in on the prefilled new-request page and creates the request in one click; the customer
fills the link; the agent reveals; the sidebar follows each step. The screenshots are the ones
docs/helpscout.md shows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.server
import json
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from conftest import free_port
from playwright.sync_api import Page, expect

from browser.flows import WP_FIELDS, log_in, reveal, submit_request
from browser.harness import LiveServer, RecordedContext, run_cli, shot

NewContext = Callable[..., RecordedContext]
APP_SECRET = "hs-app-secret"  # VAULT_HELPSCOUT_APP_SECRET of the live server (base_config)


class FakeHelpdesk:
    """A stand-in for Help Scout's conversation page, on a site of its own."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        pages = self.pages

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write((body or "not found").encode())

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def origin(self) -> str:
        return f"http://localhost:{self.port}"  # another site than vault's 127.0.0.1

    def show(self, number: str, sidebar_html: str) -> str:
        """Publish the conversation page of ticket `number` with vault's sidebar; its URL."""
        path = f"/conversation/{number}"
        self.pages[path] = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>#{number} - Help Scout (rehearsal)</title><style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 0; display: flex; color: #1f2d3d; }}
main {{ flex: 1; padding: 24px 32px; }} .thread {{ border: 1px solid #d6dde3;
border-radius: 6px; padding: 12px 16px; margin: 12px 0; background: #fff; }}
aside {{ width: 300px; background: #f1f3f5; border-left: 1px solid #d6dde3; padding: 16px; }}
.app {{ background: #fff; border: 1px solid #d6dde3; border-radius: 6px; padding: 4px 12px; }}
.app-title {{ font-weight: 600; font-size: 12px; text-transform: uppercase; color: #556575;
margin: 8px 0 0; }} .muted {{ color: #556575; }} ul {{ padding-left: 18px; }}
li {{ margin: 4px 0; }} h4 {{ margin: 8px 0; }}
</style></head><body><main><h1>#{number} My WordPress admin loops back to the login page</h1>
<div class="thread"><strong>Customer</strong><p>Since this morning I cannot log in to wp-admin.
</p></div><div class="thread"><strong>You</strong><p>(reply being written)</p></div></main>
<aside><p class="app-title">vault</p><div class="app" id="vault-app">{sidebar_html}</div>
</aside></body></html>"""
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def helpdesk() -> Iterator[FakeHelpdesk]:
    fake = FakeHelpdesk()
    yield fake
    fake.close()


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


def open_from_sidebar(context: Any, page: Page, link_text: str) -> Page:
    """Click a sidebar link (target=_blank, rel=noopener) and return the tab it opened."""
    with context.expect_page() as opened:
        page.get_by_role("link", name=link_text).click()
    tab = opened.value
    tab.wait_for_load_state()
    return tab


def test_from_the_sidebar_a_logged_in_agent_creates_a_request_in_one_click_and_reads_it_once(
        live_server: LiveServer, new_context: NewContext, live_agent: Callable[..., Any],
        helpdesk: FakeHelpdesk) -> None:
    agent = live_agent(name="Ann Rocketeer")
    hs_user = 1000 + secrets.randbelow(10**6)
    run_cli(live_server, "agent", "edit", agent.email, "--helpscout-id", str(hs_user))
    number = str(100000 + uuid.uuid4().int % 10**6)

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
    assert tab.evaluate("document.referrer").startswith(helpdesk.origin)  # came from the helpdesk
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
    expect(page.locator("#vault-app")).to_contain_text(f"Assignee: {agent.email}")

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
    agent = live_agent()
    hs_user = 1000 + secrets.randbelow(10**6)
    run_cli(live_server, "agent", "edit", agent.email, "--helpscout-id", str(hs_user))
    number = str(200000 + uuid.uuid4().int % 10**6)
    context, _ = new_context(also=(helpdesk.origin,))
    page = context.new_page()
    page.goto(helpdesk.show(number, sidebar_html(live_server, number, hs_user)))
    tab = open_from_sidebar(context, page, "Ask for credentials")
    assert tab.url.startswith(f"{live_server.url}/login?next=")
    log_in(tab, agent, path=tab.url)
    assert tab.url == f"{live_server.url}/requests/new?ticket={number}"
    expect(tab.locator("#f-ticket")).to_have_value(number)
