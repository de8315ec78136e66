"""Optional outgoing notifications (VAULT_NOTIFY_URL), signed as Standard Webhooks.

They tell the helpdesk (or a chat bridge) that a customer submitted something for a ticket, so
the agent knows to look: `secret.submitted` for every submission (`data`: ticket, id, kind, and
`request` when it answered a request), then `request.filled` for an answered request (`data`:
ticket, id of the request, secret_id, kind). The ticket, ids, kind and time: nothing secret.
They are sent from a small background pool, after the submission is stored, so they never slow
or fail a customer's request; a failure is logged (the target without its query, which may
hold a token) and dropped.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import logging
import secrets
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

log = logging.getLogger("vault.notify")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for `body` (Standard Webhooks, v1)."""
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(raw)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Notifier:
    def __init__(self, url: str, secret: str, *, timeout: float = 3.0) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("VAULT_NOTIFY_URL must be an http(s) URL")
        if not secret:
            raise ValueError("VAULT_NOTIFY_URL needs VAULT_NOTIFY_SECRET")
        sign(secret, "probe", 0, b"")  # a malformed secret fails at start-up, not per event
        self.url, self.secret, self.timeout = url, secret, timeout
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vault-notify")

    @property
    def target(self) -> str:
        """The URL as logs may name it: no user, password or query."""
        parts = urllib.parse.urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path or '/'}"

    def secret_submitted(self, *, ticket: str, secret_id: str, kind: str, at: str | None,
                         request_id: str | None = None) -> Future[None]:
        """Queue the notifications of one stored submission; never raises, never waits."""
        data: dict[str, Any] = {"ticket": ticket, "id": secret_id, "kind": kind}
        bodies = [{"type": "secret.submitted", "timestamp": at,
                   "data": {**data, "request": request_id} if request_id else data}]
        if request_id:
            bodies.append({"type": "request.filled", "timestamp": at,
                           "data": {"ticket": ticket, "id": request_id, "secret_id": secret_id,
                                    "kind": kind}})
        return self._pool.submit(self._send_all, bodies)

    def _send_all(self, bodies: list[dict[str, Any]]) -> None:
        for body in bodies:  # in order: the secret first, then the request it answered
            self._send(body)

    def _send(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        msg_id, stamp = "msg_" + secrets.token_hex(12), int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(self.secret, msg_id, stamp, payload)}
        parts = urllib.parse.urlsplit(self.url)
        factory = (http.client.HTTPSConnection if parts.scheme == "https"
                   else http.client.HTTPConnection)
        # The path and the query both: a receiver's URL may carry its own token in the query.
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            conn = factory(parts.hostname or "", parts.port, timeout=self.timeout)
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log.warning("notification not delivered",
                        extra={"event": type(exc).__name__, "target": self.target})
            return
        try:
            conn.request("POST", path, body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, ValueError, http.client.HTTPException) as exc:
            log.warning("notification not delivered",
                        extra={"event": type(exc).__name__, "target": self.target})
            return
        finally:
            conn.close()
        if status >= 300:
            log.warning("notification refused", extra={"status": status, "target": self.target,
                                                       "type": body["type"]})

    def close(self) -> None:
        self._pool.shutdown(wait=True)
