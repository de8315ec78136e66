"""The Lua scripts of the store, read from the `.lua` files beside this module (package data).

Each script is assembled once, at import, from its files in a fixed order: the bytes Redis
runs, and so the SHA1 it knows a script by, stay the same from one release to the next
unless a file changes (tests/test_lua_scripts.py holds the list). A file's leading lines that
begin with `---` document it and are not part of the script.

Conventions shared by every ticket script (ARGV built by `TicketOps._argv`, the one place):
ARGV[1] key prefix, ARGV[2] slot tag, ARGV[3] now (ms, the app's clock so tests can move time),
ARGV[4] ticket-stream cap, ARGV[5] global-stream cap, ARGV[6] ticket-stream lifetime (ms),
ARGV[7] global stream key ('' on a Cluster, where Python writes it after the script),
ARGV[8] actor; script-specific arguments follow from ARGV[9]. The last three ARGV are always
the agents' ticket index ("my tickets"): its key prefix ('' on a Cluster, where Python writes it
after the script, like the global stream), its lifetime (ms) and its cap (entries per agent).

Keys of the ticket that are not in KEYS are built from the prefix and the tag, so they hash to
the same slot as the declared ones: the script stays single-slot on a Redis Cluster.
Times stored in hashes are milliseconds since the epoch.

On a Cluster (global stream key and index prefix both ''), the writes a script would make
outside its slot are not made: they are handed back, in order, and the store replays them after
the script. A writing ticket script then answers `{later, result}` instead of `result`, where
`later` lists `{'x', field, value, ...}` (an entry for the global stream),
`{'m', agent, ticket, now}` (the agent's index: ticket active at now) and
`{'u', agent, ticket}` (the ticket is no longer theirs).
So the global stream and the index get exactly what they get on a single Redis.

The gate (a create, a fill and a reveal are one round trip in all): the six ARGV before the
index's three are the caller's credential and rate limits, checked before anything else: the
token or session key ('' for none), its kind ('token' or 'session'), the session's idle and
absolute lifetimes (ms), the identity the limits count ('' for the authenticated agent's
e-mail) and the limits (`over_limit`'s spec, '' for none). A refused gate answers
{'unauthenticated'}, {'notagent'} or {'limited', seconds}; the domain step does not run. An
accepted credential replaces the placeholders AGENT, AGENT_NAME and AGENT_SESSION
(`vault.storage.gate`) where they may stand, the actor and the first `BINDABLE` script
arguments (ARGV[8..11]), so the script acts as the agent it authenticated. On a Cluster the
store passes the gate in the account slot first (GATE) and the ticket script gets an empty gate
and the agent's values themselves: two round trips.

A writing ticket script answers one flat array: the number of fields of `who`, those fields,
`later`, then the fields of its result. `who` is the authenticated row ({'agent', e-mail, name,
role, id, session}, or nothing), `later` the writes to replay (a nested array on a Cluster, ''
elsewhere). Flat because Redis converts each array of a script's answer with a few field
look-ups of its own: three nested arrays cost more than a PEXPIRE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib.resources import files

# Where the gate's placeholders may stand, after the actor: the first three script arguments
# (ARGV[9..11]; prelude.lua binds ARGV[8..11]), never what a caller typed further on.
BINDABLE = 3

_DIR = files("vault.storage") / "lua"
_BODY = "-- @body"


def _read(name: str) -> str:
    """A file's script text: its bytes after the leading `---` documentation lines."""
    text = (_DIR / f"{name}.lua").read_bytes().decode("utf-8")
    lines = text.splitlines(keepends=True)
    start = 0
    while start < len(lines) and lines[start].startswith("---"):
        start += 1
    return "".join(lines[start:])


_ACCESS = _read("access")
_PRELUDE = _ACCESS + _read("prelude")
_HEAD, _TAIL = _read("writing").split(_BODY)


def _writing(*parts: str) -> str:
    """A writing ticket script: the prelude, then its body wrapped by writing.lua."""
    return _PRELUDE + _HEAD + "".join(_read(p) for p in parts) + _TAIL


class Script:
    """A script's source and the SHA1 Redis knows it by; `writing` for a ticket script that
    writes (its answer carries `who` and the writes to replay: `Runner._unwrap`)."""

    __slots__ = ("sha", "source", "writing")

    def __init__(self, source: str, *, writing: bool = False) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8"), usedforsecurity=False).hexdigest()
        self.writing = writing


# Every script, by name: writing ticket scripts, read-only ticket scripts, then the rest.
SCRIPTS: Mapping[str, Script] = {
    **{name: Script(_writing(*parts), writing=True) for name, parts in (
        ("CREATE_SECRET", ("create_secret",)),
        ("CREATE_REQUEST", ("create_request",)),
        ("FILL_REQUEST", ("fill_request",)),
        ("REVEAL", ("reveal",)),
        ("ACK", ("ack",)),
        ("DELETE_SECRET", ("drop", "delete_secret")),
        ("DISCARD_SECRET", ("drop", "discard_secret")),
        ("PURGE", ("purge",)),
        ("REOPEN", ("reopen",)),
        ("ASSIGN", ("assign",)),
    )},
    "TICKET_VIEW": Script(_PRELUDE + _read("items") + _read("ticket_view")),
    "TICKET_SUMMARY": Script(_PRELUDE + _read("items") + _read("ticket_summary")),
    "SIDEBAR": Script(_PRELUDE + _read("sidebar")),
    "SWAP_IF_SAME": Script(_read("swap_if_same")),
    "SWAP_FIELD_IF_SAME": Script(_read("swap_field_if_same")),
    "AUTHENTICATE": Script(_ACCESS + _read("authenticate")),
    "GATE": Script(_ACCESS + _read("gate")),
    "ADD_AGENT": Script(_read("add_agent")),
    "ADD_PASSKEY": Script(_read("add_passkey")),
    "REMOVE_PASSKEYS": Script(_read("remove_passkeys")),
    "USE_PASSKEY": Script(_read("use_passkey")),
    "BATCH": Script(_read("batch")),
}
