"""What the store keeps of helpdesk deliveries: each delivery seen (so a retried or replayed
one is answered as the first was) and the ticket a conversation was last seen as."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from vault.errors import Unavailable
from vault.storage import keys
from vault.storage.runner import Runner, text


class WebhookOps(Runner):
    def webhook_claim(self, source: str, digest: str, ttl_ms: int) -> str | None:
        """Mark a delivery as seen. None if it is new; else the stored result of the first one."""
        key = keys.webhook(source, digest)
        claimed, first = self._write([key], ["SET", key, "", "NX", "PX", ttl_ms], ["GET", key])
        return None if claimed else text(first)

    def webhook_done(self, source: str, digest: str, result: dict[str, Any], ttl_ms: int) -> None:
        key = keys.webhook(source, digest)
        self._write([key], ["SET", key, json.dumps(result), "PX", ttl_ms])

    def webhook_forget(self, source: str, digest: str) -> None:
        """A delivery whose handling failed is forgotten, so the helpdesk's retry is acted on."""
        key = keys.webhook(source, digest)
        with contextlib.suppress(Unavailable):
            self._write([key], ["DEL", key])

    def remember_conversation(self, conversation: str, ticket: str, ttl_ms: int) -> None:
        key = keys.conversation(conversation)
        self._write([key], ["SET", key, ticket, "PX", ttl_ms])

    def conversation_ticket(self, conversation: str) -> str | None:
        with self._guard():
            value = self.client.get(keys.conversation(conversation))
        return text(value) or None
