"""Customer pages: share (`/`), fill a request (`/r/<id>`), a secret's status (`/s/<id>`) and the
private manage link (`/m/<id>`). Loading any of them consumes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Response

from vault import ids
from vault.errors import Gone, NotFound
from vault.extension import ext
from vault.pages import bp, render, viewer


def _secret_state(secret_id: str) -> dict[str, Any]:
    """The secret's metadata, or `{"state": "gone", "reason": ...}` for a gone one."""
    try:
        return ext().vault.secret_meta(secret_id)
    except Gone as exc:
        return {"id": secret_id, "state": "gone", "reason": exc.extra.get("reason", "gone")}


def _may_fetch_again(secret: dict[str, Any]) -> bool:
    """Whether to offer the reveal again: a revealed secret, a logged-in agent, still inside the
    grace window. Only the winning session's call succeeds; the API decides, this only offers."""
    if secret.get("state") != "revealed" or viewer() is None or not secret.get("revealed_at"):
        return False
    e = ext()
    revealed = datetime.fromisoformat(str(secret["revealed_at"]).replace("Z", "+00:00"))
    return e.vault.now_ms() < revealed.timestamp() * 1000 + e.config.grace_seconds * 1000


def _status(secret: dict[str, Any], **context: Any) -> Response:
    return render("customer/status.html", page="status", secret=secret,
                  fetch_again=_may_fetch_again(secret), **context)


@bp.get("/")
def share() -> Response:
    return render("customer/share.html", page="share")


@bp.get("/r/<request_id>")
def fill(request_id: str) -> Response:
    if not ids.is_id(request_id):
        raise NotFound("There is nothing here. Check the link.")
    try:
        req = ext().vault.request_state(request_id)
    except Gone as exc:
        return _status({"state": "gone", "reason": exc.extra.get("reason", "gone")}, ticket=None)
    secret = _secret_state(req["secret_id"]) if req.get("secret_id") else None
    if req["state"] == "open" or secret is None:
        return render("customer/fill.html", page="fill", request_id=request_id, req=req)
    return _status(secret, ticket=req["ticket"])


@bp.get("/s/<secret_id>")
def status(secret_id: str) -> Response:
    if not ids.is_id(secret_id):
        raise NotFound("There is nothing here. Check the link.")
    secret = _secret_state(secret_id)
    return _status(secret, ticket=secret.get("ticket"))


@bp.get("/m/<secret_id>")
def manage(secret_id: str) -> Response:
    if not ids.is_id(secret_id):
        raise NotFound("There is nothing here. Check the link.")
    secret = _secret_state(secret_id)
    return render("customer/manage.html", page="manage", secret=secret,
                  ticket=secret.get("ticket"))
