"""How the store's scripts and commands reach Redis, and what comes back.

A script runs in one round trip on a single Redis, a Sentinel primary or a Cluster node: a plain
client's through its own connections (`Lane`), a Cluster's through the client, which routes by
slot. With `min_replicas`, the script and its `WAIT` share one connection: to the primary (a
Sentinel's current one) or to the Cluster node serving the ticket's slot.

On a Cluster, the two things that live outside a ticket's slot (the global audit stream and the
agents' ticket index) are written right after the script, from the list of writes the script
hands back (see `vault.storage.scripts`): the same entries as on a single Redis, one pipeline
later (`Runner._replay`; for a create, a fill or a reveal, by `FollowUps`).

Redis faults are translated here into `Unavailable`; callers never see a redis-py exception.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
import redis
import redis.exceptions as rexc

from vault.errors import Unavailable
from vault.storage import keys
from vault.storage.scripts import SCRIPTS, Script

log = logging.getLogger("vault.storage")

_UNAVAILABLE = (
    rexc.ConnectionError,
    rexc.TimeoutError,
    rexc.BusyLoadingError,
    rexc.ReadOnlyError,
    rexc.ClusterDownError,
    rexc.TryAgainError,
    rexc.MasterDownError,
    # A Cluster whose slot map is being rebuilt (a node failed over, slots moved): transient.
    rexc.ClusterError,
    rexc.SlotNotCoveredError,
)
# Error replies that are transient too: OOM under noeviction, a failover in progress, a replica
# answering.
_TRANSIENT_REPLIES = ("OOM", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN",
                      "NOREPLICAS")


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return "" if value is None else str(value)


def pairs(flat: Sequence[Any]) -> dict[str, str]:
    try:  # a hash's reply is all bytes: the fast path (a dashboard decodes hundreds of them)
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    except AttributeError:
        return {text(flat[i]): text(flat[i + 1]) for i in range(0, len(flat), 2)}


def strings(mapping: Any) -> dict[str, str]:
    """A hash as redis-py answers it (a dict of bytes), as text."""
    return {text(k): text(v) for k, v in mapping.items()}


@dataclass
class ScriptResult:
    status: str
    values: list[Any] = field(default_factory=list)
    # The agent the step's gate authenticated: ['agent', e-mail, name, role, id, session].
    who: list[str] = field(default_factory=list)


def result_of(raw: list[Any]) -> ScriptResult:
    """A script's {status, values...} answer; none at all is `notfound`."""
    if not raw:
        return ScriptResult("notfound")
    return ScriptResult(text(raw[0]), list(raw[1:]))


class Lane:
    """How a script reaches a single Redis or a Sentinel's primary: its own few connections,
    made by the client's pool (same address, timeouts, TLS, credentials and Sentinel lookup),
    and the command packed by hiredis in one call.

    Why: redis-py's `Redis.evalsha` spends CPU around each call that a bare socket does not
    (argument re-packing, the pool's poll of every borrowed connection for stray data,
    observability counters, the retry wrapper), a share that shows in a vault request, whose
    work is one script (measured: bench/README.md, "Numbers behind code comments"). The lane
    keeps what those steps are for:

    - a connection goes back to the lane only after a whole reply was read (a Redis error reply
      is a whole reply); after anything else it is disconnected first, so no reply is ever read
      by the wrong caller, which is what the pool's poll guards against;
    - one retry on a connection error, as `vault.redis_client._retry` gives the client: a
      connection that died with a restarted server or a failed-over primary is reopened (a
      Sentinel connection asks the sentinels for the primary again), never a timeout retried;
    - the health check of an idle connection before use (`health_check_interval`);
    - after a fork (gunicorn's workers), a process starts with no connection of its parent's.
    """

    def __init__(self, pool: Any) -> None:
        self.pool = pool
        self._idle: list[Any] = []
        self._pid = os.getpid()

    def reset(self) -> None:
        """Drop every idle connection (new ones come from the pool's connection class)."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.disconnect()

    def call(self, *args: Any) -> Any:
        try:
            packed = [hiredis.pack_command(args)]  # send_packed_command takes a list of chunks
        except TypeError as exc:  # as redis-py's own packer answers a value it cannot send
            raise rexc.DataError(str(exc)) from None
        if self._pid != os.getpid():
            self._idle, self._pid = [], os.getpid()
        try:
            conn = self._idle.pop()  # list.pop and append are atomic: no lock
        except IndexError:
            # redis-py's connections below its public client (make_connection,
            # send_packed_command, read_response): pyproject.toml bounds redis below 9, and a
            # change there fails every script call (tests/test_lane.py).
            conn = self.pool.make_connection()
        try:
            try:
                conn.send_packed_command(packed)
                reply = conn.read_response()
            except rexc.ConnectionError:
                conn.disconnect()
                conn.send_packed_command(packed)
                reply = conn.read_response()
        except rexc.ResponseError:
            self._idle.append(conn)  # an error reply, read whole: the connection is clean
            raise
        except BaseException:
            conn.disconnect()
            self._idle.append(conn)  # reconnects on its next use
            raise
        self._idle.append(conn)
        return reply


class FollowUps:
    """On a Cluster: the other-slot writes of the gated steps (a create, a fill, a reveal),
    sent by one thread per process in batches, so that the request itself makes its two round
    trips and no more. Best effort, as the synchronous replay of the other steps is: the
    ticket's own stream already holds the event. `flush` waits until everything queued so far
    is sent (reads of the global stream and the index call it first, so a process reads its own
    writes; it is also what a test or a shutdown waits on)."""

    def __init__(self, send: Callable[[list[Any]], None]) -> None:
        self._send = send
        self._pending: list[Any] = []
        self._busy = False
        self._cond = threading.Condition()
        self._pid = 0

    def put(self, later: Sequence[Any]) -> None:
        with self._cond:
            self._pending.extend(later)
            if self._pid != os.getpid():  # none yet, or forked: a worker starts its own
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="vault-follow-ups", daemon=True).start()
                atexit.register(self.flush, 2.0)
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: bool(self._pending))
                batch, self._pending, self._busy = self._pending, [], True
            try:
                self._send(batch)
            except Exception:  # the thread must outlive any one batch (`_replay` logs its own)
                log.warning("global audit and agent index not updated after a ticket step",
                            extra={"event": "follow-ups"})
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def flush(self, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)


class Runner:
    """The store's connection to Redis and its settings; the operations (`vault.storage`'s
    other modules) run their scripts and commands through it. Times are milliseconds since the
    epoch, from the app's clock."""

    def __init__(self, client: Any, *, cluster: bool = False, min_replicas: int = 0,
                 wait_timeout_ms: int = 1000, audit_maxlen: int = 1_000_000,
                 ticket_audit_maxlen: int = 1000, audit_ttl_ms: int = 90 * 86400 * 1000,
                 index_ttl_ms: int = 60 * 86400 * 1000, index_cap: int = 500) -> None:
        self.client = client
        self.cluster = cluster
        self.min_replicas = min_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.audit_maxlen = audit_maxlen
        self.ticket_audit_maxlen = ticket_audit_maxlen
        self.audit_ttl_ms = audit_ttl_ms
        # The agents' ticket index: an entry older than the longest life of a ticket record
        # (max TTL + tombstone) indexes nothing; at most `index_cap` tickets per agent.
        self.index_ttl_ms = index_ttl_ms
        self.index_cap = index_cap
        self.follow_ups = FollowUps(self._replay)
        # A plain redis-py client (single Redis, Sentinel) runs its scripts through a lane; a
        # Cluster client (which routes by slot) and the embedded store's fakeredis do not.
        self.lane = Lane(client.connection_pool) if type(client) is redis.Redis \
            and not cluster else None

    def close(self) -> None:
        """Send what a Cluster still has queued, then close every connection: the client's
        pool and the lane's own (which the pool does not track)."""
        self.follow_ups.flush()
        if self.lane is not None:
            self.lane.reset()
        self.client.close()

    def load_scripts(self) -> None:
        """Preload every script so that the first request does not pay a NOSCRIPT round trip."""
        with self._guard():
            for script in SCRIPTS.values():
                self.client.script_load(script.source)

    def ping(self) -> bool:
        with self._guard():
            return bool(self.client.ping())

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE:
            raise Unavailable() from None
        except rexc.ResponseError as exc:
            if str(exc).startswith(_TRANSIENT_REPLIES):
                raise Unavailable() from None
            raise

    def _eval(self, name: str, keys: Sequence[str], args: Sequence[Any], *,
              write: bool = True) -> list[Any]:
        """A script's answer; for a writing ticket script, its result (see `_unwrap`)."""
        raw = self._eval_raw(name, keys, args, write=write)
        if SCRIPTS[name].writing:
            return list(self._unwrap(raw)[1] or [])
        return raw

    def _eval_raw(self, name: str, keys: Sequence[str], args: Sequence[Any], *,
                  write: bool = True) -> list[Any]:
        script = SCRIPTS[name]
        with self._guard():
            try:
                raw, acked = self._run(script.sha, keys, args, write=write, source=None)
            except rexc.NoScriptError:
                raw, acked = self._run(script.sha, keys, args, write=write,
                                       source=script.source)
        if acked is not None and acked < self.min_replicas:
            raise Unavailable("The write was not confirmed by enough replicas. Try again.")
        return raw

    def _unwrap(self, raw: Sequence[Any], *, defer: bool = False
                ) -> tuple[list[str], list[Any]]:
        """(who, result) of a writing ticket script's flat answer (vault.storage.scripts: the
        count of `who`'s fields, those fields, `later`, the result's fields), after replaying
        `later` on a Cluster (or, with `defer`, after queueing it: `FollowUps`)."""
        n = int(raw[0])
        who, later, out = raw[1:1 + n], raw[1 + n], raw[2 + n:]
        if isinstance(later, list) and later:
            if defer:
                self.follow_ups.put(later)
            else:
                self.follow_ups.flush()  # the queued writes of earlier steps go first, in order
                self._replay(later)
        return [text(v) for v in who], list(out)

    def _run(self, sha: str, keys: Sequence[str], args: Sequence[Any], *, write: bool,
             source: str | None) -> tuple[list[Any], int | None]:
        """(script's answer, replicas that acknowledged it, or None when not asked)."""
        if write and self.min_replicas > 0:
            # Same connection, same pipeline: the write is acknowledged only once replicated.
            # On a Cluster, that is a connection to the node serving the ticket's slot.
            client = self._node_client(keys[0]) if self.cluster else self.client
            pipe = client.pipeline(transaction=False)
            if source is None:
                pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)
            else:
                pipe.execute_command("EVAL", source, len(keys), *keys, *args)
            pipe.execute_command("WAIT", self.min_replicas, self.wait_timeout_ms)
            try:
                result, acked = pipe.execute()
            except (rexc.MovedError, rexc.AskError):
                # The slot moved (resharding, failover): learn the new map, the client retries.
                self.client.nodes_manager.initialize()
                raise Unavailable() from None
            return list(result or []), int(acked)
        if source is None:
            if self.lane is not None:
                return list(self.lane.call("EVALSHA", sha, len(keys), *keys, *args) or []), None
            return list(self.client.evalsha(sha, len(keys), *keys, *args) or []), None
        return list(self.client.eval(source, len(keys), *keys, *args) or []), None

    def _write(self, keys: Sequence[str], *commands: Sequence[Any]) -> list[Any]:
        """Plain write commands on one slot as one atomic step (the BATCH script): one round
        trip, and with VAULT_REDIS_MIN_REPLICAS the same WAIT as every script. Their answers,
        in order."""
        args: list[Any] = []
        for command in commands:
            args += [len(command), *command]
        return self._eval("BATCH", keys, args)

    def _node_client(self, key: str) -> Any:
        """A plain client of the Cluster node that serves `key`'s slot now."""
        node = self.client.get_node_from_key(key)
        return self.client.get_redis_connection(node)

    def _pipelined(self, script: Script, run: Callable[[], list[Any]]) -> list[Any]:
        """Run a pipeline that calls `script` by its SHA; on a server that lost its script
        cache (a restart, a failover), load the script and run the pipeline once more."""
        with self._guard():
            try:
                return run()
            except rexc.NoScriptError:
                self.client.script_load(script.source)
                return run()

    def _caught_up(self) -> None:
        """Before reading the global stream or an agent's index on a Cluster: this process's
        queued follow-ups are sent first (it reads its own writes)."""
        if self.cluster:
            self.follow_ups.flush()

    def _replay(self, later: Sequence[Any]) -> None:
        """On a Cluster: the writes ticket scripts left for other slots (the global audit
        stream, the agents' ticket index), in their order, in one pipeline.

        The domain step is done and acknowledged by then, so a failure here never fails it
        (a reveal must not lose its envelope over an index): it is logged, with the events.
        """
        if not later:
            return
        events = []
        try:
            with self._guard():
                pipe = self.client.pipeline(transaction=False)
                for op in later:
                    kind, rest = text(op[0]), op[1:]
                    if kind == "x":
                        fields = pairs(rest)
                        events.append(fields.get("event", ""))
                        pipe.xadd(keys.AUDIT, fields, maxlen=self.audit_maxlen, approximate=True)
                    elif kind == "u":
                        pipe.zrem(keys.mine(text(rest[0])), text(rest[1]))
                    elif kind == "m":
                        key, now_ms = keys.mine(text(rest[0])), int(rest[2])
                        pipe.zadd(key, {text(rest[1]): now_ms})
                        pipe.zremrangebyscore(key, "-inf", now_ms - self.index_ttl_ms)
                        pipe.zremrangebyrank(key, 0, -(self.index_cap + 1))
                        pipe.pexpire(key, self.index_ttl_ms)
                pipe.execute()
        except (Unavailable, rexc.RedisError, rexc.RedisClusterException):
            log.warning("global audit and agent index not updated after a ticket step",
                        extra={"event": ",".join(events) or "index"})
