"""The audit log: the global stream and each ticket's own, read back as `AuditEvent`s, and the
events that belong to no ticket (logins, keys, accounts). Ticket events are written by the
ticket scripts themselves (vault/storage/lua/prelude.lua, `audit`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vault.storage import keys
from vault.storage.runner import Runner, pairs, strings, text


@dataclass(frozen=True)
class AuditEvent:
    ts: int
    event: str
    ticket: str
    id: str
    actor: str
    detail: str
    stream_id: str = ""


def event_of(entry: Any) -> AuditEvent:
    """An entry of a stream, as redis-py parses it (a dict of fields) or as a script answers it
    (a flat list)."""
    stream_id, fields = entry
    f = pairs(fields) if isinstance(fields, list) else strings(fields)
    return AuditEvent(ts=int(f.get("ts") or 0), event=f.get("event", ""),
                      ticket=f.get("ticket", ""), id=f.get("id", ""),
                      actor=f.get("actor", ""), detail=f.get("detail", ""),
                      stream_id=text(stream_id))


class AuditOps(Runner):
    def audit_tail(self, count: int = 100, *, after: str | None = None,
                   block_ms: int | None = None) -> list[AuditEvent]:
        """The last `count` events, oldest first; or those after `after` (waiting `block_ms`)."""
        self._caught_up()
        return self._tail(keys.AUDIT, count, after, block_ms)

    def ticket_audit(self, ticket: str, count: int = 100, *, after: str | None = None,
                     block_ms: int | None = None) -> list[AuditEvent]:
        """Like `audit_tail`, for one ticket's own stream."""
        return self._tail(keys.ticket_log(ticket), count, after, block_ms)

    def _tail(self, key: str, count: int, after: str | None,
              block_ms: int | None) -> list[AuditEvent]:
        with self._guard():
            if after is None:
                entries = list(reversed(self.client.xrevrange(key, count=count)))
            else:
                res = self.client.xread({key: after}, count=count, block=block_ms)
                entries = res[0][1] if res else []
        return [event_of(e) for e in entries]

    def audit_before(self, before: str | None = None, count: int = 1000, *,
                     ticket: str | None = None) -> list[AuditEvent]:
        """Up to `count` events older than stream id `before` (the newest if None), newest
        first: the global stream, or `ticket`'s own. Paging backwards through the log."""
        key = keys.AUDIT if ticket is None else keys.ticket_log(ticket)
        if ticket is None:
            self._caught_up()
        with self._guard():
            entries = self.client.xrevrange(key, "+" if before is None else "(" + before, "-",
                                            count=count)
        return [event_of(e) for e in entries]

    def add_audit(self, *, now_ms: int, event: str, actor: str, detail: str = "",
                  ticket: str = "") -> None:
        """An event that belongs to no ticket (logins, keys, accounts): the global stream only."""
        self._write([keys.AUDIT], [
            "XADD", keys.AUDIT, "MAXLEN", "~", self.audit_maxlen, "*", "ts", now_ms,
            "event", event, "ticket", ticket, "id", "", "actor", actor, "detail", detail])
