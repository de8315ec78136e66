"""Display names: one rule for an agent's name wherever it comes from and wherever it is shown."""

from __future__ import annotations

from typing import Any

from vault.errors import ValidationFailed

MAX_NAME = 100  # characters of an agent's display name


def display_name(value: Any, *, clean: bool = False) -> str:
    """An agent's display name, held to one rule wherever it comes from (the admin form, the
    command line, the identity provider's `name` claim) and wherever it is shown: printable
    (no control characters, no bidi overrides or other invisible format characters, no line
    breaks) and at most MAX_NAME characters, surrounding spaces stripped. A name that breaks it
    is refused (ValidationFailed on `display_name`); with `clean`, for text vault takes as it
    comes (a provider's claim, a name stored before the rule, an answer printed by the command
    line), whitespace becomes one space, anything else unprintable is dropped and the rest is
    cut to MAX_NAME. "" for no name (the caller shows the e-mail instead)."""
    name = value.strip() if isinstance(value, str) else ""
    if len(name) <= MAX_NAME and name.isprintable():
        return name
    if not clean:
        raise ValidationFailed([{"name": "display_name", "reason":
                                 f"Use at most {MAX_NAME} printable characters."}])
    kept = "".join(c if c.isprintable() else " " if c.isspace() else "" for c in name)
    return " ".join(kept.split())[:MAX_NAME].rstrip()
