"""Help Scout's dynamic sidebar app: what vault holds for the open conversation.

Help Scout posts the conversation's context signed like its webhooks (base64 HMAC-SHA1 of the raw
body with VAULT_HELPSCOUT_APP_SECRET); vault answers `{"html": ...}`. The HTML carries states,
times and names only: never an envelope, a key, a token or a customer's field. Every value is
escaped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any
from urllib.parse import quote

from flask import Response, jsonify, request
from markupsafe import escape

from vault.api import bp
from vault.errors import Unauthenticated
from vault.extension import VaultExtension, ext
from vault.ids import is_ticket
from vault.web import parse_json_object

NEUTRAL = "<p>vault works on saved conversations. Save this one to see its credentials.</p>"
_STATE_WORDS = {
    "open": "waiting for the customer", "submitted": "submitted", "waiting": "waiting to be read",
    "revealed": "revealed", "expired": "expired",
}


def _verify(raw: bytes, secret: str, header: str | None) -> None:
    if not secret:
        raise Unauthenticated("The Help Scout app is not configured on this server.")
    if not header:
        raise Unauthenticated("Missing X-HelpScout-Signature.")
    expected = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest())
    if not hmac.compare_digest(expected, header.strip().encode()):
        raise Unauthenticated("The X-HelpScout-Signature does not match.")


@bp.post("/integrations/helpscout/sidebar")
def helpscout_sidebar() -> Response:
    e = ext()
    e.check_limit("webhook", "helpscout-sidebar")
    raw = request.get_data(cache=True)
    _verify(raw, e.config.helpscout_app_secret, request.headers.get("X-HelpScout-Signature"))
    body = parse_json_object(raw)
    ticket_info = body.get("ticket")
    if not isinstance(ticket_info, dict):
        return jsonify({"html": NEUTRAL})  # a draft: `ticket` is false
    number = ticket_info.get("number")
    if isinstance(number, bool) or not isinstance(number, int | str) or not is_ticket(str(number)):
        return jsonify({"html": NEUTRAL})
    user = body.get("user")
    hs_user = str(user.get("id")) if isinstance(user, dict) and user.get("id") is not None else ""
    agent = e.accounts.agent_for_helpscout(hs_user) if hs_user.isdigit() else None
    return jsonify({"html": render(e, str(number), agent)})


def _when(value: Any) -> str:
    return f' <time datetime="{escape(value)}">{escape(value)}</time>' if value else ""


def render(e: VaultExtension, ticket: str, agent: str | None) -> str:
    view = e.vault.ticket_view(ticket)
    base = e.config.base_url
    rows: list[str] = []
    for r in view["requests"]:
        state = r["state"]
        rows.append(f"<li>Request: {escape(_STATE_WORDS.get(state, state))}"
                    f"{_when(r['created_at'])}</li>")
    for s in view["secrets"]:
        state = s["state"]
        line = f"<li>{escape(s['kind'] or 'secret')}: {escape(_STATE_WORDS.get(state, state))}"
        if state == "revealed":
            line += f" by {escape(s['revealed_by'] or 'an agent')}{_when(s['revealed_at'])}"
        else:
            line += f" since{_when(s['created_at'])}"
        rows.append(line + "</li>")
    parts = [f"<p><strong>Ticket {escape(ticket)}</strong>"]
    if view["state"] == "closed":
        parts.append(" · closed, credentials deleted")
    parts.append("</p>")
    parts.append(f"<p>Assignee: {escape(view['assignee'] or 'nobody yet')}</p>")
    parts.append(f"<ul>{''.join(rows)}</ul>" if rows else "<p>Nothing stored.</p>")
    t = quote(ticket, safe="")
    links = [f'<a href="{escape(base)}/tickets/{t}" target="_blank" rel="noopener">'
             "Open in vault</a>"]
    if agent is not None and view["state"] != "closed":
        links.insert(0, f'<a href="{escape(base)}/requests/new?ticket={t}" target="_blank" '
                        'rel="noopener">Ask for credentials</a>')
    parts.append(f"<p>{' · '.join(links)}</p>")
    return "".join(parts)  # every dynamic value above went through escape()
