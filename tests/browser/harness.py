"""What the browser tests share: the live server, the browser's record, axe, agents, screenshots.

The fixtures that hand these out are in conftest.py beside this file; test files import the plain
helpers from here (`from browser.harness import axe_violations, shot, ...`).
"""

from __future__ import annotations

import contextlib
import html
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from harness import ROOT, LiveServer, free_port
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Request, WebError

CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, never a browser build Playwright downloads. Everything that would make it
# talk to anything but the live server is off, so the "no foreign request" check stays exact.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# scripts/test installs it from the npm registry (pinned there).
AXE_PATH = ROOT / ".cache" / "axe" / "node_modules" / "axe-core" / "axe.min.js"
# A test run leaves the tracked screenshots alone: they go to .cache/screenshots/ (not
# committed), or to docs/screenshots/ when VAULT_SCREENSHOTS asks for it (docs/development.md).
SCREENSHOTS = Path(os.environ.get("VAULT_SCREENSHOTS") or ROOT / ".cache" / "screenshots")
AGENT_PASSWORD = "correct horse battery staple"

# The limiter stays on (its headers and code paths are part of what the pages meet), with limits
# no test run reaches. A test that needs a real limit starts its own server with the
# serve_vault fixture: serve_vault(redis_url, **{**GENEROUS_LIMITS, "ratelimit_submit": "30/minute"}).
GENEROUS_LIMITS = {
    "ratelimit_login_account": "1000/minute",
    "ratelimit_login_address": "1000/minute",
    "ratelimit_submit": "1000/minute",
    "ratelimit_reveal": "1000/minute",
}


# -- the live server ---------------------------------------------------------------------------

class FakeHelpdesk:
    """A stand-in for Help Scout's conversation page, on a site of its own (http://localhost:<port>,
    while vault is http://127.0.0.1:<port>)."""

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
        """Publish the conversation page of ticket `number` with vault's legacy sidebar HTML
        in it, as Help Scout's dynamic apps show it; its URL."""
        return self._publish(f"/conversation/{number}", number,
                             f'<div class="app" id="vault-app">{sidebar_html}</div>')

    def frame(self, number: str, app_url: str, name: str = "app") -> str:
        """Publish the conversation page of ticket `number` framing `app_url`, as Help Scout's
        App Developer Platform shows an app; its URL."""
        src = html.escape(app_url, quote=True)
        return self._publish(f"/conversation/{number}/{name}", number,
                             f'<iframe id="vault-app" name="{name}" title="vault" src="{src}">'
                             "</iframe>")

    def _publish(self, path: str, number: str, app: str) -> str:
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
iframe {{ width: 100%; height: 360px; border: 1px solid #d6dde3; border-radius: 6px;
background: #fff; }}
</style></head><body><main><h1>#{number} My WordPress admin loops back to the login page</h1>
<div class="thread"><strong>Customer</strong><p>Since this morning I cannot log in to wp-admin.
</p></div><div class="thread"><strong>You</strong><p>(reply being written)</p></div></main>
<aside><p class="app-title">vault</p>{app}</aside></body></html>"""
        return self.origin + path

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class LiveAgent:
    email: str
    password: str
    name: str
    admin: bool
    token: str | None  # an API token (vt_...), when asked for

    @property
    def headers(self) -> dict[str, str]:
        assert self.token is not None, "ask live_agent(..., token=True) for an API token"
        return {"Authorization": f"Bearer {self.token}"}


def run_cli(server: LiveServer, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`vault ARGS...` against the live server's store (its VAULT_* environment); must succeed."""
    proc = subprocess.run([sys.executable, "-m", "vault.cli", *args], input=stdin, env=server.env,
                          cwd=str(ROOT), capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"vault {' '.join(args[:2])} failed ({proc.returncode}): {proc.stderr}")
    return proc


def add_agent(server: LiveServer, email: str, *, password: str, name: str = "",
              admin: bool = False, token: bool = False) -> LiveAgent:
    """Create an agent with the real command line (`vault agent add --password-stdin`)."""
    args = ["agent", "add", email, "--password-stdin"]
    if name:
        args += ["--name", name]
    if admin:
        args.append("--admin")
    run_cli(server, *args, stdin=password + "\n")
    value = run_cli(server, "token", "create", email).stdout.strip() if token else None
    return LiveAgent(email=email, password=password, name=name or email, admin=admin, token=value)


# -- what the browser did ----------------------------------------------------------------------

@dataclass(frozen=True)
class ConsoleEntry:
    type: str
    text: str
    url: str  # where the message came from, when the browser says


@dataclass(frozen=True)
class RequestEntry:
    url: str
    method: str
    headers: dict[str, str]
    post_data: str | None  # undecodable bytes replaced


_CSP_WORDS = ("content security policy", "content-security-policy", "refused to")


@dataclass
class BrowserRecord:
    """Every console message, page error and request of one browser context, in order."""

    origin: str  # the live server's; any request elsewhere is a problem
    also: tuple[str, ...] = ()  # other origins a test opens on purpose (a fake helpdesk page)
    console: list[ConsoleEntry] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    requests: list[RequestEntry] = field(default_factory=list)

    def attach(self, context: BrowserContext) -> None:
        context.on("console", self._console)
        context.on("weberror", self._page_error)
        context.on("request", self._request)

    def _console(self, message: ConsoleMessage) -> None:
        self.console.append(ConsoleEntry(type=message.type, text=message.text,
                                         url=str(message.location.get("url", ""))))

    def _page_error(self, error: WebError) -> None:
        self.page_errors.append(f"{error.error.name}: {error.error.message}")

    def _request(self, request: Request) -> None:
        body = request.post_data_buffer
        self.requests.append(RequestEntry(
            url=request.url, method=request.method, headers=dict(request.headers),
            post_data=None if body is None else body.decode(errors="replace")))

    def requests_to(self, path: str, method: str | None = None) -> list[RequestEntry]:
        """The requests to this origin whose path starts with `path` (and of `method`)."""
        return [r for r in self.requests
                if _same_origin(r.url, self.origin) and urlsplit(r.url).path.startswith(path)
                and (method is None or r.method == method)]

    def problems(self) -> list[str]:
        """What the fixture refuses at teardown: CSP reports, page errors, foreign requests."""
        found = [f"console {c.type} about the CSP: {c.text} ({c.url})" for c in self.console
                 if any(word in c.text.lower() for word in _CSP_WORDS)]
        found += [f"page error: {e}" for e in self.page_errors]
        found += [f"request to another origin: {r.method} {r.url}" for r in self.requests
                  if not any(_allowed_url(r.url, o) for o in (self.origin, *self.also))]
        return found

    def clear(self) -> None:
        """Forget everything so far (after a test checked a problem it provoked on purpose)."""
        self.console.clear()
        self.page_errors.clear()
        self.requests.clear()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _same_origin(url: str, origin: str) -> bool:
    return _origin(url) == _origin(origin)


def _allowed_url(url: str, origin: str) -> bool:
    scheme = urlsplit(url).scheme
    if scheme in {"data", "about"}:
        return True
    if scheme == "blob":  # blob:<origin>/<uuid> belongs to the origin that made it
        return _same_origin(url[len("blob:"):], origin)
    return _same_origin(url, origin)


class RecordedContext(NamedTuple):
    context: BrowserContext
    record: BrowserRecord


# -- accessibility -----------------------------------------------------------------------------

@contextlib.contextmanager
def recorded_contexts(browser: Browser, live_server: LiveServer
                      ) -> Iterator[Callable[..., RecordedContext]]:
    """A factory of recorded contexts; on exit closes them and fails on any problem they saw."""
    made: list[RecordedContext] = []

    def factory(locale: str = "en-US", *, server: LiveServer | None = None,
                also: tuple[str, ...] = (), **options: Any) -> RecordedContext:
        origin = (server or live_server).url
        context = browser.new_context(base_url=origin, locale=locale, **options)
        record = BrowserRecord(origin=origin, also=also)
        record.attach(context)
        made.append(RecordedContext(context, record))
        return made[-1]

    yield factory
    for context, _ in made:
        context.close()  # also delivers any event still on its way
    problems = [problem for _, record in made for problem in record.problems()]
    assert not problems, "the browser saw:\n" + "\n".join(problems)


def axe_violations(page: Page, *, impacts: tuple[str, ...] = ("serious", "critical")
                   ) -> list[dict[str, Any]]:
    """axe-core's violations of the page's current document with one of `impacts`.

    axe is evaluated from its file by page.evaluate, which the page's CSP does not govern; an
    injected <script> tag would be inline script, refused by the CSP (and reported as a problem).
    """
    if not AXE_PATH.is_file():
        pytest.fail(f"axe-core is missing ({AXE_PATH.relative_to(ROOT)}): run scripts/test, "
                    "which installs it from the npm registry", pytrace=False)
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE_PATH.read_text(encoding="utf-8"))
    violations: list[dict[str, Any]] = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [v for v in violations if v.get("impact") in impacts]


def format_violations(violations: list[dict[str, Any]]) -> str:
    lines = []
    for v in violations:
        lines.append(f"[{v.get('impact')}] {v.get('id')}: {v.get('help')} ({v.get('helpUrl')})")
        for node in v.get("nodes", [])[:5]:
            target = " ".join(json.dumps(t) for t in node.get("target", []))
            summary = " ".join(str(node.get("failureSummary", "")).split())
            lines.append(f"    at {target}: {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page, what: str = "") -> None:
    """Fail with a readable list when axe finds a serious or critical violation."""
    violations = axe_violations(page)
    assert not violations, (f"axe found {len(violations)} serious/critical violation(s) on "
                            f"{what or page.url}:\n{format_violations(violations)}")


# -- screenshots -------------------------------------------------------------------------------

def shot(page: Page, name: str) -> Path:
    """Save a full-page PNG as <name>.png in SCREENSHOTS and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
