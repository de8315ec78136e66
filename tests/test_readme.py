"""The README stays true: two set-up commands, CI runs the test one, every setting documented."""

from __future__ import annotations

import re
from pathlib import Path

from vault.config import _COERCE, _MAPPING_ONLY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def test_the_readme_has_exactly_two_setup_commands():
    blocks = re.findall(r"```sh\n(.*?)```", section("Two commands"), re.S)
    assert [b.strip() for b in blocks] == ["./scripts/serve", "./scripts/test"]
    for script in ("scripts/serve", "scripts/test"):
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\s*$", ci, re.M)


def test_every_setting_is_in_the_configuration_table():
    documented = set(re.findall(r"`(VAULT_[A-Z0-9_]+)`", section("Configuration")))
    for name in set(_COERCE) - _MAPPING_ONLY:
        assert f"VAULT_{name.upper()}" in documented, f"VAULT_{name.upper()} is not documented"


def test_every_test_that_security_md_cites_exists():
    """SECURITY.md backs each claim with a test; a renamed or deleted test must not leave a
    claim standing on nothing."""
    text = (ROOT / "SECURITY.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)(?:::(\w+))?`", text)
    # `::name` right after another citation's file refers to that same file.
    cited += [(file, name) for file, rest in re.findall(r"`(tests/[\w/]+\.py)::\w+`((?:, `::\w+`)+)",
                                                         text)
              for name in re.findall(r"`::(\w+)`", rest)]
    assert len(cited) >= 20
    for file, name in cited:
        path = ROOT / file
        assert path.is_file(), f"SECURITY.md cites {file}, which does not exist"
        if name:
            assert re.search(rf"^def {name}\(", path.read_text(), re.M), \
                f"SECURITY.md cites {file}::{name}, which does not exist"
