"""Agents sign in with the team's identity provider: OpenID Connect, authorization code + PKCE.

The protocol is Authlib's (`OAuth2Session` builds the authorization URL with the S256 code
challenge, exchanges the code and asks UserInfo with the access token) and the ID token is
checked by joserfc and Authlib's `CodeIDToken` (signature by the issuer's JWKS, `iss`, `aud`,
`azp`, `exp`, `iat`, `nonce`, `at_hash`): no JOSE of vault's own. What vault adds is policy:
`email_verified` must be true, and the callback must come back to the browser that started the
sign-in (`vault.pages.sso`).

The ID token decides who signed in. Where it is silent about the address (no `email`, or
nothing about its verification: OpenID Connect Core 5.4 returns the scope's claims from
UserInfo in the code flow, and several providers do exactly that), vault asks the discovery
document's `userinfo_endpoint` once, with the access token, and takes the answer only for the
same `sub`. What the ID token says wins; UserInfo fills in what it left out, never over it
(`_email_claims`). A provider that puts the claims in the ID token is never asked.

The discovery document (`<issuer>/.well-known/openid-configuration`, whose `issuer` must be the
configured one exactly) and the JWKS are fetched on first use, kept for an hour, and the JWKS is
fetched again when a token names a key id it does not hold (a provider's key rotation), at most
every 30 seconds. An unreachable provider never stops vault from starting: the first sign-in
that needs it gets ProviderUnavailable (a 503 page), and password login keeps working.

Every request to the provider goes through vault.httpclient: no redirect is followed (the
discovery document, the keys and the token answer come from the URLs the configuration and the
discovery document name, or not at all), `.netrc` and requests' CA bundle variables do not apply
(certificates are checked against the system's trust store), but the environment's proxy
variables do: the provider is usually outside, and a server may reach it only through its
organisation's proxy.

Nothing here logs a code, a token, a nonce or a verifier.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import (
    BadSignatureError,
    ClaimError,
    ExpiredTokenError,
    InvalidKeyIdError,
    JoseError,
    KeyParameterError,
    MissingKeyError,
    UnsupportedAlgorithmError,
)
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from vault.accounts import normalise_email
from vault.config import Config
from vault.errors import SignInRefused as Refused
from vault.errors import Unavailable, ValidationFailed
from vault.httpclient import Session, configure, environment_proxies
from vault.names import display_name

__all__ = ["CALLBACK_PATH", "Identity", "IdentityProvider", "ProviderUnavailable"]

CALLBACK_PATH = "/login/oidc/callback"
SCOPE = "openid email profile"
METADATA_TTL = 3600.0
JWKS_REFRESH_EVERY = 30.0
HTTP_TIMEOUT = 5.0
RETRY_AFTER_FAILURE = 10.0
SIGNING_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
                                "ES384", "ES512", "EdDSA", "Ed25519"})
LEEWAY = 60  # seconds of clock difference tolerated between vault and the provider
# The token endpoint's OAuth errors (RFC 6749 5.2) that are its refusal, by the reason vault
# audits: the code (used, expired, forged, issued to another client or for another verifier
# or redirect URI), or vault itself as a client (a wrong secret, a grant the client may not
# use). Any other error code it names is `token-refused`, except the two that say the provider
# is in trouble, which are its outage.
TOKEN_REFUSALS = {"invalid_grant": "code-refused", "invalid_client": "client-refused",
                  "unauthorized_client": "client-refused",
                  "unsupported_grant_type": "client-refused"}
TOKEN_OUTAGES = frozenset({"server_error", "temporarily_unavailable"})
# The signature did not verify under a key and algorithm vault accepts from this issuer.
SIGNATURE_ERRORS = (BadSignatureError, InvalidKeyIdError, MissingKeyError, KeyParameterError,
                    UnsupportedAlgorithmError)
# UserInfo's answer: JSON, or a JWT signed by the provider (OpenID Connect Core 5.3.2), which
# vault verifies with the same keys and algorithms as an ID token; an encrypted one it refuses.
USERINFO_JWT = "application/jwt"


class ProviderUnavailable(Unavailable):
    """The identity provider did not answer, or answered something unusable."""

    def __init__(self, why: str) -> None:
        super().__init__("The identity provider is unreachable. Try again in a moment, or log "
                         "in with your password.", store_fault=False)
        self.why = why  # for logs and /readyz: what failed, never a secret


@dataclass(frozen=True)
class Identity:
    email: str
    name: str


class IdentityProvider:
    """The configured issuer: its metadata and keys, cached per process, and the two steps of
    a sign-in. Thread-safe; one per app."""

    def __init__(self, config: Config, clock: Callable[[], float] | None = None) -> None:
        self.config = config
        self.clock = clock or time.time
        self.redirect_uri = config.base_url + CALLBACK_PATH
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._keyset: KeySet | None = None
        self._keyset_at = 0.0
        self._failed_at: float | None = None
        self.last_error = ""

    # -- what the provider publishes -------------------------------------------------------------

    def _get_json(self, url: str, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
        try:
            # A session per fetch (at most one an hour, and one per key rotation): no connection
            # is kept, none could be shared by the workers gunicorn forks.
            with Session(proxies_from_env=True) as http:
                resp = http.get(url, timeout=timeout, headers={"Accept": "application/json"})
            if resp.is_redirect:
                raise ProviderUnavailable(f"{url}: a redirect (HTTP {resp.status_code}), which "
                                          "vault does not follow")
            resp.raise_for_status()
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(f"{url}: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"{url}: not a JSON object")
        return body

    def metadata(self, *, timeout: float = HTTP_TIMEOUT) -> dict[str, Any]:
        """The discovery document, fetched at most once an hour; after a failure, not asked
        again for RETRY_AFTER_FAILURE seconds (a failed refresh keeps the last good one)."""
        with self._lock:
            now = self.clock()
            if self._metadata is not None and now - self._metadata_at < METADATA_TTL:
                return self._metadata
            if self._failed_at is not None and now - self._failed_at < RETRY_AFTER_FAILURE:
                if self._metadata is not None:
                    return self._metadata
                raise ProviderUnavailable(self.last_error)
            issuer = self.config.oidc_issuer
            try:
                found = self._get_json(issuer.rstrip("/") + "/.well-known/openid-configuration",
                                       timeout)
                if found.get("issuer") != issuer:
                    raise ProviderUnavailable("the discovery document names another issuer")
                for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                    if not isinstance(found.get(name), str) or not found[name]:
                        raise ProviderUnavailable(f"the discovery document has no {name}")
                for name in ("token_endpoint_auth_methods_supported",
                             "id_token_signing_alg_values_supported"):
                    if not isinstance(found.get(name, []), list):
                        raise ProviderUnavailable(f"the discovery document's {name} is no list")
            except ProviderUnavailable as exc:
                self.last_error, self._failed_at = exc.why, now
                if self._metadata is not None:
                    return self._metadata
                raise
            self._metadata, self._metadata_at = found, now
            self.last_error, self._failed_at = "", None
            return found

    def _keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            now = self.clock()
            kept = self._keyset
            if kept is not None and now - self._keyset_at < METADATA_TTL and (
                    not refresh or now - self._keyset_at < JWKS_REFRESH_EVERY):
                return kept  # a burst of unknown key ids costs the provider one fetch
            found = self._get_json((self._metadata or {}).get("jwks_uri", ""))
            try:
                keys = KeySet.import_key_set(found)  # type: ignore[arg-type]
            except Exception:  # {} from a proxy's error page, a key joserfc cannot read
                raise ProviderUnavailable("the JWKS holds no key vault can use") from None
            if not keys.keys:
                raise ProviderUnavailable("the JWKS is empty")
            self._keyset, self._keyset_at = keys, now
            return keys

    def status(self) -> str:
        """For /readyz: "ok" or "unreachable". It never waits on another thread's fetch (it
        answers from the last one instead) and fetches with a one-second timeout itself, so a
        load balancer's probe does not hang on the identity provider. "ok" means the last
        discovery fetch succeeded (it is kept for an hour)."""
        if not self._lock.acquire(blocking=False):
            return "unreachable" if self.last_error or self._metadata is None else "ok"
        self._lock.release()
        try:
            self.metadata(timeout=1.0)
        except ProviderUnavailable:
            return "unreachable"
        return "unreachable" if self.last_error else "ok"

    # -- the two steps -------------------------------------------------------------------------

    def _session(self, meta: dict[str, Any], token: dict[str, Any] | None = None
                 ) -> OAuth2Session:
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        method = "client_secret_basic" if "client_secret_basic" in methods \
            else "client_secret_post"
        # leeway=0: Authlib would otherwise take an access token that has a minute or less to
        # live for expired before it is sent, and refuse to send it.
        session = OAuth2Session(self.config.oidc_client_id, self.config.oidc_client_secret,
                                scope=SCOPE, redirect_uri=self.redirect_uri,
                                code_challenge_method="S256", token_endpoint_auth_method=method,
                                token=token, leeway=0)
        configure(session)  # Authlib's own requests Session, set up as vault's (module docstring)
        return session

    def authorization_url(self, *, state: str, nonce: str, verifier: str) -> str:
        """Where to send the browser: the provider's authorization endpoint, code flow."""
        meta = self.metadata()
        with self._session(meta) as session:
            url, _ = session.create_authorization_url(
                meta["authorization_endpoint"], state=state, nonce=nonce, code_verifier=verifier)
        return str(url)

    def identity(self, *, code: str, verifier: str, nonce: str, iss: str | None) -> Identity:
        """Exchange the code and check the ID token: who signed in. Refused (the provider, or
        vault's checks, said no: a 4xx) or ProviderUnavailable (it did not answer, or answered
        something no check can read: a 503)."""
        meta = self.metadata()
        # RFC 9207: the answer names its issuer; where the provider says it does, it must.
        if (iss is None and meta.get("authorization_response_iss_parameter_supported") is True) \
                or (iss is not None and iss != self.config.oidc_issuer):
            raise Refused("issuer-mismatch", 400)
        try:
            return self._identity(meta, code=code, verifier=verifier, nonce=nonce)
        except (Refused, ProviderUnavailable):
            raise
        except Exception as exc:  # a provider answering what no library expects: not a 500
            raise ProviderUnavailable(f"the provider's answer was unusable "
                                      f"({type(exc).__name__})") from None

    def _token(self, meta: dict[str, Any], *, code: str, verifier: str) -> dict[str, Any]:
        """The token endpoint's answer to the code: its JSON object, Refused or
        ProviderUnavailable."""
        try:
            with self._session(meta) as session:
                # Sorted before Authlib reads it (_token_answer): Authlib's own errors do not
                # tell a refusal from a proxy's error page.
                session.register_compliance_hook("access_token_response", _token_answer)
                token = session.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=verifier,
                    timeout=HTTP_TIMEOUT, allow_redirects=False,
                    proxies=environment_proxies(meta["token_endpoint"]))
        except (Refused, ProviderUnavailable):
            raise
        except AuthlibBaseError as exc:  # OAuthError (requests client), OAuth2Error: an answer
            raise _token_error(exc.error) from None  # with "error" that got past the hook
        except requests.Timeout:
            raise ProviderUnavailable("the token endpoint did not answer in time") from None
        except requests.RequestException as exc:  # refused connection, TLS, a broken answer
            raise ProviderUnavailable(f"the token endpoint did not answer "
                                      f"({type(exc).__name__})") from None
        except (ValueError, TypeError) as exc:  # a token Authlib cannot hold (expires_in: [1])
            raise ProviderUnavailable(f"the token endpoint's answer was unusable "
                                      f"({type(exc).__name__})") from None
        return dict(token)

    def _registry(self, meta: dict[str, Any], name: str) -> JWSRegistry:
        """The algorithms vault accepts for a JWT of this provider: those its discovery
        document announces under `name`, asymmetric only ("none" never, and no HS256, keyed by
        the client secret, which is not the provider's signature)."""
        offered = meta.get(name) or ["RS256"]
        if not isinstance(offered, list):
            offered = ["RS256"]
        return JWSRegistry(algorithms=[a for a in offered if isinstance(a, str)
                                       and a in SIGNING_ALGORITHMS] or ["RS256"])

    def _verified(self, raw: str, registry: JWSRegistry, *, what: str) -> Any:
        """joserfc's decoded JWS, signed by one of the provider's published keys (fetched again
        once for an unknown key id); Refused `<what>-signature` or `<what>-malformed`."""
        try:
            try:
                return jwt.decode(raw, self._keys(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys: fetch them again, once
                return jwt.decode(raw, self._keys(refresh=True), registry=registry)
        except SIGNATURE_ERRORS:
            raise Refused(f"{what}-signature", 400) from None
        except (JoseError, ValueError, TypeError):  # not a JWS (a JWE too), a header or payload
            raise Refused(f"{what}-malformed", 400) from None  # no JSON object, a surrogate in it

    def _identity(self, meta: dict[str, Any], *, code: str, verifier: str, nonce: str
                  ) -> Identity:
        token = self._token(meta, code=code, verifier=verifier)
        raw = token.get("id_token")
        if not isinstance(raw, str) or not raw:
            raise Refused("id-token-missing", 400)
        decoded = self._verified(raw, self._registry(meta, "id_token_signing_alg_values_supported"),
                                 what="id-token")
        claims = CodeIDToken(
            decoded.claims, decoded.header,
            {"iss": {"essential": True, "value": self.config.oidc_issuer},
             "aud": {"essential": True, "value": self.config.oidc_client_id}},
            {"nonce": nonce, "client_id": self.config.oidc_client_id,
             "access_token": token.get("access_token")})
        try:
            claims.validate(now=int(self.clock()), leeway=LEEWAY)
        except ExpiredTokenError:
            raise Refused("id-token-expired", 400) from None
        except ClaimError as exc:
            raise Refused("id-token-nonce" if exc.claim == "nonce" else "id-token-claims",
                          400) from None
        except (JoseError, ValueError, TypeError):  # e.g. an at_hash that is not a string
            raise Refused("id-token-claims", 400) from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Refused("id-token-claims", 400)
        found = dict(claims)
        userinfo = self._userinfo(meta, token, subject) if _silent(found) else None
        email, verified = _email_claims(found, userinfo)
        if not isinstance(email, str) or "@" not in email:
            raise Refused("email-missing", 403)
        if not verified:
            # The audit names the address only if it is one (printable, of a sane length).
            try:
                refused = normalise_email(email)
            except ValidationFailed:
                refused = ""
            raise Refused("email-unverified", 403, refused)
        # The display name is the provider's text: held to the rule of every display name
        # (printable, at most 100 characters) before vault stores or shows it. The ID token's,
        # where it has one.
        name = found.get("name")
        if name is None and userinfo is not None:
            name = userinfo.get("name")
        return Identity(email=email.strip().lower(), name=display_name(name, clean=True))

    # -- UserInfo, where the ID token is silent ---------------------------------------------------

    def _userinfo(self, meta: dict[str, Any], token: dict[str, Any], subject: str
                  ) -> dict[str, Any]:
        """The claims UserInfo gives for this sign-in's access token, about `subject` only.
        {} where the provider has no UserInfo endpoint (the ID token's silence stands: the
        sign-in is refused as unverified, or as without an address). Refused (`userinfo-sub`,
        `userinfo-refused`, a signed answer that does not verify) or ProviderUnavailable (no
        answer in time, a 5xx, a redirect, anything that is not a JSON object or a JWT)."""
        url = meta.get("userinfo_endpoint")
        if url is None:
            return {}
        if not isinstance(url, str) or not _same_trust(url, self.config.oidc_issuer):
            # The access token is a bearer credential: never over plain http to anywhere.
            raise ProviderUnavailable("the discovery document's userinfo_endpoint is not "
                                      "https")
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise ProviderUnavailable("the token endpoint's answer holds no access token for "
                                      "UserInfo")
        try:
            with self._session(meta, token) as session:
                resp = session.get(url, timeout=HTTP_TIMEOUT, allow_redirects=False,
                                   proxies=environment_proxies(url),
                                   headers={"Accept": f"application/json, {USERINFO_JWT}"})
        except AuthlibBaseError:  # the token already expired, or a token_type Authlib cannot
            raise ProviderUnavailable("the access token cannot be sent to UserInfo") from None
        except requests.Timeout:
            raise ProviderUnavailable("the UserInfo endpoint did not answer in time") from None
        except requests.RequestException as exc:  # refused connection, TLS, a broken answer
            raise ProviderUnavailable(f"the UserInfo endpoint did not answer "
                                      f"({type(exc).__name__})") from None
        found = self._userinfo_answer(meta, resp)
        # The ID token said who signed in; an answer about anybody else is no answer for this
        # sign-in (OpenID Connect Core 5.3.2: the sub MUST match). Exact, as the provider
        # wrote both: a public identifier, no secret to compare in constant time.
        if not isinstance(found.get("sub"), str) or found["sub"] != subject:
            raise Refused("userinfo-sub", 403)
        return found

    def _userinfo_answer(self, meta: dict[str, Any], resp: requests.Response) -> dict[str, Any]:
        status = resp.status_code
        if status in (400, 401, 403) and _bearer_error(resp.headers.get("WWW-Authenticate")):
            # RFC 6750 3: the provider refuses this access token (invalid_token,
            # insufficient_scope): its word, as the token endpoint's OAuth errors are.
            raise Refused("userinfo-refused", 400)
        if not 200 <= status < 300:  # a 5xx, a 429, a redirect, a proxy's 4xx page
            raise ProviderUnavailable(f"the UserInfo endpoint answered HTTP {status}")
        kind = resp.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind == USERINFO_JWT:
            return self._signed_userinfo(meta, resp.text.strip())
        try:
            body = resp.json()
        except ValueError:  # requests' JSONDecodeError, or bytes that are not text
            body = None
        if not isinstance(body, dict):
            raise ProviderUnavailable(f"the UserInfo endpoint answered HTTP {status} with no "
                                      "JSON object")
        return body

    def _signed_userinfo(self, meta: dict[str, Any], raw: str) -> dict[str, Any]:
        """A signed UserInfo answer (the client registered with userinfo_signed_response_alg):
        verified as an ID token is, and meant for vault by this issuer (5.3.2: it SHOULD carry
        iss and aud; vault requires them)."""
        decoded = self._verified(raw, self._registry(meta, "userinfo_signing_alg_values_supported"),
                                 what="userinfo")
        found = dict(decoded.claims)
        audience = found.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        expires = found.get("exp")
        if found.get("iss") != self.config.oidc_issuer \
                or self.config.oidc_client_id not in audiences \
                or (expires is not None and (isinstance(expires, bool)
                                             or not isinstance(expires, int | float)
                                             or expires + LEEWAY < self.clock())):
            raise Refused("userinfo-claims", 400)
        return found


def _silent(claims: dict[str, Any]) -> bool:
    """Whether the ID token leaves the address to UserInfo: it names none, or says nothing of
    its verification (neither `email_verified` nor Entra ID's `xms_edov`)."""
    return claims.get("email") is None or (claims.get("email_verified") is None
                                           and claims.get("xms_edov") is None)


def _says_verified(claims: dict[str, Any], *, edov: bool) -> bool | None:
    """What one answer says of its address: True, False (a false, or anything that is not the
    JSON true), or None (nothing). Microsoft Entra ID sends no email_verified for work
    accounts; its optional ID token claim xms_edov ("email domain owner verified") says the
    tenant owns the address's domain, and counts only where email_verified is absent, never
    over a false, and only in the ID token (`edov`), where Entra puts it."""
    verified = claims.get("email_verified")
    if verified is not None:
        return verified is True
    if edov and claims.get("xms_edov") is not None:
        return claims.get("xms_edov") is True
    return None


def _same_address(a: Any, b: Any) -> bool:
    return isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower()


def _email_claims(token: dict[str, Any], userinfo: dict[str, Any] | None
                  ) -> tuple[Any, bool]:
    """The address of this sign-in and whether it is verified, from the ID token and, where it
    was asked, UserInfo. The ID token's claims win where present; a verification counts only
    for the address its own answer names; a false anywhere is a false."""
    if userinfo is None:
        return token.get("email"), _says_verified(token, edov=True) is True
    if token.get("email") is not None:  # the ID token named the address, not its verification
        email = token.get("email")
        said = _says_verified(userinfo, edov=False) \
            if _same_address(userinfo.get("email"), email) else None
        return email, said is True
    email = userinfo.get("email")
    # An ID token's email_verified without its email: a false still refuses; a true is no
    # word on the address UserInfo names, which must say so itself.
    if _says_verified(token, edov=True) is False:
        return email, False
    return email, _says_verified(userinfo, edov=False) is True


def _same_trust(url: str, issuer: str) -> bool:
    """An endpoint vault may send a bearer token to: https, or the issuer's own origin where
    the issuer is the loopback http one vault accepts (a provider on the same host)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.netloc:
        return True
    own = urlsplit(issuer)
    return parts.scheme == "http" and own.scheme == "http" and parts.netloc == own.netloc


def _bearer_error(header: str | None) -> bool:
    """Whether a WWW-Authenticate header is a Bearer challenge naming an error (RFC 6750 3)."""
    challenge = (header or "").strip().lower()
    return challenge.startswith("bearer") and "error=" in challenge


def _token_error(error: Any) -> Refused | ProviderUnavailable:
    """What the token endpoint's OAuth `error` means: its refusal (with the reason vault
    audits), or, for server_error and temporarily_unavailable, its outage."""
    if not isinstance(error, str):
        return Refused("token-refused", 400)
    if error in TOKEN_OUTAGES:
        return ProviderUnavailable(f"the token endpoint answered {error}")
    return Refused(TOKEN_REFUSALS.get(error, "token-refused"), 400)


def _token_answer(resp: requests.Response) -> requests.Response:
    """The token endpoint's HTTP answer, sorted: a JSON object naming an OAuth `error` is the
    provider's word (_token_error), whatever its status below 500; a 5xx, a 429, anything
    that is not a JSON object (a proxy's or a gateway's page), or a 4xx without an `error` is
    an outage. Only a 2xx JSON object without `error` goes on, to Authlib and the ID token."""
    status = resp.status_code
    if status >= 500 or status == 429:
        raise ProviderUnavailable(f"the token endpoint answered HTTP {status}")
    try:
        body = resp.json()
    except ValueError:  # requests' JSONDecodeError, or bytes that are not text
        body = None
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"the token endpoint answered HTTP {status} with no JSON "
                                  "object")
    if "error" in body:
        raise _token_error(body["error"])
    if not 200 <= status < 300:
        raise ProviderUnavailable(f"the token endpoint answered HTTP {status} without an "
                                  "OAuth error")
    return resp
