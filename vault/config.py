"""Configuration: read once, coerced explicitly, validated, production by default.

Sources, later wins: defaults, then `VAULT_*` environment variables, then the mapping given to
`create_app`. Mapping keys may be written either as the field name (`reveal_grace`) or as the
variable (`VAULT_REVEAL_GRACE`). Nothing here ever formats a value into an error message.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from limits import parse_many

from vault.errors import ConfigError, ValidationFailed
from vault.names import display_name

ENV_PREFIX = "VAULT_"
DAY = 86400
# Longest Redis socket or connect timeout (s): finite, and far inside what a socket accepts.
MAX_REDIS_TIMEOUT = 3600
# Longest duration setting (s): ten years.
MAX_DURATION = 10 * 365 * DAY


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"1", "true", "yes", "on"}:
        return True
    if text in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("expected a boolean (1/0, true/false)")


def _int(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    return int(value)


def _list(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _str(value: Any) -> str:
    return str(value)


# A CSP source an operator may let frame the Help Scout app: an origin (a `*.` host wildcard
# allowed), 'self', or 'none' alone. Nothing that could close the directive or add another.
_SOURCE = re.compile(r"https?://(\*\.)?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*(:[0-9]{1,5})?|'self'")


def _sources(value: Any) -> str:
    parts = str(value).split()
    if parts == ["'none'"]:
        return "'none'"
    if not parts or not all(_SOURCE.fullmatch(p) for p in parts):
        raise ValueError("expected origins such as https://secure.helpscout.net")
    return " ".join(parts)


_RATE = re.compile(r"^\s*\d+\s*(/|per)\s*\w+(\s*[;,]\s*\d+\s*(/|per)\s*\w+)*\s*$")


def _rate(value: Any) -> str:
    text = str(value).strip()
    if not _RATE.match(text):
        raise ValueError("expected a rate limit such as 5/minute")
    try:
        parse_many(text)  # as vault.ratelimit will at start-up: "5/week" has no such granularity
    except ValueError:
        raise ValueError("expected a rate limit such as 5/minute") from None
    return text


def _oidc_name(value: Any) -> str:
    """The identity provider's name on the login page, held to the display-name rule."""
    try:
        return display_name(value) or "your company account"
    except ValidationFailed:
        raise ValueError("not a display name") from None


@dataclasses.dataclass(frozen=True)
class Config:
    env: str = "production"
    redis_url: str = ""
    secret_key: str = dataclasses.field(default="", repr=False)
    keys: str = dataclasses.field(default="", repr=False)
    keys_file: str = ""
    base_url: str = "http://127.0.0.1:8000"
    helpscout_secret: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    helpscout_app_secret: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    helpscout_frame_ancestors: str = "https://secure.helpscout.net"
    webhook_secret: tuple[str, ...] = dataclasses.field(default=(), repr=False)
    reveal_grace: int = 60
    unassigned: str = "claim"
    default_ttl: int = 7 * DAY
    max_ttl: int = 30 * DAY
    tombstone_ttl: int = 30 * DAY
    redis_min_replicas: int = 0
    redis_wait_timeout_ms: int = 1000
    redis_socket_timeout: float = 1.0
    redis_connect_timeout: float = 1.0
    log_level: str = "INFO"
    ratelimit_enabled: bool = True
    ratelimit_login_account: str = "5/minute"
    ratelimit_login_address: str = "20/minute"
    ratelimit_submit: str = "30/minute"
    ratelimit_reveal: str = "60/minute"
    ratelimit_webhook: str = "600/minute"
    trusted_proxies: int = 0
    require_2fa: bool = False
    session_idle: int = 1800
    session_max: int = 43200
    # How recent a sign-in must be for a change to how one signs in (a factor, a passkey, a
    # password) or a new key: older, the page asks to sign in again first.
    reauth_window: int = 600
    audit_maxlen: int = 1_000_000
    ticket_audit_maxlen: int = 1000
    max_waiting_per_ticket: int = 100
    notify_url: str = ""
    # Sign-in through the team's identity provider (OpenID Connect): vault.sso.
    oidc_issuer: str = ""
    oidc_client_id: str = ""
    oidc_client_secret: str = dataclasses.field(default="", repr=False)
    oidc_name: str = "your company account"
    oidc_allowed_domains: tuple[str, ...] = ()
    oidc_autocreate: bool = False
    oidc_only: bool = False
    oidc_admin_password: bool = False
    notify_secret: str = dataclasses.field(default="", repr=False)
    webhook_tolerance: int = 300
    webhook_dedupe_ttl: int = DAY
    # Set only by the embedded mode: run on an in-process fakeredis server.
    embedded: bool = False
    # Test-only knob: cheap argon2 parameters. Never read from the environment.
    cheap_passwords: bool = False
    # Injectable clock (seconds since the epoch, float). Never read from the environment.
    clock: Callable[[], float] | None = dataclasses.field(default=None, compare=False)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def oidc_enabled(self) -> bool:
        """Agents may sign in through the identity provider (all three settings given)."""
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def grace_seconds(self) -> int:
        """The reveal grace window. With replicas it outlasts a WAIT that timed out plus the
        Retry-After of the 503 that followed, so the winning session's retry still gets it."""
        if self.redis_min_replicas > 0:
            return max(self.reveal_grace, -(-self.redis_wait_timeout_ms // 1000) + 10)
        return self.reveal_grace


_COERCE: dict[str, Callable[[Any], Any]] = {
    "env": _str,
    "redis_url": _str,
    "secret_key": _str,
    "keys": _str,
    "keys_file": _str,
    "base_url": lambda v: str(v).rstrip("/"),
    "helpscout_secret": _list,
    "helpscout_app_secret": _list,
    "helpscout_frame_ancestors": _sources,
    "webhook_secret": _list,
    "reveal_grace": _int,
    "unassigned": _str,
    "default_ttl": _int,
    "max_ttl": _int,
    "tombstone_ttl": _int,
    "redis_min_replicas": _int,
    "redis_wait_timeout_ms": _int,
    "redis_socket_timeout": float,
    "redis_connect_timeout": float,
    "log_level": lambda v: str(v).upper(),
    "ratelimit_enabled": _bool,
    "ratelimit_login_account": _rate,
    "ratelimit_login_address": _rate,
    "ratelimit_submit": _rate,
    "ratelimit_reveal": _rate,
    "ratelimit_webhook": _rate,
    "trusted_proxies": _int,
    "require_2fa": _bool,
    "session_idle": _int,
    "session_max": _int,
    "reauth_window": _int,
    "audit_maxlen": _int,
    "ticket_audit_maxlen": _int,
    "max_waiting_per_ticket": _int,
    "notify_url": _str,
    "oidc_issuer": lambda v: str(v).strip(),
    "oidc_client_id": lambda v: str(v).strip(),
    "oidc_client_secret": _str,
    "oidc_name": _oidc_name,
    "oidc_allowed_domains": lambda v: tuple(d.lower().lstrip("@") for d in _list(v)),
    "oidc_autocreate": _bool,
    "oidc_only": _bool,
    "oidc_admin_password": _bool,
    "notify_secret": _str,
    "webhook_tolerance": _int,
    "webhook_dedupe_ttl": _int,
    "embedded": _bool,
    "cheap_passwords": _bool,
    "clock": lambda v: v,
}
_EXPECTED: dict[Callable[[Any], Any], str] = {
    _int: "an integer", float: "a number", _bool: "a boolean (1/0, true/false)",
    _rate: "a rate limit such as 5/minute",
    _sources: "origins separated by spaces, such as https://secure.helpscout.net, or 'none'",
    _oidc_name: "a name of at most 100 printable characters",
}
# Fields that only a mapping may set: the environment cannot weaken hashing or fake time.
_MAPPING_ONLY = {"embedded", "cheap_passwords", "clock"}


def _normalise(name: str) -> str:
    name = name.strip()
    if name.upper().startswith(ENV_PREFIX):
        name = name[len(ENV_PREFIX):]
    return name.lower()


def load(mapping: Mapping[str, Any] | None = None,
         environ: Mapping[str, str] | None = None) -> Config:
    """Build and validate the configuration. Raises ConfigError naming the bad setting."""
    environ = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    for var, value in environ.items():
        if var.startswith(ENV_PREFIX):
            name = _normalise(var)
            if name in _COERCE and name not in _MAPPING_ONLY:
                raw[name] = value
    env_given = "env" in raw
    for key, value in (mapping or {}).items():
        name = _normalise(key)
        if name not in _COERCE:
            raise ConfigError(f"unknown setting {key!r}")
        raw[name] = value
        env_given = env_given or name == "env"

    values: dict[str, Any] = {}
    for name, value in raw.items():
        coerce = _COERCE[name]
        try:
            values[name] = coerce(value)
        except (TypeError, ValueError):
            # Our own words only: a library's message would quote the (maybe secret) value.
            raise ConfigError(f"{ENV_PREFIX}{name.upper()}: expected "
                              f"{_EXPECTED.get(coerce, 'a valid value')}") from None

    # Embedded mode: no Redis configured outside production. A development convenience, loudly
    # announced; production without a Redis URL refuses to start instead (below).
    if not values.get("redis_url") and not values.get("embedded") and \
            (not env_given or values.get("env") == "development"):
        values["embedded"] = True
    if values.get("embedded"):
        values.setdefault("env", "development")
    config = Config(**values)
    _validate(config)
    return config


def _validate(c: Config) -> None:
    if c.env not in {"production", "development"}:
        raise ConfigError("VAULT_ENV must be 'production' or 'development'")
    if c.unassigned not in {"claim", "deny"}:
        raise ConfigError("VAULT_UNASSIGNED must be 'claim' or 'deny'")
    if c.production:
        missing = []
        if not c.redis_url:
            missing.append("VAULT_REDIS_URL")
        if not c.secret_key:
            missing.append("VAULT_SECRET_KEY")
        if not c.keys and not c.keys_file:
            missing.append("VAULT_KEYS (or VAULT_KEYS_FILE)")
        if missing:
            raise ConfigError("production needs " + ", ".join(missing)
                              + " (set VAULT_ENV=development, or leave both VAULT_ENV and"
                              " VAULT_REDIS_URL unset for the embedded demo mode)")
        if len(c.secret_key) < 32:
            raise ConfigError("VAULT_SECRET_KEY must be at least 32 characters of random data")
    if c.redis_url and not re.match(r"^(redis|rediss|unix|redis\+sentinel|redis\+cluster)://",
                                    c.redis_url):
        raise ConfigError("VAULT_REDIS_URL must start with redis://, rediss://, unix://, "
                          "redis+sentinel:// or redis+cluster://")
    _validate_oidc(c)
    if not 0 < c.default_ttl <= c.max_ttl:
        raise ConfigError("VAULT_DEFAULT_TTL must be positive and at most VAULT_MAX_TTL")
    if c.max_ttl > 30 * DAY:
        raise ConfigError("VAULT_MAX_TTL may not exceed 30 days")
    if c.tombstone_ttl < c.max_ttl:
        raise ConfigError("VAULT_TOMBSTONE_TTL must be at least VAULT_MAX_TTL")
    for name in ("reveal_grace", "redis_min_replicas", "trusted_proxies"):
        if getattr(c, name) < 0:
            raise ConfigError(f"VAULT_{name.upper()} may not be negative")
    for name in ("session_idle", "session_max", "reauth_window", "audit_maxlen",
                 "max_waiting_per_ticket",
                 "ticket_audit_maxlen", "webhook_tolerance", "webhook_dedupe_ttl"):
        if getattr(c, name) <= 0:
            raise ConfigError(f"VAULT_{name.upper()} must be positive")
    # Written so that NaN fails too; inf or 1e300 would make every Redis call a 500.
    if not (0 < c.redis_socket_timeout <= MAX_REDIS_TIMEOUT
            and 0 < c.redis_connect_timeout <= MAX_REDIS_TIMEOUT):
        raise ConfigError(f"Redis timeouts must be positive, at most {MAX_REDIS_TIMEOUT} seconds")
    if not 0 <= c.redis_wait_timeout_ms <= MAX_REDIS_TIMEOUT * 1000:  # Redis refuses a negative
        raise ConfigError("VAULT_REDIS_WAIT_TIMEOUT_MS must be between 0 and "
                          f"{MAX_REDIS_TIMEOUT * 1000}")
    # Durations reach Redis as milliseconds: past ten years they mean nothing for a one-time
    # secret, and far past it they turn into numbers Redis refuses (a close would fail).
    for name in ("default_ttl", "max_ttl", "tombstone_ttl", "reveal_grace", "session_idle",
                 "session_max", "reauth_window", "webhook_tolerance", "webhook_dedupe_ttl"):
        if getattr(c, name) > MAX_DURATION:
            raise ConfigError(f"VAULT_{name.upper()} may be at most {MAX_DURATION} seconds "
                              "(ten years)")
    if c.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ConfigError("VAULT_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")


_OIDC_NEEDED = (("oidc_issuer", "VAULT_OIDC_ISSUER"), ("oidc_client_id", "VAULT_OIDC_CLIENT_ID"),
                ("oidc_client_secret", "VAULT_OIDC_CLIENT_SECRET"))
_LOOPBACK_ISSUER = re.compile(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:[0-9]{1,5})?(/|$)")


def _validate_oidc(c: Config) -> None:
    """SSO is on with all three of issuer, client id and secret, off with none; anything in
    between is a mistake that production refuses to start with, naming what is missing."""
    given = [var for name, var in _OIDC_NEEDED if getattr(c, name)]
    options = [var for name, var in (("oidc_only", "VAULT_OIDC_ONLY"),
                                     ("oidc_autocreate", "VAULT_OIDC_AUTOCREATE"),
                                     ("oidc_admin_password", "VAULT_OIDC_ADMIN_PASSWORD"),
                                     ("oidc_allowed_domains", "VAULT_OIDC_ALLOWED_DOMAINS"))
               if getattr(c, name)]
    missing = [var for name, var in _OIDC_NEEDED if not getattr(c, name)]
    if (given or options) and missing and c.production:
        raise ConfigError(f"{', '.join(given or options)} set, but sign-in through the identity "
                          f"provider also needs {', '.join(missing)}")
    if not c.oidc_enabled:
        return
    if not (c.oidc_issuer.startswith("https://") or _LOOPBACK_ISSUER.match(c.oidc_issuer)):
        raise ConfigError("VAULT_OIDC_ISSUER must be an https:// URL (the issuer of the "
                          "provider's discovery document)")
    if c.oidc_autocreate and not c.oidc_allowed_domains:
        raise ConfigError("VAULT_OIDC_AUTOCREATE needs VAULT_OIDC_ALLOWED_DOMAINS: the e-mail "
                          "domains whose people may get an agent account at first sign-in")
    for domain in c.oidc_allowed_domains:
        if not re.fullmatch(r"[a-z0-9-]+(\.[a-z0-9-]+)+", domain):
            raise ConfigError("VAULT_OIDC_ALLOWED_DOMAINS: expected domains such as example.com, "
                              "separated by commas")
