"""`vault keys rotate`: re-wrap every stored envelope under the current key, never resurrecting."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from harness import RedisServer, base_config
from helpers import sealed

from vault.cli import cli
from vault.crypto.envelope import open_envelope
from vault.crypto.keyring import KeyRing, generate_key_spec
from vault.rotation import RotationReport, envelope_context, rotate_all
from vault.storage.keys import envelope as envelope_key

KEY_A = generate_key_spec()
KEY_B = generate_key_spec()
FIELDS = {"text": "temporary admin: rocket / hunter2-canary"}


def seed(ext: Any, agent_email: str = "alice@example.com") -> list[tuple[str, str]]:
    """Three stored envelopes (two shared, one filling a request): [(secret id, K)]."""
    out = []
    for ticket in ("T-1", "T-2"):
        envelope, key = sealed(ticket, "other", FIELDS)
        out.append((ext.vault.create_secret(ticket, "other", envelope)["id"], key))
    ext.accounts.add_agent(agent_email, "correct horse battery staple")
    token, _ = ext.accounts.create_token(agent_email)
    who = ext.accounts.authenticate_bearer(token)
    request = ext.vault.create_request(who, "T-3")
    envelope, key = sealed("T-3", "other", FIELDS)
    out.append((ext.vault.fill_request(request["id"], "other", envelope)["secret_id"], key))
    return out


def stored(ext: Any) -> dict[str, bytes]:
    return {key: ext.store.get_raw(key) for key, _ in ext.store.iter_envelope_keys()}


def reveal_as(ext: Any, secret_id: str, email: str = "alice@example.com") -> Any:
    """Reveal through the service with a fresh API token of `email` (who made the requests)."""
    if ext.store.get_agent(email) is None:
        ext.accounts.add_agent(email, "correct horse battery staple")
    token, _ = ext.accounts.create_token(email)
    return ext.vault.reveal(ext.accounts.authenticate_bearer(token), secret_id)


@pytest.fixture
def app_a(make_app: Callable[..., Any]) -> Any:
    return make_app(keys=KEY_A, reveal_grace=0).extensions["vault"]


def test_the_rotation_context_is_the_services(app_a: Any) -> None:
    secret_id = seed(app_a)[0][0]
    assert envelope_context(secret_id) == b"vault-envelope:" + secret_id.encode()


def test_rotate_rewraps_everything_under_the_first_key(
        app_a: Any, make_app: Callable[..., Any]) -> None:
    secrets = seed(app_a)
    ring_b = KeyRing.from_string(KEY_B)
    assert not any(ring_b.is_current(v) for v in stored(app_a).values())

    report = rotate_all(app_a.store, KeyRing.from_string(f"{KEY_B},{KEY_A}"))

    assert report == RotationReport(scanned=3, rewrapped=3)
    assert all(ring_b.is_current(v) for v in stored(app_a).values())
    # Still revealable by a server that knows only the new key.
    ext_b = make_app(keys=KEY_B).extensions["vault"]
    for secret_id, key in secrets:
        revealed = reveal_as(ext_b, secret_id)
        assert open_envelope(key, revealed["envelope"], ticket=revealed["ticket"],
                             kind="other") == FIELDS


def test_rotate_keeps_each_envelopes_expiry(app_a: Any, redis_client: Any) -> None:
    seed(app_a)
    before = {key: redis_client.pttl(key) for key in stored(app_a)}
    rotate_all(app_a.store, KeyRing.from_string(f"{KEY_B},{KEY_A}"))
    for key, ttl in before.items():
        assert 0 < redis_client.pttl(key) <= ttl


def test_a_second_rotation_finds_everything_current(app_a: Any) -> None:
    seed(app_a)
    ring = KeyRing.from_string(f"{KEY_B},{KEY_A}")
    rotate_all(app_a.store, ring)
    values = stored(app_a)
    assert rotate_all(app_a.store, ring) == RotationReport(scanned=3, already_current=3)
    assert stored(app_a) == values  # nothing rewritten


def test_swap_with_a_stale_value_writes_nothing(app_a: Any) -> None:
    secrets = seed(app_a)
    ring = KeyRing.from_string(f"{KEY_B},{KEY_A}")
    envelope, _ = sealed("T-9", "other", FIELDS)
    doomed = app_a.vault.create_secret("T-9", "other", envelope)
    deleted_id, revealed_id = doomed["id"], secrets[1][0]
    deleted_key = envelope_key(deleted_id)
    revealed_key = envelope_key(revealed_id)
    stale = {k: app_a.store.get_raw(k) for k in (deleted_key, revealed_key)}

    app_a.vault.delete_secret(deleted_id, doomed["manage_token"])
    reveal_as(app_a, revealed_id)  # grace 0: the envelope goes with the reveal

    for key, value in stale.items():
        replacement = ring.rotate(value, context=envelope_context(key[-28:]))
        assert app_a.store.swap_if_same(key, value, replacement) is False
        assert app_a.store.get_raw(key) is None


def test_swap_with_a_stale_value_does_not_overwrite_a_newer_one(app_a: Any) -> None:
    secret_id = seed(app_a)[0][0]
    key = envelope_key(secret_id)
    old = app_a.store.get_raw(key)
    ring = KeyRing.from_string(f"{KEY_B},{KEY_A}")
    newer = ring.rotate(old, context=envelope_context(secret_id))
    assert app_a.store.swap_if_same(key, old, newer) is True
    other = ring.wrap(b"v1.something-else", context=envelope_context(secret_id))
    assert app_a.store.swap_if_same(key, old, other) is False
    assert app_a.store.get_raw(key) == newer


class RevealWhileRotating:
    """The store, with a reveal landing between the rotation's read and its write."""

    def __init__(self, ext: Any, victim: str) -> None:
        self.ext, self.store, self.victim = ext, ext.store, victim

    def iter_envelope_keys(self) -> Any:
        return self.store.iter_envelope_keys()

    def get_raw(self, key: str) -> bytes | None:
        value = self.store.get_raw(key)
        if key[-28:] == self.victim:
            reveal_as(self.ext, self.victim)
        return value

    def swap_if_same(self, key: str, expected: bytes, replacement: bytes) -> bool:
        return bool(self.store.swap_if_same(key, expected, replacement))

    def wrapped_agent_secrets(self) -> Any:
        return self.store.wrapped_agent_secrets()


def test_an_envelope_revealed_during_rotation_is_not_resurrected(app_a: Any) -> None:
    secrets = seed(app_a)
    victim = secrets[1][0]
    racing: Any = RevealWhileRotating(app_a, victim)

    report = rotate_all(racing, KeyRing.from_string(f"{KEY_B},{KEY_A}"))

    assert report == RotationReport(scanned=3, rewrapped=2, vanished=1)
    assert app_a.store.get_raw(envelope_key(victim)) is None
    assert app_a.vault.secret_meta(victim)["state"] == "revealed"


def test_a_ring_missing_the_old_key_reports_failures(app_a: Any) -> None:
    seed(app_a)
    before = stored(app_a)
    report = rotate_all(app_a.store, KeyRing.from_string(KEY_B))
    assert report == RotationReport(scanned=3, failed=3)
    assert stored(app_a) == before  # left as they were, for a rerun with the right ring


# -- through the command line -------------------------------------------------------------------------

def cli_env(redis_url: str, keys: str) -> dict[str, str | None]:
    env: dict[str, str | None] = {name: None for name in os.environ if name.startswith("VAULT_")}
    config = base_config(redis_url)
    env.update(VAULT_REDIS_URL=redis_url, VAULT_ENV="production",
               VAULT_SECRET_KEY=config["secret_key"], VAULT_KEYS=keys)
    return env


def test_keys_rotate_prints_a_one_line_summary(app_a: Any, redis_server: RedisServer) -> None:
    seed(app_a)
    result = CliRunner().invoke(cli, ["keys", "rotate"],
                                env=cli_env(redis_server.url, f"{KEY_B},{KEY_A}"))
    assert result.exit_code == 0, result.output
    assert result.stdout == ("scanned 3, re-wrapped 3, already current 0, vanished 0, "
                             "failed 0\n")
    assert all(KeyRing.from_string(KEY_B).is_current(v) for v in stored(app_a).values())


def test_keys_rotate_without_the_old_key_exits_non_zero_and_says_how_many(
        app_a: Any, redis_server: RedisServer) -> None:
    seed(app_a)
    result = CliRunner().invoke(cli, ["keys", "rotate"], env=cli_env(redis_server.url, KEY_B))
    assert result.exit_code == 1
    assert "failed 3" in result.stdout
    assert result.stderr.startswith("Error: 3 envelope(s) could not be unwrapped")
    assert KEY_A.split(":")[1] not in result.output and KEY_B.split(":")[1] not in result.output


def test_rotation_rewraps_totp_secrets_too(app_a: Any, redis_server: Any) -> None:
    import pyotp

    from vault.accounts import totp_context
    app_a.accounts.add_agent("otp@example.com", "correct horse battery staple")
    uri = app_a.accounts.enroll_totp("otp@example.com")
    ring = KeyRing.from_string(f"{KEY_B},{KEY_A}")
    report = rotate_all(app_a.store, ring)
    assert report.failed == 0 and report.rewrapped >= 1
    (email, blob), = app_a.store.wrapped_agent_secrets()
    assert ring.is_current(blob)
    only_b = KeyRing.from_string(KEY_B)
    secret = only_b.unwrap(blob, context=totp_context(email)).decode()
    assert pyotp.TOTP(secret).now() == pyotp.parse_uri(uri).now()
