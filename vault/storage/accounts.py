"""Agents, their tokens and web sessions, helpdesk keys, sign-ins in progress, and the gate:
everything under the account slot's `{acct}` hash tag."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from vault.storage import keys
from vault.storage.gate import Gate
from vault.storage.runner import Runner, ScriptResult, strings, text


class AccountOps(Runner):
    def pass_gate(self, gate: Gate, now_ms: int) -> ScriptResult:
        """The gate alone, in the account slot: 'ok' (with `who` when it authenticated someone)
        or its refusal. Like flask-limiter's counters, a rate limit's is not worth a WAIT for
        replicas; a web session's last-seen time is (as in `authenticate`)."""
        raw = self._eval("GATE", [keys.AGENTS], [keys.PREFIX, now_ms, *gate.argv()],
                         write=gate.auth == "session")
        status = text(raw[0])
        if status == "ok":
            return ScriptResult("ok", [], [text(v) for v in raw[1] or []])
        return ScriptResult(status, list(raw[1:]))

    def authenticate(self, *, kind: str, digest: str, now_ms: int, idle_ms: int,
                     max_ms: int) -> list[str] | None:
        raw = self._eval("AUTHENTICATE", [keys.credential(kind, digest)],
                         [keys.PREFIX, now_ms, kind, idle_ms, max_ms], write=kind == "session")
        return [text(v) for v in raw] if raw else None

    # -- agents -----------------------------------------------------------------------------

    def get_agent(self, email: str) -> dict[str, str] | None:
        with self._guard():
            h = self.client.hgetall(keys.agent(email))
        return strings(h) or None

    def list_agents(self) -> list[dict[str, str]]:
        with self._guard():
            emails = sorted(text(e) for e in self.client.smembers(keys.AGENTS))
            pipe = self.client.pipeline(transaction=False)
            for email in emails:
                pipe.hgetall(keys.agent(email))
            rows = pipe.execute()
        return [strings(h) for h in rows if h]

    def agent_names(self, emails: Sequence[str]) -> dict[str, tuple[str, bool]]:
        """(name, disabled) of each agent of `emails` that exists, in one round trip (none for
        no e-mail); a nameless agent is named by their e-mail."""
        if not emails:
            return {}
        with self._guard():
            pipe = self.client.pipeline(transaction=False)
            for email in emails:
                pipe.hmget(keys.agent(email), "name", "disabled", "email")
            found = pipe.execute()
        return {email: (text(name) or email, text(disabled) == "1")
                for email, (name, disabled, known) in zip(emails, found, strict=True) if known}

    def add_agent(self, email: str, fields: dict[str, Any]) -> bool:
        """Create the agent; False if the e-mail is taken."""
        flat: list[Any] = []
        # A random epoch: an agent removed and added again never matches an old session.
        for name, value in {**fields, "email": email, "epoch": secrets.token_hex(8)}.items():
            flat += [name, value]
        hs_id = fields.get("helpscout_id") or ""
        out = self._eval("ADD_AGENT", [keys.AGENTS, keys.agent(email)],
                         [email, keys.helpscout_user(hs_id) if hs_id else "", *flat])
        return bool(int(text(out[0])))

    def update_agent(self, email: str, fields: dict[str, Any], *, revoke: bool = False) -> bool:
        """Change fields; with `revoke`, bump the epoch: every session and token dies at once."""
        key = keys.agent(email)
        with self._guard():
            old_hs_id = self.client.hget(key, "helpscout_id")
            if old_hs_id is None and not self.client.exists(key):
                return False
        written, commands = [key], []
        if fields:
            commands.append(["HSET", key, *(x for kv in fields.items() for x in kv)])
        if revoke:
            commands.append(["HSET", key, "epoch", secrets.token_hex(8)])
        if "helpscout_id" in fields and text(old_hs_id) != text(fields["helpscout_id"]):
            if old_hs_id:
                written.append(keys.helpscout_user(text(old_hs_id)))
                commands.append(["DEL", written[-1]])
            if fields["helpscout_id"]:
                written.append(keys.helpscout_user(fields["helpscout_id"]))
                commands.append(["SET", written[-1], email])
        if commands:
            self._write(written, *commands)
        return True

    def remove_agent(self, email: str) -> bool:
        with self._guard():
            agent = strings(self.client.hgetall(keys.agent(email)))
            if not agent:
                return False
            token_ids = [text(t) for t in self.client.smembers(keys.agent_tokens(email))]
            digests = [text(d) for d in (self.client.hmget(keys.TOKEN_IDS, token_ids)
                                         if token_ids else []) if d]
            passkey_ids = [text(p) for p in self.client.smembers(keys.passkeys(email))]
            credentials = [text(c) for c in (
                self._pipelined_hget([keys.passkey(p) for p in passkey_ids], "cred_digest"))
                if c]
        gone = [keys.agent(email), keys.agent_tokens(email), *(keys.token(d) for d in digests),
                keys.passkeys(email), *(keys.passkey(p) for p in passkey_ids)]
        if agent.get("helpscout_id"):
            gone.append(keys.helpscout_user(agent["helpscout_id"]))
        commands: list[list[Any]] = [["DEL", *gone], ["SREM", keys.AGENTS, email]]
        if token_ids:
            commands.append(["HDEL", keys.TOKEN_IDS, *token_ids])
        if credentials:
            commands.append(["HDEL", keys.PASSKEY_IDS, *credentials])
        self._write([*gone, keys.AGENTS, keys.TOKEN_IDS, keys.PASSKEY_IDS], *commands)
        return True

    def _pipelined_hget(self, hashes: list[str], field: str) -> list[Any]:
        if not hashes:
            return []
        pipe = self.client.pipeline(transaction=False)
        for key in hashes:
            pipe.hget(key, field)
        return list(pipe.execute())

    def agent_by_helpscout_id(self, hs_id: str) -> str | None:
        with self._guard():
            return text(self.client.get(keys.helpscout_user(hs_id))) or None

    # -- agent tokens and helpdesk keys -------------------------------------------------------

    def add_token(self, *, digest: str, token_id: str, owner: str, kind: str, epoch: str,
                  now_ms: int) -> None:
        token_key = keys.token(digest)
        owner_key = keys.agent_tokens(owner) if kind == "token" else keys.API_KEYS
        self._write(
            [token_key, keys.TOKEN_IDS, owner_key],
            ["HSET", token_key, "type", kind, "owner", owner, "id", token_id, "epoch", epoch,
             "created_at", now_ms],
            ["HSET", keys.TOKEN_IDS, token_id, digest],
            ["SADD", owner_key, token_id] if kind == "token"
            else ["HSET", owner_key, owner, token_id])

    def list_tokens(self, owner: str) -> list[dict[str, str]]:
        with self._guard():
            ids = sorted(text(t) for t in self.client.smembers(keys.agent_tokens(owner)))
            return self._token_rows(ids)

    def _token_rows(self, ids: list[str]) -> list[dict[str, str]]:
        if not ids:
            return []
        digests = self.client.hmget(keys.TOKEN_IDS, ids)
        pipe = self.client.pipeline(transaction=False)
        for digest in digests:
            pipe.hgetall(keys.token(text(digest)))
        return [row for row in map(strings, pipe.execute()) if row]

    def list_api_keys(self) -> list[dict[str, str]]:
        with self._guard():
            names = strings(self.client.hgetall(keys.API_KEYS))
            return self._token_rows(sorted(names.values()))

    def api_key_id(self, name: str) -> str | None:
        with self._guard():
            return text(self.client.hget(keys.API_KEYS, name)) or None

    def revoke_token(self, token_id: str, *, kind: str) -> dict[str, str] | None:
        """Delete an agent token (`kind="token"`) or helpdesk key (`"apikey"`) by its public id.

        Returns what it was; None if no such id of that kind exists (nothing is deleted).
        """
        with self._guard():
            digest = text(self.client.hget(keys.TOKEN_IDS, token_id))
            if not digest:
                return None
            row = strings(self.client.hgetall(keys.token(digest)))
            if row.get("type") != kind:
                return None
        commands: list[list[Any]] = [["DEL", keys.token(digest)],
                                     ["HDEL", keys.TOKEN_IDS, token_id]]
        if row.get("type") == "token":
            commands.append(["SREM", keys.agent_tokens(row.get("owner", "")), token_id])
        elif row.get("owner"):
            commands.append(["HDEL", keys.API_KEYS, row["owner"]])
        self._write([c[1] for c in commands], *commands)
        return row

    # -- web sessions and sign-ins ------------------------------------------------------------

    def add_session(self, *, digest: str, session_id: str, email: str, epoch: str,
                    now_ms: int, idle_ms: int, method: str = "password") -> None:
        """A new web session; `auth_at` is when its agent signed in, and `method` how."""
        key = keys.session(digest)
        self._write([key], ["HSET", key, "type", "session", "owner", email, "id", session_id,
                            "epoch", epoch, "created_at", now_ms, "seen_at", now_ms,
                            "auth_at", now_ms, "method", method],
                    ["PEXPIRE", key, idle_ms])

    def session_signed_in_at(self, digest: str) -> int:
        """When the session's agent signed in (ms), 0 if unknown: read on the few pages and
        calls that need a recent sign-in, never on a ticket step."""
        with self._guard():
            value = self.client.hget(keys.session(digest), "auth_at")
        try:
            return int(text(value) or 0)
        except ValueError:
            return 0

    def delete_session(self, digest: str) -> None:
        key = keys.session(digest)
        self._write([key], ["DEL", key])

    def put_sign_in(self, digest: str, record: str, ttl_ms: int) -> None:
        """An identity-provider sign-in in progress, under the digest of its `state`."""
        key = keys.sign_in(digest)
        self._write([key], ["SET", key, record, "PX", ttl_ms])

    def take_sign_in(self, digest: str) -> str | None:
        """The sign-in of that `state` digest, read and deleted in one step: a state is good
        once, so a replayed callback finds nothing."""
        key = keys.sign_in(digest)
        return text(self._write([key], ["GET", key], ["DEL", key])[0]) or None
