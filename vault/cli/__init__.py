"""The `vault` command line.

Output meant for scripts goes alone on stdout; prompts, notes and errors go to stderr. Errors are
one line, `Error: ...`, never a traceback and never a secret: exit 2 for configuration and usage,
1 for everything else. Three programs share the command:

- `vault/cli/admin.py`: the store's own commands (agent, token, apikey, keys, audit), reading
  the same `VAULT_*` environment as `vault serve`;
- `vault/cli/client.py`: `vault request` and `vault reveal`, which talk to a running vault
  over HTTP (`VAULT_URL`, `VAULT_TOKEN`; vault/cli/transport.py);
- `vault/cli/replay.py`: `vault helpscout replay`, over HTTP too, signing with
  `VAULT_HELPSCOUT_SECRET` instead of a token.

This module holds the root group (which turns every failure into its one line), `main` (the
console script) and `vault serve`.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click
import redis.exceptions

from vault.cli import admin, client, replay
from vault.cli.common import CliError
from vault.errors import ConfigError, Unavailable, VaultError

__all__ = ["cli", "main"]


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



for command in (admin.keys, admin.agent, admin.token, admin.apikey, admin.audit, client.request,
                client.reveal, replay.helpscout):
    cli.add_command(command)
