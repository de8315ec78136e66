"""The `vault` command line against a real Redis: accounts, tokens, keys, audit, errors."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner, Result
from harness import KEYS, RedisServer, free_port

from vault.cli import cli
from vault.cli.admin import _follow_global
from vault.crypto.keyring import KeyRing
from vault.crypto.tokens import AGENT_TOKEN, API_KEY, is_token

PASSWORD = "a long enough password"
EMAIL = "rocketeer@example.com"

Run = Callable[..., Result]


def store_env(redis_url: str, **overrides: str | None) -> dict[str, str | None]:
    """The environment of a production store command; every other VAULT_* variable unset."""
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("VAULT_")}
    env.update(VAULT_REDIS_URL=redis_url, VAULT_ENV="production",
               VAULT_SECRET_KEY="test-secret-key-" + "x" * 32, VAULT_KEYS=KEYS)
    env.update(overrides)
    return env


@pytest.fixture
def run(redis_client: Any, redis_server: RedisServer) -> Run:
    """Invoke `vault ...` in-process; stdout and stderr stay apart (result.stdout/.stderr)."""
    def invoke(*args: str, input: str | None = None, **env: str | None) -> Result:
        return CliRunner().invoke(cli, list(args), input=input,
                                  env=store_env(redis_server.url, **env))
    return invoke


def no_traceback(result: Result) -> bool:
    return "Traceback" not in result.output and not (
        result.exception and not isinstance(result.exception, SystemExit))


def add_agent(run: Run, email: str = EMAIL, *extra: str) -> None:
    result = run("agent", "add", email, "--password-stdin", *extra, input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output


def new_token(run: Run, email: str = EMAIL) -> str:
    result = run("token", "create", email)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


# -- keys generate --------------------------------------------------------------------------------

def test_keys_generate_needs_no_configuration() -> None:
    empty = {name: None for name in os.environ if name.startswith("VAULT_")}
    result = CliRunner().invoke(cli, ["keys", "generate"], env=empty)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    ring = KeyRing.from_string(lines[0])
    assert ring.ids == (lines[0].split(":")[0],)
    assert result.stderr == ""


def test_keys_generate_prints_a_new_key_each_time() -> None:
    first = CliRunner().invoke(cli, ["keys", "generate"]).stdout
    second = CliRunner().invoke(cli, ["keys", "generate"]).stdout
    assert first != second


# -- agents -----------------------------------------------------------------------------------------

def test_agent_add_with_password_stdin_then_the_agent_can_log_in(run: Run, ext: Any) -> None:
    result = run("agent", "add", EMAIL, "--name", "Rocky", "--password-stdin",
                 input=PASSWORD + "\nignored second line\n")
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert PASSWORD not in result.output
    _, who = ext.accounts.login(EMAIL, PASSWORD)
    assert who.email == EMAIL and who.name == "Rocky" and who.role == "agent"


def test_password_stdin_drops_only_the_newline(run: Run, ext: Any) -> None:
    spaced = "  spaces around it  "
    result = run("agent", "add", EMAIL, "--password-stdin", input=spaced + "\r\n")
    assert result.exit_code == 0, result.output
    ext.accounts.login(EMAIL, spaced)


def test_agent_add_prompts_twice_for_the_password(run: Run, ext: Any) -> None:
    result = run("agent", "add", EMAIL, input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert result.stderr.count("assword") >= 2  # both prompts, on stderr
    assert PASSWORD not in result.output  # hidden input is not echoed
    ext.accounts.login(EMAIL, PASSWORD)


def test_agent_add_with_a_mismatched_confirmation_fails(run: Run, ext: Any) -> None:
    result = run("agent", "add", EMAIL, input=f"{PASSWORD}\nsomething else entirely\n")
    assert result.exit_code == 1
    assert "do not match" in result.stderr
    assert ext.store.get_agent(EMAIL) is None
    assert no_traceback(result)


def test_agent_add_twice_fails_with_a_clear_message(run: Run) -> None:
    add_agent(run)
    result = run("agent", "add", EMAIL.upper(), "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: an agent with this e-mail already exists"


def test_agent_add_refuses_a_short_password(run: Run, ext: Any) -> None:
    result = run("agent", "add", EMAIL, "--password-stdin", input="short\n")
    assert result.exit_code == 1
    assert "password" in result.stderr and "short" not in result.stderr
    assert ext.store.get_agent(EMAIL) is None


def test_agent_add_refuses_a_bad_email(run: Run) -> None:
    result = run("agent", "add", "not-an-email", "--password-stdin", input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert "email" in result.stderr
    assert no_traceback(result)


def test_agent_list_prints_one_tab_separated_line_per_agent(run: Run) -> None:
    add_agent(run, "b@example.com", "--name", "Bea", "--helpscout-id", "42")
    add_agent(run, "a@example.com", "--admin")
    run("agent", "disable", "b@example.com")
    result = run("agent", "list")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "a@example.com\ta@example.com\tadmin\tenabled\t",
        "b@example.com\tBea\tagent\tdisabled\t42",
    ]


def test_store_commands_that_check_no_password_hash_none(run: Run,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22: the dummy hash (for logins of unknown e-mails) is made by the first login,
    not by every command: `agent list` hashes nothing, `agent add` only the new password."""
    made: list[str] = []
    real = PasswordHasher.hash
    monkeypatch.setattr(PasswordHasher, "hash", lambda self, password, **kw: made.append(
        real(self, password, **kw)) or made[-1])
    add_agent(run)
    assert len(made) == 1
    for command in (["agent", "list"], ["token", "create", EMAIL], ["apikey", "list"],
                    ["agent", "disable", EMAIL]):
        assert run(*command).exit_code == 0
    assert len(made) == 1


def test_agent_edit_changes_name_role_and_helpscout_id(run: Run, ext: Any) -> None:
    add_agent(run)
    result = run("agent", "edit", EMAIL, "--name", "Rocky", "--admin", "--helpscout-id", "7")
    assert result.exit_code == 0, result.output
    assert ext.accounts.get_agent(EMAIL) == {"email": EMAIL, "name": "Rocky", "role": "admin",
                                             "disabled": False, "helpscout_id": "7"}
    assert run("agent", "edit", EMAIL, "--no-admin").exit_code == 0
    assert ext.accounts.get_agent(EMAIL)["role"] == "agent"
    assert ext.accounts.agent_for_helpscout("7") == EMAIL


def test_agent_edit_without_a_change_is_a_usage_error(run: Run) -> None:
    add_agent(run)
    result = run("agent", "edit", EMAIL)
    assert result.exit_code == 2
    assert "nothing to change" in result.stderr


@pytest.mark.parametrize("command", [
    ["agent", "edit", "nobody@example.com", "--name", "X"],
    ["agent", "disable", "nobody@example.com"],
    ["agent", "enable", "nobody@example.com"],
    ["agent", "remove", "nobody@example.com"],
    ["agent", "reset-2fa", "nobody@example.com"],
    ["agent", "passwd", "nobody@example.com", "--password-stdin"],
    ["token", "create", "nobody@example.com"],
    ["token", "list", "nobody@example.com"],
    ["token", "revoke", "tok_000000000000"],
    ["apikey", "revoke", "nothing"],
])
def test_unknown_names_fail_with_one_line(run: Run, command: list[str]) -> None:
    result = run(*command, input=PASSWORD + "\n")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: No such") or result.stderr.startswith(
        "Error: no such")
    assert len(result.stderr.splitlines()) == 1
    assert no_traceback(result)


def test_disable_ends_the_agents_tokens_and_enable_lets_them_log_in_again(
        run: Run, ext: Any) -> None:
    add_agent(run)
    token = new_token(run)
    assert ext.accounts.authenticate_bearer(token) is not None
    result = run("agent", "disable", EMAIL)
    assert result.exit_code == 0, result.output
    assert ext.accounts.authenticate_bearer(token) is None
    with pytest.raises(Exception, match="Wrong e-mail or password"):
        ext.accounts.login(EMAIL, PASSWORD)
    assert run("token", "create", EMAIL).exit_code == 1  # a disabled agent gets no token

    assert run("agent", "enable", EMAIL).exit_code == 0
    ext.accounts.login(EMAIL, PASSWORD)
    assert ext.accounts.authenticate_bearer(token) is None  # old tokens stay dead


def test_remove_deletes_the_agent_and_their_tokens(run: Run, ext: Any) -> None:
    add_agent(run)
    token = new_token(run)
    result = run("agent", "remove", EMAIL)
    assert result.exit_code == 0, result.output
    assert ext.store.get_agent(EMAIL) is None
    assert ext.accounts.authenticate_bearer(token) is None
    assert run("agent", "list").stdout == ""


def test_passwd_changes_the_password_and_ends_tokens(run: Run, ext: Any) -> None:
    add_agent(run)
    token = new_token(run)
    new_password = "another long password"
    result = run("agent", "passwd", EMAIL, "--password-stdin", input=new_password + "\n")
    assert result.exit_code == 0, result.output
    assert ext.accounts.authenticate_bearer(token) is None
    ext.accounts.login(EMAIL, new_password)
    with pytest.raises(Exception, match="Wrong e-mail or password"):
        ext.accounts.login(EMAIL, PASSWORD)


def test_passwd_prompts_twice(run: Run, ext: Any) -> None:
    add_agent(run)
    new_password = "another long password"
    result = run("agent", "passwd", EMAIL, input=f"{new_password}\n{new_password}\n")
    assert result.exit_code == 0, result.output
    ext.accounts.login(EMAIL, new_password)


def test_reset_2fa_clears_the_second_factor_and_ends_tokens(run: Run, ext: Any) -> None:
    add_agent(run)
    ext.store.update_agent(EMAIL, {"totp": "JBSWY3DPEHPK3PXP"})
    token = new_token(run)
    result = run("agent", "reset-2fa", EMAIL)
    assert result.exit_code == 0, result.output
    assert ext.store.get_agent(EMAIL)["totp"] == ""
    assert ext.accounts.authenticate_bearer(token) is None


# -- tokens and helpdesk keys -----------------------------------------------------------------------

def test_token_create_prints_exactly_one_line_a_token_that_authenticates(
        run: Run, ext: Any) -> None:
    add_agent(run)
    result = run("token", "create", EMAIL)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and result.stdout == lines[0] + "\n"
    token = lines[0]
    assert is_token(token, AGENT_TOKEN)
    assert token not in result.stderr
    assert "tok_" in result.stderr  # its id, on stderr
    who = ext.accounts.authenticate_bearer(token)
    assert who is not None and who.email == EMAIL and who.is_agent


def test_token_list_and_revoke(run: Run, ext: Any) -> None:
    add_agent(run)
    first, second = new_token(run), new_token(run)
    listed = run("token", "list", EMAIL)
    assert listed.exit_code == 0, listed.output
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert len(rows) == 2 and all(r[0].startswith("tok_") and r[1].endswith("Z") for r in rows)
    assert first not in listed.stdout and second not in listed.stdout

    who = ext.accounts.authenticate_bearer(first)
    first_id = who.session.removeprefix("t:")
    result = run("token", "revoke", first_id)
    assert result.exit_code == 0, result.output
    assert ext.accounts.authenticate_bearer(first) is None
    assert ext.accounts.authenticate_bearer(second) is not None
    assert [line.split("\t")[0] for line in run("token", "list", EMAIL).stdout.splitlines()] \
        == [r[0] for r in rows if r[0] != first_id]


def test_token_revoke_never_touches_a_helpdesk_key(run: Run, ext: Any) -> None:
    key = run("apikey", "create", "helpscout").stdout.strip()
    key_id = run("apikey", "list").stdout.split("\t")[1]
    result = run("token", "revoke", key_id)
    assert result.exit_code == 1 and "no such token" in result.stderr
    assert ext.accounts.authenticate_bearer(key) is not None


def test_apikey_create_list_revoke(run: Run, ext: Any) -> None:
    result = run("apikey", "create", "helpscout")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and is_token(lines[0], API_KEY)
    key = lines[0]
    assert key not in result.stderr
    who = ext.accounts.authenticate_bearer(key)
    assert who is not None and who.is_helpdesk and who.email == "helpscout"

    listed = run("apikey", "list")
    assert listed.exit_code == 0
    name, key_id, created = listed.stdout.strip().split("\t")
    assert name == "helpscout" and key_id.startswith("key_") and created.endswith("Z")
    assert key not in listed.stdout

    duplicate = run("apikey", "create", "helpscout")
    assert duplicate.exit_code == 1 and "already exists" in duplicate.stderr

    assert run("apikey", "revoke", "helpscout").exit_code == 0
    assert ext.accounts.authenticate_bearer(key) is None
    assert run("apikey", "list").stdout == ""


def test_apikey_create_refuses_a_bad_name(run: Run) -> None:
    result = run("apikey", "create", "no spaces please")
    assert result.exit_code == 1
    assert "name" in result.stderr


# -- audit ------------------------------------------------------------------------------------------

def test_audit_prints_one_json_object_per_event_newest_last(run: Run) -> None:
    add_agent(run, "first@example.com")
    add_agent(run, "second@example.com")
    result = run("audit")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    created = [e["detail"] for e in events if e["event"] == "agent.created"]
    assert created == ["first@example.com", "second@example.com"]
    assert set(events[-1]) == {"at", "event", "ticket", "id", "actor", "detail"}
    assert events[-1]["actor"] == "cli"

    last = run("audit", "-n", "1")
    assert [json.loads(line)["detail"] for line in last.stdout.splitlines()] \
        == ["second@example.com"]


def test_audit_defaults_to_the_last_hundred(run: Run, ext: Any) -> None:
    for i in range(105):
        ext.store.add_audit(now_ms=1000 + i, event="test.event", actor="test", detail=str(i))
    result = run("audit")
    details = [json.loads(line)["detail"] for line in result.stdout.splitlines()]
    assert details == [str(i) for i in range(5, 105)]


def test_audit_ticket_filters_one_ticket(run: Run, ext: Any, agent: Any) -> None:
    who = ext.accounts.authenticate_bearer(agent.token)
    ext.vault.create_request(who, "T-1")
    ext.vault.create_request(who, "T-2")
    ext.vault.create_request(who, "T-1", "second")
    result = run("audit", "--ticket", "T-1")
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events if e["event"] == "request.created"] == [
        "request.created", "request.created"]  # the first one also assigned the ticket
    assert {e["ticket"] for e in events} == {"T-1"}
    assert run("audit", "--ticket", "bad ticket!").exit_code == 2


def test_audit_follow_reads_events_added_after_the_tail(ext: Any) -> None:
    ext.store.add_audit(now_ms=1, event="before", actor="test")
    after = ext.store.audit_tail(1)[-1].stream_id
    follow = _follow_global(ext.store, after)
    ext.store.add_audit(now_ms=2, event="after.one", actor="test")
    ext.store.add_audit(now_ms=3, event="after.two", actor="test")
    assert [next(follow).event, next(follow).event] == ["after.one", "after.two"]


# -- configuration and errors -----------------------------------------------------------------------

@pytest.mark.parametrize("command", [["agent", "list"], ["serve"], ["keys", "rotate"],
                                     ["audit"]])
def test_a_config_error_exits_2_with_a_message_and_no_traceback(
        run: Run, command: list[str]) -> None:
    result = run(*command, VAULT_KEYS=None)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: production needs VAULT_KEYS")
    assert len(result.stderr.splitlines()) == 1
    assert no_traceback(result)


def test_store_commands_refuse_the_embedded_mode(redis_server: RedisServer) -> None:
    empty = {name: None for name in os.environ if name.startswith("VAULT_")}
    result = CliRunner().invoke(cli, ["agent", "list"], env=empty)
    assert result.exit_code == 2
    assert "VAULT_REDIS_URL" in result.stderr
    assert no_traceback(result)


def test_keys_rotate_refuses_to_run_without_a_key_ring(run: Run) -> None:
    # Development makes up a throwaway key; re-wrapping under it would lose everything.
    result = run("keys", "rotate", VAULT_ENV="development", VAULT_KEYS=None)
    assert result.exit_code == 2
    assert "VAULT_KEYS" in result.stderr


def test_an_unreachable_redis_is_one_line_not_a_traceback(run: Run) -> None:
    result = run("agent", "list", VAULT_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: the store does not answer")
    assert no_traceback(result)


A_TOKEN = "vt_" + "A" * 43


def test_request_errors_never_show_the_token(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("request", "--ticket", "T-1", VAULT_URL=url, VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: cannot reach vault at {url}")
    assert A_TOKEN not in result.output and "A" * 20 not in result.output


class FakeVault:
    """An HTTP server standing in for vault: answers `status` with `body` (and `location`),
    keeping each request's line and headers."""

    def __init__(self, status: int, body: dict[str, Any], location: str = "") -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                fake.seen.append((self.requestline, dict(self.headers.items())))
                raw = json.dumps(body).encode()
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake_vaults() -> Iterator[Callable[..., FakeVault]]:
    made: list[FakeVault] = []

    def make(*args: Any, **kwargs: Any) -> FakeVault:
        made.append(FakeVault(*args, **kwargs))
        return made[-1]

    yield make
    for fake in made:
        fake.close()


CREATED = {"url": "https://vault.test/r/" + "R" * 28, "expires_at": "2026-12-08T10:00:00Z"}


def test_request_takes_the_proxy_from_the_environment_and_nothing_else(
        run: Run, fake_vaults: Callable[..., FakeVault], tmp_path: Path) -> None:
    """The proxy variables apply, as they did with urllib; a .netrc does not (requests would
    have put its password in place of the bearer token)."""
    netrc = tmp_path / ".netrc"
    netrc.write_text("machine 127.0.0.1 login me password netrc-canary\n"
                     "machine vault.test login me password netrc-canary\n")
    netrc.chmod(0o600)
    home = {"HOME": str(tmp_path), "NETRC": str(netrc)}
    direct = fake_vaults(201, CREATED)
    result = run("request", "--ticket", "T-1", VAULT_URL=direct.url, VAULT_TOKEN=A_TOKEN, **home)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(CREATED["url"] + "#")
    [(line, headers)] = direct.seen
    assert line == "POST /api/v1/requests HTTP/1.1"
    assert headers["Authorization"] == f"Bearer {A_TOKEN}"

    proxy = fake_vaults(201, CREATED)
    result = run("request", "--ticket", "T-2", VAULT_URL="http://vault.test", VAULT_TOKEN=A_TOKEN,
                 http_proxy=proxy.url, HTTP_PROXY=None, no_proxy=None, NO_PROXY=None, **home)
    assert result.exit_code == 0, result.output
    [(line, headers)] = proxy.seen
    assert line == "POST http://vault.test/api/v1/requests HTTP/1.1"
    assert headers["Authorization"] == f"Bearer {A_TOKEN}"


def test_a_redirect_is_reported_not_followed(run: Run,
                                             fake_vaults: Callable[..., FakeVault]) -> None:
    elsewhere = fake_vaults(201, CREATED)
    moved = fake_vaults(307, {}, location=elsewhere.url + "/api/v1/requests")
    result = run("request", "--ticket", "T-1", VAULT_URL=moved.url, VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 1
    assert result.stderr == ("Error: vault answered with a redirect (HTTP 307); set VAULT_URL "
                             "to the address it redirects to\n")
    assert len(moved.seen) == 1 and elsewhere.seen == []  # the token went nowhere else


def test_a_malformed_token_is_refused_without_being_shown(run: Run) -> None:
    secretish = "vt_this-is-not-right-but-still-private"
    result = run("request", "--ticket", "T-1", VAULT_TOKEN=secretish)
    assert result.exit_code == 2
    assert "VAULT_TOKEN" in result.stderr and secretish not in result.output


def test_request_needs_a_token(run: Run) -> None:
    result = run("request", "--ticket", "T-1", VAULT_TOKEN=None)
    assert result.exit_code == 2
    assert "VAULT_TOKEN" in result.stderr


def test_request_refuses_a_bad_ticket(run: Run) -> None:
    result = run("request", "--ticket", "not a ticket", VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 2


@pytest.mark.parametrize("link", [
    "https://vault.test/x/AAAAAAAAAAAAAAAAAAAAAAAAAAAA#" + "k" * 43,
    "https://vault.test/r/AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
    "https://vault.test/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAA#" + "k" * 40,
])
def test_reveal_refuses_a_damaged_link_without_repeating_it(run: Run, link: str) -> None:
    result = run("reveal", input=link + "\n", VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 2
    assert "k" * 40 not in result.output and A_TOKEN not in result.output
    assert len(result.stderr.splitlines()) == 1


DAMAGED = "https://vault.test/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAA#" + "k" * 40


def test_reveal_reads_the_link_from_standard_input_and_takes_only_its_first_line(
        run: Run) -> None:
    result = run("reveal", input=DAMAGED + "\nhttps://other/\n", VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 2 and "damaged" in result.stderr  # it read the link given


@pytest.mark.parametrize("given", ["", "\n", "   \n", "x" * 5000 + "\n"])
def test_reveal_without_a_usable_link_on_standard_input_says_how_to_give_one(
        run: Run, given: str) -> None:
    result = run("reveal", input=given, VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 2
    assert len(result.stderr.splitlines()) == 1 and "x" * 100 not in result.stderr
    assert "standard input" in result.stderr or "too long" in result.stderr


def test_reveal_with_the_link_as_an_argument_warns_that_it_shows_in_ps_and_history(
        run: Run) -> None:
    result = run("reveal", DAMAGED, VAULT_TOKEN=A_TOKEN)
    assert result.exit_code == 2
    warning, error = result.stderr.splitlines()
    assert warning.startswith("warning:") and "`ps`" in warning and "history" in warning
    assert "damaged" in error
    assert "k" * 40 not in result.stderr


def test_reveal_asks_for_the_link_at_a_prompt_that_does_not_echo_it() -> None:
    """On a terminal, the link is asked for with echo off (the key stays off the screen and out
    of scrollback), through a real pseudo-terminal that is the command's controlling one."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
           "VAULT_URL": "http://127.0.0.1:9", "VAULT_TOKEN": A_TOKEN}
    pid, fd = pty.fork()
    if pid == 0:  # the child: vault, on the pseudo-terminal
        os.execve(sys.executable, [sys.executable, "-m", "vault.cli", "reveal"], env)  # noqa: S606
    seen = b""
    try:
        while b"Link" not in seen:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen
            seen += os.read(fd, 1024)
        os.write(fd, DAMAGED.encode() + b"\n")
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            assert ready, seen
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 2, seen
    assert b"damaged" in seen
    assert b"k" * 40 not in seen  # neither echoed nor repeated


HOSTILE = "Mallory\x1b]0;owned\x07\x1b[2J\u202eevil\u009b31m\r\nNext line"


def test_a_refusal_from_the_server_reaches_the_terminal_without_control_characters() -> None:
    from email.message import Message

    from vault.cli.client import _http_error

    headers = Message()
    headers["Retry-After"] = "5\x1b[2J"
    body = json.dumps({"detail": "Gone" + HOSTILE, "reason": "revealed", "revealed_by": HOSTILE,
                       "revealed_at": "2026-12-07T10:00:00Z\x1b[1m"}).encode()
    for status in (410, 503):
        line = _http_error(status, headers, body)
        assert all(c.isprintable() for c in line), repr(line)
        assert "Mallory" in line and "Next line" in line


def test_the_revealed_fields_are_json_with_every_control_character_escaped() -> None:
    from vault.cli.client import _json_line

    fields = {"password": "pä ss\x1b[2J\u009b\u202e\U000e0001", "user": "日本"}
    line = _json_line(fields)
    assert all(c.isprintable() for c in line) and "日本" in line and "pä ss" in line
    assert json.loads(line) == fields


def test_starting_the_cli_loads_neither_http_nor_the_helpdesk_rules() -> None:
    """`vault --help` and the store's commands start without requests (loaded by the commands
    that talk HTTP) or Help Scout's module with the service and Flask-Babel behind it (loaded
    by `vault helpscout replay`)."""
    heavy = ("requests", "vault.httpclient", "vault.helpdesks.helpscout", "vault.service",
             "flask_babel")
    done = subprocess.run(
        [sys.executable, "-c", "import sys, vault.cli; "
         f"print(' '.join(m for m in {heavy!r} if m in sys.modules))"],
        capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == ""
