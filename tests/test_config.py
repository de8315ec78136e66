"""Configuration: production by default, refuses to run without its keys, explicit coercion."""

from __future__ import annotations

import pytest

from vault import config as config_mod
from vault import create_app
from vault.crypto.keyring import generate_key_spec
from vault.errors import ConfigError

SECRET = "s" * 40


def test_nothing_configured_is_the_embedded_mode():
    c = config_mod.load({}, environ={})
    assert c.embedded and c.env == "development"


@pytest.mark.parametrize("missing", ["VAULT_REDIS_URL", "VAULT_SECRET_KEY", "VAULT_KEYS"])
def test_production_refuses_to_start_and_names_what_is_missing(missing):
    env = {"VAULT_ENV": "production", "VAULT_REDIS_URL": "redis://127.0.0.1:1/0",
           "VAULT_SECRET_KEY": SECRET, "VAULT_KEYS": generate_key_spec()}
    del env[missing]
    with pytest.raises(ConfigError, match=missing):
        config_mod.load({}, environ=env)


def test_a_redis_url_alone_means_production():
    with pytest.raises(ConfigError, match="VAULT_SECRET_KEY"):
        config_mod.load({}, environ={"VAULT_REDIS_URL": "redis://127.0.0.1:1/0"})


def test_errors_never_echo_values():
    key = generate_key_spec()
    with pytest.raises(ConfigError) as info:
        create_app({"env": "production", "redis_url": "redis://127.0.0.1:1/0",
                    "secret_key": SECRET, "keys": key.split(":")[0] + ":short"})
    assert key.split(":")[1] not in str(info.value)
    with pytest.raises(ConfigError) as info:
        config_mod.load({}, environ={"VAULT_REVEAL_GRACE": "sixty-secret"})
    assert "sixty-secret" not in str(info.value)


@pytest.mark.parametrize("name,value", [
    ("VAULT_ENV", "staging"), ("VAULT_UNASSIGNED", "maybe"), ("VAULT_REVEAL_GRACE", "-1"),
    ("VAULT_MAX_TTL", str(31 * 86400)), ("VAULT_TOMBSTONE_TTL", "60"),
    ("VAULT_RATELIMIT_REVEAL", "lots"), ("VAULT_REDIS_URL", "http://x"),
    ("VAULT_RATELIMIT_ENABLED", "perhaps"),
])
def test_malformed_settings_are_refused(name, value):
    with pytest.raises(ConfigError, match=name):
        config_mod.load({}, environ={"VAULT_ENV": "development", name: value})


def test_mapping_overrides_environment_and_accepts_both_spellings():
    env = {"VAULT_ENV": "development", "VAULT_REVEAL_GRACE": "10"}
    assert config_mod.load({"reveal_grace": 5}, environ=env).reveal_grace == 5
    assert config_mod.load({"VAULT_REVEAL_GRACE": "7"}, environ=env).reveal_grace == 7
    assert config_mod.load({}, environ=env).reveal_grace == 10


def test_the_environment_cannot_weaken_password_hashing():
    c = config_mod.load({}, environ={"VAULT_ENV": "development", "VAULT_CHEAP_PASSWORDS": "1"})
    assert c.cheap_passwords is False


def test_webhook_secrets_are_lists():
    c = config_mod.load({}, environ={"VAULT_ENV": "development",
                                     "VAULT_HELPSCOUT_SECRET": "a, b,c"})
    assert c.helpscout_secret == ("a", "b", "c")


def test_grace_outlasts_a_timed_out_replica_wait_and_its_retry():
    c = config_mod.load({"reveal_grace": 0, "redis_min_replicas": 1,
                         "redis_wait_timeout_ms": 1500}, environ={"VAULT_ENV": "development"})
    assert c.grace_seconds >= 2 + 2  # the WAIT, then the 503's Retry-After
    assert config_mod.load({"reveal_grace": 0}, environ={"VAULT_ENV": "development"}
                           ).grace_seconds == 0


def test_unknown_mapping_keys_are_refused():
    with pytest.raises(ConfigError, match="unknwon"):
        config_mod.load({"unknwon": 1}, environ={})


def test_development_without_a_redis_url_is_the_embedded_mode():
    assert config_mod.load({}, environ={"VAULT_ENV": "development"}).embedded


def test_with_replicas_the_socket_timeout_outlasts_the_wait() -> None:
    from vault.config import load
    from vault.redis_client import _timeouts

    base = {"env": "development", "redis_url": "redis://127.0.0.1:6379/0"}
    assert _timeouts(load(base))["socket_timeout"] == 1.0
    waiting = load({**base, "redis_min_replicas": 1, "redis_wait_timeout_ms": 2000})
    assert _timeouts(waiting)["socket_timeout"] == 2.5


@pytest.mark.parametrize("name", ["tombstone_ttl", "session_max", "reveal_grace",
                                  "webhook_dedupe_ttl"])
def test_durations_past_ten_years_are_refused(name: str) -> None:
    base = {"env": "development", "redis_url": "redis://127.0.0.1:6379/0"}
    with pytest.raises(ConfigError, match=f"VAULT_{name.upper()} may be at most"):
        config_mod.load({**base, name: 10**11})


@pytest.mark.parametrize("name", ["x" * 101, "Example\x1b[2J Corp", "Evil\u202eCorp", "a\nb"])
def test_the_identity_providers_display_name_is_held_to_the_name_rule(name: str) -> None:
    with pytest.raises(ConfigError, match="VAULT_OIDC_NAME") as caught:
        config_mod.load({"env": "development", "oidc_name": name})
    assert name not in str(caught.value)


def test_a_plain_identity_provider_name_is_kept() -> None:
    assert config_mod.load({"env": "development", "oidc_name": " Example Corp "}).oidc_name == "Example Corp"
    assert config_mod.load({"env": "development", "oidc_name": ""}).oidc_name == "your company account"
