"""Help Scout's dynamic sidebar app: what vault holds for the open conversation.

Help Scout posts the conversation's context signed like its webhooks (base64 HMAC-SHA1 of the raw
body with VAULT_HELPSCOUT_APP_SECRET, which may list several secrets, comma-separated, for
rotation); vault answers `{"html": ...}`. The HTML carries states, times and names only: never
an envelope, a key, a token or a customer's field. Every value is escaped.

Cost: the signature is checked before anything touches Redis, so a forged call costs one HMAC;
a signed one costs one round trip (the ticket's script and the Help Scout user's agent,
pipelined). Help Scout's signature has no timestamp, so a captured call can be replayed: the
script itself counts calls per ticket against VAULT_RATELIMIT_WEBHOOK before reading anything,
which keeps the rate limit inside that one round trip.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from typing import Any
from urllib.parse import quote

from flask import Response, jsonify, request
from markupsafe import escape

from vault.api import bp
from vault.errors import Unauthenticated
from vault.extension import ext
from vault.ids import is_ticket
from vault.web import parse_json_object

NEUTRAL = "<p>vault works on saved conversations. Save this one to see its credentials.</p>"
_HELPSCOUT_ID = re.compile(r"[0-9]{1,20}")
_KINDS = {"wordpress": "WordPress admin", "sftp": "sFTP / SSH", "other": "Other"}


def _verify(raw: bytes, setting: str, header: str | None) -> None:
    secrets_ = [s.strip() for s in setting.split(",") if s.strip()]
    if not secrets_:
        raise Unauthenticated("The Help Scout app is not configured on this server.")
    if not header:
        raise Unauthenticated("Missing X-HelpScout-Signature.")
    presented = header.strip().encode()
    matched = False
    for secret in secrets_:  # every one, so the time does not tell which matched
        expected = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest())
        matched |= hmac.compare_digest(expected, presented)
    if not matched:
        raise Unauthenticated("The X-HelpScout-Signature does not match.")


@bp.post("/integrations/helpscout/sidebar")
def helpscout_sidebar() -> Response:
    e = ext()
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
    view = e.vault.sidebar_view(str(number), hs_user if _HELPSCOUT_ID.fullmatch(hs_user) else "",
                                limits=e.webhook_windows)
    return jsonify({"html": render(view, e.config.base_url)})


_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# The HTML is built from plain strings, each dynamic value through `_e` (escape): a sidebar of
# 100 secrets has a few hundred values, and Markup.format costs ten times as much.


def _e(value: Any) -> str:
    return str(escape(value))


def _when(value: str | None) -> str:
    """A time (RFC 3339, as `iso` writes it) as Help Scout's agents read it, machine-readable
    in the tag. Sliced, not parsed; digits and letters of our own making, nothing to escape."""
    if not value:
        return ""
    shown = f"{value[8:10]} {_MONTHS[int(value[5:7]) - 1]} {value[:4]} {value[11:16]} UTC"
    return f'<time datetime="{value}">{shown}</time>'


def _row(label: str, text: str) -> str:
    return f"<li><strong>{_e(label)}</strong>: {text}</li>"


_WORDS = {"open": "waiting for the customer since", "waiting": "waiting to be read since",
          "expired": "expired"}


def _item_row(r: dict[str, Any]) -> str:
    label = "Request" if r["what"] == "request" else _KINDS.get(r["what"], "Secret")
    if r["state"] == "revealed":
        return _row(label, f"revealed by {_e(r['by'] or 'an agent')} at {_when(r['at'])}")
    if r["state"] == "expired" and r["what"] != "request":
        return _row(label, f"expired unread {_when(r['at'])}")
    return _row(label, f"{_WORDS.get(r['state'], _e(r['state']))} {_when(r['at'])}")


def render(view: dict[str, Any], base_url: str) -> str:
    """The sidebar's HTML for a `Vault.sidebar_view`; compact, every value escaped."""
    parts = [f"<h4>vault · ticket {_e(view['ticket'])}</h4>"]
    purged = _count(view["purged"], "credential or request", "credentials and requests")
    if view["state"] == "closed":
        parts.append(f'<p class="muted">Closed {_when(view["closed_at"])}: {purged} deleted.</p>')
    elif view["purged"]:
        parts.append(f'<p class="muted">Reopened; {purged} deleted when it was closed.</p>')
    parts.append(f"<p>Assignee: {_e(view['assignee'] or 'nobody yet')}</p>")
    rows = [_item_row(r) for r in view["rows"]]
    rows += [_row("Secret", f"deleted by the customer at {_when(d['deleted_at'])}")
             for d in view["deleted"]]
    if view["more_deleted"]:
        more = _count(view["more_deleted"], "earlier one", "earlier ones")
        rows.append(_row("Secret", f"{more} deleted by the customer"))
    parts.append(f"<ul>{''.join(rows)}</ul>" if rows else "<p>Nothing stored.</p>")
    ticket = quote(view["ticket"], safe="")
    links = [_link(f"{base_url}/tickets/{ticket}", "Open in vault")]
    if view["agent"] is not None and view["state"] != "closed":
        links.insert(0, _link(f"{base_url}/requests/new?ticket={ticket}", "Ask for credentials"))
    parts.append(f"<p>{' · '.join(links)}</p>")
    return "".join(parts)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _link(url: str, text: str) -> str:
    return f'<a href="{_e(url)}" target="_blank" rel="noopener">{_e(text)}</a>'
