"""The two flows end to end in Chromium, against a real gunicorn vault on a real redis-server.

Every test here also passes the fixture's own checks at teardown: no CSP report in the console,
no page error, no request to any origin but the app's own.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import requests
from harness import LiveServer
from playwright.sync_api import expect

from browser.flows import (
    SFTP_FIELDS,
    WP_FIELDS,
    create_request,
    log_in,
    reveal,
    share,
    shown_fields,
    submit_request,
)
from browser.harness import LiveAgent, RecordedContext, shot
from vault.web import PAGE_CSP

NewContext = Callable[..., RecordedContext]


def ticket_number() -> str:
    return str(uuid.uuid4().int % 10**9)


@pytest.fixture
def live_redis_client(live_redis: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(live_redis)
    yield client
    client.close()


def envelope_keys(client: redis.Redis, secret_id: str) -> list[bytes]:
    """Every stored envelope key of a secret (`vault:{tag}:e:<id>`)."""
    return list(client.scan_iter(match=f"vault:*:e:{secret_id}"))


def secret_id_of(link: str) -> str:
    match = re.search(r"/[rsm]/([A-Za-z0-9_-]{28})", link)
    assert match is not None, link
    return match.group(1)


def key_of(link: str) -> str:
    return link.split("#", 1)[1]


# -- 1. the request flow ------------------------------------------------------------------------

def test_request_flow_agent_asks_customer_sends_agent_reads_once(
        new_context: NewContext, live_agent: Callable[..., LiveAgent], live_server: LiveServer,
        live_redis_client: redis.Redis) -> None:
    agent = live_agent(name="Ann Rocketeer")
    ticket = ticket_number()
    agent_ctx, agent_record = new_context()
    agent_page = agent_ctx.new_page()
    log_in(agent_page, agent)
    shot(agent_page, "agent-dashboard-empty")
    agent_page.goto(f"/requests/new?ticket={ticket}")
    shot(agent_page, "agent-new-request")
    link = create_request(agent_page, ticket, note="Please send a temporary admin account.")
    shot(agent_page, "agent-new-request-link")
    assert re.fullmatch(rf"{re.escape(live_server.url)}/r/[A-Za-z0-9_-]{{28}}#[A-Za-z0-9_-]{{43}}",
                        link)
    assert link in agent_page.input_value("#request-sentence")

    customer_ctx, customer_record = new_context()
    customer = customer_ctx.new_page()
    customer.goto(link)
    expect(customer.locator("h1")).to_contain_text(ticket)
    expect(customer.locator(".note")).to_contain_text("temporary admin account")
    shot(customer, "customer-request-form")
    manage = submit_request(customer, link, "wordpress", WP_FIELDS)
    shot(customer, "customer-request-sent")
    assert re.fullmatch(rf"{re.escape(live_server.url)}/m/[A-Za-z0-9_-]{{28}}#vm_[A-Za-z0-9_-]{{43}}",
                        manage)

    secret_id = secret_id_of(manage)
    assert len(envelope_keys(live_redis_client, secret_id)) == 1  # stored, under the name we check
    agent_page.goto(link)
    expect(agent_page.locator("#state")).to_have_class(re.compile("state-waiting"))
    shot(agent_page, "agent-reveal-before")
    agent_page.click("#reveal-button")
    expect(agent_page.locator("#revealed")).to_be_visible()
    assert shown_fields(agent_page) == WP_FIELDS
    shot(agent_page, "agent-reveal-after")
    acks = agent_record.requests_to(f"/api/v1/secrets/{secret_id}/ack", "POST")
    assert len(acks) == 1
    assert envelope_keys(live_redis_client, secret_id) == []

    agent_page.click("#hide-button")
    expect(agent_page.locator("#revealed")).to_be_hidden()
    assert agent_page.locator("#revealed-fields .field-row").count() == 0

    # A second look, from a fresh login of the same agent: who read it and when, and no fields.
    again_ctx, _ = new_context()
    again = again_ctx.new_page()
    log_in(again, agent)
    again.goto(link)
    expect(again.locator("#state")).to_contain_text("Read by Ann Rocketeer at")
    # Inside the grace window the page offers a second fetch; only the winning session gets it.
    again.click("#reveal-button")
    expect(again.locator("#reveal-status")).to_contain_text("Already revealed by Ann Rocketeer at")
    expect(again.locator("#revealed")).to_be_hidden()
    assert again.locator("#revealed-fields .field-row").count() == 0
    shot(again, "agent-already-revealed")

    customer.goto(manage)
    expect(customer.locator("#state")).to_contain_text("Read by Ann Rocketeer")
    expect(customer.locator("#delete-button")).to_have_count(0)

    agent_page.goto("/dashboard")
    expect(agent_page.locator("main")).to_contain_text(ticket)
    shot(agent_page, "agent-dashboard")
    agent_page.goto(f"/tickets/{ticket}")
    expect(agent_page.locator("main")).to_contain_text("Ann Rocketeer")
    shot(agent_page, "agent-ticket")

    # 7. The key in the fragment never reached the server, from either browser.
    key = key_of(link)
    for record in (agent_record, customer_record):
        for r in record.requests:
            assert key not in r.url and key not in (r.post_data or "")
            assert all(key not in value for value in r.headers.values())
            # Playwright lists the header with an empty value when the browser sends none.
            assert not r.headers.get("referer"), (r.url, r.headers.get("referer"))
    live_server.wait_for_log(f'"POST /api/v1/secrets/{secret_id}/ack ')
    assert key not in live_server.log()
    assert "#" not in "".join(re.findall(r'"(?:GET|POST|HEAD) ([^ ]*) HTTP', live_server.log()))


# -- 2. the share flow --------------------------------------------------------------------------

def test_share_flow_keeps_every_byte_and_the_manage_link_deletes_before_reading(
        new_context: NewContext, live_agent: Callable[..., LiveAgent],
        live_redis_client: redis.Redis, live_server: LiveServer) -> None:
    ticket = ticket_number()
    customer_ctx, customer_record = new_context()
    customer = customer_ctx.new_page()
    customer.goto("/")
    shot(customer, "customer-share-form")
    link, manage = share(customer, ticket, "sftp", SFTP_FIELDS)
    shot(customer, "customer-share-link")
    assert "/s/" in link

    agent = live_agent(name="Bea Rocketeer")
    agent_ctx, agent_record = new_context()
    agent_page = agent_ctx.new_page()
    log_in(agent_page, agent)
    assert len(envelope_keys(live_redis_client, secret_id_of(link))) == 1
    assert reveal(agent_page, link) == SFTP_FIELDS  # byte for byte, newlines and emoji included
    # The share flow's key never reached the server; the manage token only in its header.
    key, token = key_of(link), key_of(manage)
    for record in (customer_record, agent_record):
        for r in record.requests:
            assert key not in r.url and key not in (r.post_data or "")
            assert all(key not in value for value in r.headers.values())
            assert token not in r.url and token not in (r.post_data or "")

    other_link, other_manage = share(customer, ticket, "sftp", SFTP_FIELDS)
    manage_ctx, _ = new_context()
    manager = manage_ctx.new_page()
    manager.goto(other_manage)
    expect(manager.locator("#state")).to_have_class(re.compile("state-waiting"))
    shot(manager, "customer-manage")
    assert len(envelope_keys(live_redis_client, secret_id_of(other_link))) == 1
    manager.click("#delete-button")
    expect(manager.locator("#state")).to_have_class(re.compile("reason-deleted"))
    expect(manager.locator("#delete-button")).to_be_hidden()
    shot(manager, "customer-manage-deleted")
    assert envelope_keys(live_redis_client, secret_id_of(other_link)) == []
    live_server.wait_for_log(f'"DELETE /api/v1/secrets/{secret_id_of(other_link)} ')
    assert key not in live_server.log() and key_of(other_manage) not in live_server.log()

    agent_page.goto(other_link)
    expect(agent_page.locator("#state")).to_have_class(re.compile("reason-deleted"))
    expect(agent_page.locator("#reveal-button")).to_have_count(0)


# -- 4. opening a link consumes nothing ------------------------------------------------------------

def test_loading_links_by_browser_preview_bot_and_head_consumes_nothing(
        new_context: NewContext, live_agent: Callable[..., LiveAgent],
        live_server: LiveServer) -> None:
    agent = live_agent(token=True)
    ticket = ticket_number()
    agent_ctx, _ = new_context()
    agent_page = agent_ctx.new_page()
    log_in(agent_page, agent)
    link = create_request(agent_page, ticket)
    customer_ctx, _ = new_context()
    manage = submit_request(customer_ctx.new_page(), link, "wordpress", WP_FIELDS)
    secret_id = secret_id_of(manage)

    agent_page.goto(link)  # the assignee's own page load, logged in
    expect(agent_page.locator("#reveal-button")).to_be_visible()
    agent_page.goto(f"/s/{secret_id}#{key_of(link)}")
    expect(agent_page.locator("#reveal-button")).to_be_visible()
    preview = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
    for url in (link.split("#")[0], f"{live_server.url}/s/{secret_id}", manage.split("#")[0]):
        assert requests.get(url, headers=preview, timeout=10).status_code == 200
        assert requests.head(url, headers=preview, timeout=10).status_code == 200

    assert reveal(agent_page, link) == WP_FIELDS


# -- 5. not the assignee --------------------------------------------------------------------------

def test_an_agent_who_is_not_the_assignee_is_refused_and_consumes_nothing(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    owner, intruder = live_agent(name="Owner"), live_agent(name="Someone Else")
    ticket = ticket_number()
    owner_ctx, _ = new_context()
    owner_page = owner_ctx.new_page()
    log_in(owner_page, owner)
    link = create_request(owner_page, ticket)
    customer_ctx, _ = new_context()
    submit_request(customer_ctx.new_page(), link, "wordpress", WP_FIELDS)

    intruder_ctx, _ = new_context()
    page = intruder_ctx.new_page()
    log_in(page, intruder)
    page.goto(link)
    page.click("#reveal-button")
    expect(page.locator("#reveal-status")).to_contain_text(
        "Only the agent assigned to this ticket can reveal it")
    expect(page.locator("#revealed")).to_be_hidden()
    shot(page, "agent-not-assignee")

    assert reveal(owner_page, link) == WP_FIELDS


# -- 3. (UI half) a wrong key shows one clear error ------------------------------------------------

def test_a_link_with_a_wrong_key_shows_one_clear_error_and_nothing_else(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent()
    ctx, _ = new_context()
    page = ctx.new_page()
    log_in(page, agent)
    link = create_request(page, ticket_number())
    customer_ctx, _ = new_context()
    submit_request(customer_ctx.new_page(), link, "wordpress", WP_FIELDS)
    wrong = link.split("#")[0] + "#" + "A" * 42 + "E"
    page.goto(wrong)
    page.click("#reveal-button")
    expect(page.locator("#reveal-status")).to_contain_text("cannot be opened with this link's key")
    expect(page.locator("#revealed")).to_be_hidden()
    assert page.locator("#revealed-fields .field-row").count() == 0
    # Not acknowledged: the winning session may still open it with the right link (grace window).
    assert reveal(page, link) == WP_FIELDS

    page.goto(link.split("#")[0])  # the key lost on the way: refused before anything is consumed
    page.click("#reveal-button")
    expect(page.locator("#reveal-status")).to_contain_text("lost its key")


@pytest.mark.parametrize("change", ["tampered", "other-ticket"])
def test_a_tampered_or_moved_envelope_shows_one_clear_error_and_is_not_acknowledged(
        new_context: NewContext, live_agent: Callable[..., LiveAgent], change: str) -> None:
    agent = live_agent()
    ctx, record = new_context()
    page = ctx.new_page()
    log_in(page, agent)
    ticket = ticket_number()
    link = create_request(page, ticket)
    customer_ctx, _ = new_context()
    manage = submit_request(customer_ctx.new_page(), link, "wordpress", WP_FIELDS)
    secret_id = secret_id_of(manage)

    def alter(route: Any) -> None:
        body = route.fetch().json()
        if change == "tampered":
            text = body["envelope"]
            body["envelope"] = text[:-5] + ("A" if text[-5] != "A" else "B") + text[-4:]
        else:  # the server says it belongs to another ticket
            body["ticket"] = ticket + "9"
        route.fulfill(json=body)

    page.route(f"**/api/v1/secrets/{secret_id}/reveal", alter)
    page.goto(link)
    page.click("#reveal-button")
    expect(page.locator("#reveal-status")).to_have_text(
        "These credentials cannot be opened with this link's key. The link may be incomplete or "
        "the data was altered. Nothing is shown.")
    expect(page.locator("#revealed")).to_be_hidden()
    assert page.locator("#revealed-fields .field-row").count() == 0
    assert record.requests_to(f"/api/v1/secrets/{secret_id}/ack") == []


# -- 8. nothing left in the browsers or in Redis ---------------------------------------------------

STORAGE_DUMP = """async () => ({
  local: Object.entries(localStorage), session: Object.entries(sessionStorage),
  idb: (await indexedDB.databases()).map(d => d.name),
  caches: await caches.keys(),
})"""


def test_after_reveal_and_ack_no_browser_storage_and_no_envelope_in_redis_remain(
        new_context: NewContext, live_agent: Callable[..., LiveAgent],
        live_redis_client: redis.Redis) -> None:
    agent = live_agent()
    ticket = ticket_number()
    agent_ctx, agent_record = new_context()
    agent_page = agent_ctx.new_page()
    log_in(agent_page, agent)
    link = create_request(agent_page, ticket)
    customer_ctx, _ = new_context()
    customer = customer_ctx.new_page()
    manage = submit_request(customer, link, "wordpress", WP_FIELDS)
    assert reveal(agent_page, link) == WP_FIELDS
    secret_id = secret_id_of(manage)
    assert envelope_keys(live_redis_client, secret_id) == []

    reveal_response = [r for r in agent_record.requests_to(f"/api/v1/secrets/{secret_id}/reveal")]
    assert len(reveal_response) == 1
    secrets = [key_of(link), *WP_FIELDS.values(), manage.split("#")[1]]
    for ctx, page in ((agent_ctx, agent_page), (customer_ctx, customer)):
        dump: dict[str, Any] = page.evaluate(STORAGE_DUMP)
        assert dump == {"local": [], "session": [], "idb": [], "caches": []}
        cookies = ctx.cookies()
        assert {c["name"] for c in cookies} <= {"__Host-vault_session", "__Host-vault_lang",
                                                "__Host-vault_pk"}
        for cookie in cookies:
            # The passkey ceremony's nonce (the login page's autofill asks for one): Strict.
            same_site = "Strict" if cookie["name"] == "__Host-vault_pk" else "Lax"
            assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == same_site
            assert not any(s in cookie["value"] for s in secrets)


# -- 6. headers of every page the flows met --------------------------------------------------------

def test_every_page_is_served_with_the_strict_csp_and_headers(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    agent = live_agent(admin=True)
    ctx, _ = new_context()
    page = ctx.new_page()
    seen: list[Any] = []
    page.on("response", lambda r: seen.append(r) if r.request.resource_type == "document" else None)
    page.goto("/")
    page.goto("/login")
    log_in(page, agent)
    link = create_request(page, ticket_number())
    for path in [link, "/dashboard", "/account", "/admin/agents", "/admin/keys", "/admin/audit",
                 "/s/" + "A" * 28, "/m/" + "A" * 28]:
        page.goto(path)
    assert len(seen) >= 10
    for response in seen:
        headers = response.headers
        if response.status in (301, 302, 303):
            continue
        assert headers["content-security-policy"] == PAGE_CSP, response.url
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cross-origin-opener-policy"] == "same-origin"
        assert headers["cache-control"] == "no-store"
        assert headers["permissions-policy"].startswith("camera=()")
