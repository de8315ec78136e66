"""Structured JSON logs.

The formatter writes an allow-list of fields, never a request body, header or form: a secret can
only reach a log if code formats it into a message, and no code in vault does (tests check).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

_ALLOWED_EXTRA = ("audit", "request_id", "method", "path", "status", "bytes", "duration_ms",
                  "secret_id", "ticket", "event", "address")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _ALLOWED_EXTRA:
            if hasattr(record, name):
                out[name] = getattr(record, name)
        if record.exc_info and record.exc_info[0] is not None:
            # The type and where it happened; exception messages may quote input, so not those.
            out["exception"] = record.exc_info[0].__name__
            out["traceback"] = self.formatStack(
                "".join(_frames(record.exc_info[2])))
        return json.dumps(out, default=str, sort_keys=True)


def _frames(tb: Any) -> list[str]:
    import traceback
    return traceback.format_list(traceback.extract_tb(tb))


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever sys.stderr is at the time (pytest swaps it; gunicorn may too)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


def setup(level: str) -> None:
    """Route the `vault` loggers to stderr as JSON lines (idempotent)."""
    root = logging.getLogger("vault")
    root.setLevel(level)
    if not any(getattr(h, "_vault", False) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(JsonFormatter())
        handler._vault = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
