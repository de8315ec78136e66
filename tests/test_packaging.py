"""Installing vault prints nothing to worry a new user (issue 12, point 8).

setuptools' flat-layout discovery used to print a "Please be careful with folders in your
working directory with the same name as your package" block on every fresh install; the
project now names its package directory outright (pyproject.toml, `[tool.setuptools]`). This
installs the working tree the way scripts/_venv.sh does, in a throwaway venv, and reads
everything the build said (`-v`).
"""

from __future__ import annotations

import subprocess
import venv
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
