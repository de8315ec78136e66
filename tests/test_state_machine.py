"""The service layer against a model: a Hypothesis state machine on the real Redis.

Agents with several sessions each (API tokens and web logins, turned into principals by the
real lookups), tickets, requests and secrets; rules create and fill requests, share secrets,
reveal them (by the assignee, by another agent, by another session of the assignee, by the
winning session again), acknowledge, let the customer delete, let an agent or an admin discard
(the assignee's and admins' deletion without the manage token), close (purge), reopen, assign
(as the helpdesk does, also to an e-mail that is no agent, or to nobody) and move the injected
clock (past the grace window, past expiry). After every step the service's own answers
(`secret_meta`, `request_state`, `ticket_view`, and every 403/404/409/410 with its reason) must
equal the model's, and:

- no secret's envelope ever reached more than one session (its re-fetches inside the grace
  window come from that same session);
- no session of anyone but the ticket's assignee ever got one;
- a closed ticket holds no waiting secret and no open request;
- the ticket's room counts share-flow secrets only: a request's fill is never refused as full.

Each example starts from an empty Redis and the same clock, with one of three configurations
(grace 60 s or 0, unassigned policy claim or deny, a ticket cap of 2 waiting secrets or 100).

CI runs a fixed, derandomized budget. A longer, randomized run by hand:

    VAULT_FUZZ_LONG=1 .venv/bin/python -m pytest tests/test_state_machine.py -q

(`VAULT_FUZZ_EXAMPLES` and `VAULT_FUZZ_STEPS` override its size.)
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from harness import Clock, RedisServer, base_config, private_redis
from helpers import sealed
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
    run_state_machine_as_test,
)

from vault import create_app, ids
from vault.crypto.tokens import MANAGE_TOKEN, new_token
from vault.errors import VaultError
from vault.extension import VaultExtension
from vault.service import Principal, iso
from vault.storage.keys import envelope as envelope_key

LONG = os.environ.get("VAULT_FUZZ_LONG") == "1"
EXAMPLES = int(os.environ.get("VAULT_FUZZ_EXAMPLES", 3000 if LONG else 200))
STEPS = int(os.environ.get("VAULT_FUZZ_STEPS", 60 if LONG else 40))
SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=STEPS, derandomize=not LONG,
                    database=None, deadline=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])

START = 1_790_000_000.0  # every example starts at the same instant
DEFAULT_TTL = 3600
MAX_TTL = 7200
GRACE = 60
PASSWORD = "correct horse battery staple"
TICKETS = ("T1", "T2")
GHOST = "ghost@example.com"  # assigned by the helpdesk, but no vault agent
KINDS = ("wordpress", "sftp", "other")
# Clock moves that sit on the boundaries: grace end, TTL end, a second either side.
STEPS_S = (1, 30, GRACE - 1, GRACE, GRACE + 1, 600, DEFAULT_TTL - 1, DEFAULT_TTL,
           DEFAULT_TTL + 1, MAX_TTL)

CONFIGS: dict[str, dict[str, Any]] = {
    "grace-claim-cap2": {"reveal_grace": GRACE, "unassigned": "claim",
                         "max_waiting_per_ticket": 2},
    "nograce-claim": {"reveal_grace": 0, "unassigned": "claim", "max_waiting_per_ticket": 100},
    "grace-deny-cap2": {"reveal_grace": GRACE, "unassigned": "deny",
                        "max_waiting_per_ticket": 2},
}


# -- the model ----------------------------------------------------------------------------------

@dataclass
class Session:
    principal: Principal

    @property
    def agent(self) -> str:
        return self.principal.email

    @property
    def id(self) -> str:
        return self.principal.session


@dataclass
class TicketModel:
    assignee: str = ""
    closed: bool = False
    closed_at: int | None = None
    purged: int = 0


@dataclass
class SecretModel:
    id: str
    ticket: str
    kind: str
    envelope: str
    expires: int
    manage: str
    request: str = ""
    state: str = "waiting"  # waiting, revealed, deleted, discarded, purged
    stored: bool = True  # the envelope is still in Redis
    revealed_at: int = 0
    revealed_by: str = ""  # the agent's display name
    session: str = ""  # the winning session
    grace_until: int = 0


@dataclass
class RequestModel:
    id: str
    ticket: str
    expires: int
    state: str = "open"  # open, submitted, revealed, purged
    secret_id: str = ""
    envelope: str = ""  # of its current fill, for a retry


@dataclass
class World:
    """What one example knows outside Hypothesis: the apps (one per configuration)."""

    apps: dict[str, VaultExtension]
    clock: Clock
    redis: redis.Redis
    # (operation, status, reason or detail) of every call, over all examples: proof of reach.
    seen: Counter[tuple[str, int, str]] = field(default_factory=Counter)


Outcome = tuple[Any, ...]


def outcome(call: Callable[[], Any]) -> tuple[int, Any]:
    """(200, result) or (status, the error's extra fields)."""
    try:
        return 200, call()
    except VaultError as exc:
        return exc.status, exc.extra


class VaultMachine(RuleBasedStateMachine):
    # Choices are drawn from lists in creation order, never sorted by (random) id: a
    # derandomized run must make the same choices every time.
    agents = Bundle("agents")
    requests = Bundle("requests")
    secrets = Bundle("secrets")

    def __init__(self, world: World) -> None:
        super().__init__()
        world.redis.flushdb()
        world.clock.now = START
        self.world = world
        self.ext: VaultExtension | None = None
        self.grace = 0
        self.claim = True
        self.cap = 0
        self.sessions: dict[str, list[Session]] = {}
        self.names: dict[str, str] = {}
        self.tickets: dict[str, TicketModel] = {t: TicketModel() for t in TICKETS}
        self.secret_models: dict[str, SecretModel] = {}
        self.request_models: dict[str, RequestModel] = {}
        # Every session that ever got a secret's envelope, and under which assignee.
        self.delivered: dict[str, set[str]] = {}
        self.agent_count = 0
        self.admin: Session | None = None  # an admin, apart from the agents who reveal

    # -- helpers ---------------------------------------------------------------------------

    @property
    def svc(self) -> Any:
        assert self.ext is not None
        return self.ext.vault

    @property
    def now(self) -> int:
        return int(self.world.clock.now * 1000)

    def new_agent(self) -> str:
        assert self.ext is not None
        self.agent_count += 1
        email = f"agent{self.agent_count}@example.com"
        name = f"Agent {self.agent_count}"
        self.ext.accounts.add_agent(email, PASSWORD, name=name)
        self.names[email] = name
        self.sessions[email] = []
        self.open_session(email, web=False)
        return email

    def open_session(self, email: str, *, web: bool) -> Session:
        assert self.ext is not None
        accounts = self.ext.accounts
        if web:
            cookie, _ = accounts.login(email, PASSWORD)
            who = accounts.authenticate_session(cookie)
        else:
            token, _ = accounts.create_token(email)
            who = accounts.authenticate_bearer(token)
        assert who is not None and who.email == email
        session = Session(who)
        self.sessions[email].append(session)
        return session

    def waiting(self, ticket: str) -> int:
        """Share-flow secrets waiting on `ticket`: what its room counts (fills do not)."""
        return sum(1 for s in self.secret_models.values()
                   if s.ticket == ticket and s.state == "waiting" and self.now < s.expires
                   and not s.request)

    def check(self, what: str, got: tuple[int, Any], expected: Outcome) -> None:
        """Compare (status, reason-ish) of a call with the model's expectation."""
        status, body = got
        label = str(expected[1]) if status == 200 and len(expected) > 1 else \
            str(body.get("reason")) if status != 200 else ""
        self.world.seen[(what.split(" ")[0], status, label)] += 1
        if status == 200:
            assert expected[0] == 200, f"{what}: got 200 {body}, expected {expected}"
            return
        reason = body.get("reason")
        assert (status, reason) == expected[:2], f"{what}: got {status} {body}, expected {expected}"

    # -- setup -----------------------------------------------------------------------------

    @initialize(target=agents, config=st.sampled_from(sorted(CONFIGS)))
    def setup(self, config: str) -> Any:
        self.ext = self.world.apps[config]
        self.grace = CONFIGS[config]["reveal_grace"]
        self.claim = CONFIGS[config]["unassigned"] == "claim"
        self.cap = CONFIGS[config]["max_waiting_per_ticket"]
        first, second = self.new_agent(), self.new_agent()
        self.open_session(first, web=True)  # a web login beside the first one's API token
        self.open_session(second, web=False)  # and a second token for the other
        assert self.ext is not None
        self.ext.accounts.add_agent("boss@example.com", PASSWORD, name="Boss", admin=True)
        token, _ = self.ext.accounts.create_token("boss@example.com")
        boss = self.ext.accounts.authenticate_bearer(token)
        assert boss is not None and boss.is_admin
        self.admin = Session(boss)
        return multiple(first, second)

    @rule(target=agents)
    def add_agent(self) -> str:
        return self.new_agent()

    @rule(agent=agents, web=st.booleans())
    def add_session(self, agent: str, web: bool) -> None:
        self.open_session(agent, web=web)

    # -- requests ----------------------------------------------------------------------------

    @rule(target=requests, agent=agents, ticket=st.sampled_from(TICKETS), data=st.data())
    def create_request(self, agent: str, ticket: str, data: st.DataObject) -> Any:
        session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        t = self.tickets[ticket]
        got = outcome(lambda: self.svc.create_request(session.principal, ticket, "please"))
        if t.closed:
            self.check("create_request", got, (409, "ticket-closed"))
            return multiple()  # nothing to add to the bundle
        self.check("create_request", got, (200, "created"))
        body = got[1]
        if not t.assignee:
            t.assignee = agent
        req = RequestModel(id=body["id"], ticket=ticket, expires=self.now + DEFAULT_TTL * 1000)
        assert body["ticket"] == ticket and body["expires_at"] == iso(req.expires)
        self.request_models[req.id] = req
        return req.id

    @rule(target=secrets, request_id=requests, kind=st.sampled_from(KINDS), again=st.booleans())
    def fill(self, request_id: str, kind: str, again: bool) -> Any:
        r = self.request_models[request_id]
        envelope = r.envelope if again and r.envelope else sealed(r.ticket, kind)[0]
        got = outcome(lambda: self.svc.fill_request(request_id, kind, envelope))
        if r.state == "purged":
            self.check("fill", got, (410, "purged"))
        elif self.now >= r.expires:
            self.check("fill", got, (410, "expired"))
        elif r.state != "open":
            if r.state == "submitted" and envelope == r.envelope:
                # A retry of the same fill: the same secret, and a new manage token for it.
                self.check("fill", got, (200, "again"))
                assert got[1]["secret_id"] == r.secret_id
                self.secret_models[r.secret_id].manage = got[1]["manage_token"]
            else:
                self.check("fill", got, (409, "already-filled"))
        elif self.tickets[r.ticket].closed:
            self.check("fill", got, (409, "ticket-closed"))
        else:
            # Never ticket-full: a fill takes no place in the share flow's room.
            self.check("fill", got, (200, "stored"))
            if self.waiting(r.ticket) >= self.cap:
                self.world.seen[("fill beside a full share room", 200, "")] += 1
            body = got[1]
            secret = SecretModel(id=body["secret_id"], ticket=r.ticket, kind=kind,
                                 envelope=envelope, expires=self.now + DEFAULT_TTL * 1000,
                                 manage=body["manage_token"], request=request_id)
            assert body["expires_at"] == iso(secret.expires)
            self.secret_models[secret.id] = secret
            r.state, r.secret_id, r.envelope = "submitted", secret.id, envelope
            return secret.id
        return multiple()

    @precondition(lambda self: any(r.envelope for r in self.request_models.values()))
    @rule(data=st.data())
    def retry_fill(self, data: st.DataObject) -> None:
        """The customer's browser sends the same fill again (its first answer was lost)."""
        filled = [r.id for r in self.request_models.values() if r.envelope]
        r = self.request_models[data.draw(st.sampled_from(filled), label="request")]
        self.fill(r.id, self.secret_models[r.secret_id].kind, again=True)

    # -- secrets -----------------------------------------------------------------------------

    @rule(target=secrets, ticket=st.sampled_from(TICKETS), kind=st.sampled_from(KINDS),
          ttl=st.sampled_from([None, 60, DEFAULT_TTL, MAX_TTL]))
    def share(self, ticket: str, kind: str, ttl: int | None) -> Any:
        envelope, _ = sealed(ticket, kind)
        got = outcome(lambda: self.svc.create_secret(ticket, kind, envelope, ttl))
        if self.tickets[ticket].closed:
            self.check("share", got, (409, "ticket-closed"))
        elif self.waiting(ticket) >= self.cap:
            self.check("share", got, (409, "ticket-full"))
        else:
            self.check("share", got, (200, "stored"))
            body = got[1]
            secret = SecretModel(id=body["id"], ticket=ticket, kind=kind, envelope=envelope,
                                 expires=self.now + (ttl or DEFAULT_TTL) * 1000,
                                 manage=body["manage_token"])
            assert body["expires_at"] == iso(secret.expires)
            self.secret_models[secret.id] = secret
            return secret.id
        return multiple()

    def expect_reveal(self, session: Session, s: SecretModel) -> Outcome:
        """What a reveal must answer, applying its effects to the model."""
        t = self.tickets[s.ticket]
        agent = session.agent
        if s.state in ("deleted", "discarded", "purged"):
            if (not t.assignee and not self.claim) or (t.assignee and t.assignee != agent):
                return (403, None)
            return (410, s.state)
        expired = self.now >= s.expires
        if not t.assignee:
            if not self.claim:
                return (403, None)
            if expired:
                return (410, "expired")
            t.assignee = agent  # claimed by this reveal
            self.world.seen[("claim", 200, "")] += 1
        elif t.assignee != agent:
            return (403, None)
        if s.state == "waiting":
            if expired or not s.stored:
                s.stored = False  # the reveal drops an expired envelope
                return (410, "expired")
            s.state, s.session = "revealed", session.id
            s.revealed_at, s.revealed_by = self.now, self.names[agent]
            s.grace_until = self.now + self.grace * 1000
            s.stored = self.grace > 0
            if s.request:
                self.request_models[s.request].state = "revealed"
            return (200, "first")
        if expired:
            return (410, "expired")
        if s.session == session.id and self.now < s.grace_until and s.stored:
            return (200, "again")
        if s.session != session.id and self.now < s.grace_until and s.stored:
            self.world.seen[("rival inside the grace window", 410, "revealed")] += 1
        return (410, "revealed", s.revealed_by, iso(s.revealed_at))

    def do_reveal(self, session: Session, secret_id: str) -> None:
        s = self.secret_models[secret_id]
        expected = self.expect_reveal(session, s)
        got = outcome(lambda: self.svc.reveal(session.principal, secret_id))
        self.check(f"reveal by {session.id} of {s.state} secret", got, expected)
        if got[0] == 200:
            body = got[1]
            assert body == {"envelope": s.envelope, "kind": s.kind, "ticket": s.ticket}
            self.delivered.setdefault(secret_id, set()).add(session.id)
            # The service itself says this agent is the ticket's assignee.
            assert self.svc.ticket_view(s.ticket)["assignee"] == session.agent
        elif got[0] == 410 and expected[1] == "revealed":
            assert (got[1]["revealed_by"], got[1]["revealed_at"]) == expected[2:]

    @rule(agent=agents, secret_id=secrets, data=st.data())
    def reveal(self, agent: str, secret_id: str, data: st.DataObject) -> None:
        """Any session of any agent: the assignee, another agent, a claimer."""
        session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        self.do_reveal(session, secret_id)

    def revealable(self) -> list[str]:
        """Secrets some session of the assignee (or a claimer) could reveal or re-fetch."""
        return [s.id for s in self.secret_models.values()
                if self.tickets[s.ticket].assignee in self.sessions
                or (not self.tickets[s.ticket].assignee and self.claim)]

    def won(self) -> list[str]:
        return [s.id for s in self.secret_models.values() if s.session]

    def winner(self, s: SecretModel) -> Session:
        return next(x for xs in self.sessions.values() for x in xs if x.id == s.session)

    @precondition(lambda self: self.revealable())
    @rule(data=st.data())
    def reveal_by_assignee(self, data: st.DataObject) -> None:
        """Some session of the ticket's assignee (the winner's or another one), or of anyone
        when nobody is assigned (a claim)."""
        secret_id = data.draw(st.sampled_from(self.revealable()), label="secret")
        assignee = self.tickets[self.secret_models[secret_id].ticket].assignee
        agent = assignee or data.draw(st.sampled_from(sorted(self.sessions)), label="claimer")
        session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        self.do_reveal(session, secret_id)

    @precondition(lambda self: self.won())
    @rule(data=st.data())
    def refetch_by_winner(self, data: st.DataObject) -> None:
        """The winning session again: inside its grace window, or 410 after it."""
        s = self.secret_models[data.draw(st.sampled_from(self.won()), label="secret")]
        self.do_reveal(self.winner(s), s.id)

    def rivals(self) -> list[str]:
        """Won secrets whose winner's agent has another session."""
        return [s.id for s in self.secret_models.values()
                if s.session and len(self.sessions[self.winner(s).agent]) > 1]

    @precondition(lambda self: self.rivals())
    @rule(data=st.data())
    def reveal_by_another_session_of_the_winner(self, data: st.DataObject) -> None:
        """The same agent from another session (browser, CLI): never the envelope again."""
        s = self.secret_models[data.draw(st.sampled_from(self.rivals()), label="secret")]
        winner = self.winner(s)
        others = [x for x in self.sessions[winner.agent] if x.id != winner.id]
        self.do_reveal(data.draw(st.sampled_from(others), label="session"), s.id)

    @precondition(lambda self: self.secret_models and len(self.sessions) > 1)
    @rule(data=st.data())
    def reveal_by_another_agent(self, data: st.DataObject) -> None:
        """Any session of an agent who is not the ticket's assignee: 403, nothing consumed
        (or a claim, when nobody is assigned and the policy says so)."""
        s = self.secret_models[data.draw(st.sampled_from(list(self.secret_models)),
                                         label="secret")]
        assignee = self.tickets[s.ticket].assignee
        agent = data.draw(st.sampled_from([a for a in sorted(self.sessions) if a != assignee]),
                          label="agent")
        self.do_reveal(data.draw(st.sampled_from(self.sessions[agent]), label="session"), s.id)

    def do_ack(self, session: Session, s: SecretModel) -> None:
        t = self.tickets[s.ticket]
        if s.state in ("deleted", "discarded", "purged"):
            expected: Outcome = (200,) if t.assignee == session.agent else (403, None)
        elif s.state != "revealed" or s.session != session.id:
            expected = (403, None)
        else:
            expected = (200,)
            s.stored, s.grace_until = False, 0
        got = outcome(lambda: self.svc.ack(session.principal, s.id))
        self.check("ack", got, expected)

    @rule(secret_id=secrets, agent=agents, data=st.data())
    def ack(self, secret_id: str, agent: str, data: st.DataObject) -> None:
        session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        self.do_ack(session, self.secret_models[secret_id])

    @precondition(lambda self: self.won())
    @rule(data=st.data())
    def ack_by_winner(self, data: st.DataObject) -> None:
        s = self.secret_models[data.draw(st.sampled_from(self.won()), label="secret")]
        self.do_ack(self.winner(s), s)

    @rule(secret_id=secrets, right=st.booleans())
    def customer_delete(self, secret_id: str, right: bool) -> None:
        s = self.secret_models[secret_id]
        token = s.manage if right else new_token(MANAGE_TOKEN)
        if s.state in ("deleted", "discarded", "purged"):
            expected: Outcome = (410, s.state)
        elif token != s.manage:
            expected = (403, None)
        elif s.state == "revealed":
            expected = (410, "revealed")
        elif self.now >= s.expires:
            expected = (410, "expired")
        else:
            expected = (200,)
            s.state, s.stored = "deleted", False
            if s.request:
                r = self.request_models[s.request]
                r.state, r.secret_id, r.envelope = "open", "", ""
        got = outcome(lambda: self.svc.delete_secret(secret_id, token))
        self.check("delete", got, expected)

    @rule(secret_id=secrets, agent=agents, by_admin=st.booleans(), data=st.data())
    def discard(self, secret_id: str, agent: str, by_admin: bool, data: st.DataObject) -> None:
        """An agent (any session: the assignee, another agent) or the admin deletes it unread,
        without the manage token. Who may is checked first, as for a reveal."""
        s = self.secret_models[secret_id]
        t = self.tickets[s.ticket]
        if by_admin:
            assert self.admin is not None
            session = self.admin
        else:
            session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        if not by_admin and (not t.assignee or t.assignee != agent):
            expected: Outcome = (403, None)
        elif s.state in ("deleted", "discarded", "purged"):
            expected = (410, s.state)
        elif s.state == "revealed":
            expected = (410, "revealed", s.revealed_by, iso(s.revealed_at))
        elif self.now >= s.expires:
            expected = (410, "expired")
        else:
            expected = (200,)
            s.state, s.stored = "discarded", False
            if s.request:
                r = self.request_models[s.request]
                r.state, r.secret_id, r.envelope = "open", "", ""
        got = outcome(lambda: self.svc.discard(session.principal, secret_id))
        self.check("discard", got, expected)
        if got[0] == 200:
            assert got[1] == s.ticket
        elif got[0] == 410 and expected[1] == "revealed":
            assert (got[1]["revealed_by"], got[1]["revealed_at"]) == expected[2:]

    @rule(agent=agents, ticket=st.sampled_from(TICKETS), data=st.data())
    def unknown_ids(self, agent: str, ticket: str, data: st.DataObject) -> None:
        """Ids of the right shape (and slot) that were never made: 404 everywhere."""
        session = data.draw(st.sampled_from(self.sessions[agent]), label="session")
        unknown = ids.new_id(ticket)
        envelope, _ = sealed(ticket)
        for what, call in [
                ("reveal", lambda: self.svc.reveal(session.principal, unknown)),
                ("ack", lambda: self.svc.ack(session.principal, unknown)),
                ("delete", lambda: self.svc.delete_secret(unknown, new_token(MANAGE_TOKEN))),
                ("discard", lambda: self.svc.discard(session.principal, unknown)),
                ("secret_meta", lambda: self.svc.secret_meta(unknown)),
                ("request_state", lambda: self.svc.request_state(unknown)),
                ("fill", lambda: self.svc.fill_request(unknown, "other", envelope))]:
            self.check(what, outcome(call), (404, None))

    # -- tickets -----------------------------------------------------------------------------

    @rule(ticket=st.sampled_from(TICKETS))
    def close(self, ticket: str) -> None:
        t = self.tickets[ticket]
        count = 0
        for s in self.secret_models.values():
            if s.ticket == ticket and s.state in ("waiting", "revealed"):
                count += self.now < s.expires
                s.state, s.stored = "purged", False
        for r in self.request_models.values():
            if r.ticket == ticket and r.state != "purged":
                count += r.state == "open" and self.now < r.expires
                r.state = "purged"
        if not t.closed:
            t.closed, t.closed_at = True, self.now
        t.purged += count
        got = self.svc.close(ticket, reason="closed", actor="helpdesk")
        assert got == {"ticket": ticket, "purged": count}

    @rule(ticket=st.sampled_from(TICKETS))
    def reopen(self, ticket: str) -> None:
        t = self.tickets[ticket]
        was_closed = t.closed
        t.closed, t.closed_at = False, None
        assert self.svc.reopen(ticket, actor="helpdesk") == {"ticket": ticket,
                                                             "reopened": was_closed}

    @rule(ticket=st.sampled_from(TICKETS), data=st.data())
    def assign(self, ticket: str, data: st.DataObject) -> None:
        """As the helpdesk does: an agent, an e-mail that is no agent, or nobody."""
        agent = data.draw(st.sampled_from([*sorted(self.sessions), GHOST, ""]), label="assignee")
        assert self.svc.assign(ticket, agent, actor="helpdesk") is True
        self.tickets[ticket].assignee = agent

    @rule(seconds=st.sampled_from(STEPS_S))
    def advance_clock(self, seconds: int) -> None:
        self.world.clock.advance(seconds)

    def deadlines(self) -> list[int]:
        """Instants (ms) ahead where something changes: an expiry, the end of a grace window."""
        ahead = {s.expires for s in self.secret_models.values()
                 if s.state in ("waiting", "revealed")}
        ahead |= {s.grace_until for s in self.secret_models.values() if s.grace_until}
        ahead |= {r.expires for r in self.request_models.values() if r.state == "open"}
        return sorted(t for t in ahead if t > self.now + 1)

    @precondition(lambda self: self.deadlines())
    @rule(data=st.data(), before=st.booleans())
    def advance_to_a_deadline(self, data: st.DataObject, before: bool) -> None:
        """The clock to exactly an expiry or a grace window's end, or one millisecond before."""
        deadline = data.draw(st.sampled_from(self.deadlines()), label="deadline")
        # The service reads int(clock() * 1000), as `self.now` does: both see the same instant.
        self.world.clock.now = (deadline - before) / 1000

    # -- what must hold after every step ---------------------------------------------------------

    @invariant()
    def one_session_per_envelope(self) -> None:
        for secret_id, sessions in self.delivered.items():
            assert len(sessions) <= 1, f"{secret_id} reached {sessions}"

    @invariant()
    def secrets_match(self) -> None:
        if self.ext is None:
            return
        assert self.ext is not None
        stored = self.ext.store.client.exists
        for s in self.secret_models.values():
            # Gone from Redis itself once acknowledged, deleted, purged, or revealed without
            # grace; still there while it waits. (Past the grace window by the injected clock
            # Redis still holds it until its own PEXPIRE, which runs on real time.)
            if not s.stored:
                assert not stored(envelope_key(s.id)), s
            elif s.state == "waiting":
                assert stored(envelope_key(s.id)), s
            got = outcome(lambda s=s: self.svc.secret_meta(s.id))
            if s.state in ("deleted", "discarded", "purged"):
                self.check("secret_meta", got, (410, s.state))
            elif self.now >= s.expires or (s.state == "waiting" and not s.stored):
                self.check("secret_meta", got, (410, "expired"))
            else:
                self.check("secret_meta", got, (200, s.state))
                body = got[1]
                assert (body["state"], body["ticket"], body["kind"]) == (s.state, s.ticket, s.kind)
                assert body["expires_at"] == iso(s.expires)
                assert body.get("request_id", "") == s.request
                if s.state == "revealed":
                    assert (body["revealed_by"], body["revealed_at"]) == (s.revealed_by,
                                                                          iso(s.revealed_at))

    @invariant()
    def requests_match(self) -> None:
        if self.ext is None:
            return
        for r in self.request_models.values():
            got = outcome(lambda r=r: self.svc.request_state(r.id))
            if r.state == "purged":
                self.check("request_state", got, (410, "purged"))
            elif r.state == "open" and self.now >= r.expires:
                self.check("request_state", got, (410, "expired"))
            else:
                self.check("request_state", got, (200, r.state))
                assert (got[1]["state"], got[1]["ticket"]) == (r.state, r.ticket)
                assert got[1].get("secret_id", "") == r.secret_id

    @invariant()
    def tickets_match(self) -> None:
        if self.ext is None:
            return
        for name, t in self.tickets.items():
            view = self.svc.ticket_view(name)
            assert view["state"] == ("closed" if t.closed else "open"), (name, view)
            assert view["assignee"] == (t.assignee or None), (name, view)
            assert view["purged"] == t.purged
            if t.closed:
                assert view["closed_at"] == iso(t.closed_at)
                # A closed ticket holds nothing that waits or could still be filled.
                assert not [s for s in view["secrets"] if s["state"] == "waiting"], view
                assert not [r for r in view["requests"] if r["state"] == "open"], view
            secrets = {}
            for s in self.secret_models.values():
                if s.ticket == name and s.state in ("waiting", "revealed"):
                    expired = s.state == "waiting" and (not s.stored or self.now >= s.expires)
                    secrets[s.id] = "expired" if expired else s.state
            assert {s["id"]: s["state"] for s in view["secrets"]} == secrets, name
            requests = {}
            for r in self.request_models.values():
                if r.ticket == name and r.state != "purged":
                    expired = r.state == "open" and self.now >= r.expires
                    requests[r.id] = "expired" if expired else r.state
            assert {r["id"]: r["state"] for r in view["requests"]} == requests, name


@pytest.fixture(scope="module")
def own_redis() -> Iterator[RedisServer]:
    """A private redis-server without the suite's fsync-always AOF: thousands of examples each
    start with a FLUSHDB, and durability is not what this test is about."""
    with private_redis("vault-state-machine-") as server:
        client = server.client()
        client.config_set("appendonly", "no")
        client.close()
        yield server


@pytest.fixture
def world(own_redis: RedisServer) -> Iterator[World]:
    clock = Clock(START)
    apps = {}
    for name, overrides in CONFIGS.items():
        app = create_app(base_config(own_redis.url, clock=clock, log_level="WARNING",
                                     default_ttl=DEFAULT_TTL, max_ttl=MAX_TTL, **overrides))
        apps[name] = app.extensions["vault"]
    client = own_redis.client()
    yield World(apps=apps, clock=clock, redis=client)
    client.close()
    for ext in apps.values():
        ext.close()


# What the budget must reach, or the run proves little: (operation, status, reason).
MUST_SEE = [
    ("create_request", 200, "created"), ("create_request", 409, "ticket-closed"),
    ("fill", 200, "stored"), ("fill", 200, "again"), ("fill", 409, "already-filled"),
    ("fill", 410, "purged"), ("share", 200, "stored"), ("share", 409, "ticket-closed"),
    ("share", 409, "ticket-full"),
    ("reveal", 200, "first"), ("reveal", 200, "again"), ("reveal", 403, "None"),
    ("reveal", 410, "revealed"), ("reveal", 410, "purged"), ("reveal", 410, "deleted"),
    ("reveal", 410, "expired"), ("reveal", 404, "None"),
    ("claim", 200, ""), ("rival inside the grace window", 410, "revealed"),
    ("ack", 200, ""), ("ack", 403, "None"),
    ("delete", 200, ""), ("delete", 403, "None"), ("delete", 410, "revealed"),
    ("delete", 410, "purged"), ("delete", 410, "expired"), ("delete", 410, "discarded"),
    ("discard", 200, ""), ("discard", 403, "None"), ("discard", 404, "None"),
    ("discard", 410, "revealed"), ("discard", 410, "deleted"), ("discard", 410, "discarded"),
    ("discard", 410, "purged"), ("discard", 410, "expired"), ("reveal", 410, "discarded"),
    ("fill beside a full share room", 200, ""),
    ("secret_meta", 200, "waiting"), ("secret_meta", 200, "revealed"),
    ("secret_meta", 410, "deleted"), ("secret_meta", 410, "discarded"),
    ("secret_meta", 410, "purged"),
    ("secret_meta", 410, "expired"),
    ("request_state", 200, "open"), ("request_state", 200, "submitted"),
    ("request_state", 200, "revealed"), ("request_state", 410, "purged"),
    ("request_state", 410, "expired"),
]


def test_the_service_matches_its_model(world: World) -> None:
    run_state_machine_as_test(lambda: VaultMachine(world), settings=SETTINGS)
    for key, count in sorted(world.seen.items()):
        print(f"{count:7d}  {' '.join(map(str, key))}")
    missing = [key for key in MUST_SEE if not world.seen[key]]
    assert not missing, f"the budget never reached {missing}"
