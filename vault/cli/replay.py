"""`vault helpscout replay`: recorded Help Scout deliveries, signed as Help Scout signs them
(`VAULT_HELPSCOUT_SECRET`) and posted to a running vault in order, to rehearse the webhook.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, Any

import click

from vault.cli.common import CliError, fail, note
from vault.cli.transport import Vault, json_object, printable, vault_url
from vault.helpdesks.helpscout import helpscout_sign

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


def _replay_error(status: int, headers: Mapping[str, str], raw: bytes) -> str:
    """What a refused delivery's answer says, for its JSON line."""
    if 300 <= status < 400:
        return (f"vault answered with a redirect (HTTP {status}); set VAULT_URL to the address "
                "it redirects to")
    problem = json_object(raw)
    detail = str(problem.get("detail") or problem.get("title") or f"HTTP {status}") \
        if problem is not None else f"vault answered HTTP {status}"
    if status == 401:
        detail += " Check VAULT_HELPSCOUT_SECRET."
    if status in {429, 503} and headers.get("Retry-After"):
        detail += f" (Retry-After: {printable(headers['Retry-After'], 20)})"
    return detail


@click.group()
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
    base = vault_url()
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

    vault, accepted, repeats = Vault(base), 0, 0
    for sent, delivery in enumerate(deliveries):
        try:
            status, headers, raw = vault.send("POST", HELPSCOUT_PATH, body=delivery.raw, headers={
                "Accept": "application/json", "Content-Type": "application/json",
                "X-HelpScout-Event": delivery.event,
                "X-HelpScout-Signature": helpscout_sign(key, delivery.raw)})
        except CliError as exc:
            if sent:
                exc.message += (f"; {sent} of {len(deliveries)} deliveries were sent, the rest "
                                "were not")
            raise
        shown: dict[str, Any] = {"line": delivery.line, "event": delivery.event,
                                 "status": status}
        answer = json_object(raw) if 200 <= status < 300 else None
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
