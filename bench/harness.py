"""Processes of a benchmark run: a private redis-server, three gunicorn servers, wrk.

Run with the project's virtualenv (`.venv`): vault is imported for its own settings
(`vault.serve.default_concurrency`), envelopes (`vault.crypto.envelope.seal`) and service layer.
The peer (snappass 1.6.2) lives in its own throwaway virtualenv, `bench/.venv-peer`, which
`bench/run` makes. Nothing here is part of the test suite.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
VAULT_VENV = Path(os.environ.get("BENCH_VAULT_VENV", ROOT / ".venv"))
PEER_VENV = Path(os.environ.get("BENCH_PEER_VENV", BENCH / ".venv-peer"))

# Rate limits stay on (their Redis round trip is part of what is measured), just out of reach.
RAISED_LIMIT = "1000000000/minute"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def say(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Proc:
    """A child process with its output in a log file; `stop` ends it (and only it)."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def _die_with_parent() -> None:
    """In the child: get SIGTERM when the benchmark process dies, however it dies (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def spawn(name: str, argv: list[str], log_path: Path, *, env: Mapping[str, str] | None = None,
          cwd: Path | None = None, port: int = 0) -> Proc:
    log = open(log_path, "wb")  # noqa: SIM115  # the child keeps it
    try:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                   env=dict(env or os.environ), cwd=str(cwd) if cwd else None,
                                   preexec_fn=_die_with_parent)
    finally:
        log.close()
    return Proc(name=name, process=process, log_path=log_path, port=port)


def wait_http(proc: Proc, path: str = "/", timeout: float = 60) -> None:
    """Until the server answers any HTTP status on `path` (its workers have booted)."""
    import http.client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n{proc.tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=5)
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not answer within {timeout:.0f} s:\n{proc.tail()}")


# -- redis ------------------------------------------------------------------------------------

@dataclass
class RedisServer:
    proc: Proc
    port: int

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        # No socket timeout: FLUSHALL of a million keys or a big pipeline may take seconds.
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=None)

    def version(self) -> str:
        return str(self.client().info("server")["redis_version"])

    def used_memory(self) -> int:
        return int(self.client().info("memory")["used_memory"])

    def flush(self) -> None:
        self.client().flushall()


def start_redis(workdir: Path, wrap: Sequence[str] = ()) -> RedisServer:
    """A private redis-server on a free port: no RDB snapshots, no AOF (nothing on disk).
    `wrap`: a command it runs under (valgrind, say), which gives it longer to start."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (bench/run installs it with apt-get)")
    port = free_port()
    proc = spawn("redis-server", [*wrap, binary, "--port", str(port), "--bind", "127.0.0.1",
                                  "--save", "", "--appendonly", "no", "--dir", str(workdir),
                                  "--protected-mode", "yes", "--loglevel", "warning"],
                 workdir / "redis.log", port=port)
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + (120 if wrap else 20)
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if proc.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start:\n{proc.tail()}") from None
            time.sleep(0.05)
    return RedisServer(proc=proc, port=port)


# -- the three servers ---------------------------------------------------------------------------

def concurrency() -> tuple[int, int]:
    """(workers, threads): vault's own production default for this machine, for all three."""
    from vault.serve import default_concurrency

    return default_concurrency()


def plain_gunicorn(venv: Path, app: str, *, name: str, workdir: Path, workers: int, threads: int,
                   env: Mapping[str, str], chdir: Path | None = None) -> Proc:
    """gunicorn with the settings vault's own (vault.serve.gunicorn_options) that bear on speed:
    gthread workers and threads, preloaded app, keep-alive 5 s, heartbeat in /dev/shm.
    (vault also writes a JSON access log and its own JSON logs: its cost is counted against it.)"""
    port = free_port()
    argv = [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--threads", str(threads), "--worker-class", "gthread",
            "--preload", "--keep-alive", "5", "--timeout", "30", "--graceful-timeout", "5",
            "--no-control-socket"]
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):  # noqa: S108
        argv += ["--worker-tmp-dir", "/dev/shm"]  # noqa: S108
    if chdir is not None:
        argv += ["--chdir", str(chdir)]
    argv.append(app)
    proc = spawn(name, argv, workdir / f"{name}.log", env=env, port=port)
    wait_http(proc)
    return proc


def start_ceiling(workdir: Path, workers: int, threads: int) -> Proc:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    return plain_gunicorn(VAULT_VENV, "ceiling:app", name="ceiling", workdir=workdir,
                          workers=workers, threads=threads, env=env, chdir=BENCH)


def snappass_env(redis_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(REDIS_URL=redis_url, SECRET_KEY=secrets.token_urlsafe(32), NO_SSL="true",
               PYTHONWARNINGS="ignore::DeprecationWarning")
    return env


def start_snappass(workdir: Path, redis_url: str, workers: int, threads: int) -> Proc:
    return plain_gunicorn(PEER_VENV, "snappass.main:app", name="snappass", workdir=workdir,
                          workers=workers, threads=threads, env=snappass_env(redis_url))


@dataclass
class VaultSettings:
    redis_url: str
    port: int
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(48))
    keys: str = ""
    helpscout_app_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    def __post_init__(self) -> None:
        if not self.keys:
            from vault.crypto.keyring import generate_key_spec

            self.keys = generate_key_spec()

    def variables(self) -> dict[str, str]:
        """Production settings; only the rate limits (raised, still counted in Redis) and the
        per-ticket cap of waiting secrets differ from the defaults."""
        return {
            "VAULT_ENV": "production",
            "VAULT_REDIS_URL": self.redis_url,
            "VAULT_SECRET_KEY": self.secret_key,
            "VAULT_KEYS": self.keys,
            "VAULT_BASE_URL": f"http://127.0.0.1:{self.port}",
            "VAULT_RATELIMIT_SUBMIT": RAISED_LIMIT,
            "VAULT_RATELIMIT_REVEAL": RAISED_LIMIT,
            "VAULT_RATELIMIT_WEBHOOK": RAISED_LIMIT,  # the sidebar counts its calls against it
            "VAULT_MAX_WAITING_PER_TICKET": "10000000",
            "VAULT_HELPSCOUT_APP_SECRET": self.helpscout_app_secret,
        }

    def driver_app(self) -> Any:
        """The same configuration in this process, to reach the service layer directly (bulk
        inserts, purges, agents) without HTTP. Quieter logs, patient socket."""
        from vault import create_app

        mapping: dict[str, Any] = dict(self.variables())
        mapping["VAULT_LOG_LEVEL"] = "WARNING"
        mapping["VAULT_REDIS_SOCKET_TIMEOUT"] = "60"
        return create_app(mapping)


def start_vault(workdir: Path, settings: VaultSettings, workers: int, threads: int, *,
                pinned: bool = True) -> Proc:
    """`vault serve` as shipped; `pinned=False`: its workers placed by the kernel."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    env.update(settings.variables())
    env["VAULT_PIN_WORKERS"] = "1" if pinned else "0"
    env["PROMETHEUS_MULTIPROC_DIR"] = str(workdir / "vault-metrics")
    proc = spawn("vault", [str(VAULT_VENV / "bin" / "vault"), "serve", "--bind",
                           f"127.0.0.1:{settings.port}", "--workers", str(workers),
                           "--threads", str(threads)],
                 workdir / "vault.log", env=env, port=settings.port)
    wait_http(proc, "/healthz")
    return proc


# -- CPU accounting ------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds used) of a live process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / _TICK


def tree(pid: int) -> list[int]:
    """A process and its live descendants (a gunicorn master and its workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _stat(int(entry))
            if st is not None:
                parents[int(entry)] = st[0]
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(c for c, parent in parents.items() if parent == p)
    return found


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process and its live descendants."""
    return sum(st[1] for st in map(_stat, tree(pid)) if st is not None)


def children_cpu() -> float:
    """CPU seconds of this process's reaped children (wrk runs to completion and is reaped)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- callgrind ----------------------------------------------------------------------------------

def callgrind_control(pid: int, *args: str) -> None:
    """Switch counting on or off, zero or dump, in a process running under callgrind."""
    subprocess.run(["callgrind_control", *args, str(pid)], check=True, capture_output=True)


def callgrind_instructions(out: str, label: str) -> int:
    """Instructions in the dumps named `label` (`--dump=<label>`) among the files callgrind
    wrote from `out` (`--callgrind-out-file`; one per process or thread it followed)."""
    total, found = 0, False
    for path in Path(out).parent.glob(Path(out).name + "*"):
        text = path.read_text(errors="replace")
        if f"desc: Trigger: --dump={label}\n" in text or f"dump {label}\n" in text:
            m = re.search(r"^summary: (\d+)", text, re.M)
            if m:
                total, found = total + int(m.group(1)), True
    if not found:
        raise RuntimeError(f"no callgrind dump for {label}")
    return total


# -- wrk ----------------------------------------------------------------------------------------

@dataclass
class WrkResult:
    rps: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p99_ms: float
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    command: str
    # CPU milliseconds per request: the server (master and workers), redis-server, wrk.
    cpu_ms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"rps": round(self.rps, 1), "p50_ms": round(self.p50_ms, 3),
                "p75_ms": round(self.p75_ms, 3), "p90_ms": round(self.p90_ms, 3),
                "p99_ms": round(self.p99_ms, 3), "requests": self.requests,
                "seconds": round(self.seconds, 2), "non_2xx": self.non_2xx,
                "socket_errors": self.socket_errors,
                "cpu_ms_per_request": {k: round(v, 3) for k, v in self.cpu_ms.items()},
                "command": self.command}


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(output: str, command: str) -> WrkResult:
    pct = {int(m.group(1)): _ms(m.group(2))
           for m in re.finditer(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.M)}
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    if not (done and rps and {50, 99} <= pct.keys()):
        raise RuntimeError(f"could not read wrk's output:\n{output}")
    return WrkResult(rps=float(rps.group(1)), p50_ms=pct[50], p75_ms=pct.get(75, 0.0),
                     p90_ms=pct.get(90, 0.0), p99_ms=pct[99], requests=int(done.group(1)),
                     seconds=_ms(done.group(2) + done.group(3)) / 1000,
                     non_2xx=int(non.group(1)) if non else 0,
                     socket_errors=sum(int(x) for x in sock.groups()) if sock else 0,
                     command=command)


@dataclass(frozen=True)
class WrkSettings:
    threads: int = 2
    connections: int = 32
    seconds: int = 10

    def args(self, seconds: int | None = None) -> list[str]:
        return [f"-t{self.threads}", f"-c{self.connections}",
                f"-d{seconds or self.seconds}s", "--latency", "--timeout", "10s"]


def wrk(url: str, settings: WrkSettings, *, script: str | None = None,
        script_args: list[str] | None = None, seconds: int | None = None,
        watch: Mapping[str, int] | None = None) -> WrkResult:
    """Run wrk; `watch` names processes (pid, with descendants) whose CPU time per request is
    measured over the run, besides wrk's own."""
    argv = ["wrk", *settings.args(seconds)]
    if script:
        argv += ["-s", str(BENCH / script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    shown = " ".join("Bearer <token>" if a.startswith("Bearer ")
                     else Path(a).name if a.startswith(tempfile.gettempdir()) else a for a in argv)
    watch = dict(watch or {})
    before = {name: tree_cpu(pid) for name, pid in watch.items()}
    wrk_before = children_cpu()
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    wrk_cpu = children_cpu() - wrk_before
    after = {name: tree_cpu(pid) for name, pid in watch.items()}
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr}\n{out.stdout}")
    result = parse_wrk(out.stdout, shown.replace(str(BENCH) + "/", "bench/"))
    n = max(1, result.requests)
    result.cpu_ms = {name: (after[name] - before[name]) * 1000 / n for name in watch}
    result.cpu_ms["wrk"] = wrk_cpu * 1000 / n
    return result


# -- a scratch folder --------------------------------------------------------------------------

@contextlib.contextmanager
def scratch(prefix: str = "vault-bench-") -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
