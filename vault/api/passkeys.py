"""Passkey JSON views: sign in with a passkey, and register one (vault.passkeys does the rest).

Each ceremony is two calls, options then answer. The options call gives the browser a short
cookie (`__Host-vault_pk`, random; vault.cookies) whose digest the challenge is bound to, so
that only the browser that asked can answer it; the answer's call reads it back.
"""

from __future__ import annotations

from flask import Response, jsonify, request

from vault.api import bp
from vault.api.routes import created, session_body
from vault.errors import BadRequest
from vault.extension import ext
from vault.passkeys import BROWSER_NONCE, CHALLENGE_TTL, new_browser_nonce
from vault.web import (
    client_address,
    cookies,
    json_body,
    require_agent,
    require_recent_sign_in,
    session_digest,
)


def _browser() -> str:
    """This browser's ceremony nonce: the one it holds, or a new one. Kept across ceremonies
    (several may be pending: the login page's passkey autofill and its button)."""
    held = request.cookies.get(cookies().passkey, "")
    return held if BROWSER_NONCE.fullmatch(held) else new_browser_nonce()


def _options(body: dict[str, object], browser: str) -> Response:
    resp = jsonify({"publicKey": body})
    # Strict: only vault's own pages call these; the cookie outlives no challenge.
    names = cookies()
    names.set(resp, names.passkey, browser, max_age=CHALLENGE_TTL, same_site="Strict")
    return resp


@bp.post("/api/v1/passkeys/sign-in/options")
def passkey_sign_in_options() -> Response:
    e = ext()
    json_body(optional=True)
    # Counted per address like logins, in a bucket of its own: the login page asks for options
    # as it loads (the passkey autofill), and loading it must not use up the password's tries.
    e.check_limit("login-address", "passkey-options:" + client_address())
    browser = _browser()
    return _options(e.passkeys.sign_in_options(browser=browser), browser)


@bp.post("/api/v1/passkeys/sign-in")
def passkey_sign_in() -> Response:
    e = ext()
    address = client_address()
    # JSON only, as the password login: no other site can sign a visitor in (login CSRF).
    if request.mimetype != "application/json":
        raise BadRequest("Sign in with a JSON body (Content-Type: application/json).")
    body = json_body()
    e.check_limit("login-address", address)
    cookie, who = e.passkeys.sign_in(body.get("credential"),
                                     browser=request.cookies.get(e.cookies.passkey, ""),
                                     address=address)
    previous = request.cookies.get(e.cookies.session)
    if previous:
        e.accounts.logout(previous)  # signing in again (the second look) replaces the session
    resp = jsonify(session_body(who))
    e.cookies.set(resp, e.cookies.session, cookie, max_age=e.config.session_max)
    e.cookies.delete(resp, e.cookies.passkey, same_site="Strict")
    return resp


@bp.post("/api/v1/passkeys/options")
def passkey_registration_options() -> Response:
    who = require_agent()
    json_body(optional=True)
    require_recent_sign_in()
    browser = _browser()
    return _options(ext().passkeys.registration_options(who, browser=browser,
                                                        session=session_digest()), browser)


@bp.post("/api/v1/passkeys")
def register_passkey() -> tuple[Response, int]:
    who = require_agent()
    body = json_body()
    require_recent_sign_in()
    passkey = ext().passkeys.register(who, body.get("name"), body.get("credential"),
                                      browser=request.cookies.get(cookies().passkey, ""),
                                      session=session_digest())
    return created(passkey)
