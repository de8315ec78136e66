"""The `vault` command line (PRODUCT.md, "Exact formats" → Command line).

Output meant for scripts goes alone on stdout; prompts, notes and errors go to stderr. Errors are
one line, `Error: ...`, never a traceback and never a secret: exit 2 for configuration and usage,
1 for everything else. Store commands read the same `VAULT_*` environment as `vault serve`;
`vault request` and `vault reveal` talk to a running vault over HTTP (`VAULT_URL`, `VAULT_TOKEN`);
`vault helpscout replay` too, signing with `VAULT_HELPSCOUT_SECRET` instead of a token.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from email.message import Message
from typing import IO, TYPE_CHECKING, Any, NoReturn
from urllib.parse import urlsplit

import click
import redis.exceptions

from vault.crypto.envelope import InvalidEnvelope, generate_key, open_envelope
from vault.crypto.keyring import generate_key_spec
from vault.crypto.signatures import helpscout_sign
from vault.crypto.tokens import AGENT_TOKEN, is_token
from vault.errors import ConfigError, Unavailable, VaultError
from vault.names import display_name

if TYPE_CHECKING:
    from vault.accounts import Accounts
    from vault.config import Config
    from vault.storage import AuditEvent, Store

DEFAULT_URL = "http://127.0.0.1:8000"
HTTP_TIMEOUT = 30.0
FOLLOW_BLOCK_MS = 5000
TICKET_POLL_SECONDS = 1.0

_TICKET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_LINK_RE = re.compile(r"/([rs])/([A-Za-z0-9_-]{28})/?$")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{43}")


class CliError(Exception):
    """A failure with its one-line message and exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def fail(message: str, status: int = 1) -> NoReturn:
    raise CliError(message, status)


def note(message: str) -> None:
    click.echo(message, err=True)


def _problem_text(exc: VaultError) -> str:
    params = exc.extra.get("invalid_params")
    if isinstance(params, list) and params:
        return "; ".join(f"{p.get('name')}: {p.get('reason')}" for p in params
                         if isinstance(p, dict))
    return exc.detail


class VaultGroup(click.Group):
    """The root group: turns every failure into one line on stderr and an exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit,
                click.exceptions.Abort, BrokenPipeError):
            raise  # click reports these itself (a closed pipe quietly)
        except CliError as exc:
            message, status = exc.message, exc.status
        except ConfigError as exc:
            message, status = str(exc), 2
        except Unavailable:
            message, status = ("the store does not answer: check VAULT_REDIS_URL and that Redis "
                               "is running"), 1
        except VaultError as exc:
            message, status = _problem_text(exc), 1
        except redis.exceptions.ResponseError as exc:
            # An ACL refusal names the command or key, worth showing; any other error, only
            # its code: a script's error text could quote an argument.
            text = (str(exc).splitlines() or [""])[0]
            shown = text if text.startswith("NOPERM") else text.split(" ", 1)[0]
            message, status = f"Redis refused a command: {shown or type(exc).__name__}", 1
        except Exception as exc:
            # Exception messages may quote input; the type is all that is safe to show.
            message, status = f"unexpected error ({type(exc).__name__})", 1
        click.echo(f"Error: {message}", err=True)
        ctx.exit(status)


@click.group(cls=VaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """vault: one-time credential exchange bound to helpdesk tickets."""


def main() -> None:
    """The `vault` console script."""
    try:
        cli(prog_name="vault")
    except BrokenPipeError:
        # `vault audit | head`: the reader left. Quietly, without a second error at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        sys.exit(1)


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
    return StoreContext(config=config, store=build_store(config))


# -- serve ----------------------------------------------------------------------------------------

@cli.command()
@click.option("--bind", metavar="HOST:PORT", default=None,
              help="Address to listen on (default $VAULT_BIND, else 127.0.0.1:8000).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default from the core count; 1 in the embedded mode).")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Threads per worker (default from the core count).")
@click.pass_context
def serve(ctx: click.Context, bind: str | None, workers: int | None, threads: int | None) -> None:
    """Run vault under gunicorn (embedded demo mode when nothing is configured)."""
    from vault.serve import serve as run_server

    ctx.exit(run_server(bind=bind, workers=workers, threads=threads))


# -- keys ------------------------------------------------------------------------------------------

@cli.group()
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


@cli.group()
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
    """Remove an agent's second factor (ends their sessions and tokens)."""
    open_store().accounts().reset_2fa(email)
    note(f"Second factor removed for {_email(email)}.")


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


@cli.group()
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


@cli.group()
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


@cli.command()
@click.option("--ticket", default=None, help="Only this ticket's events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.option("-n", "count", type=click.IntRange(min=0, max=100_000), default=100,
              show_default=True, help="How many past events to print.")
def audit(ticket: str | None, follow: bool, count: int) -> None:
    """Print audit events as JSON lines, newest last."""
    from vault.service import event_json

    if ticket is not None and not _TICKET_RE.fullmatch(ticket):
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


# -- the agent's terminal flow over HTTP -----------------------------------------------------------

class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A redirect would carry the bearer token to wherever it points: refuse them all.
    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> None:
        return None


def _vault_url() -> str:
    """VAULT_URL (default DEFAULT_URL) without its trailing slash; exit 2 unless http(s)."""
    base = os.environ.get("VAULT_URL", "").strip() or DEFAULT_URL
    parts = urlsplit(base)
    try:
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname) \
            and not parts.query and not parts.fragment and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        fail("VAULT_URL must be an http:// or https:// URL, such as "
             f"{DEFAULT_URL}", 2)
    return base.rstrip("/")


def _origin(base: str) -> str:
    """scheme://host[:port] of a URL, for messages (never its path)."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


def _exchange(req: urllib.request.Request, origin: str) -> tuple[int, Message, bytes]:
    """Send one request: (status, headers, body) of whatever vault answered, redirects
    included (never followed). CliError when no answer comes (unreachable, timeout)."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(req, timeout=HTTP_TIMEOUT) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        try:
            raw = exc.read() or b""
        except OSError:
            raw = b""
        return exc.code, exc.headers, raw
    except urllib.error.URLError as exc:
        reason = exc.reason if isinstance(exc.reason, str) else type(exc.reason).__name__
        if isinstance(exc.reason, OSError) and exc.reason.strerror:
            reason = exc.reason.strerror
        fail(f"cannot reach vault at {origin}: {reason}")
    except TimeoutError:
        fail(f"vault at {origin} did not answer within {HTTP_TIMEOUT:.0f} s")
    except OSError as exc:
        fail(f"cannot talk to vault at {origin}: {exc.strerror or type(exc).__name__}")


@dataclass
class Api:
    base: str
    token: str

    @classmethod
    def from_env(cls) -> Api:
        base = _vault_url()
        value = os.environ.get("VAULT_TOKEN", "").strip()
        if not value:
            fail("set VAULT_TOKEN to your API token (an admin creates one with "
                 "`vault token create EMAIL`)", 2)
        if not is_token(value, AGENT_TOKEN):
            fail("VAULT_TOKEN is not an agent API token (vt_ followed by 43 characters)", 2)
        return cls(base=base, token=value)

    @property
    def origin(self) -> str:
        return _origin(self.base)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             auth: bool = True) -> dict[str, Any]:
        """One API call; the JSON answer, or CliError with the server's `detail`."""
        data = None if body is None else json.dumps(body).encode()
        # The scheme was checked in from_env: only http and https reach here.
        req = urllib.request.Request(self.base + path, data=data, method=method)  # noqa: S310
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth:
            req.add_header("Authorization", f"Bearer {self.token}")
        status, headers, raw = _exchange(req, self.origin)
        if not 200 <= status < 300:
            fail(_http_error(status, headers, raw))
        if not raw:
            return {}
        answer = _json_object(raw)
        if answer is None:
            fail(f"vault at {self.origin} sent an answer that is not a JSON object")
        return answer


def _json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in an answer's body; None for anything else (an empty body too)."""
    try:
        value = json.loads(raw or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _json_line(value: Any) -> str:
    """JSON on one line, readable in any language, with every character a terminal could act
    on (C0 and C1 controls, bidi overrides and other format characters) written as an escape:
    the fields are the customer's text."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _printable(value: Any, limit: int = 500) -> str:
    """Text from a server, as it may reach a terminal: no control or format characters (an
    escape sequence could rewrite the screen), bounded."""
    return "".join(c for c in str(value) if c.isprintable())[:limit]


def _http_error(status: int, headers: Message, raw: bytes) -> str:
    problem = _json_object(raw)
    if 300 <= status < 400:
        return (f"vault answered with a redirect (HTTP {status}); set VAULT_URL to the address "
                "it redirects to")
    if problem is None:
        return f"vault answered HTTP {status}"
    detail = _printable(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    extra = ""
    if problem.get("reason") == "revealed" and problem.get("revealed_by"):
        extra = f" (by {display_name(problem['revealed_by'], clean=True) or 'an agent'}"
        extra += f" at {_printable(problem['revealed_at'])})" if problem.get("revealed_at") \
            else ")"
    if status == 401:
        detail += " Check VAULT_TOKEN."
    if status in {429, 503} and headers.get("Retry-After"):
        detail += f" Retry in {_printable(headers['Retry-After'], 20)} s."
    return f"{detail}{extra} (HTTP {status})"


@cli.command()
@click.option("--ticket", required=True, help="The helpdesk ticket the credentials are for.")
@click.option("--note", "note_text", default=None, help="A note shown to the customer.")
def request(ticket: str, note_text: str | None) -> None:
    """Ask a customer for credentials: print the link (with its key) to paste into the ticket."""
    if not _TICKET_RE.fullmatch(ticket):
        raise click.BadParameter("use 1 to 64 letters, digits, '-' or '_'", param_hint="--ticket")
    api = Api.from_env()
    body: dict[str, Any] = {"ticket": ticket}
    if note_text:
        body["note"] = note_text
    created = api.call("POST", "/api/v1/requests", body)
    url = created.get("url")
    if not isinstance(url, str) or not url:
        fail("vault's answer has no link")
    key = generate_key()
    click.echo(f"{url}#{key}")
    note(f"Request for ticket {ticket}; paste the link into your reply. "
         f"It expires at {created.get('expires_at')}.")


def _parse_link(link: str) -> tuple[str, str, str]:
    """(r or s, id, K) from a vault link; messages never repeat the link, which holds K."""
    parts = urlsplit(link.strip())
    match = _LINK_RE.search(parts.path)
    if match is None:
        fail("not a vault link: expected https://HOST/r/<id>#<key> or https://HOST/s/<id>#<key>",
             2)
    if not parts.fragment:
        fail("the link has no key after '#': copy the whole link", 2)
    if not _KEY_RE.fullmatch(parts.fragment):
        fail("the key after '#' is damaged (it is 43 characters): copy the whole link", 2)
    return match.group(1), match.group(2), parts.fragment


MAX_LINK = 4096
ARGUMENT_WARNING = ("warning: the link's key is on the command line, where `ps` and your shell "
                    "history show it; run `vault reveal` and paste the link at its prompt, or "
                    "pipe it in")


def _read_link() -> str:
    """The link from a prompt that does not echo it (a terminal) or one line of standard input
    (a pipe): never from the command line, where the key would show in `ps` and the history."""
    if sys.stdin.isatty():
        link = click.prompt("Link (with its #key)", hide_input=True, err=True, default="",
                            show_default=False)
    else:
        link = sys.stdin.readline(MAX_LINK + 1)
    if len(link) > MAX_LINK:
        fail("the link is too long: paste only the link", 2)
    if not link.strip():
        fail("no link: paste it at the prompt or send it on standard input "
             "(e.g. `pbpaste | vault reveal`)", 2)
    return link


@cli.command()
@click.argument("url", metavar="[URL]", required=False)
def reveal(url: str | None) -> None:
    """Reveal a secret from its link; print its fields as one line of JSON.

    The link, with its #key, is read from a prompt (on a terminal) or from standard input.
    A URL argument works too but warns: the key would show in `ps` and in shell history.
    """
    if url is None:
        url = _read_link()
    else:
        note(ARGUMENT_WARNING)
    kind_of_link, id_, key = _parse_link(url)
    api = Api.from_env()
    secret_id = id_
    if kind_of_link == "r":
        state = api.call("GET", f"/api/v1/requests/{id_}", auth=False)
        secret_id = str(state.get("secret_id") or "")
        if not secret_id:
            fail("the customer has not filled this request yet")
    revealed = api.call("POST", f"/api/v1/secrets/{secret_id}/reveal", {})
    envelope, kind, ticket = (revealed.get("envelope"), revealed.get("kind"),
                              revealed.get("ticket"))
    if not all(isinstance(v, str) for v in (envelope, kind, ticket)):
        fail("vault's answer to the reveal is incomplete")
    try:
        fields = open_envelope(key, str(envelope), ticket=str(ticket), kind=str(kind))
    except InvalidEnvelope:
        fail("the secret does not open with the key in this link (was the link copied whole?); "
             "it was not acknowledged, so this session can fetch it again for a short while")
    click.echo(_json_line(fields))
    note(f"{_printable(kind, 40)} credentials for ticket {_printable(ticket, 64)}.")
    try:
        api.call("POST", f"/api/v1/secrets/{secret_id}/ack", {})
    except CliError as exc:
        note(f"warning: the reveal was not acknowledged ({exc.message}); vault deletes the "
             "envelope when the grace window ends")


# -- Help Scout deliveries, replayed ---------------------------------------------------------------

HELPSCOUT_PATH = "/api/v1/webhooks/helpscout"
_EVENT_RE = re.compile(r"[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True)
class Delivery:
    line: int
    event: str
    raw: bytes


def _delivery(number: int, data: bytes) -> Delivery | None:
    """One line of a replay file: None for a blank line or a comment; exit 2 when it is bad."""
    try:
        text = data.decode("utf-8-sig" if number == 1 else "utf-8").strip()
    except UnicodeDecodeError:
        fail(f"line {number}: not UTF-8 text", 2)
    if not text or text.startswith("#"):
        return None
    try:
        item = json.loads(text)
    except ValueError as exc:
        # The decoder's message names a position, never the text itself.
        where = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
            else type(exc).__name__
        fail(f"line {number}: not valid JSON ({where})", 2)
    if not isinstance(item, dict):
        fail(f'line {number}: expected a JSON object with "event" and "body"', 2)
    headers = item.get("headers", {})
    if not isinstance(headers, dict):
        fail(f'line {number}: "headers" must be an object', 2)
    named = [v for k, v in headers.items() if k.lower() == "x-helpscout-event"]
    event = item.get("event", named[0] if named else None)
    if named and any(v != event for v in named):
        fail(f'line {number}: "event" and the X-HelpScout-Event header disagree', 2)
    if not isinstance(event, str) or not _EVENT_RE.fullmatch(event):
        fail(f'line {number}: "event" (or an X-HelpScout-Event header) must name the event, '
             "such as convo.assigned", 2)
    body = item.get("body")
    try:
        if isinstance(body, dict):
            # Compact, as Help Scout sends it; a string body is the recorded bytes, kept as is.
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            fail(f'line {number}: "body" must be a JSON object (sent as compact JSON) or a '
                 "string (sent byte for byte)", 2)
    except UnicodeEncodeError:
        fail(f'line {number}: "body" holds an unpaired surrogate escape (\\ud800-\\udfff)', 2)
    return Delivery(line=number, event=event, raw=raw)


def _replay_error(status: int, headers: Message, raw: bytes) -> str:
    """What a refused delivery's answer says, for its JSON line."""
    if 300 <= status < 400:
        return (f"vault answered with a redirect (HTTP {status}); set VAULT_URL to the address "
                "it redirects to")
    problem = _json_object(raw)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}") \
        if problem is not None else f"vault answered HTTP {status}"
    if status == 401:
        detail += " Check VAULT_HELPSCOUT_SECRET."
    if status in {429, 503} and headers.get("Retry-After"):
        detail += f" (Retry-After: {_printable(headers['Retry-After'], 20)})"
    return detail


@cli.group()
def helpscout() -> None:
    """Help Scout webhooks: rehearse recorded deliveries with `replay`."""


@helpscout.command("replay")
@click.argument("file", type=click.File("rb"))
@click.pass_context
def helpscout_replay(ctx: click.Context, file: IO[bytes]) -> None:
    """Replay recorded Help Scout deliveries against a vault, in order.

    FILE (or - for standard input) holds one delivery per line, as JSON:
    {"event": "convo.assigned", "body": {...}}. The event may come instead as an
    X-HelpScout-Event entry of a "headers" object; other headers, a recorded signature among
    them, are ignored. A body that is an object is sent as compact JSON; a body that is a
    string is sent byte for byte (a raw recorded body, kept exactly). Blank lines and lines
    starting with # are skipped.

    Each delivery is signed like Help Scout signs it, with the first secret of
    VAULT_HELPSCOUT_SECRET, and posted to VAULT_URL (default http://127.0.0.1:8000); no API
    token is needed. The whole file is checked first: a bad line stops everything before
    anything is sent (exit 2). Then one JSON line per delivery goes to stdout, {"line", "event",
    "status", "result"} or, when vault refused it, {"line", "event", "status", "error"}, and a
    summary to stderr. Refused deliveries do not stop the replay and are never retried.

    Exit 0 when vault accepted every delivery, 1 when it refused any or cannot be reached.
    A delivery seen again within a day (VAULT_WEBHOOK_DEDUPE_TTL) is answered as a duplicate
    and not acted on twice, so replaying a file again changes nothing.
    """
    base = _vault_url()
    secrets_ = [s.strip() for s in os.environ.get("VAULT_HELPSCOUT_SECRET", "").split(",")
                if s.strip()]
    if not secrets_:
        fail("set VAULT_HELPSCOUT_SECRET to the Help Scout webhook secret that vault "
             "accepts (the first one of its list signs the replayed deliveries)", 2)
    key = secrets_[0]
    deliveries = [d for number, data in enumerate(file, 1)
                  if (d := _delivery(number, data)) is not None]
    if not deliveries:
        fail("the file holds no deliveries (only blank lines or comments)", 2)

    origin, accepted, repeats = _origin(base), 0, 0
    for sent, delivery in enumerate(deliveries):
        # The scheme was checked in _vault_url: only http and https reach here.
        req = urllib.request.Request(base + HELPSCOUT_PATH, data=delivery.raw,  # noqa: S310
                                     method="POST")
        req.add_header("Accept", "application/json")
        req.add_header("Content-Type", "application/json")
        req.add_header("X-HelpScout-Event", delivery.event)
        req.add_header("X-HelpScout-Signature", helpscout_sign(key, delivery.raw))
        try:
            status, headers, raw = _exchange(req, origin)
        except CliError as exc:
            if sent:
                exc.message += (f"; {sent} of {len(deliveries)} deliveries were sent, the rest "
                                "were not")
            raise
        shown: dict[str, Any] = {"line": delivery.line, "event": delivery.event,
                                 "status": status}
        answer = _json_object(raw) if 200 <= status < 300 else None
        if answer is not None:
            shown["result"] = answer
            accepted += 1
            repeats += answer.get("duplicate") is True
        elif 200 <= status < 300:
            shown["error"] = f"vault answered HTTP {status} with something that is not a " \
                "JSON object"
        else:
            shown["error"] = _replay_error(status, headers, raw)
        click.echo(json.dumps(shown, ensure_ascii=False))

    refused = len(deliveries) - accepted
    total = f"{len(deliveries)} deliver{'y' if len(deliveries) == 1 else 'ies'}"
    note(f"replayed {total}: {accepted} accepted"
         + (f" ({repeats} as duplicates, not acted on again)" if repeats else "")
         + (f", {refused} refused" if refused else ""))
    if refused:
        ctx.exit(1)


if __name__ == "__main__":
    main()
