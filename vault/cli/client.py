"""The agent's terminal flow: `vault request` asks a customer for credentials, `vault reveal`
opens what they sent, with the agent's API token (`VAULT_TOKEN`) against `VAULT_URL`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import click

from vault.cli.common import TICKET_RE, CliError, fail, note
from vault.cli.transport import Vault, json_object, printable, vault_url
from vault.crypto.envelope import InvalidEnvelope, generate_key, open_envelope
from vault.crypto.tokens import AGENT_TOKEN, is_token
from vault.names import display_name

_LINK_RE = re.compile(r"/([rs])/([A-Za-z0-9_-]{28})/?$")
_KEY_RE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass
class Api:
    vault: Vault
    token: str

    @classmethod
    def from_env(cls) -> Api:
        base = vault_url()
        value = os.environ.get("VAULT_TOKEN", "").strip()
        if not value:
            fail("set VAULT_TOKEN to your API token (an admin creates one with "
                 "`vault token create EMAIL`)", 2)
        if not is_token(value, AGENT_TOKEN):
            fail("VAULT_TOKEN is not an agent API token (vt_ followed by 43 characters)", 2)
        return cls(vault=Vault(base), token=value)

    @property
    def origin(self) -> str:
        return self.vault.origin

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             auth: bool = True) -> dict[str, Any]:
        """One API call; the JSON answer, or CliError with the server's `detail`."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        status, answer_headers, raw = self.vault.send(method, path, body=data, headers=headers)
        if not 200 <= status < 300:
            fail(_http_error(status, answer_headers, raw))
        if not raw:
            return {}
        answer = json_object(raw)
        if answer is None:
            fail(f"vault at {self.origin} sent an answer that is not a JSON object")
        return answer


def _json_line(value: Any) -> str:
    """JSON on one line, readable in any language, with every character a terminal could act
    on (C0 and C1 controls, bidi overrides and other format characters) written as an escape:
    the fields are the customer's text."""
    text = json.dumps(value, ensure_ascii=False)
    return "".join(c if c.isprintable() else json.dumps(c)[1:-1] for c in text)


def _http_error(status: int, headers: Mapping[str, str], raw: bytes) -> str:
    problem = json_object(raw)
    if 300 <= status < 400:
        return (f"vault answered with a redirect (HTTP {status}); set VAULT_URL to the address "
                "it redirects to")
    if problem is None:
        return f"vault answered HTTP {status}"
    detail = printable(problem.get("detail") or problem.get("title") or f"HTTP {status}")
    extra = ""
    if problem.get("reason") == "revealed" and problem.get("revealed_by"):
        extra = f" (by {display_name(problem['revealed_by'], clean=True) or 'an agent'}"
        extra += f" at {printable(problem['revealed_at'])})" if problem.get("revealed_at") \
            else ")"
    if status == 401:
        detail += " Check VAULT_TOKEN."
    if status in {429, 503} and headers.get("Retry-After"):
        detail += f" Retry in {printable(headers['Retry-After'], 20)} s."
    return f"{detail}{extra} (HTTP {status})"

@click.command()
@click.option("--ticket", required=True, help="The helpdesk ticket the credentials are for.")
@click.option("--note", "note_text", default=None, help="A note shown to the customer.")
def request(ticket: str, note_text: str | None) -> None:
    """Ask a customer for credentials: print the link (with its key) to paste into the ticket."""
    if not TICKET_RE.fullmatch(ticket):
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


@click.command()
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
    note(f"{printable(kind, 40)} credentials for ticket {printable(ticket, 64)}.")
    try:
        api.call("POST", f"/api/v1/secrets/{secret_id}/ack", {})
    except CliError as exc:
        note(f"warning: the reveal was not acknowledged ({exc.message}); vault deletes the "
             "envelope when the grace window ends")
