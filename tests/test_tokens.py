"""Bearer tokens: shapes, digests and comparison."""

from __future__ import annotations

import hashlib
import re

import pytest

from vault.crypto import (
    AGENT_TOKEN,
    API_KEY,
    MANAGE_TOKEN,
    PREFIXES,
    SESSION,
    b64url_decode,
    constant_time_equals,
    is_token,
    new_token,
    token_digest,
)

TOKEN = "vt_" + "A" * 42 + "E"


def test_prefixes_are_the_documented_ones() -> None:
    assert (AGENT_TOKEN, API_KEY, MANAGE_TOKEN, SESSION) == ("vt_", "vk_", "vm_", "vs_")


@pytest.mark.parametrize("prefix", PREFIXES)
def test_new_token_is_its_prefix_and_32_random_bytes(prefix: str) -> None:
    token = new_token(prefix)
    assert token.startswith(prefix)
    assert len(token) == len(prefix) + 43
    assert len(b64url_decode(token[len(prefix) :])) == 32


@pytest.mark.parametrize("prefix", PREFIXES)
def test_new_token_passes_its_own_shape_check(prefix: str) -> None:
    assert is_token(new_token(prefix), prefix)


def test_new_token_differs_each_time() -> None:
    assert new_token(AGENT_TOKEN) != new_token(AGENT_TOKEN)


@pytest.mark.parametrize("prefix", ["", "vx_", "vt", "VT_"])
def test_new_token_refuses_an_unknown_prefix(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        new_token(prefix)


def test_digest_is_lowercase_hex_sha256_of_the_token() -> None:
    digest = token_digest(TOKEN)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert digest == hashlib.sha256(TOKEN.encode("utf-8")).hexdigest()


def test_digest_is_deterministic() -> None:
    assert token_digest(TOKEN) == token_digest(TOKEN)


def test_digest_differs_for_different_tokens() -> None:
    assert token_digest(TOKEN) != token_digest(TOKEN[:-1] + "I")


def test_is_token_accepts_the_exact_shape() -> None:
    assert is_token(TOKEN, AGENT_TOKEN)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "vt_",
        TOKEN[:-1],
        TOKEN + "A",
        TOKEN[:-1] + "F",
        "vk_" + TOKEN[3:],
        "VT_" + TOKEN[3:],
        " " + TOKEN,
        TOKEN + "\n",
        TOKEN[:-2] + "+E",
        TOKEN[:-2] + "=E",
        TOKEN[:-2] + "éE",
        TOKEN[:-2] + "\ud800E",
    ],
    ids=[
        "empty",
        "prefix-only",
        "42-chars",
        "44-chars",
        "non-canonical-last-char",
        "other-prefix",
        "uppercase-prefix",
        "leading-space",
        "trailing-newline",
        "standard-alphabet",
        "padding-char",
        "non-ascii",
        "lone-surrogate",
    ],
)
def test_is_token_rejects_a_near_miss(value: str) -> None:
    assert not is_token(value, AGENT_TOKEN)


@pytest.mark.parametrize("value", [None, 42, TOKEN.encode("ascii")], ids=repr)
def test_is_token_rejects_what_is_not_a_string(value: object) -> None:
    assert not is_token(value, AGENT_TOKEN)


def test_constant_time_equals_is_true_for_equal_strings() -> None:
    assert constant_time_equals(TOKEN, "vt_" + "A" * 42 + "E")


@pytest.mark.parametrize("other", ["", TOKEN[:-1], TOKEN + "A", TOKEN[:-1] + "I"])
def test_constant_time_equals_is_false_for_different_strings(other: str) -> None:
    assert not constant_time_equals(TOKEN, other)


def test_constant_time_equals_compares_non_ascii_and_surrogates_without_raising() -> None:
    assert constant_time_equals("été", "été")
    assert not constant_time_equals("\ud800", "\ud801")
