"""One way to drive the three engines customers use, for the tests that run in each of them.

    driver = new_driver()                # a tab with a cookie jar of its own, on the live server
    driver.goto("/")
    driver.fill("#f-ticket", "4711")
    driver.click("#share-form button[type=submit]")
    driver.wait_visible("#share-done")
    link = driver.value("#share-link")

- Chromium: Debian's chromium through Playwright, the session's own browser (conftest.py).
- Firefox: Debian's firefox-esr through puppeteer-core over WebDriver BiDi, in a node process
  (firefox.mjs beside this file) that takes one JSON command per line.
- WebKit: Debian's WebKitGTK (MiniBrowser) through its WebDriver (WebKitWebDriver) and
  Selenium, under an Xvfb display of its own.

Every browser is Debian's; nothing is downloaded. Each starts once per session, when a test
first asks for it. Nothing reaches the network beyond the test's own servers (loopback):
Firefox and WebKit send every other origin to a dead-end proxy of their own (NetworkSink), and
Chromium's flags (browser.harness.CHROMIUM_ARGS) turn its background traffic off. Chromium and
Firefox record each tab's console, page errors and requests (browser.harness.BrowserRecord),
and a test fails on a CSP report, a page error or a request to another origin. WebKitGTK's
WebDriver has no such events: there a test fails on anything WebKit's dead end was asked for
(MiniBrowser asks for nothing of its own), and CSP and script errors show up through what the
flows assert. Firefox's dead end is not checked: Firefox itself keeps asking it for Mozilla's
services (remote settings), which no page can tell apart.

Every JavaScript function given to `evaluate` and `wait_for` is the source of a function (sync
or async), called in the page with the arguments given after it; what it returns must be JSON.
"""

from __future__ import annotations

import abc
import contextlib
import json
import os
import queue
import select
import shutil
import socket
import subprocess
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from harness import ROOT
from playwright.sync_api import Browser, BrowserContext, Page
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait
from selenium.webdriver.webkitgtk.options import Options as WebKitGTKOptions
from selenium.webdriver.webkitgtk.service import Service as WebKitGTKService

from browser.harness import BrowserRecord, ConsoleEntry, RequestEntry

ENGINES = ("chromium", "firefox", "webkit")
FIREFOX = "/usr/bin/firefox-esr"
WEBKIT_DRIVER = "/usr/bin/WebKitWebDriver"
# scripts/test installs puppeteer-core there from the npm registry (pinned there).
PUPPETEER_DIR = ROOT / ".cache" / "puppeteer"
FIREFOX_BRIDGE = Path(__file__).with_name("firefox.mjs")
# Outside the tracked tree, whatever VAULT_SCREENSHOTS says: these are for looking at a run.
SHOTS = ROOT / ".cache" / "screenshots" / "engines"
VIEWPORT = (1280, 900)
TIMEOUT = 15.0  # seconds, for every wait

IS_VISIBLE = """(selector) => {
  const element = document.querySelector(selector);
  if (!element || element.getClientRects().length === 0) return false;
  return getComputedStyle(element).visibility !== 'hidden';
}"""
PAGE_LOADED_AWAY_FROM = """(path) =>
  location.pathname !== path && document.readyState === 'complete'"""


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str
    secure: bool
    http_only: bool
    same_site: str  # "Lax", "Strict", "None" or "" when the browser does not say


class Driver(abc.ABC):
    """One tab in a browser context of its own (its own cookies), relative to `base_url`."""

    engine: str

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def absolute(self, url: str) -> str:
        """A path ("/login") on the base URL; anything else as it is."""
        return self.base_url + url if url.startswith("/") else url

    # -- what each engine does its own way --------------------------------------------------

    @abc.abstractmethod
    def goto(self, url: str) -> None:
        """Open `url` (absolute, or a path on the base URL) and wait for its load event."""

    @abc.abstractmethod
    def fill(self, selector: str, value: str) -> None:
        """Replace the field's value with `value`, as typing or pasting it would."""

    @abc.abstractmethod
    def click(self, selector: str) -> None:
        """A real click on the element, once it is visible."""

    @abc.abstractmethod
    def evaluate(self, function: str, *args: Any) -> Any:
        """Call the JavaScript function (source) in the page; its (awaited) value."""

    @abc.abstractmethod
    def wait_for(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        """Wait until the JavaScript function returns something truthy, and return it; on a
        navigation it is asked again in the new page."""

    @abc.abstractmethod
    def set_viewport(self, width: int, height: int) -> None: ...

    @abc.abstractmethod
    def screenshot(self, name: str) -> Path:
        """A PNG of the page as <engine>-<name>.png in SHOTS (WebKit's: of the viewport, as
        its WebDriver takes no full-page picture)."""

    @abc.abstractmethod
    def cookies(self) -> list[Cookie]: ...

    @property
    @abc.abstractmethod
    def url(self) -> str: ...

    @abc.abstractmethod
    def close(self) -> list[str]:
        """Close the tab and its context: what its record shows wrong (CSP reports, page
        errors, requests to other origins), if the engine keeps one."""

    # -- built on the above, the same in every engine -----------------------------------------

    def wait_visible(self, selector: str, timeout: float = TIMEOUT) -> None:
        self.wait_for(IS_VISIBLE, selector, timeout=timeout)

    def is_visible(self, selector: str) -> bool:
        return bool(self.evaluate(IS_VISIBLE, selector))

    def wait_away_from(self, path: str, timeout: float = TIMEOUT) -> None:
        """Wait until a navigation has left `path` and the next page has loaded."""
        self.wait_for(PAGE_LOADED_AWAY_FROM, path, timeout=timeout)

    def text(self, selector: str) -> str:
        value = self.evaluate("(s) => document.querySelector(s)?.textContent ?? null", selector)
        assert value is not None, f"no {selector} on {self.url}"
        return str(value)

    def value(self, selector: str) -> str:
        value = self.evaluate("(s) => document.querySelector(s)?.value ?? null", selector)
        assert value is not None, f"no {selector} on {self.url}"
        return str(value)

    def count(self, selector: str) -> int:
        return int(self.evaluate("(s) => document.querySelectorAll(s).length", selector))

    def wait_text(self, selector: str, text: str, timeout: float = TIMEOUT) -> None:
        """Wait until the element's text contains `text`."""
        self.wait_for("(s, t) => (document.querySelector(s)?.textContent ?? '').includes(t)",
                      selector, text, timeout=timeout)

    def check(self, selector: str) -> None:
        """Tick a radio button or checkbox with a click (unless it is ticked already)."""
        if not self.evaluate("(s) => document.querySelector(s)?.checked === true", selector):
            self.click(selector)


def _shot_path(engine: str, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS / f"{engine}-{name}.png"


def _wrapped(function: str) -> str:
    """A Playwright page function that spreads an argument list over `function`."""
    return f"(args) => ({function})(...args)"


# -- Chromium: Playwright ------------------------------------------------------------------------

class ChromiumDriver(Driver):
    engine = "chromium"

    def __init__(self, browser: Browser, base_url: str) -> None:
        super().__init__(base_url)
        self.context: BrowserContext = browser.new_context(
            base_url=base_url, ignore_https_errors=True, locale="en-US",
            viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
        self.record = BrowserRecord(origin=base_url)
        self.record.attach(self.context)
        self.page: Page = self.context.new_page()

    def goto(self, url: str) -> None:
        self.page.goto(self.absolute(url))

    def fill(self, selector: str, value: str) -> None:
        self.page.fill(selector, value)

    def click(self, selector: str) -> None:
        self.page.click(selector)

    def evaluate(self, function: str, *args: Any) -> Any:
        return self.page.evaluate(_wrapped(function), list(args))

    def wait_for(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        handle = self.page.wait_for_function(_wrapped(function), arg=list(args),
                                             timeout=timeout * 1000)
        value = handle.json_value()
        handle.dispose()
        return value

    def set_viewport(self, width: int, height: int) -> None:
        self.page.set_viewport_size({"width": width, "height": height})

    def screenshot(self, name: str) -> Path:
        path = _shot_path(self.engine, name)
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def cookies(self) -> list[Cookie]:
        return [Cookie(name=c["name"], value=c["value"], secure=c["secure"],
                       http_only=c["httpOnly"], same_site=c["sameSite"])
                for c in self.context.cookies()]

    @property
    def url(self) -> str:
        return self.page.url

    def close(self) -> list[str]:
        self.context.close()  # also delivers any event still on its way
        return self.record.problems()


# -- Firefox: puppeteer-core over WebDriver BiDi, in node ----------------------------------------

class FirefoxBridge:
    """The node process of firefox.mjs: one Firefox, one JSON command at a time."""

    def __init__(self, proxy_port: int, log: Path) -> None:
        node = shutil.which("node")
        package = PUPPETEER_DIR / "node_modules" / "puppeteer-core" / "package.json"
        if node is None or not package.is_file() or not Path(FIREFOX).exists():
            pytest.fail("Firefox ESR, node or puppeteer-core is missing: run scripts/test (it "
                        "installs firefox-esr, and puppeteer-core into .cache/)", pytrace=False)
        self._log: IO[bytes] = log.open("ab")
        self.process = subprocess.Popen(
            [node, str(FIREFOX_BRIDGE), str(PUPPETEER_DIR), FIREFOX, str(proxy_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, cwd=str(ROOT),
            text=True, encoding="utf-8")
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._lock = threading.Lock()
        self._ids = 0
        self._reader = threading.Thread(target=self._read, daemon=True, name="firefox bridge")
        self._reader.start()
        ready = self._next(60.0)
        if not ready.get("ready"):
            raise RuntimeError(f"Firefox did not start: {ready}")
        self.version = str(ready["version"])

    def _read(self) -> None:
        assert self.process.stdout is not None
        with self.process.stdout:
            for line in self.process.stdout:
                self._answers.put(json.loads(line))
        self._answers.put(None)  # the process is gone

    def _next(self, timeout: float) -> dict[str, Any]:
        try:
            answer = self._answers.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"Firefox's bridge did not answer within {timeout} s (its log: "
                               f"{self._log.name})") from None
        if answer is None:
            raise RuntimeError(f"Firefox's bridge exited (its log: {self._log.name})")
        return answer

    def call(self, op: str, *, timeout: float = TIMEOUT + 15, **args: Any) -> Any:
        with self._lock:
            self._ids += 1
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps({"id": self._ids, "op": op, **args}) + "\n")
            self.process.stdin.flush()
            answer = self._next(timeout)
        assert answer["id"] == self._ids, answer
        if not answer["ok"]:
            raise AssertionError(f"Firefox: {op} failed: {answer['error']}")
        return answer["value"]

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()  # the bridge closes Firefox and exits
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self._reader.join(10)
        self._log.close()


class FirefoxDriver(Driver):
    engine = "firefox"

    def __init__(self, bridge: FirefoxBridge, base_url: str) -> None:
        super().__init__(base_url)
        self.bridge = bridge
        self.page = bridge.call("newPage", width=VIEWPORT[0], height=VIEWPORT[1])

    def _call(self, op: str, **args: Any) -> Any:
        return self.bridge.call(op, page=self.page, **args)

    def goto(self, url: str) -> None:
        self._call("goto", url=self.absolute(url))

    def fill(self, selector: str, value: str) -> None:
        self._call("fill", selector=selector, value=value)

    def click(self, selector: str) -> None:
        self._call("click", selector=selector)

    def evaluate(self, function: str, *args: Any) -> Any:
        return self._call("evaluate", source=function, args=list(args))

    def wait_for(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        return self.bridge.call("waitFor", page=self.page, source=function, args=list(args),
                                ms=timeout * 1000, timeout=timeout + 15)

    def set_viewport(self, width: int, height: int) -> None:
        self._call("viewport", width=width, height=height)

    def screenshot(self, name: str) -> Path:
        path = _shot_path(self.engine, name)
        self._call("screenshot", path=str(path))
        return path

    def cookies(self) -> list[Cookie]:
        return [Cookie(name=c["name"], value=c["value"], secure=c["secure"],
                       http_only=c["httpOnly"], same_site=c["sameSite"])
                for c in self._call("cookies")]

    @property
    def url(self) -> str:
        return str(self._call("url"))

    def close(self) -> list[str]:
        seen = self._call("close")
        record = BrowserRecord(origin=self.base_url)
        record.console += [ConsoleEntry(type=c["type"], text=c["text"], url=c["url"])
                           for c in seen["console"]]
        record.page_errors += seen["pageErrors"]
        record.requests += [RequestEntry(url=r["url"], method=r["method"], headers={},
                                         post_data=None) for r in seen["requests"]]
        return record.problems()


# -- WebKit: WebKitGTK's WebDriver through Selenium, under Xvfb ----------------------------------

class Xvfb:
    """An X display of the tests' own: Xvfb picks a free display number and writes it to a pipe
    once it accepts clients."""

    def __init__(self, log: Path) -> None:
        binary = shutil.which("Xvfb")
        if binary is None:
            pytest.fail("Xvfb is missing: run scripts/test (it installs xvfb)", pytrace=False)
        read, write = os.pipe()
        with log.open("ab") as out:
            self.process = subprocess.Popen(
                [binary, "-displayfd", str(write), "-screen", "0", "1600x1200x24",
                 "-nolisten", "tcp"], pass_fds=(write,), stdout=out, stderr=out)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            ready, _, _ = select.select([pipe], [], [], 30)
            number = pipe.readline().strip() if ready else b""
        if not number.isdigit():
            self.stop()
            raise RuntimeError(f"Xvfb did not start (its log: {log})")
        self.display = f":{number.decode()}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


class WebKit:
    """WebKitGTK for the session: one Xvfb, and WebDriver sessions (one MiniBrowser each),
    started as tests need them and handed out again once their cookies are gone."""

    def __init__(self, proxy_port: int, logs: Path) -> None:
        if not Path(WEBKIT_DRIVER).exists():
            pytest.fail(f"{WEBKIT_DRIVER} is missing: run scripts/test (it installs "
                        "webkit2gtk-driver)", pytrace=False)
        self.logs = logs
        self.proxy_port = proxy_port
        self.xvfb = Xvfb(logs / "xvfb.log")
        # MiniBrowser's toolbar keeps its window at least 447 px wide; GTK's user style sheet
        # lets the toolbar shrink, so that a page can have a phone's width (320 px).
        self.config_home = logs / "xdg"
        (self.config_home / "gtk-3.0").mkdir(parents=True, exist_ok=True)
        (self.config_home / "gtk-3.0" / "gtk.css").write_text(
            "toolbar, toolbar *, entry, button, label {\n"
            "  min-width: 0; min-height: 0; margin: 0; padding: 0; border-width: 0;"
            " font-size: 1px;\n}\n", encoding="utf-8")
        self.sessions: list[WebDriver] = []
        self.idle: list[WebDriver] = []
        self.version = ""

    def take(self) -> WebDriver:
        if self.idle:
            return self.idle.pop()
        options = WebKitGTKOptions()
        # The live server's certificate is one the test made (tests/harness.py).
        options.accept_insecure_certs = True
        dead_end = f"http://127.0.0.1:{self.proxy_port}"
        env = {
            **os.environ, "DISPLAY": self.xvfb.display, "XDG_CONFIG_HOME": str(self.config_home),
            # The pages in English, whatever this machine's locale (WebKitGTK says its
            # languages in Accept-Language).
            "LC_ALL": "en_US.UTF-8",
            # Every origin but loopback to the dead end, through GLib's proxy resolver (the
            # WebDriver proxy capability with a noProxy list crashes MiniBrowser 2.50 now and
            # then, in webkit_network_proxy_settings_new).
            "GIO_USE_PROXY_RESOLVER": "libproxy", "http_proxy": dead_end,
            "https_proxy": dead_end, "no_proxy": "127.0.0.1,localhost"}
        service = WebKitGTKService(
            executable_path=WEBKIT_DRIVER, env=env,
            log_output=str(self.logs / f"webkitwebdriver-{len(self.sessions) + 1}.log"))
        with warnings.catch_warnings():
            # Selenium's WebKitGTK class itself still passes its driver's address the way
            # Selenium deprecated (4.51): its warning, not ours.
            warnings.filterwarnings("ignore", "setting remote_server_addr in RemoteConnection",
                                    DeprecationWarning)
            session = webdriver.WebKitGTK(options=options, service=service)
        self.version = str(session.capabilities.get("browserVersion", ""))
        self.sessions.append(session)
        return session

    def give_back(self, session: WebDriver, origin: str) -> None:
        """Forget the session's cookies (a script-free document of the origin's host can see
        them all: every test server is on 127.0.0.1) and keep it for the next test."""
        session.get(origin + "/healthz")  # no page script left to set one again
        session.delete_all_cookies()
        if session.get_cookies():
            # WebKitGTK 2.50 now and then keeps a cookie through delete_all_cookies: such a
            # session is not handed to another test (the next one starts a fresh browser).
            self.sessions.remove(session)
            with contextlib.suppress(WebDriverException):
                session.quit()
            return
        session.get("about:blank")
        self.idle.append(session)

    def close(self) -> None:
        for session in self.sessions:
            with contextlib.suppress(WebDriverException):
                session.quit()
        self.xvfb.stop()


class WebKitDriver(Driver):
    engine = "webkit"

    def __init__(self, webkit: WebKit, base_url: str) -> None:
        super().__init__(base_url)
        self.webkit = webkit
        self.session = webkit.take()
        self.set_viewport(*VIEWPORT)

    def goto(self, url: str) -> None:
        self.session.get(self.absolute(url))

    def _element(self, selector: str) -> WebElement:
        self.wait_visible(selector)
        return self.session.find_element(By.CSS_SELECTOR, selector)

    def fill(self, selector: str, value: str) -> None:
        element = self._element(selector)
        element.clear()
        # WebKitWebDriver types what a keyboard has, not emoji beyond the BMP nor line breaks;
        # those go in as a paste would (Playwright's own fill sets the value the same way).
        if all(ord(c) < 0x10000 and c.isprintable() for c in value):
            element.send_keys(value)
        else:
            self.evaluate(PASTE, selector, value)

    def click(self, selector: str) -> None:
        element = self._element(selector)
        # WebDriver clicks where the element was when it looked: first let it come into view
        # and hold still for two painted frames (what Playwright calls stable), or now and then
        # the click lands on a page that is not yet taking input and is lost without a word.
        self.wait_for(SETTLED, selector)
        element.click()

    def evaluate(self, function: str, *args: Any) -> Any:
        answer = self.session.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            f"Promise.resolve().then(() => ({function})(...arguments[0])).then("
            "  (value) => done({ok: true, value: value === undefined ? null : value}),"
            "  (error) => done({ok: false, error: String((error && error.stack) || error)}));",
            list(args))
        if not answer["ok"]:
            raise AssertionError(f"WebKit: the page function failed: {answer['error']}")
        return answer["value"]

    def wait_for(self, function: str, *args: Any, timeout: float = TIMEOUT) -> Any:
        # Asked again until it holds; a navigation in between (the old document gone, the new
        # one not there yet) is one more time to ask.
        def holds(_: Any) -> Any:
            return self.evaluate(function, *args)

        return WebDriverWait(self.session, timeout, poll_frequency=0.05,
                             ignored_exceptions=(WebDriverException,)).until(holds)

    def set_viewport(self, width: int, height: int) -> None:
        # WebDriver sizes the window; its frame is what is left over around the viewport.
        self.session.set_window_size(width, height)
        inner_width, inner_height = self.evaluate("() => [innerWidth, innerHeight]")
        if (inner_width, inner_height) != (width, height):
            self.session.set_window_size(2 * width - inner_width, 2 * height - inner_height)

    def screenshot(self, name: str) -> Path:
        path = _shot_path(self.engine, name)
        self.session.save_screenshot(str(path))
        return path

    def cookies(self) -> list[Cookie]:
        return [Cookie(name=c["name"], value=c["value"], secure=bool(c.get("secure")),
                       http_only=bool(c.get("httpOnly")), same_site=str(c.get("sameSite", "")))
                for c in self.session.get_cookies()]

    @property
    def url(self) -> str:
        return str(self.session.current_url)

    def close(self) -> list[str]:
        self.webkit.give_back(self.session, self.base_url)
        return []  # WebKitGTK's WebDriver has no console or network events to check


SETTLED = """async (selector) => {
  const element = document.querySelector(selector);
  if (!element) return false;
  element.scrollIntoView({block: 'center', inline: 'center'});
  const box = () => JSON.stringify(element.getBoundingClientRect());
  const before = box();
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  return box() === before;
}"""
PASTE = """(selector, value) => {
  const field = document.querySelector(selector);
  field.focus();
  field.value = value;
  field.dispatchEvent(new Event('input', {bubbles: true}));
  field.dispatchEvent(new Event('change', {bubbles: true}));
}"""


# -- the dead end for everything but loopback ----------------------------------------------------

class NetworkSink:
    """A proxy that forwards nothing: Firefox and WebKit send every origin but loopback here,
    and it notes each request's first line (`CONNECT host:443 ...`) and refuses it."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        threading.Thread(target=self._serve, daemon=True, name="network sink").start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(5)
                with contextlib.suppress(OSError):
                    first = conn.recv(4096).split(b"\r\n", 1)[0]
                    self.seen.append(first.decode(errors="replace"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")

    def close(self) -> None:
        self.server.close()


# -- the session's engines -----------------------------------------------------------------------

@dataclass
class Engines:
    """Each engine's browser, started when a test first needs it and kept for the session."""

    logs: Path
    sinks: dict[str, NetworkSink] = field(default_factory=lambda: {
        "firefox": NetworkSink(), "webkit": NetworkSink()})
    versions: dict[str, str] = field(default_factory=dict)
    _firefox: FirefoxBridge | None = None
    _webkit: WebKit | None = None

    def factory(self, engine: str, chromium: Browser | None = None) -> Callable[[str], Driver]:
        """A function base_url -> a new Driver of `engine` (Chromium needs the session's
        Playwright browser)."""
        if engine == "chromium":
            assert chromium is not None
            self.versions["chromium"] = chromium.version
            return lambda base_url: ChromiumDriver(chromium, base_url)
        if engine == "firefox":
            if self._firefox is None:
                self._firefox = FirefoxBridge(self.sinks["firefox"].port,
                                              self.logs / "firefox.log")
                self.versions["firefox"] = self._firefox.version.removeprefix("firefox/")
            bridge = self._firefox
            return lambda base_url: FirefoxDriver(bridge, base_url)
        if engine == "webkit":
            if self._webkit is None:
                self._webkit = WebKit(self.sinks["webkit"].port, self.logs)
            webkit = self._webkit

            def make(base_url: str) -> Driver:
                driver = WebKitDriver(webkit, base_url)
                self.versions["webkit"] = webkit.version
                return driver
            return make
        raise ValueError(f"no engine {engine!r}")

    def checked_sink(self, engine: str) -> NetworkSink | None:
        """The dead end a test of `engine` must leave untouched (WebKit's), if any."""
        return self.sinks["webkit"] if engine == "webkit" else None

    def close(self) -> None:
        if self._firefox is not None:
            self._firefox.close()
        if self._webkit is not None:
            self._webkit.close()
        for sink in self.sinks.values():
            sink.close()


@contextlib.contextmanager
def drivers_for(make: Callable[[str], Driver], base_url: str, sink: NetworkSink | None
                ) -> Iterator[Callable[..., Driver]]:
    """A factory of drivers on `base_url` (another with `base_url=`); on exit closes them and
    fails on anything their records or `sink` saw."""
    made: list[Driver] = []
    before = len(sink.seen) if sink is not None else 0

    def new_driver(*, base_url: str = base_url) -> Driver:
        made.append(make(base_url))
        return made[-1]

    yield new_driver
    problems = [problem for driver in made for problem in driver.close()]
    if sink is not None:
        problems += [f"request beyond the test's servers: {line}" for line in sink.seen[before:]]
    assert not problems, "the browser saw:\n" + "\n".join(problems)
