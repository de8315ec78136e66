"""`vault serve`: gunicorn in-process, the app built once in the master before any fork.

Building the app in the master (gunicorn's preload) means a bad configuration fails before a
worker exists, with one clear message. In the embedded demo mode the in-process store lives in
the master too: exactly one worker is forked from it and keeps it, so the demo admin created
here is the one that can log in.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.exceptions
from flask import Flask
from gunicorn.app.base import BaseApplication

from vault.errors import ConfigError, Unavailable, VaultError

__all__ = [
    "DEFAULT_BIND",
    "DEMO_ADMIN",
    "BindAddress",
    "default_concurrency",
    "gunicorn_options",
    "parse_bind",
    "serve",
]

DEFAULT_BIND = "127.0.0.1:8000"
DEMO_ADMIN = "admin@vault.localhost"
MAX_DEFAULT_WORKERS = 8
MAX_DEFAULT_THREADS = 8

log = logging.getLogger("vault")


def cpu_count() -> int:
    """The cores this process may run on (CPU affinity, as in a container), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_concurrency(cores: int | None = None) -> tuple[int, int]:
    """(workers, threads) for `cores` (default: this machine's). deploy/gunicorn.conf.py uses it.

    2 * cores + 1 workers, capped at MAX_DEFAULT_WORKERS: each request waits mostly on Redis,
    and a small team's traffic never needs more; 2 * cores threads per worker (at most
    MAX_DEFAULT_THREADS) overlap those waits.
    """
    n = cpu_count() if cores is None else max(1, cores)
    return min(2 * n + 1, MAX_DEFAULT_WORKERS), min(2 * n, MAX_DEFAULT_THREADS)


def gunicorn_options(*, bind: str, workers: int, threads: int) -> dict[str, Any]:
    """vault's gunicorn settings. The access log stays off: gunicorn's default format writes the
    request line and Referer, and a link's path is a capability worth keeping out of logs."""
    options: dict[str, Any] = {
        "bind": [bind],
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # Build the app once in the master: config errors fail before forking, and the
        # embedded store exists before its single worker is forked.
        "preload_app": True,
        "timeout": 30,
        "graceful_timeout": 30,
        "keepalive": 5,
        # gunicorn's own 4xx pages carry none of vault's headers: let long request lines and
        # headers through (to its maximum) so that vault itself answers nearly everything.
        "limit_request_line": 8190,
        "limit_request_field_size": 16380,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "info",
        "proc_name": "vault",
        # No runtime control socket (gunicorn >= 25 opens one in $HOME by default).
        "control_socket_disable": True,
    }
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108
        # The workers' heartbeat files: on a disk-backed /tmp a slow disk stalls the heartbeat.
        options["worker_tmp_dir"] = "/dev/shm"  # noqa: S108
    return options


@dataclass(frozen=True)
class BindAddress:
    host: str  # without brackets; "" for a unix socket
    port: int
    spec: str  # what gunicorn is given

    @property
    def is_unix(self) -> bool:
        return self.spec.startswith("unix:")

    @property
    def is_loopback(self) -> bool:
        if self.is_unix:
            return True
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False  # a host name: assume it is reachable from elsewhere

    def url(self) -> str:
        """An http:// URL a browser on this machine can open."""
        host = self.host
        if host in {"0.0.0.0", "::", ""}:  # noqa: S104
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"


def parse_bind(value: str) -> BindAddress:
    """`HOST:PORT`, `[IPv6]:PORT` or `unix:PATH`; ValueError with a short reason otherwise."""
    value = value.strip()
    if value.startswith("unix:"):
        if len(value) <= len("unix:"):
            raise ValueError("unix: needs a socket path")
        return BindAddress(host="", port=0, spec=value)
    host, colon, port_text = value.rpartition(":")
    if not colon or not host:
        raise ValueError("use HOST:PORT, for example 127.0.0.1:8000")
    if host.startswith("["):
        if not host.endswith("]"):
            raise ValueError("write an IPv6 address as [ADDRESS]:PORT")
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 address as [ADDRESS]:PORT")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError("the port must be a number from 1 to 65535")
    return BindAddress(host=host, port=int(port_text), spec=value)


class _Gunicorn(BaseApplication):  # type: ignore[misc]  # gunicorn ships no type hints
    def __init__(self, app: Flask, options: Mapping[str, Any]) -> None:
        self._app = app
        self._options = dict(options)
        super().__init__()

    def load_config(self) -> None:
        known = self.cfg.settings
        for name, value in self._options.items():
            if name in known:  # settings newer than the installed gunicorn are skipped
                self.cfg.set(name, value)

    def load(self) -> Flask:
        return self._app


def _say(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


def _banner(url: str, password: str, token: str) -> str:
    rule = "=" * 74
    return "\n".join([
        rule,
        "  vault: EMBEDDED DEMO MODE (no VAULT_REDIS_URL, no VAULT_ENV)",
        "",
        "  * in-memory store: EVERYTHING IS LOST when this process exits",
        "  * throwaway keys and secret key, generated at start, never saved",
        "  * NOT FOR PRODUCTION: set VAULT_ENV=production, VAULT_REDIS_URL,",
        "    VAULT_SECRET_KEY and VAULT_KEYS for a real deployment",
        "",
        f"  URL:        {url}",
        f"  Demo admin: {DEMO_ADMIN}",
        f"  Password:   {password}",
        f"  API token:  {token}",
        "",
        f"  Try it:     VAULT_URL={url} VAULT_TOKEN=<the token> vault request --ticket 1",
        rule,
    ])


def serve(*, bind: str | None, workers: int | None, threads: int | None,
          environ: Mapping[str, str] | None = None,
          run: Callable[[Flask, dict[str, Any]], None] | None = None) -> int:
    """Build the app, then run gunicorn until it stops. Returns an exit status (2: bad config).

    `run` replaces gunicorn (tests of the options); by default gunicorn runs and exits itself.
    """
    from vault import config as config_mod
    from vault import create_app

    environ = os.environ if environ is None else environ
    try:
        address = parse_bind(bind or DEFAULT_BIND)
    except ValueError as exc:
        _say(f"Error: --bind: {exc}")
        return 2
    default_workers, default_threads = default_concurrency()
    n_workers = workers or default_workers
    n_threads = threads or default_threads

    try:
        settings = config_mod.load()
        overrides: dict[str, Any] = {}
        if settings.embedded and "VAULT_BASE_URL" not in environ:
            overrides["base_url"] = address.url()  # links point at this very server
        app = create_app(overrides)
    except ConfigError as exc:
        _say(f"Error: {exc}")
        return 2
    ext = app.extensions["vault"]
    embedded: bool = ext.config.embedded

    password = token = ""
    if embedded:
        if workers is not None and workers != 1:
            _say(f"warning: the embedded mode runs exactly one worker (its store lives in that "
                 f"process); ignoring --workers {workers}")
        n_workers = 1
        if not address.is_loopback:
            # The banner prints a demo admin's password: never for other machines to reach.
            _say("Error: the embedded demo mode only binds to a loopback address (127.0.0.1); "
                 "configure VAULT_REDIS_URL and the keys to serve other machines")
            return 2
        password = secrets.token_urlsafe(15)
        try:
            ext.accounts.add_agent(DEMO_ADMIN, password, name="Demo admin", admin=True,
                                   actor="serve")
            token, _ = ext.accounts.create_token(DEMO_ADMIN, actor="serve")
        except VaultError as exc:  # a fresh in-memory store: cannot really happen
            _say(f"Error: could not create the demo admin: {exc.detail}")
            return 1
    else:
        if "VAULT_BASE_URL" not in environ:
            _say(f"warning: VAULT_BASE_URL is not set: links will start with "
                 f"{ext.config.base_url}")
        try:
            ext.store.load_scripts()  # spares the first requests a NOSCRIPT round trip
        except Unavailable:
            _say("warning: Redis does not answer yet; vault starts anyway and answers 503 "
                 "(and /readyz 503) until it does")
        except redis.exceptions.RedisError as exc:
            # An ACL without SCRIPT LOAD, say: the scripts still load on first use (EVAL).
            _say(f"warning: could not preload the Lua scripts ({type(exc).__name__})")
    if not address.is_loopback:
        _say(f"warning: vault serves plain HTTP on {address.spec}; it expects TLS at a reverse "
             "proxy in front of it (see deploy/)")

    options = gunicorn_options(bind=address.spec, workers=n_workers, threads=n_threads)
    if embedded:
        _say(_banner(address.url(), password, token))
    if run is not None:
        run(app, options)
        return 0
    _Gunicorn(app, options).run()  # gunicorn exits the process itself when it stops
    return 0
