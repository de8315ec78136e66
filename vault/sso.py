"""Agents sign in with the team's identity provider: OpenID Connect, authorization code + PKCE.

The protocol is Authlib's (`OAuth2Session` builds the authorization URL with the S256 code
challenge and exchanges the code) and the ID token is checked by joserfc and Authlib's
`CodeIDToken` (signature by the issuer's JWKS, `iss`, `aud`, `azp`, `exp`, `iat`, `nonce`,
`at_hash`): no JOSE of vault's own. What vault adds is policy: `email_verified` must be true,
and the callback must come back to the browser that started the sign-in (`vault.pages.sso`).

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

    def _session(self, meta: dict[str, Any]) -> OAuth2Session:
        methods = meta.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
        method = "client_secret_basic" if "client_secret_basic" in methods \
            else "client_secret_post"
        session = OAuth2Session(self.config.oidc_client_id, self.config.oidc_client_secret,
                                scope=SCOPE, redirect_uri=self.redirect_uri,
                                code_challenge_method="S256", token_endpoint_auth_method=method)
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

    def _identity(self, meta: dict[str, Any], *, code: str, verifier: str, nonce: str
                  ) -> Identity:
        token = self._token(meta, code=code, verifier=verifier)
        raw = token.get("id_token")
        if not isinstance(raw, str) or not raw:
            raise Refused("id-token-missing", 400)
        # Asymmetric algorithms only: "none" never, and no HS256 (keyed by the client secret,
        # which is not the provider's signature).
        offered = meta.get("id_token_signing_alg_values_supported") or ["RS256"]
        registry = JWSRegistry(algorithms=[a for a in offered if isinstance(a, str)
                                           and a in SIGNING_ALGORITHMS] or ["RS256"])
        try:
            try:
                decoded = jwt.decode(raw, self._keys(), registry=registry)
            except InvalidKeyIdError:  # the provider rotated its keys: fetch them again, once
                decoded = jwt.decode(raw, self._keys(refresh=True), registry=registry)
        except SIGNATURE_ERRORS:
            raise Refused("id-token-signature", 400) from None
        except (JoseError, ValueError, TypeError):  # not a JWS, a header or payload no JSON
            raise Refused("id-token-malformed", 400) from None  # object, a surrogate in it
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
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise Refused("email-missing", 403)
        # Microsoft Entra ID sends no email_verified for work accounts; its optional claim
        # xms_edov ("email domain owner verified") says the tenant owns the address's domain.
        # It counts only where email_verified is absent, never over a false.
        verified = claims.get("email_verified")
        if verified is not True and not (verified is None and claims.get("xms_edov") is True):
            # The audit names the address only if it is one (printable, of a sane length).
            try:
                refused = normalise_email(email)
            except ValidationFailed:
                refused = ""
            raise Refused("email-unverified", 403, refused)
        # The display name is the provider's text: held to the rule of every display name
        # (printable, at most 100 characters) before vault stores or shows it.
        return Identity(email=email.strip().lower(),
                        name=display_name(claims.get("name"), clean=True))


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
