"""Which language a request gets, and the messages the page scripts show.

Ten languages: the language comes from `?lang=` (the switcher, remembered in a cookie), then the
cookie, then `Accept-Language`. Templates and this module are the only places with user-visible
text; the catalogs live in `vault/translations/<locale>` (`scripts/i18n` extracts, merges and
compiles them; docs/translating.md says how to correct one).
"""

from __future__ import annotations

from flask import Flask, current_app, g, request
from flask_babel import Babel, gettext, lazy_gettext, refresh

# BCP 47 tags, as `?lang=`, the cookie, `lang` and `hreflang` carry them; the first is the default.
LANGUAGES = ("en", "fr", "de", "es", "it", "pt-BR", "nl", "pl", "ja", "ar")
# Each language's own name for itself, as the switcher shows it.
LANGUAGE_NAMES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español",
                  "it": "Italiano", "pt-BR": "Português (Brasil)", "nl": "Nederlands",
                  "pl": "Polski", "ja": "日本語", "ar": "العربية"}
RIGHT_TO_LEFT = frozenset({"ar"})
LANG_COOKIE = "__Host-vault_lang"  # production's name; vault.cookies says the demo's
_BY_LOWER = {tag.lower(): tag for tag in LANGUAGES}


def known_language(value: str | None) -> str | None:
    """`value` as one of LANGUAGES ("pt_br" and "PT-BR" are "pt-BR"), or None."""
    if not value or len(value) > 8:
        return None
    return _BY_LOWER.get(value.replace("_", "-").lower())


def requested_language() -> str | None:
    """A valid `?lang=` value, if the request carries one."""
    return known_language(request.args.get("lang"))


def _lang_cookie() -> str:
    """The switcher's cookie as this app names it (vault.cookies: no `__Host-` in the plain-http
    loopback demo), read from the app's extension so that this bottom module imports none."""
    vault = current_app.extensions.get("vault")
    return str(vault.cookies.lang) if vault is not None else LANG_COOKIE


def page_language() -> str:
    """The request's language as a BCP 47 tag, chosen once per request."""
    if "language" not in g:
        g.language = (requested_language() or known_language(request.cookies.get(_lang_cookie()))
                      or request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0])
    return str(g.language)


def use_language(tag: str) -> None:
    """Speak `tag` (one of LANGUAGES) for the rest of this request."""
    g.language = tag
    refresh()


def text_direction() -> str:
    return "rtl" if page_language() in RIGHT_TO_LEFT else "ltr"


def select_locale() -> str:
    """The Babel locale of the request's language ("pt-BR" is Babel's "pt_BR")."""
    return page_language().replace("-", "_")


def install(app: Flask) -> None:
    Babel(app, locale_selector=select_locale, default_translation_directories="translations")


_ = lazy_gettext

# What the page scripts may say, by key. Sent to each page as JSON in a data attribute, so a
# script never carries a sentence of its own and French pages stay French.
SCRIPT_MESSAGES = {
    "copied": _("Copied."),
    "copy_failed": _("Could not copy: select the text and copy it yourself."),
    "no_crypto": _("This page needs a secure (HTTPS) connection and a current browser to encrypt "
                   "in your browser. Nothing was sent."),
    "no_key": _("This link has lost its key (the part after #). Open the link exactly as you "
                "received it."),
    "encrypting": _("Encrypting in your browser…"),
    "sending": _("Sending…"),
    "revealing": _("Revealing…"),
    "deleting": _("Deleting…"),
    "invalid_envelope": _("These credentials cannot be opened with this link's key. The link may "
                          "be incomplete or the data was altered. Nothing is shown."),
    "fix_fields": _("Please correct the fields marked below."),
    "required": _("This field is required."),
    "bad_ticket": _("Use 1 to 64 letters, digits, '-' or '_'."),
    "bad_port": _("Enter a port number between 1 and 65535."),
    "too_large": _("This is too large to send (64 KiB at most)."),
    "rate_limited": _("Too many attempts. Try again in a moment."),
    "unavailable": _("vault is briefly unavailable. Nothing was lost; try again in a moment."),
    "failed": _("Something went wrong. Nothing was lost; try again."),
    "login_failed": _("Wrong e-mail or password."),
    "login_code": _("Enter the 6-digit code from your authenticator app."),
    "login_code_invalid": _("That code is not valid. Try the next one."),
    "login_2fa_required": _("Admins need two-factor authentication: ask whoever runs vault to "
                            "set it up for you (vault agent enrol-2fa)."),
    "login_sso_only": _("Password login is only for admins here: use the sign-in button "
                        "above."),
    "session_over": _("Your session has ended. Log in again."),
    "csrf": _("This page is out of date. Reload it and try again."),
    "not_assignee": _("Only the agent assigned to this ticket can reveal it. Nothing was "
                      "consumed: it is still there for the assignee."),
    "not_agent": _("Log in as an agent to reveal this."),
    "ticket_closed": _("This ticket is closed: it does not accept credentials until it is "
                       "reopened."),
    "ticket_full": _("This ticket already holds too many waiting submissions."),
    "already_filled": _("This request has already been answered."),
    "gone_revealed": _("Already revealed by {who} at {when}."),
    "gone_deleted": _("Deleted by the customer before it was read."),
    "gone_discarded": _("Discarded unread by the support team."),
    "gone_purged": _("The ticket was closed: these credentials were deleted."),
    "gone_expired": _("This expired before it was read."),
    "gone": _("This is no longer available."),
    "not_found": _("There is nothing here. Check the link."),
    "forbidden_manage": _("This manage link is not valid for these credentials."),
    "deleted": _("Deleted. Nobody can read it now."),
    "hidden": _("Hidden. The credentials are no longer on this page."),
    "not_allowed": _("Your account is not allowed to do this."),
    "ack_failed": _("Shown, but vault could not confirm the deletion: it deletes them by itself "
                    "within a minute. Do not reload this page."),
    "revealed_now": _("Revealed by you. vault has deleted them: this link cannot show them again."),
    "wait_seconds": _("Try again in {seconds} s."),
    "ready_for_ticket": _("Link ready for ticket {ticket}"),
    "sent_for_ticket": _("Sent for ticket {ticket}. Now paste this link into your ticket"),
    "passkey_failed": _("The passkey did not sign you in. Try again, or sign in another way."),
    "passkey_not_added": _("The passkey was not added. Try again."),
    "passkey_required": _("Admins here sign in with their passkey."),
}


# The problem+json titles, by their English (vault.errors), in the reader's language: `type` and
# `status` are for programs, `title` is for the person who reads the answer.
PROBLEM_TITLES = {
    "Internal error": _("Internal error"),
    "Bad request": _("Bad request"),
    "Invalid input": _("Invalid input"),
    "Not authenticated": _("Not authenticated"),
    "Not allowed": _("Not allowed"),
    "Not found": _("Not found"),
    "Method not allowed": _("Method not allowed"),
    "Conflict": _("Conflict"),
    "Gone": _("Gone"),
    "Too large": _("Too large"),
    "Unsupported media type": _("Unsupported media type"),
    "Too many requests": _("Too many requests"),
    "Service unavailable": _("Service unavailable"),
    "Sign-in refused": _("Sign-in refused"),
}


def problem_title(english: str) -> str:
    """`english` (a VaultError's title) in the request's language; unknown titles stay English."""
    title = PROBLEM_TITLES.get(english)
    return str(title) if title is not None else english


def script_messages() -> dict[str, str]:
    return {key: str(value) for key, value in SCRIPT_MESSAGES.items()}


__all__ = [
    "LANGUAGES",
    "LANGUAGE_NAMES",
    "LANG_COOKIE",
    "RIGHT_TO_LEFT",
    "gettext",
    "install",
    "known_language",
    "page_language",
    "problem_title",
    "script_messages",
    "select_locale",
    "text_direction",
    "use_language",
]
