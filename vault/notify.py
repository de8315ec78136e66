"""Optional outgoing notifications (VAULT_NOTIFY_URL), signed as Standard Webhooks.

They tell the helpdesk (or a chat bridge) that a customer submitted something for a ticket, so
the agent knows to look: `secret.submitted` for every submission (`data`: ticket, id, kind, and
`request` when it answered a request), then `request.filled` for an answered request (`data`:
ticket, id of the request, secret_id, kind). The ticket, ids, kind and time: nothing secret.
They are sent from a small background pool, after the submission is stored, so they never slow
or fail a customer's request; a failure is logged (the target's scheme, host and port only:
its path or query may hold a token) and dropped.

They go straight to the configured URL (vault.httpclient): no redirect is followed (it would
take the signed delivery elsewhere), and the environment's proxy variables and `.netrc` do not
apply. The receiver is often on the internal network, its URL holds its token, and the server's
environment was not written with notifications in mind.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.parse
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import requests

from vault.httpclient import Session

log = logging.getLogger("vault.notify")


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for `body` (Standard Webhooks, v1)."""
    raw = secret[len("whsec_"):] if secret.startswith("whsec_") else secret
    key = base64.b64decode(raw)
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


class Notifier:
    """Sends the notifications from a pool of two threads. At most MAX_PENDING wait to be sent
    (a receiver that hangs must not grow vault's memory): beyond, a notification is dropped and
    logged. At exit, those still waiting are dropped (close)."""

    MAX_PENDING = 1000

    def __init__(self, url: str, secret: str, *, timeout: float = 3.0) -> None:
        parts = urllib.parse.urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            raise ValueError("VAULT_NOTIFY_URL has a port that is not a number from 1 to "
                             "65535") from None
        if parts.scheme not in {"https", "http"} or not parts.hostname or " " in url:
            raise ValueError("VAULT_NOTIFY_URL must be an http(s) URL with a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("VAULT_NOTIFY_URL may not hold a user or password: put a token in "
                             "its path or query, and sign with VAULT_NOTIFY_SECRET")
        if not secret:
            raise ValueError("VAULT_NOTIFY_URL needs VAULT_NOTIFY_SECRET")
        sign(secret, "probe", 0, b"")  # a malformed secret fails at start-up, not per event
        self.url, self.secret, self.timeout = url, secret, timeout
        # What logs may name: scheme, host and port. Chat bridges keep their token in the path
        # (Slack, Discord), others in the query: neither is logged.
        shown = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        self.target = f"{parts.scheme}://{shown}{f':{port}' if port else ''}"
        self._cond = threading.Condition()
        self._waiting = 0
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vault-notify")

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
        with self._cond:
            if self._waiting >= self.MAX_PENDING:
                log.warning("notification dropped: too many waiting to be sent",
                            extra={"target": self.target, "type": bodies[0]["type"]})
                done: Future[None] = Future()
                done.set_result(None)
                return done
            self._waiting += 1
        try:
            return self._pool.submit(self._send_all, bodies)
        except RuntimeError:  # the pool is shut down: vault is stopping
            self._sent()
            raise

    def _sent(self) -> None:
        with self._cond:
            self._waiting -= 1
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued notification was sent (or given up); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._waiting == 0, timeout)

    def _send_all(self, bodies: list[dict[str, Any]]) -> None:
        try:
            for body in bodies:  # in order: the secret first, then the request it answered
                self._send(body)
        finally:
            self._sent()

    def _send(self, body: dict[str, Any]) -> None:
        payload = json.dumps(body, separators=(",", ":")).encode()
        msg_id, stamp = "msg_" + secrets.token_hex(12), int(time.time())
        headers = {"Content-Type": "application/json", "webhook-id": msg_id,
                   "webhook-timestamp": str(stamp),
                   "webhook-signature": sign(self.secret, msg_id, stamp, payload)}
        try:
            # A connection per notification, closed after it (they are few): no kept-alive
            # connection a receiver could drop between two. The path and the query both go:
            # a receiver's URL may carry its own token in either.
            with Session(proxies_from_env=False) as session:
                status = session.post(self.url, data=payload, headers=headers,
                                      timeout=self.timeout).status_code
        except (requests.RequestException, ValueError) as exc:
            # Only the type: requests' messages hold the whole URL, its token with it.
            log.warning("notification not delivered",
                        extra={"event": type(exc).__name__, "target": self.target,
                               "type": body["type"]})
            return
        if status >= 300:
            log.warning("notification refused", extra={"status": status, "target": self.target,
                                                       "type": body["type"]})

    def close(self) -> None:
        """Stop: the one being sent finishes (within its timeout), those waiting are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)
