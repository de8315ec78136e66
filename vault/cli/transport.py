"""Talking to a running vault over HTTP: `VAULT_URL`, one request at a time, redirects never
followed, and every way it can fail as one line that names the server's origin (never a path,
a token or a key).
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

from vault.cli.common import fail

DEFAULT_URL = "http://127.0.0.1:8000"
HTTP_TIMEOUT = 30.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the bearer token to wherever it points: refuse them all.
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


def vault_url() -> str:
    """VAULT_URL (default DEFAULT_URL) without its trailing slash; exit 2 unless http(s)."""
    base = os.environ.get("VAULT_URL", "").strip() or DEFAULT_URL
    parts = urlsplit(base)
    try:
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname) \
            and not parts.query and not parts.fragment and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        fail("VAULT_URL must be an http:// or https:// URL, such as "
             f"{DEFAULT_URL}", 2)
    return base.rstrip("/")


def origin_of(base: str) -> str:
    """scheme://host[:port] of a URL, for messages (never its path)."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def exchange(req: urllib.request.Request, origin: str) -> tuple[int, Message, bytes]:
    """Send one request: (status, headers, body) of whatever vault answered, redirects
    included (never followed). CliError when no answer comes (unreachable, timeout)."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read() or b""
        except OSError:
            raw = b""
        return exc.code, exc.headers, raw
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, str) else type(exc.reason).__name__
        if isinstance(exc.reason, OSError) and exc.reason.strerror:
            reason = exc.reason.strerror
        fail(f"cannot reach vault at {origin}: {reason}")
    except TimeoutError:
        fail(f"vault at {origin} did not answer within {HTTP_TIMEOUT:.0f} s")
    except OSError as exc:
        fail(f"cannot talk to vault at {origin}: {exc.strerror or type(exc).__name__}")


def json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in an answer's body; None for anything else (an empty body too)."""
    try:
        value = json.loads(raw or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def printable(value: Any, limit: int = 500) -> str:
    """Text from a server, as it may reach a terminal: no control or format characters (an
    escape sequence could rewrite the screen), bounded."""
    return "".join(c for c in str(value) if c.isprintable())[:limit]
