"""`VAULT_REQUIRE_2FA=1`: an admin without a second factor cannot log in, so nothing may leave
the team without a way in: the CLI enrols one, and the admin pages refuse the two ways an admin
could lock someone (or themself) out."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
from click.testing import CliRunner
from harness import base_config
from test_pages_admin import Session

from vault.cli import cli


def cli_env(redis_url: str) -> dict[str, str | None]:
    config = base_config(redis_url)
    env: dict[str, str | None] = {"VAULT_ENV": "production", "VAULT_REDIS_URL": redis_url,
                                  "VAULT_SECRET_KEY": config["secret_key"],
                                  "VAULT_KEYS": config["keys"], "VAULT_REQUIRE_2FA": "1"}
    return env


def test_an_operator_enrols_a_locked_out_admin_who_then_logs_in_with_a_code(
        make_app: Callable[..., Any], redis_server: Any) -> None:
    app = make_app(require_2fa=True, clock=time.time)
    ext = app.extensions["vault"]
    ext.accounts.add_agent("boss@example.com", "correct horse battery staple", admin=True)
    client = app.test_client()
    body = {"email": "boss@example.com", "password": "correct horse battery staple"}
    rv = client.post("/api/v1/session", json=body)
    assert rv.status_code == 401 and rv.get_json()["reason"] == "2fa-required"

    result = CliRunner().invoke(cli, ["agent", "enrol-2fa", "boss@example.com"],
                                env=cli_env(redis_server.url))
    assert result.exit_code == 0, result.output
    uri = result.stdout.strip()
    assert uri.startswith("otpauth://totp/") and "\n" not in uri
    secret = parse_qs(urlsplit(uri).query)["secret"][0]
    rv = client.post("/api/v1/session", json={**body, "totp": pyotp.TOTP(secret).now()})
    assert rv.status_code == 200


def test_with_2fa_required_an_admin_cannot_promote_an_agent_without_one(
        make_app: Callable[..., Any]) -> None:
    app = make_app(require_2fa=True, clock=time.time)
    ext = app.extensions["vault"]
    secret = _admin_with_totp(ext, "chief@example.com")
    ext.accounts.add_agent("plain@example.com", "correct horse battery staple")
    admin = Session(app.test_client(), "chief@example.com", totp=pyotp.TOTP(secret).now())
    rv = admin.post("/admin/agents", {"action": "make-admin", "email": "plain@example.com"})
    assert rv.status_code == 409
    assert "must set it up on their account page first" in rv.get_data(as_text=True)
    assert ext.accounts.get_agent("plain@example.com")["role"] == "agent"

    rv = admin.post("/admin/agents", {"action": "reset-2fa", "email": "chief@example.com"})
    assert rv.status_code == 409
    assert ext.accounts.get_agent("chief@example.com", with_2fa=True)["two_factor"] is True


def _admin_with_totp(ext: Any, email: str) -> str:
    ext.accounts.add_agent(email, "correct horse battery staple", admin=True)
    uri = ext.accounts.enroll_totp(email)
    return str(parse_qs(urlsplit(uri).query)["secret"][0])
