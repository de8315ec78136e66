"""vault on a real Redis Sentinel setup under load, through a failover (issue 4, point 2).

One primary, two replicas, three sentinels (quorum 2). A real gunicorn serves vault with
`redis+sentinel://` and `VAULT_REDIS_MIN_REPLICAS=1`; customers submit without pause while the
primary is killed with SIGKILL. vault follows the failover by itself (no restart, no new
configuration): while the sentinels switch it answers 503 with Retry-After, never a 500, never
slower than its timeouts allow; afterwards it answers 201 again, and every submission it ever
acknowledged with 201 is on the new primary, waiting, and reveals to its envelope.

The failover is awaited on the sentinels' own `+switch-master` channel, the stream on events set
by the writers: nothing here waits blindly.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import base_config, gunicorn_env, start_gunicorn, stop_server
from helpers import sealed

from vault import create_app

pytestmark = pytest.mark.slow

WRITERS = 6
SOCKET_TIMEOUT = 1.0
WAIT_TIMEOUT_MS = 500
OVERRIDES = {"redis_min_replicas": 1, "redis_wait_timeout_ms": WAIT_TIMEOUT_MS,
             "redis_socket_timeout": SOCKET_TIMEOUT, "redis_connect_timeout": SOCKET_TIMEOUT,
             "ratelimit_submit": "1000000/minute", "ratelimit_reveal": "1000000/minute",
             "max_waiting_per_ticket": 100000}


@dataclass
class Answer:
    writer: int
    started: float
    took: float
    status: int
    retry_after: str | None
    secret_id: str | None
    envelope: str
    detail: str = ""


@pytest.fixture(scope="module")
def world(redis_sentinel: Any, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[dict[str, Any]]:
    local = create_app(base_config(redis_sentinel.url, cheap_passwords=True, **OVERRIDES)
                       ).extensions["vault"]
    local.accounts.add_agent("watch@example.com", "correct horse battery staple", name="Watch")
    token, _ = local.accounts.create_token("watch@example.com")
    server = start_gunicorn(gunicorn_env(redis_sentinel.url, **OVERRIDES),
                            Path(tmp_path_factory.mktemp("sentinel")), workers=2, threads=4)
    yield {"server": server, "local": local, "setup": redis_sentinel,
           "agent": {"Authorization": f"Bearer {token}"}}
    stop_server(server)
    local.close()


class Stream:
    """WRITERS threads submitting one secret after another until told to stop."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.changed = threading.Condition(self.lock)
        self.threads = [threading.Thread(target=self._write, args=(i,), name=f"writer {i}")
                        for i in range(WRITERS)]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(30)
        assert not any(t.is_alive() for t in self.threads)

    def _write(self, i: int) -> None:
        ticket = f"stream-{i}"
        with requests.Session() as session:
            while not self.stop.is_set():
                envelope, _ = sealed(ticket)
                started = time.monotonic()
                try:
                    rv = session.post(f"{self.url}/api/v1/secrets", timeout=15, json={
                        "ticket": ticket, "kind": "wordpress", "envelope": envelope})
                    status, body = rv.status_code, rv.json()
                    retry_after = rv.headers.get("Retry-After")
                except requests.RequestException as exc:  # a hang or a dropped connection
                    status, body, retry_after = 0, {"error": repr(exc)}, None
                answer = Answer(writer=i, started=started, took=time.monotonic() - started,
                                status=status, retry_after=retry_after,
                                secret_id=body.get("id") if status == 201 else None,
                                envelope=envelope,
                                detail="" if status == 201 else str(body.get("detail")
                                                                    or body.get("error")))
                with self.changed:
                    self.answers.append(answer)
                    self.changed.notify_all()

    def wait_until(self, what: str, test: Any, timeout: float) -> None:
        """Block (on the writers' notifications) until test(answers) holds."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not test(self.answers):
                left = deadline - time.monotonic()
                assert left > 0, f"timed out waiting for {what}: {self.summary()}"
                self.changed.wait(left)

    def summary(self) -> dict[int, int]:
        out: dict[int, int] = {}
        for a in self.answers:
            out[a.status] = out.get(a.status, 0) + 1
        return out


def test_the_store_and_its_rate_limits_use_the_database_the_url_names(redis_sentinel):
    """`redis+sentinel://.../service/1`: both vault's records and its rate-limit counters are
    in database 1 of the primary the sentinels name, and the limit holds."""
    app = create_app(base_config(redis_sentinel.url + "/1", cheap_passwords=True,
                                 ratelimit_submit="2/minute"))
    try:
        client = app.test_client()
        envelope, _ = sealed("db-1")
        codes = [client.post("/api/v1/secrets", json={"ticket": "db-1", "kind": "wordpress",
                                                      "envelope": envelope},
                             environ_base={"REMOTE_ADDR": "203.0.113.7"}).status_code
                 for _ in range(3)]
        assert codes == [201, 201, 429]
        with contextlib.closing(redis_sentinel.primary.client(db=1)) as db1, \
                contextlib.closing(redis_sentinel.primary.client(db=0)) as db0:
            for db, expected in ((db1, True), (db0, False)):
                keys = {k.decode() for k in db.scan_iter(count=1000)}
                assert any(k.startswith("vault:{acct}:LIMITS:") for k in keys) is expected, keys
                assert any(k.endswith(":ix:db-1") for k in keys) is expected, keys
    finally:
        app.extensions["vault"].close()


def test_submissions_survive_a_primary_killed_mid_stream(world):
    setup, server = world["setup"], world["server"]
    old_primary = setup.primary
    assert setup.master_address() == ("127.0.0.1", old_primary.port)
    watcher = setup.sentinels[0].client(socket_timeout=5)
    pubsub = watcher.pubsub()
    pubsub.subscribe("+switch-master")
    confirmed = pubsub.get_message(timeout=5)  # subscribed before anything can switch
    assert confirmed and confirmed["type"] == "subscribe", confirmed

    stream = Stream(server.url)
    stream.start()
    try:
        stream.wait_until("201s before the kill",
                          lambda answers: sum(a.status == 201 for a in answers) >= 50, 30)
        killed_at = time.monotonic()
        old_primary.kill()

        # The sentinels agree the primary is down and promote a replica: they say so on their
        # +switch-master channel ("<service> <old ip> <old port> <new ip> <new port>").
        message = None
        deadline = killed_at + 30
        while message is None and time.monotonic() < deadline:
            message = pubsub.get_message(timeout=deadline - time.monotonic())
            if message is not None and message["type"] != "message":
                message = None
        assert message is not None, f"no failover within 30 s: {stream.summary()}"
        switched_at = time.monotonic()
        name, _, old_port, _, new_port = message["data"].decode().split()
        assert name == "mymaster" and int(old_port) == old_primary.port
        new_primary = setup.node_at(int(new_port))
        assert new_primary in setup.replicas

        stream.wait_until("201s after the switch", lambda answers: sum(
            a.status == 201 and a.started > switched_at for a in answers) >= 50, 30)
    finally:
        stream.finish()
        pubsub.close()
        watcher.close()

    answers = stream.answers
    codes = stream.summary()
    unavailable = [a for a in answers if a.status == 503]
    last_503 = max(a.started + a.took for a in unavailable) - switched_at if unavailable else 0
    print(f"answers: {codes}; failover took {switched_at - killed_at:.1f} s; 503s after the "
          f"switch: {sum(a.started > switched_at for a in unavailable)}, the last "
          f"{last_503:+.2f} s from it; slowest answer {max(a.took for a in answers):.2f} s; "
          f"reasons: {sorted({a.detail for a in unavailable})}")
    assert set(codes) <= {201, 503}, codes  # never a 500, never a dropped connection or hang
    assert all(a.retry_after and int(a.retry_after) > 0 for a in answers if a.status == 503)
    # 503s only during the switch: none answered before the kill, none long after the switch
    # (the other replica follows the new primary within moments, and WAIT succeeds again).
    assert not [a for a in answers if a.status == 503 and a.started + a.took < killed_at]
    assert last_503 < 5, last_503
    assert codes.get(503, 0) > 0  # the switch was seen by the stream
    # No answer took longer than a connect, a script and its WAIT allow (with one retry).
    bound = 2 * SOCKET_TIMEOUT + WAIT_TIMEOUT_MS / 1000 + 1.5
    slow = [a for a in answers if a.took > bound]
    assert not slow, slow[:5]
    log = server.log()
    assert "Traceback" not in log and '"level": "ERROR"' not in log

    # Every acknowledged submission is on the new primary, waiting, and opens to its envelope.
    acknowledged = [a for a in answers if a.status == 201]
    with requests.Session() as session:
        for a in acknowledged:
            meta = session.get(f"{server.url}/api/v1/secrets/{a.secret_id}", timeout=10)
            assert meta.status_code == 200 and meta.json()["state"] == "waiting", \
                (a, meta.status_code, meta.text)
        for a in acknowledged:
            rv = session.post(f"{server.url}/api/v1/secrets/{a.secret_id}/reveal",
                              headers=world["agent"], timeout=10)
            assert rv.status_code == 200, (a, rv.status_code, rv.text)
            assert rv.json()["envelope"] == a.envelope
    assert setup.master_address() == ("127.0.0.1", new_primary.port)
