"""vault's cryptography: envelopes, the at-rest key ring, passwords and bearer tokens."""

from __future__ import annotations

from vault.crypto.b64 import b64url_decode, b64url_encode
from vault.crypto.envelope import (
    FIELDS,
    KINDS,
    MAX_ENVELOPE_CHARS,
    MIN_ENVELOPE_BYTES,
    EnvelopeTooLarge,
    InvalidEnvelope,
    check_shape,
    generate_key,
    open_envelope,
    seal,
)
from vault.crypto.keyring import InvalidWrap, KeyRing, KeyRingError, generate_key_spec
from vault.crypto.passwords import Passwords
from vault.crypto.tokens import (
    AGENT_TOKEN,
    API_KEY,
    MANAGE_TOKEN,
    PREFIXES,
    SESSION,
    constant_time_equals,
    is_token,
    new_token,
    token_digest,
)

__all__ = [
    "AGENT_TOKEN",
    "API_KEY",
    "FIELDS",
    "KINDS",
    "MANAGE_TOKEN",
    "MAX_ENVELOPE_CHARS",
    "MIN_ENVELOPE_BYTES",
    "PREFIXES",
    "SESSION",
    "EnvelopeTooLarge",
    "InvalidEnvelope",
    "InvalidWrap",
    "KeyRing",
    "KeyRingError",
    "Passwords",
    "b64url_decode",
    "b64url_encode",
    "check_shape",
    "constant_time_equals",
    "generate_key",
    "generate_key_spec",
    "is_token",
    "new_token",
    "open_envelope",
    "seal",
    "token_digest",
]
