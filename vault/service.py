"""Business rules of secrets, requests and tickets. No HTTP here: views and the CLI call this.

Who may reveal, what a purge removes, when a ticket refuses submissions: all decided here and in
the store's atomic scripts, so tests can drive the rules without a web server.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from vault import ids
from vault.audit import emit
from vault.config import Config
from vault.crypto.envelope import KINDS, EnvelopeTooLarge, InvalidEnvelope, check_shape
from vault.crypto.keyring import InvalidWrap, KeyRing
from vault.crypto.tokens import MANAGE_TOKEN, is_token, new_token, token_digest
from vault.errors import (
    LOG_IN,
    TOKEN_INVALID,
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    NotFound,
    RateLimited,
    TooLarge,
    Unauthenticated,
    Unavailable,
    ValidationFailed,
    VaultError,
)
from vault.names import display_name
from vault.principal import Principal
from vault.storage import (
    AGENT,
    AGENT_NAME,
    AGENT_SESSION,
    NO_GATE,
    NO_NEWS,
    AuditEvent,
    Gate,
    HelpdeskNews,
    ScriptResult,
    Store,
)

log = logging.getLogger("vault")
MAX_NOTE = 500


def iso(ms: int | str | None) -> str | None:
    """RFC 3339 UTC with second precision, or None."""
    if ms in (None, ""):
        return None
    t = time.gmtime(int(ms) // 1000)  # not datetime: a sidebar of 100 secrets formats 300
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}Z")


def envelope_context(secret_id: str) -> bytes:
    """What a stored envelope's at-rest wrap is bound to: it cannot be moved to another id."""
    return b"vault-envelope:" + secret_id.encode()


def shown_name(stored: Any) -> str:
    """An agent's name as recorded at a reveal, shown within the name rule: a name stored
    before the rule held (raw control characters, say) is cleaned on the way out."""
    return display_name(stored, clean=True)


def check_ticket(ticket: Any) -> str:
    if not ids.is_ticket(ticket):
        raise ValidationFailed([{"name": "ticket",
                                 "reason": "Use 1 to 64 letters, digits, '-' or '_'."}])
    return str(ticket)


class Vault:
    """Secrets, requests and tickets."""

    def __init__(self, store: Store, keyring: KeyRing, config: Config,
                 clock: Callable[[], float] | None = None,
                 on_submitted: Callable[..., Any] | None = None, *,
                 on_event: Callable[[str, int], None] | None = None) -> None:
        self.store = store
        # Called after a secret is stored (ticket, secret_id, kind, at): the optional notifier.
        self.on_submitted = on_submitted
        # Called with (event, count) when a secret is created, revealed, refused, deleted or
        # purged, once per thing that happened (not for a retry answered from the first try):
        # the app's metrics.
        self.on_event = on_event
        self.keyring = keyring
        self.config = config
        self.clock = clock or time.time

    # -- helpers ------------------------------------------------------------------------------

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def _happened(self, event: str, count: int = 1) -> None:
        if self.on_event is not None:
            self.on_event(event, count)

    def _link(self, kind: str, id_: str) -> str:
        return f"{self.config.base_url}/{kind}/{id_}"

    def _check_submission(self, kind: Any, envelope: Any) -> tuple[str, str]:
        problems = []
        if kind not in KINDS:
            problems.append({"name": "kind", "reason": "Choose wordpress, sftp or other."})
        if not isinstance(envelope, str):
            problems.append({"name": "envelope", "reason": "Send the encrypted envelope text."})
        else:
            try:
                check_shape(envelope)
            except EnvelopeTooLarge:
                raise TooLarge("The encrypted envelope is larger than 64 KiB.") from None
            except InvalidEnvelope:
                problems.append({"name": "envelope",
                                 "reason": "Not a v1 envelope (v1. followed by base64url)."})
        if problems:
            raise ValidationFailed(problems)
        return str(kind), str(envelope)

    def _ttl(self, ttl: Any) -> int:
        if ttl is None:
            return self.config.default_ttl
        if isinstance(ttl, float) and ttl.is_integer():
            ttl = int(ttl)  # JSON has one number type: 600.0 is the integer 600
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= self.config.max_ttl:
            raise ValidationFailed([{"name": "ttl", "reason":
                                     f"Seconds between 1 and {self.config.max_ttl}."}])
        return ttl

    def _refused(self, result: ScriptResult, gate: Gate = NO_GATE) -> None:
        """Turn a script's refusal into the error the API contract names."""
        status, values = result.status, result.values
        if status == "unauthenticated":
            raise Unauthenticated(TOKEN_INVALID if gate.auth == "token" else LOG_IN)
        if status == "notagent":
            raise Forbidden("This needs an agent account.")
        if status == "limited":
            raise RateLimited(int(_text(values[0])))
        if status == "closed":
            raise Conflict("This ticket is closed: it accepts no new secrets until it is reopened.",
                           reason="ticket-closed")
        if status == "full":
            raise Conflict("This ticket already holds the most secrets waiting to be read.",
                           reason="ticket-full")
        if status == "conflict":
            raise Conflict("This request has already been filled.", reason="already-filled")
        if status == "gone":
            self._gone(values)
        if status == "forbidden":
            raise Forbidden("Only the agent assigned to this ticket can do this.")
        if status == "notfound":
            raise NotFound("No such secret or request.")
        raise Unavailable()  # an answer the scripts never give: fail closed

    def check_gate(self, gate: Gate) -> None:
        """Pass `gate` on its own: for a request refused before its step (a bad id, ticket or
        envelope), so that it meets its credential and rate limit first, as it would have in the
        step: 401 before 429 before 400, and a flood of bad submissions is limited like good
        ones. Costs a round trip, on that refusal path only."""
        if not gate.empty:
            result = self.store.pass_gate(gate, self.now_ms())
            if result.status != "ok":
                self._refused(result, gate)

    @contextlib.contextmanager
    def gate_first(self, gate: Gate) -> Iterator[None]:
        """Errors raised inside come after the gate's own (see `check_gate`)."""
        try:
            yield
        except VaultError:
            self.check_gate(gate)
            raise

    def _submitted(self, ticket: str, secret_id: str, kind: str, now: int,
                   request_id: str | None = None) -> None:
        """Tell the notifier, once the submission is stored; its fault is never the
        customer's."""
        if self.on_submitted is not None:
            try:
                self.on_submitted(ticket=ticket, secret_id=secret_id, kind=kind, at=iso(now),
                                  request_id=request_id)
            except Exception:  # a pool shut down at exit, say: the submission stands
                log.warning("notification not queued", exc_info=False)

    def _gone(self, values: list[Any]) -> None:
        reason = _text(values[0])
        extra: dict[str, Any] = {"reason": reason}
        if reason == "revealed":
            extra["revealed_by"] = shown_name(_text(values[1])) if len(values) > 1 else ""
            extra["revealed_at"] = iso(_text(values[2])) if len(values) > 2 else None
        raise Gone(_GONE_DETAIL.get(reason, "This is gone."), **extra)

    # -- requests -----------------------------------------------------------------------------

    def create_request(self, who: Principal | Gate, ticket: Any, note: Any = None
                       ) -> dict[str, Any]:
        """A request for `ticket` by the agent `who`, or by whoever the gate `who` authenticates
        (in the same round trip)."""
        gate = who if isinstance(who, Gate) else NO_GATE
        with self.gate_first(gate):
            if isinstance(who, Principal) and not who.is_agent:
                raise Forbidden("Only agents create requests.")
            ticket = check_ticket(ticket)
            if note is not None and (not isinstance(note, str) or len(note) > MAX_NOTE):
                raise ValidationFailed([{"name": "note",
                                         "reason": f"Text of at most {MAX_NOTE} characters."}])
        now = self.now_ms()
        id_ = ids.new_id(ticket)
        expires = now + self.config.default_ttl * 1000
        result = self.store.create_request(
            ticket=ticket, id_=id_, now_ms=now, expires_ms=expires,
            meta_ttl_ms=(self.config.default_ttl + self.config.tombstone_ttl) * 1000,
            note=note or "", agent=who.email if isinstance(who, Principal) else AGENT,
            tombstone_ms=self.config.tombstone_ttl * 1000, gate=gate)
        if result.status != "ok":
            self._refused(result, gate)
        emit("request.created", ticket=ticket, id=id_, actor=_actor(who, result))
        return {"id": id_, "url": self._link("r", id_), "ticket": ticket, "expires_at": iso(expires)}

    def request_state(self, request_id: str) -> dict[str, Any]:
        if not ids.is_id(request_id):
            raise NotFound("No such request.")
        h, gone = self.store.request_meta(request_id)
        if not h:
            if gone:
                raise Gone(_GONE_DETAIL.get(gone, "This is gone."), reason=gone)
            raise NotFound("No such request.")
        if self.now_ms() >= int(h["expires_at"]) and h.get("state") == "open":
            raise Gone(_GONE_DETAIL["expired"], reason="expired")
        body: dict[str, Any] = {"ticket": h["ticket"], "state": h.get("state", "open"),
                                "expires_at": iso(h["expires_at"]),
                                "created_at": iso(h.get("created_at"))}
        if h.get("secret_id"):
            body["secret_id"] = h["secret_id"]
        if h.get("note"):
            body["note"] = h["note"]
        return body

    def fill_request(self, request_id: str, kind: Any, envelope: Any,
                     address: str = "", gate: Gate = NO_GATE) -> dict[str, Any]:
        """The customer's submission for a request; `gate` (its rate limit) is passed in the
        same round trip. A fill never finds the ticket full: what an agent asked for takes no
        place in the share flow's room, so anonymous senders cannot lock it out."""
        with self.gate_first(gate):
            if not ids.is_id(request_id):
                raise NotFound("No such request.")
            kind, text = self._check_submission(kind, envelope)
        now = self.now_ms()
        secret_id = ids.new_id_in(ids.tag_of(request_id))
        expires = now + self.config.default_ttl * 1000
        wrapped = self.keyring.wrap(text.encode(), context=envelope_context(secret_id))
        manage = new_token(MANAGE_TOKEN)
        result = self.store.fill_request(
            request_id=request_id, secret_id=secret_id, kind=kind, envelope=wrapped, now_ms=now,
            expires_ms=expires,
            meta_ttl_ms=(self.config.default_ttl + self.config.tombstone_ttl) * 1000,
            manage_digest=token_digest(manage),
            envelope_digest=hashlib.sha256(text.encode()).hexdigest(), actor="customer",
            gate=gate)
        if result.status not in {"ok", "again"}:
            self._refused(result, gate)
        if result.status == "again":
            secret_id = _text(result.values[0])
            expires = int(_text(result.values[1]) or expires)
        ticket = _text(result.values[2])
        emit("secret.submitted", ticket=ticket, id=secret_id, request=request_id, kind=kind,
             actor="customer", address=address)
        if result.status == "ok":
            self._happened("created")
            self._submitted(ticket, secret_id, kind, now, request_id)
        return {"secret_id": secret_id, "expires_at": iso(expires), "manage_token": manage}

    # -- secrets ------------------------------------------------------------------------------

    def create_secret(self, ticket: Any, kind: Any, envelope: Any, ttl: Any = None,
                      address: str = "", gate: Gate = NO_GATE) -> dict[str, Any]:
        """The share flow's submission; `gate` (its rate limit) is passed in the same round
        trip. Conflict `ticket-full` when the ticket's room (`max_waiting_per_ticket` share-flow
        secrets waiting) is taken."""
        with self.gate_first(gate):
            problems = []
            if not ids.is_ticket(ticket):
                problems.append({"name": "ticket",
                                 "reason": "Use 1 to 64 letters, digits, '-' or '_'."})
            try:
                kind, text = self._check_submission(kind, envelope)
            except ValidationFailed as exc:
                problems.extend(exc.extra["invalid_params"])
            if problems:
                raise ValidationFailed(problems)
            ttl = self._ttl(ttl)
        now = self.now_ms()
        id_ = ids.new_id(ticket)
        expires = now + ttl * 1000
        wrapped = self.keyring.wrap(text.encode(), context=envelope_context(id_))
        manage = new_token(MANAGE_TOKEN)
        result = self.store.create_secret(
            ticket=ticket, id_=id_, kind=kind, envelope=wrapped, now_ms=now, expires_ms=expires,
            meta_ttl_ms=(ttl + self.config.tombstone_ttl) * 1000,
            manage_digest=token_digest(manage),
            max_waiting=self.config.max_waiting_per_ticket, actor="customer", gate=gate)
        if result.status != "ok":
            self._refused(result, gate)
        emit("secret.submitted", ticket=ticket, id=id_, kind=kind, actor="customer",
             address=address)
        self._happened("created")
        self._submitted(ticket, id_, kind, now)
        return {"id": id_, "url": self._link("s", id_), "expires_at": iso(expires),
                "manage_token": manage}

    def secret_meta(self, secret_id: str) -> dict[str, Any]:
        if not ids.is_id(secret_id):
            raise NotFound("No such secret.")
        h, live, gone = self.store.secret_meta(secret_id)
        if not h:
            if gone:
                raise Gone(_GONE_DETAIL.get(gone, "This is gone."), reason=gone)
            raise NotFound("No such secret.")
        state = h.get("state", "waiting")
        # Past its expiry a secret is expired whatever it was; a waiting one also when Redis
        # has already dropped its envelope.
        if self.now_ms() >= int(h["expires_at"]) or (state == "waiting" and not live):
            raise Gone(_GONE_DETAIL["expired"], reason="expired")
        body: dict[str, Any] = {"id": secret_id, "ticket": h["ticket"], "kind": h["kind"],
                                "state": state, "created_at": iso(h["created_at"]),
                                "expires_at": iso(h["expires_at"])}
        if state == "revealed":
            body["revealed_at"] = iso(h.get("revealed_at"))
            body["revealed_by"] = shown_name(h.get("revealed_by", ""))
        if h.get("request"):
            body["request_id"] = h["request"]
        return body

    def delete_secret(self, secret_id: str, manage_token: str | None) -> None:
        if not ids.is_id(secret_id):
            raise NotFound("No such secret.")
        if not manage_token or not is_token(manage_token, MANAGE_TOKEN):
            raise Forbidden("This link's manage token is missing or not valid.")
        result = self.store.delete_secret(
            secret_id=secret_id, manage_digest=token_digest(manage_token), now_ms=self.now_ms(),
            gone_ms=self.config.tombstone_ttl * 1000)
        if result.status != "ok":
            if result.status == "forbidden":
                raise Forbidden("This link's manage token is not valid for this secret.")
            self._refused(result)
        emit("secret.deleted", id=secret_id, actor="customer")
        self._happened("deleted")

    def discard(self, who: Principal, secret_id: str, *, ticket: str = "") -> str:
        """The ticket's assignee, or an admin, deletes a waiting secret unread, without the
        customer's manage token: junk in the share flow's room goes and the ticket stays. A
        discarded fill opens its request again. Returns the secret's ticket. Forbidden for
        anyone else (checked before Gone, nothing changes, the refusal is audited), Gone once
        revealed, deleted, discarded, purged or expired, NotFound for an unknown id (or, with
        `ticket`, a secret of another ticket)."""
        if not ids.is_id(secret_id):
            raise NotFound("No such secret.")
        if not who.is_agent:
            raise Forbidden(_DISCARD_FORBIDDEN)
        result = self.store.discard_secret(
            secret_id=secret_id, agent=who.email, admin=who.is_admin, now_ms=self.now_ms(),
            gone_ms=self.config.tombstone_ttl * 1000, ticket=ticket)
        if result.status == "forbidden":
            emit("discard.refused", id=secret_id, actor=who.email, reason="not-assignee")
            raise Forbidden(_DISCARD_FORBIDDEN)
        if result.status != "ok":
            self._refused(result)
        owner = _text(result.values[0])
        emit("secret.discarded", ticket=owner, id=secret_id, actor=who.email,
             role="admin" if who.is_admin else "agent")
        self._happened("deleted")
        return owner

    def reveal(self, who: Principal | Gate, secret_id: str) -> dict[str, Any]:
        """Hand the envelope to the assignee's session: the agent `who`, or whoever the gate
        `who` authenticates (in the same round trip, with its rate limit)."""
        gate = who if isinstance(who, Gate) else NO_GATE
        with self.gate_first(gate):
            if not ids.is_id(secret_id):
                raise NotFound("No such secret.")
            if isinstance(who, Principal) and not who.is_agent:
                raise Forbidden("Only the agent assigned to this ticket can reveal its secrets.")
        if isinstance(who, Principal):
            agent, name, session = who.email, who.name or who.email, who.session
        else:
            agent, name, session = AGENT, AGENT_NAME, AGENT_SESSION
        result = self.store.reveal(
            secret_id=secret_id, agent=agent, agent_name=name, session=session,
            now_ms=self.now_ms(), grace_ms=self.config.grace_seconds * 1000,
            policy=self.config.unassigned, gate=gate)
        actor = _actor(who, result)
        if result.status != "ok":
            if result.status == "forbidden":
                emit("reveal.refused", id=secret_id, actor=actor, reason=_text(result.values[0]))
                self._happened("refused")
                raise Forbidden("Only the agent assigned to this ticket can reveal its secrets.")
            self._refused(result, gate)
        blob, kind, ticket = result.values[0], _text(result.values[1]), _text(result.values[2])
        try:
            text = self.keyring.unwrap(_bytes(blob), context=envelope_context(secret_id)).decode()
        except InvalidWrap:
            # A key was removed from the ring too early; never hand out garbage.
            logging.getLogger("vault").error("stored envelope could not be unwrapped",
                                             extra={"secret_id": secret_id})
            raise Unavailable("This secret cannot be opened with the server's current keys.",
                              retry_after=60, store_fault=False) from None
        if len(result.values) > 3 and _text(result.values[3]) == "again":
            # The winning session again, inside its grace window: not a second reveal.
            emit("secret.refetched", ticket=ticket, id=secret_id, actor=actor)
        else:
            emit("secret.revealed", ticket=ticket, id=secret_id, actor=actor)
            self._happened("revealed")
        return {"envelope": text, "kind": kind, "ticket": ticket}

    def ack(self, who: Principal, secret_id: str) -> None:
        if not ids.is_id(secret_id):
            raise NotFound("No such secret.")
        if not who.is_agent:
            raise Forbidden("Only the session that revealed this secret can acknowledge it.")
        result = self.store.ack(secret_id=secret_id, session=who.session, now_ms=self.now_ms(),
                                actor=who.email)
        if result.status == "forbidden":
            raise Forbidden("Only the session that revealed this secret can acknowledge it.")
        if result.status != "ok":
            self._refused(result)

    # -- tickets ------------------------------------------------------------------------------

    @staticmethod
    def _items(items: list[tuple[str, str, bool, dict[str, str]]], now: int
               ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(requests, secrets) of a ticket, metadata only, each in creation order."""
        requests, secrets = [], []
        for kind, id_, live, h in items:
            if kind == "r":
                state = h.get("state", "open")
                if state == "open" and now >= int(h.get("expires_at") or 0):
                    state = "expired"
                requests.append({"id": id_, "state": state, "created_at": iso(h.get("created_at")),
                                 "expires_at": iso(h.get("expires_at")),
                                 "created_by": h.get("created_by", ""),
                                 "secret_id": h.get("secret_id") or None,
                                 "note": h.get("note") or None})
            else:
                state = h.get("state", "waiting")
                if state == "waiting" and (not live or now >= int(h.get("expires_at") or 0)):
                    state = "expired"
                secrets.append({"id": id_, "kind": h.get("kind"), "state": state,
                                "created_at": iso(h.get("created_at")),
                                "expires_at": iso(h.get("expires_at")),
                                "revealed_at": iso(h.get("revealed_at")),
                                "revealed_by": shown_name(h.get("revealed_by")) or None,
                                "request_id": h.get("request") or None})
        return (sorted(requests, key=lambda r: r["created_at"] or ""),
                sorted(secrets, key=lambda s: s["created_at"] or ""))

    def ticket_view(self, ticket: Any) -> dict[str, Any]:
        ticket = check_ticket(ticket)
        now = self.now_ms()
        record, items, events = self.store.ticket_view(ticket, now_ms=now)
        requests, secrets = self._items(items, now)
        return {
            "ticket": ticket,
            "state": "closed" if record.get("closed") == "1" else "open",
            "assignee": record.get("assignee") or None,
            "closed_at": iso(record.get("closed_at")),
            "purged": int(record.get("purged") or 0),
            "requests": requests,
            "secrets": secrets,
            "events": [event_dict(e) for e in reversed(events)],
        }

    def sidebar_view(self, ticket: Any, helpscout_user: str = "", *,
                     limits: Sequence[tuple[int, int]] = ()) -> dict[str, Any]:
        """What Help Scout's sidebar shows of `ticket`, from two round trips: `ticket`,
        `state`, `assignee`, `closed_at`, `purged` (as `ticket_view`), `assignee_name` (vault's
        display name, else the e-mail), `rows` (`{what, state, at, by}`, oldest first: open or
        expired requests, then secrets waiting, revealed or expired; `by` names the revealer by
        today's display name, else the name they had, else the e-mail), `deleted` (the
        customer's deletions since the last purge, `{id, deleted_at}`, oldest first, the newest
        20), `more_deleted` (how many more), `agent`, the enabled vault agent of the Help Scout
        user id `helpscout_user` (None when unknown or disabled), and `agent_disabled`. The
        call counts against `limits` ((amount, seconds) per ticket): RateLimited when over."""
        ticket = check_ticket(ticket)
        view = self.store.sidebar(ticket, helpscout_user, now_ms=self.now_ms(), limits=limits)
        if view.limited_ms:
            raise RateLimited(-(-view.limited_ms // 1000))
        rows = sorted(view.rows, key=lambda r: (r.what != "request", r.created_ms))
        record, names = view.record, view.agents
        assignee = record.get("assignee") or None
        mapped = names.get(view.agent or "")
        return {
            "ticket": ticket,
            "state": "closed" if record.get("closed") == "1" else "open",
            "assignee": assignee,
            "assignee_name": names[assignee][0] if assignee and assignee in names else assignee,
            "closed_at": iso(record.get("closed_at")),
            "purged": int(record.get("purged") or 0),
            "rows": [{"what": r.what, "state": r.state, "at": iso(r.ms),
                      "by": (names[r.who_email][0] if r.who_email in names else None)
                      or r.who or r.who_email or None}
                     for r in rows],
            "deleted": [{"id": id_, "deleted_at": iso(ms)} for id_, ms in reversed(view.deleted)],
            "more_deleted": view.more_deleted,
            "agent": view.agent if mapped is not None and not mapped[1] else None,
            "agent_disabled": mapped is not None and mapped[1],
        }

    def agent_tickets(self, email: str, limit: int = 50) -> list[dict[str, Any]]:
        """The tickets assigned to `email`, most recently active first ("my tickets").

        From the agent's index (kept by the store's scripts), then one pipelined read of every
        listed ticket. A ticket reassigned to someone else since, or whose record has expired,
        is left out. Each summary: `ticket`, `state` (open or closed), `assignee`,
        `last_activity`, `closed_at`, `purged`, counts `open_requests`, `waiting`, `revealed`,
        and the metadata of its `requests` and `secrets` (as in `ticket_view`).
        """
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 500:
            raise ValidationFailed([{"name": "limit", "reason": "A number from 1 to 500."}])
        now = self.now_ms()
        names = self.store.agent_ticket_names(email, limit)
        out = []
        summaries = self.store.ticket_summaries([t for t, _ in names], now_ms=now)
        for (ticket, active_ms), (record, items) in zip(names, summaries, strict=True):
            if not record or record.get("assignee") != email:
                continue
            requests, secrets = self._items(items, now)
            out.append({
                "ticket": ticket,
                "state": "closed" if record.get("closed") == "1" else "open",
                "assignee": email,
                "last_activity": iso(active_ms),
                "closed_at": iso(record.get("closed_at")),
                "purged": int(record.get("purged") or 0),
                "open_requests": sum(r["state"] == "open" for r in requests),
                "waiting": sum(s["state"] == "waiting" for s in secrets),
                "revealed": sum(s["state"] == "revealed" for s in secrets),
                "requests": requests,
                "secrets": secrets,
            })
        return out

    def audit_log(self, *, ticket: str | None = None, agent: str | None = None,
                  limit: int = 200, window: int = 10_000) -> dict[str, Any]:
        """The audit log, newest first: the global stream, or one ticket's own stream.

        With `agent`, only events that agent did (`actor`) or that were about them (their
        e-mail in `detail`: accounts, tokens, assignments). Filtering reads back through at most
        `window` events of the stream; `complete` says whether the whole stream (or `limit`
        matches) was reached within it. Returns `events` (dicts as in `ticket_view`),
        `complete`, `scanned`.
        """
        if ticket is not None:
            ticket = check_ticket(ticket)

        def matches(e: AuditEvent) -> bool:
            return agent is None or e.actor == agent or agent in e.detail.split()

        found: list[AuditEvent] = []
        before: str | None = None
        scanned, complete = 0, False
        while (want := min(1000, window - scanned)) > 0:
            batch = self.store.audit_before(before, want, ticket=ticket)
            scanned += len(batch)
            found.extend(e for e in batch if matches(e))
            if len(found) >= limit or len(batch) < want:  # enough, or the start of the stream
                complete = True
                break
            before = batch[-1].stream_id
        return {"events": [event_dict(e) for e in found[:limit]], "complete": complete,
                "scanned": scanned}

    def assign(self, ticket: Any, agent: str, *, actor: str, news: HelpdeskNews = NO_NEWS
               ) -> bool:
        """Set the assignee. False when the helpdesk's news is older than what was applied."""
        ticket = check_ticket(ticket)
        result = self.store.assign(ticket=ticket, agent=agent, now_ms=self.now_ms(), actor=actor,
                                   tombstone_ms=self.config.tombstone_ttl * 1000, news=news)
        if result.status == "stale":
            return False
        emit("ticket.assigned", ticket=ticket, agent=agent, actor=actor)
        return True

    def close(self, ticket: Any, *, reason: str, actor: str, news: HelpdeskNews = NO_NEWS
              ) -> dict[str, Any]:
        """Purge the ticket. Always applied, unless `news.ordered` and the news is stale (then
        `stale` is true and nothing changed); the helpdesk's clock in `news` makes any older
        reopening or assignment of the same conversation a no-op afterwards."""
        ticket = check_ticket(ticket)
        count = self.store.purge(ticket=ticket, reason=reason, now_ms=self.now_ms(),
                                 tombstone_ms=self.config.tombstone_ttl * 1000, actor=actor,
                                 news=news)
        if count is None:
            return {"ticket": ticket, "purged": 0, "stale": True}
        emit("ticket.purged", ticket=ticket, purged=count, reason=reason, actor=actor)
        self._happened("purged", count)
        return {"ticket": ticket, "purged": count}

    def reopen(self, ticket: Any, *, actor: str, news: HelpdeskNews = NO_NEWS
               ) -> dict[str, Any]:
        ticket = check_ticket(ticket)
        result = self.store.reopen(ticket=ticket, now_ms=self.now_ms(), actor=actor,
                                   tombstone_ms=self.config.tombstone_ttl * 1000, news=news)
        if result.status == "stale":
            return {"ticket": ticket, "reopened": False, "stale": True}
        reopened = _text(result.values[0]) == "1"
        if reopened:
            emit("ticket.reopened", ticket=ticket, actor=actor)
        return {"ticket": ticket, "reopened": reopened}

    # -- helpdesk deliveries (vault.helpdesks applies them) -----------------------------------------

    def claim_delivery(self, source: str, digest: str, ttl_ms: int) -> str | None:
        """Mark a delivery as seen: None if it is new, else the first one's stored answer
        ("" while that one is still being handled)."""
        return self.store.webhook_claim(source, digest, ttl_ms)

    def delivery_done(self, source: str, digest: str, answer: dict[str, Any], ttl_ms: int
                      ) -> None:
        self.store.webhook_done(source, digest, answer, ttl_ms)

    def forget_delivery(self, source: str, digest: str) -> None:
        """A delivery whose handling failed is forgotten, so the helpdesk's retry is acted on."""
        self.store.webhook_forget(source, digest)

    def remember_conversation(self, conversation: str, ticket: str, ttl_ms: int) -> None:
        """Which ticket a helpdesk conversation id stands for (its sidebar may give the id only)."""
        self.store.remember_conversation(conversation, ticket, ttl_ms)

    def conversation_ticket(self, conversation: str) -> str | None:
        return self.store.conversation_ticket(conversation)

    def ping(self) -> None:
        """Raise unless the store answers."""
        self.store.ping()

    def delivery_ignored(self, ticket: str | None, *, source: str, event: str,
                         reason: str) -> None:
        """A helpdesk delivery, signed but not acted on (stale, or a body that is not the event
        it is named as), goes to the audit log: never its body."""
        emit("webhook.ignored", ticket=ticket, source=source, delivery=event, reason=reason)
        self.store.add_audit(now_ms=self.now_ms(), event="webhook.ignored", actor=source,
                             detail=f"{event}: {reason}"[:200], ticket=ticket or "")


def event_dict(e: AuditEvent) -> dict[str, Any]:
    return {"at": iso(e.ts), "event": e.event, "ticket": e.ticket or None, "id": e.id or None,
            "actor": e.actor or None, "detail": e.detail or None}


def event_json(e: AuditEvent) -> str:
    return json.dumps(event_dict(e), sort_keys=True)


def _actor(who: Principal | Gate, result: ScriptResult) -> str:
    """The e-mail of the agent behind a step: given, or authenticated by its gate."""
    if isinstance(who, Principal):
        return who.email
    return result.who[1] if result.who else ""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


_DISCARD_FORBIDDEN = "Only the agent assigned to this ticket, or an admin, can discard its secrets."
_GONE_DETAIL = {
    "revealed": "This secret has already been revealed.",
    "deleted": "This secret was deleted by the person who sent it.",
    "discarded": "This secret was discarded unread by the support team.",
    "purged": "The ticket was closed and its credentials were deleted. "
              "Remember to delete the temporary accounts you created for it.",
    "expired": "This has expired.",
}

__all__ = ["BadRequest", "Principal", "Vault", "check_ticket", "emit", "event_dict", "iso"]
