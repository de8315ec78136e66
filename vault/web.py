"""HTTP plumbing shared by every blueprint: headers, errors, JSON bodies, who is calling.

One error handler renders every error: problem+json for the API, a short page for HTML. Every
response gets the security headers of docs/api.md; nothing about a secret is ever cacheable.
"""

from __future__ import annotations

import io
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import HTTPException

from vault import i18n
from vault.cookies import PRODUCTION, Cookies
from vault.crypto.tokens import AGENT_TOKEN, SESSION, is_token, token_digest
from vault.errors import (
    LOG_IN,
    TOKEN_INVALID,
    BadRequest,
    Forbidden,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    VaultError,
)
from vault.extension import ext
from vault.metrics import HTTP_METHODS, HTTP_STATUSES, OTHER, UNMATCHED
from vault.principal import Principal
from vault.storage import NO_GATE, Gate

log = logging.getLogger("vault.http")
# Production's name of the session cookie; a request's own is cookies().session.
SESSION_COOKIE = PRODUCTION.session
MAX_BODY = 64 * 1024
MAX_DEPTH = 20
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})  # no CSRF token needed

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


class JsonProvider(DefaultJSONProvider):
    """Flask's JSON (`jsonify`, `get_json`) with the same bytes out, its encoder built once.

    Flask's provider builds a new JSONEncoder for every answer (its options are keyword
    arguments to `json.dumps`) and reaches the app through context proxies, on every create and
    reveal (what that cost: bench/README.md, "Numbers behind code comments"). Same output:
    sorted keys, compact separators, ASCII, Flask's `default` for dates and the like, a
    trailing newline, `application/json`.
    """

    def __init__(self, app: Flask) -> None:
        super().__init__(app)
        self._encode = json.JSONEncoder(
            default=self.default, ensure_ascii=self.ensure_ascii, sort_keys=self.sort_keys,
            separators=(",", ":")).encode

    def response(self, *args: Any, **kwargs: Any) -> Any:  # Flask types it as werkzeug's
        if self.compact is False or (self.compact is None and self._app.debug):
            return super().response(*args, **kwargs)  # indented, as Flask does when debugging
        # Flask's private argument reading, as jsonify's (pyproject.toml bounds Flask below 3.2:
        # were it renamed or changed, every JSON answer would fail).
        body = self._encode(self._prepare_response_obj(args, kwargs)) + "\n"
        return self._app.response_class(body, mimetype=self.mimetype)


def is_api() -> bool:
    return _api_path(request.path)


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


def _holds_a_container(value: dict[str, Any]) -> bool:
    # json.loads makes no other containers than dicts and lists.
    return any(type(item) is dict or type(item) is list for item in value.values())


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """A JSON object from raw bytes: 400 unless it is UTF-8, valid, an object, sanely deep,
    and free of lone surrogates (JSON escapes like \\ud800 are not UTF-8 text)."""
    try:
        value = json.loads(raw.decode("utf-8"))
        # A lone surrogate can only come from a \u escape (UTF-8 cannot encode one).
        if b"\\u" in raw:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        raise BadRequest("The body is not valid UTF-8 JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest("Send a JSON object.")
    # Nesting needs containers: an object with none among its values (every create and fill
    # body) is one level deep, and a body with few brackets cannot be too deep either.
    if _holds_a_container(value) and raw.count(b"{") + raw.count(b"[") > MAX_DEPTH \
            and _depth(value, MAX_DEPTH) > MAX_DEPTH:
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
        kind, value = _credential()
        if kind == "malformed":
            raise Unauthenticated("Use Authorization: Bearer <token>.")
        if kind == "bearer":
            found = accounts.authenticate_bearer(value)
            if found is None:
                raise Unauthenticated(TOKEN_INVALID)
        else:
            cookie = value
            if cookie:
                found = accounts.authenticate_session(cookie)
                if found is not None and request.method not in SAFE_METHODS \
                        and not accounts.csrf_ok(found, request.headers.get("X-CSRF-Token")):
                    raise Forbidden("Missing or wrong CSRF token (X-CSRF-Token).", reason="csrf")
        g.principal = found
    if found is None and required:
        raise Unauthenticated(LOG_IN)
    return found


def _credential() -> tuple[str, str]:
    """What the request presents: ("bearer", token), ("malformed", "") for an Authorization
    header that is not `Bearer <token>`, or ("cookie", the session cookie or "")."""
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        return ("bearer", token) if scheme.lower() == "bearer" and token else ("malformed", "")
    return "cookie", request.cookies.get(cookies().session, "")


def gate(limit: str = "", identity: str = "", *, agent: bool = False) -> Principal | Gate:
    """What the request's step checks first, in its own round trip (vault.storage.Gate): with
    `agent`, the caller's agent token or web session (its CSRF token checked here, without
    Redis); and the named rate limit, counted for `identity` ("" with `agent`: the agent's
    e-mail).

    A caller whose credential cannot be checked that way (none, a helpdesk key, something that
    is no token, a cookie without its CSRF token) is checked here first, by `principal` and the
    limit's own round trip, so it gets the answer it always got: then the agent, if any."""
    e = ext()
    limits = e.limits[limit] if limit else ""
    if not agent:
        return Gate(limits=limits, identity=identity)
    kind, value = _credential()
    if kind == "bearer" and is_token(value, AGENT_TOKEN):
        return Gate(auth="token", digest=token_digest(value), limits=limits, identity=identity)
    if kind == "cookie" and is_token(value, SESSION):
        csrf = None if request.method in SAFE_METHODS else request.headers.get("X-CSRF-Token", "")
        session = e.accounts.session_gate(value, csrf=csrf, limits=limits, identity=identity)
        if session is not None:
            return session
    who = require_agent()
    if limit:
        e.check_limit(limit, identity or who.email)
    return who


def gated(who: Principal | Gate) -> Gate:
    """The gate left for the step (none when `gate` checked everything already)."""
    return who if isinstance(who, Gate) else NO_GATE


def gated_json(who: Principal | Gate, *, optional: bool = False) -> dict[str, Any]:
    """`json_body`, its errors coming after the gate's own (Vault.gate_first)."""
    with ext().vault.gate_first(gated(who)):
        return json_body(optional=optional)


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


def require_recent_sign_in() -> None:
    """Forbidden (`reason` `reauth`) unless the caller's web session was signed in within
    VAULT_REAUTH_WINDOW (Accounts.require_recent_sign_in): a bearer token never was."""
    kind, value = _credential()
    ext().accounts.require_recent_sign_in(value if kind == "cookie" else None)


def session_digest() -> str:
    """The digest of the request's session cookie ("" without one): what a passkey registration
    is bound to."""
    kind, value = _credential()
    return token_digest(value) if kind == "cookie" and is_token(value, SESSION) else ""


def cookies() -> Cookies:
    """The names and flags of the cookies this app sets and reads (vault.cookies)."""
    return ext().cookies


def client_address() -> str:
    return request.remote_addr or "unknown"


# -- responses ----------------------------------------------------------------------------------

def problem_response(error: VaultError) -> Response:
    body = error.problem()
    body["title"] = i18n.problem_title(error.title)
    resp = Response(json.dumps(body), status=error.status,
                    mimetype="application/problem+json")
    resp.headers["Content-Language"] = i18n.page_language()
    if isinstance(error, RateLimited | Unavailable):
        resp.headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="vault"'
    return resp


def _html_error(error: VaultError, page: Callable[[VaultError], Response]) -> Response:
    """`page` renders the error in the visitor's language (the pages' own, given to `install`:
    this module imports no view)."""
    try:
        resp = page(error)
    except Exception:
        # The error page itself failed (a broken store behind the session lookup, say): a
        # plain page still says what happened rather than turning into a 500.
        from markupsafe import escape
        html = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                f"<title>{escape(error.title)} · vault</title></head><body><main>"
                f"<h1>{escape(error.title)}</h1><p>{escape(error.detail)}</p></main></body></html>")
        resp = Response(html, status=error.status, mimetype="text/html")
    if isinstance(error, RateLimited | Unavailable):
        resp.headers["Retry-After"] = str(error.retry_after)
    return resp


def render_error(error: VaultError, page: Callable[[VaultError], Response]) -> Response:
    return problem_response(error) if is_api() else _html_error(error, page)


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


class Plumbing:
    """The WSGI layer around the app: every response's header set, its request id, its metrics.

    It works on the plain header list that goes to the server, with the headers precomputed
    once: what used to be an after_request hook of a dozen header lookups and two metric label
    lookups is now one pass over the two or three headers a view set, and cached metric
    children. The rules are docs/api.md's ("Response headers"): a header a view set itself
    is kept (its CSP, say), except `Cache-Control`, which is `no-store` on everything but a
    static file served fine; a 204 carries no `Content-Type`; every response carries the
    `X-Request-Id` that the logs name (a proxy's own id is kept when it is a plain token).
    """

    def __init__(self, app: Any, *, production: bool, metrics: Any,
                 static_is_current: Callable[[str, str], bool]) -> None:
        self.app = app
        self.metrics = metrics
        self.static_is_current = static_is_current
        common = list(COMMON_HEADERS.items())
        if production:
            common.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
        # (name, lower-case name, value) of each default, for a page and for anything else.
        self.defaults = {
            is_page: [(n, n.lower(), v) for n, v in
                      [*common, ("Content-Security-Policy", PAGE_CSP if is_page else DATA_CSP)]]
            for is_page in (True, False)}
        self._requests: dict[tuple[str, str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        started = time.perf_counter()
        if "HTTP_TRANSFER_ENCODING" in environ and not environ.get("CONTENT_LENGTH"):
            _bound_streamed_body(environ)
        offered = environ.get("HTTP_X_REQUEST_ID", "")
        # A proxy's id is kept only when it is a plain token: it goes into logs and headers.
        request_id = offered if offered and _REQUEST_ID.fullmatch(offered) \
            else secrets.token_hex(8)
        environ["vault.request_id"] = request_id

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            self._finish(environ, status, headers, request_id, started)
            return start_response(status, headers, exc_info)

        return self.app(environ, start)

    def _finish(self, environ: dict[str, Any], status: str, headers: list[tuple[str, str]],
                request_id: str, started: float) -> None:
        code = int(status[:3])
        path = "/" + environ.get("PATH_INFO", "").lstrip("/")
        present, content_type = set(), ""
        for name, value in headers:
            low = name.lower()
            present.add(low)
            if low == "content-type":
                content_type = value
        is_page = not _api_path(path) and content_type.startswith("text/html")
        if code == 204 and content_type:
            headers[:] = [h for h in headers if h[0].lower() != "content-type"]
        flask_request = environ.get("werkzeug.request")
        # Static files are cacheable for a year when the URL names their current version (a
        # hash of their content), revalidated otherwise; everything else, a static path's error
        # page included, is not kept anywhere.
        static = path.startswith("/static/")
        if not static or code >= 400 or code == 200:
            if "cache-control" in present:
                headers[:] = [h for h in headers if h[0].lower() != "cache-control"]
            if not static or code >= 400:
                headers.append(("Cache-Control", "no-store"))
                if "pragma" not in present:
                    headers.append(("Pragma", "no-cache"))
            else:
                version = flask_request.args.get("v", "") if flask_request is not None else ""
                current = self.static_is_current(path[len("/static/"):], version)
                headers.append(("Cache-Control", "public, max-age=31536000, immutable"
                                if current else "no-cache"))
        for name, low, value in self.defaults[is_page]:
            if low not in present:
                headers.append((name, value))
        if "x-request-id" in present:
            headers[:] = [h for h in headers if h[0].lower() != "x-request-id"]
        headers.append(("X-Request-Id", request_id))
        # Labels from closed sets only (vault.metrics): the route is one of the app's rules, and
        # a method or status outside the known ones is OTHER, so the cache below and the series
        # stay as few as the app's routes allow, whatever a client sends.
        rule = getattr(flask_request, "url_rule", None)
        route = rule.rule if rule is not None else UNMATCHED
        method = environ.get("REQUEST_METHOD", "")
        if method not in HTTP_METHODS:
            method = method.upper()  # as the app (werkzeug) read it: "get" was served as GET
            if method not in HTTP_METHODS:
                method = OTHER
        code_label = status[:3]
        key = (route, method, code_label if code_label in HTTP_STATUSES else OTHER)
        counter = self._requests.get(key)
        if counter is None:
            counter = self._requests[key] = self.metrics.requests.labels(*key)
        counter.inc()
        latency = self._latency.get(route)
        if latency is None:
            latency = self._latency[route] = self.metrics.latency.labels(route)
        latency.observe(time.perf_counter() - started)


def _bound_streamed_body(environ: dict[str, Any]) -> None:
    """A body without Content-Length (chunked) becomes one with it, so that every reader sees
    one rule: werkzeug cuts such a stream at the size limit without a word (a 64 KiB prefix
    of a longer body would be read as the whole body), while a declared length over the limit
    is refused with 413 wherever the body is read (API, webhooks, session, form posts)."""
    stream, chunks, size = environ["wsgi.input"], [], 0
    while size <= MAX_BODY:
        chunk = stream.read(MAX_BODY + 1 - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    # Past the limit, what was read stands for the whole: its length is what refuses it.
    environ["wsgi.input"] = io.BytesIO(b"".join(chunks))
    environ["CONTENT_LENGTH"] = str(size)
    del environ["HTTP_TRANSFER_ENCODING"]  # else werkzeug goes on ignoring the length


def _api_path(path: str) -> bool:
    return path.startswith(("/api/", "/integrations/")) or path in {"/healthz", "/readyz",
                                                                    "/metrics"}


def request_id() -> str:
    """The id of the request being handled (the one its response and logs carry)."""
    return str(request.environ.get("vault.request_id", ""))


def note_error(error: VaultError) -> None:
    """What every error answered counts: a fault of the store is a Redis error on /metrics.
    For a view that renders its own error page (the Help Scout app)."""
    if isinstance(error, Unavailable) and error.store_fault:
        ext().metrics.redis_errors.inc()


def install(app: Flask, *, error_page: Callable[[VaultError], Response],
            static_is_current: Callable[[str, str], bool]) -> None:
    """The WSGI plumbing and the error handlers for every blueprint. The pages own what this
    layer below them needs of them, and hand it over here: `error_page` renders an error as a
    page, `static_is_current` says whether a static file's `?v=` names its current version."""
    app.json = JsonProvider(app)
    e = app.extensions["vault"]
    app.wsgi_app = Plumbing(app.wsgi_app, production=e.config.production,  # type: ignore[method-assign]
                            metrics=e.metrics, static_is_current=static_is_current)

    @app.errorhandler(VaultError)
    def _vault_error(error: VaultError) -> Response:
        note_error(error)
        return render_error(error, error_page)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        resp = render_error(_from_http(exc), error_page)
        valid = getattr(exc, "valid_methods", None)
        if exc.code == 405 and valid:
            resp.headers["Allow"] = ", ".join(sorted(valid))
        return resp

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        import redis.exceptions as rexc
        if isinstance(exc, rexc.ConnectionError | rexc.TimeoutError | rexc.BusyLoadingError
                      | rexc.ReadOnlyError | rexc.ClusterDownError):
            # A Redis fault that escaped the store's translation: a store fault, fail closed.
            ext().metrics.redis_errors.inc()
            return render_error(Unavailable(), error_page)
        log.error("unhandled error", exc_info=exc,
                  extra={"request_id": request_id(), "path": request.path})
        err = VaultError("Something went wrong on our side. It was logged.")
        return render_error(err, error_page)
