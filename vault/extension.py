"""What one app holds: config, store, key ring, services, limiter, metrics.

It lives in `app.extensions["vault"]`; nothing in vault is a module-level client.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any

from flask import Flask, current_app
from flask_limiter import Limiter
from limits import RateLimitItem, parse_many

from vault.accounts import Accounts
from vault.config import Config
from vault.crypto.keyring import KeyRing, KeyRingError
from vault.crypto.passwords import Passwords
from vault.errors import ConfigError, RateLimited
from vault.metrics import Metrics
from vault.notify import Notifier
from vault.redis_client import connect, limiter_storage
from vault.service import Vault
from vault.storage import Store

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
        import fakeredis

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
    limiter: Limiter
    metrics: Metrics
    limits: dict[str, list[RateLimitItem]]

    notifier: Notifier | None = None

    def close(self) -> None:
        """Release connections and threads (tests build many apps in one process)."""
        self.store.client.close()
        storage = getattr(self.limiter, "_storage", None)
        client = getattr(storage, "storage", None)
        if client is not None and hasattr(client, "close"):
            client.close()
        if self.notifier is not None:
            self.notifier.close()

    def check_limit(self, name: str, key: str) -> None:
        """Count one hit of the named limit for `key`; RateLimited with Retry-After when over."""
        if not self.config.ratelimit_enabled:
            return
        strategy = self.limiter.limiter
        for item in self.limits[name]:
            # The limiter's own Redis client (single, Sentinel or Cluster): its faults mean what
            # the store's mean, a 503 with Retry-After, never a 500.
            with self.store.faults():
                if strategy.hit(item, name, key):
                    continue
                reset_at, _ = strategy.get_window_stats(item, name, key)
            raise RateLimited(int(reset_at - time.time()) + 1)


def _drop_request_hooks(app: Flask, limiter: Limiter) -> None:
    """Keep flask-limiter's storage and strategy, drop its per-request hooks.

    vault counts each named limit itself (`VaultExtension.check_limit`, where the route knows
    the key: account, address, agent, helpdesk key). flask-limiter's before/after/teardown hooks
    found no route limit on any request yet cost about 7% of a request's CPU (bench/run
    --profile)."""
    def ours(func: object) -> bool:
        if getattr(func, "__self__", None) is limiter:
            return True
        return isinstance(func, functools.partial) and limiter in func.args

    registries: tuple[dict[Any, list[Any]], ...] = (
        app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs)
    for registry in registries:
        for funcs in registry.values():
            funcs[:] = [f for f in funcs if not ours(f)]


def build(app: Flask, config: Config) -> VaultExtension:
    if config.embedded and not config.secret_key:
        config = replace(config, secret_key=secrets.token_urlsafe(48))
    elif not config.secret_key:
        log.warning("VAULT_SECRET_KEY is not set: using a random one (development only)")
        config = replace(config, secret_key=secrets.token_urlsafe(48))
    keyring = load_keyring(config)
    store = build_store(config)
    passwords = Passwords.cheap_for_tests() if config.cheap_passwords else Passwords.production()
    uri, options = limiter_storage(config)
    limiter = Limiter(key_func=lambda: "", app=app, storage_uri=uri, storage_options=options,
                      strategy="fixed-window", default_limits=[], headers_enabled=False,
                      enabled=config.ratelimit_enabled, swallow_errors=False)
    _drop_request_hooks(app, limiter)
    if not config.ratelimit_enabled and config.production:
        log.warning("rate limits are turned off (VAULT_RATELIMIT_ENABLED=0)")
    limits = {
        "login-account": parse_many(config.ratelimit_login_account),
        "login-address": parse_many(config.ratelimit_login_address),
        "submit": parse_many(config.ratelimit_submit),
        "reveal": parse_many(config.ratelimit_reveal),
        "webhook": parse_many(config.ratelimit_webhook),
    }
    notifier = None
    if config.notify_url:
        try:
            notifier = Notifier(config.notify_url, config.notify_secret)
        except (ValueError, TypeError) as exc:
            raise ConfigError(str(exc) if isinstance(exc, ValueError) and "VAULT_" in str(exc)
                              else "VAULT_NOTIFY_SECRET must be whsec_<base64>") from None
    metrics = Metrics()
    ext = VaultExtension(
        config=config, store=store, keyring=keyring,
        vault=Vault(store, keyring, config, config.clock,
                    notifier.secret_submitted if notifier else None,
                    on_event=metrics.secret_event),
        accounts=Accounts(store, passwords, config, config.clock, keyring),
        limiter=limiter, metrics=metrics, limits=limits, notifier=notifier)
    app.extensions["vault"] = ext
    return ext


def ext() -> VaultExtension:
    value: VaultExtension = current_app.extensions["vault"]
    return value
