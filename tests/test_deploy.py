"""The deploy files: the Dockerfile's rules (parsed, no Docker engine here), the install script
the image runs (run for real, then `vault serve` from what it installed), compose, Caddy and
systemd."""

from __future__ import annotations

import json
import os
import re
import runpy
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from harness import ROOT, base_config, follow_output, free_port, gunicorn_env, stop_process
from helpers import Lines, sealed
from production_redis import production_redis

DEPLOY = ROOT / "deploy"
INSTALL = ROOT / "scripts" / "install-vault"
TMP = "/tmp"  # noqa: S108  # the image's one writable place (a tmpfs), not a file made here

# -- a small Dockerfile parser ------------------------------------------------------------------


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # the text after the keyword, continuations joined

    @property
    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form's arguments, or None for the shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = re.sub(r"^(--\S+\s+)*CMD\s+", "", text)
        if text.startswith("["):
            value = json.loads(text)
            assert isinstance(value, list) and all(isinstance(v, str) for v in value)
            return value
        return None

    def flags(self) -> dict[str, str]:
        return dict(m.groups() for m in re.finditer(r"--([a-z-]+)=(\S+)", self.args))


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for i in self.all("ENV") + self.all("ARG"):
            for word in shlex.split(i.args):
                name, _, value = word.partition("=")
                out[name] = value
        return out


def parse_dockerfile(text: str) -> list[Stage]:
    """Stages and their instructions. Comment lines go (also inside a continuation, as Docker
    does), backslash continuations are joined; heredocs are not supported (none are used)."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and pending):
            continue
        if not line:
            continue
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        assert "<<" not in args or keyword not in {"RUN", "COPY"}, "heredocs are not parsed"
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            stages.append(Stage(base=words[0], name=name))
        else:
            assert stages, f"{keyword} before any FROM"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def test_the_parser_reads_continuations_comments_and_both_forms() -> None:
    stages = parse_dockerfile(
        "# syntax=docker/dockerfile:1\nFROM python:3.11-slim AS build\n"
        "ENV A=1 \\\n    # a comment inside\n    B=\"two words\"\n"
        "RUN echo one \\\n  && echo two\nFROM scratch\nCOPY --from=build /a /a\n"
        "HEALTHCHECK --interval=5s CMD [\"python\", \"-c\", \"pass\"]\nCMD serve now\n")
    assert [(s.base, s.name) for s in stages] == [("python:3.11-slim", "build"), ("scratch", "")]
    assert stages[0].env() == {"A": "1", "B": "two words"}
    assert stages[0].all("RUN")[0].args == "echo one && echo two"
    assert stages[1].all("COPY")[0].flags() == {"from": "build"}
    assert stages[1].all("HEALTHCHECK")[0].exec_form == ["python", "-c", "pass"]
    assert stages[1].all("CMD")[0].exec_form is None


@pytest.fixture(scope="module")
def dockerfile() -> list[Stage]:
    return parse_dockerfile((ROOT / "Dockerfile").read_text())


def test_dockerfile_is_multi_stage_on_a_slim_python(dockerfile: list[Stage]) -> None:
    assert len(dockerfile) >= 2
    names = {s.name for s in dockerfile}
    for stage in dockerfile:
        assert stage.base in names or re.fullmatch(r"python:3\.1[1-9]-slim(-[a-z]+)?(@sha256:\w+)?",
                                                   stage.base), stage.base
    assert re.match(r"python:3\.1[1-9]-slim", dockerfile[-1].base)


def test_dockerfile_installs_with_the_one_install_script_and_no_pip_cache(
        dockerfile: list[Stage]) -> None:
    build, final = dockerfile[:-1], dockerfile[-1]
    runs = [i.args for s in build for i in s.all("RUN")]
    assert any(re.match(r"(\./)?scripts/install-vault( --strip)? /opt/vault\b", r) for r in runs)
    assert all("pip install" not in r for r in runs)  # the script is the only install step
    assert any(s.env().get("PIP_NO_CACHE_DIR") == "1" for s in build)
    copies = [i for i in final.all("COPY") if "from" in i.flags()]
    assert [c.args.split()[1:] for c in copies] == [["/opt/vault", "/opt/vault"]]
    assert "scripts/install-vault" in [w for i in dockerfile[0].all("COPY")
                                       for w in i.args.split()]


def test_dockerfile_final_stage_has_no_build_tools(dockerfile: list[Stage]) -> None:
    final = dockerfile[-1]
    for run in final.all("RUN"):
        assert not re.search(r"\b(apt-get|apt|apk)\b.*\binstall\b", run.args), run.args
        assert not re.search(r"\b(build-essential|gcc|g\+\+|make|clang|pip install)\b", run.args)
    for stage in dockerfile:  # every dependency has a wheel: no stage needs a compiler either
        for run in stage.all("RUN"):
            assert not re.search(r"\b(build-essential|gcc)\b", run.args), run.args


def test_dockerfile_runs_as_a_numeric_non_root_user(dockerfile: list[Stage]) -> None:
    users = dockerfile[-1].all("USER")
    assert users, "the final stage must set USER"
    user, _, group = users[-1].args.partition(":")
    assert user.isdigit() and int(user) != 0 and user != "root"
    assert not group or (group.isdigit() and int(group) != 0)
    # Nothing after USER switches back or runs as root.
    after = dockerfile[-1].instructions[dockerfile[-1].instructions.index(users[-1]):]
    assert not [i for i in after if i.keyword == "RUN"]


def test_dockerfile_healthcheck_and_entrypoint(dockerfile: list[Stage]) -> None:
    final = dockerfile[-1]
    (health,) = final.all("HEALTHCHECK")
    command = health.exec_form
    assert command and command[0] == "python" and "/healthz" in " ".join(command)
    assert not re.search(r"\b(curl|wget)\b", health.args)
    assert final.all("ENTRYPOINT")[-1].exec_form == ["vault"]
    cmd = final.all("CMD")[-1].exec_form
    assert cmd and cmd[0] == "serve" and cmd[cmd.index("--bind") + 1] == "0.0.0.0:8000"


def test_dockerfile_bakes_in_no_secret(dockerfile: list[Stage]) -> None:
    for stage in dockerfile:
        for name, value in stage.env().items():
            assert not re.search(r"SECRET|PASSWORD|TOKEN|(^|_)KEYS?($|_)|REDIS_URL", name), name
            assert "whsec_" not in value and "redis://" not in value
        for copy in stage.all("COPY") + stage.all("ADD"):
            assert not re.search(r"\.env\b|\.acl\b|keys", copy.args), copy.args
    assert dockerfile[-1].env().get("VAULT_ENV") == "production"
    rules = [ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines()
             if ln.strip() and not ln.startswith("#")]
    assert rules[0] == "*", ".dockerignore starts from nothing and allows what the build copies"
    assert not any("env" in rule or ".acl" in rule for rule in rules if rule.startswith("!"))


def test_the_read_only_image_writes_only_under_tmp(dockerfile: list[Stage]) -> None:
    env = dockerfile[-1].env()
    assert env["PROMETHEUS_MULTIPROC_DIR"].startswith(TMP + "/")
    assert dockerfile[-1].all("WORKDIR")[-1].args == TMP


# -- the install script, for real ------------------------------------------------------------


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """scripts/install-vault --strip into a fresh virtualenv, exactly as the Dockerfile runs it
    (the source is this working tree; pip's cache makes it quick after the first time)."""
    venv = tmp_path_factory.mktemp("install") / "venv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "VIRTUAL_ENV"))}
    artefacts = [ROOT / "build", ROOT / "dist"]
    before = [p.exists() for p in artefacts]
    result = subprocess.run([str(INSTALL), "--strip", str(venv)], env=env, capture_output=True,
                            text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "install-vault: ok" in result.stderr
    # It builds from a clean copy: nothing new in the source tree (a stale build/ there could
    # slip deleted modules into the wheel).
    assert [p.exists() for p in artefacts] == before
    return venv


@pytest.mark.installs
def test_install_script_makes_a_clean_self_contained_virtualenv(installed: Path) -> None:
    probe = subprocess.run(
        [str(installed / "bin" / "python"), "-c",
         "import importlib.util, vault; print(vault.__file__); "
         "print(importlib.util.find_spec('pip') is None, importlib.util.find_spec('pytest') is None)"],
        capture_output=True, text=True, check=True, cwd="/")
    where, no_tools = probe.stdout.splitlines()
    assert where.startswith(str(installed)), where  # not this working tree
    assert no_tools == "True True"  # no pip, no test tools in what the image ships


def test_install_script_refuses_a_used_directory(tmp_path: Path) -> None:
    (tmp_path / "something").write_text("")
    result = subprocess.run([str(INSTALL), str(tmp_path)], capture_output=True, text=True,
                            check=False)
    assert result.returncode != 0 and "not empty" in result.stderr


@pytest.fixture
def served(installed: Path, tmp_path: Path) -> Iterator[str]:
    """`vault serve` from the installed virtualenv, as the image runs it: production settings,
    Redis with the production config and ACL, a metrics folder that does not exist yet."""
    with production_redis(tmp_path / "redis") as redis_server:
        port = free_port()
        config = base_config(redis_server.url)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "PROMETHEUS"))}
        env.update(VAULT_ENV="production", VAULT_REDIS_URL=redis_server.url,
                   VAULT_SECRET_KEY=config["secret_key"], VAULT_KEYS=config["keys"],
                   VAULT_BASE_URL=f"http://127.0.0.1:{port}", VAULT_TRUSTED_PROXIES="1",
                   PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "tmp" / "vault-metrics"))
        proc = subprocess.Popen([str(installed / "bin" / "vault"), "serve", "--bind",
                                 f"127.0.0.1:{port}", "--workers", "2", "--threads", "2"],
                                env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        try:
            follow_output(proc, b"Booting worker", what="installed vault serve",
                          log_path=tmp_path / "serve.log")
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


@pytest.mark.installs
@pytest.mark.slow
def test_the_installed_vault_serves_in_production(served: str, tmp_path: Path) -> None:
    assert requests.get(served + "/healthz", timeout=10).status_code == 200
    ready = requests.get(served + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"redis": "ok", "keyring": "ok"}
    # Templates, static files and Lua scripts came with the package.
    page = requests.get(served + "/", timeout=10)
    assert page.status_code == 200
    css = re.search(r'href="(/static/[^"]+\.css[^"]*)"', page.text)
    assert css and requests.get(served + css.group(1), timeout=10).status_code == 200
    envelope, _ = sealed("9001")
    created = requests.post(served + "/api/v1/secrets", timeout=10,
                            json={"ticket": "9001", "kind": "wordpress", "envelope": envelope})
    assert created.status_code == 201, created.text
    assert (tmp_path / "tmp" / "vault-metrics").is_dir()


# -- compose, Caddy, systemd ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_runs_vault_redis_and_the_proxy(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"vault", "redis", "proxy"} <= set(services)
    vault = services["vault"]
    assert (DEPLOY / vault["build"]["context"] / vault["build"]["dockerfile"]).resolve() \
        == ROOT / "Dockerfile"
    assert vault["read_only"] is True
    assert any(str(t).split(":")[0] == TMP for t in vault["tmpfs"])
    assert str(vault["environment"]["VAULT_TRUSTED_PROXIES"]) == "1"
    assert vault["env_file"] == ["vault.env"] and (DEPLOY / "vault.env.example").is_file()
    assert "ports" not in vault and "ports" not in services["redis"]  # only the proxy listens
    assert vault["cap_drop"] == ["ALL"]
    assert set(services["proxy"]["ports"]) >= {"443:443"}
    assert compose["networks"]["data"]["internal"] is True
    assert "data" not in services["proxy"]["networks"]


def test_compose_redis_uses_the_production_conf_and_acl(compose: dict[str, Any]) -> None:
    redis_service = compose["services"]["redis"]
    mounts = {}
    for volume in redis_service["volumes"]:
        source, target, *_ = volume.split(":")
        mounts[target] = source
    assert (DEPLOY / mounts["/etc/redis/redis.conf"]).resolve() == DEPLOY / "redis/redis.conf"
    # The site's copy of redis/users.acl with its password hash (deploy/README.md, step 1).
    assert (DEPLOY / mounts["/etc/redis/users.acl"]).resolve() == DEPLOY / "redis/users.local.acl"
    command = redis_service["command"]
    assert command[:2] == ["redis-server", "/etc/redis/redis.conf"]
    # What the command line changes from the file: the data directory and the bind address.
    changed = {command[i] for i in range(2, len(command)) if command[i].startswith("--")}
    assert changed == {"--dir", "--bind"}
    assert "aclfile /etc/redis/users.acl" in (DEPLOY / "redis/redis.conf").read_text()
    proxy_mounts = [v.split(":") for v in compose["services"]["proxy"]["volumes"]]
    assert ["./Caddyfile", "/etc/caddy/Caddyfile", "ro"] in proxy_mounts


def caddy_lines() -> list[str]:
    out = []
    for raw in (DEPLOY / "Caddyfile").read_text().splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("#") else ""
        if line:
            out.append(line)
    return out


def test_caddy_adds_no_headers_and_hides_metrics() -> None:
    lines = caddy_lines()
    assert "header -Server" in lines
    headers = [ln for ln in lines if ln.startswith(("header ", "header_down "))]
    assert headers and all(ln.split()[1].startswith("-") for ln in headers), headers  # removals
    assert not any(ln.startswith(("header_up ", "log")) for ln in lines)  # no access log
    assert "protocols h1 h2" in lines  # no HTTP/3, so no Alt-Svc
    assert "@metrics path /metrics /metrics/*" in lines and "respond @metrics 404" in lines
    proxies = [ln for ln in lines if ln.startswith("reverse_proxy ")]
    assert proxies == ["reverse_proxy {$VAULT_UPSTREAM:127.0.0.1:8000} {"]
    assert "redir https://{host}{uri} 308" in lines


def systemd_unit(path: Path | str) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and their settings (each a list: a setting may repeat); `path`
    may also be the unit's text."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    text = path.read_text() if isinstance(path, Path) else path
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, {})
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key.strip(), []).append(value.strip())
    return sections


def test_the_systemd_unit_is_hardened() -> None:
    service = systemd_unit(DEPLOY / "systemd" / "vault.service")["Service"]

    def one(key: str) -> str:
        assert key in service, key
        return service[key][-1]

    assert one("ExecStart") == "/opt/vault/bin/vault serve --bind 127.0.0.1:8000"
    assert one("EnvironmentFile") == "/etc/vault/vault.env"
    assert one("DynamicUser") == "yes" or one("User") not in {"root", "0"}
    for key in ("NoNewPrivileges", "PrivateTmp", "ProtectHome", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules", "ProtectControlGroups",
                "RestrictSUIDSGID", "LockPersonality"):
        assert one(key) == "yes", key
    assert one("ProtectSystem") == "strict"
    assert one("CapabilityBoundingSet") == "" and one("AmbientCapabilities") == ""
    assert set(one("RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}
    assert "ReadWritePaths" not in service  # writable: /run/vault (RuntimeDirectory) only
    assert one("RuntimeDirectory") == "vault"
    redis_dropin = systemd_unit(DEPLOY / "systemd" / "redis-server.service.d" / "vault.conf")
    assert redis_dropin["Service"]["NoNewPrivileges"] == ["yes"]


def test_the_deploy_readme_covers_keys_acl_and_the_first_admin() -> None:
    text = (DEPLOY / "README.md").read_text()
    for needed in ("vault keys generate", "VAULT_SECRET_KEY", "#VAULT_PASSWORD_SHA256",
                   "sha256sum", "vault agent add", "--admin", "scripts/install-vault",
                   "compose.yaml", "vault.service", "Caddyfile"):
        assert needed in text, needed


# -- the unit's system call filter, loaded as systemd loads it ------------------------------------
#
# systemd turns SystemCallFilter= into a seccomp filter that it loads with libseccomp right before
# it executes ExecStart=. The tests below do the same from the unit file itself: its
# SystemCallFilter=, SystemCallErrorNumber= and SystemCallArchitectures= lines, its @groups
# expanded with systemd's own lists (tests/data/systemd-syscall-filter.txt, compared with
# `systemd-analyze syscall-filter` where systemd is installed), loaded by pyseccomp (libseccomp's
# API over ctypes) in a small launcher that then executes the real `vault serve`.

SYSCALL_GROUPS = ROOT / "tests" / "data" / "systemd-syscall-filter.txt"
UNIT = DEPLOY / "systemd" / "vault.service"
# What the unit said when every worker died of SIGSYS as it started (pinning on): @resources,
# which holds sched_setaffinity, denied, and the default action, which kills the caller.
OLD_FILTER_LINES = """[Service]
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
"""


def parse_syscall_groups(text: str) -> dict[str, list[str]]:
    """`systemd-analyze syscall-filter`'s output: each @group and what it lists (system calls
    and other @groups), comments left out."""
    groups: dict[str, list[str]] = {}
    current: str | None = None
    for raw in text.splitlines():
        if not raw.strip():
            current = None
        elif raw.startswith("@"):
            current = raw.strip()
            groups[current] = []
        elif not raw.lstrip().startswith("#"):
            assert current is not None and raw[0].isspace(), raw
            groups[current].append(raw.strip())
    return groups


@pytest.fixture(scope="module")
def syscall_groups() -> dict[str, list[str]]:
    return parse_syscall_groups(SYSCALL_GROUPS.read_text())


def expand(name: str, groups: dict[str, list[str]]) -> set[str]:
    """A system call's name, or a @group's system calls (its nested groups included)."""
    if not name.startswith("@"):
        return {name}
    assert name in groups, f"{name} is no systemd group"
    return set().union(*(expand(member, groups) for member in groups[name]))


@dataclass(frozen=True)
class SyscallFilter:
    allow_list: bool  # True: only `names` may be called; False: `names` may not
    names: frozenset[str]
    action: str  # what a filtered call meets: "kill" (the process) or an errno name, "EPERM"

    def allows(self, name: str) -> bool:
        return (name in self.names) == self.allow_list

    def spec(self) -> dict[str, Any]:
        """What the launcher loads: the default action, the action of the listed calls."""
        if self.allow_list:
            return {"default": self.action, "listed": "allow", "names": sorted(self.names)}
        return {"default": "allow", "listed": self.action, "names": sorted(self.names)}


def unit_syscall_filter(service: dict[str, list[str]],
                        groups: dict[str, list[str]]) -> SyscallFilter:
    """The filter systemd makes of a [Service] section (systemd.exec(5), "System Call
    Filtering"; systemd 252's load-fragment.c does exactly this).

    The first SystemCallFilter= decides the kind: a list of names allows only those (and
    @default, always), a list after `~` denies only those. Each later line adds its names to
    the list when it is of the same kind, and takes them out when it is not; an empty line
    starts over. SystemCallErrorNumber= (an errno name, or `kill`) is what a filtered call gets;
    without it the caller is killed. Only SystemCallArchitectures=native is modelled (the
    launcher's filter is for the native architecture only, and a call of another one kills).
    """
    allow_list: bool | None = None
    names: set[str] = set()
    for value in service.get("SystemCallFilter", []):
        if not value:
            allow_list, names = None, set()
            continue
        invert = value.startswith("~")
        if allow_list is None:
            allow_list = not invert
            if allow_list:
                names |= expand("@default", groups)
        for word in value.lstrip("~").split():
            assert ":" not in word, f"{word}: an errno for one call is not modelled"
            if invert != allow_list:
                names |= expand(word, groups)
            else:
                names -= expand(word, groups)
    assert allow_list is not None, "the unit sets no SystemCallFilter="
    assert service.get("SystemCallArchitectures") == ["native"]
    action = (service.get("SystemCallErrorNumber") or ["kill"])[-1]
    assert action == "kill" or action.startswith("E"), action
    return SyscallFilter(allow_list, frozenset(names), action)


# Loads the filter (argv[1], SyscallFilter.spec as JSON) into this process, then executes argv[2:]
# under it, as systemd does between fork and exec. Names libseccomp does not know on this
# architecture are skipped, as systemd skips them.
SECCOMP_EXEC = """
import errno, json, os, sys
import pyseccomp as seccomp

spec = json.loads(sys.argv[1])

def action(word):
    if word == "allow":
        return seccomp.ALLOW
    if word == "kill":
        return seccomp.KILL_PROCESS
    return seccomp.ERRNO(getattr(errno, word))

syscalls = seccomp.SyscallFilter(action(spec["default"]))
arch = seccomp.system_arch()
for name in spec["names"]:
    if seccomp.resolve_syscall(arch, name) >= 0:
        syscalls.add_rule(action(spec["listed"]), name)
syscalls.load()
os.execv(sys.argv[2], sys.argv[2:])
"""


def under_filter(syscalls: SyscallFilter, *command: str) -> list[str]:
    return [sys.executable, "-c", SECCOMP_EXEC, json.dumps(syscalls.spec()), *command]


def shipped_filter(groups: dict[str, list[str]]) -> SyscallFilter:
    return unit_syscall_filter(systemd_unit(UNIT)["Service"], groups)


def old_filter(groups: dict[str, list[str]]) -> SyscallFilter:
    return unit_syscall_filter(systemd_unit(OLD_FILTER_LINES)["Service"], groups)


PIN_ONE_CORE = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})"


def test_the_groups_table_is_what_systemd_says(syscall_groups: dict[str, list[str]]) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd is not installed: the table stands as recorded")
    live = parse_syscall_groups(subprocess.run(
        [analyze, "syscall-filter", "--no-pager"], capture_output=True, text=True, check=True,
        timeout=60).stdout)
    service = systemd_unit(UNIT)["Service"]
    assert unit_syscall_filter(service, live) == unit_syscall_filter(service, syscall_groups), \
        "this systemd's groups differ from tests/data/systemd-syscall-filter.txt: re-record it"
    for group, members in syscall_groups.items():
        assert sorted(live[group]) == sorted(members), group


def test_systemd_reads_the_unit_without_a_complaint(tmp_path: Path) -> None:
    """`systemd-analyze verify`: every key known, every @group and system call name known (a
    misspelt one is ignored by systemd, with only a log line to say so)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd is not installed")
    unit = tmp_path / "vault.service"
    unit.write_text(UNIT.read_text().replace(VAULT_BIN, sys.executable))  # an executable here
    result = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_the_filter_model_reads_systemd_s_rules(syscall_groups: dict[str, list[str]]) -> None:
    unit = "[Service]\nSystemCallArchitectures=native\n"
    allowed = unit_syscall_filter(systemd_unit(
        unit + "SystemCallFilter=@system-service\nSystemCallFilter=~@resources\n"
        "SystemCallFilter=sched_setaffinity\nSystemCallErrorNumber=EPERM\n")["Service"],
        syscall_groups)
    assert allowed.allow_list and allowed.action == "EPERM"
    assert allowed.allows("sched_setaffinity") and not allowed.allows("setrlimit")
    assert allowed.allows("execve") and not allowed.allows("mount")  # @default; not listed
    denied = unit_syscall_filter(systemd_unit(
        unit + "SystemCallFilter=~@mount\nSystemCallFilter=umount2\n"
        "SystemCallFilter=~reboot\n")["Service"], syscall_groups)
    assert not denied.allow_list and denied.action == "kill"
    assert not denied.allows("mount") and denied.allows("umount2")
    assert not denied.allows("reboot") and denied.allows("sched_setaffinity")
    reset = unit_syscall_filter(systemd_unit(
        unit + "SystemCallFilter=~@resources\nSystemCallFilter=\n"
        "SystemCallFilter=@default\n")["Service"], syscall_groups)
    assert reset.allow_list and not reset.allows("sched_setaffinity")


def test_the_unit_lets_workers_set_their_affinity_and_kills_on_any_other_filtered_call(
        syscall_groups: dict[str, list[str]]) -> None:
    shipped = shipped_filter(syscall_groups)
    assert shipped.allow_list  # an allow list: what vault needs, nothing else
    for name in ("sched_setaffinity", "sched_getaffinity"):
        assert shipped.allows(name), name
    for name in ("mount", "reboot", "setrlimit", "sched_setscheduler", "ptrace", "kexec_load"):
        assert not shipped.allows(name), name  # still denied: @privileged, the rest of @resources
    assert shipped.action == "kill"  # a probe of a denied call is not answered with an errno
    # The filter that killed every worker, read the same way: the test would have caught it.
    old = old_filter(syscall_groups)
    assert not old.allows("sched_setaffinity") and old.action == "kill"


def test_the_old_filter_kills_whoever_pins_itself_and_the_shipped_one_lets_it(
        syscall_groups: dict[str, list[str]]) -> None:
    """The filter, loaded for real: what a worker's post_fork does, in a bare interpreter."""
    pin = [sys.executable, "-I", "-S", "-c", PIN_ONE_CORE]
    old = subprocess.run(under_filter(old_filter(syscall_groups), *pin), capture_output=True,
                         text=True, timeout=60, check=False)
    assert old.returncode == -signal.SIGSYS, old.stderr
    shipped = subprocess.run(under_filter(shipped_filter(syscall_groups), *pin),
                             capture_output=True, text=True, timeout=60, check=False)
    assert shipped.returncode == 0, shipped.stderr


DEATHS = re.compile(r"Worker \(pid:\d+\) (was sent|exited with code)|Worker failed to boot")


@pytest.fixture
def serve_under(tmp_path: Path, redis_server: Any) -> Iterator[Any]:
    """Start `vault serve --workers N` (production settings, pinning on, metrics in a folder as
    the unit's /run/vault) under a system call filter; returns (url, process, output lines).
    Every server is stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(syscalls: SyscallFilter, workers: int) -> tuple[str, subprocess.Popen[bytes], Lines]:
        port = free_port()
        env = gunicorn_env(redis_server.url, base_url=f"http://127.0.0.1:{port}")
        env.update(VAULT_PIN_WORKERS="1", PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "run-vault"))
        proc = subprocess.Popen(
            under_filter(syscalls, sys.executable, "-m", "vault.cli", "serve", "--bind",
                         f"127.0.0.1:{port}", "--workers", str(workers), "--threads", "2"),
            env=env, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        started.append(proc)
        lines = Lines()
        follow_output(proc, b"Booting worker", what="vault serve under a filter",
                      log_path=tmp_path / f"serve-{port}.log", on_line=lines)
        return f"http://127.0.0.1:{port}", proc, lines

    yield start
    for proc in started:
        stop_process(proc)


def served_and_stopped(url: str, proc: subprocess.Popen[bytes], output: list[str],
                       workers: int) -> None:
    """Answers health, readiness and a create; no worker died or was started twice; stops
    cleanly on SIGTERM."""
    assert requests.get(url + "/healthz", timeout=10).status_code == 200
    ready = requests.get(url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    envelope, _ = sealed("9002")
    created = requests.post(url + "/api/v1/secrets", timeout=10,
                            json={"ticket": "9002", "kind": "wordpress", "envelope": envelope})
    assert created.status_code == 201, created.text
    assert not [line for line in output if DEATHS.search(line)]
    assert sum("Booting worker" in line for line in output) == workers
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0


@pytest.mark.slow
def test_vault_serves_pinned_under_the_unit_s_own_system_call_filter(
        serve_under: Any, syscall_groups: dict[str, list[str]]) -> None:
    """The unit's filter as it stands, which kills whatever it filters: every worker is
    pinned, and vault serves."""
    syscalls = shipped_filter(syscall_groups)
    cores = sorted(os.sched_getaffinity(0))
    url, proc, lines = serve_under(syscalls, len(cores))
    pinned = re.compile(r"Worker (\d+) runs on core (\d+)")
    output = lines.wait_for(lambda out: sum(bool(pinned.search(ln)) for ln in out) == len(cores))
    assert sorted(int(m[2]) for m in map(pinned.search, output) if m) == cores
    assert not [line for line in output if "not pinned" in line]
    served_and_stopped(url, proc, lines.lines, len(cores))


@pytest.mark.slow
@pytest.mark.parametrize(("refusal", "said"), [
    ("old unit", "is killed (SIGSYS): a system call filter forbids sched_setaffinity"),
    ("kill", "is killed (SIGSYS): a system call filter forbids sched_setaffinity"),
    ("EPERM", "the kernel refuses to set a CPU affinity (Operation not permitted)"),
    ("EINVAL", "the kernel refuses to set a CPU affinity (Invalid argument)"),
    ("ENOSYS", "the kernel refuses to set a CPU affinity (Function not implemented)"),
])
def test_vault_serves_unpinned_and_says_so_once_when_affinity_is_refused(
        serve_under: Any, syscall_groups: dict[str, list[str]], refusal: str,
        said: str) -> None:
    """Whatever refuses sched_setaffinity (the unit's old filter; a filter that kills the
    caller or answers EPERM, EINVAL or ENOSYS, as a kernel or a container runtime may), pinning
    on: the master says once why workers are not pinned, and they serve, none killed."""
    if refusal == "old unit":
        syscalls = old_filter(syscall_groups)
    else:
        syscalls = SyscallFilter(False, frozenset({"sched_setaffinity"}), refusal)
    url, proc, lines = serve_under(syscalls, 2)
    output = lines.wait_for(lambda out: sum("Booting worker" in ln for ln in out) == 2)
    warnings = [line for line in output if "Workers are not pinned to cores" in line]
    assert len(warnings) == 1 and said in warnings[0], output
    assert "VAULT_PIN_WORKERS=0" in warnings[0]
    assert not [line for line in output if "runs on core" in line]
    served_and_stopped(url, proc, lines.lines, 2)


# -- the operator's documented commands, run as written --------------------------------------------
#
# deploy/README.md's commands are taken from the document itself (a change there changes what is
# tested), and run with real shells against a temporary env file: /etc/vault/vault.env and
# /opt/vault/bin/vault are the only words replaced, by a file of the test's and a stand-in vault
# that prints the environment it was given.

DEPLOY_README = DEPLOY / "README.md"
ENV_EXAMPLE = DEPLOY / "vault.env.example"
ETC_ENV = "/etc/vault/vault.env"
VAULT_BIN = "/opt/vault/bin/vault"


def doc_blocks(text: str, heading: str) -> list[list[str]]:
    """The ```sh blocks of the `## heading...` section, each as its commands: continuation lines
    joined, blank and comment-only lines left out."""
    section = re.search(rf"^## {re.escape(heading)}.*?(?=^## |\Z)", text, re.M | re.S)
    assert section, heading
    blocks = []
    for body in re.findall(r"^```sh\n(.*?)^```", section.group(0), re.M | re.S):
        commands, pending = [], ""
        for line in body.splitlines():
            if line.endswith("\\"):
                pending += line[:-1]
                continue
            line, pending = pending + line, ""
            if line.strip() and not line.lstrip().startswith("#"):
                commands.append(line.strip())
        blocks.append(commands)
    return blocks


def doc_commands(heading: str) -> list[str]:
    return [c for block in doc_blocks(DEPLOY_README.read_text(), heading) for c in block]


def sourcing_commands() -> list[str]:
    """Every documented command that reads the env file with a shell (anywhere in the doc,
    inline code included)."""
    text = DEPLOY_README.read_text()
    found = [c for block in re.findall(r"^```sh\n(.*?)^```", text, re.M | re.S)
             for c in block.splitlines()]
    found += [c for c in re.findall(r"`([^`\n]+)`", text) if c not in found]
    return [c for c in found if f". {ETC_ENV}" in c and VAULT_BIN in c]


# Values a real site has: spaces, quotes' neighbours, the characters a URL and a key ring use.
FILLED = {
    "VAULT_BASE_URL": "https://vault.example.com",
    "VAULT_REDIS_URL": "redis://vault:pa%24%24-word_1@127.0.0.1:6379/0",
    "VAULT_SECRET_KEY": "q0sV-7ylq_3cTg2yZsmj1u0HL2Kc5qfDyCz8sMwYk4fK9nqf3jtcL0w5v9a1xT2e",
    "VAULT_KEYS": "k2:QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWY,"
                  "k1:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY",
}


def filled_env_file(path: Path, *, quote: bool = True, extra: str = "") -> Path:
    """The example file as an operator fills it in: each CHANGE_ME replaced, every optional
    line taken out of its comment (VAULT_OIDC_NAME='Example Corp' among them)."""
    lines = []
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"#VAULT_\w+=", line):
            line = line[1:]
        name, _, _ = line.partition("=")
        if name in FILLED:
            line = f"{name}={FILLED[name]}"
        if not quote:
            line = line.replace("'", "")
        lines.append(line)
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def systemd_reads(path: Path) -> dict[str, str]:
    """What systemd's EnvironmentFile= (and Compose's env_file) make of the file, for the forms
    the example file allows: NAME=value, or NAME='value' with the quotes taken off (no quote
    inside; systemd.exec(5))."""
    values = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == "'":
            value = value[1:-1]
        values[name.strip()] = value
    return values


@pytest.fixture
def stand_in_vault(tmp_path: Path) -> Path:
    """An executable that writes its arguments and VAULT_* environment (JSON) to a file."""
    out = tmp_path / "vault-ran.json"
    script = tmp_path / "bin" / "vault"
    script.parent.mkdir()
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      f"json.dump({{'argv': sys.argv[1:], 'env': {{k: v for k, v in "
                      f"os.environ.items() if k.startswith('VAULT_')}}}}, open({str(out)!r}, 'w'))\n")
    script.chmod(0o755)
    return script


def run_documented(command: str, env_file: Path, vault: Path, shell: str) -> \
        subprocess.CompletedProcess[str]:
    command = command.replace(ETC_ENV, str(env_file)).replace(VAULT_BIN, str(vault))
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    return subprocess.run([shell, "-c", command], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


SHELLS = [s for s in ("sh", "bash", "dash") if shutil.which(s)]


def test_the_example_env_file_is_read_alike_by_sh_systemd_and_compose() -> None:
    """Every line (the optional ones too) is a form the three readers agree on."""
    portable = re.compile(r"#?[A-Z][A-Z0-9_]*=([A-Za-z0-9_./:@%+,=~-]*|'[^']*')")
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"#?[A-Z_]+=", line):
            assert portable.fullmatch(line), line
    assert "#VAULT_OIDC_NAME='Example Corp'" in ENV_EXAMPLE.read_text().splitlines()


ENVIRONMENT_D_GENERATOR = Path(
    "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator")


def test_systemd_s_own_parser_reads_the_filled_env_file_as_the_model_does(
        tmp_path: Path) -> None:
    """systemd's env-file parser (the one of EnvironmentFile=, run here through the
    environment.d generator, which prints what it read) against `systemd_reads`, which the sh
    test below holds the documented commands to."""
    if not ENVIRONMENT_D_GENERATOR.exists():
        pytest.skip("systemd is not installed")
    folder = tmp_path / "environment.d"
    folder.mkdir()
    env_file = filled_env_file(folder / "vault.conf")
    printed = subprocess.run([str(ENVIRONMENT_D_GENERATOR)], capture_output=True, text=True,
                             timeout=60, check=True, env={"XDG_CONFIG_HOME": str(tmp_path)})
    read = dict(shlex.split(line)[0].split("=", 1) for line in printed.stdout.splitlines())
    # (The generator leaves empty values out, as environment.d does; they are not the question.)
    assert {k: v for k, v in read.items() if k.startswith("VAULT_")} == {
        k: v for k, v in systemd_reads(env_file).items() if v}
    assert read["VAULT_OIDC_NAME"] == "Example Corp"


def test_the_documented_commands_read_the_env_file_with_values_with_spaces(
        tmp_path: Path, stand_in_vault: Path) -> None:
    commands = sourcing_commands()
    # The first admin and the key rotation.
    subcommands = {m[1] for c in commands if (m := re.search(rf"{VAULT_BIN} (\w+ \w+)", c))}
    assert {"agent add", "keys rotate"} <= subcommands, commands
    env_file = filled_env_file(tmp_path / "vault.env",
                               extra="VAULT_HELPSCOUT_FRAME_ANCESTORS='https://a.example https://b.example'\n")
    expected = systemd_reads(env_file)
    assert expected["VAULT_OIDC_NAME"] == "Example Corp"
    for shell in SHELLS:
        for command in commands:
            ran = tmp_path / "vault-ran.json"
            ran.unlink(missing_ok=True)
            result = run_documented(command, env_file, stand_in_vault, shell)
            assert result.returncode == 0, (shell, command, result.stderr)
            assert result.stderr == "", (shell, command, result.stderr)
            seen = json.loads(ran.read_text())
            assert seen["env"] == expected, (shell, command)
            assert " ".join(seen["argv"]) in command


def test_a_value_sh_cannot_read_stops_the_documented_commands(
        tmp_path: Path, stand_in_vault: Path) -> None:
    """The old example's unquoted `VAULT_OIDC_NAME=Example Corp`: sh runs `Corp` and would go on
    without the setting; the documented commands stop, non-zero, and vault never runs."""
    env_file = filled_env_file(tmp_path / "vault.env", quote=False)
    assert "VAULT_OIDC_NAME=Example Corp" in env_file.read_text().splitlines()
    for shell in SHELLS:
        for command in sourcing_commands():
            result = run_documented(command, env_file, stand_in_vault, shell)
            assert result.returncode != 0, (shell, command)
            assert "Corp" in result.stderr
            assert not (tmp_path / "vault-ran.json").exists()


def test_vault_starts_only_once_the_env_file_is_filled_in(tmp_path: Path) -> None:
    """The documented lines that start vault (systemd and compose), run with a stand-in
    systemctl and docker: nothing starts while a CHANGE_ME is left, and grep names its lines."""
    calls = tmp_path / "calls"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("systemctl", "docker"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> {calls}\n')
        (bin_dir / tool).chmod(0o755)
    starts = {"2b.": ("systemctl enable --now vault", ETC_ENV),
              "2a.": ("docker compose -f deploy/compose.yaml up -d --build", "deploy/vault.env")}
    for heading, (start, env_path) in starts.items():
        [line] = [c for c in doc_commands(heading) if start in c]
        for env_file, started in ((tmp_path / "example.env", False),
                                  (tmp_path / "filled.env", True)):
            if started:
                filled_env_file(env_file)
            else:
                shutil.copy(ENV_EXAMPLE, env_file)
            calls.unlink(missing_ok=True)
            result = subprocess.run(
                ["sh", "-c", line.replace(env_path, str(env_file))], capture_output=True,
                text=True, timeout=60, check=False, cwd=str(ROOT),
                env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
            if started:
                assert result.returncode == 0, result.stderr
                assert calls.read_text().splitlines() == [start]
            else:
                assert result.returncode != 0 and not calls.exists(), line
                assert "VAULT_SECRET_KEY=CHANGE_ME" in result.stdout


def test_the_documented_steps_come_in_order() -> None:
    """Each env file is copied, then opened to be filled in as the last command of its block
    (whatever is pasted after an editor command is typed into the editor), and only then is
    vault started or asked for the first admin; on the VM, the unit and its documentation are
    installed and systemd reloaded before the unit is enabled."""
    for heading, env_path, start in (
            ("2a.", "deploy/vault.env", "up -d --build"),
            ("2b.", ETC_ENV, "systemctl enable --now vault")):
        blocks = doc_blocks(DEPLOY_README.read_text(), heading)
        commands = [c for block in blocks for c in block]

        def at(words: str, after: int = -1, where: list[str] = commands) -> int:
            """Where the first command with `words` after command `after` is."""
            found = [i for i, c in enumerate(where) if words in c and i > after]
            assert found, (words, after, where)
            return found[0]

        edit = f"${{EDITOR:-vi}} {env_path}"
        assert at("vault.env.example") < at(edit) < at(start) < at("agent add")
        assert [block for block in blocks if block and edit in block[-1]]
        if env_path == ETC_ENV:
            unit = at("/etc/systemd/system/vault.service")
            assert at("daemon-reload", after=unit) < at(start)
            assert at("/usr/share/doc/vault") < at(start)


def test_the_unit_s_documentation_is_where_the_documented_install_puts_it(tmp_path: Path) -> None:
    """The VM section's `install` commands, run into a scratch root: the unit's Documentation=
    files, its EnvironmentFile= and the unit itself are there afterwards."""
    skipped = []
    for made_by_apt_get in ("etc/redis", "etc/caddy", "etc/systemd/system"):
        (tmp_path / made_by_apt_get).mkdir(parents=True)
    for command in doc_commands("2b."):
        words = shlex.split(command)
        if words[0] != "install":
            continue
        args, i = [], 1
        while i < len(words):
            if words[i] in {"-o", "-g"}:  # owners: this test's root owns the scratch copies
                i += 2
                continue
            word = words[i]
            args.append(str(tmp_path) + word if word.startswith("/") else word)
            i += 1
        sources = [a for a in args[:-1] if not a.startswith("-") and not a.isdigit()
                   and not a.startswith(str(tmp_path))]
        if any(not (ROOT / s).exists() for s in sources):
            skipped.append(command)  # a site's own file, made in step 1
            continue
        subprocess.run(["install", *args], check=True, cwd=str(ROOT), timeout=60)
    assert [c for c in skipped if "users.local.acl" not in c] == []
    unit = systemd_unit(tmp_path / "etc/systemd/system/vault.service")
    docs = unit["Unit"]["Documentation"][-1].split()
    assert docs and all(url.startswith("file:///") for url in docs)
    for url in docs:
        assert (tmp_path / url.removeprefix("file:///")).is_file(), url
    assert (tmp_path / unit["Service"]["EnvironmentFile"][-1].lstrip("/")).is_file()
    assert (tmp_path / "etc/vault/vault.env").stat().st_mode & 0o077 == 0


# -- worker pinning: one decision, in every shipped set-up -------------------------------------------


def pinning_in(environment: dict[str, str]) -> bool:
    """Whether `vault serve` pins its workers given these settings (the default if unset)."""
    from vault.serve import pin_workers

    return pin_workers(environment)


def test_every_shipped_set_up_pins_workers_as_vault_serve_does(
        dockerfile: list[Stage], compose: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    default = pinning_in({})
    # The README's configuration table states the same default.
    row = re.search(r"^\| `VAULT_PIN_WORKERS` \| `([01])` \|", (ROOT / "README.md").read_text(), re.M)
    assert row and (row.group(1) == "1") == default
    # The systemd unit: its Environment= lines, then the example env file it reads.
    service = systemd_unit(UNIT)["Service"]
    unit_env = dict(word.split("=", 1) for line in service.get("Environment", [])
                    for word in shlex.split(line))
    unit_env.update({k: v for k, v in systemd_reads(ENV_EXAMPLE).items()
                     if k == "VAULT_PIN_WORKERS"})
    # Compose: the service's environment, then its env file (the same example).
    compose_env = {k: str(v) for k, v in compose["services"]["vault"]["environment"].items()}
    compose_env.update({k: v for k, v in systemd_reads(ENV_EXAMPLE).items()
                        if k == "VAULT_PIN_WORKERS"})
    set_ups = {"systemd unit": unit_env, "compose": compose_env,
               "Dockerfile": dockerfile[-1].env()}
    for name, environment in set_ups.items():
        assert pinning_in(environment) == default, name
    # deploy/gunicorn.conf.py, run as gunicorn runs it, with no VAULT_* set.
    for name in list(os.environ):
        if name.startswith("VAULT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    conf = runpy.run_path(str(DEPLOY / "gunicorn.conf.py"))
    assert ("pre_fork" in conf and "post_fork" in conf) == default
