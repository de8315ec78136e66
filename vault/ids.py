"""Ticket names and the ids of requests and secrets (docs/api.md, "Exact formats").

An id is 28 base64url characters: a 6-character slot tag derived from the ticket, then 22
characters of 128 random bits. The tag is the Redis Cluster hash tag of every key of the ticket,
so a reveal finds all its keys from the id alone, with no lookup.
"""

from __future__ import annotations

import functools
import hashlib
import re
import secrets

from vault.crypto.b64 import b64url_decode, b64url_encode

TICKET_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_ID_RE = re.compile(r"^[A-Za-z0-9_-]{28}$")
ID_LENGTH = 28
TAG_LENGTH = 6


def is_ticket(value: object) -> bool:
    return isinstance(value, str) and TICKET_RE.fullmatch(value) is not None


@functools.lru_cache(maxsize=4096)  # a pure function, asked three times by every create
def slot_tag(ticket: str) -> str:
    """First 6 characters of base64url(SHA-256("vault-slot:" + ticket))."""
    return b64url_encode(hashlib.sha256(b"vault-slot:" + ticket.encode("utf-8")).digest())[:TAG_LENGTH]


def new_id(ticket: str) -> str:
    return new_id_in(slot_tag(ticket))


def new_id_in(tag: str) -> str:
    """A new id in the same slot as `tag` (a request's secret lives beside its request)."""
    return tag + b64url_encode(secrets.token_bytes(16))


def is_id(value: object) -> bool:
    """Shape check: 28 base64url characters whose random part is canonical.

    22 characters carry 132 bits for 128 bits of data, so the last character must have its
    low 4 bits clear; anything else is not an id vault could have made (404, never a lookup).
    """
    if not isinstance(value, str) or _ID_RE.fullmatch(value) is None:
        return False
    try:
        b64url_decode(value[TAG_LENGTH:])  # strict: refuses non-canonical trailing bits
    except ValueError:
        return False
    return True


def tag_of(id_: str) -> str:
    return id_[:TAG_LENGTH]
