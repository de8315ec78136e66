"""Agent passwords: argon2id hashing, verification, rehash detection and the dummy check."""

from __future__ import annotations

import threading

import pytest
from argon2 import PasswordHasher

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


@pytest.fixture
def checks_made(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str | bytes]]:
    """Every argon2 check from here on, (hash, password) (seen at argon2-cffi's
    PasswordHasher.verify, which still runs)."""
    made: list[tuple[str, str | bytes]] = []
    real = PasswordHasher.verify

    def recording(self: PasswordHasher, hash: str | bytes, password: str | bytes) -> bool:
        made.append((hash if isinstance(hash, str) else hash.decode(), password))
        return real(self, hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", recording)
    return made


def test_dummy_verify_does_the_work_of_a_real_check(
        passwords: Passwords, checks_made: list[tuple[str, str | bytes]]) -> None:
    passwords.dummy_verify("any password")
    [(checked, given)] = checks_made
    assert given == b"any password"
    assert not passwords.needs_rehash(checked)  # a real hash, made with the same parameters


def test_dummy_verify_accepts_a_lone_surrogate(
        passwords: Passwords, checks_made: list[tuple[str, str | bytes]]) -> None:
    passwords.dummy_verify("\udfff")
    # The full check ran on the bytes as written, rather than failing before the work.
    [(checked, given)] = checks_made
    assert given == "\udfff".encode("utf-8", "surrogatepass")
    assert not passwords.needs_rehash(checked)


@pytest.fixture
def hashes_made(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every argon2 hash made from here on (counted at argon2-cffi's PasswordHasher.hash)."""
    made: list[str] = []
    real = PasswordHasher.hash

    def counting(self: PasswordHasher, password: str | bytes, *, salt: bytes | None = None
                 ) -> str:
        made.append(real(self, password, salt=salt))
        return made[-1]

    monkeypatch.setattr(PasswordHasher, "hash", counting)
    return made


def test_the_dummy_hash_is_made_by_the_first_check_and_only_then(hashes_made: list[str]) -> None:
    """Issue 22: a store command of the CLI makes a Passwords and checks no password, so it
    must not pay for an argon2 hash; a check for an account that exists makes the dummy too,
    so the first login of a process is as slow for a known e-mail as for an unknown one."""
    passwords = Passwords.cheap_for_tests()
    assert hashes_made == []
    real = passwords.hash("pw")
    assert len(hashes_made) == 1
    assert passwords.verify(real, "pw")  # a known account's check: the dummy is made now
    assert len(hashes_made) == 2
    passwords.dummy_verify("pw")
    assert not passwords.verify(real, "other")
    assert not passwords.verify("garbage", "pw")
    assert len(hashes_made) == 2  # once per process


def test_threads_checking_at_once_make_one_dummy_hash(hashes_made: list[str]) -> None:
    passwords = Passwords.cheap_for_tests()
    start = threading.Barrier(8)

    def check() -> None:
        start.wait(10)
        passwords.dummy_verify("pw")

    threads = [threading.Thread(target=check) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(hashes_made) == 1


def test_parameters_are_keyword_only() -> None:
    with pytest.raises(TypeError):
        Passwords(1, 8, 1)  # type: ignore[call-arg]
