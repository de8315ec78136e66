"""`vault helpscout replay FILE` against a real gunicorn: a recorded run of Help Scout deliveries
(tests/data/helpscout-deliveries.jsonl) replayed step by step with the state checked after each
step, then whole and again (duplicates), and the ways a replay is refused or stops."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from harness import ROOT, Server, base_config, free_port, gunicorn_env, start_gunicorn, stop_server
from helpers import sealed, ticket_record

from vault import create_app
from vault.helpdesks.helpscout import BadRecording, recorded_delivery

pytestmark = pytest.mark.slow  # real gunicorn workers

DATA = Path(__file__).resolve().parent / "data" / "helpscout-deliveries.jsonl"
RECORDED = DATA.read_text(encoding="utf-8").splitlines()
SECRETS = "hs-secret-one,hs-secret-two"  # base_config's helpscout_secret
ALICE, ALICE_HS_ID = "alice.martin@example.com", "4711"
A, B = "1847", "1852"  # the two conversations' numbers: the tickets
# The file's deliveries by line number (line 1 is a comment).
TEST, A_ASSIGNED, A_PENDING, A_CLOSED, A_ACTIVE, A_MERGED, B_ASSIGNED, B_DELETED = range(2, 10)
ALL = range(TEST, B_DELETED + 1)


class Run:
    """A finished `vault helpscout replay`: exit code, stdout parsed as JSON lines, stderr."""

    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.code = done.returncode
        self.stdout, self.stderr = done.stdout, done.stderr
        self.lines: list[dict[str, Any]] = [json.loads(line) for line in done.stdout.splitlines()]

    @property
    def results(self) -> list[dict[str, Any]]:
        return [line["result"] for line in self.lines]


Replay = Callable[..., Run]


def raw_body(line: str) -> bytes:
    """The bytes a delivery line stands for: a string body as is, an object as compact JSON."""
    body = json.loads(line)["body"]
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def bodies(text: str) -> Iterator[bytes]:
    """The bytes of every well-formed delivery line of `text`."""
    for line in text.splitlines():
        try:
            yield raw_body(line)
        except (ValueError, TypeError, KeyError):
            continue


def signature(secret: str, raw: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()).decode()


def only(*numbers: int) -> str:
    """The recorded file with only these lines kept; the others blank, so numbers stay put."""
    return "".join((text if n in numbers else "") + "\n"
                   for n, text in enumerate(RECORDED, 1))


@pytest.fixture(scope="module")
def server(redis_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start_gunicorn(gunicorn_env(redis_server.url), tmp_path_factory.mktemp("replay"),
                         workers=2, threads=2)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def local(redis_server: Any) -> Iterator[Any]:
    """An app on the server's Redis, to set up the agent and read the state without HTTP."""
    ext = create_app(base_config(redis_server.url, cheap_passwords=True)).extensions["vault"]
    yield ext
    ext.close()


@pytest.fixture
def store(redis_client: redis.Redis, local: Any) -> Any:
    """An empty store (redis_client flushes it) holding one agent: Alice, not yet linked to her
    Help Scout user."""
    local.accounts.add_agent(ALICE, "correct horse battery staple", name="Alice Martin")
    return local


@pytest.fixture
def replay(tmp_path: Path) -> Replay:
    """Run the real CLI in a process of its own: `replay(server_url, text)` writes `text` to a
    file (or, with stdin=True, pipes it as `-`). Every run is checked for leaked secrets or
    signatures and for tracebacks."""
    runs = itertools.count()

    def run(url: str, text: str, *, stdin: bool = False, **env: str | None) -> Run:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
        environ.update(VAULT_URL=url, VAULT_HELPSCOUT_SECRET=SECRETS)
        for name, value in env.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
        path = tmp_path / f"deliveries-{next(runs)}.jsonl"
        if not stdin:
            path.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "vault.cli", "helpscout", "replay", "-" if stdin else str(path)],
            input=text if stdin else None, env=environ, cwd=str(ROOT), capture_output=True,
            text=True, encoding="utf-8", timeout=120, check=False)
        shown = done.stdout + done.stderr
        assert "Traceback" not in shown
        secrets_ = {s.strip() for s in (SECRETS + "," + environ.get("VAULT_HELPSCOUT_SECRET", ""))
                    .split(",") if s.strip()}
        for secret in secrets_:
            assert secret not in shown
            for raw in bodies(text):
                assert signature(secret, raw) not in shown
        return Run(done)
    return run


def submit(url: str, ticket: str) -> requests.Response:
    """What the customer's browser does: seal credentials for the ticket and post them."""
    envelope, _ = sealed(ticket)
    return requests.post(f"{url}/api/v1/secrets", timeout=10,
                         json={"ticket": ticket, "kind": "wordpress", "envelope": envelope})


def state(url: str, secret_id: str) -> tuple[int, str | None]:
    rv = requests.get(f"{url}/api/v1/secrets/{secret_id}", timeout=10)
    return rv.status_code, rv.json().get("reason")


def post_signed(url: str, event: str, raw: bytes, secret: str) -> dict[str, Any]:
    rv = requests.post(f"{url}/api/v1/webhooks/helpscout", data=raw, timeout=10, headers={
        "Content-Type": "application/json", "X-HelpScout-Event": event,
        "X-HelpScout-Signature": signature(secret, raw)})
    assert rv.status_code == 200, rv.text
    answer: dict[str, Any] = rv.json()
    return answer


# -- a recorded line, as the Help Scout module reads and signs it ----------------------------------

def test_a_recorded_line_is_framed_and_signed_as_help_scout_sends_it() -> None:
    """The Help Scout module, without a server: each recorded line's bytes, and headers whose
    signature is HMAC-SHA1 over exactly those bytes (computed here independently)."""
    assert recorded_delivery(1, RECORDED[0].encode()) is None  # the comment
    assert recorded_delivery(3, b"  \n") is None
    for number in ALL:
        line = RECORDED[number - 1]
        delivery = recorded_delivery(number, (line + "\n").encode())
        assert delivery is not None
        item = json.loads(line)
        named = {k.lower(): v for k, v in item.get("headers", {}).items()}
        event = item.get("event") or named["x-helpscout-event"]
        assert (delivery.line, delivery.event, delivery.raw) == (number, event, raw_body(line))
        assert delivery.headers("hs-secret-one") == {
            "Content-Type": "application/json", "X-HelpScout-Event": delivery.event,
            "X-HelpScout-Signature": signature("hs-secret-one", delivery.raw)}
    first = recorded_delivery(1, "\ufeff".encode() + RECORDED[TEST - 1].encode())
    assert first is not None and first.event == "helpscout.test"  # a BOM on line 1 is no byte
    with pytest.raises(BadRecording, match="not UTF-8"):
        recorded_delivery(2, b'{"event": "convo.assigned", "body": "\xff"}')
    with pytest.raises(BadRecording, match="column 2") as bad:
        recorded_delivery(2, b'{secret-looking text}')
    assert "secret" not in str(bad.value)


# -- the recorded run, step by step ---------------------------------------------------------------

def test_the_recorded_run_step_by_step_assigns_purges_reopens_and_deletes(
        server: Server, store: Any, replay: Replay) -> None:
    url = server.url

    # Help Scout's test delivery (piped on stdin): answered, nothing changes.
    step = replay(url, only(TEST), stdin=True)
    assert step.code == 0, step.stderr
    assert step.lines == [{"line": TEST, "event": "helpscout.test", "status": 200,
                           "result": {"action": "none", "event": "helpscout.test"}}]
    assert step.stderr == "replayed 1 delivery: 1 accepted\n"
    assert ticket_record(store.store, A) == {}

    # Conversation 1847 assigned to Alice: she becomes the assignee, her Help Scout id is learnt.
    step = replay(url, only(A_ASSIGNED))
    assert step.code == 0, step.stderr
    assert step.lines == [{"line": A_ASSIGNED, "event": "convo.assigned", "status": 200,
                           "result": {"event": "convo.assigned", "action": "assigned",
                                      "ticket": A, "assignee": ALICE}}]
    assert ticket_record(store.store, A)["assignee"] == ALICE
    assert store.accounts.agent_for_helpscout(ALICE_HS_ID) == ALICE

    # The customer sends credentials for ticket 1847.
    first = submit(url, A)
    assert first.status_code == 201
    assert state(url, first.json()["id"]) == (200, None)

    # Pending: the ticket stays open (nothing to reopen), the secret keeps waiting.
    step = replay(url, only(A_PENDING))
    assert step.code == 0, step.stderr
    assert step.results == [{"event": "convo.status", "action": "none", "ticket": A}]
    assert state(url, first.json()["id"]) == (200, None)
    assert ticket_record(store.store, A).get("closed") != "1"

    # Closed: the secret is purged and the ticket takes no new one.
    step = replay(url, only(A_CLOSED))
    assert step.code == 0, step.stderr
    assert step.results == [{"event": "convo.status", "action": "purged", "ticket": A,
                             "purged": 1}]
    assert state(url, first.json()["id"]) == (410, "purged")
    refused = submit(url, A)
    assert refused.status_code == 409 and refused.json()["reason"] == "ticket-closed"

    # Active again (a delivery recorded with its headers): the ticket accepts submissions.
    step = replay(url, only(A_ACTIVE))
    assert step.code == 0, step.stderr
    assert step.lines == [{"line": A_ACTIVE, "event": "convo.status", "status": 200,
                           "result": {"event": "convo.status", "action": "reopened",
                                      "ticket": A}}]
    second = submit(url, A)
    assert second.status_code == 201
    assert state(url, second.json()["id"]) == (200, None)

    # Merged into another conversation: purged.
    step = replay(url, only(A_MERGED))
    assert step.code == 0, step.stderr
    assert step.results == [{"event": "convo.merged", "action": "purged", "ticket": A,
                             "purged": 1}]
    assert state(url, second.json()["id"]) == (410, "purged")

    # Another conversation, recorded as raw bytes, assigned to Alice; its customer submits.
    step = replay(url, only(B_ASSIGNED))
    assert step.code == 0, step.stderr
    assert step.results == [{"event": "convo.assigned", "action": "assigned", "ticket": B,
                             "assignee": ALICE}]
    assert ticket_record(store.store, B)["assignee"] == ALICE
    third = submit(url, B)
    assert third.status_code == 201

    # Deleted: Help Scout sends only the id; vault knows it as ticket 1852 and purges it.
    step = replay(url, only(B_DELETED))
    assert step.code == 0, step.stderr
    assert step.lines == [{"line": B_DELETED, "event": "convo.deleted", "status": 200,
                           "result": {"event": "convo.deleted", "action": "purged",
                                      "ticket": B, "purged": 1}}]
    assert state(url, third.json()["id"]) == (410, "purged")
    assert ticket_record(store.store, B)["closed"] == "1"
    assert ticket_record(store.store, A)["assignee"] == ALICE


def test_the_whole_file_at_once_then_again_answers_every_delivery_as_a_duplicate(
        server: Server, store: Any, replay: Replay) -> None:
    text = DATA.read_text(encoding="utf-8")
    first = replay(server.url, text)
    assert first.code == 0, first.stderr
    assert [(line["line"], line["event"], line["status"]) for line in first.lines] == [
        (TEST, "helpscout.test", 200), (A_ASSIGNED, "convo.assigned", 200),
        (A_PENDING, "convo.status", 200), (A_CLOSED, "convo.status", 200),
        (A_ACTIVE, "convo.status", 200), (A_MERGED, "convo.merged", 200),
        (B_ASSIGNED, "convo.assigned", 200), (B_DELETED, "convo.deleted", 200)]
    assert [r["action"] for r in first.results] == [
        "none", "assigned", "none", "purged", "reopened", "purged", "assigned", "purged"]
    assert not any("duplicate" in r for r in first.results)
    assert first.stderr == "replayed 8 deliveries: 8 accepted\n"

    # Give a second application something to undo: ticket 1852 reopened, with a secret waiting.
    store.vault.reopen(B, actor="test")
    waiting = submit(server.url, B)
    assert waiting.status_code == 201
    before = ([ticket_record(store.store, t) for t in (A, B)],
              [e.stream_id for e in store.store.audit_tail(1000)])

    again = replay(server.url, text)
    assert again.code == 0, again.stderr
    assert again.results == [{**r, "duplicate": True} for r in first.results]
    assert again.stderr == ("replayed 8 deliveries: 8 accepted (8 as duplicates, not acted on "
                            "again)\n")
    assert state(server.url, waiting.json()["id"]) == (200, None)
    assert ([ticket_record(store.store, t) for t in (A, B)],
            [e.stream_id for e in store.store.audit_tail(1000)]) == before


def test_the_recorded_bytes_are_what_is_sent(server: Server, store: Any, replay: Replay) -> None:
    run = replay(server.url, only(TEST, B_ASSIGNED))
    assert run.code == 0, run.stderr
    raw_line, object_line = RECORDED[B_ASSIGNED - 1], RECORDED[TEST - 1]
    assert isinstance(json.loads(raw_line)["body"], str)  # kept as recorded, spaces and all
    assert "é" in json.loads(raw_line)["body"]
    # vault answers a repeat of the same event and bytes as a duplicate: posting those bytes
    # (signed with the other configured secret) shows they are exactly what the replay sent.
    for event, raw in (("convo.assigned", raw_body(raw_line)),
                       ("helpscout.test", raw_body(object_line))):
        assert post_signed(server.url, event, raw, "hs-secret-two")["duplicate"] is True
    # The same conversation in other bytes is another delivery.
    respaced = json.dumps(json.loads(raw_body(raw_line)), separators=(",", ":")).encode()
    assert "duplicate" not in post_signed(server.url, "convo.assigned", respaced, "hs-secret-one")


# -- refusals and failures ------------------------------------------------------------------------

@pytest.mark.parametrize(("bad", "message"), [
    ('{"event": "convo.status", "body": {"id": 2391938111, "number": 1847', "not valid JSON"),
    ('{"body": {"id": 2391938111, "number": 1847, "status": "closed"}}', '"event"'),
    ('{"event": "convo status", "body": {"id": 2391938111}}', '"event"'),
    ('{"event": "convo.status", "headers": {"X-HelpScout-Event": "convo.deleted"}, '
     '"body": {"id": 2391938111}}', "disagree"),
    ('{"event": "convo.status", "body": [2391938111]}', '"body"'),
    ('{"event": "convo.status"}', '"body"'),
    ('["convo.status", {"id": 2391938111}]', "JSON object"),
    ('{"event": "convo.status", "headers": ["X-HelpScout-Event"], "body": {}}', '"headers"'),
], ids=["broken-json", "no-event", "bad-event", "two-events", "body-a-list", "no-body",
        "not-an-object", "headers-a-list"])
def test_a_bad_line_stops_the_replay_before_anything_is_sent(
        server: Server, store: Any, replay: Replay, bad: str, message: str) -> None:
    good = only(TEST, A_ASSIGNED, A_PENDING)
    run = replay(server.url, good + bad + "\n")
    assert run.code == 2
    assert run.stdout == ""
    assert run.stderr.startswith(f"Error: line {len(RECORDED) + 1}: ")
    assert message in run.stderr and len(run.stderr.splitlines()) == 1
    assert ticket_record(store.store, A) == {}
    assert store.accounts.agent_for_helpscout(ALICE_HS_ID) is None
    # Nothing reached vault: the good lines, replayed now, are new to it.
    fixed = replay(server.url, good)
    assert fixed.code == 0, fixed.stderr
    assert [r["action"] for r in fixed.results] == ["none", "assigned", "none"]
    assert not any("duplicate" in r for r in fixed.results)


def test_a_file_without_deliveries_is_refused(server: Server, replay: Replay) -> None:
    run = replay(server.url, "# nothing recorded yet\n\n   \n")
    assert run.code == 2 and run.stdout == ""
    assert run.stderr == "Error: the file holds no deliveries (only blank lines or comments)\n"


def test_a_wrong_secret_is_refused_delivery_by_delivery_and_exits_1(
        server: Server, store: Any, replay: Replay) -> None:
    # The first secret of the list signs; the right one, second, is not used.
    run = replay(server.url, DATA.read_text(encoding="utf-8"),
                 VAULT_HELPSCOUT_SECRET="not-the-webhook-secret,hs-secret-one")
    assert run.code == 1
    assert [line["line"] for line in run.lines] == list(ALL)
    for line in run.lines:
        assert line["status"] == 401 and "result" not in line
        assert line["error"] == ("The X-HelpScout-Signature does not match. "
                                 "Check VAULT_HELPSCOUT_SECRET.")
    assert run.stderr == "replayed 8 deliveries: 0 accepted, 8 refused\n"
    assert ticket_record(store.store, A) == {} and ticket_record(store.store, B) == {}
    assert store.accounts.agent_for_helpscout(ALICE_HS_ID) is None


def test_a_refused_delivery_does_not_stop_the_ones_after_it(
        server: Server, store: Any, replay: Replay) -> None:
    broken = json.dumps({"event": "convo.status", "body": "{\"id\": 2391938111, \"number\": "})
    run = replay(server.url, broken + "\n" + RECORDED[A_ASSIGNED - 1] + "\n")
    assert run.code == 1
    assert [(line["line"], line["status"]) for line in run.lines] == [(1, 400), (2, 200)]
    assert "error" in run.lines[0] and "result" not in run.lines[0]
    assert run.lines[1]["result"]["action"] == "assigned"
    assert run.stderr == "replayed 2 deliveries: 1 accepted, 1 refused\n"
    assert ticket_record(store.store, A)["assignee"] == ALICE


def test_a_rate_limited_delivery_is_reported_with_retry_after_and_not_retried(
        redis_server: Any, store: Any, replay: Replay, tmp_path: Path) -> None:
    limited = start_gunicorn(gunicorn_env(redis_server.url, ratelimit_webhook="2/minute"),
                             tmp_path, workers=1, threads=2)
    try:
        run = replay(limited.url, only(TEST, A_ASSIGNED, A_PENDING, A_CLOSED))
    finally:
        stop_server(limited)
    assert run.code == 1
    assert [line["status"] for line in run.lines] == [200, 200, 429, 429]
    for line in run.lines[2:]:
        assert "result" not in line and "(Retry-After: " in line["error"]
    assert run.stderr == "replayed 4 deliveries: 2 accepted, 2 refused\n"
    record = ticket_record(store.store, A)
    assert record["assignee"] == ALICE and record.get("closed") != "1"


def test_without_a_secret_nothing_is_sent(replay: Replay) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens: a send would fail otherwise
    for value in (None, " , "):
        run = replay(url, only(TEST), VAULT_HELPSCOUT_SECRET=value)
        assert run.code == 2 and run.stdout == ""
        assert run.stderr.startswith("Error: set VAULT_HELPSCOUT_SECRET")
        assert len(run.stderr.splitlines()) == 1


def test_an_unreachable_vault_is_one_error_line_and_exit_1(replay: Replay) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    run = replay(url, DATA.read_text(encoding="utf-8"))
    assert run.code == 1 and run.stdout == ""
    assert run.stderr.startswith(f"Error: cannot reach vault at {url}: ")
    assert len(run.stderr.splitlines()) == 1


def test_a_bad_vault_url_exits_2(replay: Replay) -> None:
    run = replay("ftp://vault.example.com", only(TEST))
    assert run.code == 2 and run.stdout == ""
    assert run.stderr.startswith("Error: VAULT_URL must be an http:// or https:// URL")
