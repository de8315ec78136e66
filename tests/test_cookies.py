"""Cookie names and flags: production's `__Host-` and Secure everywhere, except the embedded demo
served over plain http on a loopback address, where WebKit would keep no Secure cookie."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from vault import create_app, i18n, web
from vault.config import Config
from vault.cookies import LOOPBACK_DEMO, PRODUCTION, for_config

PASSWORD = "correct horse battery staple"


def set_cookie(rv: Any) -> tuple[str, str, set[str]]:
    """(name, value, attributes) of the response's one Set-Cookie header."""
    [header] = rv.headers.getlist("Set-Cookie")
    first, *attributes = (part.strip() for part in header.split(";"))
    name, _, value = first.partition("=")
    return name, value, set(attributes)


def log_in(app: Any) -> Any:
    ext = app.extensions["vault"]
    ext.accounts.add_agent("demo@example.com", PASSWORD, name="Demo")
    return app.test_client().post("/api/v1/session",
                                  json={"email": "demo@example.com", "password": PASSWORD})


@pytest.fixture
def demo_app() -> Iterator[Any]:
    """create_app({"embedded": True, ...}): what `vault serve` builds with nothing configured."""
    made: list[Any] = []

    def build(**settings: Any) -> Any:
        app = create_app({"embedded": True, "cheap_passwords": True, **settings})
        made.append(app)
        return app
    yield build
    for app in made:
        app.extensions["vault"].close()


def test_production_cookies_are_host_prefixed_secure_httponly_and_lax(client: Any,
                                                                       agent: Any) -> None:
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": agent.password})
    name, _, flags = set_cookie(rv)
    assert name == "__Host-vault_session"
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= flags
    assert not any(flag.startswith("Domain=") for flag in flags)  # __Host- forbids it

    name, value, flags = set_cookie(client.get("/login?lang=fr"))
    assert (name, value) == ("__Host-vault_lang", "fr")
    assert {"Secure", "HttpOnly", "SameSite=Lax", "Path=/"} <= flags


def test_the_names_agree_with_what_the_rest_of_vault_reads() -> None:
    assert PRODUCTION.session == web.SESSION_COOKIE
    assert PRODUCTION.lang == i18n.LANG_COOKIE
    names = ("session", "lang", "sso", "passkey")
    assert all(getattr(PRODUCTION, name).startswith("__Host-vault_") for name in names)
    assert [getattr(LOOPBACK_DEMO, name) for name in names] == [
        getattr(PRODUCTION, name).removeprefix("__Host-") for name in names]


def test_the_loopback_http_demo_drops_secure_and_the_prefix_and_nothing_else(
        demo_app: Any) -> None:
    app = demo_app()  # its base URL: http://127.0.0.1:8000, as `vault serve` binds it
    rv = log_in(app)
    assert rv.status_code == 200
    name, value, flags = set_cookie(rv)
    assert name == "vault_session"
    assert "Secure" not in flags
    assert {"HttpOnly", "SameSite=Lax", "Path=/"} <= flags

    # Production's name means nothing here: one name per mode.
    other = app.test_client()
    other.set_cookie("__Host-vault_session", value)
    assert other.get("/dashboard").status_code == 303

    browser = app.test_client()
    browser.set_cookie("vault_session", value)
    assert browser.get("/dashboard").status_code == 200
    out = browser.delete("/api/v1/session",
                         headers={"X-CSRF-Token": rv.get_json()["csrf_token"]})
    assert out.status_code == 204
    name, value, flags = set_cookie(out)
    assert (name, value) == ("vault_session", "") and "Secure" not in flags

    name, value, flags = set_cookie(browser.get("/login?lang=fr"))
    assert (name, value, "Secure" in flags) == ("vault_lang", "fr", False)
    # And the pages read the choice back under the demo's name, over the browser's languages.
    browser.set_cookie("vault_lang", "ja")
    page = browser.get("/login", headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert '<html lang="ja" dir="ltr">' in page


@pytest.mark.parametrize("base_url", ["https://127.0.0.1:8000", "http://vault.example.com",
                                      "http://10.0.0.5:8000", "http://0.0.0.0:8000"])
def test_a_demo_on_https_or_another_address_keeps_production_cookies(demo_app: Any,
                                                                      base_url: str) -> None:
    name, _, flags = set_cookie(log_in(demo_app(base_url=base_url)))
    assert name == "__Host-vault_session" and "Secure" in flags


@pytest.mark.parametrize(("base_url", "expected"), [
    ("http://127.0.0.1:8000", LOOPBACK_DEMO),
    ("http://127.9.9.9:8000", LOOPBACK_DEMO),
    ("http://[::1]:8000", LOOPBACK_DEMO),
    ("http://localhost:8000", LOOPBACK_DEMO),
    ("http://LOCALHOST:8000", LOOPBACK_DEMO),
    ("https://127.0.0.1:8000", PRODUCTION),
    ("https://localhost", PRODUCTION),
    ("http://192.168.1.20:8000", PRODUCTION),
    ("http://[::ffff:127.0.0.1]:8000", PRODUCTION),  # mapped, not the loopback interface
    ("http://127.0.0.1.example.com", PRODUCTION),
    ("http://localhost.example.com", PRODUCTION),
    ("http://127.0.0.1@evil.example", PRODUCTION),
    ("http://vault.example.com", PRODUCTION),
    ("ftp://127.0.0.1", PRODUCTION),
    ("", PRODUCTION),
])
def test_only_an_http_loopback_base_url_gives_the_embedded_demo_its_cookies(
        base_url: str, expected: Any) -> None:
    assert for_config(Config(env="development", embedded=True, base_url=base_url)) == expected


@pytest.mark.parametrize("config", [
    Config(env="development", redis_url="redis://127.0.0.1:6379/0",
           base_url="http://127.0.0.1:8000"),  # development on a real Redis: no demo
    Config(env="production", embedded=True, base_url="http://127.0.0.1:8000"),
    Config(base_url="http://127.0.0.1:8000"),
])
def test_anything_but_the_embedded_demo_gets_production_cookies(config: Config) -> None:
    assert for_config(config) == PRODUCTION
