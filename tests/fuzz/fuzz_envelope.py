"""Atheris target: envelope v1 (`vault.crypto.envelope`): its shape check, opening and sealing.

Properties, for every input:
- `check_shape` returns or raises InvalidEnvelope (EnvelopeTooLarge over 64 KiB), nothing else;
- `open_envelope` returns a flat dict of the kind's field names to strings, or raises
  InvalidEnvelope, whatever the key, text, ticket and kind; also for a well-sealed envelope whose
  plaintext is any bytes at all (the JSON parser behind the decryption);
- an InvalidEnvelope's message is one of the module's two fixed texts (never the key, envelope
  or plaintext);
- `seal` raises only ValueError or TypeError, and what it seals opens to the non-empty fields;
- a sealed envelope changed in any way, or opened for another ticket or kind, does not open.

CI runs it for a fixed number of inputs from a fixed seed (tests/test_fuzz_parsers.py). By hand:

    mkdir -p .cache/fuzz/envelope
    .venv/bin/python tests/fuzz/fuzz_envelope.py -max_total_time=600 \
        -artifact_prefix=.cache/fuzz/ .cache/fuzz/envelope

(a crash leaves its input in .cache/fuzz/crash-*; pass that file alone to replay it)
"""

from __future__ import annotations

import sys

# Libraries are imported before the instrumented block: only vault's own code is instrumented.
import argon2  # noqa: F401
import atheris
import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
import flask  # noqa: F401

with atheris.instrument_imports():
    from vault.crypto import envelope as env
    from vault.crypto.b64 import b64url_encode

KEY = b64url_encode(bytes(range(32)))
OTHER_KEY = b64url_encode(bytes(range(1, 33)))
KINDS = list(env.KINDS)
TICKETS = ["1001", "T-2_x", "9" * 64]
MESSAGES = {"invalid envelope", f"envelope longer than {env.MAX_ENVELOPE_CHARS} characters"}
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def invalid(exc: env.InvalidEnvelope) -> None:
    assert str(exc) in MESSAGES, f"unexpected message {str(exc)[:80]!r}"


def opens_or_invalid(key: str, text: str, ticket: str, kind: str) -> dict[str, str] | None:
    try:
        fields = env.open_envelope(key, text, ticket=ticket, kind=kind)
    except env.InvalidEnvelope as exc:
        invalid(exc)
        return None
    assert isinstance(fields, dict)
    for name, value in fields.items():
        assert name in env.FIELDS[kind] and isinstance(value, str), (name, type(value))
    return fields


def text_of(fdp: atheris.FuzzedDataProvider) -> str:
    """Envelope-like text: v1. and base64url now and then, anything otherwise."""
    shape = fdp.ConsumeIntInRange(0, 3)
    if shape == 0:
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 200))
    body = "".join(B64[b % 64] for b in fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 120)))
    if shape == 1:
        return "v1." + body
    if shape == 2:
        return "v1." + b64url_encode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 120)))
    return "v1." + "A" * fdp.ConsumeIntInRange(env.MAX_ENVELOPE_CHARS - 8, env.MAX_ENVELOPE_CHARS + 8)


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 5)
    kind = fdp.PickValueInList(KINDS)
    ticket = fdp.PickValueInList(TICKETS)
    if mode == 0:  # the server's shape check, on any text (and on what is not text)
        text: object = text_of(fdp) if fdp.ConsumeBool() else fdp.ConsumeBytes(10)
        try:
            env.check_shape(text)
        except env.InvalidEnvelope as exc:
            invalid(exc)
        return
    if mode == 1:  # opening anything with any key, ticket and kind
        key = KEY if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(50)
        odd_ticket = fdp.ConsumeUnicodeNoSurrogates(10) if fdp.ConsumeBool() else ticket
        odd_kind = fdp.ConsumeUnicodeNoSurrogates(10) if fdp.ConsumeBool() else kind
        try:
            env.open_envelope(key, text_of(fdp), ticket=odd_ticket, kind=odd_kind)
        except env.InvalidEnvelope as exc:
            invalid(exc)
        return
    if mode == 2:  # a correctly sealed envelope whose plaintext is any bytes: the JSON parser
        nonce = fdp.ConsumeBytes(12).ljust(12, b"\0")
        plaintext = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))
        if fdp.ConsumeBool():  # JSON-ish more often than not
            plaintext = b'{"' + plaintext
        text = env._seal_with_nonce(KEY, nonce, ticket=ticket, kind=kind, plaintext=plaintext)
        opens_or_invalid(KEY, text, ticket, kind)
        return
    # Sealing: fields from the kind's names (now and then another), any text as values.
    names = [*env.FIELDS[kind], "other", "text", ""]
    fields: dict[str, str] = {}
    for _ in range(fdp.ConsumeIntInRange(0, 6)):
        name = fdp.PickValueInList(names) if fdp.ConsumeIntInRange(0, 9) else "x"
        fields[name] = fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 40))  # surrogates too
    try:
        text = env.seal(KEY, ticket=ticket, kind=kind, fields=fields)
    except (ValueError, TypeError) as exc:
        assert "\ufffd" not in str(exc) and all(v not in str(exc) for v in fields.values()
                                                if len(v) > 3), str(exc)[:80]
        return
    if mode == 3:  # a round trip
        assert opens_or_invalid(KEY, text, ticket, kind) == {k: v for k, v in fields.items() if v}
        return
    if mode == 4:  # any change to the text: it no longer opens
        at = fdp.ConsumeIntInRange(0, len(text) - 1)
        changed = text[:at] + fdp.ConsumeUnicodeNoSurrogates(3) + text[at + 1:]
        if changed != text:
            assert opens_or_invalid(KEY, changed, ticket, kind) is None, (at, len(text))
        return
    # Another ticket, kind or key: it does not open.
    other_ticket = fdp.PickValueInList([t for t in TICKETS if t != ticket])
    other_kind = fdp.PickValueInList([k for k in KINDS if k != kind])
    assert opens_or_invalid(KEY, text, other_ticket, kind) is None
    assert opens_or_invalid(KEY, text, ticket, other_kind) is None
    assert opens_or_invalid(OTHER_KEY, text, ticket, kind) is None


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
