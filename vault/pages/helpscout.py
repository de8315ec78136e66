"""Help Scout's App Developer Platform: the sidebar as a page Help Scout frames.

Help Scout loads `GET /integrations/helpscout/app` in an iframe of the conversation sidebar,
with the conversation's context (`conversation-id`, `conversation-number`, `user-id`, ...) and
`X-HelpScout-Signature` in the query string (vault.crypto.signatures has the format). The page
is the legacy sidebar's HTML (vault.api.sidebar, one template for both) in vault's CSS:

- signed with any secret of VAULT_HELPSCOUT_APP_SECRET, checked before anything touches Redis;
  unsigned, wrongly signed or stale (a retired secret; a signed `timestamp`, should Help Scout
  add one, older than VAULT_WEBHOOK_TOLERANCE): 401, a plain page, no Redis;
- the only route that may be framed, and only by VAULT_HELPSCOUT_FRAME_ANCESTORS (Help Scout by
  default), its error pages included, so that a refused load says so inside the sidebar;
- no script, no cookie set or read; the language is `?lang=` of the callback URL (vault's own
  parameter, which Help Scout does not sign), else the agent's browser language, else English;
- two round trips for a conversation number, one more when Help Scout gives only the
  conversation id (the ticket then comes from what the webhooks learnt of it).
"""

from __future__ import annotations

import re
from typing import Any

from flask import Response, g, render_template, request
from flask_babel import gettext

from vault import i18n
from vault.api.sidebar import HELPSCOUT_ID, app_secrets, sidebar_context
from vault.crypto.signatures import BadSignature, helpscout_query_context
from vault.errors import RateLimited, Unauthenticated, Unavailable, VaultError
from vault.extension import VaultExtension, ext
from vault.ids import is_ticket
from vault.pages import bp
from vault.web import PAGE_CSP, note_error

APP_PATH = "/integrations/helpscout/app"
# Parameters vault reads from its own callback URL: Help Scout does not sign them.
UNSIGNED = ("lang",)


def _ticket(e: VaultExtension, context: dict[str, str]) -> str | None:
    """The vault ticket of the conversation: its number, else what the webhooks learnt of its
    id (Help Scout's ids and numbers differ; vault's ticket is the number)."""
    number = context.get("conversation-number", "")
    if is_ticket(number):
        return number
    conversation = context.get("conversation-id", "")
    return e.store.conversation_ticket(conversation) \
        if HELPSCOUT_ID.fullmatch(conversation) else None


def _fresh(e: VaultExtension, context: dict[str, str]) -> None:
    """A signed `timestamp` (Unix seconds or milliseconds) must be within the tolerance."""
    stamp = context.get("timestamp")
    if stamp is None:
        return
    if not re.fullmatch(r"[0-9]{1,13}", stamp):
        raise Unauthenticated("The signed timestamp is not one vault reads.")
    seconds = int(stamp) / (1000 if len(stamp) > 11 else 1)
    if abs(e.vault.clock() - seconds) > e.config.webhook_tolerance:
        raise Unauthenticated("The signature is too old (or from the future): reload the page.")


def _sidebar(e: VaultExtension) -> dict[str, Any]:
    try:
        context = helpscout_query_context(request.query_string, app_secrets(e),
                                          unsigned=UNSIGNED)
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None
    _fresh(e, context)
    ticket = _ticket(e, context)
    found = sidebar_context(e, ticket, context.get("user-id", ""))
    # A saved conversation whose number Help Scout did not give and no webhook told vault.
    found["unknown_conversation"] = ticket is None and bool(
        HELPSCOUT_ID.fullmatch(context.get("conversation-id", "")))
    return found


def _refusal(error: VaultError) -> tuple[str, str, dict[str, str]]:
    """Title, message and headers of the page that says why the sidebar is not shown."""
    if error.status == 401:
        return (gettext("Open this from Help Scout"),
                gettext("This is vault's Help Scout app: it shows only inside a Help Scout "
                        "conversation, signed by Help Scout. If it shows this there, the app's "
                        "secret key in Help Scout and VAULT_HELPSCOUT_APP_SECRET differ."),
                {"WWW-Authenticate": 'HelpScout-Signature realm="vault"'})
    if isinstance(error, RateLimited):
        return (gettext("Too many loads"),
                gettext("This ticket's app was loaded too often. Try again in %(seconds)s s.",
                        seconds=error.retry_after),
                {"Retry-After": str(error.retry_after)})
    if isinstance(error, Unavailable):
        return (gettext("vault is briefly unavailable"),
                gettext("Nothing was lost. Reload this conversation in a moment."),
                {"Retry-After": str(error.retry_after)})
    return (gettext("Something went wrong"),
            gettext("Something went wrong. Nothing was lost; try again."), {})


@bp.get(APP_PATH)
def helpscout_app() -> Response:
    e = ext()
    g.locale = i18n.requested_language() \
        or request.accept_languages.best_match(i18n.LANGUAGES) or "en"
    try:
        html = render_template("helpscout/app.html", lang=g.locale, sidebar=True, **_sidebar(e))
        resp = Response(html, mimetype="text/html")
    except VaultError as error:
        note_error(error)
        title, message, headers = _refusal(error)
        html = render_template("helpscout/app.html", lang=g.locale, title=title,
                               message=message)
        resp = Response(html, status=error.status, mimetype="text/html", headers=headers)
    resp.headers["Content-Security-Policy"] = PAGE_CSP.replace(
        "frame-ancestors 'none'", "frame-ancestors " + e.config.helpscout_frame_ancestors)
    return resp


__all__ = ["APP_PATH", "helpscout_app"]
