"""Optional outgoing notification: a Standard-Webhooks-signed `secret.submitted` event.

It tells the helpdesk (or a chat bridge) that a customer submitted something for a ticket, so the
agent knows to look. It carries the ticket, the id, the kind and the time: nothing secret. It is
sent from a small background pool, after the submission is stored, so it never slows or fails a
customer's request; failures are logged and dropped.
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

    def secret_submitted(self, *, ticket: str, secret_id: str, kind: str, at: str | None
                         ) -> Future[None]:
        body = {"type": "secret.submitted", "timestamp": at,
                "data": {"ticket": ticket, "id": secret_id, "kind": kind}}
        return self._pool.submit(self._send, body)

    def _send(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        msg_id, stamp = "msg_" + secrets.token_hex(12), int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(self.secret, msg_id, stamp, payload)}
        parts = urllib.parse.urlsplit(self.url)
        factory = (http.client.HTTPSConnection if parts.scheme == "https"
                   else http.client.HTTPConnection)
        conn = factory(parts.netloc, timeout=self.timeout)
        try:
            conn.request("POST", parts.path or "/" + (f"?{parts.query}" if parts.query else ""),
                         body=payload, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException) as exc:
            log.warning("notification not delivered", extra={"event": type(exc).__name__})
            return
        finally:
            conn.close()
        if status >= 300:
            log.warning("notification refused", extra={"status": status})

    def close(self) -> None:
        self._pool.shutdown(wait=True)
