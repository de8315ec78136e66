"""Fuzzing of every GET route outside the JSON API: the pages, anonymous, as an agent and as an
admin, with hostile query names and values, odd `Host` and `Accept-Language` headers and junk
cookies. The API has its own run against the OpenAPI document (test_fuzz_api.py).

What must hold, whatever the request: never a 5xx, never a traceback (in the answer or the log),
and a `Location`, when there is one, is a path on vault's own origin without a fragment (a
link's `#key` belongs to the browser: a redirect that carries a fragment replaces it).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.test import EnvironBuilder, run_wsgi_app
from werkzeug.wrappers import Response

from tests.helpers import share
from tests.test_pages import fill, login, request_for
from vault.web import SESSION_COOKIE

# Names that mean something to url_for, Flask or werkzeug, or that are a view's own argument.
HOSTILE_NAMES = ["endpoint", "_method", "_external", "_scheme", "_anchor", "_host", "values",
                 "filename", "v", "secret_id", "request_id", "ticket", "id", "lang", "next",
                 "state", "code", "error", "page", "Host", "__proto__", "", " ", "a b", "é",
                 "%00", "\x00", "[]", "a[]", "x" * 300]
HOSTILE_VALUES = ["1", "", "0", "POST", "https", "x", "javascript:alert(1)", "//evil.example",
                  "https://evil.example/", "/\\evil.example", "#key", "a#b", "%23x", "\r\nX: y",
                  "\x00", "\u202e", "fr", "de-DE", "xx", "../../etc/passwd", "%", "%%32%30",
                  "<script>", "{{7*7}}", "1e999", "-1", "x" * 3000]
ODD_HOSTS = ["vault.test", "evil.example", "evil.example:443", "", " ", "[::1]", "[::1]:x",
             "a b", "a\x00b", "localhost:99999", "x" * 300, "évil.example", "127.0.0.1:8000"]
ODD_LANGUAGES = ["", "*", "fr", "fr;q=x", "zz-ZZ", "en;q=0, fr;q=0.9", "x" * 500, "de,,,",
                 ";q=1", "ja-JP-u-ca-japanese", "\x00"]
LOCATION_SAFE = re.compile(r"/(?![/\\])[^#\s\\]*")


@pytest.fixture
def world(make_app: Callable[..., Any], make_agent: Callable[..., Any]
          ) -> Iterator[dict[str, Any]]:
    """An app with something behind every page: a ticket with a request, a filled one and a
    share; clients for nobody, an agent and an admin, each with its session cookie."""
    app = make_app()
    nobody = app.test_client()
    agent, admin = make_agent("alice@example.com", name="Alice"), make_agent(
        "admin@example.com", admin=True, name="Admin")
    as_agent, as_admin = app.test_client(), app.test_client()
    login(as_agent, agent)
    login(as_admin, admin)
    open_request = request_for(nobody, agent, "4242")
    filled = fill(nobody, request_for(nobody, agent, "4242"))
    shared = share(nobody, "4242")
    args = {"ticket": "4242", "request_id": open_request, "secret_id": filled["secret_id"],
            "filename": "css/app.css"}
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or ()) or rule.rule.startswith("/api/"):
            continue
        path = rule.rule
        for name in rule.arguments:
            path = path.replace(f"<{name}>", quote(args[name])).replace(
                f"<path:{name}>", args[name])
        paths.append(path)
    # A shared secret's pages too, and an id of the right shape that is nobody's.
    paths += [f"/s/{shared['id']}", f"/m/{shared['id']}", "/r/" + "A" * 28, "/nowhere"]
    yield {"app": app, "paths": sorted(paths),
           "clients": {"nobody": nobody, "agent": as_agent, "admin": as_admin}}


@pytest.fixture(autouse=True)
def _vault_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """vault's loggers do not propagate to the root logger (vault.logs): hand their records to
    caplog too, so that an error logged while answering fails `check`."""
    logger = logging.getLogger("vault")
    logger.addHandler(caplog.handler)
    yield
    logger.removeHandler(caplog.handler)


def check(rv: Any, caplog: pytest.LogCaptureFixture, what: str) -> None:
    assert rv.status_code < 500, what
    body = rv.get_data()
    assert b"Traceback" not in body, what
    location = rv.headers.get("Location")
    if location is not None:
        assert LOCATION_SAFE.fullmatch(location), (what, location)
        parts = urlsplit(location)
        assert not parts.scheme and not parts.netloc and not parts.fragment, (what, location)
    unhandled = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert not unhandled, (what, [r.getMessage() for r in unhandled])


def get(client: Any, path: str, query: list[tuple[str, str]], *, host: str | None = None,
        language: str | None = None, cookies: dict[str, str] | None = None) -> Any:
    """GET through the WSGI app itself (the test client's own URL handling chokes on some of
    these hosts), with the client's session cookie and headers as a server hands them over:
    the bytes, decoded as Latin-1."""
    def wsgi(text: str) -> str:
        return text.encode("utf-8", "surrogatepass").decode("latin-1")

    environ = EnvironBuilder(path=path, base_url="http://vault.test").get_environ()
    environ["QUERY_STRING"] = urlencode(query)
    jar = dict(cookies or {})
    session = client.get_cookie(SESSION_COOKIE)
    if session is not None:
        jar.setdefault(SESSION_COOKIE, session.value)
    if jar:
        environ["HTTP_COOKIE"] = wsgi("; ".join(f"{k}={v}" for k, v in jar.items()))
    if host is not None:
        environ["HTTP_HOST"] = wsgi(host)
    if language is not None:
        environ["HTTP_ACCEPT_LANGUAGE"] = wsgi(language)
    body, status, headers = run_wsgi_app(client.application, environ, buffered=True)
    return Response(body, status, headers)


@pytest.mark.parametrize("who", ["nobody", "agent", "admin"])
def test_every_hostile_query_name_on_every_page(world: dict[str, Any], who: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    client = world["clients"][who]
    for path in world["paths"]:
        for name in HOSTILE_NAMES:
            for query in ([(name, "1")], [("lang", "fr"), (name, "")]):
                rv = get(client, path, query)
                check(rv, caplog, f"{who} GET {path}?{urlencode(query)}")


@pytest.mark.parametrize("who", ["nobody", "agent"])
def test_the_language_switch_keeps_the_path_and_never_adds_a_host_or_fragment(
        world: dict[str, Any], who: str, caplog: pytest.LogCaptureFixture) -> None:
    client = world["clients"][who]
    request_id = world["paths"][[p.startswith("/r/") for p in world["paths"]].index(True)]
    for extra in [("_anchor", "X"), ("_external", "1"), ("_scheme", "https"),
                  ("_host", "evil.example"), ("endpoint", "pages.login")]:
        rv = get(client, request_id, [("lang", "fr"), extra], host="evil.example")
        check(rv, caplog, f"{request_id}?lang=fr&{extra[0]}")
        assert rv.status_code == 303
        # The other parameters stay as data, in the query, never as instructions.
        assert rv.headers["Location"] == f"{request_id}?{urlencode([extra])}"


def test_a_redirect_to_the_login_keeps_an_encoded_hash_in_the_path(
        world: dict[str, Any], caplog: pytest.LogCaptureFixture) -> None:
    rv = world["clients"]["nobody"].get("/tickets/a%23b?x=%23y")
    check(rv, caplog, "/tickets/a%23b")
    assert rv.status_code == 303
    target = rv.headers["Location"]
    assert target == "/login?next=/tickets/a%2523b?x%3D%2523y"
    # The path's "#" stays encoded in `next`, so the login page sends the agent back to the
    # same path, with no fragment of vault's making.
    login_page = world["clients"]["nobody"].get(target)
    assert login_page.status_code == 200
    assert b'data-next="/tickets/a%23b?x=%23y"' in login_page.get_data()


def test_a_next_with_a_fragment_or_another_origin_falls_back_to_the_dashboard(
        world: dict[str, Any]) -> None:
    for hostile in ["/dashboard#X", "//evil.example/", "/\\evil.example", "https://evil.example",
                    "/\t/evil.example", "dashboard", "/x\r\ny"]:
        page = world["clients"]["nobody"].get("/login", query_string={"next": hostile})
        assert page.status_code == 200
        assert b'data-next="/dashboard"' in page.get_data(), hostile


pair = st.tuples(st.one_of(st.sampled_from(HOSTILE_NAMES), st.text(max_size=40)),
                 st.one_of(st.sampled_from(HOSTILE_VALUES), st.text(max_size=80)))


@settings(max_examples=300, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(data=st.data())
def test_random_requests_to_pages_never_fail(world: dict[str, Any], data: Any,
                                             caplog: pytest.LogCaptureFixture) -> None:
    who = data.draw(st.sampled_from(["nobody", "agent", "admin"]))
    path = data.draw(st.sampled_from(world["paths"]))
    query = data.draw(st.lists(pair, max_size=5))
    host = data.draw(st.one_of(st.none(), st.sampled_from(ODD_HOSTS)))
    language = data.draw(st.one_of(st.none(), st.sampled_from(ODD_LANGUAGES),
                                   st.text(max_size=30)))
    cookies = data.draw(st.dictionaries(
        st.sampled_from(["__Host-vault_session", "__Host-vault_lang", "vault_sso", "x"]),
        st.sampled_from(["", "fr", "zz", "v1.abc", "x" * 200, '"quoted"', "%00"]), max_size=3))
    caplog.clear()
    rv = get(world["clients"][who], path, query, host=host, language=language,
             cookies=cookies)
    check(rv, caplog, f"{who} GET {path}?{urlencode(query)} host={host!r}")
