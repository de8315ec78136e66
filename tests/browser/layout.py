"""Does every page fit a phone and a laptop? The pages, hostile data for them, and the check.

Engine-neutral on purpose: the browser is driven only through navigation, the viewport's size
and JavaScript evaluation (the `Driver` protocol), so the same page list, data and check run in
Chromium through Playwright (test_layout.py) and in any engine a WebDriver client can drive.
The data is made over HTTP and with the command line, never through a browser.

    data = make_hostile_data(live_server)
    widths = measure_pages(drivers, layout_pages(data))   # {(page, width): Width}
    assert not [w for w in widths.values() if not w.fits]
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import requests
from harness import LiveServer

from browser.harness import AGENT_PASSWORD, LiveAgent, add_agent, run_cli
from vault.crypto import envelope

PHONE_SMALL, PHONE, LAPTOP = 320, 375, 1280
WIDTHS = (PHONE_SMALL, PHONE, LAPTOP)
HEIGHT = 800
SESSION_COOKIE = "__Host-vault_session"


class Driver(Protocol):
    """What the checks need from a browser tab, whatever the engine."""

    def goto(self, path: str) -> None:
        """Load `path` (relative to the live server) and wait for its load event."""

    def resize(self, width: int, height: int) -> None:
        """Set the viewport (the layout viewport: window.innerWidth becomes `width`)."""

    def run(self, script: str, arg: Any = None) -> Any:
        """Evaluate a JavaScript function expression `(arg) => ...` in the page, awaiting the
        promise it may return, and return its JSON-able result."""

    def wait(self, condition: str) -> None:
        """Wait until the JavaScript function `condition` returns true; a navigation may be
        under way (a form post), so it is asked again in the new page."""


# -- hostile data ------------------------------------------------------------------------------

def long_email(tag: str) -> str:
    """A 100-character e-mail address without a break opportunity: 64 before the @."""
    local = (tag + ".").ljust(64, "x")
    return f"{local}@{'e' * 27}.example"


def long_name(tag: str) -> str:
    """A 100-character display name without a space."""
    return (tag + "-Wolfeschlegelsteinhausenbergerdorff" * 3)[:100]


def long_ticket(tag: str) -> str:
    """A 64-character ticket number (the most a ticket may have)."""
    return (tag + "-" + "ZD0123456789_" * 5)[:64]


# A note of 500 characters (the most there is) in one word, and credentials in long lines.
LONG_NOTE = ("https://staging.example.com/wp-admin/?" + "page=settings&tab=" * 30)[:500]
SFTP_FIELDS = {
    "host": "sftp." + "very-long-subdomain-" * 6 + "example.com", "port": "2222",
    "username": "support-temp-" + "u" * 80, "password": "p@" * 60,
    "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + "b3BlbnNzaC1rZXktdjEAAAAA" * 12
                   + "\n-----END OPENSSH PRIVATE KEY-----\n",
    "note": "no-spaces-here:" + "/path/to/the/site/root" * 10,
}
ROWS = 50  # of the dashboard (its limit), the agents, the keys and a ticket's requests
LAPS = 4  # runs over the same data that each reveal credentials once (engines, directions)


@dataclass
class HostileData:
    """What the pages are checked with: long names everywhere and full tables."""

    admin: LiveAgent  # 100-character e-mail and name; owns every ticket below
    ticket: str  # 64 characters, with ROWS requests, credentials in every state, a long history
    fill_link: str  # /r/<id>#<key>: an open request with the longest note
    request_status_link: str  # /r/<id>#<key>: a request already answered
    manage_link: str  # /m/<id>#<token>: waiting credentials, as their sender sees them
    status_link: str  # /s/<id>#<key>: waiting credentials (anonymous: "log in to reveal")
    reveal_links: tuple[str, ...]  # /s/<id>#<key>: waiting sFTP credentials with long lines,
    # one per lap (a reveal uses them up)


class Api:
    """vault's HTTP API and the admin's forms, as the admin (bearer token and session)."""

    def __init__(self, server: LiveServer, admin: LiveAgent) -> None:
        self.url = server.url
        self.http = requests.Session()
        self.admin = admin
        resp = self.http.post(f"{self.url}/api/v1/session", timeout=30,
                              json={"email": admin.email, "password": admin.password})
        resp.raise_for_status()
        self.csrf = resp.json()["csrf_token"]
        # The cookie is Secure and this is plain http on loopback: sent by hand.
        match = re.search(SESSION_COOKIE + r"=([^;]+)", resp.headers["Set-Cookie"])
        assert match, "no session cookie"
        self.cookie = f"{SESSION_COOKIE}={match.group(1)}"

    def call(self, method: str, path: str, *, expect: int, **kwargs: Any) -> Any:
        headers = {**self.admin.headers, **kwargs.pop("headers", {})}
        resp = self.http.request(method, self.url + path, headers=headers, timeout=30, **kwargs)
        assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text[:300]}"
        return resp.json() if resp.content else None

    def form(self, path: str, fields: Mapping[str, str]) -> None:
        """Post an admin page's form with the session cookie and its CSRF token."""
        resp = self.http.post(self.url + path, data={"csrf_token": self.csrf, **fields},
                              headers={"Cookie": self.cookie}, allow_redirects=False, timeout=60)
        assert resp.status_code in (201, 303), f"{path} {dict(fields).get('action')}: {resp.status_code}"

    def request(self, ticket: str, note: str = "") -> tuple[str, str]:
        """A request on `ticket`: (its id, the customer's link with the key)."""
        body = self.call("POST", "/api/v1/requests", expect=201,
                         json={"ticket": ticket, **({"note": note} if note else {})})
        return body["id"], body["url"] + "#" + envelope.generate_key()

    def share(self, ticket: str, kind: str, fields: Mapping[str, str]) -> tuple[str, str, str]:
        """Credentials sent through the share page: (id, the agent's link, the manage link)."""
        key = envelope.generate_key()
        sealed = envelope.seal(key, ticket=ticket, kind=kind, fields=fields)
        resp = requests.post(f"{self.url}/api/v1/secrets", timeout=30,
                             json={"ticket": ticket, "kind": kind, "envelope": sealed})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return (body["id"], body["url"] + "#" + key,
                f"{self.url}/m/{body['id']}#{body['manage_token']}")

    def fill(self, link: str, ticket: str, kind: str, fields: Mapping[str, str]) -> str:
        """The customer answers a request: the new secret's id."""
        request_id = link.split("/r/")[1].split("#")[0]
        key = link.split("#")[1]
        sealed = envelope.seal(key, ticket=ticket, kind=kind, fields=fields)
        resp = requests.post(f"{self.url}/api/v1/requests/{request_id}/secret", timeout=30,
                             json={"kind": kind, "envelope": sealed})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["secret_id"])

    def reveal(self, secret_id: str) -> None:
        self.call("POST", f"/api/v1/secrets/{secret_id}/reveal", expect=200, json={})
        self.call("POST", f"/api/v1/secrets/{secret_id}/ack", expect=204, json={})


def make_hostile_data(server: LiveServer, tag: str = "L") -> HostileData:
    """Fill the live server's store with the worst a page may meet. `tag` keeps two calls on
    the same server apart. About ROWS argon2 hashes (the agents), so a few seconds."""
    admin = add_agent(server, long_email(tag + "admin"), password=AGENT_PASSWORD,
                      name=long_name(tag + "Admin"), admin=True, token=True)
    api = Api(server, admin)

    def add(i: int) -> None:
        api.form("/admin/agents", {"action": "add", "email": long_email(f"{tag}agent{i:02d}"),
                                   "name": long_name(f"{tag}Agent{i:02d}"),
                                   "password": AGENT_PASSWORD, **({"admin": "1"} if i % 7 == 0 else {})})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(add, range(1, ROWS)))
        list(pool.map(lambda i: api.form("/admin/keys", {
            "action": "create", "name": (f"{tag}-helpdesk-{i:02d}-" + "k" * 64)[:64]}),
            range(ROWS)))
        # The dashboard's ROWS tickets, all of them the longest there is.
        list(pool.map(lambda i: api.request(long_ticket(f"{tag}{i:02d}")), range(1, ROWS)))
    # An agent with every action of the agents table: disabled, two-factor on.
    run_cli(server, "agent", "enrol-2fa", long_email(f"{tag}agent01"))
    api.form("/admin/agents", {"action": "disable", "email": long_email(f"{tag}agent02")})

    # The one ticket with everything: ROWS requests, credentials in every state.
    ticket = long_ticket(f"{tag}00")
    links = [api.request(ticket, LONG_NOTE if i % 5 == 0 else "")[1] for i in range(ROWS - 2)]
    fill_link, answered = links[0], links[1]
    api.fill(answered, ticket, "sftp", SFTP_FIELDS)
    api.reveal(api.fill(links[2], ticket, "other", {"text": "x" * 300}))
    _, status_link, manage_link = api.share(ticket, "wordpress", {
        "url": "https://" + "w" * 120 + ".example.com/wp-admin/", "username": "u" * 100,
        "password": "p" * 100})
    reveal_links = tuple(api.share(ticket, "sftp", SFTP_FIELDS)[1] for _ in range(LAPS))
    discarded, _, _ = api.share(ticket, "other", {"text": "junk"})
    api.call("DELETE", f"/api/v1/secrets/{discarded}", expect=204)
    gone, _, gone_manage = api.share(ticket, "other", {"text": "deleted by its sender"})
    requests.delete(f"{server.url}/api/v1/secrets/{gone}", timeout=30,
                    headers={"X-Manage-Token": gone_manage.split("#")[1]}).raise_for_status()
    revealed, _, _ = api.share(ticket, "other", {"text": "read"})
    api.reveal(revealed)
    return HostileData(admin=admin, ticket=ticket, fill_link=fill_link,
                       request_status_link=answered, manage_link=manage_link,
                       status_link=status_link, reveal_links=reveal_links)


# -- the pages ---------------------------------------------------------------------------------

# Steps run in the page (after it loaded) to bring it to the state that is checked.
UNTIL = """const until = (test, what) => new Promise((resolve, reject) => {
  const start = Date.now();
  const tick = () => { if (test()) resolve(true);
    else if (Date.now() - start > 15000) reject(new Error("timed out waiting for " + what));
    else setTimeout(tick, 20); };
  tick(); });"""
CREATE_LINK = "async () => { " + UNTIL + """
  document.querySelector("#create-request").click();
  await until(() => !document.querySelector("#request-done").hidden, "the link"); }"""
REVEAL = "async () => { " + UNTIL + """
  document.querySelector("#reveal-button").click();
  await until(() => !document.querySelector("#revealed").hidden, "the credentials"); }"""
# How much of the ready-to-paste reply is cut off (0: it shows its whole sentence).
REPLY_CUT = """() => { const el = document.querySelector("#request-sentence");
  return el.scrollHeight - el.clientHeight; }"""
# Wait until the reply shows whole (the page may resize it on a resize event still to come).
REPLY_WHOLE = "async () => { " + UNTIL + """
  const el = document.querySelector("#request-sentence");
  await until(() => el.scrollHeight <= el.clientHeight, "the whole reply"); }"""
# A form post navigates: started after this script returns; the check waits for `ready`.
START_2FA = """() => { const form = document.querySelector('input[value="start-2fa"]').form;
  setTimeout(() => form.submit(), 0); }"""


@dataclass(frozen=True)
class PageCase:
    name: str
    path: str
    who: str  # "anonymous" or "admin"
    then: str = ""  # a script run after the load (see above)
    ready: str = ""  # a condition to wait for afterwards (after a navigation the script starts)


def layout_pages(data: HostileData, lap: int = 0) -> list[PageCase]:
    """Every kind of page, anonymous, agent and admin, with the hostile data in it. `lap`
    (below LAPS): which of the data's credentials this run reveals; each run over the same data
    (another engine, another direction) takes its own."""
    t = data.ticket
    reveal_link = data.reveal_links[lap]
    return [
        PageCase("share", "/", "anonymous"),
        PageCase("fill a request", data.fill_link, "anonymous"),
        PageCase("request answered", data.request_status_link, "anonymous"),
        PageCase("manage link", data.manage_link, "anonymous"),
        PageCase("status (log in to reveal)", data.status_link, "anonymous"),
        PageCase("login", "/login", "anonymous"),
        PageCase("error 404", "/r/" + "A" * 28, "anonymous"),
        PageCase("dashboard", "/dashboard", "admin"),
        PageCase("new request", f"/requests/new?ticket={t}", "admin"),
        PageCase("new request: link ready", f"/requests/new?ticket={t}", "admin", CREATE_LINK),
        PageCase("ticket", f"/tickets/{t}", "admin"),
        PageCase("reveal", reveal_link, "admin"),
        PageCase("reveal: credentials shown", reveal_link, "admin", REVEAL),
        PageCase("account", "/account", "admin"),
        PageCase("account: two-factor set-up", "/account", "admin", START_2FA,
                 "() => document.readyState === 'complete' && !!document.querySelector('figure.qr svg')"),
        PageCase("admin agents", "/admin/agents", "admin"),
        PageCase("admin keys", "/admin/keys", "admin"),
        PageCase("admin audit", "/admin/audit", "admin"),
        PageCase("admin audit of the ticket", f"/admin/audit?ticket={t}", "admin"),
    ]


def log_in(driver: Driver, email: str, password: str) -> None:
    """Log the driver's browser in (the login page's own API call, from the login page)."""
    driver.goto("/login")
    status = driver.run("""async ([email, password]) => (await fetch("/api/v1/session", {
        method: "POST", headers: {"Content-Type": "application/json"},
        body: JSON.stringify({email, password})})).status""", [email, password])
    assert status == 200, f"login answered {status}"


# -- the check ----------------------------------------------------------------------------------

MEASURE = """() => {
  const root = document.documentElement;
  const result = {scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
                  innerWidth: window.innerWidth, wide: []};
  if (root.scrollWidth > root.clientWidth) {
    // What sticks out, for the failure message: the innermost elements that reach past the
    // viewport or whose content overflows them (text too long for its box).
    const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
      + (el.classList.length ? "." + Array.from(el.classList).join(".") : "");
    const out = Array.from(document.body.querySelectorAll("*")).filter((el) => {
      const r = el.getBoundingClientRect();
      if (r.width === 0 || r.right <= 0) return false;  // hidden, or parked off-screen
      return r.right > root.clientWidth + 0.5 || r.left < -0.5  // (right to left: the left)
        || el.scrollWidth > el.clientWidth + 1
        && getComputedStyle(el).overflowX === "visible" && el.clientWidth > 0;
    });
    result.wide = out.filter((el) => !out.some((other) => other !== el && el.contains(other)))
      .slice(0, 6).map((el) => {
        const r = el.getBoundingClientRect();
        return `${name(el)} ${Math.round(r.left)}..${Math.round(r.right)} (${el.scrollWidth})`;
      });
  }
  return result;
}"""


@dataclass(frozen=True)
class Width:
    scroll: int  # document.documentElement.scrollWidth
    client: int  # document.documentElement.clientWidth (innerWidth less a vertical scrollbar)
    inner: int  # window.innerWidth
    wide: tuple[str, ...]  # what sticks out, when something does

    @property
    def fits(self) -> bool:
        """Nothing to scroll sideways: no wider than the viewport, nor than the room a vertical
        scrollbar leaves."""
        return self.scroll <= self.client <= self.inner


def measure(driver: Driver, width: int, height: int = HEIGHT) -> Width:
    driver.resize(width, height)
    found = driver.run(MEASURE)
    return Width(found["scrollWidth"], found["clientWidth"], found["innerWidth"],
                 tuple(found["wide"]))


def open_case(driver: Driver, case: PageCase) -> None:
    """Load the case's page at a laptop's size and bring it to the state it checks."""
    driver.resize(LAPTOP, HEIGHT)  # each page starts at the same size, then narrows
    driver.goto(case.path)
    if case.then:
        driver.run(case.then)
    if case.ready:
        driver.wait(case.ready)


def measure_pages(drivers: Mapping[str, Driver], cases: Iterable[PageCase],
                  widths: Iterable[int] = WIDTHS) -> dict[tuple[str, int], Width]:
    """Load each page once (with the driver of its `who`) and measure it at every width."""
    widths = tuple(widths)
    found: dict[tuple[str, int], Width] = {}
    for case in cases:
        driver = drivers[case.who]
        open_case(driver, case)
        for width in widths:
            found[case.name, width] = measure(driver, width)
    return found


def width_table(found: Mapping[tuple[str, int], Width], widths: Iterable[int] = WIDTHS) -> str:
    """The scrollWidth of every page at every width, as a Markdown table."""
    widths = tuple(widths)
    names = list(dict.fromkeys(name for name, _ in found))
    lines = ["| page | " + " | ".join(f"{w} px" for w in widths) + " |",
             "|---|" + "---:|" * len(widths)]
    for name in names:
        cells = [f"{found[name, w].scroll}" + ("" if found[name, w].fits else " ✗")
                 for w in widths]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# Where things sit, to compare a left-to-right page with its right-to-left twin: the advice's
# bar (border widths left and right), the brand's and the language menu's boxes, and the first
# table's columns (their left edges, in order) and its first header's text (the room left of it
# and right of it in its cell).
SIDES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.left, r.right]; };
  const found = {direction: getComputedStyle(document.body).direction,
                 brand: box(document.querySelector(".brand")),
                 lang: box(document.querySelector(".lang summary"))};
  const advice = document.querySelector(".advice");
  if (advice) {
    const style = getComputedStyle(advice);
    found.advice_bar = [parseFloat(style.borderLeftWidth), parseFloat(style.borderRightWidth)];
  }
  const th = document.querySelector("thead th");
  if (th) {
    const text = document.createRange();
    text.selectNodeContents(th);
    const inner = text.getBoundingClientRect(), cell = th.getBoundingClientRect();
    found.header_room = [inner.left - cell.left, cell.right - inner.right];
    found.columns = Array.from(th.parentElement.children, (c) => c.getBoundingClientRect().left);
  }
  return found;
}"""


def sides(driver: Driver) -> dict[str, Any]:
    return dict(driver.run(SIDES))


def misfits(found: Mapping[tuple[str, int], Width]) -> list[str]:
    return [f"{name} at {width} px: {w.scroll} px wide for {w.client} ({', '.join(w.wide)})"
            for (name, width), w in found.items() if not w.fits]

