"""The commands on the store itself: agents, their tokens, helpdesk keys, the key ring, the
audit trail. They read the same `VAULT_*` environment as `vault serve` and reach Redis directly.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import click

from vault.cli.common import TICKET_RE, fail, note
from vault.crypto.keyring import generate_key_spec

if TYPE_CHECKING:
    from vault.accounts import Accounts
    from vault.config import Config
    from vault.storage import AuditEvent, Store

FOLLOW_BLOCK_MS = 5000
TICKET_POLL_SECONDS = 1.0


# -- store access -------------------------------------------------------------------------------

@dataclass
class StoreContext:
    config: Config
    store: Store

    def accounts(self, *, keyring: bool = False) -> Accounts:
        from vault.accounts import Accounts
        from vault.crypto.passwords import Passwords
        from vault.extension import load_keyring

        return Accounts(self.store, Passwords.production(), self.config,
                        keyring=load_keyring(self.config) if keyring else None)


def open_store(*, min_socket_timeout: float | None = None) -> StoreContext:
    """The configured store, from the environment. Exit 2 when no Redis is configured."""
    from vault import config as config_mod
    from vault.extension import build_store

    config = config_mod.load()
    if config.embedded or not config.redis_url:
        fail("this command works on the store that VAULT_REDIS_URL names, and it is not set "
             "(with nothing configured, `vault serve` runs an in-memory demo no other command "
             "can reach): set VAULT_REDIS_URL, VAULT_SECRET_KEY and VAULT_KEYS as for "
             "`vault serve`", 2)
    if min_socket_timeout is not None and config.redis_socket_timeout < min_socket_timeout:
        config = replace(config, redis_socket_timeout=min_socket_timeout)
    store = build_store(config)
    # Its connections close with the command (in-process callers, tests, run many commands).
    click.get_current_context().call_on_close(store.close)
    return StoreContext(config=config, store=store)


# -- keys ------------------------------------------------------------------------------------------

@click.group()
def keys() -> None:
    """The server's key ring (VAULT_KEYS)."""


@keys.command("generate")
def keys_generate() -> None:
    """Print one new key for VAULT_KEYS (needs no configuration)."""
    click.echo(generate_key_spec())


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-wrap every stored envelope under the first key of VAULT_KEYS."""
    from vault.extension import load_keyring
    from vault.rotation import rotate_all

    ctx = open_store()
    if not ctx.config.keys and not ctx.config.keys_file:
        # Without a ring, the app would make up a throwaway key: rotating under it loses all.
        fail("keys rotate needs the key ring: set VAULT_KEYS (or VAULT_KEYS_FILE)", 2)
    keyring = load_keyring(ctx.config)
    report = rotate_all(ctx.store, keyring)
    click.echo(report.summary())
    if report.failed:
        fail(f"{report.failed} envelope(s) could not be unwrapped: the key they were wrapped "
             "with is not in VAULT_KEYS; put it back (second) and run `vault keys rotate` again")


# -- agents ----------------------------------------------------------------------------------------

def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = str(sys.stdin.readline())  # CliRunner swaps sys.stdin too
        if line.endswith("\n"):
            line = line[:-1]
            if line.endswith("\r"):
                line = line[:-1]
        if not line:
            fail("--password-stdin: no password on standard input")
        return line
    first: str = click.prompt("Password", hide_input=True, err=True)
    second: str = click.prompt("Repeat the password", hide_input=True, err=True)
    if first != second:
        fail("the two passwords do not match; nothing was changed")
    return first


def _email(value: str) -> str:
    from vault.accounts import normalise_email

    return normalise_email(value)


@click.group()
def agent() -> None:
    """Agent accounts."""


@agent.command("add")
@click.argument("email")
@click.option("--name", default="", help="Display name (default: the e-mail).")
@click.option("--admin", is_flag=True, help="Give the admin role.")
@click.option("--helpscout-id", default="", help="The agent's Help Scout user id.")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def agent_add(email: str, name: str, admin: bool, helpscout_id: str,
              password_stdin: bool) -> None:
    """Create an agent."""
    ctx = open_store()
    email = _email(email)
    if ctx.store.get_agent(email):  # before the prompts, so no password is typed in vain
        fail("an agent with this e-mail already exists")
    password = _read_password(password_stdin)
    added = ctx.accounts().add_agent(email, password, name=name, admin=admin,
                                     helpscout_id=helpscout_id)
    note(f"Added {added['role']} {email}.")


@agent.command("list")
def agent_list() -> None:
    """One line per agent: e-mail, name, role, enabled/disabled, Help Scout id (tab-separated)."""
    for a in open_store().accounts().list_agents():
        click.echo("\t".join([a["email"], a["name"], a["role"],
                              "disabled" if a["disabled"] else "enabled",
                              a["helpscout_id"] or ""]))


@agent.command("edit")
@click.argument("email")
@click.option("--name", default=None, help="New display name.")
@click.option("--admin/--no-admin", default=None, help="Give or take the admin role.")
@click.option("--helpscout-id", default=None, help="New Help Scout user id.")
def agent_edit(email: str, name: str | None, admin: bool | None,
               helpscout_id: str | None) -> None:
    """Change an agent's name, role or Help Scout id (a role change ends their sessions)."""
    if name is None and admin is None and helpscout_id is None:
        raise click.UsageError("nothing to change: give --name, --admin/--no-admin or "
                               "--helpscout-id")
    edited = open_store().accounts().edit_agent(email, name=name, admin=admin,
                                                helpscout_id=helpscout_id)
    note(f"Updated {edited['email']}.")


@agent.command("disable")
@click.argument("email")
def agent_disable(email: str) -> None:
    """Disable an agent: every session and token of theirs ends at once."""
    open_store().accounts().set_disabled(email, True)
    note(f"Disabled {_email(email)}; their sessions and tokens have ended.")


@agent.command("enable")
@click.argument("email")
def agent_enable(email: str) -> None:
    """Enable a disabled agent (their old tokens stay revoked)."""
    open_store().accounts().set_disabled(email, False)
    note(f"Enabled {_email(email)}.")


@agent.command("remove")
@click.argument("email")
def agent_remove(email: str) -> None:
    """Delete an agent with their tokens."""
    open_store().accounts().remove_agent(email)
    note(f"Removed {_email(email)}.")


@agent.command("passwd")
@click.argument("email")
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def agent_passwd(email: str, password_stdin: bool) -> None:
    """Set an agent's password (ends their sessions and tokens)."""
    ctx = open_store()
    email = _email(email)
    if not ctx.store.get_agent(email):
        fail("no such agent")
    ctx.accounts().set_password(email, _read_password(password_stdin))
    note(f"Password changed for {email}; their sessions and tokens have ended.")


@agent.command("reset-2fa")
@click.argument("email")
def agent_reset_2fa(email: str) -> None:
    """Remove an agent's second factor and passkeys (ends their sessions and tokens)."""
    open_store().accounts().reset_2fa(email)
    note(f"Second factor and passkeys removed for {_email(email)}.")


@agent.command("enrol-2fa")
@click.argument("email")
def agent_enrol_2fa(email: str) -> None:
    """Give an agent a new second factor; prints its otpauth:// URI once (ends their sessions).

    For an admin who cannot log in to set it up on /account because VAULT_REQUIRE_2FA=1."""
    ctx = open_store()
    email = _email(email)
    if not ctx.store.get_agent(email):
        fail("no such agent")
    uri = ctx.accounts(keyring=True).enroll_totp(email)
    note(f"Second factor set for {email}. Hand this URI to them privately (a QR code or their "
         "authenticator app takes it); it is shown once.")
    click.echo(uri)


# -- tokens and helpdesk keys ----------------------------------------------------------------------

def _iso(ms: int) -> str:
    from vault.service import iso

    return iso(ms) or ""


@click.group()
def token() -> None:
    """Agents' API tokens (for `vault request` and `vault reveal`)."""


@token.command("create")
@click.argument("email")
def token_create(email: str) -> None:
    """Print a new API token for the agent (shown once)."""
    value, token_id = open_store().accounts().create_token(email)
    click.echo(value)
    note(f"Created token {token_id} for {_email(email)}; it is shown once, above.")


@token.command("list")
@click.argument("email")
def token_list(email: str) -> None:
    """One line per token of the agent: id, created at (tab-separated)."""
    for t in open_store().accounts().list_tokens(email):
        click.echo(f"{t['id']}\t{_iso(t['created_at'])}")


@token.command("revoke")
@click.argument("token_id")
def token_revoke(token_id: str) -> None:
    """Revoke a token by its id (see `vault token list`)."""
    if not token_id.startswith("tok_"):
        # Accounts.revoke_token deletes whatever the id names before checking it is an agent
        # token: never let `token revoke key_...` delete a helpdesk key.
        fail("no such token (token ids start with tok_; see `vault token list EMAIL`)")
    open_store().accounts().revoke_token(token_id)
    note(f"Revoked {token_id}.")


@click.group()
def apikey() -> None:
    """Helpdesk API keys."""


@apikey.command("create")
@click.argument("name")
def apikey_create(name: str) -> None:
    """Print a new helpdesk key named NAME (shown once)."""
    ctx = open_store()
    key = ctx.accounts().create_api_key(name)
    click.echo(key)
    note(f"Created helpdesk key {name} ({ctx.store.api_key_id(name)}); it is shown once, above.")


@apikey.command("list")
def apikey_list() -> None:
    """One line per helpdesk key: name, id, created at (tab-separated)."""
    for k in open_store().accounts().list_api_keys():
        click.echo(f"{k['name']}\t{k['id']}\t{_iso(k['created_at'])}")


@apikey.command("revoke")
@click.argument("name")
def apikey_revoke(name: str) -> None:
    """Revoke the helpdesk key named NAME."""
    open_store().accounts().revoke_api_key(name)
    note(f"Revoked helpdesk key {name}.")


# -- audit -----------------------------------------------------------------------------------------

def _stream_order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms or 0), int(seq or 0)


def _follow_global(store: Store, after: str) -> Iterator[AuditEvent]:
    while True:
        for event in store.audit_tail(1000, after=after, block_ms=FOLLOW_BLOCK_MS):
            after = event.stream_id
            yield event


def _follow_ticket(store: Store, ticket: str, after: str) -> Iterator[AuditEvent]:
    # The store offers no blocking read of one ticket's stream: poll it (a CLI, not a server).
    last = _stream_order(after)
    while True:
        time.sleep(TICKET_POLL_SECONDS)
        for event in store.ticket_audit(ticket, 1000):
            if _stream_order(event.stream_id) > last:
                last = _stream_order(event.stream_id)
                yield event


@click.command()
@click.option("--ticket", default=None, help="Only this ticket's events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("-n", "count", type=click.IntRange(min=0, max=100_000), default=100,
              show_default=True, help="How many past events to print.")
def audit(ticket: str | None, follow: bool, count: int) -> None:
    """Print audit events as JSON lines, newest last."""
    from vault.service import event_json

    if ticket is not None and not TICKET_RE.fullmatch(ticket):
        raise click.BadParameter("use 1 to 64 letters, digits, '-' or '_'", param_hint="--ticket")
    ctx = open_store(min_socket_timeout=FOLLOW_BLOCK_MS / 1000 + 5 if follow else None)
    store = ctx.store

    def tail(n: int) -> list[AuditEvent]:
        return store.ticket_audit(ticket, n) if ticket else store.audit_tail(n)

    events = tail(count) if count else []
    for event in events:
        click.echo(event_json(event))
    if not follow:
        return
    latest = events or tail(1)
    after = latest[-1].stream_id if latest else "0-0"
    stream = _follow_ticket(store, ticket, after) if ticket else _follow_global(store, after)
    try:
        for event in stream:
            click.echo(event_json(event))
    except KeyboardInterrupt:
        return
