"""Agents' passkeys and the passkey ceremonies in progress, under the account slot's `{acct}`
hash tag: a record per passkey (its owner, name, credential id and public key, signature
counter, times), the set of each agent's passkeys, the index from a credential id's digest to
its passkey (who a sign-in is), and each challenge until it is taken."""

from __future__ import annotations

from typing import Any

from vault.storage import keys
from vault.storage.runner import Runner, strings, text


class PasskeyOps(Runner):
    def add_passkey(self, *, email: str, passkey_id: str, credential_digest: str,
                    fields: dict[str, Any]) -> str:
        """Register a passkey: 'ok', 'taken' (its credential is registered already, to anyone)
        or 'gone' (no such agent)."""
        flat: list[Any] = []
        for name, value in {**fields, "email": email, "id": passkey_id,
                            "cred_digest": credential_digest}.items():
            flat += [name, value]
        out = self._eval("ADD_PASSKEY", [keys.PASSKEY_IDS, keys.passkeys(email),
                                         keys.passkey(passkey_id), keys.agent(email)],
                         [credential_digest, passkey_id, *flat])
        return text(out[0])

    def passkeys_of(self, email: str) -> list[dict[str, str]]:
        """The agent's passkeys' records, oldest first."""
        with self._guard():
            ids = sorted(text(i) for i in self.client.smembers(keys.passkeys(email)))
            if not ids:
                return []
            pipe = self.client.pipeline(transaction=False)
            for passkey_id in ids:
                pipe.hgetall(keys.passkey(passkey_id))
            rows = [strings(h) for h in pipe.execute() if h]
        return sorted(rows, key=lambda r: (int(r.get("created_at") or 0), r.get("id", "")))

    def passkey_by_credential(self, credential_digest: str) -> dict[str, str] | None:
        """The record of the passkey whose credential id has this digest, if any."""
        with self._guard():
            passkey_id = text(self.client.hget(keys.PASSKEY_IDS, credential_digest))
            if not passkey_id:
                return None
            return strings(self.client.hgetall(keys.passkey(passkey_id))) or None

    def use_passkey(self, passkey_id: str, *, count: int, now_ms: int) -> str:
        """Record a sign-in with the passkey: 'ok', 'count' (the signature counter did not
        grow: refused, nothing written) or 'gone' (removed meanwhile)."""
        return text(self._eval("USE_PASSKEY", [keys.passkey(passkey_id)], [count, now_ms])[0])

    def remove_passkeys(self, email: str, passkey_ids: list[str]) -> int:
        """Remove those of `passkey_ids` that are the agent's; how many were."""
        if not passkey_ids:
            return 0
        out = self._eval("REMOVE_PASSKEYS",
                         [keys.PASSKEY_IDS, keys.passkeys(email), keys.agent(email),
                          *(keys.passkey(i) for i in passkey_ids)], list(passkey_ids))
        return int(text(out[0]) or 0)

    def put_challenge(self, digest: str, record: str, ttl_ms: int) -> None:
        """A passkey ceremony in progress, under the digest of its challenge."""
        key = keys.passkey_challenge(digest)
        self._write([key], ["SET", key, record, "PX", ttl_ms])

    def take_challenge(self, digest: str) -> str | None:
        """The ceremony of that challenge digest, read and deleted in one step: a challenge is
        good once, so a replayed answer finds nothing."""
        key = keys.passkey_challenge(digest)
        return text(self._write([key], ["GET", key], ["DEL", key])[0]) or None
