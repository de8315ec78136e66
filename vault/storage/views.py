"""What pages, the API and the helpdesk's sidebar read of tickets: a ticket with its items and
events, the agents' dashboards, Help Scout's sidebar, a secret's or request's state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from vault.ids import slot_tag
from vault.storage import keys
from vault.storage.audit import AuditEvent, event_of
from vault.storage.runner import pairs, strings, text
from vault.storage.scripts import SCRIPTS
from vault.storage.tickets import TicketOps

# (kind 'r' or 's', id, envelope present, hash) of each live item of a ticket.
Item = tuple[str, str, bool, dict[str, str]]


class SidebarRow(NamedTuple):
    """One line of Help Scout's sidebar (the SIDEBAR script): `what` is "request" or a secret's
    kind; `ms` the time shown with `state`; `created_ms` orders the lines; `who` the revealer's
    name when they revealed it and `who_email` their e-mail."""

    what: str
    state: str
    ms: int
    created_ms: int
    who: str
    who_email: str = ""


class SidebarView(NamedTuple):
    """What the SIDEBAR script and the agent lookups answered (`Store.sidebar`)."""

    record: dict[str, str]
    rows: list[SidebarRow]
    deleted: list[tuple[str, int]]  # (secret id, ms), newest first
    more_deleted: int  # deletions beyond those listed
    agent: str | None  # the e-mail mapped to the Help Scout user, if any
    limited_ms: int = 0
    # (name, disabled) of each agent the sidebar names: the assignee, the revealers, `agent`;
    # an e-mail whose agent is gone is left out.
    agents: Mapping[str, tuple[str, bool]] = MappingProxyType({})


def _reason(marker: Any) -> str:
    """The reason part of a gone-marker ("<reason>:<ticket>")."""
    return text(marker).split(":", 1)[0]


def _items(raw: Sequence[Any]) -> list[Item]:
    return [(text(kind), text(id_), bool(live), pairs(h)) for kind, id_, live, h in raw]


class ViewOps(TicketOps):
    def secret_meta(self, secret_id: str) -> tuple[dict[str, str], bool, str]:
        """(secret hash, envelope present, gone reason) in one round trip."""
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(keys.secret(secret_id))
            pipe.exists(keys.envelope(secret_id))
            pipe.get(keys.gone(secret_id))
            h, live, gone = pipe.execute()
        return strings(h), bool(live), _reason(gone)

    def request_meta(self, request_id: str) -> tuple[dict[str, str], str]:
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(keys.request(request_id))
            pipe.get(keys.gone(request_id))
            h, gone = pipe.execute()
        return strings(h), _reason(gone)

    def ticket_view(self, ticket: str, *, now_ms: int, events: int = 100
                    ) -> tuple[dict[str, str], list[Item], list[AuditEvent]]:
        raw = self._eval("TICKET_VIEW", [keys.ticket(ticket)],
                         self._argv(slot_tag(ticket), now_ms, "", (ticket, events)), write=False)
        return pairs(raw[0]), _items(raw[1]), [event_of(e) for e in raw[2]]

    def agent_ticket_names(self, email: str, limit: int) -> list[tuple[str, int]]:
        """(ticket, last activity ms) from the agent's index, most recent first."""
        self._caught_up()
        with self._guard():
            rows = self.client.zrevrange(keys.mine(email), 0, limit - 1, withscores=True)
        return [(text(name), int(score)) for name, score in rows]

    def ticket_summaries(self, tickets: Sequence[str], *, now_ms: int
                         ) -> list[tuple[dict[str, str], list[Item]]]:
        """(record, items) of each ticket, as in `ticket_view` without events: one pipeline."""
        if not tickets:
            return []
        script = SCRIPTS["TICKET_SUMMARY"]

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for ticket in tickets:
                argv = self._argv(slot_tag(ticket), now_ms, "", (ticket,))
                # Not pipe.evalsha: a Cluster pipeline refuses that method, yet it routes the
                # command itself by its key (one batch per node, tickets in many slots).
                pipe.execute_command("EVALSHA", script.sha, 1, keys.ticket(ticket), *argv)
            return list(pipe.execute())

        return [(pairs(record), _items(items)) for record, items in self._pipelined(script, run)]

    def sidebar(self, ticket: str, helpscout_user: str, *, now_ms: int,
                limits: Sequence[tuple[int, int]] = (), shown_deletions: int = 20
                ) -> SidebarView:
        """Help Scout's sidebar in two round trips. First the SIDEBAR script (the call counted
        against `limits`, each (amount, seconds) per ticket; then the ticket's record, rows and
        recent customer deletions), pipelined with the vault agent mapped to the Help Scout user
        id `helpscout_user` (None when unknown or not given); then, in one pipeline of the
        account slot, the name and disabled flag of every agent the answer names. `limited_ms`
        > 0: over a limit, for that long; nothing else was read."""
        script = SCRIPTS["SIDEBAR"]
        argv = self._argv(slot_tag(ticket), now_ms, "", (
            ticket, shown_deletions, len(limits), *(n for limit in limits for n in limit)))

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", script.sha, 1, keys.ticket(ticket), *argv)
            if helpscout_user:
                pipe.get(keys.helpscout_user(helpscout_user))
            return list(pipe.execute())

        raw = self._pipelined(script, run)
        agent = (text(raw[1]) or None) if helpscout_user else None
        if text(raw[0][0]) == "limited":
            return SidebarView({}, [], [], 0, agent, limited_ms=int(raw[0][1]))
        record, rows, deleted, more = raw[0]
        view = SidebarView(
            pairs(record),
            [SidebarRow(text(what), text(state), int(ms or 0), int(created or 0), text(who),
                        text(email))
             for what, state, ms, created, who, email in rows],
            [(text(id_), int(ms)) for id_, ms in deleted], int(more), agent)
        named = {view.record.get("assignee", ""), agent or "", *(r.who_email for r in view.rows)}
        return view._replace(agents=self.agent_names(sorted(e for e in named if e)))
