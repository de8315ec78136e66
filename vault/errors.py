"""Domain errors. Every error a client can cause maps to one of these; one handler renders them.

Messages are written for the person on the other end and never carry secret material:
no envelope, key, token, password or plaintext is ever formatted into an error.
"""

from __future__ import annotations

from typing import Any

# What a 401 says: for a bearer token that is not (or no longer) valid, and for anything else.
TOKEN_INVALID = "This token is not valid (revoked, expired or mistyped)."  # noqa: S105 # nosec B105
LOG_IN = "Log in or send Authorization: Bearer <token>."


class VaultError(Exception):
    """Base of every domain error. Never raised directly."""

    status: int = 500
    title: str = "Internal error"
    type: str = "about:blank"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.extra: dict[str, Any] = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 body for this error."""
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        body.update(self.extra)
        return body


class BadRequest(VaultError):
    status = 400
    title = "Bad request"


class ValidationFailed(BadRequest):
    title = "Invalid input"

    def __init__(self, invalid_params: list[dict[str, str]], detail: str | None = None) -> None:
        names = ", ".join(p["name"] for p in invalid_params)
        super().__init__(detail or f"Some fields are not valid: {names}.",
                         invalid_params=invalid_params)


class Unauthenticated(VaultError):
    status = 401
    title = "Not authenticated"


class Forbidden(VaultError):
    status = 403
    title = "Not allowed"


class NotFound(VaultError):
    status = 404
    title = "Not found"


class Conflict(VaultError):
    status = 409
    title = "Conflict"


class Gone(VaultError):
    """The thing existed and is gone: revealed, deleted, purged or expired (`reason`)."""

    status = 410
    title = "Gone"


class TooLarge(VaultError):
    status = 413
    title = "Too large"


class RateLimited(VaultError):
    status = 429
    title = "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many attempts. Wait a little and try again.")
        self.retry_after = max(1, retry_after)


class Unavailable(VaultError):
    """A dependency (Redis, replicas) did not answer in time. Nothing was half-done."""

    status = 503
    title = "Service unavailable"

    def __init__(self, detail: str | None = None, retry_after: int = 2, *,
                 store_fault: bool = True) -> None:
        super().__init__(detail or "The secret store is not reachable right now. Try again shortly.")
        self.retry_after = retry_after
        # False when Redis answered fine and something else is not ready (a delivery in
        # flight, a key missing from the ring): it is not counted as a Redis error.
        self.store_fault = store_fault


class SignInRefused(VaultError):
    """A sign-in through the identity provider that vault refuses (vault.sso): `reason` is
    short and fixed, safe to audit and to show; nobody is logged in."""

    status = 403
    title = "Sign-in refused"

    def __init__(self, reason: str, status: int = 403, email: str = "") -> None:
        super().__init__("The sign-in through the identity provider was refused.",
                         reason=reason)
        self.reason, self.status, self.email = reason, status, email
        self.audited = False  # set by whoever wrote its login.failed entry


class ConfigError(Exception):
    """The configuration cannot run: the message names what is missing or wrong, never a value."""
