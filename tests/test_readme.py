"""The docs stay true: two set-up commands, CI runs the test one, every setting documented,
every relative link resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

from vault.config import _COERCE, _MAPPING_ONLY

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIGURATION = ROOT / "docs" / "configuration.md"


def section(title: str, text: str = README, where: str = "README") -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    assert match, f"{where} has no '## {title}' section"
    return match.group(1)


def test_the_readme_has_exactly_two_setup_commands():
    blocks = re.findall(r"```sh\n(.*?)```", section("Two commands"), re.S)
    assert [b.strip() for b in blocks] == ["./scripts/serve", "./scripts/test"]
    for script in ("scripts/serve", "scripts/test"):
        assert (ROOT / script).stat().st_mode & 0o111, f"{script} is not executable"


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec bash scripts/test\s*$", ci, re.M)


def configuration_table() -> str:
    return section("Every setting", CONFIGURATION.read_text(), "docs/configuration.md")


def test_every_setting_is_in_the_configuration_table():
    documented = set(re.findall(r"`(VAULT_[A-Z0-9_]+)`", configuration_table()))
    for name in set(_COERCE) - _MAPPING_ONLY:
        assert f"VAULT_{name.upper()}" in documented, f"VAULT_{name.upper()} is not documented"


def test_every_variable_the_code_reads_is_in_the_configuration_table():
    """Settings read outside vault.config (`VAULT_BIND` by `vault serve`, `VAULT_URL` by the
    command line) are documented too: a name is any complete `VAULT_*` string in vault/."""
    documented = set(re.findall(r"`(VAULT_[A-Z0-9_]+)`", configuration_table()))
    read = {name for path in (ROOT / "vault").rglob("*.py")
            for name in re.findall(r"[\"'](VAULT_[A-Z0-9_]*[A-Z0-9])[\"']", path.read_text())}
    assert {"VAULT_BIND", "VAULT_URL", "VAULT_TOKEN"} <= read
    assert read - documented == set()


def test_the_readme_names_every_setting_production_refuses_to_start_without():
    table = section("Settings a deployment must set")
    for name in ("VAULT_REDIS_URL", "VAULT_SECRET_KEY", "VAULT_KEYS", "VAULT_BASE_URL"):
        assert f"`{name}`" in table, f"{name} is not in the README's settings"


DOCS = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md")),
        ROOT / "bench" / "README.md", ROOT / "deploy" / "README.md"]
# [text](target) and [text]: target, outside code; images too.
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)|^\[[^\]]+\]:\s*(\S+)", re.M)


def without_fences(text: str) -> str:
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def without_code(text: str) -> str:
    return re.sub(r"`[^`\n]*`", "", without_fences(text))


def anchors(path: Path) -> set[str]:
    """GitHub's anchors of a Markdown file's headings (a heading's code keeps its text)."""
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", without_fences(path.read_text()), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def relative_links(path: Path) -> list[str]:
    links = [a or b for a, b in _LINK.findall(without_code(path.read_text()))]
    return [link for link in links if not re.match(r"^[a-z][a-z0-9+.-]*:", link)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_points_to_an_existing_file(doc: Path):
    broken = []
    for link in relative_links(doc):
        target, _, fragment = link.partition("#")
        resolved = (doc.parent / unquote(target)).resolve() if target else doc
        missing = not resolved.exists() or not resolved.is_relative_to(ROOT)
        if missing or (fragment and resolved.suffix == ".md" and fragment not in anchors(resolved)):
            broken.append(link)
    assert broken == [], f"{doc.relative_to(ROOT)} links to what does not exist: {broken}"


def test_the_link_check_sees_links_and_refuses_a_broken_one(tmp_path: Path):
    """The check above cannot pass by finding nothing."""
    assert len(relative_links(ROOT / "README.md")) >= 10
    doc = tmp_path / "x.md"
    doc.write_text("# Title\n[ok](x.md#title) [bad](missing.md) `[code](nowhere.md)`\n")
    assert relative_links(doc) == ["x.md#title", "missing.md"]
    assert anchors(doc) == {"title"}


def test_nothing_in_the_repository_points_outside_it_for_the_contract():
    """The contract is docs/api.md and docs/security-model.md: no file names a brief that
    someone who clones vault cannot read."""
    outside = "PRODUCT" + ".md"  # spelt so, this file does not name it either
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    citing = [name for name in tracked if name and (ROOT / name).is_file()
              and outside.encode() in (ROOT / name).read_bytes()]
    assert citing == []


def test_the_license_is_the_one_pyproject_declares():
    text = (ROOT / "LICENSE").read_text()
    assert 'license = "MIT"' in (ROOT / "pyproject.toml").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 vault contributors" in text


def test_the_readme_is_a_front_door_and_measurements_live_in_the_bench_docs():
    assert len(README.splitlines()) <= 160
    assert "bench/results/" not in README and "µs" not in README
    bench = (ROOT / "bench" / "README.md").read_text()
    for kept in ("2026-12-05-2c.json", "CPU budget", "Pinning on a shared host", "--sweep"):
        assert kept in bench


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
