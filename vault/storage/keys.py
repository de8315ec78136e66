"""Every Redis key vault uses, built here and nowhere else on the Python side.

A ticket's keys share the hash tag `{<slot tag>}` (see `vault.ids`): `vault:{tag}:<kind>:<name>`,
kinds t (the ticket's record), s (a secret), e (its envelope), r (a request), g (a gone-marker),
log (the ticket's own audit stream); the scripts build the rest of that slot's keys (ix, w, rl)
from the prefix and the tag they are given. Account keys share the `{acct}` tag, so that a
token lookup also reads the agent's revocation epoch in the same step; the scripts build the
agent's record and the rate-limit counters under that tag from the prefix too.
"""

from __future__ import annotations

from vault.ids import slot_tag, tag_of

PREFIX = "vault:"
ACCT = PREFIX + "{acct}:"
# The agents' ticket index ("my tickets"), one sorted set per agent: this prefix + e-mail.
MINE = ACCT + "mine:"

AUDIT = PREFIX + "audit"  # the global audit stream
AGENTS = ACCT + "agents"  # the set of agents' e-mails
TOKEN_IDS = ACCT + "tokids"  # public token id -> digest, for agent tokens and helpdesk keys
API_KEYS = ACCT + "apikeys"  # helpdesk key name -> public id
# The digest of a passkey's credential id -> the passkey's public id (who a sign-in is).
PASSKEY_IDS = ACCT + "pkids"
# Every stored envelope, for SCAN (key rotation).
ENVELOPES = PREFIX + "{*}:e:*"


def in_slot(tag: str, kind: str, name: str) -> str:
    return f"{PREFIX}{{{tag}}}:{kind}:{name}"


def ticket(name: str) -> str:
    return in_slot(slot_tag(name), "t", name)


def ticket_log(name: str) -> str:
    """The ticket's own audit stream."""
    return in_slot(slot_tag(name), "log", name)


def ticket_slot(name: str) -> str:
    """A SCAN pattern of every key in the ticket's hash tag."""
    return f"{PREFIX}{{{slot_tag(name)}}}:*"


def secret(id_: str) -> str:
    return in_slot(tag_of(id_), "s", id_)


def envelope(id_: str) -> str:
    return in_slot(tag_of(id_), "e", id_)


def request(id_: str) -> str:
    return in_slot(tag_of(id_), "r", id_)


def gone(id_: str) -> str:
    return in_slot(tag_of(id_), "g", id_)


def mine(email: str) -> str:
    """The agent's index of the tickets assigned to them, scored by last activity (ms)."""
    return MINE + email


def agent(email: str) -> str:
    return f"{ACCT}agent:{email}"


def agent_tokens(email: str) -> str:
    """The set of the public ids of an agent's tokens."""
    return f"{ACCT}toks:{email}"


def token(digest: str) -> str:
    """The record of an agent token or helpdesk key, by its digest."""
    return f"{ACCT}tok:{digest}"


def session(digest: str) -> str:
    """The record of a web session, by its digest."""
    return f"{ACCT}sess:{digest}"


def credential(kind: str, digest: str) -> str:
    """The record of a web session (`kind` "session") or of a token or helpdesk key."""
    return session(digest) if kind == "session" else token(digest)


def helpscout_user(user_id: str) -> str:
    """The agent mapped to a Help Scout user id."""
    return f"{ACCT}hsuser:{user_id}"


def sign_in(digest: str) -> str:
    """An identity-provider sign-in in progress, by the digest of its `state`."""
    return f"{ACCT}sso:{digest}"


def passkeys(email: str) -> str:
    """The set of the public ids of an agent's passkeys."""
    return f"{ACCT}pks:{email}"


def passkey(passkey_id: str) -> str:
    """A passkey's record (its owner, name, public key, signature counter), by its public id."""
    return f"{ACCT}pk:{passkey_id}"


def passkey_challenge(digest: str) -> str:
    """A passkey ceremony in progress, by the digest of its challenge."""
    return f"{ACCT}pkc:{digest}"


def webhook(source: str, digest: str) -> str:
    """A helpdesk delivery seen, by its source and the digest of its body."""
    return f"{PREFIX}wh:{source}:{digest}"


def conversation(conversation_id: str) -> str:
    """The ticket a Help Scout conversation was last seen as."""
    return f"{PREFIX}hs:{conversation_id}"
