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
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from harness import LiveServer, RedisServer, ServeVault, private_redis
from playwright.sync_api import Browser, sync_playwright

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
