"""The server-rendered pages: customer, agent and admin (docs/api.md, "Pages").

Views only read state and render it; every state change goes through the JSON API from the page
scripts (which hold the keys) or through a CSRF-checked form post to one of these views.
A GET never changes anything: link-preview bots and mail scanners open links.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlencode, urlsplit

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask_babel import format_datetime

from vault import i18n
from vault.errors import Forbidden, VaultError
from vault.extension import ext
from vault.principal import Principal
from vault.web import cookies

bp = Blueprint("pages", __name__)
F = TypeVar("F")

STATIC = Path(__file__).resolve().parent.parent / "static"
# What a path keeps unquoted in `here()`: RFC 3986 path characters, never "?" or "#".
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = "!$'()*,/:;?@"


@cache
def _static_version(filename: str) -> str:
    try:
        return hashlib.sha256((STATIC / filename).read_bytes()).hexdigest()[:12]
    except OSError:
        return "missing"


def static_url(filename: str) -> str:
    """A static file's URL versioned by its content hash (cached for a year by the browser)."""
    return url_for("static", filename=filename, v=_static_version(filename))


def static_is_current(filename: str, version: str) -> bool:
    return version == _static_version(filename)


def when(value: str | None) -> str:
    """An ISO time from the service, in the page's language (UTC; the page script localises)."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return str(format_datetime(moment, "medium")) + " UTC"


def safe_next(value: str | None, default: str = "/dashboard") -> str:
    """A same-site path to go to after login: never another origin (no open redirect), never a
    fragment (a link's `#key` is the browser's to keep), never a control character (which
    browsers strip, and which no header may carry)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value \
            or "#" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value) \
            or len(value) > 2000:
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def here() -> str:
    """This request's path and query as a same-site target for `next`: the path re-quoted, so
    that a decoded `%23` or `%3F` in it stays part of the path."""
    query = request.query_string.decode("latin-1")
    return quote(request.path, safe=_PATH_SAFE) + ("?" + query if query else "")


def page_url(**changes: str | None) -> str:
    """This page's own URL with query parameters changed (`None` removes one).

    The path comes from the matched route (never the raw request path); the query is encoded
    here as data. Nothing from the client is ever passed to `url_for` as a keyword: there a
    name like `_external`, `_anchor` or `endpoint` would be an instruction, not a value.
    """
    query: list[tuple[str, str]] = []
    if "page_url_endpoint" in g:  # a page whose own URL must not be repeated (the callback)
        base = url_for(g.page_url_endpoint)
    elif request.endpoint is None or request.url_rule is None:
        base = url_for("pages.share")  # an unmatched path goes to the start page
    else:
        base = url_for(request.endpoint, **(request.view_args or {}))
        query = [(k, v) for k, v in request.args.items(multi=True) if k not in changes]
    query += [(k, v) for k, v in changes.items() if v is not None]
    # Encoded as url_for encodes a query (werkzeug's set of characters left as they are).
    return base + ("?" + urlencode(query, safe=_QUERY_SAFE) if query else "")


def viewer() -> Principal | None:
    """The agent logged in with the session cookie, if any (pages ignore bearer tokens)."""
    if "viewer" not in g:
        # The session cookie alone: a form post carries its CSRF token in a field, which
        # check_form_csrf() verifies, not in the X-CSRF-Token header the JSON API wants.
        cookie = request.cookies.get(cookies().session)
        found = ext().accounts.authenticate_session(cookie) if cookie else None
        g.viewer = found if found is not None and found.is_agent else None
    result: Principal | None = g.viewer
    return result


def agent_page(view: F) -> F:
    """Only for a logged-in agent; anyone else goes to the login page and comes back."""
    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if viewer() is None:
            return redirect(url_for("pages.login", next=here()), 303)
        return view(*args, **kwargs)  # type: ignore[operator]
    return wrapper  # type: ignore[return-value]


def admin_page(view: F) -> F:
    @wraps(view)  # type: ignore[arg-type]
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        who = viewer()
        if who is None:
            return redirect(url_for("pages.login", next=here()), 303)
        if not who.is_admin:
            raise Forbidden("This page is for admins.")
        return view(*args, **kwargs)  # type: ignore[operator]
    return wrapper  # type: ignore[return-value]


def check_form_csrf() -> Principal:
    """The logged-in agent behind a form post, with its CSRF field checked in constant time."""
    who = viewer()
    if who is None:
        raise Forbidden("Your session has ended. Log in again.", reason="session")
    if not ext().accounts.csrf_ok(who, request.form.get("csrf_token")):
        raise Forbidden("Missing or wrong CSRF token. Reload the page and try again.",
                        reason="csrf")
    return who


def render(template: str, *, page: str, status: int = 200, **context: Any) -> Response:
    who = viewer()
    html = render_template(template, page=page, viewer=who, csrf=who.csrf if who else "",
                           messages=i18n.script_messages(), lang=i18n.page_language(),
                           dir=i18n.text_direction(),
                           **context)
    return Response(html, status=status, mimetype="text/html")


def error_page(error: VaultError) -> Response:
    """An error as a page in the visitor's language, worded by status (the English detail is
    for APIs); vault.web's error handlers call it for every HTML error."""
    resp = render("error.html", page="error", status=error.status, error_status=error.status,
                  error_reason=error.extra.get("reason", ""))
    resp.status_code = error.status
    return resp


@bp.app_context_processor
def _helpers() -> dict[str, Any]:
    return {"static_url": static_url, "when": when, "languages": i18n.LANGUAGE_NAMES,
            "page_url": page_url}


@bp.before_app_request
def _language_switch() -> Any:
    """`?lang=fr` remembers the choice and reloads the same page without the parameter.

    A 303 to a URL without a fragment keeps the browser's fragment, so a link's key survives.
    """
    # The cheap tests first, on the environ (one context lookup, not three): this runs before
    # every request, the API's too.
    environ = request.environ
    if environ.get("REQUEST_METHOD") not in {"GET", "HEAD"} or not environ.get("QUERY_STRING") \
            or ("/" + environ.get("PATH_INFO", "").lstrip("/")).startswith(
                ("/api/", "/static/", "/integrations/")):
        return None
    chosen = i18n.requested_language()
    if chosen is None:
        return None
    # Built from the matched route, not from the raw path: "/%09/evil.example/?lang=fr" must not
    # become a redirect to "//evil.example/". An unmatched path goes to the start page.
    target = page_url(lang=None)
    resp = redirect(target, 303)
    names = cookies()
    names.set(resp, names.lang, chosen, max_age=365 * 86400)
    return resp


def register(app: Any) -> None:
    from vault.pages import admin, agent, customer, dashboard, helpscout, sso  # noqa: F401  (routes)
    app.register_blueprint(bp)


__all__ = ["admin_page", "agent_page", "bp", "check_form_csrf", "error_page", "render",
           "safe_next", "static_is_current", "static_url", "viewer", "when"]
