"""Help Scout's App Developer Platform: the sidebar as a page Help Scout frames.

Help Scout loads `GET /integrations/helpscout/app` in an iframe of the conversation sidebar,
with the conversation's context (`conversation-id`, `conversation-number`, `user-id`, ...) and
`X-HelpScout-Signature` in the query string (vault.helpdesks.helpscout has the format, and
what the sidebar shows). The page is the legacy sidebar's HTML (one template for both) in
vault's CSS:

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

from typing import Any

from flask import Response, render_template, request
from flask_babel import gettext

from vault import i18n
from vault.errors import RateLimited, Unavailable, VaultError
from vault.extension import VaultExtension, ext
from vault.helpdesks import helpscout
from vault.pages import bp
from vault.web import PAGE_CSP, note_error

APP_PATH = "/integrations/helpscout/app"


def _sidebar(e: VaultExtension) -> dict[str, Any]:
    ticket, hs_user, unknown = helpscout.app_subject(request.query_string, e.config, e.vault)
    found = helpscout.sidebar_context(e.vault, e.config, e.webhook_windows, ticket, hs_user)
    found["unknown_conversation"] = unknown
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
    i18n.use_language(i18n.requested_language()
                      or request.accept_languages.best_match(i18n.LANGUAGES) or "en")
    try:
        html = render_template("helpscout/app.html", lang=i18n.page_language(),
                               dir=i18n.text_direction(), sidebar=True, **_sidebar(e))
        resp = Response(html, mimetype="text/html")
    except VaultError as error:
        note_error(error)
        title, message, headers = _refusal(error)
        html = render_template("helpscout/app.html", lang=i18n.page_language(),
                               dir=i18n.text_direction(), title=title,
                               message=message)
        resp = Response(html, status=error.status, mimetype="text/html", headers=headers)
    resp.headers["Content-Security-Policy"] = PAGE_CSP.replace(
        "frame-ancestors 'none'", "frame-ancestors " + e.config.helpscout_frame_ancestors)
    return resp


__all__ = ["APP_PATH", "helpscout_app"]
