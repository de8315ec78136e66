"""Envelope v1: one customer's credentials, encrypted end to end (docs/api.md, "Exact formats").

Text form: ``v1.`` + base64url(nonce || AES-256-GCM ciphertext || tag), no padding. The key K
is 32 random bytes carried as 43 base64url characters in the link's fragment, so the server
never sees it. The associated data ``vault:v1:<kind>:<ticket>`` binds an envelope to its ticket
and kind: the server cannot move it to another ticket or relabel it unnoticed. The browser
(WebCrypto) and this module produce and open the same bytes; ``tests/vectors/envelope_v1.json``
holds the known answers both sides check.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping
from types import MappingProxyType

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.b64 import b64url_decode, b64url_encode

__all__ = [
    "FIELDS",
    "KINDS",
    "MAX_ENVELOPE_CHARS",
    "MIN_ENVELOPE_BYTES",
    "EnvelopeTooLarge",
    "InvalidEnvelope",
    "check_shape",
    "generate_key",
    "open_envelope",
    "seal",
]

KINDS: tuple[str, ...] = ("wordpress", "sftp", "other")
FIELDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "wordpress": ("url", "username", "password", "note"),
        "sftp": ("host", "port", "username", "password", "private_key", "note"),
        "other": ("text",),
    }
)

MAX_ENVELOPE_CHARS = 65536
# A nonce and a tag around an empty ciphertext: nothing shorter can be a sealed envelope.
MIN_ENVELOPE_BYTES = 28

_PREFIX = "v1."
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TICKET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
# Deliberately one wording for every cause, so an error tells no one which check failed.
_INVALID = "invalid envelope"


class InvalidEnvelope(Exception):
    """The text is not a v1 envelope, or cannot be opened with this key, ticket and kind.

    One error for every cause (wrong key, tampering, wrong ticket or kind, malformed text or
    plaintext); its message never contains the key, the envelope or the plaintext.
    """


class EnvelopeTooLarge(InvalidEnvelope):
    """The text form is longer than MAX_ENVELOPE_CHARS (the API answers 413)."""


def generate_key() -> str:
    """Return a new random key K: 32 bytes as 43 base64url characters."""
    return b64url_encode(os.urandom(_KEY_BYTES))


def seal(key: str, *, ticket: str, kind: str, fields: Mapping[str, str]) -> str:
    """Encrypt ``fields`` for ``ticket`` and ``kind`` under ``key`` with a fresh random nonce.

    Empty fields are left out. Raises ValueError for a malformed key or ticket, an unknown kind
    or field name, text that is not valid Unicode, or a result over MAX_ENVELOPE_CHARS, and
    TypeError for names or values that are not strings; no message contains a key or a value.
    """
    _associated_data(kind, ticket)  # validates kind and ticket before the fields are read
    allowed = FIELDS[kind]
    for name, value in fields.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError("field names and values must be strings")
        if name not in allowed:
            raise ValueError(f"the fields of kind {kind!r} are {', '.join(allowed)}")
    present = {name: value for name, value in fields.items() if value}
    plaintext = json.dumps(present, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    data = None
    # Raised outside the handler, so the codec's error (which holds the plaintext) is not chained.
    with contextlib.suppress(UnicodeEncodeError):
        data = plaintext.encode("utf-8")
    if data is None:
        raise ValueError("field values must be valid Unicode text")
    text = _seal_with_nonce(key, os.urandom(_NONCE_BYTES), ticket=ticket, kind=kind, plaintext=data)
    if len(text) > MAX_ENVELOPE_CHARS:
        raise ValueError(f"the fields do not fit in {MAX_ENVELOPE_CHARS} characters")
    return text


def open_envelope(key: str, text: str, *, ticket: str, kind: str) -> dict[str, str]:
    """Decrypt and parse an envelope sealed for ``ticket`` and ``kind`` under ``key``.

    Returns the fields. Raises InvalidEnvelope (EnvelopeTooLarge for an oversized text) for
    anything wrong: shape, key, tag, ticket, kind, or a plaintext that is not a flat JSON object
    of this kind's fields with string values.
    """
    raw = _decode(text)
    try:
        aead = _aead(key)
        aad = _associated_data(kind, ticket)
    except ValueError:
        raise InvalidEnvelope(_INVALID) from None
    try:
        data = aead.decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise InvalidEnvelope(_INVALID) from None
    return _parse_fields(data, kind)


def check_shape(text: object) -> None:
    """Check what the server can check without K: a string, ``v1.``, canonical base64url, size.

    Raises EnvelopeTooLarge over MAX_ENVELOPE_CHARS (tested before anything is decoded),
    InvalidEnvelope for any other shape fault.
    """
    _decode(text)


def _seal_with_nonce(key: str, nonce: bytes, *, ticket: str, kind: str, plaintext: bytes) -> str:
    """Seal exact plaintext bytes with a chosen nonce; only for making known-answer vectors.

    Real sealing must never choose its nonce: a nonce used twice under one key gives away the
    XOR of both plaintexts and the key that authenticates them. Raises ValueError.
    """
    if len(nonce) != _NONCE_BYTES:
        raise ValueError(f"nonce must be {_NONCE_BYTES} bytes")
    aead = _aead(key)
    aad = _associated_data(kind, ticket)
    return _PREFIX + b64url_encode(nonce + aead.encrypt(nonce, plaintext, aad))


def _aead(key: str) -> AESGCM:
    """AES-256-GCM under K; ValueError (without the key) unless K is 43 base64url characters."""
    try:
        raw = b64url_decode(key)
    except ValueError:
        raw = b""
    if len(raw) != _KEY_BYTES:
        raise ValueError("key must be 32 bytes written as 43 base64url characters")
    return AESGCM(raw)


def _associated_data(kind: str, ticket: str) -> bytes:
    """``vault:v1:<kind>:<ticket>`` as UTF-8; ValueError for an unknown kind or ticket shape."""
    if kind not in FIELDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    if not isinstance(ticket, str) or _TICKET_RE.fullmatch(ticket) is None:
        raise ValueError("ticket must match [A-Za-z0-9_-]{1,64}")
    return f"vault:v1:{kind}:{ticket}".encode()


def _decode(text: object) -> bytes:
    """The bytes of an envelope's text form, after every shape check; raises InvalidEnvelope."""
    if not isinstance(text, str):
        raise InvalidEnvelope(_INVALID)
    # Size first: an oversized body is refused before any work is spent decoding it.
    if len(text) > MAX_ENVELOPE_CHARS:
        raise EnvelopeTooLarge(f"envelope longer than {MAX_ENVELOPE_CHARS} characters")
    if not text.startswith(_PREFIX):
        raise InvalidEnvelope(_INVALID)
    try:
        raw = b64url_decode(text[len(_PREFIX) :])
    except ValueError:
        raise InvalidEnvelope(_INVALID) from None
    if len(raw) < MIN_ENVELOPE_BYTES:
        raise InvalidEnvelope(_INVALID)
    return raw


def _parse_fields(data: bytes, kind: str) -> dict[str, str]:
    """The flat JSON object of string fields in ``data``; raises InvalidEnvelope otherwise."""
    value: object = None  # stays None, which is refused below, unless data is UTF-8 JSON
    # ValueError: bad UTF-8, bad JSON, a repeated name; RecursionError: absurd nesting. Their
    # exceptions hold the plaintext (.object, .doc), so InvalidEnvelope is raised after the
    # block, where it chains nothing that could carry the plaintext into a log or a report.
    with contextlib.suppress(ValueError, RecursionError):
        value = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_names)
    if not isinstance(value, dict):
        raise InvalidEnvelope(_INVALID)
    allowed = FIELDS[kind]
    fields: dict[str, str] = {}
    for name, field in value.items():
        if name not in allowed or not isinstance(field, str):
            raise InvalidEnvelope(_INVALID)
        fields[name] = field
    return fields


def _unique_names(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # A repeated name would mean two readers could see two different values; refuse it.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("repeated name")
    return obj
