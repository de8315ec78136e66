"""Realistic payloads, and a fast way to store many vault secrets (bench only).

`BulkLoader` writes secrets exactly as `Vault.create_secret` does: a new id in the ticket's slot,
the envelope wrapped under the server's key ring and bound to that id, a manage-token digest, and
the Store's own CREATE_SECRET script with the Store's own arguments (so the key layout, indexes,
TTLs and audit entries are vault's). Only the HTTP layer and the per-call round trip are skipped:
scripts go out in pipelines of EVALSHA, from several processes at once for the big fills.
"""

from __future__ import annotations

import json
import multiprocessing
import secrets
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlencode

from vault import ids
from vault.crypto.envelope import generate_key, seal
from vault.crypto.tokens import MANAGE_TOKEN, new_token, token_digest
from vault.service import envelope_context
from vault.storage import keys
from vault.storage.scripts import SCRIPTS

# "A realistic 1 KiB envelope": envelope v1 text is "v1." + base64url(12-byte nonce + ciphertext
# + 16-byte tag) without padding, so 738 bytes of JSON fields give 1025 characters (1024 itself
# is not a length base64url can have here).
PLAINTEXT_BYTES = 738
ENVELOPE_CHARS = 3 + (4 * (PLAINTEXT_BYTES + 28) + 2) // 3
KIND = "sftp"

_KEY_LINES = 4


def sftp_fields(note_pad: int = 0) -> dict[str, str]:
    """What a customer pastes for an sFTP account: host, port, user, password, an OpenSSH
    private key, a note."""
    body = secrets.token_urlsafe(70 * _KEY_LINES)
    key_body = "\n".join(body[i:i + 70] for i in range(0, len(body), 70))
    return {
        "host": "sftp.customer-site.example.com",
        "port": "2222",
        "username": "support-ticket-temp",
        "password": secrets.token_urlsafe(18),
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\n" + key_body
                       + "\n-----END OPENSSH PRIVATE KEY-----\n",
        "note": "Temporary account, delete when done" + "." * note_pad,
    }


def _plaintext(fields: dict[str, str]) -> bytes:
    # The same serialisation as vault.crypto.envelope.seal.
    return json.dumps({k: v for k, v in fields.items() if v}, ensure_ascii=False,
                      separators=(",", ":"), sort_keys=True).encode()


def realistic_fields() -> dict[str, str]:
    """sFTP fields whose envelope is exactly ENVELOPE_CHARS characters."""
    base = len(_plaintext(sftp_fields()))
    # The random parts have fixed lengths, so padding the note lands exactly.
    fields = sftp_fields(note_pad=PLAINTEXT_BYTES - base)
    assert len(_plaintext(fields)) == PLAINTEXT_BYTES, len(_plaintext(fields))
    return fields


def realistic_envelope(ticket: str) -> str:
    """A real envelope v1 (what the browser uploads) of ENVELOPE_CHARS characters."""
    text = seal(generate_key(), ticket=ticket, kind=KIND, fields=realistic_fields())
    assert len(text) == ENVELOPE_CHARS, len(text)
    return text


def realistic_password() -> str:
    """The same credentials as plain text of the same size, for snappass (which takes one
    text field and encrypts it on the server)."""
    fields = realistic_fields()
    text = "\n".join(f"{k}: {v}" for k, v in fields.items())
    return (text + " " * PLAINTEXT_BYTES)[:PLAINTEXT_BYTES]


def vault_create_body(ticket: str) -> str:
    return json.dumps({"ticket": ticket, "kind": KIND, "envelope": realistic_envelope(ticket)})


def snappass_create_body() -> str:
    return urlencode({"password": realistic_password(), "ttl": "week"})


class BulkLoader:
    """Store secrets the way `Vault.create_secret` does, many scripts per round trip."""

    def __init__(self, ext: Any, batch: int = 500) -> None:
        self.ext = ext
        self.store = ext.store
        self.keyring = ext.keyring
        self.config = ext.config
        self.batch = batch
        self._script = SCRIPTS["CREATE_SECRET"]
        self._envelopes: dict[str, bytes] = {}

    def envelope(self, ticket: str) -> bytes:
        env = self._envelopes.get(ticket)
        if env is None:
            if len(self._envelopes) > 10_000:
                self._envelopes.clear()
            env = self._envelopes[ticket] = realistic_envelope(ticket).encode()
        return env

    def create(self, tickets: Iterable[str]) -> list[str]:
        """One secret on each ticket listed (a ticket may repeat); returns the ids in order."""
        client = self.store.client
        cfg = self.config
        ttl = cfg.default_ttl
        meta_ttl_ms = (ttl + cfg.tombstone_ttl) * 1000
        sha, source = self._script.sha, self._script.source
        out: list[str] = []
        pipe = client.pipeline(transaction=False)
        pending: list[str] = []
        tags: dict[str, tuple[str, str]] = {}

        def flush() -> None:
            if not pending:
                return
            try:
                results = pipe.execute(raise_on_error=False)
            finally:
                pipe.reset()
            for r in results:
                if isinstance(r, Exception):
                    if "NOSCRIPT" in str(r):
                        client.script_load(source)
                    raise RuntimeError(f"bulk create failed: {r}")
                _, result = self.store._unwrap(r)  # the store reads its own answer format
                if not result or (result[0].decode() if isinstance(result[0], bytes)
                                  else result[0]) != "ok":
                    raise RuntimeError(f"bulk create refused: {r!r}")
            out.extend(pending)
            pending.clear()

        client.script_load(source)
        for ticket in tickets:
            tag_key = tags.get(ticket)
            if tag_key is None:
                if len(tags) > 10_000:
                    tags.clear()
                tag_key = tags[ticket] = (ids.slot_tag(ticket), keys.ticket(ticket))
            tag, key = tag_key
            id_ = ids.new_id_in(tag)
            now = int(time.time() * 1000)
            wrapped = self.keyring.wrap(self.envelope(ticket), context=envelope_context(id_))
            args = self.store._argv(tag, now, "customer", (
                ticket, id_, KIND, wrapped, now + ttl * 1000, ttl * 1000, meta_ttl_ms,
                token_digest(new_token(MANAGE_TOKEN)), cfg.max_waiting_per_ticket))
            pipe.execute_command("EVALSHA", sha, 1, key, *args)
            pending.append(id_)
            if len(pending) >= self.batch:
                flush()
        flush()
        return out


_worker_loader: BulkLoader | None = None


def _fill_worker(args: tuple[dict[str, str], Sequence[str]]) -> int:
    global _worker_loader
    variables, tickets = args
    if _worker_loader is None:  # a fresh process: its own app and connections, made once
        from harness import VaultSettings

        s = VaultSettings(redis_url=variables["VAULT_REDIS_URL"], port=0,
                          secret_key=variables["VAULT_SECRET_KEY"], keys=variables["VAULT_KEYS"])
        _worker_loader = BulkLoader(s.driver_app().extensions["vault"])
    return len(_worker_loader.create(tickets))


def parallel_fill(settings: Any, tickets: Sequence[str], processes: int = 3) -> float:
    """Store one secret per listed ticket from `processes` processes; returns seconds taken.
    The ids are not returned (filler nobody reveals)."""
    started = time.perf_counter()
    chunk = 20_000
    parts = [tickets[i:i + chunk] for i in range(0, len(tickets), chunk)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(processes) as pool:
        done = sum(pool.imap_unordered(_fill_worker,
                                       [(settings.variables(), p) for p in parts]))
    assert done == len(tickets), (done, len(tickets))
    return time.perf_counter() - started
