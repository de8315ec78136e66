"""Re-wrap every stored envelope and agent TOTP secret under the current key (`vault keys rotate`).

Each envelope is read, re-wrapped and written back with compare-and-set (`Store.swap_if_same`):
the write happens only if the stored value is still the one that was read, so an envelope
revealed, deleted or purged meanwhile is never resurrected, and its TTL is kept. Rotation can
run while vault serves: readers unwrap with any key of the ring, old or new.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from vault.accounts import totp_context
from vault.crypto.keyring import InvalidWrap, KeyRing
from vault.service import envelope_context
from vault.storage import Store

__all__ = ["RotationReport", "envelope_context", "rotate_all"]


@dataclass(frozen=True)
class RotationReport:
    """Counts of one pass. `failed` envelopes could not be unwrapped with any key of the ring."""

    scanned: int = 0
    rewrapped: int = 0
    already_current: int = 0
    vanished: int = 0
    failed: int = 0

    def summary(self) -> str:
        return (f"scanned {self.scanned}, re-wrapped {self.rewrapped}, already current "
                f"{self.already_current}, vanished {self.vanished}, failed {self.failed}")


def rotate_all(store: Store, keyring: KeyRing) -> RotationReport:
    """Re-wrap every stored envelope and agent TOTP secret under `keyring`'s current key.

    A value gone or changed between the read and the write counts as vanished; one that no
    key of the ring opens counts as failed and is left untouched. Raises `Unavailable` when
    Redis does not answer (what was already re-wrapped stays re-wrapped: a rerun resumes).
    """
    counts = {"scanned": 0, "rewrapped": 0, "already_current": 0, "vanished": 0, "failed": 0}

    def envelopes() -> Iterable[tuple[bytes | None, bytes, Callable[[bytes, bytes], bool]]]:
        seen: set[str] = set()
        for key, secret_id in store.iter_envelope_keys():
            if key in seen:  # SCAN may return a key more than once
                continue
            seen.add(key)
            yield store.get_raw(key), envelope_context(secret_id), partial(store.swap_if_same, key)

    def totp_secrets() -> Iterable[tuple[bytes | None, bytes, Callable[[bytes, bytes], bool]]]:
        for email, blob in store.wrapped_agent_secrets():
            yield blob, totp_context(email), partial(store.swap_agent_secret, email)

    for blob, context, swap in (*envelopes(), *totp_secrets()):
        counts["scanned"] += 1
        if blob is None:
            counts["vanished"] += 1
            continue
        try:
            # Unwraps even a current blob, so a damaged one is reported, not passed over.
            replacement = keyring.rotate(blob, context=context)
        except InvalidWrap:
            counts["failed"] += 1
            continue
        if replacement == blob:
            counts["already_current"] += 1
        elif swap(blob, replacement):
            counts["rewrapped"] += 1
        else:
            counts["vanished"] += 1
    return RotationReport(**counts)
