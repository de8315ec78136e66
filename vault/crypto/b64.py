"""Strict base64url without padding (RFC 4648 section 5), the one spelling vault accepts.

Every random value vault shows (keys, ids, tokens, envelopes) is written this way. Decoding is
canonical: a text decodes only if re-encoding the bytes gives the same text back, so no value
has two spellings (two spellings of one id or token would be two cache keys, two log lines, two
rate-limit buckets for one thing).
"""

from __future__ import annotations

import base64
import binascii
import re

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET_RE = re.compile(r"[A-Za-z0-9_-]*")


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode canonical base64url without padding.

    Raises ValueError for anything else: padding, characters outside ``A-Za-z0-9-_``, an
    impossible length, or non-zero trailing bits. The message never repeats the input, which may
    be a secret.
    """
    if not isinstance(text, str) or _ALPHABET_RE.fullmatch(text) is None:
        raise ValueError("not base64url without padding")
    if len(text) % 4 == 1:
        raise ValueError("not a possible base64url length")
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except binascii.Error:
        # Unreachable after the checks above; kept so a decoder change cannot leak binascii.Error.
        raise ValueError("not base64url without padding") from None
    # The last character may carry unused low bits; only the spelling with them clear is ours.
    if b64url_encode(data) != text:
        raise ValueError("not canonical base64url")
    return data
