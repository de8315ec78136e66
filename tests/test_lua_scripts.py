"""The store's Lua scripts, read from their `.lua` files, are the very bytes Redis has always
been sent: a server that cached a script by its SHA1 (EVALSHA), a replica, a deployment's ACL
notes, all keep knowing it. A change to a script is a change of this list, made on purpose."""

from __future__ import annotations

import redis

from vault.storage.scripts import SCRIPTS

# SHA1 of each script's source, as Redis computes it (SCRIPT LOAD answers it).
RECORDED = {
    "CREATE_SECRET": "cf172dcc6f36eb288c91008ab4b20c714f0509c2",
    "CREATE_REQUEST": "6afea730cf840a4cc4c95704200e6148a2c73885",
    "FILL_REQUEST": "be30e8b9b633a4c052cb728d578c44df55df9a3a",
    "REVEAL": "9e810f8bbeff8e544904fe76ddf0fc793bfc594b",
    "ACK": "cee0961cc84d1617d3f1559d7815adf15c3486b1",
    "DELETE_SECRET": "49f80c06942f82ffcfda3875f724fcdd04dfcc63",
    "DISCARD_SECRET": "155009c15850d7c6c12bf647d600188b725da993",
    "PURGE": "cf44a1b7efa9dd49d02fc2a7440fd465c03ca7cc",
    "REOPEN": "844206785d57efef02f35ee74d81da2c2d1759d4",
    "ASSIGN": "d3d8e79dbc52a087e63d64761b60bf86a7e019c6",
    "TICKET_VIEW": "56e520d1e615dac39152e176cbbe681318af2425",
    "TICKET_SUMMARY": "c85dfdb20d1c7e39b5ff60c7b9ff57a75734e654",
    "SIDEBAR": "4865203ecac03b9ed081e64136618ebbb9fa50c6",
    "SWAP_IF_SAME": "5dce41c2f230659486c066a132780d25fe299844",
    "SWAP_FIELD_IF_SAME": "730060f3ddd29317dbcf5ef44c4ec5e5496c7315",
    "AUTHENTICATE": "212b81b08df3f8e16cc3e0ba00dab593e6d76d72",
    "GATE": "f574d1b59d5a5d2e0495f7237b8be51b1cd8b6c8",
    "ADD_AGENT": "3b50833c077f68841aea106e8989fa9055379a7f",
    "ADD_PASSKEY": "f44d9e6a5986bfd3dcd80f25273110b2df32c764",
    "REMOVE_PASSKEYS": "de003cd6d2dddeb190bbc91a38b19e6455fc2fc2",
    "USE_PASSKEY": "f2780572e73332f79e9cb84e9c79ed7495f468d7",
    "BATCH": "69a6a0e22a367cde3890b75625c7f459f77723e6",
}


def test_every_script_has_its_recorded_sha1() -> None:
    assert {name: script.sha for name, script in SCRIPTS.items()} == RECORDED


def test_redis_knows_each_script_by_that_sha1(redis_client: redis.Redis) -> None:
    for name, script in SCRIPTS.items():
        assert redis_client.script_load(script.source) == RECORDED[name], name


def test_no_documentation_line_reaches_redis() -> None:
    # The files' `---` lines are documentation: none is part of a script Redis runs.
    for name, script in SCRIPTS.items():
        assert not any(line.startswith("---") for line in script.source.splitlines()), name
