"""Strict base64url without padding (RFC 4648 section 5), the one spelling vault accepts.

Every random value vault shows (keys, ids, tokens, envelopes) is written this way. Decoding is
canonical: a text decodes only if re-encoding the bytes gives the same text back, so no value
has two spellings (two spellings of one id or token would be two cache keys, two log lines, two
rate-limit buckets for one thing).
"""

from __future__ import annotations

import base64
import binascii

__all__ = ["b64url_decode", "b64url_encode"]

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_TO_STANDARD = bytes.maketrans(b"-_", b"+/")
# The bits of the last character that carry no data, by the text's length modulo 4.
_UNUSED_BITS = {2: 0x0F, 3: 0x03}


def b64url_encode(data: bytes) -> str:
    """Encode bytes as base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode canonical base64url without padding.

    Raises ValueError for anything else: padding, characters outside ``A-Za-z0-9-_``, an
    impossible length, or non-zero trailing bits. The message never repeats the input, which may
    be a secret.

    One pass in C over the text, not a regex, a decode and a re-encode (an envelope is 1.4 KiB
    and every create and reveal decodes one): the standard alphabet's two extra characters and
    padding are refused up front, binascii's strict mode refuses every other character, and
    canonical spelling is the last character's unused bits being zero.
    """
    if not isinstance(text, str) or not text.isascii() or "+" in text or "/" in text \
            or "=" in text:
        raise ValueError("not base64url without padding")
    rest = len(text) % 4
    if rest == 1:
        raise ValueError("not a possible base64url length")
    try:
        data = binascii.a2b_base64(text.encode("ascii").translate(_TO_STANDARD)
                                   + b"=" * (-len(text) % 4), strict_mode=True)
    except binascii.Error:
        raise ValueError("not base64url without padding") from None
    # The last character may carry unused low bits; only the spelling with them clear is ours.
    if rest and _ALPHABET.index(text[-1]) & _UNUSED_BITS[rest]:
        raise ValueError("not canonical base64url")
    return data
