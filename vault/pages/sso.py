"""Sign-in through the team's identity provider: the two browser steps (vault.sso does the
protocol, Accounts the session).

`GET /login/oidc` keeps the sign-in's `nonce`, PKCE verifier and `next` in Redis under the
digest of a fresh `state` (ten minutes, good once), sets a short cookie that binds it to this
browser, and sends the browser (303) to the provider. `GET /login/oidc/callback` takes that
record back (deleted as it is read, so a replayed callback finds nothing), checks that the same
browser came back, and only then looks at the provider's answer: an error, or a code that
vault exchanges for an ID token. A refusal is a page with a 4xx, nobody logged in, and a
`login.failed` audit entry with the reason. The access log never holds a query string, so the
code and the state never reach a log.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from flask import Response, g, redirect, request

from vault.crypto.tokens import constant_time_equals, token_digest
from vault.errors import NotFound, SignInRefused
from vault.extension import VaultExtension, ext
from vault.pages import bp, render, safe_next
from vault.sso import CALLBACK_PATH, ProviderUnavailable
from vault.web import client_address

log = logging.getLogger("vault.sso")
SIGN_IN_TTL = 600  # seconds from the button to the callback
_PROVIDER_ERROR = re.compile(r"[a-z_]{1,40}")


def _provider(e: VaultExtension) -> Any:
    if e.sso is None:
        raise NotFound("Sign-in through an identity provider is not set up here.")
    return e.sso


def _unavailable(e: VaultExtension, exc: ProviderUnavailable) -> Response:
    # What failed, in the message itself: the log keeps an allow-list of extra fields, and
    # `why` names an endpoint and an error class, never a code, token or state.
    log.warning("identity provider unavailable: %s", exc.why)
    resp = render("agent/sso_refused.html", page="sso", status=503, reason="unavailable",
                  password_form=e.accounts.login_form_for)
    resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


@bp.get("/login/oidc")
def sso_start() -> Response:
    e = ext()
    provider = _provider(e)
    e.check_limit("login-address", client_address())
    state, nonce = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    verifier, browser = secrets.token_urlsafe(48), secrets.token_urlsafe(32)
    try:
        url = provider.authorization_url(state=state, nonce=nonce, verifier=verifier)
    except ProviderUnavailable as exc:
        return _unavailable(e, exc)
    record = {"browser": token_digest(browser), "nonce": nonce, "verifier": verifier,
              "next": safe_next(request.args.get("next"))}
    e.accounts.keep_sign_in(state, record, SIGN_IN_TTL * 1000)
    resp = redirect(url, 303)
    # Lax: the provider sends the browser back with a top-level GET, which carries it.
    e.cookies.set(resp, e.cookies.sso, browser, max_age=SIGN_IN_TTL)
    return resp  # type: ignore[return-value]


def _signed_in(e: VaultExtension, address: str) -> Response:
    """The callback's checks in order; SignInRefused (not audited yet) or a redirect."""
    provider = _provider(e)
    state = request.args.get("state", "")
    if not state:
        raise SignInRefused("state-missing", 400)
    record = e.accounts.take_sign_in(state)
    if record is None:
        raise SignInRefused("state-unknown", 400)  # forged, replayed or older than 10 minutes
    try:
        bound, nonce, verifier, target = (record["browser"], record["nonce"],
                                          record["verifier"], record["next"])
    except (KeyError, TypeError):
        raise SignInRefused("state-unknown", 400) from None  # a record vault did not write
    browser = request.cookies.get(e.cookies.sso, "")
    if not constant_time_equals(token_digest(browser), str(bound)):
        raise SignInRefused("state-other-browser", 400)  # a sign-in started elsewhere
    error = request.args.get("error")
    if error is not None:
        raise SignInRefused("provider-" + (error if _PROVIDER_ERROR.fullmatch(error)
                                           else "error"), 403)
    code = request.args.get("code", "")
    if not code:
        raise SignInRefused("code-missing", 400)
    identity = provider.identity(code=code, verifier=str(verifier), nonce=str(nonce),
                                 iss=request.args.get("iss"))
    cookie, _ = e.accounts.sso_login(identity.email, identity.name, address=address)
    # Signing in again replaces the browser's session, as the password and passkey logins do.
    previous = request.cookies.get(e.cookies.session)
    if previous:
        e.accounts.logout(previous)
    resp = redirect(safe_next(str(target)), 303)
    e.cookies.set(resp, e.cookies.session, cookie, max_age=e.config.session_max)
    return resp  # type: ignore[return-value]


@bp.get(CALLBACK_PATH)
def sso_callback() -> Response:
    e = ext()
    _provider(e)
    # Its query holds the code and the state: no link on the page may repeat it (the
    # language switch goes to the login page instead).
    g.page_url_endpoint = "pages.login"
    address = client_address()
    e.check_limit("login-address", address)
    try:
        resp = _signed_in(e, address)
    except SignInRefused as exc:
        if not exc.audited:
            e.accounts.sign_in_refused(exc.reason, email=exc.email, address=address)
        resp = render("agent/sso_refused.html", page="sso", status=exc.status,
                      reason=exc.reason, password_form=e.accounts.login_form_for)
    except ProviderUnavailable as exc:
        resp = _unavailable(e, exc)
    e.cookies.delete(resp, e.cookies.sso)
    return resp


__all__ = ["sso_callback", "sso_start"]
