"""Atheris target: the configuration parser (`vault.config.load`) on any VAULT_* strings.

Properties, for every input:
- `load` returns a Config or raises ConfigError; nothing else escapes;
- a ConfigError never repeats a value it was given (values may be secrets);
- what `load` accepts, the app can use: every rate limit parses as flask-limiter parses it at
  start-up, the Redis timeouts vault derives from it are accepted by a socket (redis-py sets
  them on every connection), and the WAIT timeout is one Redis accepts.

CI runs it for a fixed number of inputs from a fixed seed (tests/test_fuzz_parsers.py). By hand,
for as long as you like, keeping what it learns in a corpus folder:

    mkdir -p .cache/fuzz/config
    .venv/bin/python tests/fuzz/fuzz_config.py -max_total_time=600 \
        -artifact_prefix=.cache/fuzz/ .cache/fuzz/config

(a crash leaves its input in .cache/fuzz/crash-*; pass that file alone to replay it)
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

# Libraries are imported before the instrumented block: only vault's own code is instrumented.
import atheris
import flask  # noqa: F401
from limits import parse_many

with atheris.instrument_imports():
    from vault import config as config_mod
    from vault.errors import ConfigError
    from vault.redis_client import _timeouts

NAMES = sorted(config_mod._COERCE)  # every setting the loader knows
# Text that may legitimately appear in a message: the loader's own source (its message
# templates) and the setting names.
OWN_TEXT = Path(config_mod.__file__).read_text() + " ".join(NAMES).upper()
SOCKET = socket.socket()
RATES = ("ratelimit_login_account", "ratelimit_login_address", "ratelimit_submit",
         "ratelimit_reveal", "ratelimit_webhook")


def check_usable(config: config_mod.Config) -> None:
    for name in RATES:
        parse_many(getattr(config, name))  # what vault.extension.build does at start-up
    for timeout in _timeouts(config).values():  # the timeouts every Redis client is given
        SOCKET.settimeout(timeout)  # what redis-py does with them on every connection
    # Redis refuses `WAIT n <negative>` ("timeout is negative").
    assert config.redis_wait_timeout_ms >= 0, config.redis_wait_timeout_ms


UNITS = ["second", "seconds", "minute", "hour", "day", "month", "year", "week", "fortnight",
         "ms", "s", "m"]


def setting_text(fdp: atheris.FuzzedDataProvider) -> str:
    """A setting's text: the shapes settings take (numbers of every size, floats with their
    infinities and NaN, rates, booleans), or any text at all."""
    shape = fdp.ConsumeIntInRange(0, 6)
    if shape == 0:
        return str(fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 16)))
    if shape == 1:
        return repr(fdp.ConsumeFloat())
    if shape == 2:
        sep = fdp.PickValueInList(["/", " per ", "/ ", ";", ","])
        rate = f"{fdp.ConsumeIntInRange(0, 10**6)}{sep}{fdp.PickValueInList(UNITS)}"
        return rate if fdp.ConsumeBool() else rate + ";" + setting_text(fdp)
    if shape == 3:
        return fdp.PickValueInList(["1", "0", "true", "false", "yes", "off", "", " "])
    return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 64))


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    environ: dict[str, str] = {}
    mapping: dict[str, str] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 8)):
        target = mapping if fdp.ConsumeBool() else environ
        if fdp.ConsumeIntInRange(0, 15) == 0:
            name = fdp.ConsumeUnicodeNoSurrogates(12)  # an unknown name, now and then
        else:
            name = "VAULT_" + fdp.PickValueInList(NAMES).upper()
        target[name] = setting_text(fdp)
    try:
        config = config_mod.load(mapping, environ=environ)
    except ConfigError as exc:
        message = str(exc)
        names = " ".join([*mapping, *environ])  # a name may be quoted (an unknown one)
        for value in [*mapping.values(), *environ.values()]:
            if len(value) >= 6 and value in message and value not in OWN_TEXT \
                    and value not in names:
                raise AssertionError(f"a ConfigError repeats a value: {message!r}") from None
        return
    check_usable(config)


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
