"""Fixtures of the browser tests: one live server and one Chromium for the session, a recorded
browser context per call, agents made with the real command line.

    def test_something(live_server, new_context, live_agent):
        agent = live_agent(admin=True, token=True)
        context, record = new_context(locale="fr-FR")
        page = context.new_page()
        page.goto("/login")            # relative to live_server.url
        assert_accessible(page)        # from browser.harness
        shot(page, "login-fr")

At the end of each test every context made by new_context is closed, and the test fails if any
of them saw a CSP report in the console, an uncaught page error, or a request to another origin
(module_context: the same, for contexts shared by a module's tests, checked at its end).

Tests that run in every engine take `new_driver` instead (browser/drivers.py): the test runs
once per engine (`engine` is "chromium", "firefox" or "webkit"), each engine's browser started
once for the session, against the live server over HTTPS (https_live_server).

    def test_something(new_driver, engine):
        driver = new_driver()          # a tab with cookies of its own, on https_live_server
        driver.goto("/")
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from harness import (
    LiveServer,
    RedisServer,
    ServerCertificate,
    ServeVault,
    make_certificate,
    private_redis,
)
from playwright.sync_api import Browser, sync_playwright

from browser.drivers import ENGINES, Driver, Engines, drivers_for
from browser.harness import (
    AGENT_PASSWORD,
    CHROMIUM,
    CHROMIUM_ARGS,
    GENEROUS_LIMITS,
    FakeHelpdesk,
    LiveAgent,
    RecordedContext,
    add_agent,
    recorded_contexts,
)


@pytest.fixture(scope="session")
def live_redis(redis_server: RedisServer) -> Iterator[str]:
    """A Redis of the live server's own: other tests flush the shared one between tests.

    With --redis-url (no private servers) it shares that one, in database 15, emptied first."""
    if redis_server.process is None:
        url = urlsplit(redis_server.url)._replace(path="/15").geturl()
        with redis.Redis.from_url(url) as client:
            client.flushdb()
        yield url
        return
    with private_redis("vault-live-redis-") as server:
        yield server.url


@pytest.fixture(scope="session")
def helpdesk() -> Iterator[FakeHelpdesk]:
    """The stand-in for Help Scout's pages, on a site of its own for the whole session."""
    fake = FakeHelpdesk()
    yield fake
    fake.close()


@pytest.fixture(scope="session")
def live_server(live_redis: str, helpdesk: FakeHelpdesk, serve_vault: ServeVault
                ) -> Iterator[LiveServer]:
    """The live vault (2 workers, 4 threads, the access log on); its Help Scout app may be framed
    by Help Scout and by the stand-in (as an operator rehearsing would set
    VAULT_HELPSCOUT_FRAME_ANCESTORS), and nothing else by anyone."""
    with serve_vault(live_redis, helpscout_frame_ancestors=(
            f"https://secure.helpscout.net {helpdesk.origin}"), **GENEROUS_LIMITS) as server:
        yield server


@pytest.fixture(scope="session")
def server_certificate(tmp_path_factory: pytest.TempPathFactory) -> ServerCertificate:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def https_live_server(live_redis: str, serve_vault: ServeVault,
                      server_certificate: ServerCertificate) -> Iterator[LiveServer]:
    """The live vault over HTTPS, as production is served (by its proxy), with a certificate
    the test made; its cookies are production's, `__Host-` and Secure, which WebKit keeps only
    over https. Same Redis as live_server: an agent made for one exists for the other."""
    with serve_vault(live_redis, tls=server_certificate, **GENEROUS_LIMITS) as server:
        yield server


ENGINE_VERSIONS = pytest.StashKey[dict[str, str]]()


@pytest.fixture(scope="session")
def engines(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Engines]:
    """Firefox and WebKit for the session, each started when a test first needs it."""
    started = Engines(logs=tmp_path_factory.mktemp("engines"))
    request.config.stash[ENGINE_VERSIONS] = started.versions
    yield started
    started.close()


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def new_driver(request: pytest.FixtureRequest, engine: str, engines: Engines,
               https_live_server: LiveServer) -> Iterator[Callable[..., Driver]]:
    """new_driver(*, base_url=https_live_server.url) -> a Driver of this test's engine: a tab
    in a context of its own. At the end every one is closed, and the test fails on what their
    records or WebKit's network dead end saw (browser/drivers.py)."""
    chromium = request.getfixturevalue("browser") if engine == "chromium" else None
    with drivers_for(engines.factory(engine, chromium), https_live_server.url,
                     engines.checked_sink(engine)) as factory:
        yield factory


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    versions = config.stash.get(ENGINE_VERSIONS, {})
    if versions:
        terminalreporter.write_line("browser engines: " + ", ".join(
            f"{name} {version}" for name, version in sorted(versions.items())))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/test (it installs Debian's chromium)",
                    pytrace=False)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Browser, live_server: LiveServer
                ) -> Iterator[Callable[..., RecordedContext]]:
    """new_context(locale="en-US", *, server=live_server, also=(), **context_options)
    -> (context, record); `also`: origins besides the server's that the test visits on purpose."""
    with recorded_contexts(browser, live_server) as factory:
        yield factory


@pytest.fixture(scope="module")
def module_context(browser: Browser, live_server: LiveServer
                   ) -> Iterator[Callable[..., RecordedContext]]:
    """new_context for a whole module (one page shared by many quick tests); checked at its end."""
    with recorded_contexts(browser, live_server) as factory:
        yield factory


_agent_numbers = itertools.count(1)


@pytest.fixture
def live_agent(live_server: LiveServer) -> Callable[..., LiveAgent]:
    """live_agent(email=<unique>, *, name="", admin=False, token=False, password=...) -> LiveAgent.

    The live server lives for the whole session, so the default e-mail is new on every call."""
    def factory(email: str = "", *, name: str = "", admin: bool = False, token: bool = False,
                password: str = AGENT_PASSWORD) -> LiveAgent:
        email = email or f"agent{next(_agent_numbers)}@example.com"
        return add_agent(live_server, email, password=password, name=name, admin=admin,
                         token=token)
    return factory
