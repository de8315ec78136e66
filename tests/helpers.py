"""Small helpers shared by tests: sealing envelopes like a browser would, creating secrets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from standardwebhooks import Webhook

from vault.crypto import generate_key, seal
from vault.storage import keys


class Lines:
    """A server's output lines as they come (follow_output's on_line), to wait on, not sleep."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def __call__(self, line: bytes) -> None:
        with self._cond:
            self.lines.append(line.decode("utf-8", errors="replace").rstrip("\n"))
            self._cond.notify_all()

    def wait_for(self, done: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        with self._cond:
            assert self._cond.wait_for(lambda: done(self.lines), timeout), "\n".join(self.lines)
            return list(self.lines)


WP_FIELDS = {"url": "https://shop.example.com/wp-admin", "username": "rocket-temp",
             "password": "Tr0ub4dor&3-canary-pw"}


def sealed(ticket: str, kind: str = "wordpress", fields: dict[str, str] | None = None,
           key: str | None = None) -> tuple[str, str]:
    """(envelope, K) for the given ticket and kind."""
    key = key or generate_key()
    if fields is None:
        fields = WP_FIELDS if kind == "wordpress" else {"text": "canary text"} \
            if kind == "other" else {"host": "sftp.example.com", "username": "u", "password": "p"}
    return seal(key, ticket=ticket, kind=kind, fields=fields), key


def share(client: Any, ticket: str = "1001", kind: str = "wordpress", **extra: Any
          ) -> dict[str, Any]:
    envelope, key = sealed(ticket, kind)
    rv = client.post("/api/v1/secrets", json={"ticket": ticket, "kind": kind,
                                             "envelope": envelope, **extra})
    assert rv.status_code == 201, rv.get_json()
    return {**rv.get_json(), "key": key, "envelope": envelope, "ticket": ticket, "kind": kind}


def helpscout_js_signature(secret: str, params: dict[str, str]) -> str:
    """The `X-HelpScout-Signature` Help Scout's App Developer Platform puts in the app's URL:
    base64 HMAC-SHA1 of `JSON.stringify(params)` (tests/test_helpscout_app.py checks this copy
    against node's own JSON.stringify)."""
    data = json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha1).digest()).decode()


def helpscout_app_query(params: dict[str, str], secret: str) -> str:
    """The query string Help Scout puts on the app's URL: the context, in its order, then its
    signature (every value percent-encoded, `+` of the base64 included)."""
    return urlencode({**params, "X-HelpScout-Signature": helpscout_js_signature(secret, params)},
                     quote_via=quote)


def standard_signature(secret: str | bytes, msg_id: str, timestamp: int, raw: bytes) -> str:
    """The `webhook-signature` a Standard Webhooks sender puts on the delivery `raw` (`v1,...`),
    made by the reference library (`standardwebhooks`), so that vault's verification is checked
    against someone else's signing, not against a copy of its own. `secret`: `whsec_...` or the
    key's bytes."""
    return Webhook(secret).sign(msg_id, datetime.fromtimestamp(timestamp, tz=UTC), raw.decode())


def fire(n: int, call: Any) -> list[Any]:
    """Run call(i) in n threads released together by a barrier; return results in order."""
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as exc:  # surfaced by the caller's assertions
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def ticket_record(store: Any, ticket: str) -> dict[str, str]:
    """A ticket's record as stored, read through the store's client (a plain read: a connection
    of the client's pool, not a script)."""
    return {_text(k): _text(v) for k, v in store.client.hgetall(keys.ticket(ticket)).items()}


def keys_of_ticket(store: Any, ticket: str) -> list[str]:
    """Every key in the ticket's hash tag (SCAN, never KEYS)."""
    return sorted(_text(k) for k in store.client.scan_iter(match=keys.ticket_slot(ticket),
                                                           count=1000))


def _text(value: bytes | str) -> str:
    return value if isinstance(value, str) else value.decode()
