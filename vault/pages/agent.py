"""Agent pages: login and logout, a ticket, the new-request page. (The dashboard lives in
`vault.pages.dashboard`.) Login itself is `POST /api/v1/session` from the page script: a JSON
body that a cross-site form cannot send, so no other site can log a visitor in."""

from __future__ import annotations

from flask import Response, redirect, request, url_for
from flask_babel import gettext as _

from vault.errors import Forbidden, Gone, NotFound
from vault.extension import ext
from vault.pages import agent_page, bp, check_form_csrf, render, safe_next, viewer
from vault.service import check_ticket
from vault.web import cookies


@bp.get("/login")
def login() -> Response:
    target = safe_next(request.args.get("next"))
    if viewer() is not None:
        return redirect(target, 303)  # type: ignore[return-value]
    e = ext()
    return render("agent/login.html", page="login", next_url=target,
                  sso_name=e.config.oidc_name if e.sso is not None else "",
                  password_form=e.accounts.login_form_for, passkeys_usable=e.passkeys.usable)


@bp.post("/logout")
def logout() -> Response:
    check_form_csrf()
    names = cookies()
    cookie = request.cookies.get(names.session)
    if cookie:
        ext().accounts.logout(cookie)
    resp = redirect(url_for("pages.login"), 303)
    names.delete(resp, names.session)
    return resp  # type: ignore[return-value]


def _ticket_page(ticket: str, *, status: int = 200, error: str = "") -> Response:
    done = {"discarded": _("Discarded: nobody can read it now, and it no longer takes room "
                           "on this ticket.")}
    view = ext().vault.ticket_view(check_ticket(ticket))
    return render("agent/ticket.html", page="ticket", status=status, view=view,
                  message=done.get(request.args.get("done", ""), ""), error=error)


@bp.get("/tickets/<ticket>")
@agent_page
def ticket(ticket: str) -> Response:
    return _ticket_page(ticket)


@bp.post("/tickets/<ticket>")
@agent_page
def ticket_post(ticket: str) -> Response:
    """The ticket page's form: the assignee (or an admin) discards a waiting secret unread, then
    comes back to the page (303, with a message from a fixed list); a refusal shows the page
    again with its status and a message, and changes nothing."""
    who = check_form_csrf()
    ticket = check_ticket(ticket)
    if request.form.get("action") != "discard":
        return _ticket_page(ticket, status=400,
                            error=_("Unknown action. Reload the page and try again."))
    try:
        ext().vault.discard(who, request.form.get("secret", ""), ticket=ticket)
    except Forbidden:
        return _ticket_page(ticket, status=403, error=_(
            "Only the agent assigned to this ticket, or an admin, can discard its credentials."))
    except Gone:
        return _ticket_page(ticket, status=410, error=_(
            "These credentials are no longer waiting: revealed, deleted or expired meanwhile."))
    except NotFound:
        return _ticket_page(ticket, status=404, error=_(
            "There are no such credentials on this ticket (any more)."))
    resp = redirect(url_for("pages.ticket", ticket=ticket, done="discarded"), 303)
    return resp  # type: ignore[return-value]


@bp.get("/requests/new")
@agent_page
def new_request() -> Response:
    prefill = request.args.get("ticket", "")
    return render("agent/new_request.html", page="new-request",
                  prefill=prefill if len(prefill) <= 64 else "")
