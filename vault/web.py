"""HTTP plumbing shared by every blueprint: headers, errors, JSON bodies, who is calling.

One error handler renders every error: problem+json for the API, a short page for HTML. Every
response gets the security headers of PRODUCT.md; nothing about a secret is ever cacheable.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from vault.errors import (
    BadRequest,
    Forbidden,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    VaultError,
)
from vault.extension import ext
from vault.service import Principal

log = logging.getLogger("vault.http")
SESSION_COOKIE = "__Host-vault_session"
MAX_BODY = 64 * 1024
MAX_DEPTH = 20
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
COMMON_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
}


def is_api() -> bool:
    path = request.path
    return path.startswith(("/api/", "/integrations/")) or path in {"/healthz", "/readyz",
                                                                    "/metrics"}


# -- request bodies ---------------------------------------------------------------------------

def _depth(value: Any, limit: int) -> int:
    stack = [(value, 1)]
    deepest = 0
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)
    return deepest


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from raw bytes: 400 unless it is UTF-8, valid, an object, sanely deep,
    and free of lone surrogates (JSON escapes like \\ud800 are not UTF-8 text)."""
    try:
        value = json.loads(raw.decode("utf-8"))
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise BadRequest("The body is not valid UTF-8 JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("Send a JSON object.")
    if _depth(value, MAX_DEPTH) > MAX_DEPTH:
        raise BadRequest("The JSON is nested too deeply.")
    return value


def json_body(*, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object. 400 for anything else, 413 past 64 KiB."""
    raw = request.get_data(cache=True)
    if len(raw) > MAX_BODY:
        raise TooLarge("The request body is larger than 64 KiB.")
    if not raw.strip():
        if optional:
            return {}
        raise BadRequest("Send a JSON object.")
    return parse_json_object(raw)


# -- who is calling ----------------------------------------------------------------------------

def principal(*, required: bool = True) -> Principal | None:
    """The agent or helpdesk key behind this request (cached per request).

    Bearer tokens need nothing else; a session cookie needs the CSRF token on any method that
    can change state.
    """
    if "principal" in g:
        found: Principal | None = g.principal
    else:
        found = None
        accounts = ext().accounts
        header = request.headers.get("Authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("Use Authorization: Bearer <token>.")
            found = accounts.authenticate_bearer(token.strip())
            if found is None:
                raise Unauthenticated("This token is not valid (revoked, expired or mistyped).")
        else:
            cookie = request.cookies.get(SESSION_COOKIE)
            if cookie:
                found = accounts.authenticate_session(cookie)
                if found is not None and request.method not in {"GET", "HEAD", "OPTIONS"} \
                        and not accounts.csrf_ok(found, request.headers.get("X-CSRF-Token")):
                    raise Forbidden("Missing or wrong CSRF token (X-CSRF-Token).", reason="csrf")
        g.principal = found
    if found is None and required:
        raise Unauthenticated("Log in or send Authorization: Bearer <token>.")
    return found


def require_agent() -> Principal:
    who = principal()
    assert who is not None
    if not who.is_agent:
        raise Forbidden("This needs an agent account.")
    return who


def require_admin() -> Principal:
    who = require_agent()
    if not who.is_admin:
        raise Forbidden("This needs an admin.")
    return who


def require_admin_or_helpdesk() -> Principal:
    who = principal()
    assert who is not None
    if not (who.is_admin or who.is_helpdesk):
        raise Forbidden("This needs a helpdesk key or an admin.")
    return who


def client_address() -> str:
    return request.remote_addr or "unknown"


# -- responses ----------------------------------------------------------------------------------

def problem_response(error: VaultError) -> Response:
    body = error.problem()
    resp = Response(json.dumps(body), status=error.status,
                    mimetype="application/problem+json")
    if isinstance(error, RateLimited | Unavailable):
        resp.headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="vault"'
    return resp


def _html_error(error: VaultError) -> Response:
    """A page in the visitor's language, worded by status (the English detail is for APIs)."""
    try:
        from vault.pages import render
        resp = render("error.html", page="error", status=error.status, error_status=error.status,
                      error_reason=error.extra.get("reason", ""))
        resp.status_code = error.status
    except Exception:
        # The error page itself failed (a broken store behind the session lookup, say): a
        # plain page still says what happened rather than turning into a 500.
        from markupsafe import escape
        page = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(error.title)} · vault</title></head><body><main>"
                f"<h1>{escape(error.title)}</h1><p>{escape(error.detail)}</p></main></body></html>")
        resp = Response(page, status=error.status, mimetype="text/html")
    if isinstance(error, RateLimited | Unavailable):
        resp.headers["Retry-After"] = str(error.retry_after)
    return resp


def render_error(error: VaultError) -> Response:
    return problem_response(error) if is_api() else _html_error(error)


def _from_http(exc: HTTPException) -> VaultError:
    code = exc.code or 500
    mapping: dict[int, tuple[str, str]] = {
        400: ("Bad request", "The request could not be understood."),
        404: ("Not found", "There is nothing here."),
        405: ("Method not allowed", "This method is not allowed here."),
        413: ("Too large", "The request body is larger than 64 KiB."),
        415: ("Unsupported media type", "Send JSON."),
    }
    title, detail = mapping.get(code, (exc.name, "The request could not be handled."))
    err = VaultError(detail)
    err.status, err.title = code, title
    return err


def install(app: Flask) -> None:
    """Hooks and handlers for every blueprint."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        offered = request.headers.get("X-Request-Id", "")
        # A proxy's id is kept only when it is a plain token: it goes into logs and headers.
        g.request_id = offered if _REQUEST_ID.fullmatch(offered) else secrets.token_hex(8)

    @app.after_request
    def _headers(resp: Response) -> Response:
        headers = resp.headers
        for name, value in COMMON_HEADERS.items():
            headers.setdefault(name, value)
        if ext().config.production:
            headers.setdefault("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
        is_page = not is_api() and (resp.mimetype or "").startswith("text/html")
        headers.setdefault("Content-Security-Policy", PAGE_CSP if is_page else DATA_CSP)
        if resp.status_code == 204:
            headers.pop("Content-Type", None)
        # Static files are cacheable (versioned by content hash); everything else, a static
        # path's error page included, is not kept anywhere.
        if not request.path.startswith("/static/") or resp.status_code >= 400:
            headers["Cache-Control"] = "no-store"
            headers.setdefault("Pragma", "no-cache")
        headers["X-Request-Id"] = g.get("request_id", "")
        route = request.url_rule.rule if request.url_rule else "unmatched"
        metrics = ext().metrics
        metrics.requests.labels(route, request.method, str(resp.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - g.get("started",
                                                                          time.perf_counter()))
        return resp

    @app.errorhandler(VaultError)
    def _vault_error(error: VaultError) -> Response:
        if isinstance(error, Unavailable) and error.store_fault:
            ext().metrics.redis_errors.inc()
        return render_error(error)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        resp = render_error(_from_http(exc))
        valid = getattr(exc, "valid_methods", None)
        if exc.code == 405 and valid:
            resp.headers["Allow"] = ", ".join(sorted(valid))
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        import redis.exceptions as rexc
        if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | rexc.BusyLoadingError
                      | rexc.ReadOnlyError | rexc.ClusterDownError):
            # flask-limiter's own Redis client: same meaning as a store fault, fail closed.
            ext().metrics.redis_errors.inc()
            return render_error(Unavailable())
        log.error("unhandled error", exc_info=exc,
                  extra={"request_id": g.get("request_id", ""), "path": request.path})
        err = VaultError("Something went wrong on our side. It was logged.")
        return render_error(err)
