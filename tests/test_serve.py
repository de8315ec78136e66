"""`vault serve`: gunicorn settings, the embedded demo mode, and the terminal flow end to end."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
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
)
from helpers import WP_FIELDS, Lines

from vault.crypto.envelope import seal
from vault.serve import (
    DEMO_ADMIN,
    JsonLogger,
    affinity_refusal,
    default_concurrency,
    gunicorn_options,
    parse_bind,
    pin_workers,
    post_fork,
    pre_fork,
    serve,
)

# -- settings (no server needed) -----------------------------------------------------------------


@pytest.mark.parametrize(("cores", "workers", "threads"),
                         [(1, 2, 8), (2, 2, 8), (3, 3, 8), (8, 8, 8), (64, 8, 8)])
def test_default_concurrency_follows_the_core_count_with_a_cap(cores: int, workers: int,
                                                                threads: int) -> None:
    assert default_concurrency(cores) == (workers, threads)


def test_default_concurrency_reads_this_machine() -> None:
    workers, threads = default_concurrency()
    assert 2 <= workers <= 8 and threads == 8


def test_gunicorn_options_log_json_lines_and_preload_the_app() -> None:
    options = gunicorn_options(bind="127.0.0.1:8000", workers=3, threads=4)
    # An access log on stdout, of an allow-list of fields: never the query string, Referer,
    # Authorization or cookies (tests/test_gunicorn_conf.py, tests/test_metrics.py).
    assert options["accesslog"] == "-" and options["logger_class"] is JsonLogger
    assert options["preload_app"] is True
    assert options["bind"] == ["127.0.0.1:8000"]
    assert (options["workers"], options["threads"], options["worker_class"]) == (3, 4, "gthread")
    assert options["timeout"] == 30 and options["graceful_timeout"] == 30
    assert options["keepalive"] > 0
    if os.path.isdir("/dev/shm"):  # noqa: S108
        assert options["worker_tmp_dir"] == "/dev/shm"  # noqa: S108


@pytest.mark.parametrize(("spec", "host", "port", "loopback"), [
    ("127.0.0.1:8000", "127.0.0.1", 8000, True),
    ("localhost:80", "localhost", 80, True),
    ("[::1]:8443", "::1", 8443, True),
    ("0.0.0.0:8000", "0.0.0.0", 8000, False),  # noqa: S104
    ("[::]:8000", "::", 8000, False),
    ("10.0.0.5:9000", "10.0.0.5", 9000, False),
    ("vault.internal:8000", "vault.internal", 8000, False),
    ("unix:/run/vault.sock", "", 0, True),
])
def test_parse_bind(spec: str, host: str, port: int, loopback: bool) -> None:
    address = parse_bind(spec)
    assert (address.host, address.port, address.is_loopback) == (host, port, loopback)


@pytest.mark.parametrize("spec", ["8000", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:0",
                                  "::1:8000", "[::1:8000", "host:70000", "unix:"])
def test_parse_bind_refuses_malformed_addresses(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_bind(spec)


@pytest.fixture
def no_vault_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`vault serve` reads the process environment by design: start from none of VAULT_*.

    The app it builds may install the `vault` log handler on capsys's stream, which closes
    with the test: put the handlers back as they were, so later tests log to a live stream.
    """
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    vault_log = logging.getLogger("vault")
    handlers = list(vault_log.handlers)
    yield
    vault_log.handlers[:] = handlers


def test_embedded_mode_runs_one_worker_with_a_demo_admin_and_a_banner(
        no_vault_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    ran: dict[str, Any] = {}

    def fake_run(app: Any, options: dict[str, Any]) -> None:
        ran.update(app=app, options=options)

    status = serve(bind="127.0.0.1:8123", workers=4, threads=2, run=fake_run)

    assert status == 0
    assert ran["options"]["workers"] == 1 and ran["options"]["threads"] == 2
    err = capsys.readouterr().err
    assert "ignoring --workers 4" in err
    for words in ("EMBEDDED DEMO MODE", "in-memory store", "EVERYTHING IS LOST", "throwaway keys",
                  "NOT FOR PRODUCTION", "http://127.0.0.1:8123", DEMO_ADMIN):
        assert words in err
    token = re.search(r"API token:\s+(vt_\S+)", err)
    assert token is not None
    password = re.search(r"Password:\s+(\S+)", err)
    assert password is not None
    ext = ran["app"].extensions["vault"]
    assert ext.config.embedded and ext.config.base_url == "http://127.0.0.1:8123"
    _, who = ext.accounts.login(DEMO_ADMIN, password.group(1))
    assert who.is_admin
    bearer = ext.accounts.authenticate_bearer(token.group(1))
    assert bearer is not None and bearer.email == DEMO_ADMIN


def test_a_non_loopback_bind_warns_that_tls_belongs_to_a_proxy(
        no_vault_env: None, capsys: pytest.CaptureFixture[str], redis_server: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    config = base_config(redis_server.url)
    for name in ("env", "redis_url", "secret_key", "keys"):
        monkeypatch.setenv(f"VAULT_{name.upper()}", str(config[name]))
    assert serve(bind="0.0.0.0:8124", workers=None, threads=None,
                 run=lambda app, options: None) == 0
    err = capsys.readouterr().err
    assert "plain HTTP" in err and "TLS" in err


def test_the_embedded_demo_refuses_a_non_loopback_bind(
        no_vault_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(bind="0.0.0.0:8124", workers=None, threads=None,
                 run=lambda app, options: None) == 2
    err = capsys.readouterr().err
    assert "loopback" in err and "Password" not in err


def test_a_loopback_bind_does_not_warn_about_tls(
        no_vault_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    serve(bind=None, workers=None, threads=None, run=lambda app, options: None)
    assert "plain HTTP" not in capsys.readouterr().err


def test_a_bad_bind_exits_2(no_vault_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert serve(bind="nowhere", workers=None, threads=None,
                 run=lambda app, options: None) == 2
    assert capsys.readouterr().err.startswith("Error: --bind:")


# -- a core for each worker ----------------------------------------------------------------------

def test_workers_are_pinned_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VAULT_PIN_WORKERS", raising=False)
    options = gunicorn_options(bind="127.0.0.1:8000", workers=2, threads=4)
    assert (options["pre_fork"], options["post_fork"]) == (pre_fork, post_fork)
    for off in ("0", "false", "off"):
        monkeypatch.setenv("VAULT_PIN_WORKERS", off)
        options = gunicorn_options(bind="127.0.0.1:8000", workers=2, threads=4)
        assert "pre_fork" not in options and "post_fork" not in options
    assert pin_workers({"VAULT_PIN_WORKERS": "1"}) and pin_workers({})


def test_a_pin_setting_that_is_no_boolean_exits_2(
        no_vault_env: None, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VAULT_PIN_WORKERS", "sometimes")
    assert serve(bind=None, workers=None, threads=None, run=lambda app, options: None) == 2
    assert capsys.readouterr().err.startswith("Error: VAULT_PIN_WORKERS:")


def test_each_new_worker_takes_the_core_the_fewest_live_workers_run_on(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {4, 5, 6})
    master = SimpleNamespace(WORKERS={})
    chosen = []
    for pid in range(7):
        worker = SimpleNamespace()
        pre_fork(master, worker)
        master.WORKERS[pid] = worker
        chosen.append(worker.vault_core)
    assert chosen == [4, 5, 6, 4, 5, 6, 4]
    # Two workers of core 5 die: their replacements go back to core 5, not to a busy core.
    del master.WORKERS[1], master.WORKERS[4]
    replacements = [SimpleNamespace(), SimpleNamespace()]
    for pid, worker in zip((10, 11), replacements, strict=True):
        pre_fork(master, worker)
        master.WORKERS[pid] = worker
    assert [w.vault_core for w in replacements] == [5, 5]


class _Said:
    """gunicorn's logger as the hooks use it: what they said, at which level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def info(self, message: str, *args: Any) -> None:
        self.lines.append(("info", message % args))

    def warning(self, message: str, *args: Any) -> None:
        self.lines.append(("warning", message % args))


def test_this_machine_lets_a_process_set_its_affinity() -> None:
    assert affinity_refusal() is None


@pytest.mark.parametrize(("cpu_max", "cores", "pinned"), [
    ("max 100000\n", 2, True), ("200000 100000\n", 2, True), ("150000 100000\n", 2, True),
    ("100000 100000\n", 2, False), ("400000 100000\n", 16, False),
    ("50000 100000\n", 1, True), ("garbage\n", 4, True)])
def test_workers_are_pinned_only_on_cores_of_their_own(tmp_path: Path, cpu_max: str, cores: int,
                                                      pinned: bool) -> None:
    """A CPU quota below the allowed cores (`docker run --cpus`, a Kubernetes limit) is no place
    to pin: every such container would pin to the host's first cores."""
    from vault.serve import quota_refusal

    path = tmp_path / "cpu.max"
    path.write_text(cpu_max)
    refusal = quota_refusal(cores, path)
    assert (refusal is None) == pinned
    if refusal is not None:
        assert f"over {cores} allowed cores" in refusal and "--cpuset-cpus" in refusal


def test_a_core_the_kernel_refuses_leaves_the_worker_unpinned_and_says_so() -> None:
    """The kernel's own EINVAL (a core this machine does not have, as after a cpuset shrank):
    post_fork, run in this very process, neither raises nor changes its affinity."""
    before = os.sched_getaffinity(0)
    said = _Said()
    post_fork(SimpleNamespace(log=said), SimpleNamespace(vault_core=max(before) + 4096))
    assert os.sched_getaffinity(0) == before
    [(level, line)] = said.lines
    assert level == "warning" and f"is not pinned to core {max(before) + 4096}" in line
    assert "Invalid argument" in line and "runs wherever the kernel places it" in line


# -- real processes ----------------------------------------------------------------------------------

VAULT = [sys.executable, "-m", "vault.cli"]
TICKET = "T-2001"


@pytest.fixture
def start_serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Start `vault serve ARGS` with `env`; every process is stopped (SIGTERM, wait) at the end."""
    started: list[Server] = []

    def start(env: dict[str, str], *args: str, port: int,
              on_line: Callable[[bytes], None] | None = None) -> Server:
        log_path = tmp_path / f"serve-{port}.log"
        proc = subprocess.Popen([*VAULT, "serve", "--bind", f"127.0.0.1:{port}", *args],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                cwd=str(ROOT))
        server = Server(url=f"http://127.0.0.1:{port}", process=proc, log_path=log_path)
        started.append(server)
        follow_output(proc, b"Booting worker", what="vault serve", log_path=log_path,
                      on_line=on_line)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait(5)


def http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    resp = requests.request(method, url, json=body, timeout=10)
    return resp.status_code, resp.json() if resp.content else None


def vault_cli(env: dict[str, str], *args: str, input: str | None = None
              ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*VAULT, *args], env=env, capture_output=True, text=True, timeout=60,
                          cwd=str(ROOT), check=False, input=input)


@pytest.mark.slow
def test_terminal_flow_through_vault_serve(
        redis_server: RedisServer, agent: Agent, start_serve: Callable[..., Server]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_serve(gunicorn_env(redis_server.url, base_url=url), "--workers", "2",
                         "--threads", "2", port=port)
    assert "Booting worker" in server.log()
    client_env = {**{k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
                  "VAULT_URL": url, "VAULT_TOKEN": agent.token}

    # The agent asks for credentials from the terminal.
    asked = vault_cli(client_env, "request", "--ticket", TICKET, "--note", "staging please")
    assert asked.returncode == 0, asked.stderr
    lines = asked.stdout.splitlines()
    assert len(lines) == 1
    match = re.fullmatch(re.escape(url) + r"/r/([A-Za-z0-9_-]{28})#([A-Za-z0-9_-]{43})", lines[0])
    assert match, lines[0]
    request_id, key = match.groups()
    assert key not in asked.stderr and agent.token not in asked.stderr + asked.stdout

    # Not filled yet: a clear message, nothing consumed. (The link as an argument works, with a
    # warning: its key shows in `ps` and in shell history.)
    early = vault_cli(client_env, "reveal", lines[0])
    assert early.returncode == 1 and "not filled" in early.stderr
    assert early.stderr.startswith("warning: the link's key is on the command line")

    # The customer's browser seals with K from the fragment and fills the request.
    envelope = seal(key, ticket=TICKET, kind="wordpress", fields=WP_FIELDS)
    status, filled = http("POST", f"{url}/api/v1/requests/{request_id}/secret",
                          {"kind": "wordpress", "envelope": envelope})
    assert status == 201, filled

    # The agent reveals: exactly the fields, as one line of JSON.
    revealed = vault_cli(client_env, "reveal", input=lines[0] + "\n")
    assert revealed.returncode == 0, revealed.stderr
    assert revealed.stdout.count("\n") == 1
    assert json.loads(revealed.stdout) == WP_FIELDS
    assert WP_FIELDS["password"] not in revealed.stderr

    # Acknowledged: revealed once, and gone for good.
    status, meta = http("GET", f"{url}/api/v1/secrets/{filled['secret_id']}")
    assert status == 200 and meta["state"] == "revealed"
    again = vault_cli(client_env, "reveal", input=lines[0] + "\n")
    assert again.returncode == 1
    assert "(HTTP 410)" in again.stderr and len(again.stderr.splitlines()) == 1
    for leaked in (key, agent.token, WP_FIELDS["password"], "Traceback"):
        assert leaked not in again.stderr + again.stdout


@pytest.mark.slow
def test_http_errors_are_one_line_without_token_or_key(
        redis_server: RedisServer, agent: Agent, start_serve: Callable[..., Server]) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    start_serve(gunicorn_env(redis_server.url, base_url=url), "--workers", "1", port=port)
    wrong_token = "vt_" + "B" * 42 + "A"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("VAULT_")},
           "VAULT_URL": url, "VAULT_TOKEN": wrong_token}
    refused = vault_cli(env, "request", "--ticket", TICKET)
    assert refused.returncode == 1
    assert "(HTTP 401)" in refused.stderr and "VAULT_TOKEN" in refused.stderr
    assert wrong_token not in refused.stderr + refused.stdout and "B" * 20 not in refused.stderr

    key = "k" * 42 + "A"
    unknown = vault_cli({**env, "VAULT_TOKEN": agent.token}, "reveal",
                        f"{url}/s/AAAAAAAAAAAAAAAAAAAAAAAAAAAA#{key}")
    assert unknown.returncode == 1 and "(HTTP 404)" in unknown.stderr
    assert key not in unknown.stderr and agent.token not in unknown.stderr


@pytest.mark.slow
def test_a_config_error_stops_vault_serve_before_it_forks(redis_server: RedisServer) -> None:
    env = gunicorn_env(redis_server.url)
    del env["VAULT_KEYS"]
    result = vault_cli(env, "serve", "--bind", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("Error: production needs VAULT_KEYS")
    assert "Traceback" not in result.stderr and "Booting worker" not in result.stderr


@pytest.mark.slow
def test_embedded_mode_is_reachable_with_the_printed_demo_admin(
        start_serve: Callable[..., Server]) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    port = free_port()
    server = start_serve(env, port=port)
    log = server.log()
    assert "EMBEDDED DEMO MODE" in log and "NOT FOR PRODUCTION" in log
    assert f"Demo admin: {DEMO_ADMIN}" in log
    assert f"http://127.0.0.1:{port}" in log
    assert log.count("Booting worker") == 1
    password = re.search(r"Password:\s+(\S+)", log)
    assert password is not None

    status, _ = http("GET", f"{server.url}/healthz")
    assert status == 200
    status, body = http("POST", f"{server.url}/api/v1/session",
                        {"email": DEMO_ADMIN, "password": password.group(1)})
    assert status == 200, body
    assert body["agent"]["email"] == DEMO_ADMIN and body["agent"]["role"] == "admin"
    status, _ = http("POST", f"{server.url}/api/v1/session",
                     {"email": DEMO_ADMIN, "password": "not the password"})
    assert status == 401
    # The banner leads an agent to the login page, and its "Try it" line runs as printed: a
    # command that exists (not on the PATH after ./scripts/serve), with the real token.
    assert f"Agents:     {server.url}/login" in log
    tried = re.search(r"Try it:\s+(.+)", log)
    assert tried is not None and "<" not in tried.group(1)
    done = subprocess.run(tried.group(1), shell=True, capture_output=True, text=True,  # noqa: S602
                          timeout=60, check=False, env={"PATH": "/usr/bin:/bin"}, cwd=str(ROOT))
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(re.escape(server.url) + r"/r/[A-Za-z0-9_-]{28}#[A-Za-z0-9_-]{43}\n",
                        done.stdout)


@pytest.mark.parametrize(("content", "expected"), [
    ("max 100000\n", None), ("100000 100000\n", 1), ("150000 100000\n", 2),
    ("50000 100000\n", 1), ("garbage\n", None)])
def test_cpu_count_follows_a_containers_cpu_quota(tmp_path: Path, content: str,
                                                  expected: int | None) -> None:
    from vault.serve import cpu_count

    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text(content)
    unlimited = cpu_count(tmp_path / "missing")
    assert cpu_count(cpu_max) == (unlimited if expected is None else min(expected, unlimited))


@pytest.mark.slow
def test_vault_serve_runs_each_worker_on_a_core_of_its_own_and_a_replacement_on_its_core(
        start_serve: Callable[..., Server], redis_server: RedisServer) -> None:
    cores = sorted(os.sched_getaffinity(0))
    env = gunicorn_env(redis_server.url)
    env.pop("VAULT_PIN_WORKERS", None)
    lines = Lines()
    start_serve(env, "--workers", str(len(cores)), "--threads", "2", port=free_port(),
                on_line=lines)
    said = re.compile(r"Worker (\d+) runs on core (\d+)")

    def placed(output: list[str]) -> dict[int, int]:
        """Each worker's core, as the workers announce it once pinned."""
        found = (said.search(line) for line in output)
        return {int(m[1]): int(m[2]) for m in found if m}

    before = placed(lines.wait_for(lambda output: len(placed(output)) == len(cores)))
    assert sorted(before.values()) == cores
    for pid, core in before.items():
        assert os.sched_getaffinity(pid) == {core}  # the announcement is the truth
    victim, its_core = next(iter(before.items()))
    os.kill(victim, signal.SIGKILL)
    after = placed(lines.wait_for(lambda output: len(placed(output)) == len(cores) + 1))
    [replacement] = set(after) - set(before)
    assert after[replacement] == its_core
    assert os.sched_getaffinity(replacement) == {its_core}
