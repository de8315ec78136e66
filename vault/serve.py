"""`vault serve`: gunicorn in-process, the app built once in the master before any fork.

Building the app in the master (gunicorn's preload) means a bad configuration fails before a
worker exists, with one clear message. In the embedded demo mode the in-process store lives in
the master too: exactly one worker is forked from it and keeps it, so the demo admin created
here is the one that can log in.

Everything gunicorn is told lives here, once: `vault serve` and deploy/gunicorn.conf.py (for
`gunicorn -c deploy/gunicorn.conf.py 'vault:create_app()'`) both take `gunicorn_options`, so the
two ways of running vault in production cannot drift apart: the same workers and threads from
the core count, timeouts, JSON logs (`JsonLogger`) and metrics folder (`prepare_metrics_dir`
and the hooks).
"""

from __future__ import annotations

import datetime as dt
import glob
import ipaddress
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess  # nosec B404 # the affinity check runs this interpreter, nothing else
import sys
import tempfile
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis.exceptions
from flask import Flask
from gunicorn import glogging
from gunicorn.app.base import BaseApplication

from vault import logs as vault_logs
from vault.errors import ConfigError, Unavailable, VaultError
from vault.logs import JsonFormatter
from vault.metrics import MULTIPROC_ENV

__all__ = [
    "BIND_ENV",
    "DEFAULT_BIND",
    "DEMO_ADMIN",
    "PIN_ENV",
    "BindAddress",
    "JsonLogger",
    "affinity_refusal",
    "child_exit",
    "default_concurrency",
    "drop_server_banner",
    "gunicorn_options",
    "on_exit",
    "on_starting",
    "parse_bind",
    "pin_workers",
    "post_fork",
    "pre_fork",
    "prepare_metrics_dir",
    "quota_refusal",
    "release_metrics_dir",
    "serve",
]

DEFAULT_BIND = "127.0.0.1:8000"
# Where to listen when no --bind is given, for `vault serve` and deploy/gunicorn.conf.py alike.
BIND_ENV = "VAULT_BIND"
# Each worker runs on a core of its own unless this is 0 (see `pre_fork`).
PIN_ENV = "VAULT_PIN_WORKERS"
DEMO_ADMIN = "admin@vault.localhost"
MAX_DEFAULT_WORKERS = 8
DEFAULT_THREADS = 8

log = logging.getLogger("vault")


CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_quota(cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> int | None:
    """This process's cgroup v2 CPU quota in whole cores (rounded up, at least 1), or None
    when it has none (or none readable)."""
    try:
        quota, period = cgroup_cpu_max.read_text().split()[:2]
        if quota != "max":
            return max(1, -(-int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return None


def cpu_count(cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may use, at least 1: its CPU affinity, lowered to its cgroup v2
    CPU quota when it has one (`docker run --cpus 1` sets a quota, not an affinity)."""
    try:
        cores = max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        cores = max(1, os.cpu_count() or 1)
    quota = cpu_quota(cgroup_cpu_max)
    return cores if quota is None else min(cores, quota)  # no quota: the affinity stands


def default_concurrency(cores: int | None = None) -> tuple[int, int]:
    """(workers, threads) for `cores` (default: this machine's). deploy/gunicorn.conf.py uses it.

    One worker per core (at least 2, so a restarting worker never leaves nobody to answer; at
    most MAX_DEFAULT_WORKERS: a small team's traffic never needs more) and DEFAULT_THREADS
    threads each, which overlap the request's one Redis round trip. Chosen by measurement
    (bench/README.md, "Defaults by measurement"): with each worker on its own core
    (`pre_fork`), 8 threads served more creates and reveals than 4, 12 and 16 no more than 8,
    2 fewer; more processes than cores (the former 2 x cores + 1) only queued.
    """
    n = cpu_count() if cores is None else max(1, cores)
    return min(max(2, n), MAX_DEFAULT_WORKERS), DEFAULT_THREADS


def pin_workers(environ: Mapping[str, str] | None = None) -> bool:
    """Whether each worker is pinned to a core (`VAULT_PIN_WORKERS`, default on; 0 turns it
    off). ValueError for a value that is no boolean."""
    from vault.config import _bool

    environ = os.environ if environ is None else environ
    value = environ.get(PIN_ENV, "")
    return True if value.strip() == "" else _bool(value)


def gunicorn_options(*, bind: str, workers: int, threads: int) -> dict[str, Any]:
    """vault's gunicorn settings, for `vault serve` and deploy/gunicorn.conf.py alike.

    The access log is on, to stdout, one JSON object a line from `JsonLogger`: method, path
    without its query string, status, bytes, duration and the request id, never the query
    string, `Referer`, `Authorization`, cookies or any other header. The error log is JSON on
    stderr. The hooks keep the workers' metrics right (see `prepare_metrics_dir`) and, unless
    `VAULT_PIN_WORKERS=0`, run each worker on a core of its own (`pre_fork`).
    """
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
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": "info",
        "logger_class": JsonLogger,
        "on_starting": on_starting,
        "child_exit": child_exit,
        "on_exit": on_exit,
        **({"pre_fork": pre_fork, "post_fork": post_fork} if pin_workers() else {}),
        "proc_name": "vault",
        # No runtime control socket (gunicorn >= 25 opens one in $HOME by default).
        "control_socket_disable": True,
    }
    # The workers' heartbeat files (gunicorn's own, empty, chmod'ed): on a disk-backed /tmp a
    # slow disk stalls the heartbeat. Not a temporary file of ours, nothing secret in it.
    shm = "/dev/shm"  # noqa: S108 # nosec B108
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        options["worker_tmp_dir"] = shm
    return options


# -- logs ----------------------------------------------------------------------------------------

_QUERY = re.compile(r"\?[^\s'\"]*")


class _NoRequestDetail(logging.Filter):
    """gunicorn's own messages about a bad or failed request quote its URI (with the query
    string) or the offending request line or header: keep only what went wrong."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message.startswith("Invalid request from ip="):
            # "Invalid request from ip=A: Invalid HTTP Header: 'Authorization: ...'"
            head, _, detail = message.partition(": ")
            message = f"{head}: {detail.split(':', 1)[0]}"
        message = _QUERY.sub("?[query not logged]", message)
        if message != record.getMessage():
            record.msg, record.args = message, ()
        return True


class JsonLogger(glogging.Logger):  # type: ignore[misc]  # gunicorn ships no type hints
    """gunicorn's logger, writing JSON lines: vault.logs' format for its messages, and an access
    log of fixed fields.

    The access line is built here from an allow-list rather than from `access_log_format`, so
    that no configuration can add the request line (`%(r)s`, with the query string), the
    query string (`%(q)s`), `Referer` (`%(f)s`) or a header such as `Authorization` or
    `Cookie`: `access_log_format` is ignored. The request id is the one vault answered with
    (`X-Request-Id`), also in the app's own log lines for that request.
    """

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        self._access_enabled = self._access_on()  # decided once, not per request
        for log in (self.error_log, self.access_log):
            for handler in log.handlers:
                if getattr(handler, "_gunicorn", False):
                    handler.setFormatter(JsonFormatter())
        if not any(isinstance(f, _NoRequestDetail) for f in self.error_log.filters):
            self.error_log.addFilter(_NoRequestDetail())

    def _access_on(self) -> bool:
        cfg = self.cfg
        return bool(cfg.accesslog or cfg.logconfig or cfg.logconfig_dict
                    or getattr(cfg, "logconfig_json", None)
                    or (cfg.syslog and not cfg.disable_redirect_access_to_syslog))

    def access(self, resp: Any, req: Any, environ: Mapping[str, Any],
               request_time: dt.timedelta) -> None:
        if not getattr(self, "_access_enabled", False):
            return
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        request_id = environ.get("vault.request_id")  # vault's answer carries the same id
        if request_id is None:
            headers = resp.headers.items() if hasattr(resp.headers, "items") else resp.headers
            request_id = next((value for name, value in headers
                               if name.lower() == "x-request-id"), None)
        sent = getattr(resp, "sent", None)
        fields = {
            "method": environ.get("REQUEST_METHOD", ""),
            "path": environ.get("PATH_INFO", ""),  # without the query string, by WSGI
            "status": int(status) if str(status).isdigit() else str(status),
            "bytes": sent if isinstance(sent, int) else None,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "request_id": request_id or None,
        }
        try:
            vault_logs.line(self.access_log, "request", **fields)
        except Exception:
            self.error("could not write an access log line")


# -- metrics of several workers ---------------------------------------------------------------------

_owned_metrics_dir: tuple[str, int] | None = None  # (a folder we made, by which process)


def prepare_metrics_dir(environ: MutableMapping[str, str] | None = None) -> str:
    """Give the workers a shared metrics folder (prometheus-client's multiprocess mode).

    $PROMETHEUS_MULTIPROC_DIR when set (created if missing); otherwise a new private folder,
    named in the environment for the workers and removed when the master exits (`on_exit`).
    Call it before the app is built: the metrics choose in-memory or file-backed values then.
    OSError when the folder cannot be made (a read-only file system without a writable /tmp).
    """
    global _owned_metrics_dir
    environ = os.environ if environ is None else environ
    path = environ.get(MULTIPROC_ENV, "")
    if path:
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
    path = tempfile.mkdtemp(prefix="vault-metrics-")
    environ[MULTIPROC_ENV] = path
    _owned_metrics_dir = (path, os.getpid())
    return path


def release_metrics_dir(environ: MutableMapping[str, str] | None = None) -> None:
    """Remove the folder `prepare_metrics_dir` made, in the process that made it (never in a
    forked worker); one named by the operator stays. Idempotent."""
    global _owned_metrics_dir
    environ = os.environ if environ is None else environ
    if _owned_metrics_dir is None or _owned_metrics_dir[1] != os.getpid():
        return
    path = _owned_metrics_dir[0]
    _owned_metrics_dir = None
    shutil.rmtree(path, ignore_errors=True)
    if environ.get(MULTIPROC_ENV) == path:
        del environ[MULTIPROC_ENV]


def on_starting(server: Any) -> None:
    """gunicorn hook, in the master before the first worker: no server banner, and the counts
    start from zero.

    Files left by an earlier run (their processes are gone) would be summed into this one's.
    The preloaded app's own files go too: the master serves no request, and each worker
    writes files of its own pid.
    """
    drop_server_banner()
    path = os.environ.get(MULTIPROC_ENV, "")
    if not path:
        return
    os.makedirs(path, mode=0o700, exist_ok=True)
    for name in glob.glob(os.path.join(path, "*.db")):
        os.remove(name)


def drop_server_banner() -> None:
    """gunicorn writes `Server: gunicorn` on every response and has no setting to leave it out
    (checked up to 27.0). It tells a scanner what to try and a user nothing, so vault sends none:
    gunicorn's own header lines, minus that one. Idempotent; the workers inherit it from the
    master. It replaces a private method (pyproject.toml bounds gunicorn below 28): were it
    renamed, the banner would come back (tests/test_metrics.py looks for it)."""
    from gunicorn.http import wsgi

    current = wsgi.Response.default_headers
    if getattr(current, "vault_no_banner", False):
        return

    def default_headers(self: Any) -> list[str]:
        return [line for line in current(self) if not line.startswith("Server:")]

    default_headers.vault_no_banner = True  # type: ignore[attr-defined]
    wsgi.Response.default_headers = default_headers


# Run by `affinity_refusal` in a child interpreter: run on one core of its own, as a worker
# does. Exit 0 when the kernel allows it; print the errno and exit 3 when the kernel refuses it.
_AFFINITY_CHECK = """
import os, sys
try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
except OSError as exc:
    print(exc.errno)
    sys.exit(3)
"""


def quota_refusal(cores: int, cgroup_cpu_max: Path = CGROUP_CPU_MAX) -> str | None:
    """Why `cores` allowed cores are no place to pin workers when a CPU quota is smaller than
    them; None otherwise.

    A container limited by `--cpus` (or a Kubernetes CPU limit) gets a quota, not a cpuset: it
    may run on every core of the host, a few at a time. Pinned, its workers would sit on the
    host's first cores, and so would those of every other such container, while the rest idle.
    """
    quota = cpu_quota(cgroup_cpu_max)
    if quota is None or quota >= cores:
        return None
    return (f"a CPU quota of {quota} core(s) over {cores} allowed cores (a container's --cpus, "
            "not a cpuset); give it its own cores (--cpuset-cpus, systemd's CPUAffinity=) to "
            "pin workers")


def affinity_refusal() -> str | None:
    """None when a process here may set its CPU affinity; otherwise why not, in an operator's
    words.

    Asked of a child process (this interpreter, for a few milliseconds, once per master), so
    that a system call filter which kills the caller of `sched_setaffinity` (systemd's
    `SystemCallFilter=` without `SystemCallErrorNumber=`, a container's seccomp profile) kills
    the child, not the master or every worker as it starts. A kernel that refuses the call
    (EPERM from a filter or a policy, ENOSYS, EINVAL) answers the same way in the child.
    """
    try:
        done = subprocess.run(  # nosec B603 # this interpreter and a fixed program, no shell
            [sys.executable, "-I", "-S", "-c", _AFFINITY_CHECK], capture_output=True,
            text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"the check could not run ({exc.__class__.__name__})"
    if done.returncode == 0:
        return None
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        return (f"a process that sets its CPU affinity is killed ({name}): a system call "
                "filter forbids sched_setaffinity")
    number = done.stdout.strip()
    if done.returncode == 3 and number.isdigit():
        return f"the kernel refuses to set a CPU affinity ({os.strerror(int(number))})"
    return f"the check failed (exit status {done.returncode})"


def pre_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master before a worker is forked: the core it will run on.

    A worker of gthread threads holds the GIL in turn; each time one thread waits (for Redis,
    for a client) another takes over, and when the two run on different cores the hand-over
    is a wake-up of a sleeping core, which on a virtual machine is slow. Pinned to one core, the
    hand-over is a switch on that core. Measured faster than unpinned workers on a small host
    shared with Redis, with a CPU-bound neighbour too (bench/README.md, "Pinning on a shared
    host"), so pinning is the default. The core is the one
    the fewest live workers run on, so a worker that replaces a dead one takes its core, and
    more workers than cores share them evenly. Cores are this process's own (its CPU affinity,
    which a container's cpuset sets).

    Before the first worker, the master asks once whether its cores are its own (no CPU quota
    below them: `quota_refusal`) and whether a process here may set its affinity at all
    (`affinity_refusal`); when not, it says why in its log, once, and no worker is pinned: they
    serve wherever the kernel places them, never killed or restarted for it.
    """
    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return  # no CPU affinity on this platform: the kernel places the workers
    if not hasattr(server, "vault_pin_refusal"):
        server.vault_pin_refusal = quota_refusal(len(cores)) or affinity_refusal()
        if server.vault_pin_refusal is not None:
            server.log.warning("Workers are not pinned to cores: %s. They run wherever the "
                               "kernel places them (set VAULT_PIN_WORKERS=0 to skip this "
                               "check).", server.vault_pin_refusal)
    if server.vault_pin_refusal is not None:
        return
    taken = [getattr(w, "vault_core", None) for w in server.WORKERS.values()]
    worker.vault_core = min(cores, key=lambda core: (taken.count(core), core))


def post_fork(server: Any, worker: Any) -> None:
    """gunicorn hook, in the new worker: run on the core `pre_fork` chose for it, and say so
    in gunicorn's log (an operator sees where each worker runs). A refusal (a core that went
    away meanwhile, a changed cpuset) is said too, and the worker serves unpinned."""
    core = getattr(worker, "vault_core", None)
    if core is None:
        return
    try:
        os.sched_setaffinity(0, {core})
    except OSError as exc:
        server.log.warning("Worker %s is not pinned to core %s (%s): it runs wherever the "
                           "kernel places it", os.getpid(), core, exc.strerror or exc)
        return
    server.log.info("Worker %s runs on core %s", os.getpid(), core)


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn hook, in the master when a worker has exited: its counts stay (they happened),
    its live gauges go."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


def on_exit(server: Any) -> None:
    """gunicorn hook, in the master as it exits."""
    release_metrics_dir()


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
        # A comparison with the wildcard addresses, not a bind.
        if host in {"0.0.0.0", "::", ""}:  # noqa: S104 # nosec B104
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
        f"  Customers:  {url}/",
        f"  Agents:     {url}/login",
        f"  Demo admin: {DEMO_ADMIN}",
        f"  Password:   {password}",
        f"  API token:  {token}",
        "",
        f"  Try it:     VAULT_URL={url} VAULT_TOKEN={token} {_vault_command()} request --ticket 1",
        rule,
    ])


def _vault_command() -> str:
    """The `vault` command as this shell can run it: the console script beside this Python
    (`./scripts/serve` installs it in .venv/bin, which is not on the PATH), else `vault`."""
    here = Path(sys.executable).parent / "vault"
    return shlex.quote(str(here)) if here.is_file() and os.access(here, os.X_OK) else "vault"


def serve(*, bind: str | None, workers: int | None, threads: int | None,
          environ: Mapping[str, str] | None = None,
          run: Callable[[Flask, dict[str, Any]], None] | None = None) -> int:
    """Build the app, then run gunicorn until it stops. Returns an exit status (2: bad config).

    `run` replaces gunicorn (tests of the options); by default gunicorn runs and exits itself.
    """
    from vault import config as config_mod

    environ = os.environ if environ is None else environ
    from_env = not bind and bool(environ.get(BIND_ENV))
    try:
        address = parse_bind(bind or environ.get(BIND_ENV) or DEFAULT_BIND)
    except ValueError as exc:
        _say(f"Error: {BIND_ENV if from_env else '--bind'}: {exc}")
        return 2
    try:
        pin_workers(environ)
    except ValueError as exc:
        _say(f"Error: {PIN_ENV}: {exc}")
        return 2
    default_workers, default_threads = default_concurrency()
    n_workers = workers or default_workers
    n_threads = threads or default_threads

    try:
        settings = config_mod.load()
    except ConfigError as exc:
        _say(f"Error: {exc}")
        return 2
    if os.environ.get(MULTIPROC_ENV) or (not settings.embedded and n_workers > 1):
        # Several workers: /metrics must sum them all, whichever worker answers it.
        try:
            prepare_metrics_dir()
        except OSError:
            _say(f"Error: cannot create a folder for the workers' metrics; set {MULTIPROC_ENV} "
                 "to a writable folder")
            return 2
    try:
        return _serve(address, n_workers, n_threads, settings.embedded, workers, environ, run)
    finally:
        release_metrics_dir()  # in the master only, once gunicorn stops (or a test's run ends)


def _serve(address: BindAddress, n_workers: int, n_threads: int, embedded: bool,
           workers: int | None, environ: Mapping[str, str],
           run: Callable[[Flask, dict[str, Any]], None] | None) -> int:
    from vault import create_app

    try:
        overrides: dict[str, Any] = {}
        if embedded and "VAULT_BASE_URL" not in environ:
            overrides["base_url"] = address.url()  # links point at this very server
        app = create_app(overrides)
    except ConfigError as exc:
        _say(f"Error: {exc}")
        return 2
    ext = app.extensions["vault"]

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
