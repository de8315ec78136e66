"""The optional secret.submitted notification: signed, nothing secret in it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from helpers import share

SECRET_BYTES = b"notify-secret-bytes-32-long-okay"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()


@pytest.fixture
def receiver() -> Iterator[tuple[str, queue.Queue[tuple[dict[str, str], bytes]]]]:
    got: queue.Queue[tuple[dict[str, str], bytes]] = queue.Queue()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.put(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_a_submission_sends_a_signed_event_without_secrets(make_app, receiver):
    url, got = receiver
    app = make_app(notify_url=url, notify_secret=SECRET)
    s = share(app.test_client(), "n-1")
    headers, body = got.get(timeout=10)
    event = json.loads(body)
    assert event["type"] == "secret.submitted"
    assert event["data"] == {"ticket": "n-1", "id": s["id"], "kind": "wordpress"}
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(SECRET_BYTES, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == "v1," + expected
    for value in (s["envelope"], s["key"], s["manage_token"]):
        assert value.encode() not in body


def test_a_malformed_notify_secret_refuses_to_start(make_app):
    from vault.errors import ConfigError
    with pytest.raises(ConfigError, match="VAULT_NOTIFY"):
        make_app(notify_url="http://127.0.0.1:9/hook", notify_secret="not base64 !!")
