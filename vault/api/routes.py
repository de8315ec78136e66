"""JSON views: parse, call the service, render. No business rule lives here."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify, request

from vault.accounts import normalise_email
from vault.api import bp, ops
from vault.errors import BadRequest, ValidationFailed
from vault.extension import ext
from vault.principal import Principal
from vault.service import check_ticket
from vault.web import (
    client_address,
    cookies,
    gate,
    gated,
    gated_json,
    json_body,
    principal,
    require_admin_or_helpdesk,
    require_agent,
)

log = logging.getLogger("vault")


def created(body: dict[str, Any]) -> tuple[Response, int]:
    return jsonify(body), 201


def no_content() -> tuple[str, int]:
    return "", 204


# -- requests (agent first) ----------------------------------------------------------------------

@bp.post("/api/v1/requests")
def create_request() -> tuple[Response, int]:
    who = gate(agent=True)
    body = gated_json(who)
    return created(ext().vault.create_request(who, body.get("ticket"), body.get("note")))


@bp.get("/api/v1/requests/<request_id>")
def request_state(request_id: str) -> Response:
    return jsonify(ext().vault.request_state(request_id))


@bp.post("/api/v1/requests/<request_id>/secret")
def fill_request(request_id: str) -> tuple[Response, int]:
    address = client_address()
    limit = gate("submit", address)
    body = gated_json(limit)
    return created(ext().vault.fill_request(request_id, body.get("kind"), body.get("envelope"),
                                            address=address, gate=gated(limit)))


# -- secrets --------------------------------------------------------------------------------------

@bp.post("/api/v1/secrets")
def create_secret() -> tuple[Response, int]:
    address = client_address()
    limit = gate("submit", address)
    body = gated_json(limit)
    return created(ext().vault.create_secret(body.get("ticket"), body.get("kind"),
                                             body.get("envelope"), body.get("ttl"),
                                             address=address, gate=gated(limit)))


@bp.get("/api/v1/secrets/<secret_id>")
def secret_meta(secret_id: str) -> Response:
    return jsonify(ext().vault.secret_meta(secret_id))


@bp.delete("/api/v1/secrets/<secret_id>")
def delete_secret(secret_id: str) -> tuple[str, int]:
    """With `X-Manage-Token`, the customer's delete; without it, an agent's discard (the
    ticket's assignee or an admin, by bearer token or session cookie with its CSRF token). A
    call with neither is the customer's without a token: 403."""
    manage = request.headers.get("X-Manage-Token")
    if manage is None and ("Authorization" in request.headers
                           or request.cookies.get(cookies().session)):
        ext().vault.discard(require_agent(), secret_id)
        return no_content()
    ext().vault.delete_secret(secret_id, manage)
    return no_content()


@bp.post("/api/v1/secrets/<secret_id>/reveal")
def reveal(secret_id: str) -> Response:
    who = gate("reveal", agent=True)
    gated_json(who, optional=True)
    return jsonify(ext().vault.reveal(who, secret_id))


@bp.post("/api/v1/secrets/<secret_id>/ack")
def ack(secret_id: str) -> tuple[str, int]:
    who = require_agent()
    json_body(optional=True)
    ext().vault.ack(who, secret_id)
    return no_content()


# -- tickets ----------------------------------------------------------------------------------------

@bp.get("/api/v1/tickets/<ticket>")
def ticket_view(ticket: str) -> Response:
    require_agent()
    return jsonify(ext().vault.ticket_view(ticket))


def helpdesk_call() -> Principal:
    """An admin or a helpdesk key; a key's calls count against the webhook limit [key]."""
    who = require_admin_or_helpdesk()
    if who.is_helpdesk:
        ext().check_limit("webhook", "key:" + who.email)
    return who


@bp.put("/api/v1/tickets/<ticket>/assignee")
def set_assignee(ticket: str) -> Response:
    who = helpdesk_call()
    ticket = check_ticket(ticket)
    body = json_body()
    agent = body.get("agent")
    try:
        email = normalise_email(agent)
    except ValidationFailed:
        raise ValidationFailed([{"name": "agent", "reason": "An agent's e-mail address."}]) \
            from None
    e = ext()
    e.vault.assign(ticket, email, actor=who.email)
    known = e.accounts.agent_exists(email)
    if not known:
        log.warning(
            "ticket assigned to an e-mail that is no vault agent; nobody can reveal until "
            "that agent exists or an admin reassigns", extra={"ticket": ticket})
    return jsonify({"ticket": ticket, "assignee": email, "known_agent": known})


@bp.post("/api/v1/tickets/<ticket>/close")
def close_ticket(ticket: str) -> Response:
    who = helpdesk_call()
    ticket = check_ticket(ticket)
    json_body(optional=True)
    return jsonify(ext().vault.close(ticket, reason="closed", actor=who.email))


@bp.post("/api/v1/tickets/<ticket>/reopen")
def reopen_ticket(ticket: str) -> Response:
    who = helpdesk_call()
    ticket = check_ticket(ticket)
    json_body(optional=True)
    return jsonify(ext().vault.reopen(ticket, actor=who.email))


# -- web session (the login page of the web issue uses these) ----------------------------------------

def session_body(who: Any) -> dict[str, Any]:
    return {"csrf_token": who.csrf,
            "agent": {"email": who.email, "name": who.name, "role": who.role}}


@bp.post("/api/v1/session")
def login() -> Response:
    e = ext()
    address = client_address()
    # JSON only: a cross-site HTML form cannot send application/json without CORS, so no other
    # site can log a visitor into an account of its choosing (login CSRF).
    if request.mimetype != "application/json":
        raise BadRequest("Log in with a JSON body (Content-Type: application/json).")
    body = json_body()
    e.check_limit("login-address", address)
    email = body.get("email")
    if isinstance(email, str):
        e.check_limit("login-account", email.strip().lower()[:254])
    cookie, who = e.accounts.login(email, body.get("password"), totp=body.get("totp"),
                                   address=address)
    previous = request.cookies.get(e.cookies.session)
    if previous:
        e.accounts.logout(previous)  # signing in again (the second look) replaces the session
    resp = jsonify(session_body(who))
    e.cookies.set(resp, e.cookies.session, cookie, max_age=e.config.session_max)
    return resp


@bp.get("/api/v1/session")
def session_state() -> Response:
    who = principal()
    assert who is not None
    if not who.via_cookie:
        return jsonify({"csrf_token": None, "agent": {"email": who.email, "name": who.name,
                                                      "role": who.role}})
    return jsonify(session_body(who))


@bp.delete("/api/v1/session")
def logout() -> tuple[Response, int]:
    principal()  # a cookie-authenticated logout needs the CSRF token like any state change
    names = cookies()
    cookie = request.cookies.get(names.session)
    if cookie:
        ext().accounts.logout(cookie)
    resp = Response("", status=204)
    names.delete(resp, names.session)
    return resp, 204


# -- operators -----------------------------------------------------------------------------------------

@ops.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@ops.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Ready when Redis answers a PING and the key ring wraps and unwraps with its current key.

    Never a 500: whatever the check raises makes it "unavailable" (an ACL or auth error too).
    """
    e = ext()
    checks = {"redis": "ok", "keyring": "ok"}
    try:
        e.vault.ping()
    except Exception:
        checks["redis"] = "unavailable"
        e.metrics.redis_errors.inc()
    try:
        probe = e.keyring.wrap(b"readyz", context=b"readyz")
        if e.keyring.unwrap(probe, context=b"readyz") != b"readyz":
            raise ValueError("round trip")
    except Exception:
        checks["keyring"] = "unusable"
    ok = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ok else "unavailable", "checks": checks}
    if e.sso is not None:
        # Named, never counted: an identity provider's outage must not take vault out of its
        # load balancer (password login and every reveal keep working).
        body["identity_provider"] = {"issuer": e.config.oidc_issuer, "status": e.sso.status()}
    resp = jsonify(body)
    if not ok:
        resp.headers["Retry-After"] = "2"
    return resp, 200 if ok else 503


@ops.get("/metrics")
def metrics() -> Response:
    data, content_type = ext().metrics.render()
    return Response(data, content_type=content_type)
