"""Help Scout's legacy dynamic app: `POST /integrations/helpscout/sidebar`.

Help Scout posts the conversation's context signed like its webhooks (with the app's secret,
VAULT_HELPSCOUT_APP_SECRET); vault answers `{"html": ...}`, which Help Scout shows in its own
page. The call says nothing of the agent's language: English. What the sidebar shows, and what
it costs, is vault.helpdesks.helpscout's (the App Developer Platform's page, which renders the
same template, is in vault.pages.helpscout).
"""

from __future__ import annotations

from flask import Response, jsonify, render_template, request

from vault import i18n
from vault.api import bp
from vault.extension import ext
from vault.helpdesks import helpscout
from vault.web import parse_json_object


@bp.post("/integrations/helpscout/sidebar")
def helpscout_sidebar() -> Response:
    e = ext()
    i18n.use_language("en")  # Help Scout's call says nothing of the agent's language
    raw = request.get_data(cache=True)
    helpscout.verify_sidebar_body(raw, e.config, request.headers.get(helpscout.SIGNATURE))
    ticket, hs_user = helpscout.legacy_subject(parse_json_object(raw))
    context = helpscout.sidebar_context(e.vault, e.config, e.webhook_windows, ticket, hs_user)
    html = render_template("helpscout/_sidebar.html", **context)
    return jsonify({"html": " ".join(line.strip() for line in html.splitlines() if line.strip())})


__all__ = ["helpscout_sidebar"]
