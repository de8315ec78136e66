"""The server's key ring: stored envelopes are wrapped again at rest (docs/security-model.md, "Key ring").

A key is ``<key id>:<base64url of 32 random bytes>``; ``VAULT_KEYS`` lists keys separated by
commas. Like Fernet's MultiFernet, the first key wraps and every key unwraps, so keys rotate
without downtime: add the new key second, move it first, ``rotate()`` what is stored, drop the
old one. A wrapped value names its key (``w1.<key id>.<base64url(nonce || ciphertext || tag)>``),
so unwrapping tries one key, not all of them, and ASCII bytes store as they are in Redis.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vault.crypto.b64 import b64url_decode, b64url_encode

__all__ = ["InvalidWrap", "KeyRing", "KeyRingError", "generate_key_spec"]

_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_BYTES = 16
_WRAP_PREFIX = b"w1."


class KeyRingError(Exception):
    """A key spec is malformed; the message says what and where, never the key material."""


class InvalidWrap(Exception):
    """A wrapped value cannot be unwrapped: unknown key id, tampered, or another context.

    One error for every cause, like Fernet's InvalidToken.
    """


def generate_key_spec() -> str:
    """Return a new key spec ``k<8 hex digits>:<43 base64url characters>`` for VAULT_KEYS."""
    return f"k{secrets.token_hex(4)}:{b64url_encode(os.urandom(_KEY_BYTES))}"


class KeyRing:
    """Ordered AES-256-GCM keys by id: the first wraps, all unwrap."""

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Build a ring from ``(key id, 32 key bytes)`` pairs, current first; KeyRingError."""
        self._keys: dict[str, AESGCM] = {}
        for key_id, material in keys:
            if _KEY_ID_RE.fullmatch(key_id) is None:
                raise KeyRingError("a key id must match [A-Za-z0-9_-]{1,32}")
            if key_id in self._keys:
                raise KeyRingError(f"key id {key_id!r} appears twice")
            if len(material) != _KEY_BYTES:
                raise KeyRingError(f"key {key_id!r} must be {_KEY_BYTES} bytes")
            self._keys[key_id] = AESGCM(material)
        if not self._keys:
            raise KeyRingError("the key ring has no key")
        self._current_id = next(iter(self._keys))

    @classmethod
    def from_string(cls, spec: str) -> KeyRing:
        """Parse ``id:key,id:key,...`` (VAULT_KEYS); empty entries are skipped. KeyRingError."""
        return cls(_parse_entries(spec.split(",")))

    @classmethod
    def from_file(cls, path: str) -> KeyRing:
        """Read keys from a file (VAULT_KEYS_FILE); KeyRingError if unreadable or malformed.

        Keys go one per line or comma-separated; blank lines and ``#`` comments are ignored.
        """
        try:
            with open(path, "rb") as file:
                raw = file.read()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise KeyRingError(f"cannot read key file {path}: {reason}") from None
        content = None
        # Raised outside the handler: a decode error holds the file's bytes, keys included.
        with contextlib.suppress(UnicodeDecodeError):
            content = raw.decode("utf-8")
        if content is None:
            raise KeyRingError(f"key file {path} is not UTF-8 text")
        entries: list[str] = []
        for line in content.splitlines():
            # '#' appears in no key id and no base64url, so it can only start a comment.
            entries.extend(line.split("#", 1)[0].split(","))
        return cls(_parse_entries(entries))

    @classmethod
    def generate(cls) -> KeyRing:
        """A ring of one new random key, for the embedded dev mode (lost at exit)."""
        return cls.from_string(generate_key_spec())

    @property
    def current_id(self) -> str:
        """The id of the key that wraps."""
        return self._current_id

    @property
    def ids(self) -> tuple[str, ...]:
        """All key ids, current first."""
        return tuple(self._keys)

    def wrap(self, data: bytes, *, context: bytes) -> bytes:
        """Encrypt ``data`` under the current key, bound to ``context`` (e.g. its storage id)."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self._current_id].encrypt(
            nonce, data, _associated_data(self._current_id, context)
        )
        payload = b64url_encode(nonce + sealed).encode("ascii")
        return _WRAP_PREFIX + self._current_id.encode("ascii") + b"." + payload

    def unwrap(self, blob: bytes, *, context: bytes) -> bytes:
        """Decrypt a value made by ``wrap`` with the same ``context``; raises InvalidWrap."""
        key_id, raw = _split(blob)
        aead = self._keys.get(key_id)
        if aead is None or len(raw) < _NONCE_BYTES + _TAG_BYTES:
            raise InvalidWrap
        try:
            return aead.decrypt(
                raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], _associated_data(key_id, context)
            )
        except InvalidTag:
            raise InvalidWrap from None

    def is_current(self, blob: bytes) -> bool:
        """Whether ``blob`` names the current key (False for anything malformed)."""
        try:
            key_id, _ = _split(blob)
        except InvalidWrap:
            return False
        return key_id == self._current_id

    def rotate(self, blob: bytes, *, context: bytes) -> bytes:
        """Re-wrap ``blob`` under the current key; an already current blob comes back unchanged.

        The blob is unwrapped either way, so a damaged one raises InvalidWrap here rather than
        surviving a rotation unnoticed.
        """
        data = self.unwrap(blob, context=context)
        if self.is_current(blob):
            return blob
        return self.wrap(data, context=context)

    def __repr__(self) -> str:
        return f"KeyRing(ids={self.ids!r})"


def _parse_entries(entries: Iterable[str]) -> list[tuple[str, bytes]]:
    """``(id, key bytes)`` from ``id:key`` entries; KeyRingError names the entry by position."""
    keys: list[tuple[str, bytes]] = []
    for entry in (entry.strip() for entry in entries):
        if not entry:
            continue
        position = len(keys) + 1
        key_id, colon, material = entry.partition(":")
        if not colon:
            raise KeyRingError(f"key {position} is not of the form <key id>:<key>")
        if _KEY_ID_RE.fullmatch(key_id) is None:
            # The id is not echoed: in a mangled entry it may well be key material.
            raise KeyRingError(f"key {position}: the key id must match [A-Za-z0-9_-]{{1,32}}")
        try:
            raw = b64url_decode(material)
        except ValueError:
            raw = b""
        if len(raw) != _KEY_BYTES:
            raise KeyRingError(
                f"key {key_id!r}: the key must be {_KEY_BYTES} bytes as 43 base64url characters"
            )
        keys.append((key_id, raw))
    return keys


def _associated_data(key_id: str, context: bytes) -> bytes:
    # The format and key id are bound too, so no part of the header can be edited unnoticed.
    return _WRAP_PREFIX + key_id.encode("ascii") + b"." + context


def _split(blob: bytes) -> tuple[str, bytes]:
    """The key id and the decoded ``nonce || ciphertext || tag`` of a blob; InvalidWrap."""
    if not isinstance(blob, bytes) or not blob.startswith(_WRAP_PREFIX):
        raise InvalidWrap
    key_id, dot, payload = blob[len(_WRAP_PREFIX) :].partition(b".")
    try:
        raw = b64url_decode(payload.decode("ascii"))
        text_id = key_id.decode("ascii")
    except ValueError:
        raise InvalidWrap from None
    if not dot or _KEY_ID_RE.fullmatch(text_id) is None:
        raise InvalidWrap
    return text_id, raw
