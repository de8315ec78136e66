"""Highly available Redis for the tests: a real three-master Cluster and a real Sentinel setup.

Every process is a real `redis-server` on free local ports, in a temporary folder. Readiness is
always the process's own word for it, read from its output as it is written ("Ready to accept
connections", "Cluster state changed: ok", "+monitor", "+slave", "+sentinel"), or a blocking
`WAIT` that returns when the replicas have the write: nothing here waits blindly.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis
from harness import free_port

SERVICE = "mymaster"


class Output:
    """Every line a process prints, kept, copied to a log file, and waited on by marker."""

    def __init__(self, proc: subprocess.Popen[bytes], what: str, log_path: Path) -> None:
        assert proc.stdout is not None
        self.what = what
        self.lines: list[bytes] = []
        self.done = False
        self._cond = threading.Condition()
        self._stream = proc.stdout
        self._log = log_path.open("ab")
        threading.Thread(target=self._pump, daemon=True, name=f"output of {what}").start()

    def _pump(self) -> None:
        for line in self._stream:  # blocking reads, for the life of the process
            self._log.write(line)
            self._log.flush()
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self.done = True
            self._cond.notify_all()
        self._stream.close()
        self._log.close()

    def mark(self) -> int:
        """A position in the output: `wait_for(..., since=mark)` only sees later lines."""
        with self._cond:
            return len(self.lines)

    def wait_for(self, marker: bytes, *, count: int = 1, since: int = 0,
                 timeout: float = 30.0) -> None:
        """Block until `marker` has appeared in `count` lines printed after `since`."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while sum(marker in line for line in self.lines[since:]) < count:
                left = deadline - time.monotonic()
                if self.done or left <= 0:
                    text = b"".join(self.lines[-40:]).decode(errors="replace")
                    state = "exited" if self.done else "timed out"
                    raise RuntimeError(f"{self.what} {state} before printing "
                                       f"{marker.decode()!r} x{count}:\n{text}")
                self._cond.wait(left)  # woken by every new line

    def text(self) -> str:
        with self._cond:
            return b"".join(self.lines).decode(errors="replace")


@dataclass
class Node:
    """One redis-server (or sentinel) process of ours."""

    port: int
    process: subprocess.Popen[bytes]
    output: Output

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, **kwargs: object) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, **kwargs)  # type: ignore[arg-type]

    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: the machine or the process dies, no goodbye to anyone."""
        if self.alive():
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.alive():
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def stop_all(nodes: list[Node]) -> None:
    """SIGTERM every node at once, then wait for each (shutdowns overlap)."""
    for node in nodes:
        if node.alive():
            node.process.terminate()
    for node in nodes:
        node.stop()


def spawn(args: list[str], *, workdir: Path, port: int, what: str,
          ready: bytes = b"Ready to accept connections") -> Node:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/test (it installs it)")
    proc = subprocess.Popen([binary, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=str(workdir))
    node = Node(port=port, process=proc,
                output=Output(proc, f"{what} :{port}", workdir / f"{what}-{port}.log"))
    try:
        node.output.wait_for(ready)
    except RuntimeError:
        node.stop()
        raise
    return node


def _server_args(port: int, workdir: Path, *extra: str) -> list[str]:
    return ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", "",
            "--appendonly", "no", "--protected-mode", "yes",
            # A replica's full sync starts at once, not after the default 5 s of waiting for
            # more replicas to share it (also after a failover, towards the new primary).
            "--repl-diskless-sync-delay", "0", *extra]


# -- Cluster --------------------------------------------------------------------------------------

@dataclass
class Cluster:
    nodes: list[Node]
    workdir: Path

    @property
    def url(self) -> str:
        """Two of the three as startup nodes: the client discovers the third by itself."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes[:2])

    def error_stats(self) -> dict[str, int]:
        """`INFO errorstats` summed over the nodes: {"CROSSSLOT": n, ...}."""
        total: dict[str, int] = {}
        for node in self.nodes:
            with contextlib.closing(node.client()) as c:
                for name, value in c.info("errorstats").items():
                    kind = name.removeprefix("errorstat_")
                    count = int(value["count"]) if isinstance(value, dict) else int(value)
                    total[kind] = total.get(kind, 0) + count
        return total

    def flush(self) -> None:
        for node in self.nodes:
            with contextlib.closing(node.client()) as c:
                c.flushall()

    def logs(self) -> str:
        return "".join(n.output.text() for n in self.nodes)

    def node(self, address: str) -> Node:
        return next(n for n in self.nodes if n.address == address)

    def replicas_of(self, address: str) -> list[Node]:
        """The replicas of the master at `address`, by each replica's own word (ROLE)."""
        found = []
        for node in self.nodes:
            with contextlib.closing(node.client()) as c:
                role = c.execute_command("ROLE")
            if role[0] in {b"slave", "slave"}:
                host = role[1].decode() if isinstance(role[1], bytes) else str(role[1])
                if f"{host}:{int(role[2])}" == address:
                    found.append(node)
        return found


@contextlib.contextmanager
def cluster(masters: int = 3, replicas: int = 0) -> Iterator[Cluster]:
    """A real Redis Cluster of `masters` masters with `replicas` replicas each, every slot
    covered, every replica in sync."""
    workdir = Path(tempfile.mkdtemp(prefix="vault-cluster-"))
    nodes: list[Node] = []
    try:
        for _ in range(masters * (1 + replicas)):
            port = free_port()
            nodes.append(spawn(_server_args(
                port, workdir, "--cluster-enabled", "yes",
                # The bus port, named: port + 10000 might be taken, or above 65535.
                "--cluster-port", str(free_port()),
                "--cluster-config-file", f"nodes-{port}.conf", "--cluster-node-timeout", "5000"),
                workdir=workdir, port=port, what="cluster-node"))
        marks = [n.output.mark() for n in nodes]
        created = subprocess.run(
            ["redis-cli", "--cluster", "create", *[n.address for n in nodes],
             "--cluster-replicas", str(replicas), "--cluster-yes"],
            capture_output=True, timeout=60, check=False)
        if created.returncode != 0:
            raise RuntimeError("redis-cli --cluster create failed:\n"
                               + created.stdout.decode(errors="replace")
                               + created.stderr.decode(errors="replace"))
        for node, mark in zip(nodes, marks, strict=True):
            # Each node says so itself once it sees every slot covered.
            node.output.wait_for(b"Cluster state changed: ok", since=mark)
            with contextlib.closing(node.client()) as c:
                info = c.execute_command("CLUSTER INFO")  # parsed by redis-py into a dict
                assert info["cluster_state"] == "ok", info
        if replicas:
            _replicas_in_sync(nodes, replicas)
        yield Cluster(nodes=nodes, workdir=workdir)
    finally:
        stop_all(nodes)
        shutil.rmtree(workdir, ignore_errors=True)


def _replicas_in_sync(nodes: list[Node], replicas: int) -> None:
    """Block until every master streams to its replicas: a write on each, then WAIT for it.

    After a full sync a master starts streaming to a replica only at the replica's first
    REPLCONF ACK (sent once a second), and logs nothing then; until that moment a WAIT with a
    short timeout fails. WAIT with a long one blocks until exactly that moment.
    """
    client = redis.RedisCluster(host="127.0.0.1", port=nodes[0].port)
    try:
        masters = {n.name for n in client.get_primaries()}
        done: set[str] = set()
        for i in range(10_000):  # names until every master owns one (a few dozen at most)
            key = f"vault-test:probe:{i}"
            node = client.get_node_from_key(key)
            if node.name in done:
                continue
            direct = client.get_redis_connection(node)
            direct.set(key, "1")
            acked = direct.execute_command("WAIT", replicas, 30_000)
            assert acked == replicas, f"{node.name}: {acked} of {replicas} replicas in sync"
            direct.delete(key)
            done.add(node.name)
            if done == masters:
                return
        raise AssertionError(f"no probe key for some master: {masters - done}")
    finally:
        client.close()


# -- Sentinel -------------------------------------------------------------------------------------

@dataclass
class SentinelSetup:
    primary: Node
    replicas: list[Node]
    sentinels: list[Node]
    workdir: Path

    @property
    def url(self) -> str:
        return ("redis+sentinel://" + ",".join(s.address for s in self.sentinels)
                + f"/{SERVICE}")

    def data_nodes(self) -> list[Node]:
        return [self.primary, *self.replicas]

    def master_address(self) -> tuple[str, int]:
        """Where the sentinels say the primary is now."""
        with contextlib.closing(self.sentinels[0].client()) as c:
            host, port = c.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return (host.decode() if isinstance(host, bytes) else str(host)), int(port)

    def node_at(self, port: int) -> Node:
        return next(n for n in self.data_nodes() if n.port == port)


def _sentinel_conf(path: Path, port: int, primary_port: int) -> None:
    path.write_text(
        f"port {port}\n"
        "bind 127.0.0.1\n"
        f"dir {path.parent}\n"
        f"sentinel monitor {SERVICE} 127.0.0.1 {primary_port} 2\n"
        f"sentinel down-after-milliseconds {SERVICE} 1000\n"
        f"sentinel failover-timeout {SERVICE} 3000\n"
        f"sentinel parallel-syncs {SERVICE} 2\n")


@contextlib.contextmanager
def sentinel_setup() -> Iterator[SentinelSetup]:
    """One primary, two replicas (`--replicaof`), three sentinels (quorum 2), all in sync."""
    workdir = Path(tempfile.mkdtemp(prefix="vault-sentinel-"))
    started: list[Node] = []
    try:
        port = free_port()
        pdir = workdir / "primary"
        pdir.mkdir()
        primary = spawn(_server_args(port, pdir), workdir=pdir, port=port, what="primary")
        started.append(primary)
        replicas = []
        for i in range(2):
            rport = free_port()
            rdir = workdir / f"replica-{i}"
            rdir.mkdir()
            replica = spawn(_server_args(rport, rdir, "--replicaof", "127.0.0.1", str(port)),
                            workdir=rdir, port=rport, what="replica",
                            ready=b"MASTER <-> REPLICA sync: Finished with success")
            started.append(replica)
            replicas.append(replica)
        with contextlib.closing(primary.client()) as c:
            # Both replicas acknowledge a write: replication is flowing.
            c.set("vault-test:sync", "1")
            assert c.execute_command("WAIT", 2, 30_000) == 2
        sentinels = []
        for i in range(3):
            sport = free_port()
            sdir = workdir / f"sentinel-{i}"
            sdir.mkdir()
            conf = sdir / "sentinel.conf"
            _sentinel_conf(conf, sport, port)
            sentinels.append(spawn([str(conf), "--sentinel"], workdir=sdir, port=sport,
                                   what="sentinel", ready=b"+monitor master"))
            started.append(sentinels[-1])
        for s in sentinels:
            # Each sentinel has found both replicas and both other sentinels (hello messages
            # over the primary's pub/sub): a failover can get its quorum and its leader.
            s.output.wait_for(b"+slave slave", count=2)
            s.output.wait_for(b"+sentinel sentinel", count=2)
        yield SentinelSetup(primary=primary, replicas=replicas, sentinels=sentinels,
                            workdir=workdir)
    finally:
        stop_all(started)
        shutil.rmtree(workdir, ignore_errors=True)
