"""`vault helpscout replay`: recorded Help Scout deliveries, signed as Help Scout signs them
(`VAULT_HELPSCOUT_SECRET`) and posted to a running vault in order, to rehearse the webhook.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import IO, TYPE_CHECKING, Any

import click

from vault.cli.common import CliError, fail, note
from vault.cli.transport import Vault, json_object, printable, vault_url

if TYPE_CHECKING:
    from vault.helpdesks.helpscout import Recorded

# What a recorded delivery is and how Help Scout signs it are vault.helpdesks.helpscout's; that
# module (with the service and Flask-Babel behind it) is imported by the command that replays,
# not by every `vault` command.


def _deliveries(file: IO[bytes]) -> list[Recorded]:
    """Every delivery of the file, in order; exit 2 at the first bad line."""
    from vault.helpdesks.helpscout import BadRecording, recorded_delivery

    deliveries = []
    for number, data in enumerate(file, 1):
        try:
            delivery = recorded_delivery(number, data)
        except BadRecording as exc:
            fail(f"line {number}: {exc}", 2)
        if delivery is not None:
            deliveries.append(delivery)
    return deliveries


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
    deliveries = _deliveries(file)
    if not deliveries:
        fail("the file holds no deliveries (only blank lines or comments)", 2)

    from vault.helpdesks.helpscout import WEBHOOK_PATH

    vault, accepted, repeats = Vault(base), 0, 0
    for sent, delivery in enumerate(deliveries):
        try:
            status, headers, raw = vault.send("POST", WEBHOOK_PATH, body=delivery.raw, headers={
                "Accept": "application/json", **delivery.headers(key)})
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
