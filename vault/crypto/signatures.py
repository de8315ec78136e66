"""Help Scout's signatures, each format in one place.

- **Body** (webhooks and the legacy dynamic app): `X-HelpScout-Signature` header, base64 of
  HMAC-SHA1 over the raw request body, keyed by the secret typed into Help Scout.
- **Query** (the App Developer Platform): Help Scout loads the app's page with the conversation's
  context in the query string and `X-HelpScout-Signature` among the parameters: base64 of
  HMAC-SHA1, keyed by the app's secret, over the JSON encoding of the *other* parameters, in the
  order they came, minus those that were already part of the callback URL (Help Scout's
  "Signature Validation" guide). Help Scout's own servers run on JavaScript (`JSON.stringify`:
  compact, no escaping of `/` or non-ASCII) and its guide shows PHP (`json_encode` of the
  request: compact, `\\/`, `\\uXXXX`); both encodings are accepted.

Every secret of a rotation list is tried, every time, each comparison in constant time: how
long a check takes does not tell which secret (if any) matched. Nothing here touches Redis: a
forged call costs one HMAC per secret and encoding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Collection, Sequence
from urllib.parse import parse_qsl

__all__ = ["SIGNATURE", "BadSignature", "helpscout_body_signed", "helpscout_query_context",
           "helpscout_sign", "helpscout_sign_query"]

SIGNATURE = "X-HelpScout-Signature"
MAX_PARAMS = 32  # Help Scout sends eight; a longer query is not Help Scout's


class BadSignature(ValueError):
    """Unsigned, wrongly signed or malformed. The message is safe to show and to log."""


def helpscout_sign(secret: str, data: bytes) -> str:
    """Base64 HMAC-SHA1 of `data`: what Help Scout sends (and `vault helpscout replay`)."""
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha1).digest()).decode()


def _matches(candidates: Sequence[bytes], secrets: Sequence[str], presented: str) -> bool:
    given = presented.strip().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        for data in candidates:
            matched |= hmac.compare_digest(helpscout_sign(secret, data).encode(), given)
    return matched


def helpscout_body_signed(raw: bytes, secrets: Sequence[str], presented: str | None) -> None:
    """Raise BadSignature unless `presented` signs `raw` with one of `secrets`."""
    if not presented:
        raise BadSignature("Missing X-HelpScout-Signature.")
    if not _matches([raw], secrets, presented):
        raise BadSignature("The X-HelpScout-Signature does not match.")


def _encodings(params: dict[str, str]) -> list[bytes]:
    js = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    php = json.dumps(params, separators=(",", ":")).replace("/", "\\/")
    return list(dict.fromkeys([js.encode(), php.encode()]))


def helpscout_query_context(query: bytes, secrets: Sequence[str], *,
                            unsigned: Collection[str] = ()) -> dict[str, str]:
    """The signed parameters of an app load's raw query string, in their order; BadSignature
    unless one of `secrets` signed them. `unsigned` names the parameters of the callback URL
    itself (vault's own, such as `lang`): left out of the signed data and of the answer.

    A parameter given twice is refused: the signature would cover one value and the page could
    read the other.
    """
    try:
        pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          errors="strict", max_num_fields=MAX_PARAMS)
    except ValueError:  # UnicodeDecodeError included
        raise BadSignature("The query string is not one Help Scout sends.") from None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise BadSignature("A parameter is given twice.")
    params = dict(pairs)
    presented = params.pop(SIGNATURE, "")
    if not presented:
        raise BadSignature("Missing X-HelpScout-Signature.")
    for name in unsigned:
        params.pop(name, None)
    # A `+` of the base64 alphabet that was not percent-encoded arrives as a space.
    if not _matches(_encodings(params), secrets, presented.replace(" ", "+")):
        raise BadSignature("The X-HelpScout-Signature does not match.")
    return params


def helpscout_sign_query(secret: str, params: dict[str, str]) -> str:
    """The `X-HelpScout-Signature` Help Scout adds to `params` (JavaScript's encoding), for
    rehearsals and tests."""
    return helpscout_sign(secret, _encodings(params)[0])
