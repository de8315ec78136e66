"""Standard Webhooks (standardwebhooks.com): any helpdesk or automation that speaks them.

Signed with `webhook-id`, `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256
of id.timestamp.body>`), keyed by any secret of VAULT_WEBHOOK_SECRET (`whsec_<base64>`), within
VAULT_WEBHOOK_TOLERANCE of vault's clock. A delivery is the same delivery by its `webhook-id`.
The body is `{"type": ..., "data": {"ticket": ..., "agent": ...}}`: `ticket.closed`,
`ticket.deleted`, `ticket.reopened`, `ticket.assigned` (with `data.agent`, an e-mail); any
other type changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
import time
from collections.abc import Callable
from typing import Any

from vault.accounts import normalise_email
from vault.errors import Unauthenticated, ValidationFailed
from vault.helpdesks.tickets import (
    ASSIGNED,
    CLOSED,
    DELETED,
    NONE,
    REOPENED,
    Delivery,
    Repeat,
    TicketEvent,
)
from vault.ids import is_ticket

log = logging.getLogger("vault.webhooks")
NAME = "standard"
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def keys(secrets: tuple[str, ...]) -> list[bytes]:
    """The HMAC keys of `whsec_<base64>` secrets; one that is not is logged and left out."""
    found = []
    for secret in secrets:
        value = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            log.error("a VAULT_WEBHOOK_SECRET entry is not whsec_<base64>; it is ignored")
    return found


def verify(raw: bytes, header: Callable[[str], str], secrets: tuple[str, ...], *,
           tolerance: int, now: float) -> str:
    """The delivery's `webhook-id`, or Unauthenticated; `header(name)` is the request's header
    of that name, "" when absent."""
    keys_ = keys(secrets)
    if not keys_:
        raise Unauthenticated("Standard webhooks are not configured on this server.")
    msg_id = header("webhook-id")
    stamp = header("webhook-timestamp")
    signatures = header("webhook-signature")
    if not msg_id or not stamp or not signatures or len(msg_id) > 256:
        raise Unauthenticated("Missing webhook-id, webhook-timestamp or webhook-signature.")
    if not _TIMESTAMP.fullmatch(stamp):
        raise Unauthenticated("webhook-timestamp is not a number of seconds.")
    if abs(now - int(stamp)) > tolerance:
        raise Unauthenticated("webhook-timestamp is too old or too far in the future.")
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + raw
    expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()) for k in keys_]
    for part in signatures.split():
        # "v1,<base64>"; other versions are skipped, as the spec asks.
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        for candidate in expected:
            if hmac.compare_digest(candidate, value.encode()):
                return msg_id
    raise Unauthenticated("No webhook-signature matches.")


def ticket_event(body: dict[str, Any]) -> TicketEvent:
    """What a delivery's JSON body asks; ValidationFailed without a ticket (or, to assign,
    an agent's e-mail)."""
    kind = body.get("type")
    data = body.get("data")
    if not isinstance(data, dict) or not is_ticket(data.get("ticket")):
        raise ValidationFailed([{"name": "data.ticket",
                                 "reason": "1 to 64 letters, digits, '-' or '_'."}])
    about: dict[str, Any] = {"answer": {"type": kind if isinstance(kind, str) else None},
                             "ticket": str(data["ticket"])}
    if kind == "ticket.closed":
        return TicketEvent(CLOSED, reason="closed", **about)
    if kind == "ticket.deleted":
        return TicketEvent(DELETED, **about)
    if kind == "ticket.reopened":
        return TicketEvent(REOPENED, **about)
    if kind == "ticket.assigned":
        try:
            email = normalise_email(data.get("agent"))
        except ValidationFailed:
            raise ValidationFailed([{"name": "data.agent",
                                     "reason": "The agent's e-mail address."}]) from None
        return TicketEvent(ASSIGNED, assignee=email, **about)
    return TicketEvent(NONE, **about)


class StandardWebhooks:
    """Standard Webhooks, as the rules take a helpdesk (vault.helpdesks.tickets)."""

    source = NAME
    actor = "webhook"

    def __init__(self, secrets: tuple[str, ...], *, tolerance: int,
                 clock: Callable[[], float] | None = None) -> None:
        self.secrets = secrets
        self.tolerance = tolerance
        self.clock = clock or time.time

    def verify(self, raw: bytes, header: Callable[[str], str]) -> Delivery:
        msg_id = verify(raw, header, self.secrets, tolerance=self.tolerance, now=self.clock())
        return Delivery(digest=hashlib.sha256(msg_id.encode()).hexdigest(), raw=raw)

    def ticket_event(self, delivery: Delivery, body: dict[str, Any]) -> TicketEvent:
        return ticket_event(body)

    def repeat(self, delivery: Delivery, first: dict[str, Any]) -> Repeat | None:
        return None  # the same webhook-id is the same delivery


__all__ = ["NAME", "StandardWebhooks", "keys", "ticket_event", "verify"]
