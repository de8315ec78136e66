"""The flows' steps as a person does them, in any engine (a browser.drivers.Driver).

The same steps as browser/flows.py, which drives Playwright's own page for the Chromium-only
tests; these are what the tests in every engine (test_engines.py) share.
"""

from __future__ import annotations

from browser.drivers import Driver

SHOWN_FIELDS = """() => {
  const keys = Object.fromEntries(
    Object.entries(document.querySelector('#field-labels').dataset).map(([k, v]) => [v, k]));
  return Object.fromEntries([...document.querySelectorAll('#revealed-fields .field-row')].map(
    (row) => [keys[row.querySelector('dt').textContent], row.querySelector('pre').textContent]));
}"""
HAS_CLASS = """(selector, name) =>
  document.querySelector(selector)?.classList.contains(name) === true"""


def log_in(driver: Driver, email: str, password: str) -> None:
    driver.goto("/login")
    driver.fill("#f-email", email)
    driver.fill("#f-password", password)
    driver.click("#login-form button[type=submit]")
    driver.wait_away_from("/login")


def create_request(driver: Driver, ticket: str) -> str:
    """The agent's new-request page: the link with its #key."""
    driver.goto(f"/requests/new?ticket={ticket}")
    driver.click("#create-request")
    driver.wait_visible("#request-done")
    return driver.value("#request-link")


def fill_credentials(driver: Driver, kind: str, fields: dict[str, str]) -> None:
    driver.check(f'input[name="kind"][value="{kind}"]')
    for name, value in fields.items():
        driver.fill(f"#f-{kind}-{name}", value)


def submit_request(driver: Driver, link: str, kind: str, fields: dict[str, str]) -> str:
    """The customer fills a request link: the private manage link."""
    driver.goto(link)
    fill_credentials(driver, kind, fields)
    driver.click("#fill-form button[type=submit]")
    driver.wait_visible("#fill-done")
    return driver.value("#manage-link")


def share(driver: Driver, ticket: str, kind: str, fields: dict[str, str]) -> tuple[str, str]:
    """The customer's share flow from `/`: (the link for the agent, the manage link)."""
    driver.goto("/")
    driver.fill("#f-ticket", ticket)
    fill_credentials(driver, kind, fields)
    driver.click("#share-form button[type=submit]")
    driver.wait_visible("#share-done")
    return driver.value("#share-link"), driver.value("#manage-link")


def reveal(driver: Driver, link: str) -> dict[str, str]:
    """The agent opens the link and presses Reveal: the fields shown, by their names."""
    driver.goto(link)
    driver.click("#reveal-button")
    driver.wait_visible("#revealed")
    return shown_fields(driver)


def shown_fields(driver: Driver) -> dict[str, str]:
    return dict(driver.evaluate(SHOWN_FIELDS))


def wait_class(driver: Driver, selector: str, name: str) -> None:
    """Wait until the element has the class `name` (a state: state-waiting, reason-deleted)."""
    driver.wait_for(HAS_CLASS, selector, name)
