"""The named rate limits, as the store's scripts count them.

The documented strings (`VAULT_RATELIMIT_*`, "30/minute", "5/minute;100/hour") are parsed by
`limits`, flask-limiter's own engine, and counted as its Redis fixed-window strategy counts them
(`over_limit` in `vault/storage/lua/`): the same windows, the same counter names
(`RateLimitItem.key_for`, kept under the account slot's hash tag so a Cluster counts them beside
the credential they follow). Counting inside the scripts is what lets a create, a fill and a
reveal be one round trip with their limit (docs/architecture.md, "Round trips"); the other
routes count theirs with the GATE script.
"""

from __future__ import annotations

from limits import RateLimitItem, parse_many

_SPLIT = "\x00"


def spec(name: str, items: list[RateLimitItem]) -> str:
    """The scripts' form of the limits `items` named `name`: one line "amount seconds head tail"
    each, the counter being head + identity + tail (limits' own key layout)."""
    lines = []
    for item in items:
        head, tail = item.key_for(name, _SPLIT).split(_SPLIT)
        lines.append(f"{item.amount} {item.get_expiry()} {head} {tail}")
    return "\n".join(lines)


def specs(strings: dict[str, str]) -> dict[str, str]:
    """{name: spec} for each named limit string (already validated by vault.config)."""
    return {name: spec(name, parse_many(text)) for name, text in strings.items()}


def windows(text: str) -> list[tuple[int, int]]:
    """(amount, seconds) of each limit in a limit string (the sidebar counts per ticket)."""
    return [(item.amount, item.get_expiry()) for item in parse_many(text)]
