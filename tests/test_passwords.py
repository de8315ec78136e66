"""Agent passwords: argon2id hashing, verification, rehash detection and the dummy check."""

from __future__ import annotations

import pytest

from vault.crypto import Passwords

# OWASP Password Storage Cheat Sheet, argon2id minimum: 19 MiB of memory, 2 passes, 1 lane.
OWASP_MIN_MEMORY_KIB = 19 * 1024
OWASP_MIN_TIME_COST = 2
OWASP_MIN_PARALLELISM = 1


@pytest.fixture(scope="module")
def passwords() -> Passwords:
    return Passwords.cheap_for_tests()


def test_production_parameters_meet_owasp_minimums() -> None:
    params = Passwords.PRODUCTION_PARAMETERS
    assert params.type.name == "ID"
    assert params.memory_cost >= OWASP_MIN_MEMORY_KIB
    assert params.time_cost >= OWASP_MIN_TIME_COST
    assert params.parallelism >= OWASP_MIN_PARALLELISM
    assert params.salt_len >= 16


def test_cheap_profile_uses_the_smallest_parameters() -> None:
    cheap = Passwords.cheap_for_tests()
    assert (cheap.time_cost, cheap.memory_cost, cheap.parallelism) == (1, 8, 1)


def test_hash_is_an_argon2id_string_with_its_parameters(passwords: Passwords) -> None:
    assert passwords.hash("correct horse").startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_hash_is_salted(passwords: Passwords) -> None:
    assert passwords.hash("same") != passwords.hash("same")


def test_verify_accepts_the_right_password(passwords: Passwords) -> None:
    assert passwords.verify(passwords.hash("correct horse"), "correct horse")


def test_verify_refuses_a_wrong_password(passwords: Passwords) -> None:
    assert not passwords.verify(passwords.hash("correct horse"), "correct horse ")


def test_verify_accepts_a_non_ascii_password(passwords: Passwords) -> None:
    assert passwords.verify(passwords.hash("mot de passe été 🔐"), "mot de passe été 🔐")


def test_verify_refuses_a_password_with_a_lone_surrogate(passwords: Passwords) -> None:
    assert not passwords.verify(passwords.hash("pass"), "pass\ud800")


@pytest.mark.parametrize(
    "stored_hash",
    [
        "",
        "garbage",
        "$argon2id$v=19$m=8,t=1,p=1$",
        "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$BBBB",
        "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHRzYWx0$ÿÿÿÿ",
        "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    ],
    ids=["empty", "garbage", "no-salt", "short-output", "non-ascii", "bcrypt"],
)
def test_verify_answers_false_for_a_garbled_hash(passwords: Passwords, stored_hash: str) -> None:
    assert passwords.verify(stored_hash, "anything") is False


def test_verify_answers_false_for_a_truncated_real_hash(passwords: Passwords) -> None:
    assert not passwords.verify(passwords.hash("pw")[:-10], "pw")


def test_verify_checks_hashes_made_with_other_parameters(passwords: Passwords) -> None:
    other = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    assert passwords.verify(other.hash("pw"), "pw")


def test_needs_rehash_is_false_for_current_parameters(passwords: Passwords) -> None:
    assert not passwords.needs_rehash(passwords.hash("pw"))


def test_needs_rehash_is_true_when_parameters_change(passwords: Passwords) -> None:
    stronger = Passwords(time_cost=2, memory_cost=16, parallelism=1)
    assert stronger.needs_rehash(passwords.hash("pw"))


def test_needs_rehash_is_true_for_a_garbled_hash(passwords: Passwords) -> None:
    assert passwords.needs_rehash("garbage")


def test_dummy_verify_runs_without_error(passwords: Passwords) -> None:
    passwords.dummy_verify("any password")


def test_dummy_verify_accepts_a_lone_surrogate(passwords: Passwords) -> None:
    passwords.dummy_verify("\udfff")


def test_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Passwords(1, 8, 1)  # type: ignore[call-arg]
