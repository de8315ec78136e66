"""Agent pages: login and logout, a ticket, the new-request page. (The dashboard lives in
`vault.pages.dashboard`.) Login itself is `POST /api/v1/session` from the page script: a JSON
body that a cross-site form cannot send, so no other site can log a visitor in."""

from __future__ import annotations

from flask import Response, redirect, request, url_for

from vault.extension import ext
from vault.pages import agent_page, bp, check_form_csrf, render, safe_next, viewer
from vault.service import check_ticket
from vault.web import SESSION_COOKIE


@bp.get("/login")
def login() -> Response:
    target = safe_next(request.args.get("next"))
    if viewer() is not None:
        return redirect(target, 303)  # type: ignore[return-value]
    e = ext()
    return render("agent/login.html", page="login", next_url=target,
                  sso_name=e.config.oidc_name if e.sso is not None else "",
                  password_form=e.accounts.login_form_for)


@bp.post("/logout")
def logout() -> Response:
    check_form_csrf()
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        ext().accounts.logout(cookie)
    resp = redirect(url_for("pages.login"), 303)
    resp.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="Lax")
    return resp  # type: ignore[return-value]


@bp.get("/tickets/<ticket>")
@agent_page
def ticket(ticket: str) -> Response:
    view = ext().vault.ticket_view(check_ticket(ticket))
    return render("agent/ticket.html", page="ticket", view=view)


@bp.get("/requests/new")
@agent_page
def new_request() -> Response:
    prefill = request.args.get("ticket", "")
    return render("agent/new_request.html", page="new-request",
                  prefill=prefill if len(prefill) <= 64 else "")
