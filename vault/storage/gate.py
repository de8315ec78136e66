"""What a ticket step checks before anything else, in the same round trip (the scripts' gate,
vault/storage/lua/access.lua): the caller's credential and rate limits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vault.storage import keys

# Placeholders for the agent a gated script authenticates: a caller that does not know yet who
# is calling passes these, and the script (or, on a Cluster, `TicketOps._step`) puts the
# agent's values in.
AGENT = "\x00@agent"
AGENT_NAME = "\x00@name"
AGENT_SESSION = "\x00@session"


@dataclass(frozen=True)
class Gate:
    """What a ticket step checks before anything else, in the same round trip: the caller's
    credential, by the digest of an agent token or a web session, and rate limits (a
    `vault.ratelimit` spec) counted for `identity` ("" for the authenticated agent's e-mail).
    Refusals come back as the statuses `unauthenticated`, `notagent` and `limited` (with the
    seconds to wait)."""

    auth: str = ""  # "token", "session" or "" (nobody to authenticate)
    digest: str = ""
    idle_ms: int = 0
    max_ms: int = 0
    limits: str = ""
    identity: str = ""

    @property
    def empty(self) -> bool:
        return not self.auth and not self.limits

    def argv(self) -> list[Any]:
        """The gate's six ARGV, as access.lua's `pass_gate` reads them: credential key ('' for
        none), its kind, idle and absolute lifetimes, identity, limits."""
        key = keys.credential(self.auth, self.digest) if self.auth else ""
        return [key, self.auth, self.idle_ms, self.max_ms, self.identity, self.limits]


NO_GATE = Gate()
