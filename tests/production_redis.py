"""A redis-server run as production runs it: deploy/redis/redis.conf and users.acl.

The only changes a test makes are the ones a test must: a free port, a temporary data
directory, and a copy of the ACL file whose password placeholder holds a real hash (the ops user
is switched on too, so that a test can read the ACL log). Everything else, AOF and fsync policy,
memory policy, protected mode, the users and their commands, comes from the files in deploy/.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from harness import ROOT, follow_output, free_port
from redis.backoff import NoBackoff
from redis.retry import Retry

CONF = ROOT / "deploy" / "redis" / "redis.conf"
ACL = ROOT / "deploy" / "redis" / "users.acl"
VAULT_PLACEHOLDER = "#VAULT_PASSWORD_SHA256"
OPS_DISABLED = "user ops off resetpass "


def sha256_hex(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def write_acl(dest: Path, vault_password: str, ops_password: str) -> None:
    """deploy/redis/users.acl with the vault user's placeholder replaced, as the README says."""
    text = ACL.read_text()
    assert text.count(VAULT_PLACEHOLDER) == 1 and text.count(OPS_DISABLED) == 1
    text = text.replace(VAULT_PLACEHOLDER, "#" + sha256_hex(vault_password))
    text = text.replace(OPS_DISABLED, f"user ops on #{sha256_hex(ops_password)} ")
    dest.write_text(text)


@dataclass
class ProductionRedis:
    port: int
    workdir: Path
    vault_password: str
    ops_password: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """What VAULT_REDIS_URL is in production: the ACL user `vault`, database 0."""
        return f"redis://vault:{self.vault_password}@127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed: run scripts/test (it installs it)",
                        pytrace=False)
        return [binary, str(CONF), "--port", str(self.port), "--dir", str(self.workdir),
                "--aclfile", str(self.workdir / "users.acl")]

    def start(self) -> None:
        """Start (or restart, from the AOF in the same directory) and wait for its ready line."""
        self.process = subprocess.Popen(self.command(), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)
        follow_output(self.process, b"Ready to accept connections", what="production redis",
                      log_path=self.workdir / "redis.log")

    def kill(self) -> None:
        """kill -9: no shutdown, no final fsync, no rewrite."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)

    def client(self, username: str | None = None, password: str | None = None) -> redis.Redis:
        # No retries: redis-py's default retries a refused login with seconds of backoff.
        return redis.Redis(port=self.port, username=username, password=password,
                           retry=Retry(NoBackoff(), 0))

    def vault_client(self) -> redis.Redis:
        return self.client("vault", self.vault_password)

    def ops_client(self) -> redis.Redis:
        return self.client("ops", self.ops_password)

    def log(self) -> str:
        return (self.workdir / "redis.log").read_text(errors="replace")


@contextlib.contextmanager
def production_redis(workdir: Path) -> Iterator[ProductionRedis]:
    workdir.mkdir(parents=True, exist_ok=True)
    server = ProductionRedis(port=free_port(), workdir=workdir,
                             vault_password=secrets.token_urlsafe(24),
                             ops_password=secrets.token_urlsafe(24))
    write_acl(workdir / "users.acl", server.vault_password, server.ops_password)
    server.start()
    try:
        yield server
    finally:
        server.stop()
