"""The test harness: the real processes tests run (redis-server, gunicorn) and the plain helpers
around them, importable from any test module (`from harness import base_config, free_port`).

conftest.py beside it holds only the fixtures and pytest's hooks, built on these; helpers about
vault's own data (sealing envelopes, sharing a secret, reading a ticket) are in helpers.py.
"""

from __future__ import annotations

import contextlib
import datetime
import ipaddress
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.connection import Connection

from vault.crypto.keyring import generate_key_spec

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def follow_output(proc: subprocess.Popen[bytes], marker: bytes, *, what: str,
                  log_path: Path | None = None, timeout: float = 30.0,
                  on_line: Callable[[bytes], None] | None = None) -> None:
    """Block until the process prints `marker` (it is ready), copying its output to `log_path`.

    Readiness is the process's own word for it, read as it is written: no polling. A process
    that exits first fails the test with its output. `on_line` sees every line once it is in the
    log, for as long as the process lives (a test can wait for a line instead of sleeping).
    """
    assert proc.stdout is not None
    stream, seen, lines = proc.stdout, threading.Event(), []
    log = log_path.open("ab") if log_path is not None else None

    def pump() -> None:
        for line in stream:  # blocking reads, for the life of the process
            if log is not None:
                log.write(line)
                log.flush()
            if on_line is not None:
                on_line(line)
            if not seen.is_set():
                lines.append(line)
            if marker in line:
                seen.set()
        seen.set()  # EOF: the process is gone
        stream.close()
        if log is not None:
            log.close()

    threading.Thread(target=pump, daemon=True, name=f"output of {what}").start()
    if not seen.wait(timeout) or not any(marker in line for line in lines):
        output = b"".join(lines).decode(errors="replace")
        raise RuntimeError(f"{what} did not become ready:\n{output}")


@dataclass
class RedisServer:
    url: str
    port: int
    process: subprocess.Popen[bytes] | None
    workdir: str

    def client(self) -> redis.Redis:
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def start(self) -> None:
        """(Re)start the private server on the same port, with its data file if any."""
        self.process = _spawn_redis(self.port, self.workdir)


def _spawn_redis(port: int, workdir: str) -> subprocess.Popen[bytes]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed: run scripts/test (it installs it), "
                    "or pass --redis-url", pytrace=False)
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
         "--appendfsync", "always", "--dir", workdir, "--protected-mode", "yes"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    follow_output(proc, b"Ready to accept connections", what="redis-server")
    return proc


@contextlib.contextmanager
def private_redis(prefix: str = "vault-redis-") -> Iterator[RedisServer]:
    """A redis-server of our own on a free port, with AOF in a temporary folder."""
    workdir = tempfile.mkdtemp(prefix=prefix)
    port = free_port()
    server = RedisServer(url=f"redis://127.0.0.1:{port}/0", port=port,
                         process=_spawn_redis(port, workdir), workdir=workdir)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


class Clock:
    """A clock tests move by hand."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


KEYS = generate_key_spec()


def base_config(redis_url: str, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "env": "production",
        "redis_url": redis_url,
        "secret_key": "test-secret-key-" + "x" * 32,
        "keys": KEYS,
        "base_url": "https://vault.test",
        "helpscout_secret": "hs-secret-one,hs-secret-two",
        "helpscout_app_secret": "hs-app-secret",
        "webhook_secret": "whsec_" + "c2VjcmV0LWtleS1mb3Itc3RhbmRhcmQtd2ViaG9va3M=",
        "cheap_passwords": True,
        "log_level": "DEBUG",
    }
    config.update(overrides)
    return config


@dataclass
class Agent:
    email: str
    token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def gunicorn_env(redis_url: str, **overrides: Any) -> dict[str, str]:
    """The environment of a real server process: production settings plus `overrides`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    for name, value in base_config(redis_url, **overrides).items():
        if name == "cheap_passwords":
            continue  # mapping-only: a server process always hashes for real
        env["VAULT_" + name.upper()] = str(value)
    return env


def start_gunicorn(env: dict[str, str], tmp: Path, *, workers: int = 3, threads: int = 8,
                   port: int | None = None, extra_args: Sequence[str] = (),
                   on_line: Callable[[bytes], None] | None = None) -> Server:
    """Gunicorn serving vault on 127.0.0.1:`port` (a free one by default), output in its log.

    `port` lets a caller put the server's own URL in its environment (VAULT_BASE_URL) first;
    `extra_args` go to gunicorn before the app (e.g. `--access-logfile -`).
    """
    port = free_port() if port is None else port
    log_path = tmp / f"gunicorn-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--threads", str(threads), "--preload",
         "--graceful-timeout", "5", *extra_args, "vault:create_app()"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT))
    # The master has bound the socket before any worker boots: from here on a connection waits
    # in the listen backlog until a worker accepts it, it is never refused.
    follow_output(proc, b"Booting worker", what="gunicorn", log_path=log_path, on_line=on_line)
    return Server(url=f"http://127.0.0.1:{port}", process=proc, log_path=log_path)


def stop_process(process: subprocess.Popen[bytes], grace: float = 15) -> None:
    """SIGTERM, `grace` seconds to exit, then SIGKILL."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def stop_server(server: Server) -> None:
    stop_process(server.process)


# -- Round trips: counted on the client side (tests/test_roundtrips.py, test_sidebar.py) ---------

class Counting(Connection):
    sends = 0

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        Counting.sends += 1
        super().send_packed_command(command, check_health)


def instrument(store: Any) -> None:
    """Every connection the store uses from now on counts its writes: its client's pool and its
    scripts' lane (vault.storage.runner.Lane) drop the connections made before."""
    pool = store.client.connection_pool
    pool.disconnect()
    pool.connection_class = Counting
    pool.reset()  # drop the idle connections made before: new ones are counting ones
    if store.lane is not None:
        store.lane.reset()


# -- A live vault: gunicorn serving vault at its own address -------------------------------------

class OutputLines:
    """A process's output lines as they come (fed by follow_output's `on_line`), to wait on."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._changed = threading.Condition()

    def add(self, line: bytes) -> None:
        with self._changed:
            self._lines.append(line.decode(errors="replace"))
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(self, text: str, timeout: float) -> str:
        def found() -> str | None:
            return next((line for line in self._lines if text in line), None)

        with self._changed:
            if not self._changed.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"the server never logged {text!r}; its last lines:\n"
                                     + "".join(self._lines[-50:]))
            line = found()
            assert line is not None
            return line


@dataclass
class LiveServer:
    """A real gunicorn vault whose VAULT_BASE_URL is its own address (unless a test set another)."""

    url: str
    env: dict[str, str]  # its VAULT_* environment, for the command line
    server: Server
    output: OutputLines

    def log(self) -> str:
        """Everything the server printed so far: its own log and, if on, the access log."""
        return self.output.text()

    def wait_for_log(self, text: str, *, timeout: float = 10.0) -> str:
        """Block until a line containing `text` is printed, and return that line. The access
        line of a request is written just after its response, so wait for it before reading."""
        return self.output.wait_for(text, timeout)

    def stop(self) -> None:
        stop_server(self.server)


@dataclass(frozen=True)
class ServerCertificate:
    """A self-signed certificate for 127.0.0.1 and localhost, made by the test that uses it."""

    cert: Path  # PEM; also what a client verifies the server with
    key: Path


def make_certificate(folder: Path) -> ServerCertificate:
    """A fresh P-256 key and a self-signed certificate for 127.0.0.1 and localhost, valid a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    made = ServerCertificate(cert=folder / "server.pem", key=folder / "server-key.pem")
    made.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    made.key.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return made


def start_live_server(redis_url: str, tmp: Path, *, port: int | None = None, workers: int = 2,
                      threads: int = 4, access_log: bool = True, extra_args: Sequence[str] = (),
                      tls: ServerCertificate | None = None, **settings: Any) -> LiveServer:
    """Start gunicorn serving vault on `redis_url`; `settings` as in base_config, its base URL
    its own address unless given. `port`: one chosen before (a provider must know the callback
    URL first); `access_log`: gunicorn's access log on stdout (in `log()`); `extra_args` go to
    gunicorn (e.g. `--keep-alive 60`, `-c deploy/gunicorn.conf.py`); `tls`: gunicorn serves
    HTTPS with this certificate, as a proxy in front of production would."""
    port = port or free_port()
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    env = gunicorn_env(redis_url, **{"base_url": url, **settings})
    output = OutputLines()
    args = [*(["--access-logfile", "-"] if access_log else []), *extra_args]
    if tls is not None:
        args += ["--certfile", str(tls.cert), "--keyfile", str(tls.key)]
    server = start_gunicorn(env, tmp, workers=workers, threads=threads, port=port,
                            extra_args=args, on_line=output.add)
    return LiveServer(url=url, env=env, server=server, output=output)


# What conftest's serve_vault fixture hands out: serve_vault(redis_url, **options) is a `with`
# block around start_live_server(redis_url, <a folder of its own>, **options).
ServeVault = Callable[..., AbstractContextManager[LiveServer]]
