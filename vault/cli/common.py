"""What every part of the `vault` command shares: one-line failures, notes, ticket names.

Output meant for scripts goes alone on stdout; prompts, notes and errors go to stderr. A failure
is a CliError: one line, `Error: ...`, never a traceback and never a secret, with exit status 2
for configuration and usage and 1 for everything else (the root group in vault/cli/__init__.py
prints it).
"""

from __future__ import annotations

import re
from typing import NoReturn

import click

TICKET_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")


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
