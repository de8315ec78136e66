"""Helpdesk webhooks: Help Scout's native scheme and Standard Webhooks.

Order, for both: rate limit, verify the signature over the raw body (constant time, every
configured secret), then de-duplicate, then act. A repeated delivery is answered with the first
one's result and not acted on twice. Webhooks never get 410: purging an unknown or already
purged ticket is a 200 with `purged: 0`.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import redis.exceptions
from flask import Response, jsonify, request
from werkzeug.exceptions import HTTPException

from vault.accounts import normalise_email
from vault.api import bp
from vault.crypto.signatures import BadSignature, helpscout_body_signed
from vault.errors import BadRequest, Unauthenticated, Unavailable, ValidationFailed, VaultError
from vault.extension import VaultExtension, ext
from vault.ids import is_ticket
from vault.storage import NO_NEWS, HelpdeskNews
from vault.web import client_address, parse_json_object

log = logging.getLogger("vault.webhooks")
HELPSCOUT = "helpscout"
IN_FLIGHT_MS = 60_000
_CONVERSATION_ID = re.compile(r"[0-9]{1,20}")
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
STANDARD = "standard"


def _raw_body() -> bytes:
    raw = request.get_data(cache=True)
    if len(raw) > 64 * 1024:
        from vault.errors import TooLarge
        raise TooLarge("The request body is larger than 64 KiB.")
    return raw


def _once(e: VaultExtension, source: str, digest: str, act: Any,
          again: Callable[[dict[str, Any]], Response | None] | None = None) -> Response:
    """Run `act` at most once per delivery digest; repeats get the first result, unless
    `again`, given that first result, answers them otherwise."""
    ttl_ms = e.config.webhook_dedupe_ttl * 1000
    # The claim lives a minute only: a worker that dies mid-delivery must not swallow the
    # helpdesk's retries for a day. A repeat while the first is in flight is told to retry.
    previous = e.store.webhook_claim(source, digest, IN_FLIGHT_MS)
    if previous is not None:
        if previous:
            first = json.loads(previous)
            other = again(first) if again is not None else None
            if other is not None:
                return other
            e.metrics.webhook(source, "duplicate")
            return jsonify({**first, "duplicate": True})
        # Counted as "unavailable" by `_counted`; Redis answered fine, so no Redis error.
        raise Unavailable("The same delivery is being handled right now; retry shortly.",
                          retry_after=5, store_fault=False)
    try:
        result = act()
    except Exception:
        # Nothing was applied (each action is one atomic step): let a retry be judged afresh.
        e.store.webhook_forget(source, digest)
        raise
    e.store.webhook_done(source, digest, result, ttl_ms)
    e.metrics.webhook(source, "ignored" if result.get("action") in {"none", "ignored"}
                      else "applied")
    return jsonify(result)


_REFUSED = {400: "invalid", 401: "unauthorized", 413: "invalid", 429: "rate_limited",
            503: "unavailable"}


def _counted(source: str, handle: Callable[[], Response]) -> Response:
    """Run a webhook view, counting a refused delivery by why (the rest count in `_once`)."""
    try:
        return handle()
    except Exception as exc:
        if isinstance(exc, VaultError):
            status = exc.status
        elif isinstance(exc, HTTPException):
            status = exc.code or 500
        elif isinstance(exc, redis.exceptions.RedisError):
            status = 503  # a Redis fault outside the store: answered 503 by the error handler
        else:
            status = 500
        ext().metrics.webhook(source, _REFUSED.get(status, "invalid" if status < 500
                                                   else "error"))
        raise


def _purge(e: VaultExtension, ticket: str, reason: str, actor: str,
           news: HelpdeskNews = NO_NEWS) -> dict[str, Any]:
    result = e.vault.close(ticket, reason=reason, actor=actor, news=news)
    if result.pop("stale", False):
        return _ignored(e, ticket, actor, reason, STALE)
    return {"action": "purged", **result}


def _assign(e: VaultExtension, ticket: str, email: str, actor: str,
            news: HelpdeskNews = NO_NEWS) -> dict[str, Any]:
    applied = e.vault.assign(ticket, email, actor=actor, news=news)
    if not applied:
        return _ignored(e, ticket, actor, "assigned", STALE)
    if email and e.store.get_agent(email) is None:
        log.warning("ticket assigned to an e-mail that is no vault agent; nobody can reveal "
                    "until that agent exists or an admin reassigns", extra={"ticket": ticket})
    return {"action": "assigned", "ticket": ticket, "assignee": email or None}


def _ignored(e: VaultExtension, ticket: str | None, source: str, what: str,
             reason: str) -> dict[str, Any]:
    """A signed delivery that is not acted on: audited, answered 200 so it is not retried."""
    e.vault.delivery_ignored(ticket, source=source, event=what, reason=reason)
    return {"action": "ignored", "reason": reason, **({"ticket": ticket} if ticket else {})}


# -- Help Scout ---------------------------------------------------------------------------------------

def _helpscout_verify(raw: bytes, secrets_: tuple[str, ...], header: str | None) -> None:
    if not secrets_:
        raise Unauthenticated("Help Scout webhooks are not configured on this server.")
    try:
        helpscout_body_signed(raw, secrets_, header)
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None


def _ms(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


@bp.post("/api/v1/webhooks/helpscout")
def helpscout() -> Response:
    return _counted(HELPSCOUT, _helpscout)


def _helpscout() -> Response:
    e = ext()
    e.check_limit("webhook", "address:" + client_address())
    raw = _raw_body()
    _helpscout_verify(raw, e.config.helpscout_secret, request.headers.get("X-HelpScout-Signature"))
    e.check_limit("webhook", HELPSCOUT)  # counted once signed: forgeries cannot use it up
    # The signature covers the body only: X-HelpScout-Event is a claim about it, not a fact.
    event = request.headers.get("X-HelpScout-Event", "").strip()[:100]
    body = parse_json_object(raw)
    signed = hashlib.sha256(raw).hexdigest()
    seen = signed[:32]  # what the ticket record keeps of it (vault.lua, helpdesk_news)

    def act() -> dict[str, Any]:
        return _helpscout_act(e, event, body, seen)

    def again(first: dict[str, Any]) -> Response | None:
        """The same signed body again, under another event name. Help Scout may send one
        conversation's state for two events at once (a status change and an assignment):
        what those two do is read from the body, so each is acted on once. A deletion or a
        merge is asserted by the name alone: a body delivered before as something else is
        not one."""
        if first.get("event") == event:
            return None  # a plain repeat: the first result
        if event in READ_FROM_BODY:
            return _once(e, HELPSCOUT, hashlib.sha256(f"{event}\n".encode() + raw).hexdigest(),
                         act)
        e.metrics.webhook(HELPSCOUT, "ignored")
        ticket = first.get("ticket") if is_ticket(first.get("ticket")) else None
        return jsonify({"event": event, **_ignored(
            e, ticket, HELPSCOUT, event, f"the same body came as {_safe_event(first)}")})

    return _once(e, HELPSCOUT, signed, act, again)


# Events whose effect is read from the signed body (its status, its assignee), not from the
# unsigned X-HelpScout-Event header that names them.
READ_FROM_BODY = frozenset({"convo.status", "convo.assigned"})
STALE = "older than the last update"
_EVENT = re.compile(r"[a-z0-9._-]{1,100}")


def _safe_event(result: dict[str, Any]) -> str:
    name = result.get("event")
    return name if isinstance(name, str) and _EVENT.fullmatch(name) else "another event"


def _helpscout_act(e: VaultExtension, event: str, body: dict[str, Any], signed: str
                   ) -> dict[str, Any]:
    actor = HELPSCOUT
    if event == "helpscout.test":
        return {"action": "none", "event": event}
    raw_id = body.get("id")
    # Help Scout ids are integers; anything else is not used as part of a Redis key.
    conversation = str(raw_id) if isinstance(raw_id, int | str) and not isinstance(raw_id, bool) \
        and _CONVERSATION_ID.fullmatch(str(raw_id)) else ""
    number = body.get("number")
    # As long as any secret of the ticket (or its tombstone) can live, counted from this event.
    remember_ms = (e.config.max_ttl + e.config.tombstone_ttl) * 1000
    ticket: str | None = None
    if isinstance(number, int | str) and not isinstance(number, bool) and is_ticket(str(number)):
        ticket = str(number)
        if conversation:
            e.store.remember_conversation(conversation, ticket, remember_ms)
    elif conversation:
        ticket = e.store.conversation_ticket(conversation)
    if ticket is None:
        # An id vault never heard of: nothing of it is stored, so nothing to purge or change.
        return {"action": "none", "event": event, "purged": 0, "reason": "unknown conversation"}
    updated = _ms(body.get("userUpdatedAt"))
    status = str(body.get("status", "")).lower()
    # Help Scout keeps a clock: a body without its time cannot undo a later update.
    news = HelpdeskNews(conversation=conversation, updated_ms=updated, body=signed, timed=True)
    if event == "convo.deleted":
        # A deletion's body is the conversation's id alone; a conversation's state (or any
        # other body Help Scout signs) named a deletion is not one.
        if set(body) != {"id"}:
            return {"event": event, **_ignored(e, ticket, actor, event, NOT_A_DELETION)}
        return {"event": event, **_purge(e, ticket, "deleted", actor, news)}
    if event == "convo.merged":
        if set(body) == {"id"}:  # a conversation id alone, as a deletion: purged as one
            return {"event": event, **_purge(e, ticket, "merged", actor, news)}
        if "number" not in body or "status" not in body:
            return {"event": event, **_ignored(e, ticket, actor, event, NOT_A_CONVERSATION)}
        # A conversation's state named a merge: refused when it is older than what was
        # applied (or has no time, when vault has one), or is the very body applied last.
        return {"event": event, **_purge(e, ticket, "merged", actor, replace(news, ordered=True))}
    if event == "convo.status":
        if status in {"closed", "spam"}:
            return {"event": event, **_purge(e, ticket, status, actor, news)}
        if status in {"active", "pending", "open"}:
            result = e.vault.reopen(ticket, actor=actor, news=news)
            if result.get("stale"):
                return {"event": event, **_ignored(e, ticket, actor, "reopened", STALE)}
            return {"event": event, "action": "reopened" if result["reopened"] else "none",
                    "ticket": ticket}
        return {"event": event, "action": "none", "ticket": ticket}
    if event == "convo.assigned":
        if "assignee" not in body and "owner" not in body:
            return {"event": event, **_ignored(e, ticket, actor, event, NOT_AN_ASSIGNMENT)}
        person = body.get("assignee", body.get("owner"))
        if person is not None and not isinstance(person, dict):
            raise BadRequest("The assignee must be an object with an e-mail, or null.")
        email = ""
        if person and person.get("email"):
            try:
                email = normalise_email(person.get("email"))
            except ValidationFailed:
                raise BadRequest("The assignee's e-mail is not valid.") from None
            hs_user = person.get("id")
            if isinstance(hs_user, int | str) and not isinstance(hs_user, bool) \
                    and _CONVERSATION_ID.fullmatch(str(hs_user)) \
                    and e.store.get_agent(email) is not None:
                e.store.update_agent(email, {"helpscout_id": str(hs_user)})
        return {"event": event, **_assign(e, ticket, email, actor, news)}
    return {"event": event, "action": "none", "ticket": ticket}


NOT_A_DELETION = "the body is not a deletion's (the conversation id alone)"
NOT_AN_ASSIGNMENT = "the body has no assignee"
NOT_A_CONVERSATION = "the body is not a conversation"


# -- Standard Webhooks -----------------------------------------------------------------------------------

def _standard_keys(secrets_: tuple[str, ...]) -> list[bytes]:
    keys = []
    for secret in secrets_:
        value = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
        try:
            keys.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            log.error("a VAULT_WEBHOOK_SECRET entry is not whsec_<base64>; it is ignored")
    return keys


def _standard_verify(e: VaultExtension, raw: bytes) -> str:
    keys = _standard_keys(e.config.webhook_secret)
    if not keys:
        raise Unauthenticated("Standard webhooks are not configured on this server.")
    msg_id = request.headers.get("webhook-id", "")
    stamp = request.headers.get("webhook-timestamp", "")
    signatures = request.headers.get("webhook-signature", "")
    if not msg_id or not stamp or not signatures or len(msg_id) > 256:
        raise Unauthenticated("Missing webhook-id, webhook-timestamp or webhook-signature.")
    if not _TIMESTAMP.fullmatch(stamp):
        raise Unauthenticated("webhook-timestamp is not a number of seconds.")
    sent = int(stamp)
    now = (e.config.clock or time.time)()
    if abs(now - sent) > e.config.webhook_tolerance:
        raise Unauthenticated("webhook-timestamp is too old or too far in the future.")
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + raw
    expected = [base64.b64encode(hmac.new(k, signed, hashlib.sha256).digest()) for k in keys]
    for part in signatures.split():
        # "v1,<base64>"; other versions are skipped, as the spec asks.
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        for candidate in expected:
            if hmac.compare_digest(candidate, value.encode()):
                return msg_id
    raise Unauthenticated("No webhook-signature matches.")


@bp.post("/api/v1/webhooks/standard")
def standard() -> Response:
    return _counted(STANDARD, _standard)


def _standard() -> Response:
    e = ext()
    e.check_limit("webhook", "address:" + client_address())
    raw = _raw_body()
    msg_id = _standard_verify(e, raw)
    e.check_limit("webhook", STANDARD)  # counted once signed: forgeries cannot use it up
    body = parse_json_object(raw)
    digest = hashlib.sha256(msg_id.encode()).hexdigest()
    return _once(e, STANDARD, digest, lambda: _standard_act(e, body))


def _standard_act(e: VaultExtension, body: dict[str, Any]) -> dict[str, Any]:
    actor = "webhook"
    kind = body.get("type")
    data = body.get("data")
    if not isinstance(data, dict) or not is_ticket(data.get("ticket")):
        raise ValidationFailed([{"name": "data.ticket",
                                 "reason": "1 to 64 letters, digits, '-' or '_'."}])
    ticket = str(data["ticket"])
    if kind == "ticket.closed":
        return {"type": kind, **_purge(e, ticket, "closed", actor)}
    if kind == "ticket.deleted":
        return {"type": kind, **_purge(e, ticket, "deleted", actor)}
    if kind == "ticket.reopened":
        result = e.vault.reopen(ticket, actor=actor)
        return {"type": kind, "action": "reopened" if result["reopened"] else "none",
                "ticket": ticket}
    if kind == "ticket.assigned":
        try:
            email = normalise_email(data.get("agent"))
        except ValidationFailed:
            raise ValidationFailed([{"name": "data.agent",
                                     "reason": "The agent's e-mail address."}]) from None
        return {"type": kind, **_assign(e, ticket, email, actor)}
    return {"type": kind if isinstance(kind, str) else None, "action": "none", "ticket": ticket}
