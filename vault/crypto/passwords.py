"""Agent passwords: argon2id through argon2-cffi (docs/security-model.md, "Cryptography").

Hashes are argon2-cffi's encoded strings (``$argon2id$v=19$m=...,t=...,p=...$salt$hash``), so
each carries its own parameters: ``verify`` checks old hashes after the parameters change, and
``needs_rehash`` says when to replace one at the next successful login.
"""

from __future__ import annotations

import secrets
import threading
from typing import ClassVar

from argon2 import Parameters, PasswordHasher, Type, profiles
from argon2.exceptions import InvalidHashError, VerificationError

__all__ = ["Passwords"]


class Passwords:
    """Hash and verify passwords with one set of argon2id parameters."""

    # RFC 9106's second recommended profile: t=3, m=64 MiB, p=4. Each parameter is at or above
    # OWASP's minimum for argon2id (m=19 MiB, t=2, p=1), and 64 MiB per login stays affordable
    # for a small team's server, unlike the first profile's 2 GiB.
    PRODUCTION_PARAMETERS: ClassVar[Parameters] = profiles.RFC_9106_LOW_MEMORY

    def __init__(self, *, time_cost: int, memory_cost: int, parallelism: int) -> None:
        """Use argon2id with these costs (memory in KiB). argon2-cffi raises for bad values."""
        self._hasher = PasswordHasher(
            time_cost=time_cost,
            memory_cost=memory_cost,
            parallelism=parallelism,
            type=Type.ID,
        )
        # A hash of a password nobody knows, made with the same parameters as real ones, so
        # that checking a login for an unknown e-mail costs as much as for a known one. Made
        # on the first password check of the process, not here: most users of this class
        # (every store command of the CLI) never check a password, and a hash costs a full
        # argon2 run. The first check pays for it whether its account exists or not, so the
        # one slower answer tells nothing either.
        self._dummy: str | None = None
        self._dummy_lock = threading.Lock()

    @classmethod
    def production(cls) -> Passwords:
        """The parameters vault runs with (PRODUCTION_PARAMETERS)."""
        params = cls.PRODUCTION_PARAMETERS
        return cls(
            time_cost=params.time_cost,
            memory_cost=params.memory_cost,
            parallelism=params.parallelism,
        )

    @classmethod
    def cheap_for_tests(cls) -> Passwords:
        """Tiny parameters (t=1, m=8 KiB, p=1) so tests run fast; worthless against attack."""
        return cls(time_cost=1, memory_cost=8, parallelism=1)

    @property
    def time_cost(self) -> int:
        return self._hasher.time_cost

    @property
    def memory_cost(self) -> int:
        """Memory in KiB."""
        return self._hasher.memory_cost

    @property
    def parallelism(self) -> int:
        return self._hasher.parallelism

    def hash(self, password: str) -> str:
        """Hash ``password`` with a fresh salt. Raises ValueError if it is not valid Unicode."""
        return self._hasher.hash(password)

    def _dummy_hash(self) -> str:
        """The unknown password's hash, made once (under a lock: threads share this)."""
        dummy = self._dummy
        if dummy is None:
            with self._dummy_lock:
                if self._dummy is None:
                    self._dummy = self._hasher.hash(secrets.token_urlsafe(32))
                dummy = self._dummy
        return dummy

    def verify(self, stored_hash: str, password: str) -> bool:
        """Whether ``password`` matches ``stored_hash``; False also for a garbled hash."""
        dummy = self._dummy_hash()  # for a known account too: see __init__
        try:
            return self._hasher.verify(stored_hash, _password_bytes(password))
        except InvalidHashError:
            # A hash argon2 cannot decode (an agent made by a sign-in has none: "!"): "no",
            # after a full hash all the same, so the time does not tell which agents those are.
            if stored_hash is not dummy:
                self.dummy_verify(password)
            return False
        except (VerificationError, UnicodeEncodeError):
            return False  # a mismatch, or a hash that is not even ASCII

    def needs_rehash(self, stored_hash: str) -> bool:
        """Whether ``stored_hash`` was made with other parameters (True for a garbled hash)."""
        try:
            return self._hasher.check_needs_rehash(stored_hash)
        except InvalidHashError:
            return True

    def dummy_verify(self, password: str) -> None:
        """Spend the time of a real ``verify``, for logins whose account does not exist."""
        self.verify(self._dummy_hash(), password)


def _password_bytes(password: str) -> bytes:
    # A login body may carry a lone surrogate ("\ud800" is valid JSON). Encoding it anyway gives
    # bytes no real hash was made from, so the check runs its full time and answers False
    # instead of raising before the work, which would be both an error and a timing signal.
    return password.encode("utf-8", "surrogatepass")
