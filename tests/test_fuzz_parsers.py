"""The parsers fuzzed with atheris (libFuzzer, coverage-guided): tests/fuzz/fuzz_*.py.

Each target runs in its own process for a fixed number of inputs from a fixed seed, starting
from an empty corpus, so CI's run is the same every time; a crash (an exception other than the
documented errors, or a broken property) fails the test with the target's output and the input
that did it (written under pytest's tmp folder). What each target checks is in its docstring.

Longer, by hand: `VAULT_FUZZ_LONG=1` runs every target here for VAULT_FUZZ_SECONDS (default
300) each from a random seed; or run one target directly, keeping a corpus between runs:

    mkdir -p .cache/fuzz/envelope
    .venv/bin/python tests/fuzz/fuzz_envelope.py -max_total_time=3600 .cache/fuzz/envelope

The bugs these targets found are pinned below as plain tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vault import config as config_mod
from vault.errors import ConfigError

FUZZ = Path(__file__).resolve().parent / "fuzz"
LONG = os.environ.get("VAULT_FUZZ_LONG") == "1"
SECONDS = int(os.environ.get("VAULT_FUZZ_SECONDS", "300"))
# Inputs per target in CI: a few seconds each on two cores.
RUNS = {"fuzz_config.py": 100_000, "fuzz_envelope.py": 100_000, "fuzz_webhooks.py": 20_000}


@pytest.mark.parametrize("target", sorted(RUNS))
def test_target_survives_its_budget(target: str, tmp_path: Path) -> None:
    budget = [f"-max_total_time={SECONDS}"] if LONG else [f"-atheris_runs={RUNS[target]}",
                                                          "-seed=1"]
    proc = subprocess.run(
        [sys.executable, str(FUZZ / target), *budget, f"-artifact_prefix={tmp_path}/"],
        capture_output=True, text=True, timeout=SECONDS + 120 if LONG else 300,
        env={**os.environ, "PYTHONHASHSEED": "0"})
    output = proc.stdout + proc.stderr
    tail = "\n".join(output.splitlines()[-40:])
    assert proc.returncode == 0, f"{target} crashed:\n{tail}"
    if not LONG:
        assert f"Done {RUNS[target]} " in output, tail
    crashes = list(tmp_path.iterdir())
    assert not crashes, crashes
    print(next((line for line in reversed(output.splitlines()) if " cov: " in line), ""))


# -- what the config target found, pinned -----------------------------------------------------------

@pytest.mark.parametrize("name,value", [
    # Accepted, then every call to Redis raised OverflowError or ValueError: a 500, always.
    ("VAULT_REDIS_CONNECT_TIMEOUT", "7.160887147512159e+306"),
    ("VAULT_REDIS_SOCKET_TIMEOUT", "nan"),
    ("VAULT_REDIS_SOCKET_TIMEOUT", "inf"),
    # Accepted, then every WAIT failed ("timeout is negative") once replicas were configured.
    ("VAULT_REDIS_WAIT_TIMEOUT_MS", "-2"),
    # Accepted by the loader, then create_app failed with the limiter's ValueError (a traceback
    # instead of a ConfigError naming the setting).
    ("VAULT_RATELIMIT_REVEAL", "5/week"),
    ("VAULT_RATELIMIT_SUBMIT", "30/minute;1/fortnight"),
])
def test_settings_the_app_cannot_use_are_refused_by_the_loader(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        config_mod.load({}, environ={"VAULT_ENV": "development", name: value})
    assert value not in str(info.value)
    assert name in str(info.value) or "Redis timeouts" in str(info.value)


def test_sane_timeouts_and_rates_still_load() -> None:
    loaded = config_mod.load({}, environ={
        "VAULT_ENV": "development", "VAULT_REDIS_SOCKET_TIMEOUT": "0.25",
        "VAULT_REDIS_CONNECT_TIMEOUT": "3600", "VAULT_REDIS_WAIT_TIMEOUT_MS": "0",
        "VAULT_RATELIMIT_REVEAL": "10/second;600 per hour"})
    assert loaded.redis_socket_timeout == 0.25 and loaded.redis_wait_timeout_ms == 0
    assert loaded.ratelimit_reveal == "10/second;600 per hour"
