"""What one app holds: config, store, key ring, services, rate limits, metrics.

It lives in `app.extensions["vault"]`; nothing in vault is a module-level client.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, current_app

from vault import ratelimit
from vault.accounts import Accounts
from vault.config import Config
from vault.cookies import PRODUCTION, Cookies, for_config
from vault.crypto.keyring import KeyRing, KeyRingError
from vault.crypto.passwords import Passwords
from vault.errors import ConfigError, RateLimited
from vault.metrics import Metrics
from vault.notify import Notifier
from vault.passkeys import Passkeys
from vault.redis_client import connect
from vault.service import Vault
from vault.sso import IdentityProvider
from vault.storage import Gate, Store

log = logging.getLogger("vault")


def load_keyring(config: Config) -> KeyRing:
    try:
        if config.keys:
            return KeyRing.from_string(config.keys)
        if config.keys_file:
            return KeyRing.from_file(config.keys_file)
    except KeyRingError as exc:
        raise ConfigError(f"key ring: {exc}") from None
    except OSError:
        raise ConfigError("VAULT_KEYS_FILE cannot be read") from None
    if config.production:
        raise ConfigError("production needs VAULT_KEYS or VAULT_KEYS_FILE")
    log.warning("no key ring configured: using a throwaway key (development only)")
    return KeyRing.generate()


def build_store(config: Config) -> Store:
    if config.embedded:
        try:
            import fakeredis
        except ImportError:  # a production install: the demo's store is an extra
            raise ConfigError("the embedded demo mode (no VAULT_REDIS_URL) needs fakeredis: "
                              "install vault[demo] (scripts/serve does), or set "
                              "VAULT_REDIS_URL") from None

        client: Any = fakeredis.FakeRedis(server=fakeredis.FakeServer())
        cluster = False
    else:
        client, cluster = connect(config)
    return Store(client, cluster=cluster, min_replicas=config.redis_min_replicas,
                 wait_timeout_ms=config.redis_wait_timeout_ms, audit_maxlen=config.audit_maxlen,
                 ticket_audit_maxlen=config.ticket_audit_maxlen,
                 audit_ttl_ms=config.tombstone_ttl * 1000,
                 # A ticket record lives at most this long after its last activity.
                 index_ttl_ms=(config.max_ttl + config.tombstone_ttl) * 1000)


@dataclass
class VaultExtension:
    config: Config
    store: Store
    keyring: KeyRing
    vault: Vault
    accounts: Accounts
    metrics: Metrics
    # {limit name: its spec for the store's scripts (vault.ratelimit)}; "" when limits are off.
    limits: dict[str, str]
    # The webhook limit's (amount, seconds) windows, which the sidebar counts per ticket.
    webhook_windows: list[tuple[int, int]]

    # Agents' passkeys and the passkey ceremonies (built on `accounts`).
    passkeys: Passkeys

    notifier: Notifier | None = None
    # The team's identity provider (VAULT_OIDC_*), when agents may sign in through it.
    sso: IdentityProvider | None = None
    # Which cookies the responses set (vault.cookies): production's unless told otherwise.
    cookies: Cookies = PRODUCTION

    def close(self) -> None:
        """Release connections and threads (tests build many apps in one process)."""
        self.store.close()
        if self.notifier is not None:
            self.notifier.close()

    def check_limit(self, name: str, key: str) -> None:
        """Count one hit of the named limit for `key` in its own round trip (routes whose step
        has no gate of its own); RateLimited with Retry-After when over."""
        spec = self.limits[name]
        if not spec:
            return
        result = self.store.pass_gate(Gate(limits=spec, identity=key), self.vault.now_ms())
        if result.status != "ok":
            raise RateLimited(int(result.values[0]))


def build(app: Flask, config: Config) -> VaultExtension:
    if config.embedded and not config.secret_key:
        config = replace(config, secret_key=secrets.token_urlsafe(48))
    elif not config.secret_key:
        log.warning("VAULT_SECRET_KEY is not set: using a random one (development only)")
        config = replace(config, secret_key=secrets.token_urlsafe(48))
    keyring = load_keyring(config)
    store = build_store(config)
    passwords = Passwords.cheap_for_tests() if config.cheap_passwords else Passwords.production()
    if not config.ratelimit_enabled and config.production:
        log.warning("rate limits are turned off (VAULT_RATELIMIT_ENABLED=0)")
    limits = ratelimit.specs({
        "login-account": config.ratelimit_login_account,
        "login-address": config.ratelimit_login_address,
        "submit": config.ratelimit_submit,
        "reveal": config.ratelimit_reveal,
        "webhook": config.ratelimit_webhook,
    })
    if not config.ratelimit_enabled:
        limits = dict.fromkeys(limits, "")
    notifier = None
    if config.notify_url:
        try:
            notifier = Notifier(config.notify_url, config.notify_secret)
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc) if isinstance(exc, ValueError) and "VAULT_" in str(exc)
                              else "VAULT_NOTIFY_SECRET must be whsec_<base64>") from None
    if not config.oidc_enabled and (config.oidc_issuer or config.oidc_client_id
                                    or config.oidc_client_secret):
        log.warning("sign-in through the identity provider is off: it needs all three of "
                    "VAULT_OIDC_ISSUER, VAULT_OIDC_CLIENT_ID and VAULT_OIDC_CLIENT_SECRET")
    metrics = Metrics()
    accounts = Accounts(store, passwords, config, config.clock, keyring)
    ext = VaultExtension(
        config=config, store=store, keyring=keyring,
        vault=Vault(store, keyring, config, config.clock,
                    notifier.secret_submitted if notifier else None,
                    on_event=metrics.secret_event),
        accounts=accounts, passkeys=Passkeys(accounts),
        metrics=metrics, limits=limits, notifier=notifier,
        sso=IdentityProvider(config, config.clock) if config.oidc_enabled else None,
        webhook_windows=ratelimit.windows(config.ratelimit_webhook)
        if config.ratelimit_enabled else [],
        cookies=for_config(config))
    app.extensions["vault"] = ext
    return ext


def ext() -> VaultExtension:
    value: VaultExtension = current_app.extensions["vault"]
    return value
