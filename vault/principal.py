"""Who is calling: the one value the HTTP layer, the accounts and the service all speak of."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """Who is calling: an agent (by session or API token) or a helpdesk key."""

    kind: str  # "agent" or "apikey"
    email: str  # the agent's e-mail, or the helpdesk key's name
    name: str
    role: str  # "agent", "admin" or "helpdesk"
    session: str  # what a reveal is bound to: one web login or one API token
    csrf: str = ""
    via_cookie: bool = False

    @property
    def is_admin(self) -> bool:
        return self.kind == "agent" and self.role == "admin"

    @property
    def is_agent(self) -> bool:
        return self.kind == "agent"

    @property
    def is_helpdesk(self) -> bool:
        return self.kind == "apikey"


__all__ = ["Principal"]
