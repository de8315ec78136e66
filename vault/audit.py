"""The audit log line: one structured line per thing that happened, for the service, the
accounts and the helpdesks alike (the audit stream in Redis is the store's)."""

from __future__ import annotations

import logging
from typing import Any

from vault import logs

audit_log = logging.getLogger("vault.audit")


def emit(event: str, **fields: Any) -> None:
    """One structured audit line. Callers pass ids, names and counts, never secret material."""
    logs.line(audit_log, event, audit={"event": event, **fields})


__all__ = ["audit_log", "emit"]
