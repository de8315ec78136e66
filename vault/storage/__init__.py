"""The store: every Redis key and script of vault, in rooms of one purpose each.

- `keys`: every key name, built there and nowhere else;
- `scripts` and `lua/`: the Lua scripts, read from their files, and the ARGV layout they share;
- `runner`: how scripts and commands reach Redis (the lane, a Cluster's follow-up writes,
  replicas' WAIT) and Redis faults turned into `Unavailable`;
- `gate`: the credential and rate-limit check a ticket step starts with;
- `tickets` (a ticket's steps), `views` (what is read of tickets), `accounts` (agents, tokens,
  sessions, sign-ins), `passkeys` (agents' passkeys, ceremonies in progress), `audit`,
  `webhooks` (helpdesk deliveries seen), `rotation` (what key rotation rewrites).

`Store` gathers them: callers hold one object and never see a redis-py exception.
"""

from __future__ import annotations

from vault.storage.audit import AuditEvent, AuditOps
from vault.storage.gate import AGENT, AGENT_NAME, AGENT_SESSION, NO_GATE, Gate
from vault.storage.passkeys import PasskeyOps
from vault.storage.rotation import RotationOps
from vault.storage.runner import ScriptResult
from vault.storage.tickets import NO_NEWS, HelpdeskNews
from vault.storage.views import SidebarRow, SidebarView, ViewOps
from vault.storage.webhooks import WebhookOps

__all__ = [
    "AGENT",
    "AGENT_NAME",
    "AGENT_SESSION",
    "NO_GATE",
    "NO_NEWS",
    "AuditEvent",
    "Gate",
    "HelpdeskNews",
    "ScriptResult",
    "SidebarRow",
    "SidebarView",
    "Store",
]


class Store(ViewOps, AuditOps, WebhookOps, RotationOps, PasskeyOps):
    """Every key, every script. Times are milliseconds since the epoch, from the app's clock.
    Built as `Runner` is (the client and the store's settings)."""
