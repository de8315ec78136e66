"""Re-wrap every stored envelope under the key ring's current key (`vault keys rotate`).

Each envelope is read, re-wrapped and written back with compare-and-set (`Store.swap_if_same`):
the write happens only if the stored value is still the one that was read, so an envelope
revealed, deleted or purged meanwhile is never resurrected, and its TTL is kept. Rotation can
run while vault serves: readers unwrap with any key of the ring, old or new.
"""

from __future__ import annotations

from dataclasses import dataclass

from vault.crypto.keyring import InvalidWrap, KeyRing
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


def envelope_context(secret_id: str) -> bytes:
    """What a stored envelope's wrap is bound to; the same as `Vault._context`."""
    return b"vault-envelope:" + secret_id.encode()


def rotate_all(store: Store, keyring: KeyRing) -> RotationReport:
    """Re-wrap every stored envelope under `keyring`'s current key; count what happened.

    An envelope gone or changed between the read and the write counts as vanished; one that no
    key of the ring opens counts as failed and is left untouched. Raises `Unavailable` when
    Redis does not answer (what was already re-wrapped stays re-wrapped: a rerun resumes).
    """
    scanned = rewrapped = current = vanished = failed = 0
    seen: set[str] = set()
    for key, secret_id in store.iter_envelope_keys():
        if key in seen:  # SCAN may return a key more than once
            continue
        seen.add(key)
        scanned += 1
        blob = store.get_raw(key)
        if blob is None:
            vanished += 1
            continue
        try:
            # Unwraps even a current blob, so a damaged one is reported, not passed over.
            replacement = keyring.rotate(blob, context=envelope_context(secret_id))
        except InvalidWrap:
            failed += 1
            continue
        if replacement == blob:
            current += 1
        elif store.swap_if_same(key, blob, replacement):
            rewrapped += 1
        else:
            vanished += 1
    return RotationReport(scanned=scanned, rewrapped=rewrapped, already_current=current,
                          vanished=vanished, failed=failed)
