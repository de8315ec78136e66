"""Admin pages (agents, helpdesk API keys, audit log) and every agent's own account page.

Each page posts its forms to its own route with the session's CSRF token; a change answers
303 back to the page with a `done` code (Post/Redirect/Get), whose message comes from a fixed
list, so a link cannot put words on the page. Bad input re-renders the page with what was
typed (never a password), a message, and the error's status (400, 404 or 409).
"""

from __future__ import annotations

from typing import Any

import segno
from flask import Response, redirect, request, url_for
from flask_babel import gettext as _
from markupsafe import Markup

from vault import ids
from vault.accounts import EMAIL_RE, MIN_PASSWORD, normalise_email
from vault.errors import Conflict, NotFound, ValidationFailed
from vault.extension import ext
from vault.names import MAX_NAME
from vault.pages import admin_page, agent_page, bp, check_form_csrf, render, viewer
from vault.service import Principal, iso
from vault.web import cookies

AUDIT_LIMIT = 200  # events shown
AUDIT_WINDOW = 10_000  # events read back through when filtering the global log by agent


def _back(endpoint: str, done: str) -> Response:
    return redirect(url_for(endpoint, done=done), 303)  # type: ignore[return-value]


def _fields_of(exc: ValidationFailed) -> list[str]:
    return [p["name"] for p in exc.extra.get("invalid_params", [])]


def _field_messages() -> dict[str, str]:
    return {
        "email": _("Enter an e-mail address."),
        "password": _("Use at least %(count)s characters.", count=MIN_PASSWORD),
        "name": _("Use 1 to 64 letters, digits, '.', '-' or '_'."),
        "display_name": _("Use at most %(count)s characters.", count=MAX_NAME),
        "ticket": _("Use 1 to 64 letters, digits, '-' or '_'."),
        "agent": _("Enter an agent's e-mail address."),
    }


def _who() -> Principal:
    who = viewer()
    assert who is not None  # agent_page / admin_page
    return who


# -- the second look: a recent sign-in before a change to how one signs in ---------------------

def _recent() -> bool:
    """Whether this browser's session signed in within VAULT_REAUTH_WINDOW."""
    return ext().accounts.signed_in_recently(request.cookies.get(cookies().session))


def _reauth(endpoint: str) -> dict[str, Any]:
    """What the page's "sign in again" card offers the viewer: their password form (with their
    factor), their passkeys, the identity provider; each comes back to `endpoint`'s page."""
    who = _who()
    e = ext()
    ways = e.accounts.sign_in_ways(who.email)
    return {"next": url_for(endpoint), "email": who.email, "password": ways["password"],
            "passkey": ways["passkey"] and e.passkeys.usable, "sso_name": e.config.oidc_name if e.sso else ""}


def _reauth_message() -> str:
    return str(_("This change needs a recent sign-in. Sign in again to continue."))


# -- agents -------------------------------------------------------------------------------------

def _agents_page(*, status: int = 200, form: dict[str, Any] | None = None,
                 errors: dict[str, str] | None = None, error: str = "",
                 row_errors: dict[str, str] | None = None, reauth: bool = False) -> Response:
    done = {
        "added": _("Agent added."),
        "disabled": _("Agent disabled: their sessions and API tokens have ended."),
        "enabled": _("Agent enabled."),
        "password": _("Password changed: the agent's sessions and API tokens have ended."),
        "2fa-reset": _("Two-factor authentication reset: the agent can set it up again from "
                       "their account page."),
        "role": _("Role changed: the agent's sessions and API tokens have ended."),
    }
    return render("admin/agents.html", page="admin-agents", status=status,
                  agents=ext().accounts.list_agents(with_2fa=True), me=_who().email,
                  message=done.get(request.args.get("done", ""), ""), form=form or {},
                  errors=errors or {}, error=error, row_errors=row_errors or {},
                  min_password=MIN_PASSWORD,
                  reauth=_reauth("pages.admin_agents") if reauth else None)


@bp.get("/admin/agents")
@admin_page
def admin_agents() -> Response:
    return _agents_page()


@bp.post("/admin/agents")
@admin_page
def admin_agents_post() -> Response:
    who = check_form_csrf()
    action = request.form.get("action", "")
    if action in {"add", "password", "reset-2fa", "make-admin"} and not _recent():
        # A stolen admin session must not set a password, remove factors, or make itself a
        # lasting way in (a new account, or an accomplice made admin) on its own.
        return _agents_page(status=403, error=_reauth_message(), reauth=True)
    if action == "add":
        return _add_agent(who)
    email = request.form.get("email", "")
    if not isinstance(email, str) or not EMAIL_RE.fullmatch(email.strip()):
        return _agents_page(status=400, error=_("Choose an agent from the list."))
    email = email.strip().lower()
    accounts = ext().accounts
    try:
        # The rules (no disabling oneself, no changing one's own role, no admin left without a
        # way in when two-factor is required) are the accounts layer's: a refusal comes back
        # as a Conflict with its reason, which the page puts into words below.
        if action in {"disable", "enable"}:
            accounts.set_disabled(email, action == "disable", actor=who.email)
            return _back("pages.admin_agents", action + "d")
        if action == "password":
            accounts.set_password(email, request.form.get("password", ""), actor=who.email)
            return _back("pages.admin_agents", "password")
        if action == "reset-2fa":
            accounts.reset_2fa(email, actor=who.email)
            return _back("pages.admin_agents", "2fa-reset")
        if action in {"make-admin", "make-agent"}:
            accounts.edit_agent(email, admin=action == "make-admin", actor=who.email)
            return _back("pages.admin_agents", "role")
    except ValidationFailed as exc:
        message = _field_messages()["password"] if "password" in _fields_of(exc) \
            else _("Check the form and try again.")
        return _agents_page(status=400, error=_("%(email)s: %(problem)s", email=email,
                                                   problem=message),
                            row_errors={email: message})
    except NotFound:
        return _agents_page(status=404, error=_("There is no agent %(email)s (any more).",
                                                email=email))
    except Conflict as exc:
        message = _("That is not possible right now.")
        if exc.extra.get("reason") == "self":
            message = _("You cannot disable your own account or change your own role: ask "
                        "another admin.")
        elif exc.extra.get("reason") == "2fa-required":
            message = _("Two-factor authentication is required for admins: the agent must set "
                        "it up on their account page first, and an admin cannot remove their "
                        "own.")
        return _agents_page(status=409, error=message, row_errors={email: message})
    return _agents_page(status=400, error=_("Unknown action. Reload the page and try again."))


def _add_agent(who: Principal) -> Response:
    email = request.form.get("email", "").strip()
    name = request.form.get("name", "").strip()
    admin = request.form.get("admin") == "1"
    form = {"email": email, "name": name, "admin": admin}
    fields = _field_messages()
    try:
        # add_agent holds the name to vault.names's rule (ValidationFailed on display_name).
        ext().accounts.add_agent(email, request.form.get("password", ""), name=name,
                                 admin=admin, actor=who.email)
    except ValidationFailed as exc:
        errors = {name: fields.get(name, _("This value is not valid.")) for name in
                  _fields_of(exc)}
        return _agents_page(status=400, form=form, errors=errors,
                            error=_("Please correct the fields marked below."))
    except Conflict:
        return _agents_page(status=409, form=form,
                            errors={"email": _("An agent with this e-mail already exists.")},
                            error=_("An agent with this e-mail already exists."))
    return _back("pages.admin_agents", "added")


# -- helpdesk API keys ----------------------------------------------------------------------------

def _keys_page(*, status: int = 200, name: str = "", errors: dict[str, str] | None = None,
               error: str = "", new_key: str = "", new_key_name: str = "",
               reauth: bool = False) -> Response:
    done = {"revoked": _("Key revoked: it no longer works.")}
    keys = [{**k, "created_at": iso(k["created_at"]) if k["created_at"] else None}
            for k in ext().accounts.list_api_keys()]
    return render("admin/keys.html", page="admin-keys", status=status, keys=keys,
                  message=done.get(request.args.get("done", ""), ""), name=name,
                  errors=errors or {}, error=error, new_key=new_key, new_key_name=new_key_name,
                  reauth=_reauth("pages.admin_keys") if reauth else None)


@bp.get("/admin/keys")
@admin_page
def admin_keys() -> Response:
    return _keys_page()


@bp.post("/admin/keys")
@admin_page
def admin_keys_post() -> Response:
    who = check_form_csrf()
    action = request.form.get("action", "")
    name = request.form.get("name", "").strip()
    accounts = ext().accounts
    if action == "create":
        if not _recent():
            return _keys_page(status=403, name=name, error=_reauth_message(), reauth=True)
        try:
            key = accounts.create_api_key(name, actor=who.email)
        except ValidationFailed:
            return _keys_page(status=400, name=name, errors={"name": _field_messages()["name"]},
                              error=_("Please correct the fields marked below."))
        except Conflict:
            message = _("A key with this name already exists: choose another name, or revoke "
                        "the old key first.")
            return _keys_page(status=409, name=name, errors={"name": message}, error=message)
        # Shown in this response only: vault keeps nothing but its digest.
        return _keys_page(status=201, new_key=key, new_key_name=name)
    if action == "revoke":
        try:
            accounts.revoke_api_key(name, actor=who.email)
        except NotFound:
            return _keys_page(status=404, error=_("There is no key named %(name)s (any more).",
                                                  name=name))
        return _back("pages.admin_keys", "revoked")
    return _keys_page(status=400, error=_("Unknown action. Reload the page and try again."))


# -- audit log ------------------------------------------------------------------------------------

@bp.get("/admin/audit")
@admin_page
def admin_audit() -> Response:
    ticket = request.args.get("ticket", "").strip()
    agent = request.args.get("agent", "").strip()
    fields = _field_messages()
    errors: dict[str, str] = {}
    if ticket and not ids.is_ticket(ticket):
        errors["ticket"] = fields["ticket"]
    if agent:
        try:
            agent = normalise_email(agent)
        except ValidationFailed:
            errors["agent"] = fields["agent"]
    if errors:
        return render("admin/audit.html", page="admin-audit", status=400, ticket=ticket,
                      agent=agent, errors=errors, events=[], complete=True,
                      error=_("Please correct the filters marked below."),
                      limit=AUDIT_LIMIT, window=AUDIT_WINDOW)
    log = ext().vault.audit_log(ticket=ticket or None, agent=agent or None, limit=AUDIT_LIMIT,
                                window=AUDIT_WINDOW)
    return render("admin/audit.html", page="admin-audit", ticket=ticket, agent=agent,
                  errors={}, events=log["events"], complete=log["complete"], error="",
                  limit=AUDIT_LIMIT, window=AUDIT_WINDOW)


# -- the agent's own account and two-factor enrolment --------------------------------------------

def qr_svg(text: str, title: str) -> Markup:
    """A QR code of `text` as inline SVG (the page's CSP allows no data: images)."""
    code = segno.make(text, error="m")
    # segno draws the SVG from the QR matrix and escapes the title: no text of ours is markup.
    return Markup(code.svg_inline(scale=4, border=4, dark="#000", light="#fff",  # noqa: S704 # nosec B704
                                  title=title))


def _account_page(*, status: int = 200, enrolment: Any = None, errors: dict[str, str] | None = None,
                  error: str = "") -> Response:
    who = _who()
    e = ext()
    accounts = e.accounts
    done = {"2fa-on": _("Two-factor authentication is on. From now on, logging in asks for a "
                        "code from your app."),
            "passkey-added": _("Passkey added."),
            "passkey-removed": _("Passkey removed.")}
    me = accounts.get_agent(who.email, with_2fa=True)
    pending = enrolment is not None or accounts.pending_totp(who.email) is not None
    qr = qr_svg(enrolment.uri, _("QR code for your authenticator app")) if enrolment else None
    recent = _recent()
    passkeys = [{**p, "created_at": iso(p["created_at"]) if p["created_at"] else None,
                 "last_used_at": iso(p["last_used_at"]) if p["last_used_at"] else None}
                for p in e.passkeys.list(who.email)]
    return render("agent/account.html", page="account", status=status, me=me,
                  pending=pending and not me["two_factor"], enrolment=enrolment, qr=qr,
                  message=done.get(request.args.get("done", ""), ""), errors=errors or {},
                  error=error, recent=recent, passkeys=passkeys,
                  passkeys_allowed=e.passkeys.allowed_for(who.email),
                  passkeys_usable=e.passkeys.usable,
                  reauth=None if recent else _reauth("pages.account"))


@bp.get("/account")
@agent_page
def account() -> Response:
    return _account_page()


@bp.post("/account")
@agent_page
def account_post() -> Response:
    who = check_form_csrf()
    accounts = ext().accounts
    action = request.form.get("action", "")
    if action in {"start-2fa", "remove-passkey"} and not _recent():
        # Confirming a started setup needs no second look: its key is shown to a recent
        # sign-in only (never again to a stale one), and it expires.
        return _account_page(status=403, error=_reauth_message())
    if action == "remove-passkey":
        return _remove_passkey(who)
    if action == "start-2fa":
        try:
            enrolment = accounts.start_totp(who.email)
        except Conflict:
            return _account_page(status=409, error=_("Two-factor authentication is already on. "
                                                     "To set it up again, ask an admin to reset "
                                                     "it first."))
        return _account_page(enrolment=enrolment)
    if action == "confirm-2fa":
        code = request.form.get("code", "").replace(" ", "")
        try:
            accounts.confirm_totp(who.email, code)
        except Conflict:
            return _account_page(status=409, error=_("This setup has expired or was not started. "
                                                     "Start again."))
        except ValidationFailed:
            message = _("That code is not valid. Check that your device's clock is right and "
                        "enter the code your app shows now.") if code.isdigit() and \
                len(code) == 6 else _("Enter the 6-digit code from your app.")
            # The same pending secret again, so a mistyped or unscanned setup can be redone;
            # only to a recent sign-in, as when it was first shown: a stolen session that
            # guesses a code must not be handed the key.
            again = accounts.pending_totp(who.email) if _recent() else None
            return _account_page(status=400, enrolment=again, errors={"code": message},
                                 error=message)
        return _back("pages.account", "2fa-on")
    return _account_page(status=400, error=_("Unknown action. Reload the page and try again."))


def _remove_passkey(who: Principal) -> Response:
    try:
        ext().passkeys.remove(who.email, request.form.get("passkey", ""), actor=who.email)
    except NotFound:
        return _account_page(status=404, error=_("Unknown action. Reload the page and try "
                                                 "again."))
    except Conflict:
        return _account_page(status=409, error=_(
            "Two-factor authentication is required for admins: the agent must set it up on "
            "their account page first, and an admin cannot remove their own."))
    return _back("pages.account", "passkey-removed")


__all__ = ["account", "admin_agents", "admin_audit", "admin_keys", "qr_svg"]
