"""Help Scout's sidebar: what vault holds for the open conversation, in both of Help Scout's forms.

- **Legacy dynamic app** (`POST /integrations/helpscout/sidebar`, here): Help Scout posts the
  context signed like its webhooks; vault answers `{"html": ...}`, which Help Scout shows in its
  own page.
- **App Developer Platform** (`GET /integrations/helpscout/app`, what Help Scout recommends; a
  page, in vault.pages.helpscout): Help Scout frames it in the conversation sidebar, with the
  context and `X-HelpScout-Signature` in the query string.

Both are checked against VAULT_HELPSCOUT_APP_SECRET (several allowed, for rotation) and render
the one template `helpscout/_sidebar.html`: states, times and names only, never an envelope, a
key, a token or a customer's field; every value escaped. The legacy app says no language and
gets English; the app page gets `?lang=` of its callback URL, else the agent's browser language.

Cost: the signature is checked before anything touches Redis, so a forged call costs a few
HMACs; a signed one costs two round trips (the ticket's script and the Help Scout user's agent,
pipelined; then the names of the agents it mentions), one more when the app is given only a
conversation id. Help Scout's signatures carry no timestamp, so a captured call can be replayed:
the script itself counts calls per ticket against VAULT_RATELIMIT_WEBHOOK before reading
anything. A signed `timestamp` parameter, should Help Scout add one, is held to
VAULT_WEBHOOK_TOLERANCE.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Response, g, jsonify, render_template, request
from flask_babel import format_datetime

from vault.api import bp
from vault.crypto.signatures import BadSignature, helpscout_body_signed
from vault.errors import Unauthenticated
from vault.extension import VaultExtension, ext
from vault.ids import is_ticket
from vault.web import parse_json_object

HELPSCOUT_ID = re.compile(r"[0-9]{1,20}")


def app_secrets(e: VaultExtension) -> tuple[str, ...]:
    if not e.config.helpscout_app_secret:
        raise Unauthenticated("The Help Scout app is not configured on this server.")
    return e.config.helpscout_app_secret


def hs_when(value: str) -> str:
    """A time (RFC 3339, as the service writes it) as the sidebar shows it, in the page's
    language: day, month, year, hour and minute, UTC."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    return str(format_datetime(moment, "dd MMM yyyy HH:mm")) + " UTC"


def sidebar_context(e: VaultExtension, ticket: str | None, hs_user: str) -> dict[str, Any]:
    """What `helpscout/_sidebar.html` renders for `ticket` (None: a conversation vault cannot
    tell, a draft) opened by the Help Scout user `hs_user`."""
    view = None if ticket is None else e.vault.sidebar_view(
        ticket, hs_user if HELPSCOUT_ID.fullmatch(hs_user) else "", limits=e.webhook_windows)
    return {"view": view, "base_url": e.config.base_url, "hs_when": hs_when}


# -- the legacy dynamic app ----------------------------------------------------------------------

@bp.post("/integrations/helpscout/sidebar")
def helpscout_sidebar() -> Response:
    e = ext()
    g.locale = "en"  # Help Scout's call says nothing of the agent's language
    raw = request.get_data(cache=True)
    try:
        helpscout_body_signed(raw, app_secrets(e), request.headers.get("X-HelpScout-Signature"))
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None
    body = parse_json_object(raw)
    ticket_info = body.get("ticket")
    number = ticket_info.get("number") if isinstance(ticket_info, dict) else None  # a draft
    ticket = str(number) if isinstance(number, int | str) and not isinstance(number, bool) \
        and is_ticket(str(number)) else None
    user = body.get("user")
    hs_user = str(user.get("id")) if isinstance(user, dict) and user.get("id") is not None else ""
    html = render_template("helpscout/_sidebar.html", **sidebar_context(e, ticket, hs_user))
    return jsonify({"html": " ".join(line.strip() for line in html.splitlines() if line.strip())})


__all__ = ["HELPSCOUT_ID", "app_secrets", "helpscout_sidebar", "hs_when", "sidebar_context"]
