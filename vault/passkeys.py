"""Passkeys (WebAuthn): an agent registers them on their account page and signs in with one alone.

The protocol is Duo Labs' py_webauthn (`webauthn`): the ceremonies' options, and the checks of
an attestation and of an assertion (challenge, origin, relying party, flags, signature). What
vault adds:

- A challenge is 32 random bytes, kept in Redis under its digest for `CHALLENGE_TTL` seconds
  with what it is for, bound to the browser that asked (the digest of a random cookie it was
  given, as the identity-provider sign-in binds its `state`) and, for a registration, to the
  agent's web session. It is taken (read and deleted in one step) before anything else is
  checked, so it is good once whatever happens next: a replayed answer finds nothing.
- The relying party is VAULT_BASE_URL's host, the origin VAULT_BASE_URL's origin.
- User verification is required (the device's PIN, pattern or biometrics): a passkey is then two
  factors in one, and counts as the second factor where VAULT_REQUIRE_2FA applies.
- Sign-in is by discoverable credential (a resident key): no e-mail is typed, the browser
  offers the passkeys it holds for this site, and the assertion names its credential, by whose
  id vault finds the agent. Its user handle, when sent, must be the one registered.
- A signature counter that does not grow (where either side is non-zero) is refused, checked
  and written in one step (`use_passkey`).
- VAULT_OIDC_ONLY: passkeys are vault's own credentials, so they follow the password's rule
  (`Accounts.may_sign_in_without_provider`): off, except for admins with
  VAULT_OIDC_ADMIN_PASSWORD.

Every refusal of a sign-in is one answer (401, reason `passkey`) and a `login.failed` audit
entry with a fixed reason; nothing the browser sent (credential ids, challenges, signatures)
reaches a log, an audit entry or an error.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import secrets
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_authenticator_data,
    parse_client_data_json,
    parse_registration_credential_json,
)
from webauthn.helpers.cose import COSEAlgorithmIdentifier
from webauthn.helpers.options_to_json_dict import options_to_json_dict
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from vault.accounts import Accounts, normalise_email, passkey_count
from vault.audit import emit
from vault.crypto.b64 import b64url_decode, b64url_encode
from vault.crypto.tokens import constant_time_equals, token_digest
from vault.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthenticated, ValidationFailed
from vault.names import display_name
from vault.principal import Principal

CHALLENGE_TTL = 300  # seconds from the options to the answer
MAX_PASSKEYS = 20  # per agent
RP_NAME = "vault"
# What vault accepts: ES256 (every platform authenticator), Ed25519, RS256 (Windows Hello).
ALGORITHMS = [COSEAlgorithmIdentifier.ECDSA_SHA_256, COSEAlgorithmIdentifier.EDDSA,
              COSEAlgorithmIdentifier.RSASSA_PKCS1_v1_5_SHA_256]
PASSKEY_ID = re.compile(r"pk_[0-9a-f]{12}")
# The browser's ceremony cookie: what a challenge is bound to (its digest is kept, never it).
BROWSER_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
SIGN_IN_REFUSED = "The passkey did not sign you in."
PASSKEYS_OFF = ("Agents sign in through the team's identity provider here: passkeys are off "
                "(VAULT_OIDC_ONLY).")
NO_HOST_NAME = ("Passkeys need VAULT_BASE_URL to name a host (vault.example.com, localhost), "
                "not an IP address: browsers refuse an IP address as a relying party.")


def new_browser_nonce() -> str:
    return secrets.token_urlsafe(32)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Refused(Exception):
    """A refused ceremony, with a short fixed reason (safe to audit)."""

    def __init__(self, reason: str, email: str = "") -> None:
        super().__init__(reason)
        self.reason, self.email = reason, email


def _relying_party(base_url: str) -> tuple[str, str]:
    """(relying party id, origin) of VAULT_BASE_URL: its host, and its scheme, host and port
    as a browser writes an origin (no default port)."""
    parts = urlsplit(base_url)
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme)
    port = parts.port
    origin = f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")
    return host, origin


def _names_a_host(rp_id: str) -> bool:
    """Whether a browser accepts `rp_id` as a relying party id: a host name, never an IP
    address (WebAuthn's rule; `./scripts/serve` answers on http://127.0.0.1, so its demo has
    no passkeys)."""
    try:
        ipaddress.ip_address(rp_id.strip("[]"))
    except ValueError:
        return bool(rp_id)
    return False


class Passkeys:
    """The passkey ceremonies and the agents' passkeys. Built on `Accounts` (its store, clock,
    config and sessions)."""

    def __init__(self, accounts: Accounts) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.config = accounts.config
        self.rp_id, self.origin = _relying_party(accounts.config.base_url)
        # False where no browser would make or use a passkey for this address: the pages then
        # offer none, and every ceremony is refused up front.
        self.usable = _names_a_host(self.rp_id)

    def _check_usable(self) -> None:
        if not self.usable:
            raise Forbidden(NO_HOST_NAME, reason="passkeys-unavailable")

    @property
    def now_ms(self) -> Callable[[], int]:
        return self.accounts.now_ms

    # -- challenges ---------------------------------------------------------------------------

    def _new_challenge(self, record: dict[str, str]) -> bytes:
        challenge = secrets.token_bytes(32)
        # Redis's own expiry cleans up; the app's clock decides (the one every rule reads).
        expires = self.now_ms() + CHALLENGE_TTL * 1000
        self.store.put_challenge(_digest(challenge), json.dumps({**record, "expires": expires}),
                                 CHALLENGE_TTL * 1000)
        return challenge

    def _take_challenge(self, client_data: bytes, *, purpose: str, browser: str
                        ) -> tuple[bytes, dict[str, Any]]:
        """The challenge the browser signed and the record kept for it, taken (so good once):
        refused when there is none (forged, replayed, expired), it is for something else, or
        another browser asked for it."""
        try:
            challenge = parse_client_data_json(client_data).challenge
        except Exception:  # the library decodes what the browser sent; anything odd is refused
            raise _Refused("malformed") from None
        raw = self.store.take_challenge(_digest(challenge))
        if raw is None:
            raise _Refused("challenge-unknown")
        try:
            record = json.loads(raw)
            bound = str(record["browser"])
        except (ValueError, KeyError, TypeError):
            raise _Refused("challenge-unknown") from None
        if record.get("purpose") != purpose:
            raise _Refused("challenge-unknown")
        if not isinstance(record.get("expires"), int) or self.now_ms() > record["expires"]:
            raise _Refused("challenge-expired")
        if not (BROWSER_NONCE.fullmatch(browser or "")
                and constant_time_equals(token_digest(browser), bound)):
            raise _Refused("challenge-other-browser")
        return challenge, record

    # -- sign-in ------------------------------------------------------------------------------

    def sign_in_options(self, *, browser: str) -> dict[str, Any]:
        """Options for `navigator.credentials.get()` (JSON, binary fields base64url): any
        passkey of this site (no allow list: a discoverable credential), user verification
        required."""
        self._check_usable()
        challenge = self._new_challenge({"purpose": "sign-in", "browser": token_digest(browser)})
        options = generate_authentication_options(
            rp_id=self.rp_id, challenge=challenge, timeout=CHALLENGE_TTL * 1000,
            user_verification=UserVerificationRequirement.REQUIRED)
        return options_to_json_dict(options)

    def sign_in(self, credential: Any, *, browser: str, address: str = ""
                ) -> tuple[str, Principal]:
        """Open a web session for the agent whose passkey signed this assertion: (cookie,
        principal), audited `login.succeeded` with method `passkey`.

        Unauthenticated (`reason` `passkey`) for anything refused, the same answer whatever
        the cause (malformed; an unknown, replayed, expired or other browser's challenge; an
        unknown or removed passkey, a disabled agent, a wrong origin or relying party, no user
        verification, a bad signature, a counter that did not grow); Forbidden (`sso-only`)
        where VAULT_OIDC_ONLY leaves this agent no passkey sign-in. Each is audited
        `login.failed` with its reason."""
        try:
            email, agent = self._verify_sign_in(credential, browser)
        except _Refused as refused:
            self._sign_in_failed(refused.reason, refused.email, address)
            if refused.reason == "sso-only":
                raise Forbidden(PASSKEYS_OFF, reason="sso-only") from None
            raise Unauthenticated(SIGN_IN_REFUSED, reason="passkey") from None
        return self.accounts.open_session(email, agent, method="passkey", address=address)

    def _sign_in_failed(self, reason: str, email: str, address: str) -> None:
        self.store.add_audit(now_ms=self.now_ms(), event="login.failed", actor=email,
                             detail=f"passkey {reason} {address}".strip())
        emit("login.failed", agent=email, address=address, method="passkey", reason=reason)

    def _verify_sign_in(self, credential: Any, browser: str) -> tuple[str, dict[str, str]]:
        try:
            parsed = parse_authentication_credential_json(credential)
            client_data = bytes(parsed.response.client_data_json)
            auth_data = parse_authenticator_data(bytes(parsed.response.authenticator_data))
            client_origin = parse_client_data_json(client_data).origin
        except Exception:  # the library decodes what the browser sent; anything odd is refused
            raise _Refused("malformed") from None
        challenge, _ = self._take_challenge(client_data, purpose="sign-in", browser=browser)
        passkey = self.store.passkey_by_credential(_digest(bytes(parsed.raw_id)))
        if passkey is None or not passkey.get("key"):
            raise _Refused("unknown-passkey")
        email = passkey.get("email", "")
        agent = self.store.get_agent(email)
        if agent is None:
            raise _Refused("unknown-passkey", email)
        if agent.get("disabled") == "1":
            raise _Refused("agent-disabled", email)
        handle = parsed.response.user_handle
        if handle is not None and not constant_time_equals(b64url_encode(bytes(handle)),
                                                           passkey.get("handle", "")):
            raise _Refused("user-handle", email)
        # The library checks all of these too; asked here first, each refusal gets its reason.
        if client_origin != self.origin:
            raise _Refused("origin", email)
        if auth_data.rp_id_hash != hashlib.sha256(self.rp_id.encode()).digest():
            raise _Refused("rp-id", email)
        if not auth_data.flags.uv:
            raise _Refused("user-verification", email)
        stored = int(passkey.get("count") or 0)
        if (auth_data.sign_count > 0 or stored > 0) and auth_data.sign_count <= stored:
            raise _Refused("sign-count", email)
        try:
            verified = verify_authentication_response(
                credential=parsed, expected_challenge=challenge, expected_rp_id=self.rp_id,
                expected_origin=self.origin, credential_public_key=b64url_decode(passkey["key"]),
                credential_current_sign_count=stored, require_user_verification=True)
        except Exception:  # a bad signature, or anything the library refuses
            raise _Refused("invalid", email) from None
        if not self.accounts.may_sign_in_without_provider(agent):
            raise _Refused("sso-only", email)
        used = self.store.use_passkey(passkey["id"], count=verified.new_sign_count,
                                      now_ms=self.now_ms())
        if used == "count":
            raise _Refused("sign-count", email)  # another sign-in got there first
        if used != "ok":
            raise _Refused("unknown-passkey", email)  # removed meanwhile
        return email, agent

    # -- registration -------------------------------------------------------------------------

    def registration_options(self, who: Principal, *, browser: str, session: str
                             ) -> dict[str, Any]:
        """Options for `navigator.credentials.create()` for the agent `who`, signed in by the
        web session of digest `session`: a discoverable credential with user verification,
        none of the agent's passkeys again (`excludeCredentials`), no attestation asked.

        Forbidden (`sso-only`) where the agent could not use it; Conflict (`passkey-limit`)
        past `MAX_PASSKEYS`."""
        self._check_usable()
        email = normalise_email(who.email)
        agent = self.store.get_agent(email)
        if agent is None:
            raise NotFound("No such agent.")
        if not self.accounts.may_sign_in_without_provider(agent):
            raise Forbidden(PASSKEYS_OFF, reason="sso-only")
        existing = self.store.passkeys_of(email)
        if len(existing) >= MAX_PASSKEYS:
            raise Conflict(f"An agent has at most {MAX_PASSKEYS} passkeys: remove one first.",
                           reason="passkey-limit")
        handle = agent.get("pk_user", "")
        if not handle:
            # The agent's WebAuthn user handle: random, never their e-mail, the same for all
            # their passkeys (an authenticator keeps one passkey per user of a site).
            handle = b64url_encode(secrets.token_bytes(32))
            self.store.update_agent(email, {"pk_user": handle})
        challenge = self._new_challenge({"purpose": "register", "browser": token_digest(browser),
                                         "email": email, "session": session, "handle": handle})
        options = generate_registration_options(
            rp_id=self.rp_id, rp_name=RP_NAME, user_name=email, user_id=b64url_decode(handle),
            user_display_name=display_name(agent.get("name"), clean=True) or email,
            challenge=challenge, timeout=CHALLENGE_TTL * 1000,
            attestation=AttestationConveyancePreference.NONE,
            authenticator_selection=AuthenticatorSelectionCriteria(
                resident_key=ResidentKeyRequirement.REQUIRED,
                user_verification=UserVerificationRequirement.REQUIRED),
            exclude_credentials=[PublicKeyCredentialDescriptor(id=b64url_decode(p["cred_id"]))
                                 for p in existing if p.get("cred_id")],
            supported_pub_key_algs=ALGORITHMS)
        return options_to_json_dict(options)

    def register(self, who: Principal, name: Any, credential: Any, *, browser: str,
                 session: str) -> dict[str, Any]:
        """Verify the browser's answer to `registration_options` and keep the passkey, named
        `name`: its public description (id, name, created_at). Audited `passkey.registered`.

        ValidationFailed (`name`) for a missing or too long name; BadRequest (`reason`
        `passkey`) for an answer that is not to a challenge of this browser, session and agent
        (or expired, or used), or that the library refuses; Conflict (`passkey-taken`) for a
        credential registered already."""
        email = normalise_email(who.email)
        try:
            clean = display_name(name) if isinstance(name, str) else ""
        except ValidationFailed:
            clean = ""
        if not clean or len(clean) > 64:
            raise ValidationFailed([{"name": "name",
                                     "reason": "Name the passkey (at most 64 characters)."}])
        try:
            try:
                parsed = parse_registration_credential_json(credential)
                client_data = bytes(parsed.response.client_data_json)
            except Exception:  # the library decodes what the browser sent
                raise _Refused("malformed") from None
            challenge, record = self._take_challenge(client_data, purpose="register",
                                                     browser=browser)
            if not (constant_time_equals(str(record.get("email", "")), email)
                    and constant_time_equals(str(record.get("session", "")), session)):
                raise _Refused("challenge-other-session")
            try:
                verified = verify_registration_response(
                    credential=parsed, expected_challenge=challenge, expected_rp_id=self.rp_id,
                    expected_origin=self.origin, require_user_verification=True,
                    supported_pub_key_algs=ALGORITHMS)
            except Exception:  # the library refuses it (origin, relying party, flags, format)
                raise _Refused("invalid") from None
        except _Refused as refused:
            emit("passkey.refused", agent=email, reason=refused.reason)
            raise BadRequest("The passkey could not be added: try again.",
                             reason="passkey") from None
        passkey_id = "pk_" + secrets.token_hex(6)
        now = self.now_ms()
        credential_id = bytes(verified.credential_id)
        outcome = self.store.add_passkey(
            email=email, passkey_id=passkey_id, credential_digest=_digest(credential_id),
            fields={"name": clean, "cred_id": b64url_encode(credential_id),
                    "key": b64url_encode(bytes(verified.credential_public_key)),
                    "count": verified.sign_count, "handle": str(record.get("handle", "")),
                    "created_at": now, "used_at": 0,
                    "backed_up": "1" if verified.credential_backed_up else "0"})
        if outcome == "taken":
            raise Conflict("This passkey is registered already.", reason="passkey-taken")
        if outcome != "ok":
            raise NotFound("No such agent.")
        self.accounts._audit("passkey.registered", email, f"{email} {passkey_id}")
        return {"id": passkey_id, "name": clean, "created_at": now}

    # -- the agent's passkeys -----------------------------------------------------------------

    def allowed_for(self, email: str) -> bool:
        """Whether the agent may register and sign in with passkeys here (a host name in
        VAULT_BASE_URL, and VAULT_OIDC_ONLY)."""
        if not self.usable:
            return False
        agent = self.store.get_agent(normalise_email(email))
        return agent is not None and self.accounts.may_sign_in_without_provider(agent)

    def list(self, email: str) -> list[dict[str, Any]]:
        """The agent's passkeys: id, name, created_at and last_used_at (ms; 0 for never)."""
        return [{"id": p.get("id", ""), "name": p.get("name", ""),
                 "created_at": int(p.get("created_at") or 0),
                 "last_used_at": int(p.get("used_at") or 0)}
                for p in self.store.passkeys_of(normalise_email(email))]

    def remove(self, email: str, passkey_id: Any, *, actor: str) -> None:
        """Remove one of the agent's passkeys. Audited `passkey.removed`.

        NotFound for a passkey that is not (or no longer) the agent's; Conflict (`reason`
        `2fa-required`) when the agent removes their own last second factor while two-factor
        is required for them (an admin with VAULT_REQUIRE_2FA): they could not sign in again.
        An agent's sessions go on: an admin's reset (`Accounts.reset_2fa`) ends them all."""
        email = normalise_email(email)
        if not isinstance(passkey_id, str) or not PASSKEY_ID.fullmatch(passkey_id):
            raise NotFound("No such passkey.")
        agent = self.store.get_agent(email)
        if agent is None:
            raise NotFound("No such agent.")
        if actor == email and self.config.require_2fa and agent.get("role") == "admin" \
                and not agent.get("totp") and passkey_count(agent) <= 1:
            raise Conflict("An admin cannot remove their own last second factor.",
                           reason="2fa-required")
        if not self.store.remove_passkeys(email, [passkey_id]):
            raise NotFound("No such passkey.")
        self.accounts._audit("passkey.removed", actor, f"{email} {passkey_id}")


__all__ = ["BROWSER_NONCE", "CHALLENGE_TTL", "MAX_PASSKEYS", "Passkeys", "new_browser_nonce"]
