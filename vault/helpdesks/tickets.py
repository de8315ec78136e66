"""The seam between a helpdesk and vault's tickets, and the rules that apply what it says.

A helpdesk module turns a verified delivery into one `TicketEvent`. `Deliveries` applies it:
at most once per delivery (a repeat is answered with the first answer), the ticket found from
the helpdesk's conversation id when the delivery does not name it, every signed delivery that
is not acted on audited and answered 200 (so the helpdesk does not retry it). Webhooks never
get 410: purging an unknown or already purged ticket is a `purged: 0`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from vault.accounts import Accounts
from vault.config import Config
from vault.errors import BadRequest, Unavailable
from vault.service import Vault
from vault.storage import NO_NEWS, HelpdeskNews

log = logging.getLogger("vault.webhooks")

# What a TicketEvent asks. CLOSED carries its reason (closed, spam); DELETED and MERGED purge
# like it; IGNORED is audited with its reason; REFUSED is a 400 (a body that cannot be read),
# judged once the ticket is known; NONE changes nothing; TEST is a helpdesk's test delivery,
# answered without looking anything up.
ASSIGNED, CLOSED, REOPENED, DELETED, MERGED = "assigned", "closed", "reopened", "deleted", "merged"
IGNORED, REFUSED, NONE, TEST = "ignored", "refused", "none", "test"
STALE = "older than the last update"
# The first delivery of a digest gets this long to finish: a worker that dies mid-delivery must
# not swallow the helpdesk's retries for a day. A repeat while it is in flight is told to retry.
IN_FLIGHT_MS = 60_000


@dataclass(frozen=True)
class TicketEvent:
    """What one delivery asks of one ticket."""

    kind: str
    # What the answer says of the delivery itself: {"event": its name} for Help Scout,
    # {"type": its type} for Standard Webhooks.
    answer: Mapping[str, Any] = field(default_factory=dict)
    # The helpdesk's own name of the event, for the audit log of an ignored one.
    name: str = ""
    ticket: str | None = None
    # The helpdesk's id of the conversation: remembered for `ticket`, or looked up without it.
    conversation: str = ""
    reason: str = ""  # CLOSED: closed or spam; IGNORED: why; REFUSED: the 400's detail
    assignee: str = ""  # ASSIGNED: the agent's e-mail, "" for nobody
    helpdesk_user: str = ""  # ASSIGNED: the assignee's user id at the helpdesk, if known
    news: HelpdeskNews = NO_NEWS


@dataclass(frozen=True)
class Delivery:
    """A delivery whose signature was verified, its body not read yet."""

    digest: str  # what makes a repeat a repeat
    raw: bytes
    name: str = ""  # what the helpdesk calls it outside the body (Help Scout's event header)


@dataclass(frozen=True)
class Repeat:
    """What a delivery seen before is, told by the first one's answer: acted on once more
    under `digest`, or answered with `event`, an IGNORED one (audited, not remembered)."""

    digest: str = ""
    event: TicketEvent | None = None


class Helpdesk(Protocol):
    """What a helpdesk module gives the rules."""

    source: str  # its webhook's name: the de-duplication space, the rate limit, the metrics
    actor: str  # who the audit log says acted

    def verify(self, raw: bytes, header: Callable[[str], str]) -> Delivery:
        """The delivery, or Unauthenticated (a missing, wrong or stale signature);
        `header(name)` is the request's header of that name, "" when absent."""
        ...

    def ticket_event(self, delivery: Delivery, body: dict[str, Any]) -> TicketEvent:
        """What the delivery's JSON body asks (never touches Redis); ValidationFailed or
        BadRequest for a body that cannot say anything."""
        ...

    def repeat(self, delivery: Delivery, first: dict[str, Any]) -> Repeat | None:
        """A delivery whose digest was seen, given the first one's answer: None to answer
        with that answer (a plain repeat)."""
        ...


class Deliveries:
    """Applies helpdesk deliveries to tickets, each once. `counted(source, outcome)` counts
    each delivery answered: applied, ignored or duplicate (the app's metrics)."""

    def __init__(self, vault: Vault, accounts: Accounts, config: Config,
                 counted: Callable[[str, str], None]) -> None:
        self.vault = vault
        self.accounts = accounts
        self.config = config
        self.counted = counted

    def receive(self, desk: Helpdesk, delivery: Delivery, body: dict[str, Any]) -> dict[str, Any]:
        """The answer to a verified delivery, acting on it unless it was seen before."""
        def act() -> dict[str, Any]:
            return self.apply(desk, desk.ticket_event(delivery, body))

        def again(first: dict[str, Any]) -> dict[str, Any] | None:
            repeat = desk.repeat(delivery, first)
            if repeat is None:
                return None
            if repeat.event is not None:  # ignored as it stands: nothing looked up
                self.counted(desk.source, "ignored")
                ignored = repeat.event
                return {**ignored.answer, **self.ignored(ignored.ticket, desk.actor,
                                                         ignored.name, ignored.reason)}
            return self.once(desk.source, repeat.digest, act)

        return self.once(desk.source, delivery.digest, act, again)

    def once(self, source: str, digest: str, act: Callable[[], dict[str, Any]],
             again: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None
             ) -> dict[str, Any]:
        """Run `act` at most once per delivery digest; repeats get the first answer (marked
        `duplicate`), unless `again`, given that first answer, answers them otherwise."""
        previous = self.vault.claim_delivery(source, digest, IN_FLIGHT_MS)
        if previous is not None:
            if previous:
                first = json.loads(previous)
                other = again(first) if again is not None else None
                if other is not None:
                    return other
                self.counted(source, "duplicate")
                return {**first, "duplicate": True}
            # Counted as "unavailable" by the view; Redis answered fine, so no Redis error.
            raise Unavailable("The same delivery is being handled right now; retry shortly.",
                              retry_after=5, store_fault=False)
        try:
            result = act()
        except Exception:
            # Nothing was applied (each action is one atomic step): a retry is judged afresh.
            self.vault.forget_delivery(source, digest)
            raise
        self.vault.delivery_done(source, digest, result, self.config.webhook_dedupe_ttl * 1000)
        self.counted(source, "ignored" if result.get("action") in {"none", "ignored"}
                     else "applied")
        return result

    def apply(self, desk: Helpdesk, event: TicketEvent) -> dict[str, Any]:
        """Act on one event; the answer, with the helpdesk's own words for the delivery."""
        return {**event.answer, **self._outcome(desk.actor, event)}

    def _outcome(self, actor: str, event: TicketEvent) -> dict[str, Any]:
        if event.kind == TEST:
            return {"action": "none"}
        ticket = self._ticket(event)
        if ticket is None:
            # An id vault never heard of: nothing of it is stored, so nothing to purge or change.
            return {"action": "none", "purged": 0, "reason": "unknown conversation"}
        if event.kind == REFUSED:
            raise BadRequest(event.reason)
        if event.kind == IGNORED:
            return self.ignored(ticket, actor, event.name, event.reason)
        if event.kind in {CLOSED, DELETED, MERGED}:
            reason = event.reason if event.kind == CLOSED else event.kind
            return self._purge(ticket, reason, actor, event.news)
        if event.kind == REOPENED:
            result = self.vault.reopen(ticket, actor=actor, news=event.news)
            if result.get("stale"):
                return self.ignored(ticket, actor, "reopened", STALE)
            return {"action": "reopened" if result["reopened"] else "none", "ticket": ticket}
        if event.kind == ASSIGNED:
            if event.helpdesk_user:
                self.accounts.link_helpscout_user(event.assignee, event.helpdesk_user)
            return self._assign(ticket, event.assignee, actor, event.news)
        return {"action": "none", "ticket": ticket}

    def _ticket(self, event: TicketEvent) -> str | None:
        """The event's ticket; a conversation id named with it is remembered for as long as
        any secret of the ticket (or its tombstone) can live, counted from this event."""
        if event.ticket is not None:
            if event.conversation:
                self.vault.remember_conversation(
                    event.conversation, event.ticket,
                    (self.config.max_ttl + self.config.tombstone_ttl) * 1000)
            return event.ticket
        if event.conversation:
            return self.vault.conversation_ticket(event.conversation)
        return None

    def _purge(self, ticket: str, reason: str, actor: str, news: HelpdeskNews
               ) -> dict[str, Any]:
        result = self.vault.close(ticket, reason=reason, actor=actor, news=news)
        if result.pop("stale", False):
            return self.ignored(ticket, actor, reason, STALE)
        return {"action": "purged", **result}

    def _assign(self, ticket: str, email: str, actor: str, news: HelpdeskNews
                ) -> dict[str, Any]:
        applied = self.vault.assign(ticket, email, actor=actor, news=news)
        if not applied:
            return self.ignored(ticket, actor, "assigned", STALE)
        if email and not self.accounts.agent_exists(email):
            log.warning("ticket assigned to an e-mail that is no vault agent; nobody can reveal "
                        "until that agent exists or an admin reassigns", extra={"ticket": ticket})
        return {"action": "assigned", "ticket": ticket, "assignee": email or None}

    def ignored(self, ticket: str | None, actor: str, what: str, reason: str) -> dict[str, Any]:
        """A signed delivery that is not acted on: audited, answered 200 so it is not retried."""
        self.vault.delivery_ignored(ticket, source=actor, event=what, reason=reason)
        return {"action": "ignored", "reason": reason, **({"ticket": ticket} if ticket else {})}


__all__ = ["ASSIGNED", "CLOSED", "DELETED", "IGNORED", "MERGED", "NONE", "REFUSED", "REOPENED",
           "STALE", "TEST", "Deliveries", "Delivery", "Helpdesk", "Repeat", "TicketEvent"]
