"""Metrics and access logs under real gunicorn with four workers, configured by
deploy/gunicorn.conf.py: /metrics counts what was sent, whichever worker answers (and after
workers were replaced), and the access log of a full flow holds no token, key, password, cookie,
`Authorization` value, `Referer` or query string. Plus the events' counting rules, in process,
and the closed label sets: whatever a client sends (methods, paths, headers, bodies), every label
of every series keeps to its fixed set, so /metrics stays as large as the app's routes make it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import re
import socket
import string
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from harness import (
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
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString
from werkzeug.test import EnvironBuilder

from vault import create_app
from vault.metrics import (
    HTTP_METHODS,
    HTTP_STATUSES,
    LATENCY_BUCKETS,
    OTHER,
    SECRET_EVENTS,
    UNMATCHED,
    WEBHOOK_RESULTS,
    WEBHOOK_SOURCES,
    Metrics,
)

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


# -- closed label sets: nothing a client sends adds a series ------------------------------------

def closed_sets(app: Any) -> dict[str, set[str]]:
    """Every label vault exports, with every value it may take. A new label fails
    `assert_closed` until it is named here with its closed set."""
    return {
        "route": {rule.rule for rule in app.url_map.iter_rules()} | {UNMATCHED},
        "method": set(HTTP_METHODS) | {OTHER},
        "status": set(HTTP_STATUSES) | {OTHER},
        "le": {floatToGoString(b) for b in LATENCY_BUCKETS} | {"+Inf"},
        "event": set(SECRET_EVENTS),
        "source": set(WEBHOOK_SOURCES),
        "result": set(WEBHOOK_RESULTS),
    }


def assert_closed(text: str | Any, allowed: dict[str, set[str]]) -> Samples:
    """Every label of every sample in the exposition `text` (or a registry) is one of
    `allowed`'s values."""
    samples: Samples = {}
    families = text_string_to_metric_families(text) if isinstance(text, str) else text.collect()
    for family in families:
        for sample in family.samples:
            for name, label in sample.labels.items():
                assert name in allowed, f"{sample.name}: label {name!r} has no closed set"
                assert label in allowed[name], f"{sample.name}: {name}={label!r}"
            samples[sample.name, frozenset(sample.labels.items())] = sample.value
    return samples


def wsgi(app: Any, method: str, path: str, *, headers: dict[str, str] | None = None,
         body: bytes = b"") -> tuple[int, dict[str, str]]:
    """One request through the whole WSGI stack, with the method and path exactly as a server
    could pass them (any string of latin-1 characters, unchecked)."""
    environ = EnvironBuilder(path="/", method="POST", headers=headers, data=body).get_environ()
    environ["REQUEST_METHOD"], environ["PATH_INFO"] = method, path
    answer: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]],
                       exc_info: Any = None) -> Callable[[bytes], None]:
        answer["status"], answer["headers"] = status, dict(response_headers)
        return lambda data: None

    chunks = app(environ, start_response)
    try:
        b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    return int(answer["status"][:3]), answer["headers"]


def invented_methods(rng: random.Random, n: int) -> list[bytes]:
    """Method tokens no server knows: the issue's QWERTYA, QWERTYB..., random tokens of every
    length, lowercase and mixed-case ones, RFC 9110 token punctuation, WebDAV's, and bytes no
    token may hold (a control character, a space's neighbours, 8-bit)."""
    fixed = [b"QWERTYA", b"QWERTYB", b"get", b"post", b"Delete", b"qwerty", b"M-SEARCH",
             b"PROPFIND", b"TRACE", b"CONNECT", b"A!#$%&'*+-.^_`|~Z", b"X" * 20, b"Y" * 21,
             b"Z" * 200, b"W" * 4000, b"GE\x00T", b"GET\x7f", b"\xff\xfeGET", b"G\xc3\xa9T",
             b"\x01", b"[]", b'"QUOTED"']
    tokens = string.ascii_uppercase + string.ascii_lowercase + string.digits + "!#$%&'*+-.^_`|~"
    made = list(fixed)
    while len(made) < n:
        kind = rng.random()
        if kind < 0.5:
            suffix = "".join(rng.choices(string.ascii_uppercase, k=rng.randint(1, 8)))
            made.append(b"QWERTY" + suffix.encode())
        elif kind < 0.8:
            made.append("".join(rng.choices(tokens, k=rng.randint(1, 60))).encode())
        else:
            made.append(bytes(rng.choice([*range(0x21, 0x7f), *range(0x80, 0x100)])
                              for _ in range(rng.randint(1, 30))))
    return made


def http_series(samples: Samples) -> set[tuple[str, str, str]]:
    return {(dict(labels)["route"], dict(labels)["method"], dict(labels)["status"])
            for (name, labels) in samples if name == "vault_http_requests_total"}


def test_every_method_vault_serves_has_its_own_label(app: Any) -> None:
    served = set().union(*(rule.methods or set() for rule in app.url_map.iter_rules()))
    assert served <= HTTP_METHODS, served - HTTP_METHODS


# A page, an unknown page, API routes with and without a variable, an unknown API path.
FLOOD_PATHS = ("/", "/nowhere", "/api/v1/secrets", f"/api/v1/secrets/{UNKNOWN_ID}", "/healthz",
               "/api/v1/webhooks/standard", "/api/v1/nowhere", "/metrics")


def test_3000_invented_methods_add_no_series_and_count_as_other(app: Any) -> None:
    """The issue's attack in process: after one request of each method class on each path,
    3,000 more invented methods add no series, keep /metrics the same size to within its
    digits, and are every one counted, as "other"."""
    client = app.test_client()
    allowed = closed_sets(app)
    for path in FLOOD_PATHS:
        for method in (*sorted(HTTP_METHODS), "QWERTY"):
            wsgi(app, method, path)
    client.get("/metrics")
    before_text = client.get("/metrics").get_data(as_text=True)
    before = assert_closed(before_text, allowed)

    methods = [m.decode("latin-1") for m in invented_methods(random.Random(21), 3000)]
    statuses = set()
    for i, method in enumerate(methods):
        status, headers = wsgi(app, method, FLOOD_PATHS[i % len(FLOOD_PATHS)])
        assert "X-Request-Id" in headers
        statuses.add(status)
    after_text = client.get("/metrics").get_data(as_text=True)
    after = assert_closed(after_text, allowed)

    assert http_series(after) == http_series(before)
    assert set(after) == set(before)
    # Only values changed: a few more digits in each count and sum, nowhere near the 240 KB
    # the same flood once added.
    assert len(after_text) < len(before_text) + 4096, (len(before_text), len(after_text))
    other = sum(1 for m in methods if m.upper() not in HTTP_METHODS)
    assert other > 2900
    assert total(after, "vault_http_requests_total", method=OTHER) - \
        total(before, "vault_http_requests_total", method=OTHER) == other
    assert total(after, "vault_http_requests_total") - \
        total(before, "vault_http_requests_total") == len(methods) + 1  # and the first scrape
    assert statuses <= {200, 204, 400, 401, 404, 405, 413, 415}, statuses
    # The plumbing's cache holds one child per exported series, no more.
    plumbing = app.wsgi_app
    assert set(plumbing._requests) == http_series(after)
    assert set(plumbing._latency) == {dict(labels)["route"] for (name, labels) in after
                                      if name == "vault_http_request_duration_seconds_count"}


def test_a_label_outside_its_set_is_refused_not_added() -> None:
    metrics = Metrics()
    metrics.webhook("standard", "applied")
    with pytest.raises(KeyError):
        metrics.webhook("QWERTY", "applied")
    with pytest.raises(KeyError):
        metrics.webhook("standard", "QWERTY")
    with pytest.raises(KeyError):
        metrics.secret_event("QWERTY")
    text = metrics.render()[0].decode()
    assert "QWERTY" not in text
    assert value(assert_closed(text, {"source": set(WEBHOOK_SOURCES),
                                      "result": set(WEBHOOK_RESULTS),
                                      "event": set(SECRET_EVENTS)}),
                 "vault_webhooks_total", source="standard", result="applied") == 1


# Values a client chooses: printable latin-1 (what a server hands to WSGI), with no line breaks.
_TEXT = st.text(st.characters(min_codepoint=0x20, max_codepoint=0xff, exclude_characters="\x7f"),
                max_size=40)
_METHOD = st.one_of(st.sampled_from(sorted(HTTP_METHODS)),
                    st.sampled_from(["get", "Post", "QWERTYA", "PROPFIND", "TRACE", "CONNECT"]),
                    st.text(string.ascii_letters + "!#$%&'*+-.^_`|~", min_size=1, max_size=30),
                    st.binary(max_size=60).map(lambda b: b.decode("latin-1")))
_HS_EVENTS = ["convo.assigned", "convo.deleted", "convo.merged", "convo.status", "convo.moved",
              "convo.created", "helpscout.test"]
_STD_TYPES = ["ticket.closed", "ticket.assigned", "ticket.reopened", "ticket.deleted",
              "ticket.unknown"]


@st.composite
def _any_request(draw: Any, rules: list[str]) -> tuple[str, str, dict[str, str], bytes]:
    """A request of any method to any of the app's routes (its variables filled with anything)
    or to no route at all, with webhook headers, a credential and a body of the client's
    choosing."""
    rule = draw(st.sampled_from([*rules, "/<nowhere>", "/api/v1/<nowhere>"]))
    path = re.sub(r"<[^>]*>", lambda _: draw(_TEXT.filter(lambda t: "/" not in t)) or "x", rule)
    names = draw(st.lists(st.sampled_from(["X-HelpScout-Event", "X-HelpScout-Signature",
                                           "webhook-id", "webhook-timestamp",
                                           "webhook-signature", "Authorization",
                                           "X-Manage-Token", "X-CSRF-Token", "Content-Type"]),
                          unique=True, max_size=4))
    headers = {name: draw(_TEXT) for name in names}
    body = draw(st.one_of(st.binary(max_size=200),
                          _TEXT.map(lambda t: json.dumps({"type": t, "data": {"ticket": t}})
                                    .encode())))
    return draw(_METHOD), path, headers, body


def _signed_standard(msg_id: str, body: dict[str, Any], key: bytes = STANDARD_KEY
                     ) -> tuple[str, str, dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    stamp = str(int(time.time()))
    signature = base64.b64encode(hmac.new(key, f"{msg_id}.{stamp}.".encode() + raw,
                                          hashlib.sha256).digest()).decode()
    return "POST", "/api/v1/webhooks/standard", {
        "Content-Type": "application/json", "webhook-id": msg_id, "webhook-timestamp": stamp,
        "webhook-signature": "v1," + signature}, raw


def _signed_helpscout(event: str, body: dict[str, Any], key: bytes = b"hs-secret-one"
                      ) -> tuple[str, str, dict[str, str], bytes]:
    raw = json.dumps(body).encode()
    signature = base64.b64encode(hmac.new(key, raw, hashlib.sha1).digest()).decode()
    return "POST", "/api/v1/webhooks/helpscout", {
        "Content-Type": "application/json", "X-HelpScout-Event": event,
        "X-HelpScout-Signature": signature}, raw


_TICKET = st.sampled_from(["F-1", "F-2", "880001", "bad ticket", ""])
_KEY = st.sampled_from([b"", b"forged"])  # b"": the real key
# Webhook deliveries signed with the real key (replayed ones too: msg ids repeat) or a forged one.
_SIGNED = st.one_of(
    st.builds(lambda i, kind, ticket, key: _signed_standard(f"msg_{i}", {
        "type": kind, "timestamp": "2026-01-01T00:00:00Z", "data": {"ticket": ticket}},
        key or STANDARD_KEY),
        st.integers(0, 20), st.sampled_from(_STD_TYPES), _TICKET, _KEY),
    st.builds(lambda event, number, status, key: _signed_helpscout(event, {
        "id": number, "number": number, "status": status}, key or b"hs-secret-one"),
        st.sampled_from(_HS_EVENTS), st.integers(880_000, 880_005),
        st.sampled_from(["active", "closed", "pending", "spam", "x"]), _KEY))


def test_no_request_of_any_kind_puts_a_label_outside_its_set(app: Any) -> None:
    """Property: over requests of any method, path, headers and body, signed webhook
    deliveries of every event, and real shares and deletions (every label source: route,
    method, status, webhook source and result, secret event), each scrape of /metrics holds
    labels from their closed sets only, every request is counted once, and the plumbing caches
    one child per series."""
    rules = sorted({rule.rule for rule in app.url_map.iter_rules()})
    allowed = closed_sets(app)
    sent = [0]

    def share_and_delete(ticket: str, delete: bool) -> None:
        envelope, _ = sealed(ticket)
        status, _ = wsgi(app, "POST", "/api/v1/secrets", headers={
            "Content-Type": "application/json"}, body=json.dumps({
                "ticket": ticket, "kind": "wordpress", "envelope": envelope}).encode())
        sent[0] += 1
        assert status in {201, 409, 429}
        if delete and status == 201:
            sent[0] += 1  # the id is not known here: an unknown one, refused
            wsgi(app, "DELETE", f"/api/v1/secrets/{UNKNOWN_ID}",
                 headers={"X-Manage-Token": "x"})

    @given(st.one_of(_any_request(rules), _SIGNED,
                     st.tuples(st.sampled_from(["F-1", "F-2"]), st.booleans())))
    @settings(max_examples=200, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    def run(request: tuple[Any, ...]) -> None:
        if len(request) == 2:
            share_and_delete(*request)
        else:
            method, path, headers, body = request
            wsgi(app, method, path, headers=headers, body=body)
            sent[0] += 1
        assert_closed(app.extensions["vault"].metrics.registry, allowed)

    run()
    samples = assert_closed(app.test_client().get("/metrics").get_data(as_text=True), allowed)
    assert total(samples, "vault_http_requests_total") == sent[0]  # the scrape counts after
    assert {dict(labels)["result"] for (name, labels), v in samples.items()
            if name == "vault_webhooks_total" and v} >= {"applied", "unauthorized"}
    assert value(samples, "vault_secrets_total", event="created") >= 1
    # The plumbing's cache holds one child per exported series (the scrape's own included).
    assert set(app.wsgi_app._requests) == \
        http_series(assert_closed(app.extensions["vault"].metrics.registry, allowed))


def raw_request(port: int, method: bytes, path: str) -> tuple[int, dict[str, str]]:
    """One request on a connection of its own, its method sent byte for byte (no client library
    checks it). (status, lower-case headers), or (0, {}) when the server closed without an
    answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(method + b" " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Connection: close\r\n\r\n")
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    if not data:
        return 0, {}
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(":", 1) for line in head[1:])
    return int(head[0].split()[1]), {k.lower(): v.strip() for k, v in headers.items()}


@pytest.mark.slow
def test_a_served_vault_counts_2000_invented_methods_in_the_series_it_had(
        redis_server: RedisServer, tmp_path: Path) -> None:
    """The issue's attack on `vault serve` (two workers, their metrics summed from the shared
    folder): invented methods of every kind, sent byte for byte. What gunicorn refuses itself
    never reaches vault; what reaches it counts as "other", in series that existed before."""
    env = gunicorn_env(redis_server.url)
    env["TMPDIR"] = str(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "vault.cli", "serve", "--bind",
                             f"127.0.0.1:{port}", "--workers", "2", "--threads", "2"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
    server = Server(url=f"http://127.0.0.1:{port}", process=proc, log_path=tmp_path / "serve.log")
    paths = ("/", "/nowhere", "/api/v1/secrets", "/healthz", "/api/v1/nowhere")
    try:
        follow_output(proc, b"Booting worker", what="vault serve", log_path=server.log_path)
        allowed = closed_sets(create_app(base_config(redis_server.url)))
        for path in paths:
            for known in (*sorted(HTTP_METHODS), "QWERTY"):
                assert "x-request-id" in raw_request(port, known.encode(), path)[1]
        call("GET", server.url + "/metrics")
        before_text = call("GET", server.url + "/metrics").text
        before = assert_closed(before_text, allowed)

        methods = invented_methods(random.Random(2021), 2000)
        answers = [raw_request(port, method, paths[i % len(paths)])
                   for i, method in enumerate(methods)]
        after_text = call("GET", server.url + "/metrics").text
        after = assert_closed(after_text, allowed)
    finally:
        stop_server(server)

    assert set(after) == set(before)
    assert len(after_text) < len(before_text) + 4096, (len(before_text), len(after_text))
    # vault answered what carries its request id; gunicorn refused the rest (400) itself.
    reached = [m for m, (_, headers) in zip(methods, answers, strict=True)
               if "x-request-id" in headers]
    refused = {status for _, (status, headers) in zip(methods, answers, strict=True)
               if "x-request-id" not in headers}
    assert len(reached) > 1000 and refused <= {0, 400}, refused
    assert total(after, "vault_http_requests_total") - \
        total(before, "vault_http_requests_total") == len(reached) + 1  # and the first scrape
    assert total(after, "vault_http_requests_total", method=OTHER) - \
        total(before, "vault_http_requests_total", method=OTHER) == \
        sum(m.decode("latin-1").upper() not in HTTP_METHODS for m in reached)
