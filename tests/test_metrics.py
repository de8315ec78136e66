"""Metrics and access logs under real gunicorn with four workers, configured by
deploy/gunicorn.conf.py: /metrics counts what was sent, whichever worker answers (and after
workers were replaced), and the access log of a full flow holds no token, key, password, cookie,
`Authorization` value, `Referer` or query string. Plus the events' counting rules, in process.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import (
    ROOT,
    Agent,
    RedisServer,
    Server,
    base_config,
    follow_output,
    free_port,
    gunicorn_env,
    start_gunicorn,
    stop_server,
)
from helpers import WP_FIELDS, Lines, sealed, share
from prometheus_client.parser import text_string_to_metric_families

from vault import create_app

CONF = "deploy/gunicorn.conf.py"
STANDARD_KEY = base64.b64decode("c2VjcmV0LWtleS1mb3Itc3RhbmRhcmQtd2ViaG9va3M=")
UNKNOWN_ID = "A" * 28
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def four_workers(redis_server: RedisServer, tmp_path: Path
                 ) -> Iterator[Callable[..., tuple[Server, Lines]]]:
    """gunicorn -c deploy/gunicorn.conf.py with four workers and a metrics folder in tmp_path."""
    started: list[Server] = []

    def start(*extra_args: str, **overrides: Any) -> tuple[Server, Lines]:
        env = gunicorn_env(redis_server.url, ratelimit_submit="1000/minute",
                           ratelimit_reveal="1000/minute", **overrides)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "metrics")
        lines = Lines()
        server = start_gunicorn(env, tmp_path, workers=4, threads=2, on_line=lines,
                                extra_args=["-c", CONF, *extra_args])
        started.append(server)
        return server, lines

    yield start
    for server in started:
        stop_server(server)


def call(method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request on a connection of its own: any worker may take it."""
    kwargs.setdefault("timeout", 10)
    with requests.Session() as session:
        return session.request(method, url, **kwargs)


def standard_webhook(url: str, body: dict[str, Any], msg_id: str, *, key: bytes = STANDARD_KEY
                     ) -> requests.Response:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw,
                                          hashlib.sha256).digest()).decode()
    return call("POST", url + "/api/v1/webhooks/standard", data=raw, headers={
        "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": stamp,
        "webhook-signature": "v1," + signature})


def scrape(url: str) -> Samples:
    resp = call("GET", url + "/metrics")
    assert resp.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over the samples of `name` whose labels include `labels`."""
    return sum(v for (n, ls), v in samples.items()
               if n == name and set(labels.items()) <= set(ls))


# -- under gunicorn ---------------------------------------------------------------------------------

@pytest.mark.slow
def test_metrics_count_what_was_sent_summed_over_four_workers(
        four_workers: Callable[..., tuple[Server, Lines]], make_agent: Callable[..., Agent],
        tmp_path: Path) -> None:
    alice = make_agent("alice@example.com", name="Alice")
    bob = make_agent("bob@example.com", name="Bob")
    # At most 6 requests per worker, then gunicorn replaces it: counts of workers that have
    # exited must still be in the sum.
    server, _ = four_workers("--max-requests", "6", log_level="WARNING")
    url, ticket = server.url, "M-1"

    shares = []
    for _ in range(6):
        envelope, _key = sealed(ticket)
        resp = call("POST", url + "/api/v1/secrets",
                    json={"ticket": ticket, "kind": "wordpress", "envelope": envelope})
        assert resp.status_code == 201, resp.text
        assert "Server" not in resp.headers  # no banner from gunicorn (deploy/gunicorn.conf.py)
        shares.append(resp.json())
    for shared in shares[:3]:  # the first reveal claims the unassigned ticket for alice
        resp = call("POST", f"{url}/api/v1/secrets/{shared['id']}/reveal", headers=alice.headers)
        assert resp.status_code == 200, resp.text
    resp = call("POST", f"{url}/api/v1/secrets/{shares[3]['id']}/reveal", headers=bob.headers)
    assert resp.status_code == 403
    resp = call("DELETE", f"{url}/api/v1/secrets/{shares[4]['id']}",
                headers={"X-Manage-Token": shares[4]["manage_token"]})
    assert resp.status_code == 204
    for _ in range(5):
        assert call("GET", f"{url}/api/v1/secrets/{UNKNOWN_ID}").status_code == 404
    resp = call("POST", url + "/api/v1/requests", json={"ticket": "M-2"}, headers=alice.headers)
    assert resp.status_code == 201
    closed = {"type": "ticket.closed", "timestamp": "2026-01-01T00:00:00Z",
              "data": {"ticket": ticket}}
    resp = standard_webhook(url, closed, "msg_metrics_1")
    assert resp.status_code == 200, resp.text
    purged = resp.json()["purged"]
    assert purged >= 2  # the refused one and the untouched one, at least
    again = standard_webhook(url, closed, "msg_metrics_1")
    assert again.status_code == 200 and again.json()["duplicate"] is True
    forged = standard_webhook(url, closed, "msg_metrics_2", key=b"not the key")
    assert forged.status_code == 401
    for _ in range(8):
        assert call("GET", url + "/healthz").status_code == 200
    sent = {
        ("/api/v1/secrets", "POST", "201"): 6,
        ("/api/v1/secrets/<secret_id>/reveal", "POST", "200"): 3,
        ("/api/v1/secrets/<secret_id>/reveal", "POST", "403"): 1,
        ("/api/v1/secrets/<secret_id>", "DELETE", "204"): 1,
        ("/api/v1/secrets/<secret_id>", "GET", "404"): 5,
        ("/api/v1/requests", "POST", "201"): 1,
        ("/api/v1/webhooks/standard", "POST", "200"): 2,
        ("/api/v1/webhooks/standard", "POST", "401"): 1,
        ("/healthz", "GET", "200"): 8,
    }

    # Each scrape may be answered by any worker; each sees every worker's counts, and the
    # scrapes before it.
    for scrapes_before in range(6):
        samples = scrape(url)
        for (route, method, status), count in sent.items():
            assert value(samples, "vault_http_requests_total", route=route, method=method,
                         status=status) == count, (route, method, status)
        assert value(samples, "vault_http_requests_total", route="/metrics", method="GET",
                     status="200") == scrapes_before
        assert total(samples, "vault_http_requests_total") == sum(sent.values()) + scrapes_before
        assert total(samples, "vault_http_request_duration_seconds_count") == \
            sum(sent.values()) + scrapes_before
        assert value(samples, "vault_http_request_duration_seconds_count",
                     route="/api/v1/secrets") == 6
        assert value(samples, "vault_http_request_duration_seconds_bucket",
                     route="/api/v1/secrets", le="+Inf") == 6
        events = {e: value(samples, "vault_secrets_total", event=e)
                  for e in ("created", "revealed", "refused", "deleted", "purged")}
        assert events == {"created": 6, "revealed": 3, "refused": 1, "deleted": 1,
                          "purged": purged}
        webhooks = {(dict(ls)["source"], dict(ls)["result"]): v for (n, ls), v in samples.items()
                    if n == "vault_webhooks_total" and v}
        assert webhooks == {("standard", "applied"): 1, ("standard", "duplicate"): 1,
                            ("standard", "unauthorized"): 1}
        assert value(samples, "vault_redis_errors_total") == 0

    # 33 requests, at most 6 per worker process: at least six processes counted, so workers
    # were replaced and their counts kept.
    pids = {re.sub(r"\D", "", p.name) for p in (tmp_path / "metrics").glob("counter_*.db")}
    assert len(pids) >= 6, pids


@pytest.mark.slow
def test_the_access_log_of_a_full_flow_holds_no_secret_and_every_line_is_json(
        four_workers: Callable[..., tuple[Server, Lines]], agent: Agent) -> None:
    server, lines = four_workers()
    url, ticket = server.url, "L-1"
    answered: list[requests.Response] = []

    def send(method: str, path: str, **kwargs: Any) -> requests.Response:
        resp = call(method, url + path, **kwargs)
        answered.extend([*resp.history, resp])  # ?lang= answers with a redirect, followed
        return resp

    # What must never reach a log; `Referer` and the query string carry canaries too.
    referer = "https://helpdesk.example/conversation/7?referer-canary=RefererSecret1"
    query = "?lang=fr&token=QuerySecret1"
    bearer = {"Authorization": f"Bearer {agent.token}", "Referer": referer}

    made = send("POST", "/api/v1/requests", json={"ticket": ticket}, headers=bearer)
    assert made.status_code == 201
    request_id = made.json()["id"]
    envelope, key = sealed(ticket)
    assert send("GET", f"/r/{request_id}{query}", headers={"Referer": referer}).status_code == 200
    filled = send("POST", f"/api/v1/requests/{request_id}/secret{query}",
                  json={"kind": "wordpress", "envelope": envelope}, headers={"Referer": referer})
    assert filled.status_code == 201
    secret_id, manage_token = filled.json()["secret_id"], filled.json()["manage_token"]
    assert send("GET", f"/m/{secret_id}", headers={"Referer": referer}).status_code == 200
    revealed = send("POST", f"/api/v1/secrets/{secret_id}/reveal", headers=bearer)
    assert revealed.status_code == 200 and revealed.json()["envelope"] == envelope
    assert send("POST", f"/api/v1/secrets/{secret_id}/ack", headers=bearer).status_code == 204

    login = send("POST", "/api/v1/session", json={"email": agent.email, "password": agent.password})
    assert login.status_code == 200
    cookie = re.search(r"__Host-vault_session=([^;]+)", login.headers["Set-Cookie"])
    assert cookie is not None
    session_cookie, csrf = cookie.group(1), login.json()["csrf_token"]
    with_cookie = {"Cookie": f"__Host-vault_session={session_cookie}", "Referer": referer}
    assert send("GET", f"/dashboard{query}", headers=with_cookie).status_code == 200
    assert send("GET", "/api/v1/session", headers=with_cookie).status_code == 200

    other_envelope, other_key = sealed(ticket)
    shared = send("POST", "/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                                   "envelope": other_envelope})
    assert shared.status_code == 201
    other_manage = shared.json()["manage_token"]
    deleted = send("DELETE", f"/api/v1/secrets/{shared.json()['id']}{query}",
                   headers={"X-Manage-Token": other_manage, "Referer": referer})
    assert deleted.status_code == 204
    assert send("GET", f"/{query}").status_code == 200
    # A proxy's own request id is kept (and logged) when it is a plain token.
    assert send("GET", "/healthz", headers={"X-Request-Id": "proxy-id-7"}).status_code == 200
    assert send("DELETE", "/api/v1/session", headers={**with_cookie, "X-CSRF-Token": csrf}
                ).status_code == 204

    ids = [resp.headers["X-Request-Id"] for resp in answered]
    assert "proxy-id-7" in ids and len(set(ids)) == len(ids)

    def access_lines(output: list[str]) -> list[dict[str, Any]]:
        return [entry for entry in map(json.loads, output) if entry["logger"] == "gunicorn.access"]

    output = lines.wait_for(lambda out: len([x for x in out if "gunicorn.access" in x])
                            >= len(answered))
    access = access_lines(output)
    # One line per request, each with the id vault answered it with, in these fields only.
    assert sorted(entry["request_id"] for entry in access) == sorted(ids)
    for entry in access:
        assert set(entry) == {"ts", "level", "logger", "message", "method", "path", "status",
                              "bytes", "duration_ms", "request_id"}
        assert "?" not in entry["path"]
    by_id = {entry["request_id"]: entry for entry in access}
    for resp in answered:
        entry = by_id[resp.headers["X-Request-Id"]]
        assert (entry["method"], entry["status"]) == (resp.request.method, resp.status_code)
        assert entry["path"] == resp.request.path_url.split("?")[0]

    # Nowhere in the server's output (access, gunicorn and app logs alike).
    text = "\n".join(output)
    for secret in (agent.token, agent.password, key, other_key, manage_token, other_manage,
                   session_cookie, csrf, WP_FIELDS["password"], envelope, other_envelope,
                   "RefererSecret1", "QuerySecret1", "lang=fr", "Bearer", "helpdesk.example"):
        assert secret not in text, secret


@pytest.mark.slow
def test_vault_serve_shares_metrics_between_its_workers_in_a_folder_it_removes(
        redis_server: RedisServer, redis_client: Any, tmp_path: Path) -> None:
    env = gunicorn_env(redis_server.url)
    env["TMPDIR"] = str(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", "3", "--threads", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(url=f"http://127.0.0.1:{port}", process=proc, log_path=tmp_path / "serve.log")
    try:
        follow_output(proc, b"Booting worker", what="vault serve", log_path=server.log_path)
        [folder] = tmp_path.glob("vault-metrics-*")
        for _ in range(12):
            resp = call("GET", server.url + "/healthz")
            assert resp.status_code == 200
            assert "Server" not in resp.headers  # no banner from gunicorn (vault serve)
        assert value(scrape(server.url), "vault_http_requests_total", route="/healthz",
                     method="GET", status="200") == 12
        assert list(folder.glob("counter_*.db"))
    finally:
        stop_server(server)
    assert not folder.exists()


# -- counting rules, in process ----------------------------------------------------------------------

def secret_counts(app: Any) -> dict[str, float]:
    metric = app.extensions["vault"].metrics.secrets
    return {s.labels["event"]: s.value for m in metric.collect() for s in m.samples
            if s.name == "vault_secrets_total"}


def test_refused_counts_a_wrong_agent_not_a_second_reveal(
        app: Any, client: Any, make_agent: Callable[..., Agent]) -> None:
    alice, bob = make_agent("alice@example.com"), make_agent("bob@example.com")
    bobs_other_session, _ = app.extensions["vault"].accounts.create_token(bob.email)
    secret = share(client, "R-1")
    path = f"/api/v1/secrets/{secret['id']}/reveal"
    assert client.post(path, headers=bob.headers).status_code == 200  # claims the ticket
    assert client.post(path, headers=alice.headers).status_code == 403
    assert client.post(path, headers={"Authorization": f"Bearer {bobs_other_session}"}
                       ).status_code == 410
    assert secret_counts(app) == {"created": 1, "revealed": 1, "refused": 1, "deleted": 0,
                                  "purged": 0}


def test_a_retried_fill_is_not_counted_twice(app: Any, client: Any, agent: Agent) -> None:
    made = client.post("/api/v1/requests", json={"ticket": "R-2"}, headers=agent.headers)
    envelope, _ = sealed("R-2")
    body = {"kind": "wordpress", "envelope": envelope}
    first = client.post(f"/api/v1/requests/{made.get_json()['id']}/secret", json=body)
    retry = client.post(f"/api/v1/requests/{made.get_json()['id']}/secret", json=body)
    assert first.status_code == retry.status_code == 201
    assert first.get_json()["secret_id"] == retry.get_json()["secret_id"]
    assert secret_counts(app)["created"] == 1


def test_purges_count_what_they_removed_by_any_route(
        app: Any, client: Any, helpdesk: dict[str, str]) -> None:
    for _ in range(3):
        share(client, "R-3")
    assert client.post("/api/v1/tickets/R-3/close", headers=helpdesk).get_json()["purged"] == 3
    assert client.post("/api/v1/tickets/R-3/close", headers=helpdesk).get_json()["purged"] == 0
    assert secret_counts(app)["purged"] == 3


def test_webhook_results_by_source(app: Any, client: Any) -> None:
    def post(body: dict[str, Any], msg_id: str, key: bytes = STANDARD_KEY) -> int:
        raw = json.dumps(body).encode()
        stamp = str(int(time.time()))
        sig = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw,
                                        hashlib.sha256).digest()).decode()
        return int(client.post("/api/v1/webhooks/standard", data=raw, headers={
            "Content-Type": "application/json", "webhook-id": msg_id,
            "webhook-timestamp": stamp, "webhook-signature": "v1," + sig}).status_code)

    assert post({"type": "ticket.closed", "data": {"ticket": "W-1"}}, "m1") == 200
    assert post({"type": "ticket.closed", "data": {"ticket": "W-1"}}, "m1") == 200
    assert post({"type": "ticket.unknown", "data": {"ticket": "W-1"}}, "m2") == 200
    assert post({"type": "ticket.closed", "data": {"ticket": "bad ticket"}}, "m3") == 400
    assert post({"type": "ticket.closed", "data": {"ticket": "W-1"}}, "m4", b"forged") == 401
    hs = client.post("/api/v1/webhooks/helpscout", data=b"{}",
                     headers={"X-HelpScout-Event": "convo.deleted"})
    assert hs.status_code == 401
    metric = app.extensions["vault"].metrics.webhooks
    counts = {(s.labels["source"], s.labels["result"]): s.value for m in metric.collect()
              for s in m.samples if s.name == "vault_webhooks_total" and s.value}
    assert counts == {("standard", "applied"): 1, ("standard", "duplicate"): 1,
                      ("standard", "ignored"): 1, ("standard", "invalid"): 1,
                      ("standard", "unauthorized"): 1, ("helpscout", "unauthorized"): 1}


def test_readyz_checks_redis_and_the_key_ring_and_counts_redis_down(app: Any) -> None:
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok", "checks": {"redis": "ok", "keyring": "ok"}}

    # Nothing listens on port 1: Redis does not answer.
    down = create_app(base_config("redis://127.0.0.1:1/0", redis_connect_timeout=0.2,
                                  redis_socket_timeout=0.2))
    try:
        client = down.test_client()
        resp = client.get("/readyz")
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        assert resp.get_json()["checks"] == {"redis": "unavailable", "keyring": "ok"}
        assert client.get(f"/api/v1/secrets/{UNKNOWN_ID}").status_code == 503
        assert client.get("/metrics").status_code == 200
        errors = down.extensions["vault"].metrics.redis_errors
        assert [s.value for m in errors.collect() for s in m.samples
                if s.name == "vault_redis_errors_total"] == [2]
    finally:
        down.extensions["vault"].close()


def test_a_refetch_inside_the_grace_window_is_not_a_second_reveal(
        app: Any, client: Any, agent: Agent) -> None:
    secret = share(client, "R-3")
    path = f"/api/v1/secrets/{secret['id']}/reveal"
    first = client.post(path, headers=agent.headers)
    again = client.post(path, headers=agent.headers)  # the same session: a lost response
    assert first.status_code == again.status_code == 200
    assert again.get_json()["envelope"] == first.get_json()["envelope"]
    assert secret_counts(app)["revealed"] == 1
    events = [e["event"] for e in client.get("/api/v1/tickets/R-3", headers=agent.headers
                                             ).get_json()["events"]]
    assert events.count("secret.revealed") == 1 and events.count("secret.refetched") == 1
