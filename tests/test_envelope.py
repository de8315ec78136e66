"""Envelope v1: the known-answer vectors, round trips, the server's shape check, and errors."""

from __future__ import annotations

import base64
import json
import re
import string
import traceback
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vault.crypto import (
    FIELDS,
    KINDS,
    MAX_ENVELOPE_CHARS,
    MIN_ENVELOPE_BYTES,
    EnvelopeTooLarge,
    InvalidEnvelope,
    b64url_decode,
    b64url_encode,
    check_shape,
    generate_key,
    open_envelope,
    seal,
)
from vault.crypto.envelope import _seal_with_nonce

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "vectors" / "envelope_v1.json").read_text(encoding="utf-8")
)
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]
# Invalid vectors whose text form is wrong; the others have a valid shape and fail only when
# opened (wrong key, ticket or kind, tampering, a plaintext that is not this kind's fields).
SHAPE_FAULTS = {
    "missing-prefix",
    "v2-prefix",
    "uppercase-prefix",
    "padded-base64",
    "non-canonical-base64",
    "standard-base64-alphabet",
    "trailing-newline",
    "empty-after-prefix",
    "truncated-below-28-bytes",
}

KEY = "32zskt7RbDeIizmcnTG38cFcEH3lFOQ-qli8y-omPxM"
SAMPLE_FIELDS: dict[str, dict[str, str]] = {
    "wordpress": {
        "url": "https://example.com/wp-admin/",
        "username": "support",
        "password": "hunter2-wordpress",
        "note": "temporary",
    },
    "sftp": {
        "host": "sftp.example.net",
        "port": "22",
        "username": "deploy",
        "password": "hunter2-sftp",
        "private_key": "-----BEGIN KEY-----\nabc\n-----END KEY-----\n",
        "note": "chroot",
    },
    "other": {"text": "hunter2-other\nsecond line"},
}


def name_of(vector: dict[str, Any]) -> str:
    return str(vector["name"])


def vector(name: str) -> dict[str, Any]:
    return next(v for v in VALID + INVALID if v["name"] == name)


def body(text: str) -> str:
    return text.removeprefix("v1.")


def sealed_raw(plaintext: bytes, *, ticket: str = "12345", kind: str = "wordpress") -> str:
    return _seal_with_nonce(KEY, bytes(12), ticket=ticket, kind=kind, plaintext=plaintext)


# Known-answer vectors


@pytest.mark.parametrize("v", VALID, ids=name_of)
def test_valid_vector_opens_to_its_fields(v: dict[str, Any]) -> None:
    assert open_envelope(v["key"], v["envelope"], ticket=v["ticket"], kind=v["kind"]) == v["fields"]


@pytest.mark.parametrize("v", VALID, ids=name_of)
def test_sealing_a_valid_vector_with_its_nonce_reproduces_its_envelope(v: dict[str, Any]) -> None:
    envelope = _seal_with_nonce(
        v["key"],
        b64url_decode(v["nonce"]),
        ticket=v["ticket"],
        kind=v["kind"],
        plaintext=v["plaintext"].encode("utf-8"),
    )
    assert envelope == v["envelope"]


@pytest.mark.parametrize("v", VALID, ids=name_of)
def test_valid_vector_plaintext_is_the_serialization_seal_uses(v: dict[str, Any]) -> None:
    expected = json.dumps(v["fields"], ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    assert v["plaintext"] == expected


@pytest.mark.parametrize("v", VALID, ids=name_of)
def test_valid_vector_aad_binds_kind_and_ticket(v: dict[str, Any]) -> None:
    assert v["aad"] == f"vault:v1:{v['kind']}:{v['ticket']}"


@pytest.mark.parametrize("v", VALID, ids=name_of)
def test_valid_vector_passes_the_shape_check(v: dict[str, Any]) -> None:
    check_shape(v["envelope"])


@pytest.mark.parametrize("v", INVALID, ids=name_of)
def test_invalid_vector_does_not_open(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvelope):
        open_envelope(v["key"], v["envelope"], ticket=v["ticket"], kind=v["kind"])


@pytest.mark.parametrize("v", [v for v in INVALID if v["name"] in SHAPE_FAULTS], ids=name_of)
def test_invalid_vector_of_the_wrong_shape_fails_the_shape_check(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvelope):
        check_shape(v["envelope"])


@pytest.mark.parametrize("v", [v for v in INVALID if v["name"] not in SHAPE_FAULTS], ids=name_of)
def test_invalid_vector_of_the_right_shape_passes_the_shape_check(v: dict[str, Any]) -> None:
    check_shape(v["envelope"])


def test_vectors_cover_every_kind() -> None:
    assert {v["kind"] for v in VALID} == set(KINDS)


def test_vectors_cover_the_edge_cases_the_browser_must_match() -> None:
    tickets = [v["ticket"] for v in VALID]
    passwords = [v["fields"].get("password", "") for v in VALID]
    assert any(len(t) == 64 and "-" in t and "_" in t for t in tickets)
    assert any(v["plaintext"] == "{}" for v in VALID)
    assert any("é" in p and any(ord(c) > 0xFFFF for c in p) for p in passwords)
    assert any("\n" in v["fields"].get("private_key", "").strip() for v in VALID)


def test_truncated_vector_is_one_byte_short_of_the_minimum() -> None:
    raw = b64url_decode(body(vector("truncated-below-28-bytes")["envelope"]))
    assert len(raw) == MIN_ENVELOPE_BYTES - 1


# Round trips


@pytest.mark.parametrize("kind", KINDS)
def test_seal_then_open_round_trips_every_field_of_a_kind(kind: str) -> None:
    key = generate_key()
    envelope = seal(key, ticket="T-1", kind=kind, fields=SAMPLE_FIELDS[kind])
    assert open_envelope(key, envelope, ticket="T-1", kind=kind) == SAMPLE_FIELDS[kind]


def test_seal_leaves_out_empty_fields() -> None:
    key = generate_key()
    fields = {"host": "h.example", "port": "", "password": "pw", "note": ""}
    envelope = seal(key, ticket="42", kind="sftp", fields=fields)
    assert open_envelope(key, envelope, ticket="42", kind="sftp") == {
        "host": "h.example",
        "password": "pw",
    }


def test_seal_of_only_empty_fields_opens_to_an_empty_object() -> None:
    key = generate_key()
    envelope = seal(key, ticket="42", kind="other", fields={"text": ""})
    assert open_envelope(key, envelope, ticket="42", kind="other") == {}
    assert len(b64url_decode(body(envelope))) == MIN_ENVELOPE_BYTES + len(b"{}")


def test_seal_round_trips_non_ascii_text() -> None:
    key = generate_key()
    fields = {"password": "Crème brûlée 🔐 \u2028 \x00 end", "username": "zoë"}
    envelope = seal(key, ticket="fr", kind="wordpress", fields=fields)
    assert open_envelope(key, envelope, ticket="fr", kind="wordpress") == fields


def test_seal_draws_a_fresh_nonce_each_time() -> None:
    key = generate_key()
    first = seal(key, ticket="1", kind="other", fields={"text": "same"})
    second = seal(key, ticket="1", kind="other", fields={"text": "same"})
    assert b64url_decode(body(first))[:12] != b64url_decode(body(second))[:12]


def test_seal_output_passes_the_shape_check() -> None:
    check_shape(seal(generate_key(), ticket="1", kind="other", fields={"text": "x"}))


def test_seal_accepts_the_largest_text_that_fits() -> None:
    # Each 3 plaintext bytes become 4 characters; "v1.", nonce, tag and '{"text":""}' take the rest.
    room = (MAX_ENVELOPE_CHARS - len("v1.")) // 4 * 3 - 12 - 16 - len('{"text":""}')
    envelope = seal(KEY, ticket="1", kind="other", fields={"text": "x" * room})
    check_shape(envelope)
    with pytest.raises(ValueError, match="do not fit"):
        seal(KEY, ticket="1", kind="other", fields={"text": "x" * (room + 1)})


def test_generate_key_is_43_base64url_characters_of_32_bytes() -> None:
    key = generate_key()
    assert len(key) == 43
    assert len(b64url_decode(key)) == 32


def test_generate_key_differs_each_time() -> None:
    assert generate_key() != generate_key()


def test_fields_lists_the_names_of_every_kind() -> None:
    assert dict(FIELDS) == {
        "wordpress": ("url", "username", "password", "note"),
        "sftp": ("host", "port", "username", "password", "private_key", "note"),
        "other": ("text",),
    }


# What seal refuses


def test_seal_rejects_an_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind"):
        seal(KEY, ticket="1", kind="ftp", fields={"text": "x"})


def test_seal_rejects_a_field_of_another_kind() -> None:
    with pytest.raises(ValueError, match="fields of kind 'wordpress'"):
        seal(KEY, ticket="1", kind="wordpress", fields={"text": "x"})


@pytest.mark.parametrize(
    "key",
    [
        "",
        KEY[:-1],
        KEY + "A",
        KEY + "=",
        KEY.replace("-", "+"),
        b64url_encode(bytes(16)),
        b64url_encode(bytes(31)),
    ],
    ids=["empty", "42-chars", "44-chars", "padded", "standard-alphabet", "16-bytes", "31-bytes"],
)
def test_seal_rejects_a_malformed_key(key: str) -> None:
    with pytest.raises(ValueError, match="key must be 32 bytes"):
        seal(key, ticket="1", kind="other", fields={"text": "x"})


@pytest.mark.parametrize("ticket", ["", "a:b", "a b", "x" * 65, "tické"])
def test_seal_rejects_a_malformed_ticket(ticket: str) -> None:
    with pytest.raises(ValueError, match="ticket"):
        seal(KEY, ticket=ticket, kind="other", fields={"text": "x"})


def test_seal_rejects_a_value_that_is_not_a_string() -> None:
    with pytest.raises(TypeError):
        seal(KEY, ticket="1", kind="sftp", fields={"port": 22})  # type: ignore[dict-item]


def test_seal_rejects_a_lone_surrogate() -> None:
    with pytest.raises(ValueError, match="Unicode"):
        seal(KEY, ticket="1", kind="other", fields={"text": "bad \ud800 text"})


def test_seal_rejects_fields_too_large_for_an_envelope() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        seal(KEY, ticket="1", kind="other", fields={"text": "x" * MAX_ENVELOPE_CHARS})


def test_seal_with_nonce_rejects_a_nonce_of_the_wrong_length() -> None:
    with pytest.raises(ValueError, match="nonce"):
        _seal_with_nonce(KEY, bytes(16), ticket="1", kind="other", plaintext=b"{}")


def test_seal_errors_name_no_key_and_no_value() -> None:
    secret = "hunter2-do-not-log"
    bad_key = KEY[:-1]
    attempts = [
        (bad_key, "other", {"text": secret}),
        (KEY, "wordpress", {"text": secret}),
        (KEY, "other", {"text": secret + "\ud800"}),
    ]
    for key, kind, fields in attempts:
        with pytest.raises(ValueError) as info:
            seal(key, ticket="1", kind=kind, fields=fields)
        shown = "".join(traceback.format_exception(info.value))
        assert secret not in shown
        assert bad_key not in shown


# What open refuses


def test_open_rejects_a_repeated_field_name() -> None:
    envelope = sealed_raw(b'{"note":"a","note":"b"}')
    with pytest.raises(InvalidEnvelope):
        open_envelope(KEY, envelope, ticket="12345", kind="wordpress")


def test_open_rejects_absurdly_nested_json() -> None:
    envelope = sealed_raw(b"[" * 40000)
    with pytest.raises(InvalidEnvelope):
        open_envelope(KEY, envelope, ticket="12345", kind="wordpress")


def test_open_rejects_json_null() -> None:
    envelope = sealed_raw(b"null")
    with pytest.raises(InvalidEnvelope):
        open_envelope(KEY, envelope, ticket="12345", kind="wordpress")


def test_open_rejects_an_unknown_kind() -> None:
    v = vector("wordpress-basic")
    with pytest.raises(InvalidEnvelope):
        open_envelope(v["key"], v["envelope"], ticket=v["ticket"], kind="ftp")


def test_open_rejects_a_malformed_key() -> None:
    v = vector("wordpress-basic")
    with pytest.raises(InvalidEnvelope):
        open_envelope(v["key"][:-1], v["envelope"], ticket=v["ticket"], kind=v["kind"])


def test_open_rejects_a_malformed_ticket() -> None:
    v = vector("wordpress-basic")
    with pytest.raises(InvalidEnvelope):
        open_envelope(v["key"], v["envelope"], ticket="12345:x", kind=v["kind"])


def test_open_rejects_text_over_the_size_limit_as_too_large() -> None:
    with pytest.raises(EnvelopeTooLarge):
        open_envelope(KEY, "v1." + "A" * MAX_ENVELOPE_CHARS, ticket="1", kind="other")


@pytest.mark.parametrize("v", INVALID, ids=name_of)
def test_open_error_shows_no_key_plaintext_or_envelope(v: dict[str, Any]) -> None:
    with pytest.raises(InvalidEnvelope) as info:
        open_envelope(v["key"], v["envelope"], ticket=v["ticket"], kind=v["kind"])
    shown = "".join(traceback.format_exception(info.value)) + repr(info.value)
    assert v["key"] not in shown
    envelope_part = body(v["envelope"])[:24]
    assert not envelope_part or envelope_part not in shown


def test_open_error_of_an_unparsable_plaintext_chains_nothing_that_holds_it() -> None:
    envelope = sealed_raw(b'{"password":"hunter2-leak\xff"}')
    with pytest.raises(InvalidEnvelope) as info:
        open_envelope(KEY, envelope, ticket="12345", kind="wordpress")
    assert info.value.__cause__ is None
    assert info.value.__context__ is None
    assert "hunter2-leak" not in "".join(traceback.format_exception(info.value))


def test_open_error_of_a_wrong_field_shows_no_plaintext() -> None:
    envelope = sealed_raw(b'{"text":"hunter2-leak"}')
    with pytest.raises(InvalidEnvelope) as info:
        open_envelope(KEY, envelope, ticket="12345", kind="wordpress")
    assert "hunter2-leak" not in "".join(traceback.format_exception(info.value))


def test_every_open_failure_has_the_same_message() -> None:
    messages = set()
    for v in INVALID:
        with pytest.raises(InvalidEnvelope) as info:
            open_envelope(v["key"], v["envelope"], ticket=v["ticket"], kind=v["kind"])
        messages.add(str(info.value))
    assert len(messages) == 1


# The server's shape check


def test_shape_check_accepts_exactly_the_minimum_length() -> None:
    check_shape("v1." + b64url_encode(bytes(MIN_ENVELOPE_BYTES)))


def test_shape_check_rejects_one_byte_under_the_minimum() -> None:
    with pytest.raises(InvalidEnvelope):
        check_shape("v1." + b64url_encode(bytes(MIN_ENVELOPE_BYTES - 1)))


def test_shape_check_accepts_the_longest_possible_text_under_the_limit() -> None:
    # 65533 characters after "v1." is no base64 length (65533 % 4 == 1); 65532 is the longest.
    text = "v1." + b64url_encode(bytes((MAX_ENVELOPE_CHARS - 4) // 4 * 3))
    assert len(text) == MAX_ENVELOPE_CHARS - 1
    check_shape(text)


def test_shape_check_limit_is_inclusive() -> None:
    text = "v1." + "A" * (MAX_ENVELOPE_CHARS - 3)
    with pytest.raises(InvalidEnvelope) as info:
        check_shape(text)
    assert not isinstance(info.value, EnvelopeTooLarge)


def test_shape_check_rejects_text_over_the_size_limit_as_too_large() -> None:
    with pytest.raises(EnvelopeTooLarge):
        check_shape("v1." + b64url_encode(bytes(MAX_ENVELOPE_CHARS)))


def test_shape_check_tests_the_size_before_the_encoding() -> None:
    with pytest.raises(EnvelopeTooLarge):
        check_shape("not base64 at all! " * MAX_ENVELOPE_CHARS)


def test_envelope_too_large_is_an_invalid_envelope() -> None:
    assert issubclass(EnvelopeTooLarge, InvalidEnvelope)


@pytest.mark.parametrize("text", [None, 42, b"v1.AAAA", ["v1."]], ids=repr)
def test_shape_check_rejects_what_is_not_a_string(text: object) -> None:
    with pytest.raises(InvalidEnvelope):
        check_shape(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "v1",
        "v1." + b64url_encode(bytes(30)) + " ",
        " v1." + b64url_encode(bytes(30)),
        "v1." + b64url_encode(bytes(30)) + "\u00e9",
        "v1." + b64url_encode(bytes(30))[:-1] + "\uff21",
        "v1." + b64url_encode(bytes(30)) + "A",
    ],
    ids=[
        "empty",
        "prefix-without-dot",
        "trailing-space",
        "leading-space",
        "non-ascii-letter",
        "fullwidth-letter",
        "impossible-length",
    ],
)
def test_shape_check_rejects_malformed_text(text: str) -> None:
    with pytest.raises(InvalidEnvelope):
        check_shape(text)


def test_shape_check_error_does_not_quote_the_text() -> None:
    text = "v1." + "hunter2" * 10 + "="
    with pytest.raises(InvalidEnvelope) as info:
        check_shape(text)
    assert "hunter2" not in "".join(traceback.format_exception(info.value))


# The base64url helpers


def test_b64url_round_trips_every_length() -> None:
    for n in range(40):
        data = bytes(range(n))
        assert b64url_decode(b64url_encode(data)) == data


def test_b64url_encode_writes_no_padding() -> None:
    assert b64url_encode(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize("text", ["-_8=", "+/8", "-_9", "A", "AB C", "ABé"])
def test_b64url_decode_rejects_non_canonical_text(text: str) -> None:
    with pytest.raises(ValueError):
        b64url_decode(text)


def _spec_b64url_decode(text: str) -> bytes:
    """RFC 4648 section 5 without padding, canonical, written the slow and obvious way: the
    reference the fast decoder must agree with on every input."""
    if not isinstance(text, str) or re.fullmatch(r"[A-Za-z0-9_-]*", text) is None \
            or len(text) % 4 == 1:
        raise ValueError
    data = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    if base64.urlsafe_b64encode(data).rstrip(b"=").decode() != text:
        raise ValueError
    return data


def _outcome(decode: Any, text: str) -> tuple[str, bytes]:
    try:
        return "ok", decode(text)
    except ValueError:
        return "refused", b""


_B64_CHARS = string.ascii_letters + string.digits + "-_" + "+/= \n\t.\x00é\U0001f600"


@given(st.one_of(
    st.text(alphabet=_B64_CHARS, max_size=12),
    st.binary(max_size=40).map(lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()),
    st.tuples(st.binary(min_size=1, max_size=40), st.integers(0, 63), st.sampled_from(_B64_CHARS))
    .map(lambda t: (lambda s: s[:t[1] % len(s)] + t[2] + s[t[1] % len(s) + 1:])(
        base64.urlsafe_b64encode(t[0]).rstrip(b"=").decode())),
))
@settings(max_examples=3000, deadline=None)
def test_b64url_decode_agrees_with_the_plain_reading_of_the_rfc(text: str) -> None:
    assert _outcome(b64url_decode, text) == _outcome(_spec_b64url_decode, text)


def test_b64url_decode_refusals_never_repeat_the_input() -> None:
    for text in ("QQ==", "Q+Q", "QR", "A", "é" * 8, "sécret1", "QQ\n"):
        with pytest.raises(ValueError) as caught:
            b64url_decode(text)
        assert text not in str(caught.value) and caught.value.__cause__ is None
