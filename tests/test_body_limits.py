"""Body limits hold whatever the framing: over 64 KiB is a 413 on every route that reads a body,
whether the client declares a Content-Length or streams the body in chunks; a chunked body is
never cut at the limit and read as if it were whole."""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from harness import RedisServer, gunicorn_env, start_gunicorn, stop_server
from werkzeug.test import EnvironBuilder, run_wsgi_app

from tests.helpers import sealed, share
from tests.test_pages import login, request_for
from vault.web import MAX_BODY, SESSION_COOKIE

LIMIT = MAX_BODY
TICKET = "4242"


def json_of_size(size: int, prefix: dict[str, Any] | None = None) -> bytes:
    """A JSON object of exactly `size` bytes: `prefix`'s members, then a padding string."""
    head = json.dumps({**(prefix or {}), "pad": ""}).encode()
    return head[:-2] + b"x" * (size - len(head)) + b'"}'


@pytest.fixture
def world(make_app: Callable[..., Any], make_agent: Callable[..., Any]) -> Iterator[Any]:
    app = make_app()
    client = app.test_client()
    admin = make_agent("admin@example.com", admin=True, name="Admin")
    csrf = login(client, admin)
    request_id = request_for(client, admin, TICKET)
    shared = share(client, TICKET)
    yield {"app": app, "admin": admin, "csrf": csrf, "request_id": request_id,
           "secret_id": shared["id"], "cookie": client.get_cookie(SESSION_COOKIE).value}


def routes(w: dict[str, Any]) -> list[tuple[str, str, dict[str, str], str]]:
    """(method, path, headers, content type) of every route that reads a body: all but the two
    DELETEs (a secret's, with its manage token in a header, and the session's), which read
    none. The session's logout comes last, as the session would end with it."""
    bearer = {"Authorization": f"Bearer {w['admin'].token}"}
    session = {"Cookie": f"{SESSION_COOKIE}={w['cookie']}", "X-CSRF-Token": w["csrf"]}
    form = "application/x-www-form-urlencoded"
    sid, rid = w["secret_id"], w["request_id"]
    return [
        ("POST", "/api/v1/requests", bearer, "application/json"),
        ("POST", f"/api/v1/requests/{rid}/secret", {}, "application/json"),
        ("POST", "/api/v1/secrets", {}, "application/json"),
        ("POST", f"/api/v1/secrets/{sid}/reveal", bearer, "application/json"),
        ("POST", f"/api/v1/secrets/{sid}/ack", bearer, "application/json"),
        ("PUT", f"/api/v1/tickets/{TICKET}/assignee", bearer, "application/json"),
        ("POST", f"/api/v1/tickets/{TICKET}/close", bearer, "application/json"),
        ("POST", f"/api/v1/tickets/{TICKET}/reopen", bearer, "application/json"),
        ("POST", "/api/v1/session", {}, "application/json"),
        ("POST", "/api/v1/session", session, "application/json"),
        ("POST", "/api/v1/passkeys/sign-in/options", {}, "application/json"),
        ("POST", "/api/v1/passkeys/sign-in", {}, "application/json"),
        ("POST", "/api/v1/passkeys/options", session, "application/json"),
        ("POST", "/api/v1/passkeys", session, "application/json"),
        ("POST", "/integrations/helpscout/sidebar", {}, "application/json"),
        ("POST", "/api/v1/webhooks/helpscout", {}, "application/json"),
        ("POST", "/api/v1/webhooks/standard", {}, "application/json"),
        ("POST", "/admin/agents", session, form),
        ("POST", "/admin/keys", session, form),
        ("POST", "/account", session, form),
        ("POST", f"/tickets/{TICKET}", session, form),
        ("POST", "/logout", session, form),
    ]


def test_the_route_list_covers_every_route_that_changes_state(world: Any) -> None:
    listed = {(m, re.sub(rf"/{TICKET}(?=/|$)", "/<t>",
                         re.sub(r"/[A-Za-z0-9_-]{28}(?=/|$)", "/<id>", p)))
              for m, p, _, _ in routes(world)}
    served = set()
    for rule in world["app"].url_map.iter_rules():
        for method in (rule.methods or set()) - {"GET", "HEAD", "OPTIONS"}:
            path = re.sub(r"<(request_id|secret_id)>", "<id>", rule.rule).replace("<ticket>", "<t>")
            served.add((method, path))
    assert served - listed == {("DELETE", "/api/v1/secrets/<id>"), ("DELETE", "/api/v1/session")}


def send(app: Any, method: str, path: str, headers: dict[str, str], content_type: str,
         body: bytes, *, chunked: bool) -> tuple[int, bytes]:
    """Through the WSGI app as gunicorn hands a request over: a chunked body arrives decoded,
    with no CONTENT_LENGTH, `Transfer-Encoding` in the headers and `wsgi.input_terminated`."""
    environ = EnvironBuilder(path=path, method=method, headers=headers,
                             content_type=content_type, data=body).get_environ()
    if chunked:
        del environ["CONTENT_LENGTH"]
        environ["HTTP_TRANSFER_ENCODING"] = "chunked"
        environ["wsgi.input"] = io.BytesIO(body)
        environ["wsgi.input_terminated"] = True
    out, status, _ = run_wsgi_app(app, environ, buffered=True)
    return int(status[:3]), b"".join(out)


def over_the_limit(content_type: str, w: dict[str, Any]) -> bytes:
    if content_type.endswith("json"):
        return json_of_size(LIMIT + 1, {"ticket": TICKET})
    text = f"csrf_token={w['csrf']}&name=x&pad="
    return (text + "x" * (LIMIT + 1 - len(text))).encode()


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_over_the_limit_is_413_on_every_route_that_takes_a_body(world: Any,
                                                                 chunked: bool) -> None:
    for method, path, headers, content_type in routes(world):
        body = over_the_limit(content_type, world)
        status, answer = send(world["app"], method, path, headers, content_type, body,
                              chunked=chunked)
        assert status == 413, (method, path, status, answer[:200])


@pytest.mark.parametrize("extra", [1, 2, 1000, 36 * 1024, 10 * LIMIT])
def test_a_chunked_json_object_followed_by_junk_is_413_not_its_prefix(world: Any,
                                                                      extra: int) -> None:
    envelope, _ = sealed(TICKET)
    whole = json_of_size(LIMIT, {"ticket": TICKET, "kind": "wordpress", "envelope": envelope})
    assert len(whole) == LIMIT
    for junk in (b"x", b" ", b"}", b"\x00"):
        status, _ = send(world["app"], "POST", "/api/v1/secrets", {}, "application/json",
                         whole + junk * extra, chunked=True)
        assert status == 413, (extra, junk)


def test_a_chunked_body_at_the_limit_is_read_whole(world: Any) -> None:
    envelope, _ = sealed(TICKET)
    for size in (LIMIT, LIMIT - 1):
        body = json_of_size(size, {"ticket": TICKET, "kind": "wordpress", "envelope": envelope})
        status, answer = send(world["app"], "POST", "/api/v1/secrets", {}, "application/json",
                              body, chunked=True)
        assert status == 201, answer[:200]


# -- the same through a real gunicorn, framed by hand ---------------------------------------------

def raw_request(url: str, method: str, path: str, body: bytes, *, chunk: int | None) -> int:
    parts = urlsplit(url)
    head = (f"{method} {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            "Content-Type: application/json\r\nConnection: close\r\n")
    if chunk is None:
        payload = head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    else:
        framed = b"".join(f"{len(body[i:i + chunk]):x}\r\n".encode() + body[i:i + chunk]
                          + b"\r\n" for i in range(0, len(body), chunk))
        payload = head.encode() + b"Transfer-Encoding: chunked\r\n\r\n" + framed + b"0\r\n\r\n"
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as conn:
        # The server may answer and close before reading everything: its answer counts.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(payload)
        answer = b""
        while b"\r\n" not in answer:
            data = conn.recv(4096)
            if not data:
                break
            answer += data
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert match is not None, answer[:200]
    return int(match.group(1))


def test_gunicorn_refuses_a_long_chunked_body_and_accepts_a_whole_one(
        redis_server: RedisServer, tmp_path: Path) -> None:
    server = start_gunicorn(gunicorn_env(redis_server.url), tmp_path, workers=1, threads=2)
    try:
        envelope, _ = sealed(TICKET)
        whole = json_of_size(LIMIT, {"ticket": TICKET, "kind": "wordpress", "envelope": envelope})
        for chunk in (1000, 4096, LIMIT):
            assert raw_request(server.url, "POST", "/api/v1/secrets", whole + b" " * 10,
                               chunk=chunk) == 413
            assert raw_request(server.url, "POST", "/api/v1/secrets",
                               json_of_size(100 * 1024, {"ticket": TICKET}), chunk=chunk) == 413
        assert raw_request(server.url, "POST", "/api/v1/secrets", whole, chunk=4096) == 201
        assert raw_request(server.url, "POST", "/api/v1/secrets", whole + b" ", chunk=None) == 413
        assert "Traceback" not in server.log()
    finally:
        stop_server(server)
