"""Structured JSON logs.

The formatter writes an allow-list of fields, never a request body, header or form: a secret can
only reach a log if code formats it into a message, and no code in vault does (tests check).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

_ALLOWED_EXTRA = ("audit", "request_id", "method", "path", "status", "bytes", "duration_ms",
                  "secret_id", "ticket", "event", "address")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _timestamp(record.created),
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
        return _encode(out)


# One encoder for every line (json.dumps with options builds a new one per call).
_encode = json.JSONEncoder(default=str, sort_keys=True).encode
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    """RFC 3339 UTC with milliseconds, as datetime.isoformat(timespec="milliseconds") writes
    it; the part up to the second is formatted once per second."""
    global _second
    whole = int(created)
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)))
    return f"{cached[1]}.{int((created - whole) * 1000):03d}+00:00"


def line(logger: logging.Logger, message: str, **extra: Any) -> None:
    """`logger.info(message, extra=extra)`, written straight to the stream when every handler
    that would write it is a plain stream handler of JsonFormatter and nothing filters it: the
    same bytes, without a LogRecord and the logging module's dispatch (two lines a request, the
    access log and the audit, made that a measurable share of a request's CPU). Any other set-up
    (a file or syslog handler, a filter, a test's recorder) takes the logging module's path."""
    if not logger.isEnabledFor(logging.INFO):
        return
    handlers = _direct_handlers(logger)
    if handlers is None:
        logger.info(message, extra=extra)
        return
    out: dict[str, Any] = {"ts": _timestamp(time.time()), "level": "INFO", "logger": logger.name,
                           "message": message}
    for name in _ALLOWED_EXTRA:
        if name in extra:
            out[name] = extra[name]
    text = _encode(out)
    for handler in handlers:
        handler.acquire()
        try:
            stream = handler.stream
            stream.write(text + handler.terminator)
            stream.flush()
        finally:
            handler.release()


def _direct_handlers(logger: logging.Logger) -> list[logging.StreamHandler] | None:  # type: ignore[type-arg]
    found: list[logging.StreamHandler] = []  # type: ignore[type-arg]
    current: logging.Logger | None = logger
    while current is not None:
        if current.filters:
            return None
        for handler in current.handlers:
            if type(handler) not in _PLAIN_STREAMS or type(handler.formatter) is not JsonFormatter \
                    or handler.filters or handler.level > logging.INFO:
                return None
            found.append(handler)  # type: ignore[arg-type]
        current = current.parent if current.propagate else None
    return found or None


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


# Handlers `line` may write to directly: vault's own and gunicorn's (a plain StreamHandler).
_PLAIN_STREAMS = {_Stderr, logging.StreamHandler}


def setup(level: str) -> None:
    """Route the `vault` loggers to stderr as JSON lines (idempotent)."""
    # No record asks where it was logged from or by which thread (the JSON lines name neither):
    # the logging module's own speed-ups, documented in its HOWTO ("Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    root = logging.getLogger("vault")
    root.setLevel(level)
    if not any(getattr(h, "_vault", False) for h in root.handlers):
        handler = _Stderr()
        handler.setFormatter(JsonFormatter())
        handler._vault = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.propagate = False
