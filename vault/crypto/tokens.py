"""Bearer secrets: agent API tokens, helpdesk keys, manage tokens, sessions (docs/api.md).

A token is a prefix and 32 random bytes as 43 base64url characters. The prefixes let secret
scanners find leaked tokens. Tokens are stored only as SHA-256 digests and found by digest: 256
random bits need no slow hash, so checking one costs one lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from vault.crypto.b64 import b64url_encode

__all__ = [
    "AGENT_TOKEN",
    "API_KEY",
    "MANAGE_TOKEN",
    "PREFIXES",
    "SESSION",
    "constant_time_equals",
    "is_token",
    "new_token",
    "token_digest",
]

# Prefixes, not secrets: ruff's S105 reads the names as passwords.
AGENT_TOKEN = "vt_"  # noqa: S105
API_KEY = "vk_"
MANAGE_TOKEN = "vm_"  # noqa: S105
SESSION = "vs_"
PREFIXES: tuple[str, ...] = (AGENT_TOKEN, API_KEY, MANAGE_TOKEN, SESSION)

_TOKEN_BYTES = 32
# 43 characters carry 258 bits for 256: the last one has its two low bits clear, so it is one
# of these 16. Checking that here keeps each token to a single spelling.
_BODY_RE = re.compile(r"[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]")


def new_token(prefix: str) -> str:
    """A new token: ``prefix`` + 43 base64url characters. ValueError for an unknown prefix."""
    if prefix not in PREFIXES:
        raise ValueError(f"prefix must be one of {', '.join(PREFIXES)}")
    return prefix + b64url_encode(secrets.token_bytes(_TOKEN_BYTES))


def token_digest(token: str) -> str:
    """Lowercase hex SHA-256 of the token's UTF-8 bytes: what is stored and looked up.

    Raises ValueError for a string that is not valid Unicode; check ``is_token`` first.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def is_token(value: object, prefix: str) -> bool:
    """Whether ``value`` is exactly ``prefix`` + 43 canonical base64url characters."""
    return (
        isinstance(value, str)
        and value.startswith(prefix)
        and _BODY_RE.fullmatch(value, len(prefix)) is not None
    )


def constant_time_equals(a: str, b: str) -> bool:
    """Compare two strings in time independent of where they differ."""
    # surrogatepass: a stray surrogate in client input must compare unequal, not raise.
    return hmac.compare_digest(
        a.encode("utf-8", "surrogatepass"), b.encode("utf-8", "surrogatepass")
    )
