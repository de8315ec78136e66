"""The optional notifications (VAULT_NOTIFY_URL, issue 12 point 6): sent after the submission is
stored, signed as Standard Webhooks and verified by the reference library, nothing secret in
them, never slowing or failing the customer, failures logged without the URL's query."""

from __future__ import annotations

import base64
import json
import logging
import queue
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from harness import free_port
from helpers import sealed, share
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

SECRET_BYTES = b"notify-secret-bytes-32-long-okay"
SECRET = "whsec_" + base64.b64encode(SECRET_BYTES).decode()


class Receiver:
    """A helpdesk's endpoint: verifies each delivery with the Standard Webhooks reference
    library (`standardwebhooks` on PyPI), as a receiver built on it would, and keeps what it
    got. `hold` makes it wait before answering, to show that vault does not wait for it."""

    def __init__(self) -> None:
        self.got: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.authorization: list[str | None] = []
        self.hold = threading.Event()
        self.hold.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = Webhook(SECRET).verify(body, dict(self.headers.items()))
                except WebhookVerificationError as exc:
                    event = {"unverified": str(exc)}
                receiver.authorization.append(self.headers.get("Authorization"))
                receiver.got.put((self.path, event))
                receiver.hold.wait(120)
                self.send_response(401 if "unverified" in event else 204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"

    def next(self) -> tuple[str, dict[str, Any]]:
        return self.got.get(timeout=10)

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.seen.set()

    def text(self) -> str:
        return "\n".join(f"{r.getMessage()} {r.__dict__}" for r in self.records)


@pytest.fixture
def notify_logs() -> Iterator[Records]:
    handler = Records()
    logger = logging.getLogger("vault.notify")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def test_a_share_sends_secret_submitted_to_a_url_with_a_path_and_a_query(make_app, receiver):
    """Issue 12, point 6: the receiver verifies it with the reference library; the URL's path
    and its query both arrive (the query used to be dropped whenever there was a path)."""
    app = make_app(notify_url=receiver.origin + "/hooks/vault?token=rcv-token-123&x=1",
                   notify_secret=SECRET)
    s = share(app.test_client(), "n-1")
    path, event = receiver.next()
    assert path == "/hooks/vault?token=rcv-token-123&x=1"
    assert event["type"] == "secret.submitted"
    assert event["data"] == {"ticket": "n-1", "id": s["id"], "kind": "wordpress"}
    assert event["timestamp"].endswith("Z")
    raw = json.dumps(event)
    for value in (s["envelope"], s["key"], s["manage_token"]):
        assert value not in raw


def test_a_filled_request_sends_secret_submitted_then_request_filled(make_app, receiver, agent):
    app = make_app(notify_url=receiver.origin + "/hook", notify_secret=SECRET)
    client = app.test_client()
    made = client.post("/api/v1/requests", json={"ticket": "n-2"}, headers=agent.headers)
    assert made.status_code == 201
    envelope, _ = sealed("n-2")
    filled = client.post(f"/api/v1/requests/{made.get_json()['id']}/secret",
                         json={"kind": "wordpress", "envelope": envelope})
    assert filled.status_code == 201, filled.get_json()
    request_id, secret_id = made.get_json()["id"], filled.get_json()["secret_id"]
    assert receiver.next() == ("/hook", {
        "type": "secret.submitted", "timestamp": AnyTime(),
        "data": {"ticket": "n-2", "id": secret_id, "kind": "wordpress", "request": request_id}})
    _, second = receiver.next()
    assert second["type"] == "request.filled"
    assert second["data"] == {"ticket": "n-2", "id": request_id, "secret_id": secret_id,
                              "kind": "wordpress"}
    # A retried fill (the same envelope, answered from the first) tells nobody twice.
    again = client.post(f"/api/v1/requests/{request_id}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    assert again.status_code == 201
    assert app.extensions["vault"].notifier.flush(10)  # everything queued has been sent
    assert receiver.got.empty()


class AnyTime:
    """Equal to any RFC 3339 UTC time: compares the rest of an event exactly."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.endswith("Z") and "T" in other


def test_a_slow_receiver_never_slows_the_customer(make_app, receiver):
    """The receiver takes the first delivery and does not answer until released; vault's
    timeout is raised above it, so a customer's request that waited for the notification would
    still be waiting when the test looks. It is not: both shares are answered meanwhile."""
    receiver.hold.clear()
    app = make_app(notify_url=receiver.origin + "/hook", notify_secret=SECRET)
    app.extensions["vault"].notifier.timeout = 120
    client = app.test_client()
    answered: list[dict[str, Any]] = []
    customer = threading.Thread(target=lambda: answered.extend(
        [share(client, "n-3"), share(client, "n-3")]))
    customer.start()
    assert receiver.next()[1]["data"]["ticket"] == "n-3"  # held by the receiver now
    customer.join(30)  # a bound for a broken build only: the shares need no notification
    assert not customer.is_alive() and len(answered) == 2
    assert not receiver.hold.is_set()  # and the receiver was holding all along
    receiver.hold.set()
    assert receiver.next()[1]["data"]["id"] in {a["id"] for a in answered}


def test_an_unreachable_or_refusing_receiver_is_logged_without_its_query(make_app, notify_logs):
    url = f"http://127.0.0.1:{free_port()}/hooks/vault?token=query-canary-77"
    app = make_app(notify_url=url, notify_secret=SECRET)
    s = share(app.test_client(), "n-4")  # the customer's request succeeds all the same
    assert s["id"]
    assert notify_logs.seen.wait(10)
    text = notify_logs.text()
    assert "notification not delivered" in text
    assert f"http://127.0.0.1:{url.split(':')[2].split('/')[0]}" in text
    assert "query-canary-77" not in text and "token" not in text and "/hooks" not in text
    assert s["manage_token"] not in text and s["envelope"] not in text


def test_a_refusing_receiver_is_logged_with_its_status(make_app, notify_logs, receiver):
    other = "whsec_" + base64.b64encode(b"another key, not the receiver's").decode()
    app = make_app(notify_url=receiver.origin + "/hook?token=query-canary-88",
                   notify_secret=other)
    assert share(app.test_client(), "n-5")["id"]
    assert "No matching signature" in receiver.next()[1]["unverified"]  # the library refuses
    assert notify_logs.seen.wait(10)
    [record] = notify_logs.records
    assert record.getMessage() == "notification refused"
    assert record.__dict__["status"] == 401 and record.__dict__["target"] == receiver.origin
    assert "query-canary-88" not in notify_logs.text()


def test_a_redirect_is_logged_as_a_refusal_and_not_followed(make_app, notify_logs, receiver):
    """Following it would take the signed delivery wherever the redirect points."""
    class Moved(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(307)
            self.send_header("Location", receiver.origin + "/hook")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    moved = ThreadingHTTPServer(("127.0.0.1", 0), Moved)
    threading.Thread(target=moved.serve_forever, daemon=True).start()
    try:
        app = make_app(notify_url=f"http://127.0.0.1:{moved.server_address[1]}/hook",
                       notify_secret=SECRET)
        assert share(app.test_client(), "n-6")["id"]
        assert app.extensions["vault"].notifier.flush(10)
    finally:
        moved.shutdown()
        moved.server_close()
    [record] = notify_logs.records
    assert record.getMessage() == "notification refused" and record.__dict__["status"] == 307
    assert receiver.got.empty()


def test_proxy_variables_and_netrc_do_not_apply(make_app, receiver, monkeypatch, tmp_path):
    """The receiver's URL is the configured one, reached directly, with nothing added."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login me password netrc-canary\n")
    netrc.chmod(0o600)
    for name, value in {"HOME": str(tmp_path), "NETRC": str(netrc),
                        "http_proxy": f"http://127.0.0.1:{free_port()}",
                        "HTTP_PROXY": f"http://127.0.0.1:{free_port()}"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    app = make_app(notify_url=receiver.origin + "/hook", notify_secret=SECRET)
    s = share(app.test_client(), "n-7")
    assert receiver.next() == ("/hook", {"type": "secret.submitted", "timestamp": AnyTime(),
                                         "data": {"ticket": "n-7", "id": s["id"],
                                                  "kind": "wordpress"}})
    assert receiver.authorization == [None]


def test_a_malformed_notify_secret_refuses_to_start(make_app):
    from vault.errors import ConfigError
    with pytest.raises(ConfigError, match="VAULT_NOTIFY"):
        make_app(notify_url="http://127.0.0.1:9/hook", notify_secret="not base64 !!")


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999/hook", "http://127.0.0.1:abc/hook",
                                 "ftp://hooks.example/x", "http:///no-host", "https://u:p@h/x",
                                 "https://hooks.example/a b"])
def test_a_notify_url_vault_could_not_use_refuses_to_start(make_app, url):
    from vault.errors import ConfigError
    with pytest.raises(ConfigError, match="VAULT_NOTIFY_URL"):
        make_app(notify_url=url, notify_secret=SECRET)


def test_an_ipv6_receiver_is_named_with_brackets_in_logs(make_app):
    app = make_app(notify_url="http://[::1]:9/hook?token=t", notify_secret=SECRET)
    assert app.extensions["vault"].notifier.target == "http://[::1]:9"
