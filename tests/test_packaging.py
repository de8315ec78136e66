"""Installing vault prints nothing to worry a new user (issue 12, point 8).

setuptools' flat-layout discovery used to print a "Please be careful with folders in your
working directory with the same name as your package" block on every fresh install; the
project now names its package directory outright (pyproject.toml, `[tool.setuptools]`). This
installs the working tree the way scripts/_venv.sh does, in a throwaway venv, and reads
everything the build said (`-v`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


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
