"""The one class that owns every Redis key and script.

Nothing else in vault builds a key string. Every ticket's keys share the hash tag `{<slot tag>}`
(see `vault.ids`), so each domain step is one single-slot script: one round trip on a single
Redis, a Sentinel primary or a Cluster node. Account keys share the `{acct}` tag for the same
reason (a token lookup also reads the agent's revocation epoch in the same step).

On a Cluster, the two things that live outside a ticket's slot (the global audit stream and the
agents' ticket index) are written by the store right after the script, from the list of writes
the script hands back (see `vault.lua`): the same entries as on a single Redis, one pipeline
later. With `min_replicas`, the script and its `WAIT` share one connection: to the primary (a
Sentinel's current one) or to the Cluster node serving the ticket's slot.

Redis faults are translated here into `Unavailable`; callers never see a redis-py exception.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import logging
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, TypeVar

import hiredis
import redis
import redis.exceptions as rexc

from vault import lua
from vault.errors import Unavailable
from vault.ids import slot_tag, tag_of

T = TypeVar("T")
log = logging.getLogger("vault.storage")
PREFIX = "vault:"
ACCT = PREFIX + "{acct}:"
MINE = ACCT + "mine:"
# Placeholders for the agent a gated script authenticates (vault.lua, "The gate"): a caller that
# does not know yet who is calling passes these, and the script puts the agent's values in.
AGENT = "\x00@agent"
AGENT_NAME = "\x00@name"
AGENT_SESSION = "\x00@session"

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


# Ticket scripts that write: they answer {who, writes to replay, result} (vault.lua).
_WRITING = frozenset({"CREATE_SECRET", "CREATE_REQUEST", "FILL_REQUEST", "REVEAL", "ACK",
                      "DELETE_SECRET", "DISCARD_SECRET", "PURGE", "ASSIGN", "REOPEN"})


def _s(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return "" if value is None else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    try:  # a hash's reply is all bytes: the fast path (a dashboard decodes hundreds of them)
        return {flat[i].decode(): flat[i + 1].decode() for i in range(0, len(flat), 2)}
    except AttributeError:
        return {_s(flat[i]): _s(flat[i + 1]) for i in range(0, len(flat), 2)}


class SidebarRow(NamedTuple):
    """One line of Help Scout's sidebar (the SIDEBAR script): `what` is "request" or a secret's
    kind; `ms` the time shown with `state`; `created_ms` orders the lines; `who` the revealer's
    name when they revealed it and `who_email` their e-mail."""

    what: str
    state: str
    ms: int
    created_ms: int
    who: str
    who_email: str = ""


class SidebarView(NamedTuple):
    """What the SIDEBAR script and the agent lookups answered (`Store.sidebar`)."""

    record: dict[str, str]
    rows: list[SidebarRow]
    deleted: list[tuple[str, int]]  # (secret id, ms), newest first
    more_deleted: int  # deletions beyond those listed
    agent: str | None  # the e-mail mapped to the Help Scout user, if any
    limited_ms: int = 0
    # (name, disabled) of each agent the sidebar names: the assignee, the revealers, `agent`;
    # an e-mail whose agent is gone is left out.
    agents: Mapping[str, tuple[str, bool]] = MappingProxyType({})


@dataclass
class ScriptResult:
    status: str
    values: list[Any] = field(default_factory=list)
    # The agent the step's gate authenticated: ['agent', e-mail, name, role, id, session].
    who: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Gate:
    """What a ticket step checks before anything else, in the same round trip (vault.lua, "The
    gate"): the caller's credential, by the digest of an agent token or a web session, and rate
    limits (a `vault.ratelimit` spec) counted for `identity` ("" for the authenticated agent's
    e-mail). Refusals come back as the statuses `unauthenticated`, `notagent` and `limited`
    (with the seconds to wait)."""

    auth: str = ""  # "token", "session" or "" (nobody to authenticate)
    digest: str = ""
    idle_ms: int = 0
    max_ms: int = 0
    limits: str = ""
    identity: str = ""

    @property
    def empty(self) -> bool:
        return not self.auth and not self.limits


NO_GATE = Gate()


@dataclass(frozen=True)
class HelpdeskNews:
    """What a helpdesk's event says about itself, for the ticket scripts (vault.lua, PURGE):
    its conversation id, its own "updated at" time (ms) and the digest of its signed body.
    `timed` says the helpdesk keeps such a clock, so that a body without a time cannot undo a
    later update; `ordered` makes a purge as stale-refusable as an assignment (a merge, which
    only the unsigned event name asserts)."""

    conversation: str = ""
    updated_ms: int | None = None
    body: str = ""
    timed: bool = False
    ordered: bool = False

    def args(self) -> tuple[str, str | int, str]:
        if self.updated_ms is not None:
            updated: str | int = self.updated_ms
        else:
            updated = "-" if self.timed else ""
        return self.conversation, updated, self.body


NO_NEWS = HelpdeskNews()


@dataclass(frozen=True)
class AuditEvent:
    ts: int
    event: str
    ticket: str
    id: str
    actor: str
    detail: str
    stream_id: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"ts": self.ts, "event": self.event, "ticket": self.ticket, "id": self.id,
                "actor": self.actor, "detail": self.detail}


class _Script:
    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()


class _Lane:
    """How a script reaches a single Redis or a Sentinel's primary: its own few connections,
    made by the client's pool (same address, timeouts, TLS, credentials and Sentinel lookup),
    and the command packed by hiredis in one call.

    Measured (`bench/run --wsgi`, README "Benchmark"): redis-py 8's `Redis.evalsha` spends about
    90 µs of CPU around each call that a bare socket does not (argument re-packing, the pool's
    poll of every borrowed connection for stray data, observability counters, the retry
    wrapper), an eighth of a vault request. The lane keeps what those steps are for:

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


class _FollowUps:
    """On a Cluster: the other-slot writes of the gated steps (a create, a fill, a reveal),
    sent by one thread per process in batches, so that the request itself makes its two round
    trips and no more (PRODUCT.md "Storage"). Best effort, as the synchronous replay of the other
    steps is: the ticket's own stream already holds the event. `flush` waits until everything
    queued so far is sent (reads of the global stream and the index call it first, so a process
    reads its own writes; it is also what a test or a shutdown waits on)."""

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


class Store:
    """Every key, every script. Times are milliseconds since the epoch, from the app's clock."""

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
        self.follow_ups = _FollowUps(self._replay)
        # A plain redis-py client (single Redis, Sentinel) runs its scripts through a lane; a
        # Cluster client (which routes by slot) and the embedded store's fakeredis do not.
        self.lane = _Lane(client.connection_pool) if type(client) is redis.Redis \
            and not cluster else None
        self._scripts = {name: _Script(getattr(lua, name)) for name in (
            "CREATE_SECRET", "CREATE_REQUEST", "FILL_REQUEST", "REVEAL", "ACK", "DELETE_SECRET",
            "DISCARD_SECRET", "PURGE", "REOPEN", "ASSIGN", "TICKET_VIEW", "TICKET_SUMMARY",
            "SIDEBAR", "SWAP_IF_SAME", "SWAP_FIELD_IF_SAME", "AUTHENTICATE", "GATE", "ADD_AGENT",
            "BATCH")}

    def close(self) -> None:
        """Send what a Cluster still has queued, then close every connection: the client's
        pool and the lane's own (which the pool does not track)."""
        self.follow_ups.flush()
        if self.lane is not None:
            self.lane.reset()
        self.client.close()

    # -- plumbing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except _UNAVAILABLE:
            raise Unavailable() from None
        except rexc.ResponseError as exc:
            # OOM under noeviction, a failover in progress, a replica answering: all transient.
            text = str(exc)
            if text.startswith(("OOM", "LOADING", "MASTERDOWN", "READONLY", "TRYAGAIN",
                                "CLUSTERDOWN", "NOREPLICAS")):
                raise Unavailable() from None
            raise

    def load_scripts(self) -> None:
        """Preload every script so that the first request does not pay a NOSCRIPT round trip."""
        with self._guard():
            for script in self._scripts.values():
                self.client.script_load(script.source)

    def _eval(self, name: str, keys: Sequence[str], args: Sequence[Any], *,
              write: bool = True) -> list[Any]:
        """A script's answer; for a writing ticket script, its result (see `_step`)."""
        raw = self._eval_raw(name, keys, args, write=write)
        if name in _WRITING:
            return list(self._unwrap(raw)[1] or [])
        return raw

    def _eval_raw(self, name: str, keys: Sequence[str], args: Sequence[Any], *,
                  write: bool = True) -> list[Any]:
        script = self._scripts[name]
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
        """(who, result) of a writing ticket script's flat answer (vault.lua: the count of
        `who`'s fields, those fields, `later`, the result's fields), after replaying `later` on
        a Cluster (or, with `defer`, after queueing it: `_FollowUps`)."""
        n = int(raw[0])
        who, later, out = raw[1:1 + n], raw[1 + n], raw[2 + n:]
        if isinstance(later, list) and later:
            if defer:
                self.follow_ups.put(later)
            else:
                self.follow_ups.flush()  # the queued writes of earlier steps go first, in order
                self._replay(later)
        return [_s(v) for v in who], list(out)

    def _step(self, name: str, keys: Sequence[str], args: list[Any], gate: Gate,
              now_ms: int) -> ScriptResult:
        """A writing ticket script behind its gate: one round trip on a single Redis or
        Sentinel; on a Cluster the gate first, in the account slot, then the script with the
        agent's values in place of the placeholders."""
        if self.cluster and not gate.empty:
            passed = self.pass_gate(gate, now_ms)
            if passed.status != "ok":
                return passed
            # who: ['agent', e-mail, name, role, id, session] (the gate authenticated), or []
            bound = {AGENT: passed.who[1], AGENT_NAME: passed.who[2],
                     AGENT_SESSION: passed.who[5]} if passed.who else {}
            # Where the placeholders may stand (vault.lua, "The gate"): ARGV[8..11].
            args[7:11] = [bound.get(a, a) if isinstance(a, str) else a for a in args[7:11]]
            args[-9:-3] = self._gate_args(NO_GATE)
            _, out = self._unwrap(self._eval_raw(name, keys, args), defer=True)
            who = passed.who
        else:
            who, out = self._unwrap(self._eval_raw(name, keys, args), defer=self.cluster)
        result = self._result(out)
        result.who = who
        return result

    @staticmethod
    def _credential_key(kind: str, digest: str) -> str:
        """The record of an agent token or helpdesk key ("token"), or of a web session."""
        return f"{ACCT}{'sess' if kind == 'session' else 'tok'}:{digest}"

    def _gate_args(self, gate: Gate) -> list[Any]:
        key = self._credential_key(gate.auth, gate.digest) if gate.auth else ""
        return [key, gate.auth, gate.idle_ms, gate.max_ms, gate.identity, gate.limits]

    def pass_gate(self, gate: Gate, now_ms: int) -> ScriptResult:
        """The gate alone, in the account slot: 'ok' (with `who` when it authenticated someone)
        or its refusal. Like flask-limiter's counters, a rate limit's is not worth a WAIT for
        replicas; a web session's last-seen time is (as in `authenticate`)."""
        raw = self._eval("GATE", [ACCT + "agents"], [PREFIX, now_ms, *self._gate_args(gate)],
                         write=gate.auth == "session")
        status = _s(raw[0])
        if status == "ok":
            return ScriptResult("ok", [], [_s(v) for v in raw[1] or []])
        return ScriptResult(status, list(raw[1:]))

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

    def _ticket_args(self, tag: str, now_ms: int, actor: str, *extra: Any,
                     gate: Gate = NO_GATE) -> list[Any]:
        return [PREFIX, tag, now_ms, self.ticket_audit_maxlen, self.audit_maxlen,
                self.audit_ttl_ms, "" if self.cluster else self.audit_key(), actor, *extra,
                *self._gate_args(gate), "" if self.cluster else MINE, self.index_ttl_ms,
                self.index_cap]

    def _result(self, raw: list[Any]) -> ScriptResult:
        if not raw:
            return ScriptResult("notfound")
        return ScriptResult(_s(raw[0]), list(raw[1:]))

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
                    kind, rest = _s(op[0]), op[1:]
                    if kind == "x":
                        fields = _pairs(rest)
                        events.append(fields.get("event", ""))
                        pipe.xadd(self.audit_key(), fields,
                                  maxlen=self.audit_maxlen, approximate=True)
                    elif kind == "u":
                        pipe.zrem(self.mine_key(_s(rest[0])), _s(rest[1]))
                    elif kind == "m":
                        key, now_ms = self.mine_key(_s(rest[0])), int(rest[2])
                        pipe.zadd(key, {_s(rest[1]): now_ms})
                        pipe.zremrangebyscore(key, "-inf", now_ms - self.index_ttl_ms)
                        pipe.zremrangebyrank(key, 0, -(self.index_cap + 1))
                        pipe.pexpire(key, self.index_ttl_ms)
                pipe.execute()
        except (Unavailable, rexc.RedisError, rexc.RedisClusterException):
            log.warning("global audit and agent index not updated after a ticket step",
                        extra={"event": ",".join(events) or "index"})

    # -- key names (the only place they are built) --------------------------------------------

    @staticmethod
    def _k(tag: str, kind: str, name: str) -> str:
        return f"{PREFIX}{{{tag}}}:{kind}:{name}"

    def ticket_key(self, ticket: str) -> str:
        return self._k(slot_tag(ticket), "t", ticket)

    def secret_key(self, id_: str) -> str:
        return self._k(tag_of(id_), "s", id_)

    def envelope_key(self, id_: str) -> str:
        return self._k(tag_of(id_), "e", id_)

    def request_key(self, id_: str) -> str:
        return self._k(tag_of(id_), "r", id_)

    def gone_key(self, id_: str) -> str:
        return self._k(tag_of(id_), "g", id_)

    @staticmethod
    def audit_key() -> str:
        return PREFIX + "audit"

    @staticmethod
    def _agent_key(email: str) -> str:
        return f"{ACCT}agent:{email}"

    @staticmethod
    def mine_key(email: str) -> str:
        """The agent's index of the tickets assigned to them, scored by last activity (ms)."""
        return MINE + email

    # -- health -------------------------------------------------------------------------------

    def ping(self) -> bool:
        with self._guard():
            return bool(self.client.ping())

    # -- secrets and requests -------------------------------------------------------------------

    def create_secret(self, *, ticket: str, id_: str, kind: str, envelope: bytes, now_ms: int,
                      expires_ms: int, meta_ttl_ms: int, manage_digest: str, max_waiting: int,
                      actor: str, gate: Gate = NO_GATE) -> ScriptResult:
        """A share-flow submission: 'full' when `max_waiting` of the ticket's share-flow
        secrets are waiting (its room)."""
        return self._step("CREATE_SECRET", [self.ticket_key(ticket)], self._ticket_args(
            slot_tag(ticket), now_ms, actor, ticket, id_, kind, envelope, expires_ms,
            expires_ms - now_ms, meta_ttl_ms, manage_digest, max_waiting, gate=gate),
            gate, now_ms)

    def create_request(self, *, ticket: str, id_: str, now_ms: int, expires_ms: int,
                       meta_ttl_ms: int, note: str, agent: str, tombstone_ms: int,
                       gate: Gate = NO_GATE) -> ScriptResult:
        """`agent` may be AGENT behind a gate that authenticates."""
        return self._step("CREATE_REQUEST", [self.ticket_key(ticket)], self._ticket_args(
            slot_tag(ticket), now_ms, agent, ticket, id_, expires_ms, meta_ttl_ms, note,
            tombstone_ms, gate=gate), gate, now_ms)

    def fill_request(self, *, request_id: str, secret_id: str, kind: str, envelope: bytes,
                     now_ms: int, expires_ms: int, meta_ttl_ms: int, manage_digest: str,
                     envelope_digest: str, actor: str, gate: Gate = NO_GATE) -> ScriptResult:
        """A fill takes no place in the share flow's room (`max_waiting` of `create_secret`)."""
        return self._step("FILL_REQUEST", [self.request_key(request_id)], self._ticket_args(
            tag_of(request_id), now_ms, actor, secret_id, kind, envelope, expires_ms,
            expires_ms - now_ms, meta_ttl_ms, manage_digest, envelope_digest, gate=gate),
            gate, now_ms)

    def reveal(self, *, secret_id: str, agent: str, agent_name: str, session: str, now_ms: int,
               grace_ms: int, policy: str, gate: Gate = NO_GATE) -> ScriptResult:
        """`agent`, `agent_name` and `session` may be the placeholders (AGENT, ...) behind a
        gate that authenticates."""
        return self._step(
            "REVEAL", [self.secret_key(secret_id), self.envelope_key(secret_id)],
            self._ticket_args(tag_of(secret_id), now_ms, agent, agent, agent_name, session,
                              grace_ms, policy, gate=gate), gate, now_ms)

    def ack(self, *, secret_id: str, session: str, now_ms: int, actor: str) -> ScriptResult:
        return self._result(self._eval(
            "ACK", [self.secret_key(secret_id), self.envelope_key(secret_id)],
            self._ticket_args(tag_of(secret_id), now_ms, actor, session)))

    def delete_secret(self, *, secret_id: str, manage_digest: str, now_ms: int,
                      gone_ms: int) -> ScriptResult:
        return self._result(self._eval(
            "DELETE_SECRET", [self.secret_key(secret_id), self.envelope_key(secret_id)],
            self._ticket_args(tag_of(secret_id), now_ms, "customer", manage_digest, gone_ms)))

    def discard_secret(self, *, secret_id: str, agent: str, admin: bool, now_ms: int,
                       gone_ms: int, ticket: str = "") -> ScriptResult:
        """The agent `agent` (the ticket's assignee, or an admin) deletes a waiting secret
        unread; with `ticket`, only a secret of that ticket (another's is `notfound`)."""
        return self._result(self._eval(
            "DISCARD_SECRET", [self.secret_key(secret_id), self.envelope_key(secret_id)],
            self._ticket_args(tag_of(secret_id), now_ms, agent, "1" if admin else "0", gone_ms,
                              ticket)))

    def purge(self, *, ticket: str, reason: str, now_ms: int, tombstone_ms: int,
              actor: str, news: HelpdeskNews = NO_NEWS) -> int | None:
        """The number of live items purged; None when `news.ordered` and the news is stale."""
        result = self._result(self._eval("PURGE", [self.ticket_key(ticket)], self._ticket_args(
            slot_tag(ticket), now_ms, actor, ticket, reason, tombstone_ms, *news.args(),
            "1" if news.ordered else "")))
        if result.status == "stale":
            return None
        return int(_s(result.values[0]))

    def reopen(self, *, ticket: str, now_ms: int, actor: str, tombstone_ms: int,
               news: HelpdeskNews = NO_NEWS) -> ScriptResult:
        return self._result(self._eval("REOPEN", [self.ticket_key(ticket)], self._ticket_args(
            slot_tag(ticket), now_ms, actor, ticket, "", tombstone_ms, *news.args())))

    def assign(self, *, ticket: str, agent: str, now_ms: int, actor: str, tombstone_ms: int,
               news: HelpdeskNews = NO_NEWS) -> ScriptResult:
        return self._result(self._eval("ASSIGN", [self.ticket_key(ticket)], self._ticket_args(
            slot_tag(ticket), now_ms, actor, ticket, agent, tombstone_ms, *news.args())))

    @staticmethod
    def _reason(marker: Any) -> str:
        """The reason part of a gone-marker ("<reason>:<ticket>")."""
        return _s(marker).split(":", 1)[0]

    def secret_meta(self, secret_id: str) -> tuple[dict[str, str], bool, str]:
        """(secret hash, envelope present, gone reason) in one round trip."""
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.secret_key(secret_id))
            pipe.exists(self.envelope_key(secret_id))
            pipe.get(self.gone_key(secret_id))
            h, live, gone = pipe.execute()
        return {_s(k): _s(v) for k, v in h.items()}, bool(live), self._reason(gone)

    def request_meta(self, request_id: str) -> tuple[dict[str, str], str]:
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            pipe.hgetall(self.request_key(request_id))
            pipe.get(self.gone_key(request_id))
            h, gone = pipe.execute()
        return {_s(k): _s(v) for k, v in h.items()}, self._reason(gone)

    def ticket_view(self, ticket: str, *, now_ms: int, events: int = 100
                    ) -> tuple[dict[str, str], list[tuple[str, str, bool, dict[str, str]]],
                               list[AuditEvent]]:
        raw = self._eval("TICKET_VIEW", [self.ticket_key(ticket)],
                         self._ticket_args(slot_tag(ticket), now_ms, "", ticket, events),
                         write=False)
        record = _pairs(raw[0])
        items = [(_s(kind), _s(id_), bool(live), _pairs(h)) for kind, id_, live, h in raw[1]]
        return record, items, [self._event(e) for e in raw[2]]

    def agent_ticket_names(self, email: str, limit: int) -> list[tuple[str, int]]:
        """(ticket, last activity ms) from the agent's index, most recent first."""
        self._caught_up()
        with self._guard():
            rows = self.client.zrevrange(self.mine_key(email), 0, limit - 1, withscores=True)
        return [(_s(name), int(score)) for name, score in rows]

    def ticket_summaries(self, tickets: Sequence[str], *, now_ms: int
                         ) -> list[tuple[dict[str, str], list[tuple[str, str, bool, dict[str, str]]]]]:
        """(record, items) of each ticket, as in `ticket_view` without events: one pipeline."""
        if not tickets:
            return []
        script = self._scripts["TICKET_SUMMARY"]

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            for ticket in tickets:
                args = self._ticket_args(slot_tag(ticket), now_ms, "", ticket)
                # Not pipe.evalsha: a Cluster pipeline refuses that method, yet it routes the
                # command itself by its key (one batch per node, tickets in many slots).
                pipe.execute_command("EVALSHA", script.sha, 1, self.ticket_key(ticket), *args)
            return list(pipe.execute())

        raw = self._pipelined(script, run)
        return [(_pairs(record), [(_s(kind), _s(id_), bool(live), _pairs(h))
                                  for kind, id_, live, h in items])
                for record, items in raw]

    def _pipelined(self, script: _Script, run: Callable[[], list[Any]]) -> list[Any]:
        """Run a pipeline that calls `script` by its SHA; on a server that lost its script
        cache (a restart, a failover), load the script and run the pipeline once more."""
        with self._guard():
            try:
                return run()
            except rexc.NoScriptError:
                self.client.script_load(script.source)
                return run()

    def sidebar(self, ticket: str, helpscout_user: str, *, now_ms: int,
                limits: Sequence[tuple[int, int]] = (), shown_deletions: int = 20
                ) -> SidebarView:
        """Help Scout's sidebar in two round trips. First the SIDEBAR script (the call counted
        against `limits`, each (amount, seconds) per ticket; then the ticket's record, rows and
        recent customer deletions), pipelined with the vault agent mapped to the Help Scout user
        id `helpscout_user` (None when unknown or not given); then, in one pipeline of the
        account slot, the name and disabled flag of every agent the answer names. `limited_ms`
        > 0: over a limit, for that long; nothing else was read."""
        script = self._scripts["SIDEBAR"]
        args = self._ticket_args(slot_tag(ticket), now_ms, "", ticket, shown_deletions,
                                 len(limits), *(n for limit in limits for n in limit))

        def run() -> list[Any]:
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("EVALSHA", script.sha, 1, self.ticket_key(ticket), *args)
            if helpscout_user:
                pipe.get(f"{ACCT}hsuser:{helpscout_user}")
            return list(pipe.execute())

        raw = self._pipelined(script, run)
        agent = (_s(raw[1]) or None) if helpscout_user else None
        if _s(raw[0][0]) == "limited":
            return SidebarView({}, [], [], 0, agent, limited_ms=int(raw[0][1]))
        record, rows, deleted, more = raw[0]
        view = SidebarView(
            _pairs(record),
            [SidebarRow(_s(what), _s(state), int(ms or 0), int(created or 0), _s(who), _s(email))
             for what, state, ms, created, who, email in rows],
            [(_s(id_), int(ms)) for id_, ms in deleted], int(more), agent)
        named = {view.record.get("assignee", ""), agent or "", *(r.who_email for r in view.rows)}
        return view._replace(agents=self.agent_names(sorted(e for e in named if e)))

    def agent_names(self, emails: Sequence[str]) -> dict[str, tuple[str, bool]]:
        """(name, disabled) of each agent of `emails` that exists, in one round trip (none for
        no e-mail); a nameless agent is named by their e-mail."""
        if not emails:
            return {}
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for email in emails:
                pipe.hmget(self._agent_key(email), "name", "disabled", "email")
            found = pipe.execute()
        return {email: (_s(name) or email, _s(disabled) == "1")
                for email, (name, disabled, known) in zip(emails, found, strict=True) if known}

    def ticket_record(self, ticket: str) -> dict[str, str]:
        with self._guard():
            return {_s(k): _s(v) for k, v in self.client.hgetall(self.ticket_key(ticket)).items()}

    # -- audit ----------------------------------------------------------------------------------

    @staticmethod
    def _event(entry: Any) -> AuditEvent:
        stream_id, fields = entry
        # redis-py parses stream replies into dicts; replies from a script stay flat lists.
        f = _pairs(fields) if isinstance(fields, list) else {_s(k): _s(v) for k, v in
                                                             fields.items()}
        return AuditEvent(ts=int(f.get("ts") or 0), event=f.get("event", ""),
                          ticket=f.get("ticket", ""), id=f.get("id", ""),
                          actor=f.get("actor", ""), detail=f.get("detail", ""),
                          stream_id=_s(stream_id))

    def audit_tail(self, count: int = 100, *, after: str | None = None,
                   block_ms: int | None = None) -> list[AuditEvent]:
        """The last `count` events, oldest first; or those after `after` (waiting `block_ms`)."""
        self._caught_up()
        with self._guard():
            if after is None:
                entries = list(reversed(self.client.xrevrange(self.audit_key(), count=count)))
            else:
                res = self.client.xread({self.audit_key(): after}, count=count, block=block_ms)
                entries = res[0][1] if res else []
        return [self._event(e) for e in entries]

    def audit_before(self, before: str | None = None, count: int = 1000, *,
                     ticket: str | None = None) -> list[AuditEvent]:
        """Up to `count` events older than stream id `before` (the newest if None), newest
        first: the global stream, or `ticket`'s own. Paging backwards through the log."""
        key = self.audit_key() if ticket is None else self._k(slot_tag(ticket), "log", ticket)
        if ticket is None:
            self._caught_up()
        with self._guard():
            entries = self.client.xrevrange(key, "+" if before is None else "(" + before, "-",
                                            count=count)
        return [self._event(e) for e in entries]

    def ticket_audit(self, ticket: str, count: int = 100, *, after: str | None = None,
                     block_ms: int | None = None) -> list[AuditEvent]:
        """Like `audit_tail`, for one ticket's own stream."""
        key = self._k(slot_tag(ticket), "log", ticket)
        with self._guard():
            if after is None:
                entries = list(reversed(self.client.xrevrange(key, count=count)))
            else:
                res = self.client.xread({key: after}, count=count, block=block_ms)
                entries = res[0][1] if res else []
        return [self._event(e) for e in entries]

    def add_audit(self, *, now_ms: int, event: str, actor: str, detail: str = "",
                  ticket: str = "") -> None:
        """An event that belongs to no ticket (logins, keys, accounts): the global stream only."""
        self._write([self.audit_key()], [
            "XADD", self.audit_key(), "MAXLEN", "~", self.audit_maxlen, "*", "ts", now_ms,
            "event", event, "ticket", ticket, "id", "", "actor", actor, "detail", detail])

    # -- webhooks -------------------------------------------------------------------------------

    def _webhook_key(self, source: str, digest: str) -> str:
        return f"{PREFIX}wh:{source}:{digest}"

    def webhook_claim(self, source: str, digest: str, ttl_ms: int) -> str | None:
        """Mark a delivery as seen. None if it is new; else the stored result of the first one."""
        key = self._webhook_key(source, digest)
        claimed, first = self._write([key], ["SET", key, "", "NX", "PX", ttl_ms], ["GET", key])
        return None if claimed else _s(first)

    def webhook_done(self, source: str, digest: str, result: dict[str, Any], ttl_ms: int) -> None:
        key = self._webhook_key(source, digest)
        self._write([key], ["SET", key, json.dumps(result), "PX", ttl_ms])

    def webhook_forget(self, source: str, digest: str) -> None:
        """A delivery whose handling failed is forgotten, so the helpdesk's retry is acted on."""
        key = self._webhook_key(source, digest)
        with contextlib.suppress(Unavailable):
            self._write([key], ["DEL", key])

    def remember_conversation(self, conversation: str, ticket: str, ttl_ms: int) -> None:
        key = f"{PREFIX}hs:{conversation}"
        self._write([key], ["SET", key, ticket, "PX", ttl_ms])

    def conversation_ticket(self, conversation: str) -> str | None:
        with self._guard():
            value = self.client.get(f"{PREFIX}hs:{conversation}")
        return _s(value) or None

    # -- key rotation -----------------------------------------------------------------------------

    def iter_envelope_keys(self) -> Iterator[tuple[str, str]]:
        """(key, secret id) of every stored envelope, by SCAN (no KEYS, no blocking)."""
        with self._guard():
            for key in self.client.scan_iter(match=f"{PREFIX}{{*}}:e:*", count=1000):
                name = _s(key)
                yield name, name[-28:]

    def get_raw(self, key: str) -> bytes | None:
        with self._guard():
            value = self.client.get(key)
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    def wrapped_agent_secrets(self) -> list[tuple[str, bytes]]:
        """(e-mail, wrapped TOTP secret) of every agent that has one, for key rotation."""
        return [(a["email"], a["totp"].encode()) for a in self.list_agents() if a.get("totp")]

    def swap_agent_secret(self, email: str, expected: bytes, replacement: bytes) -> bool:
        """Compare-and-set of an agent's wrapped TOTP secret (rotation never undoes a reset)."""
        out = self._eval("SWAP_FIELD_IF_SAME", [self._agent_key(email)],
                         ["totp", expected, replacement])
        return _s(out[0]) == "1"

    def swap_if_same(self, key: str, expected: bytes, replacement: bytes) -> bool:
        """Compare-and-set for rotation: writes only if the stored value is still `expected`."""
        return _s(self._eval("SWAP_IF_SAME", [key], [expected, replacement])[0]) == "1"

    # -- accounts -----------------------------------------------------------------------------

    def authenticate(self, *, kind: str, digest: str, now_ms: int, idle_ms: int,
                     max_ms: int) -> list[str] | None:
        key = self._credential_key(kind, digest)
        raw = self._eval("AUTHENTICATE", [key], [PREFIX, now_ms, kind, idle_ms, max_ms],
                         write=kind == "session")
        return [_s(v) for v in raw] if raw else None

    def get_agent(self, email: str) -> dict[str, str] | None:
        with self._guard():
            h = self.client.hgetall(self._agent_key(email))
        return {_s(k): _s(v) for k, v in h.items()} or None

    def list_agents(self) -> list[dict[str, str]]:
        with self._guard():
            emails = sorted(_s(e) for e in self.client.smembers(ACCT + "agents"))
            pipe = self.client.pipeline(transaction=False)
            for email in emails:
                pipe.hgetall(self._agent_key(email))
            rows = pipe.execute()
        return [{_s(k): _s(v) for k, v in h.items()} for h in rows if h]

    def add_agent(self, email: str, fields: dict[str, Any]) -> bool:
        """Create the agent; False if the e-mail is taken."""
        flat: list[Any] = []
        # A random epoch: an agent removed and added again never matches an old session.
        for name, value in {**fields, "email": email, "epoch": secrets.token_hex(8)}.items():
            flat += [name, value]
        hs_id = fields.get("helpscout_id") or ""
        out = self._eval("ADD_AGENT", [ACCT + "agents", self._agent_key(email)],
                         [email, f"{ACCT}hsuser:{hs_id}" if hs_id else "", *flat])
        return bool(int(_s(out[0])))

    def update_agent(self, email: str, fields: dict[str, Any], *, revoke: bool = False) -> bool:
        """Change fields; with `revoke`, bump the epoch: every session and token dies at once."""
        key = self._agent_key(email)
        with self._guard():
            old_hs_id = self.client.hget(key, "helpscout_id")
            if old_hs_id is None and not self.client.exists(key):
                return False
        keys, commands = [key], []
        if fields:
            commands.append(["HSET", key, *(x for kv in fields.items() for x in kv)])
        if revoke:
            commands.append(["HSET", key, "epoch", secrets.token_hex(8)])
        if "helpscout_id" in fields and _s(old_hs_id) != _s(fields["helpscout_id"]):
            if old_hs_id:
                keys.append(f"{ACCT}hsuser:{_s(old_hs_id)}")
                commands.append(["DEL", keys[-1]])
            if fields["helpscout_id"]:
                keys.append(f"{ACCT}hsuser:{fields['helpscout_id']}")
                commands.append(["SET", keys[-1], email])
        if commands:
            self._write(keys, *commands)
        return True

    def remove_agent(self, email: str) -> bool:
        with self._guard():
            agent = {_s(k): _s(v) for k, v in self.client.hgetall(self._agent_key(email)).items()}
            if not agent:
                return False
            token_ids = [_s(t) for t in self.client.smembers(f"{ACCT}toks:{email}")]
            digests = [_s(d) for d in (self.client.hmget(f"{ACCT}tokids", token_ids)
                                       if token_ids else []) if d]
        gone = [self._agent_key(email), f"{ACCT}toks:{email}",
                *(f"{ACCT}tok:{d}" for d in digests)]
        if agent.get("helpscout_id"):
            gone.append(f"{ACCT}hsuser:{agent['helpscout_id']}")
        commands: list[list[Any]] = [["DEL", *gone], ["SREM", ACCT + "agents", email]]
        if token_ids:
            commands.append(["HDEL", f"{ACCT}tokids", *token_ids])
        self._write([*gone, ACCT + "agents", f"{ACCT}tokids"], *commands)
        return True

    def agent_by_helpscout_id(self, hs_id: str) -> str | None:
        with self._guard():
            return _s(self.client.get(f"{ACCT}hsuser:{hs_id}")) or None

    def add_token(self, *, digest: str, token_id: str, owner: str, kind: str, epoch: str,
                  now_ms: int) -> None:
        token_key, owner_key = f"{ACCT}tok:{digest}", (
            f"{ACCT}toks:{owner}" if kind == "token" else f"{ACCT}apikeys")
        self._write(
            [token_key, f"{ACCT}tokids", owner_key],
            ["HSET", token_key, "type", kind, "owner", owner, "id", token_id, "epoch", epoch,
             "created_at", now_ms],
            ["HSET", f"{ACCT}tokids", token_id, digest],
            ["SADD", owner_key, token_id] if kind == "token"
            else ["HSET", owner_key, owner, token_id])

    def list_tokens(self, owner: str) -> list[dict[str, str]]:
        with self._guard():
            ids = sorted(_s(t) for t in self.client.smembers(f"{ACCT}toks:{owner}"))
            return self._token_rows(ids)

    def _token_rows(self, ids: list[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        digests = self.client.hmget(f"{ACCT}tokids", ids)
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.hgetall(f"{ACCT}tok:{_s(digest)}")
        rows = pipe.execute()
        out = []
        for h in rows:
            row = {_s(k): _s(v) for k, v in h.items()}
            if row:
                out.append(row)
        return out

    def list_api_keys(self) -> list[dict[str, str]]:
        with self._guard():
            names = {_s(k): _s(v) for k, v in self.client.hgetall(f"{ACCT}apikeys").items()}
            return self._token_rows(sorted(names.values()))

    def api_key_id(self, name: str) -> str | None:
        with self._guard():
            return _s(self.client.hget(f"{ACCT}apikeys", name)) or None

    def revoke_token(self, token_id: str, *, kind: str) -> dict[str, str] | None:
        """Delete an agent token (`kind="token"`) or helpdesk key (`"apikey"`) by its public id.

        Returns what it was; None if no such id of that kind exists (nothing is deleted).
        """
        with self._guard():
            digest = _s(self.client.hget(f"{ACCT}tokids", token_id))
            if not digest:
                return None
            row = {_s(k): _s(v) for k, v in self.client.hgetall(f"{ACCT}tok:{digest}").items()}
            if row.get("type") != kind:
                return None
        commands: list[list[Any]] = [["DEL", f"{ACCT}tok:{digest}"],
                                     ["HDEL", f"{ACCT}tokids", token_id]]
        if row.get("type") == "token":
            commands.append(["SREM", f"{ACCT}toks:{row.get('owner', '')}", token_id])
        elif row.get("owner"):
            commands.append(["HDEL", f"{ACCT}apikeys", row["owner"]])
        self._write([c[1] for c in commands], *commands)
        return row

    def add_session(self, *, digest: str, session_id: str, email: str, epoch: str,
                    now_ms: int, idle_ms: int) -> None:
        key = f"{ACCT}sess:{digest}"
        self._write([key], ["HSET", key, "type", "session", "owner", email, "id", session_id,
                            "epoch", epoch, "created_at", now_ms, "seen_at", now_ms],
                    ["PEXPIRE", key, idle_ms])

    def delete_session(self, digest: str) -> None:
        key = f"{ACCT}sess:{digest}"
        self._write([key], ["DEL", key])

    def put_sign_in(self, digest: str, record: str, ttl_ms: int) -> None:
        """An identity-provider sign-in in progress, under the digest of its `state`."""
        key = f"{ACCT}sso:{digest}"
        self._write([key], ["SET", key, record, "PX", ttl_ms])

    def take_sign_in(self, digest: str) -> str | None:
        """The sign-in of that `state` digest, read and deleted in one step: a state is good
        once, so a replayed callback finds nothing."""
        key = f"{ACCT}sso:{digest}"
        return _s(self._write([key], ["GET", key], ["DEL", key])[0]) or None

    # -- maintenance ----------------------------------------------------------------------------

    def keys_of_ticket(self, ticket: str) -> list[str]:
        """Every key in the ticket's hash tag (tests and diagnostics; SCAN, never KEYS)."""
        with self._guard():
            return sorted(_s(k) for k in self.client.scan_iter(
                match=f"{PREFIX}{{{slot_tag(ticket)}}}:*", count=1000))

    def call(self, fn: Callable[[Any], T]) -> T:
        """Run a raw client call under the store's error translation (CLI diagnostics only)."""
        with self._guard():
            return fn(self.client)
