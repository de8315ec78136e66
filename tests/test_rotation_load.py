"""`vault keys rotate` while a real gunicorn serves reveals and submissions: nothing fails, and
afterwards no stored envelope is wrapped under the retired key (the rotation order of
docs/security-model.md)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import ROOT, gunicorn_env, start_gunicorn, stop_server
from helpers import sealed

from vault.crypto.envelope import open_envelope
from vault.crypto.keyring import KeyRing, generate_key_spec

pytestmark = pytest.mark.slow

OLD, NEW = generate_key_spec(), generate_key_spec()
TICKETS, PER_TICKET, WORKERS = 40, 50, 4
RAISED = {"ratelimit_reveal": "1000000/minute", "ratelimit_submit": "1000000/minute"}


def test_rotation_under_load_fails_nothing_and_retires_the_old_key(
        make_app: Callable[..., Any], redis_server: Any, tmp_path: Path) -> None:
    # Before: everything wrapped under OLD, the only key (real time: the server's clock).
    old = make_app(keys=OLD, clock=time.time, **RAISED).extensions["vault"]
    stored: list[tuple[str, str, str]] = []  # (secret id, K, ticket)
    for t in range(TICKETS):
        ticket = f"rot-{t}"
        for _ in range(PER_TICKET):
            envelope, key = sealed(ticket, "other", {"text": f"canary {ticket}"})
            stored.append((old.vault.create_secret(ticket, "other", envelope)["id"], key, ticket))
    old.accounts.add_agent("rota@example.com", "correct horse battery staple")
    tokens = [old.accounts.create_token("rota@example.com")[0] for _ in range(WORKERS)]

    # Step 2 of the rotation: NEW first, OLD still there to decrypt.
    env = gunicorn_env(redis_server.url, keys=f"{NEW},{OLD}", **RAISED)
    server = start_gunicorn(env, tmp_path, workers=2, threads=4)
    to_reveal = stored[: len(stored) // 2]
    failures: list[str] = []
    done: list[float] = []
    lock, stop = threading.Lock(), threading.Event()
    started = threading.Barrier(WORKERS + 1)

    def traffic(worker: int) -> None:
        session = requests.Session()
        auth = {"Authorization": f"Bearer {tokens[worker]}"}
        first = True
        while not stop.is_set():
            with lock:
                item = to_reveal.pop() if to_reveal else None
            if item is not None:
                secret_id, key, ticket = item
                rv = session.post(f"{server.url}/api/v1/secrets/{secret_id}/reveal", headers=auth,
                                  timeout=10)
                if rv.status_code != 200 or open_envelope(key, rv.json()["envelope"], ticket=ticket,
                                                          kind="other") != {"text": f"canary {ticket}"}:
                    failures.append(f"reveal {rv.status_code}")
            ticket = f"new-{worker}-{len(done)}"  # a fresh ticket: never "ticket-full"
            envelope, _ = sealed(ticket, "other", {"text": "during rotation"})
            rv = session.post(f"{server.url}/api/v1/secrets", timeout=10, json={
                "ticket": ticket, "kind": "other", "envelope": envelope})
            if rv.status_code != 201:
                failures.append(f"submit {rv.status_code}")
            done.append(time.monotonic())
            if first:
                first = False
                started.wait()

    threads = [threading.Thread(target=traffic, args=(i,)) for i in range(WORKERS)]
    try:
        for t in threads:
            t.start()
        started.wait()  # every worker is mid-stream before the rotation begins
        began = time.monotonic()
        rotation = subprocess.run([sys.executable, "-m", "vault.cli", "keys", "rotate"], env=env,
                                  cwd=str(ROOT), capture_output=True, text=True, timeout=300,
                                  check=False)
        ended = time.monotonic()
    finally:
        stop.set()
        for t in threads:
            t.join(30)
        stop_server(server)

    assert rotation.returncode == 0, rotation.stderr
    assert "failed 0" in rotation.stdout
    assert failures == []
    assert sum(began <= t <= ended for t in done) >= WORKERS  # traffic really overlapped
    new_only = KeyRing.from_string(NEW)
    blobs = [old.store.get_raw(k) for k, _ in old.store.iter_envelope_keys()]
    assert len(blobs) >= len(stored) // 2
    assert all(blob is not None and new_only.is_current(blob) for blob in blobs)

    # Step 4: OLD removed. What was left unrevealed still opens.
    after = make_app(keys=NEW, clock=time.time, **RAISED).extensions["vault"]
    who = after.accounts.authenticate_bearer(tokens[0])
    for secret_id, key, ticket in stored[len(stored) // 2:][:20]:
        envelope = after.vault.reveal(who, secret_id)["envelope"]
        assert open_envelope(key, envelope, ticket=ticket, kind="other") == {
            "text": f"canary {ticket}"}
