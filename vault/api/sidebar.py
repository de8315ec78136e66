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
from typing import Any

from babel.dates import get_month_names
from flask import Response, g, jsonify, render_template, request
from flask_babel import get_locale, gettext, ngettext
from markupsafe import Markup, escape

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


class _Rows:
    """The sidebar's list rows as escaped HTML, in the request's language.

    A ticket of 100 secrets has 100 rows: each phrase and the month names are looked up once
    per render here, not once per row in the template (a Flask-Babel lookup costs tens of
    microseconds; per row, it made a sidebar of 100 secrets five times dearer). Every dynamic
    value goes through Markup's %-formatting, which escapes it."""

    def __init__(self) -> None:
        months = get_month_names("abbreviated", locale=get_locale())
        self.months = [""] + [str(months[m]) for m in range(1, 13)]
        self.row = _markup(gettext("%(label)s: %(state)s"))
        self.labels = {"request": gettext("Request"), "wordpress": gettext("WordPress admin"),
                       "sftp": gettext("sFTP / SSH"), "other": gettext("Other")}
        self.secret = gettext("Secret")
        self.anyone = gettext("an agent")
        self.states = {
            "revealed": _markup(gettext("revealed by %(who)s at %(when)s")),
            "expired unread": _markup(gettext("expired unread %(when)s")),
            "expired": _markup(gettext("expired %(when)s")),
            "open": _markup(gettext("waiting for the customer since %(when)s")),
            "waiting": _markup(gettext("waiting to be read since %(when)s")),
            "deleted": _markup(gettext("deleted by the customer at %(when)s")),
        }

    def when(self, value: str | None) -> Markup:
        """A time (RFC 3339, as the service writes it): day, month, year, hour and minute,
        UTC, machine-readable in the tag. Sliced, not parsed."""
        if not value:
            return Markup("")
        shown = f"{value[8:10]} {self.months[int(value[5:7])]} {value[:4]} {value[11:16]} UTC"
        return Markup('<time datetime="%s">%s</time>') % (value, shown)

    def item(self, r: dict[str, Any]) -> Markup:
        state = r["state"]
        if state == "expired" and r["what"] != "request":
            state = "expired unread"
        text = self.states.get(state, self.states["waiting"]) % {
            "who": r["by"] or self.anyone, "when": self.when(r["at"])}
        return self.row % {"label": _strong(self.labels.get(r["what"], self.secret)),
                           "state": text}

    def deleted(self, at: str | None) -> Markup:
        return self.row % {"label": _strong(self.secret),
                           "state": self.states["deleted"] % {"when": self.when(at)}}

    def more_deleted(self, n: int) -> Markup:
        text = ngettext("%(num)d earlier one deleted by the customer",
                        "%(num)d earlier ones deleted by the customer", n)
        return self.row % {"label": _strong(self.secret), "state": text}


def _markup(text: str) -> Markup:
    return escape(text)  # a translation is text: escaped (a Markup), then used as a format


def _strong(text: str) -> Markup:
    return Markup("<strong>%s</strong>") % text


def sidebar_context(e: VaultExtension, ticket: str | None, hs_user: str) -> dict[str, Any]:
    """What `helpscout/_sidebar.html` renders for `ticket` (None: a conversation vault cannot
    tell, a draft) opened by the Help Scout user `hs_user`."""
    if ticket is None:
        return {"view": None}
    view = e.vault.sidebar_view(ticket, hs_user if HELPSCOUT_ID.fullmatch(hs_user) else "",
                                limits=e.webhook_windows)
    rows = _Rows()
    items = [rows.item(r) for r in view["rows"]] + [rows.deleted(d["deleted_at"])
                                                   for d in view["deleted"]]
    if view["more_deleted"]:
        items.append(rows.more_deleted(view["more_deleted"]))
    return {"view": view, "base_url": e.config.base_url, "items": items,
            "closed_at": rows.when(view["closed_at"])}


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


__all__ = ["HELPSCOUT_ID", "app_secrets", "helpscout_sidebar", "sidebar_context"]
