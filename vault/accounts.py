"""Agents, their API tokens and web sessions, and helpdesk API keys.

Tokens and keys are random, shown once and stored only as SHA-256 digests (found by digest, so a
check is one lookup, not a password hash). Each token and session carries the agent's revocation
epoch: disabling or removing an agent or changing their password bumps it, which ends every session
and token of theirs in one step.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyotp

from vault.audit import emit
from vault.config import Config
from vault.crypto.b64 import b64url_encode
from vault.crypto.keyring import InvalidWrap, KeyRing
from vault.crypto.passwords import Passwords
from vault.crypto.tokens import (
    AGENT_TOKEN,
    API_KEY,
    SESSION,
    constant_time_equals,
    is_token,
    new_token,
    token_digest,
)
from vault.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    SignInRefused,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
)
from vault.names import display_name
from vault.principal import Principal
from vault.storage import Gate, Store

# Printable, no spaces: surrogates and control characters are not an e-mail (and not UTF-8).
EMAIL_RE = re.compile(r"^[!-?A-~]{1,64}@[!-?A-~]{1,190}$")
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
# How long a started, unconfirmed TOTP enrolment can still be confirmed.
TOTP_PENDING_MS = 15 * 60 * 1000


@dataclass(frozen=True)
class TotpEnrolment:
    """A started enrolment: what the agent's authenticator app needs (shown once)."""

    secret: str  # base32, for typing into the app by hand
    uri: str  # otpauth://, for a QR code


def totp_context(email: str) -> bytes:
    """What an agent's wrapped TOTP secret is bound to."""
    return b"vault-totp:" + email.encode()


def normalise_email(email: Any) -> str:
    if not isinstance(email, str) or not EMAIL_RE.fullmatch(email.strip()):
        raise ValidationFailed([{"name": "email", "reason": "Enter an e-mail address."}])
    return email.strip().lower()


def check_password(password: Any) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValidationFailed([{"name": "password", "reason":
                                 f"Use at least {MIN_PASSWORD} characters."}])
    return password


def _public(agent: dict[str, str], *, with_2fa_at: int | None = None) -> dict[str, Any]:
    # Cleaned as it is read too: a name stored before the rule held is shown within it.
    out = {"email": agent.get("email", ""),
           "name": display_name(agent.get("name"), clean=True) or agent.get("email", ""),
           "role": agent.get("role", "agent"), "disabled": agent.get("disabled") == "1",
           "helpscout_id": agent.get("helpscout_id") or None}
    if with_2fa_at is not None:
        # Whether a second factor is on, or started and still confirmable (never the secret).
        started = int(agent.get("totp_pending_at") or 0)
        out["two_factor"] = bool(agent.get("totp"))
        out["two_factor_pending"] = bool(agent.get("totp_pending")) and \
            with_2fa_at - started <= TOTP_PENDING_MS
        out["passkeys"] = passkey_count(agent)
    return out


def passkey_count(agent: dict[str, str]) -> int:
    """How many passkeys the agent has (kept on their record by the store's passkey steps)."""
    try:
        return max(0, int(agent.get("passkeys") or 0))
    except ValueError:
        return 0


def has_second_factor(agent: dict[str, str]) -> bool:
    """A TOTP secret or a passkey: what VAULT_REQUIRE_2FA asks of an admin. A passkey counts:
    it is something the agent holds, unlocked by something they know or are (user
    verification is required)."""
    return bool(agent.get("totp")) or passkey_count(agent) > 0


SSO_ONLY_MESSAGE = ("Agents sign in through the team's identity provider here: password login is "
                "off (VAULT_OIDC_ONLY).")
REAUTH_MESSAGE = ("This change needs a recent sign-in: sign in again (password and code, a "
                  "passkey, or the identity provider), then try once more.")


class Accounts:
    def __init__(self, store: Store, passwords: Passwords, config: Config,
                 clock: Callable[[], float] | None = None, keyring: KeyRing | None = None) -> None:
        self.store = store
        self.keyring = keyring
        self._csrf_key = hashlib.sha256(b"vault-csrf:" + config.secret_key.encode()).digest()
        self.passwords = passwords
        self.config = config
        self.clock = clock or time.time

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    # -- agents -------------------------------------------------------------------------------

    def add_agent(self, email: Any, password: Any, *, name: str = "", admin: bool = False,
                  helpscout_id: str = "", actor: str = "cli") -> dict[str, Any]:
        email = normalise_email(email)
        password = check_password(password)
        fields = {"name": display_name(name) or email, "role": "admin" if admin else "agent",
                  "pw": self.passwords.hash(password), "disabled": "0",
                  "created_at": str(self.now_ms())}
        if helpscout_id:
            fields["helpscout_id"] = str(helpscout_id)
        if not self.store.add_agent(email, fields):
            raise Conflict("An agent with this e-mail already exists.")
        self.store.add_audit(now_ms=self.now_ms(), event="agent.created", actor=actor,
                             detail=email)
        emit("agent.created", agent=email, actor=actor)
        return _public({**fields, "email": email})

    def get_agent(self, email: str, *, with_2fa: bool = False) -> dict[str, Any]:
        """The agent's public fields; `with_2fa` adds `two_factor` and `two_factor_pending`."""
        agent = self.store.get_agent(normalise_email(email))
        if not agent:
            raise NotFound("No such agent.")
        return _public(agent, with_2fa_at=self.now_ms() if with_2fa else None)

    def list_agents(self, *, with_2fa: bool = False) -> list[dict[str, Any]]:
        now = self.now_ms() if with_2fa else None
        return [_public(a, with_2fa_at=now) for a in self.store.list_agents()]

    def edit_agent(self, email: str, *, name: str | None = None, admin: bool | None = None,
                   helpscout_id: str | None = None, actor: str = "cli") -> dict[str, Any]:
        """Change an agent's name, role or Help Scout id.

        Conflict (`reason` `self`) when `actor` changes their own role: an admin cannot demote
        themself, so the team keeps the admin who made the change. Conflict (`reason`
        `2fa-required`) when, with two-factor required for admins, an agent promotes another
        agent who has no second factor yet: the new admin could not log in. The operator at
        the command line may (`actor` is no agent's e-mail): `vault agent enrol-2fa` then gives
        the new admin their factor.
        """
        email = normalise_email(email)
        if admin is not None and actor == email:
            raise Conflict("An admin cannot change their own role.", reason="self")
        if admin and self.config.require_2fa and EMAIL_RE.fullmatch(actor):
            agent = self.store.get_agent(email)
            if not agent:
                raise NotFound("No such agent.")
            if not has_second_factor(agent):
                raise Conflict("This agent has no second factor yet.", reason="2fa-required")
        fields: dict[str, str] = {}
        if name is not None:
            fields["name"] = display_name(name) or email
        if admin is not None:
            fields["role"] = "admin" if admin else "agent"
        if helpscout_id is not None:
            fields["helpscout_id"] = str(helpscout_id)
        # A role change takes effect at once: revoke so no session keeps the old role.
        if not self.store.update_agent(email, fields, revoke=admin is not None):
            raise NotFound("No such agent.")
        self._audit("agent.edited", actor, email)
        return self.get_agent(email)

    def set_password(self, email: str, password: Any, *, actor: str = "cli") -> None:
        email = normalise_email(email)
        password = check_password(password)
        if not self.store.update_agent(email, {"pw": self.passwords.hash(password)}, revoke=True):
            raise NotFound("No such agent.")
        self._audit("agent.password_changed", actor, email)

    def set_disabled(self, email: str, disabled: bool, *, actor: str = "cli") -> None:
        """Disable or enable an agent; disabling ends their sessions and tokens.

        Conflict (`reason` `self`) when `actor` disables their own account: it would end the
        session they act from and leave them no way back in.
        """
        email = normalise_email(email)
        if disabled and actor == email:
            raise Conflict("An admin cannot disable their own account.", reason="self")
        if not self.store.update_agent(email, {"disabled": "1" if disabled else "0"},
                                       revoke=disabled):
            raise NotFound("No such agent.")
        self._audit("agent.disabled" if disabled else "agent.enabled", actor, email)

    def reset_2fa(self, email: str, *, actor: str = "cli") -> None:
        """Remove an agent's second factor and every passkey of theirs (ends their sessions and
        tokens): what an admin does for an agent who lost a device.

        Conflict (`reason` `2fa-required`) when `actor` removes their own while two-factor is
        required for admins: no admin logs in without one, so they would be locked out.
        """
        email = normalise_email(email)
        if actor == email and self.config.require_2fa:
            raise Conflict("An admin cannot remove their own second factor.",
                           reason="2fa-required")
        # The passkeys go first, then the sessions: a passkey sign-in between the two would
        # otherwise open a session that outlives the reset.
        removed = [p["id"] for p in self.store.passkeys_of(email)
                   if self.store.remove_passkeys(email, [p["id"]])]
        if not self.store.update_agent(email, {"totp": "", "totp_last": "0", "totp_pending": "",
                                               "totp_pending_at": "0"}, revoke=True):
            raise NotFound("No such agent.")
        self._audit("agent.2fa_reset", actor, email)
        for passkey_id in removed:
            self._audit("passkey.removed", actor, f"{email} {passkey_id}")

    def remove_agent(self, email: str, *, actor: str = "cli") -> None:
        email = normalise_email(email)
        if not self.store.remove_agent(email):
            raise NotFound("No such agent.")
        self._audit("agent.removed", actor, email)

    def agent_for_helpscout(self, hs_id: str) -> str | None:
        return self.store.agent_by_helpscout_id(hs_id)

    def _audit(self, event: str, actor: str, detail: str) -> None:
        self.store.add_audit(now_ms=self.now_ms(), event=event, actor=actor, detail=detail)
        emit(event, agent=detail, actor=actor)

    # -- tokens and keys ------------------------------------------------------------------------

    def create_token(self, email: str, *, actor: str = "cli") -> tuple[str, str]:
        """A new agent API token: (token, token id). The token is shown once."""
        email = normalise_email(email)
        agent = self.store.get_agent(email)
        if not agent:
            raise NotFound("No such agent.")
        if agent.get("disabled") == "1":
            raise Conflict("This agent is disabled.")
        token, token_id = new_token(AGENT_TOKEN), "tok_" + secrets.token_hex(6)
        self.store.add_token(digest=token_digest(token), token_id=token_id, owner=email,
                             kind="token", epoch=agent.get("epoch", ""), now_ms=self.now_ms())
        self._audit("token.created", actor, f"{email} {token_id}")
        return token, token_id

    def list_tokens(self, email: str) -> list[dict[str, Any]]:
        email = normalise_email(email)
        if not self.store.get_agent(email):
            raise NotFound("No such agent.")
        return [{"id": t["id"], "created_at": int(t.get("created_at") or 0)}
                for t in self.store.list_tokens(email)]

    def revoke_token(self, token_id: str, *, actor: str = "cli") -> None:
        row = self.store.revoke_token(token_id, kind="token")
        if not row:
            raise NotFound("No such token.")
        self._audit("token.revoked", actor, f"{row.get('owner', '')} {token_id}")

    def create_api_key(self, name: str, *, actor: str = "cli") -> str:
        if not isinstance(name, str) or not NAME_RE.fullmatch(name):
            raise ValidationFailed([{"name": "name",
                                     "reason": "Use 1 to 64 letters, digits, '.', '-' or '_'."}])
        if self.store.api_key_id(name):
            raise Conflict("A helpdesk key with this name already exists.")
        key, key_id = new_token(API_KEY), "key_" + secrets.token_hex(6)
        self.store.add_token(digest=token_digest(key), token_id=key_id, owner=name, kind="apikey",
                             epoch="0", now_ms=self.now_ms())
        self._audit("apikey.created", actor, name)
        return key

    def list_api_keys(self) -> list[dict[str, Any]]:
        return [{"name": k["owner"], "id": k["id"], "created_at": int(k.get("created_at") or 0)}
                for k in self.store.list_api_keys()]

    def revoke_api_key(self, name: str, *, actor: str = "cli") -> None:
        key_id = self.store.api_key_id(name)
        if not key_id or not self.store.revoke_token(key_id, kind="apikey"):
            raise NotFound("No such helpdesk key.")
        self._audit("apikey.revoked", actor, name)

    # -- authentication -------------------------------------------------------------------------

    def authenticate_bearer(self, token: str) -> Principal | None:
        if is_token(token, AGENT_TOKEN):
            kind = "token"
        elif is_token(token, API_KEY):
            kind = "apikey"
        else:
            return None
        row = self.store.authenticate(kind=kind, digest=token_digest(token), now_ms=self.now_ms(),
                                      idle_ms=0, max_ms=0)
        return self.principal(row, via_cookie=False)

    def authenticate_session(self, cookie: str) -> Principal | None:
        if not is_token(cookie, SESSION):
            return None
        digest = token_digest(cookie)
        row = self.store.authenticate(kind="session", digest=digest, now_ms=self.now_ms(),
                                      idle_ms=self.config.session_idle * 1000,
                                      max_ms=self.config.session_max * 1000)
        return self.principal(row, via_cookie=True, digest=digest)

    def session_gate(self, cookie: str, *, csrf: str | None, limits: str = "",
                     identity: str = "") -> Gate | None:
        """A gate that authenticates the web session `cookie` (a SESSION token) in the step's
        own round trip, with its idle and absolute lifetimes; None when `csrf` (the presented
        CSRF token, None where none is needed) is not this cookie's, compared in constant time
        before any Redis access."""
        digest = token_digest(cookie)
        if csrf is not None and not (csrf and constant_time_equals(self.csrf_token(digest), csrf)):
            return None
        return Gate(auth="session", digest=digest, idle_ms=self.config.session_idle * 1000,
                    max_ms=self.config.session_max * 1000, limits=limits, identity=identity)

    def csrf_token(self, session_digest: str) -> str:
        """Derived from the server key and the session cookie's digest: nothing to store, and
        checkable before the session is looked up (so a state change stays one round trip)."""
        mac = hmac.new(self._csrf_key, session_digest.encode(), hashlib.sha256).digest()
        return b64url_encode(mac)

    def principal(self, row: list[str] | None, *, via_cookie: bool,
                  digest: str = "") -> Principal | None:
        """The caller that an authentication row stands for (the store's AUTHENTICATE or a
        step's gate): ['agent', e-mail, name, role, id, session] or ['apikey', name, id]."""
        if not row:
            return None
        if row[0] == "apikey":
            return Principal(kind="apikey", email=row[1], name=row[1], role="helpdesk",
                             session="k:" + row[2])
        _, email, name, role, _, session = row
        name = display_name(name, clean=True)  # one C-level check for a name within the rule
        if via_cookie:
            return Principal(kind="agent", email=email, name=name or email, role=role or "agent",
                             session=session, csrf=self.csrf_token(digest), via_cookie=True)
        return Principal(kind="agent", email=email, name=name or email, role=role or "agent",
                         session=session)

    # -- second factor ------------------------------------------------------------------------

    def enroll_totp(self, email: str, *, actor: str = "cli") -> str:
        """Give the agent a new TOTP secret; returns its otpauth:// URI (shown once).

        The secret is stored wrapped under the key ring, like envelopes: a Redis dump alone does
        not give anyone a second factor.
        """
        if self.keyring is None:
            raise Conflict("Two-factor enrolment needs the server's key ring.")
        email = normalise_email(email)
        agent = self.store.get_agent(email)
        if not agent:
            raise NotFound("No such agent.")
        secret = pyotp.random_base32()
        wrapped = self.keyring.wrap(secret.encode(), context=totp_context(email))
        self.store.update_agent(email, {"totp": wrapped.decode(), "totp_last": "0",
                                        "totp_pending": "", "totp_pending_at": "0"}, revoke=True)
        self._audit("agent.2fa_enrolled", actor, email)
        return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="vault")

    def start_totp(self, email: str) -> TotpEnrolment:
        """Step one of an agent's own enrolment: a new *pending* secret, not yet enforced.

        It is wrapped under the key ring like an active one and kept in `totp_pending` for
        `TOTP_PENDING_MS`; `confirm_totp` with a code from it makes it the active factor. So an
        agent who never finishes (a lost phone, a mistyped secret) is not locked out. A second
        start replaces the pending secret. Conflict when two-factor is already on: changing it
        takes an admin's reset first, so a stolen session alone cannot swap the factor.
        """
        if self.keyring is None:
            raise Conflict("Two-factor enrolment needs the server's key ring.")
        email = normalise_email(email)
        agent = self.store.get_agent(email)
        if not agent:
            raise NotFound("No such agent.")
        if agent.get("totp"):
            raise Conflict("Two-factor authentication is already on for this account.",
                           reason="2fa-active")
        secret = pyotp.random_base32()
        wrapped = self.keyring.wrap(secret.encode(), context=totp_context(email))
        self.store.update_agent(email, {"totp_pending": wrapped.decode(),
                                        "totp_pending_at": str(self.now_ms())})
        self._audit("agent.2fa_started", email, email)
        uri = pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name="vault")
        return TotpEnrolment(secret=secret, uri=uri)

    def pending_totp(self, email: str) -> TotpEnrolment | None:
        """The agent's started, unexpired enrolment (to show it again with a wrong code)."""
        email = normalise_email(email)
        agent = self.store.get_agent(email) or {}
        secret = self._pending_secret(email, agent)
        if not secret:
            return None
        return TotpEnrolment(secret=secret, uri=pyotp.TOTP(secret).provisioning_uri(
            name=email, issuer_name="vault"))

    def _pending_secret(self, email: str, agent: dict[str, str]) -> str:
        wrapped = agent.get("totp_pending", "")
        started = int(agent.get("totp_pending_at") or 0)
        if not wrapped or self.keyring is None or self.now_ms() - started > TOTP_PENDING_MS:
            return ""
        try:
            return self.keyring.unwrap(wrapped.encode(), context=totp_context(email)).decode()
        except InvalidWrap:
            return ""

    def confirm_totp(self, email: str, code: Any) -> None:
        """Step two: a current code from the pending secret makes it the active factor.

        From then on every login needs a code (`login`), and the code used here cannot be used
        again. Errors: Conflict (`reason` `2fa-not-started`) when there is no pending enrolment
        or it has expired (start again); ValidationFailed (`code`) for a code that is not six
        digits or not valid now. A wrong code leaves the enrolment pending and nothing enforced.
        """
        email = normalise_email(email)
        agent = self.store.get_agent(email)
        if not agent:
            raise NotFound("No such agent.")
        secret = self._pending_secret(email, agent)
        if not secret:
            raise Conflict("There is no two-factor setup to confirm (or it expired): start again.",
                           reason="2fa-not-started")
        if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code.strip()):
            raise ValidationFailed([{"name": "code",
                                     "reason": "Enter the 6-digit code from your app."}])
        step = self._matching_step(pyotp.TOTP(secret), code.strip(), after=0)
        if step is None:
            self._audit("agent.2fa_confirm_failed", email, email)
            raise ValidationFailed([{"name": "code", "reason":
                                     "That code is not valid. Check the app's clock and try "
                                     "the next one."}])
        self.store.update_agent(email, {"totp": agent["totp_pending"], "totp_last": str(step),
                                        "totp_pending": "", "totp_pending_at": "0"})
        self._audit("agent.2fa_enrolled", email, email)

    def _matching_step(self, totp: pyotp.TOTP, code: str, *, after: int) -> int | None:
        """The time step (one either side for clock drift) whose code is `code`, if newer than
        `after`, compared in constant time."""
        step = int(self.clock() // 30)
        for candidate in (step - 1, step, step + 1):
            if candidate > after and hmac.compare_digest(totp.at(candidate * 30), code):
                return candidate
        return None

    def _second_factor(self, email: str, agent: dict[str, str], code: Any) -> None:
        """Raise unless the login's second factor is satisfied (or not needed)."""
        wrapped = agent.get("totp", "")
        if not wrapped:
            if self.config.require_2fa and agent.get("role") == "admin":
                if passkey_count(agent):
                    # The admin's second factor is a passkey: it signs in alone (it is both).
                    raise Unauthenticated("Two-factor authentication is required for admins: "
                                          "sign in with your passkey.",
                                          reason="passkey-required")
                # Fail closed: an admin without a second factor cannot log in at all.
                raise Unauthenticated("Two-factor authentication is required for admins: "
                                      "ask an operator to run vault agent enrol-2fa.",
                                      reason="2fa-required")
            return
        if not isinstance(code, str) or not re.fullmatch(r"[0-9]{6}", code.strip()):
            raise Unauthenticated("Enter the 6-digit code from your authenticator app.",
                                  reason="totp-required")
        try:
            secret = self.keyring.unwrap(wrapped.encode(), context=totp_context(email)
                                         ).decode() if self.keyring else ""
        except InvalidWrap:
            secret = ""
        last = int(agent.get("totp_last") or 0)
        # A code is good once: its step must be newer than the last one used.
        step = self._matching_step(pyotp.TOTP(secret), code.strip(), after=last) if secret \
            else None
        if step is not None:
            self.store.update_agent(email, {"totp_last": str(step)})
            return
        raise Unauthenticated("That code is not valid. Try the next one.", reason="totp-invalid")

    def login(self, email: Any, password: Any, *, totp: Any = None, address: str = ""
              ) -> tuple[str, Principal]:
        """Check a password and open a web session: (session cookie value, principal).

        Every failure is the same Unauthenticated, and an unknown e-mail costs a full hash, so
        neither the message nor the timing tells which e-mails have accounts.
        """
        if self.login_form_for == "nobody":
            emit("login.failed", address=address, reason="password login is off")
            raise Forbidden(SSO_ONLY_MESSAGE, reason="sso-only")
        if not isinstance(password, str) or not password or len(password) > MAX_PASSWORD:
            raise BadRequest("Enter your e-mail and password.")
        try:
            email = normalise_email(email)
        except ValidationFailed:
            self.passwords.dummy_verify(password)
            raise Unauthenticated("Wrong e-mail or password.") from None
        agent = self.store.get_agent(email)
        ok = False
        if agent is None:
            self.passwords.dummy_verify(password)
        else:
            ok = self.passwords.verify(agent.get("pw", ""), password)
        if not ok or agent is None or agent.get("disabled") == "1":
            self.store.add_audit(now_ms=self.now_ms(), event="login.failed", actor=email,
                                 detail=address)
            emit("login.failed", agent=email, address=address)
            raise Unauthenticated("Wrong e-mail or password.")
        try:
            self._second_factor(email, agent, totp)
        except Unauthenticated:
            self.store.add_audit(now_ms=self.now_ms(), event="login.failed", actor=email,
                                 detail=f"second factor {address}".strip())
            emit("login.failed", agent=email, address=address, reason="second factor")
            raise
        if self.login_form_for == "admins" and agent.get("role") != "admin":
            # The same answer as a wrong password: the break-glass form must not tell anyone
            # that a guessed agent password is right.
            self.store.add_audit(now_ms=self.now_ms(), event="login.failed", actor=email,
                                 detail=f"password login is for admins only {address}".strip())
            emit("login.failed", agent=email, address=address, reason="password login is off")
            raise Unauthenticated("Wrong e-mail or password.")
        if self.passwords.needs_rehash(agent["pw"]):
            self.store.update_agent(email, {"pw": self.passwords.hash(password)})
        return self.open_session(email, agent, method="password", address=address)

    @property
    def login_form_for(self) -> str:
        """Who may log in with a password: "everyone"; with VAULT_OIDC_ONLY "nobody", or
        only admins with VAULT_OIDC_ADMIN_PASSWORD (the break-glass path: "admins").

        Passkeys follow the same rule (`may_sign_in_without_provider`): with VAULT_OIDC_ONLY
        the identity provider decides who gets in, and a passkey, like a password, is a
        credential of vault's own that would keep an agent the provider has offboarded in."""
        if not (self.config.oidc_only and self.config.oidc_enabled):
            return "everyone"
        return "admins" if self.config.oidc_admin_password else "nobody"

    def may_sign_in_without_provider(self, agent: dict[str, str]) -> bool:
        """Whether `agent` may sign in with vault's own credentials (password, passkey)."""
        who = self.login_form_for
        return who == "everyone" or (who == "admins" and agent.get("role") == "admin")

    def open_session(self, email: str, agent: dict[str, str], *, method: str, address: str
                     ) -> tuple[str, Principal]:
        """A new web session for `agent`, signed in now by `method`: (cookie value,
        principal), audited."""
        cookie, sid = new_token(SESSION), secrets.token_hex(8)
        csrf = self.csrf_token(token_digest(cookie))
        self.store.add_session(digest=token_digest(cookie), session_id=sid, email=email,
                               epoch=agent.get("epoch", ""), now_ms=self.now_ms(),
                               idle_ms=self.config.session_idle * 1000, method=method)
        detail = address if method == "password" else f"{method} {address}".strip()
        self.store.add_audit(now_ms=self.now_ms(), event="login.succeeded", actor=email,
                             detail=detail)
        emit("login.succeeded", agent=email, address=address, method=method)
        return cookie, Principal(kind="agent", email=email,
                                 name=display_name(agent.get("name"), clean=True) or email,
                                 role=agent.get("role", "agent"), session="s:" + sid, csrf=csrf,
                                 via_cookie=True)

    def sign_in_refused(self, reason: str, *, email: str = "", address: str = "") -> None:
        """Audit an identity-provider sign-in vault refused (`login.failed`, the reason)."""
        self.store.add_audit(now_ms=self.now_ms(), event="login.failed", actor=email,
                             detail=f"oidc {reason} {address}".strip())
        emit("login.failed", agent=email, address=address, method="oidc", reason=reason)

    def _refused(self, reason: str, email: str, address: str) -> SignInRefused:
        self.sign_in_refused(reason, email=email, address=address)
        refusal = SignInRefused(reason, 403, email)
        refusal.audited = True
        return refusal

    def sso_login(self, email: str, name: str, *, address: str = "") -> tuple[str, Principal]:
        """Open a web session for the identity provider's verified `email`: the existing,
        enabled agent of that e-mail, or, with VAULT_OIDC_AUTOCREATE and a domain of
        VAULT_OIDC_ALLOWED_DOMAINS, a new non-admin one. Refused otherwise (audited)."""
        try:
            email = normalise_email(email)
        except ValidationFailed:
            raise self._refused("email-invalid", "", address) from None
        agent = self.store.get_agent(email)
        if agent is None:
            if not self.config.oidc_autocreate:
                raise self._refused("unknown-agent", email, address)
            if email.rsplit("@", 1)[1] not in self.config.oidc_allowed_domains:
                raise self._refused("domain-not-allowed", email, address)
            # No password: "!" is no argon2 hash, so no password ever matches it; an admin
            # may set one later (vault agent passwd).
            fields = {"name": display_name(name, clean=True) or email, "role": "agent",
                      "pw": "!", "disabled": "0",
                      "created_at": str(self.now_ms())}
            if self.store.add_agent(email, fields):
                self.store.add_audit(now_ms=self.now_ms(), event="agent.created", actor="oidc",
                                     detail=email)
                emit("agent.created", agent=email, actor="oidc", via="oidc")
            agent = self.store.get_agent(email)  # the record as stored (a racing sign-in's too)
            if agent is None:
                raise Unavailable()
        if agent.get("disabled") == "1":
            raise self._refused("agent-disabled", email, address)
        return self.open_session(email, agent, method="oidc", address=address)

    def logout(self, cookie: str) -> None:
        if is_token(cookie, SESSION):
            self.store.delete_session(token_digest(cookie))

    # -- a second look before sensitive changes --------------------------------------------------

    def signed_in_recently(self, cookie: str | None) -> bool:
        """Whether the web session `cookie` was signed in (password and factor, a passkey or
        the identity provider) within VAULT_REAUTH_WINDOW. Never for anything that is not a
        session cookie: an API token has no sign-in to be recent."""
        if not cookie or not is_token(cookie, SESSION):
            return False
        at = self.store.session_signed_in_at(token_digest(cookie))
        return at > 0 and 0 <= self.now_ms() - at <= self.config.reauth_window * 1000

    def require_recent_sign_in(self, cookie: str | None) -> None:
        """Forbidden (`reason` `reauth`) unless `signed_in_recently`: enrolling or removing a
        factor or a passkey, a password change and a new key need a fresh sign-in, so that a
        stolen session cookie alone cannot lock the owner out or keep a way in."""
        if not self.signed_in_recently(cookie):
            raise Forbidden(REAUTH_MESSAGE, reason="reauth")

    def sign_in_ways(self, email: str) -> dict[str, bool]:
        """How the agent can sign in again here: `password` (with their factor, if any) and
        `passkey` (vault's own credentials, where VAULT_OIDC_ONLY leaves them)."""
        agent = self.store.get_agent(normalise_email(email)) or {}
        own = self.may_sign_in_without_provider(agent)
        # An admin whose only factor is a passkey cannot use the password where two-factor
        # is required (`_second_factor`).
        password_alone_refused = self.config.require_2fa and agent.get("role") == "admin" \
            and not agent.get("totp")
        return {"password": own and agent.get("pw", "!") != "!" and not password_alone_refused,
                "passkey": own and passkey_count(agent) > 0}

    # -- sign-in through the identity provider ------------------------------------------------------

    def keep_sign_in(self, state: str, record: dict[str, str], ttl_ms: int) -> None:
        """Keep a started sign-in's record under the digest of its `state` (never the state)."""
        self.store.put_sign_in(token_digest(state), json.dumps(record), ttl_ms)

    def take_sign_in(self, state: str) -> Any:
        """The record kept for `state`, deleted as it is read: None when there is none (forged,
        replayed or expired) or it is not JSON; otherwise what the JSON holds, for the caller
        to check."""
        raw = self.store.take_sign_in(token_digest(state))
        if raw is None:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return None

    def agent_exists(self, email: str) -> bool:
        """Whether `email` (already normalised) is a vault agent's."""
        return self.store.get_agent(email) is not None

    def link_helpscout_user(self, email: str, helpscout_id: str) -> None:
        """Record the agent's Help Scout user id (an agent of that e-mail only), which the
        sidebar uses to tell the agent it is showing to."""
        if self.store.get_agent(email) is not None:
            self.store.update_agent(email, {"helpscout_id": helpscout_id})

    @staticmethod
    def csrf_ok(principal: Principal, presented: str | None) -> bool:
        return bool(presented) and bool(principal.csrf) and constant_time_equals(
            principal.csrf, presented or "")
