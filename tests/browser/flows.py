"""Steps of the two flows as a person does them in the browser, shared by the browser tests."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from browser.harness import LiveAgent

WP_FIELDS = {"url": "https://shop.example.com/wp-admin/", "username": "rocket-temp-ü",
             "password": "Tr0ub4dor&3 é 😀 "}
SFTP_FIELDS = {
    "host": "sftp.example.com", "port": "2222", "username": "support-temp",
    "password": "pässwörd ü 😀",
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA é ü\n"
                   "AAAAC3NzaC1lZDI1NTE5AAAAIMy😀\n-----END OPENSSH PRIVATE KEY-----\n",
    "note": "Zugang für das Support-Team.\nDeuxième ligne: déjà vu.",
}


def log_in(page: Page, agent: LiveAgent, *, path: str = "/login", totp: str = "") -> None:
    page.goto(path)
    page.fill("#f-email", agent.email)
    page.fill("#f-password", agent.password)
    if totp:
        page.fill("#f-totp", totp)
    page.click("#login-form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)


def create_request(page: Page, ticket: str, note: str = "") -> str:
    """The agent's new-request page: returns the link with its #key."""
    page.goto(f"/requests/new?ticket={ticket}")
    if note:
        page.fill("#f-note", note)
    page.click("#create-request")
    expect(page.locator("#request-done")).to_be_visible()
    return page.input_value("#request-link")


def fill_credentials(page: Page, kind: str, fields: dict[str, str]) -> None:
    page.check(f'input[name="kind"][value="{kind}"]')
    for name, value in fields.items():
        page.fill(f"#f-{kind}-{name}", value)


def submit_request(page: Page, link: str, kind: str, fields: dict[str, str]) -> str:
    """The customer fills a request link: returns the private manage link."""
    page.goto(link)
    fill_credentials(page, kind, fields)
    page.click("#fill-form button[type=submit]")
    expect(page.locator("#fill-done")).to_be_visible()
    return page.input_value("#manage-link")


def share(page: Page, ticket: str, kind: str, fields: dict[str, str]) -> tuple[str, str]:
    """The customer's share flow from `/`: (link for the agent, manage link)."""
    page.goto("/")
    page.fill("#f-ticket", ticket)
    fill_credentials(page, kind, fields)
    page.click("#share-form button[type=submit]")
    expect(page.locator("#share-done")).to_be_visible()
    return page.input_value("#share-link"), page.input_value("#manage-link")


def reveal(page: Page, link: str) -> dict[str, str]:
    """The agent opens the link and presses Reveal: the fields shown, by their labels' keys."""
    page.goto(link)
    page.click("#reveal-button")
    expect(page.locator("#revealed")).to_be_visible()
    return shown_fields(page)


def shown_fields(page: Page) -> dict[str, str]:
    labels: dict[str, Any] = page.evaluate(
        "() => Object.fromEntries(Object.entries(document.querySelector('#field-labels').dataset)"
        ".map(([k, v]) => [v, k]))")
    rows = page.locator("#revealed-fields .field-row")
    result = {}
    for i in range(rows.count()):
        row = rows.nth(i)
        label = row.locator("dt").text_content() or ""
        result[labels[label]] = row.locator("pre").text_content() or ""
    return result
