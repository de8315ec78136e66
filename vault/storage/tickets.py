"""The steps of a ticket's life: a secret shared or filled, revealed, acknowledged, deleted or
discarded; a request made; the ticket assigned, purged and reopened. Each step is one script in
the ticket's slot; a create, a fill and a reveal carry their gate too (`vault.storage.gate`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vault.ids import slot_tag, tag_of
from vault.storage import keys
from vault.storage.accounts import AccountOps
from vault.storage.gate import AGENT, AGENT_NAME, AGENT_SESSION, NO_GATE, Gate
from vault.storage.runner import ScriptResult, result_of, text
from vault.storage.scripts import BINDABLE


@dataclass(frozen=True)
class HelpdeskNews:
    """What a helpdesk's event says about itself, for the ticket scripts (purge.lua): its
    conversation id, its own "updated at" time (ms) and the digest of its signed body.
    `timed` says the helpdesk keeps such a clock, so that a body without a time cannot undo a
    later update; `ordered` makes a purge as stale-refusable as an assignment (a merge, which
    only the unsigned event name asserts)."""

    conversation: str = ""
    updated_ms: int | None = None
    body: str = ""
    timed: bool = False
    ordered: bool = False

    def args(self) -> tuple[str, str | int, str]:
        """The three script arguments of the news: conversation id, "updated at" ('' without a
        clock, '-' with one that the body did not give), body digest."""
        if self.updated_ms is not None:
            updated: str | int = self.updated_ms
        else:
            updated = "-" if self.timed else ""
        return self.conversation, updated, self.body


NO_NEWS = HelpdeskNews()


class TicketOps(AccountOps):
    def _argv(self, tag: str, now_ms: int, actor: str, args: Sequence[Any],
              gate: Gate = NO_GATE) -> list[Any]:
        """The ARGV of a ticket script, built here and only here (its layout:
        vault/storage/scripts.py): the shared head, the actor, the script's own `args`
        (ARGV[9..]), the gate's six and the agents' index's three."""
        return [keys.PREFIX, tag, now_ms, self.ticket_audit_maxlen, self.audit_maxlen,
                self.audit_ttl_ms, "" if self.cluster else keys.AUDIT, actor, *args,
                *gate.argv(), "" if self.cluster else keys.MINE, self.index_ttl_ms,
                self.index_cap]

    def _step(self, name: str, script_keys: Sequence[str], *, tag: str, now_ms: int,
              actor: str, args: Sequence[Any], gate: Gate) -> ScriptResult:
        """A writing ticket script behind its gate: one round trip on a single Redis or
        Sentinel; on a Cluster the gate first, in the account slot, then the script with the
        agent's values in place of the placeholders and no gate of its own."""
        if self.cluster and not gate.empty:
            passed = self.pass_gate(gate, now_ms)
            if passed.status != "ok":
                return passed
            if passed.who:  # ['agent', e-mail, name, role, id, session]
                bound = {AGENT: passed.who[1], AGENT_NAME: passed.who[2],
                         AGENT_SESSION: passed.who[5]}
                actor = bound.get(actor, actor)
                # Only where the script itself would put them (scripts.BINDABLE).
                args = [*(bound.get(a, a) if isinstance(a, str) else a
                          for a in args[:BINDABLE]), *args[BINDABLE:]]
            argv = self._argv(tag, now_ms, actor, args, NO_GATE)
            _, out = self._unwrap(self._eval_raw(name, script_keys, argv), defer=True)
            who = passed.who
        else:
            argv = self._argv(tag, now_ms, actor, args, gate)
            who, out = self._unwrap(self._eval_raw(name, script_keys, argv), defer=self.cluster)
        result = result_of(out)
        result.who = who
        return result

    def create_secret(self, *, ticket: str, id_: str, kind: str, envelope: bytes, now_ms: int,
                      expires_ms: int, meta_ttl_ms: int, manage_digest: str, max_waiting: int,
                      actor: str, gate: Gate = NO_GATE) -> ScriptResult:
        """A share-flow submission: 'full' when `max_waiting` of the ticket's share-flow
        secrets are waiting (its room)."""
        return self._step(
            "CREATE_SECRET", [keys.ticket(ticket)], tag=slot_tag(ticket), now_ms=now_ms,
            actor=actor, gate=gate,
            args=(ticket, id_, kind, envelope, expires_ms, expires_ms - now_ms, meta_ttl_ms,
                  manage_digest, max_waiting))

    def create_request(self, *, ticket: str, id_: str, now_ms: int, expires_ms: int,
                       meta_ttl_ms: int, note: str, agent: str, tombstone_ms: int,
                       gate: Gate = NO_GATE) -> ScriptResult:
        """`agent` may be AGENT behind a gate that authenticates."""
        return self._step(
            "CREATE_REQUEST", [keys.ticket(ticket)], tag=slot_tag(ticket), now_ms=now_ms,
            actor=agent, gate=gate,
            args=(ticket, id_, expires_ms, meta_ttl_ms, note, tombstone_ms))

    def fill_request(self, *, request_id: str, secret_id: str, kind: str, envelope: bytes,
                     now_ms: int, expires_ms: int, meta_ttl_ms: int, manage_digest: str,
                     envelope_digest: str, actor: str, gate: Gate = NO_GATE) -> ScriptResult:
        """A fill takes no place in the share flow's room (`max_waiting` of `create_secret`)."""
        return self._step(
            "FILL_REQUEST", [keys.request(request_id)], tag=tag_of(request_id), now_ms=now_ms,
            actor=actor, gate=gate,
            args=(secret_id, kind, envelope, expires_ms, expires_ms - now_ms, meta_ttl_ms,
                  manage_digest, envelope_digest))

    def reveal(self, *, secret_id: str, agent: str, agent_name: str, session: str, now_ms: int,
               grace_ms: int, policy: str, gate: Gate = NO_GATE) -> ScriptResult:
        """`agent`, `agent_name` and `session` may be the placeholders (AGENT, ...) behind a
        gate that authenticates."""
        return self._step(
            "REVEAL", [keys.secret(secret_id), keys.envelope(secret_id)], tag=tag_of(secret_id),
            now_ms=now_ms, actor=agent, gate=gate,
            args=(agent, agent_name, session, grace_ms, policy))

    def ack(self, *, secret_id: str, session: str, now_ms: int, actor: str) -> ScriptResult:
        return result_of(self._eval(
            "ACK", [keys.secret(secret_id), keys.envelope(secret_id)],
            self._argv(tag_of(secret_id), now_ms, actor, (session,))))

    def delete_secret(self, *, secret_id: str, manage_digest: str, now_ms: int,
                      gone_ms: int) -> ScriptResult:
        return result_of(self._eval(
            "DELETE_SECRET", [keys.secret(secret_id), keys.envelope(secret_id)],
            self._argv(tag_of(secret_id), now_ms, "customer", (manage_digest, gone_ms))))

    def discard_secret(self, *, secret_id: str, agent: str, admin: bool, now_ms: int,
                       gone_ms: int, ticket: str = "") -> ScriptResult:
        """The agent `agent` (the ticket's assignee, or an admin) deletes a waiting secret
        unread; with `ticket`, only a secret of that ticket (another's is `notfound`)."""
        return result_of(self._eval(
            "DISCARD_SECRET", [keys.secret(secret_id), keys.envelope(secret_id)],
            self._argv(tag_of(secret_id), now_ms, agent, ("1" if admin else "0", gone_ms, ticket))))

    def purge(self, *, ticket: str, reason: str, now_ms: int, tombstone_ms: int,
              actor: str, news: HelpdeskNews = NO_NEWS) -> int | None:
        """The number of live items purged; None when `news.ordered` and the news is stale."""
        result = result_of(self._eval("PURGE", [keys.ticket(ticket)], self._argv(
            slot_tag(ticket), now_ms, actor,
            (ticket, reason, tombstone_ms, *news.args(), "1" if news.ordered else ""))))
        if result.status == "stale":
            return None
        return int(text(result.values[0]))

    def reopen(self, *, ticket: str, now_ms: int, actor: str, tombstone_ms: int,
               news: HelpdeskNews = NO_NEWS) -> ScriptResult:
        # ARGV as ASSIGN's, its assignee left ''.
        return result_of(self._eval("REOPEN", [keys.ticket(ticket)], self._argv(
            slot_tag(ticket), now_ms, actor, (ticket, "", tombstone_ms, *news.args()))))

    def assign(self, *, ticket: str, agent: str, now_ms: int, actor: str, tombstone_ms: int,
               news: HelpdeskNews = NO_NEWS) -> ScriptResult:
        return result_of(self._eval("ASSIGN", [keys.ticket(ticket)], self._argv(
            slot_tag(ticket), now_ms, actor, (ticket, agent, tombstone_ms, *news.args()))))
