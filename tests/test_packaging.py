"""Installing vault prints nothing to worry a new user (issue 12, point 8), and what it installs
is what its code imports (issue 22).

setuptools' flat-layout discovery used to print a "Please be careful with folders in your
working directory with the same name as your package" block on every fresh install; the
project now names its package directory outright (pyproject.toml, `[tool.setuptools]`). This
installs the working tree the way scripts/_venv.sh does, in a throwaway venv, and reads
everything the build said (`-v`).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.installs
def test_an_editable_install_builds_without_setuptools_warning_block(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "-v", "--no-deps", "--disable-pip-version-check",
         "-e", str(ROOT)], capture_output=True, text=True, timeout=600, check=False)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    assert "Successfully installed vault" in said
    assert "folders in your working directory" not in said, said[-3000:]
    assert "SetuptoolsDeprecationWarning" not in said, said[-3000:]
    # The package it installed is this tree's, templates and translations included.
    # (found, not imported: --no-deps left Flask out)
    where = subprocess.run([str(python), "-c", "import importlib.util, pathlib; p = pathlib."
                            "Path(importlib.util.find_spec('vault').origin).parent; "
                            "print(p, (p / 'templates').is_dir())"],
                           capture_output=True, text=True, check=True, timeout=60).stdout
    assert where.split() == [str(ROOT / "vault"), "True"]


@pytest.mark.installs
def test_a_built_wheel_carries_the_lua_scripts_and_runs_them_from_there(tmp_path: Path) -> None:
    # The store's scripts are package data: a wheel without them would install a vault whose
    # first import fails. Built as a release is (pip wheel, build isolation) from a copy of the
    # sources (no build/ or egg-info of an earlier build to lean on), then imported from the
    # unpacked wheel rather than from this tree.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "vault", source / "vault", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check",
         "-w", str(tmp_path), str(source)], capture_output=True, text=True, timeout=600,
        check=False)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    (wheel,) = tmp_path.glob("vault-*.whl")
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if name.endswith(".lua")}
    assert shipped == {f"vault/storage/lua/{p.name}" for p in (ROOT / "vault/storage/lua").iterdir()}
    unpacked = tmp_path / "unpacked"
    zipfile.ZipFile(wheel).extractall(unpacked)
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); import vault.storage.scripts as s; "
             "print(s.__file__.startswith(sys.argv[1]), s.SCRIPTS['REVEAL'].sha)")
    said = subprocess.run([sys.executable, "-c", probe, str(unpacked)], capture_output=True,
                          text=True, check=True, timeout=60).stdout.split()
    assert said == ["True", "9e810f8bbeff8e544904fe76ddf0fc793bfc594b"]


def _name(requirement: str) -> str:
    """A requirement's distribution name, normalised (PEP 503): "fakeredis[lua]>=2" → fakeredis."""
    found = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert found, requirement
    return re.sub(r"[-_.]+", "-", found.group(0)).lower()


def _imported_distributions() -> dict[str, set[str]]:
    """{distribution: the vault/ files that import it}, every import counted (in functions too)."""
    owners = importlib.metadata.packages_distributions()
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / "vault").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top == "vault" or top in sys.stdlib_module_names:
                    continue
                assert top in owners, f"{path}: {top} is imported but not installed"
                for dist in owners[top]:
                    found.setdefault(_name(dist), set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_dependencies_are_what_vault_imports() -> None:
    """Issue 22: each library vault/ imports is declared (not left to another's dependencies),
    and each declared one is imported: flask-limiter, whose engine `limits` is what vault uses,
    is not. The embedded demo's fakeredis is the `demo` extra, out of a production install;
    the tests, which run the demo, install it."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    declared = {_name(r) for r in project["dependencies"]}
    extras = project["optional-dependencies"]
    demo = {_name(r) for r in extras["demo"]}
    imported = _imported_distributions()
    assert demo == {"fakeredis"}
    assert set(imported) - declared == demo, imported
    assert declared - set(imported) == set()
    assert "flask-limiter" not in declared and "limits" in declared
    assert "vault[demo]" in extras["test"]


def test_libraries_whose_private_parts_vault_uses_have_an_upper_bound() -> None:
    """Flask (the JSON provider's `_prepare_response_obj`), gunicorn (the `Server` banner) and
    redis-py (the script runner's lane), and `limits`, whose key names are in the Redis layout."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    bounded = {_name(r): r for r in project["dependencies"] if "<" in r}
    assert set(bounded) >= {"flask", "gunicorn", "redis", "limits"}, bounded
    pinned = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                  if "==" in line and not line.startswith("#"))
    for name, requirement in bounded.items():
        version = next(v for d, v in pinned.items() if _name(d) == name)
        below = requirement.partition("<")[2]
        as_tuple = [int(part) for part in below.split(".")]
        assert [int(part) for part in version.split(".")[:len(as_tuple)]] < as_tuple, (
            f"constraints.txt pins {name} {version}, at or above its bound {requirement}")
