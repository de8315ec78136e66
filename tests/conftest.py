"""The fixtures of the suite (and its pytest hooks): a real redis-server on a free port, apps
configured by mapping, a settable clock, agents, live servers. The plain helpers they are built
on live in harness.py, which test modules import (`from harness import base_config`).

`--redis-url` (or VAULT_TEST_REDIS_URL) points the suite at a server you run instead; either way
the suite talks to a real Redis and cannot silently skip it: without redis-server it fails.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

# The harness's own asserts (a process that did not start, a wait that ran out) explain
# themselves as the fixtures' did when they lived here.
pytest.register_assert_rewrite("harness", "helpers")

import redis  # noqa: E402
from harness import (  # noqa: E402
    Agent,
    Clock,
    Counting,
    LiveServer,
    RedisServer,
    ServeVault,
    base_config,
    instrument,
    private_redis,
    start_live_server,
)

from vault import create_app  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--redis-url", default=os.environ.get("VAULT_TEST_REDIS_URL", ""),
                     help="use this Redis instead of starting a private redis-server")


# A test that installs packages runs pip, whose own deadline is 600 s (a cold cache, a slow
# index): it gets more than that, so pip's own error is what a failure shows.
INSTALLS_TIMEOUT = 900


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("installs") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(INSTALLS_TIMEOUT))


@pytest.fixture(scope="session")
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    url = request.config.getoption("--redis-url")
    if url:
        yield RedisServer(url=url, port=0, process=None, workdir="")
        return
    with private_redis() as server:
        yield server


@pytest.fixture
def redis_client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_server.client()
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def clock() -> Clock:
    return Clock(time.time())


@pytest.fixture
def make_app(redis_client: redis.Redis, redis_server: RedisServer, clock: Clock
             ) -> Iterator[Callable[..., Any]]:
    apps: list[Any] = []

    def factory(**overrides: Any) -> Any:
        overrides.setdefault("clock", clock)
        app = create_app(base_config(redis_server.url, **overrides))
        app.testing = True
        apps.append(app)
        return app
    yield factory
    for app in apps:
        app.extensions["vault"].close()


@pytest.fixture
def app(make_app: Callable[..., Any]) -> Any:
    return make_app()


@pytest.fixture
def client(app: Any) -> Any:
    return app.test_client()


@pytest.fixture
def ext(app: Any) -> Any:
    return app.extensions["vault"]


@pytest.fixture
def make_agent(ext: Any) -> Callable[..., Agent]:
    def factory(email: str = "rocketeer@example.com", *, admin: bool = False,
                name: str = "") -> Agent:
        password = "correct horse battery staple"
        ext.accounts.add_agent(email, password, name=name or email.split("@")[0], admin=admin)
        token, _ = ext.accounts.create_token(email)
        return Agent(email=email, token=token, password=password)
    return factory


@pytest.fixture
def agent(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent("alice@example.com", name="Alice")


@pytest.fixture
def admin(make_agent: Callable[..., Agent]) -> Agent:
    return make_agent("admin@example.com", admin=True, name="Admin")


@pytest.fixture
def helpdesk(ext: Any) -> dict[str, str]:
    key = ext.accounts.create_api_key("helpscout")
    return {"Authorization": f"Bearer {key}"}


# -- Highly available Redis (tests/redis_ha.py): a real Cluster and a real Sentinel setup ---------

@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[Any]:
    """A real three-master Redis Cluster on free local ports, for the whole session."""
    from redis_ha import cluster

    with cluster() as c:
        yield c


@pytest.fixture(scope="module")
def redis_sentinel() -> Iterator[Any]:
    """One primary, two replicas, three sentinels; per module, since its tests kill nodes."""
    from redis_ha import sentinel_setup

    with sentinel_setup() as s:
        yield s


# -- Round trips: counted on the client side (tests/test_roundtrips.py, test_sidebar.py) ---------


@pytest.fixture
def counted(app: Any) -> Any:
    ext = app.extensions["vault"]
    ext.store.load_scripts()
    instrument(ext.store)  # the only client: rate limits are counted by the store too

    class Counter:
        def measure(self, call: Any) -> tuple[Any, int]:
            Counting.sends = 0
            result = call()
            return result, Counting.sends

    return Counter()


# -- Live servers: gunicorn serving vault (the races, the browser tests) --------------------------

@pytest.fixture(scope="session")
def serve_vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeVault]:
    """serve_vault(redis_url, *, port=None, workers=2, threads=4, access_log=True,
    extra_args=(), **settings) -> a context manager: a real gunicorn vault (harness
    start_live_server), each in a folder of its own, stopped when the block ends.

    Session-wide so that a fixture of any scope (a module's race server, the browser tests'
    session server) or a test itself starts its server the same way; a server a failed setup
    left running is stopped at the end of the session."""
    running: list[LiveServer] = []

    @contextlib.contextmanager
    def serve(redis_url: str, **options: Any) -> Iterator[LiveServer]:
        server = start_live_server(redis_url, tmp_path_factory.mktemp("vault-live"), **options)
        running.append(server)
        try:
            yield server
        finally:
            server.stop()
            running.remove(server)

    yield serve
    for server in running:
        server.stop()
