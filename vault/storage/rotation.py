"""What key rotation reads and rewrites: every stored envelope and every agent's wrapped TOTP
secret, each written back only if it is still what was read (compare-and-set), so that
rotation never resurrects a revealed or deleted envelope nor undoes a reset."""

from __future__ import annotations

from collections.abc import Iterator

from vault.storage import keys
from vault.storage.accounts import AccountOps
from vault.storage.runner import text


class RotationOps(AccountOps):
    def iter_envelope_keys(self) -> Iterator[tuple[str, str]]:
        """(key, secret id) of every stored envelope, by SCAN (no KEYS, no blocking)."""
        with self._guard():
            for key in self.client.scan_iter(match=keys.ENVELOPES, count=1000):
                name = text(key)
                yield name, name[-28:]

    def get_raw(self, key: str) -> bytes | None:
        with self._guard():
            value = self.client.get(key)
        return value if value is None or isinstance(value, bytes) else str(value).encode()

    def swap_if_same(self, key: str, expected: bytes, replacement: bytes) -> bool:
        """Compare-and-set for rotation: writes only if the stored value is still `expected`."""
        return text(self._eval("SWAP_IF_SAME", [key], [expected, replacement])[0]) == "1"

    def wrapped_agent_secrets(self) -> list[tuple[str, bytes]]:
        """(e-mail, wrapped TOTP secret) of every agent that has one, for key rotation."""
        return [(a["email"], a["totp"].encode()) for a in self.list_agents() if a.get("totp")]

    def swap_agent_secret(self, email: str, expected: bytes, replacement: bytes) -> bool:
        """Compare-and-set of an agent's wrapped TOTP secret (rotation never undoes a reset)."""
        out = self._eval("SWAP_FIELD_IF_SAME", [keys.agent(email)],
                         ["totp", expected, replacement])
        return text(out[0]) == "1"
