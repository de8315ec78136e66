"""The at-rest key ring: parsing specs, wrapping, unwrapping and rotation."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

from vault.crypto import InvalidWrap, KeyRing, KeyRingError, b64url_decode, generate_key_spec

OLD = "old:" + "A" * 42 + "E"
NEW = "new:" + "B" * 42 + "E"
OLD_MATERIAL = OLD.split(":", 1)[1]
NEW_MATERIAL = NEW.split(":", 1)[1]
CONTEXT = b"secret:abc123"


def test_generate_key_spec_is_an_id_and_32_bytes() -> None:
    key_id, material = generate_key_spec().split(":")
    assert re.fullmatch(r"k[0-9a-f]{8}", key_id)
    assert len(b64url_decode(material)) == 32


def test_generate_key_spec_differs_each_time() -> None:
    assert generate_key_spec() != generate_key_spec()


def test_first_key_is_current() -> None:
    ring = KeyRing.from_string(f"{NEW},{OLD}")
    assert ring.current_id == "new"
    assert ring.ids == ("new", "old")


def test_wrap_round_trips() -> None:
    ring = KeyRing.from_string(NEW)
    assert ring.unwrap(ring.wrap(b"envelope bytes", context=CONTEXT), context=CONTEXT) == (
        b"envelope bytes"
    )


def test_wrap_round_trips_empty_data() -> None:
    ring = KeyRing.from_string(NEW)
    assert ring.unwrap(ring.wrap(b"", context=CONTEXT), context=CONTEXT) == b""


def test_wrap_uses_the_first_key_and_names_it() -> None:
    blob = KeyRing.from_string(f"{NEW},{OLD}").wrap(b"x", context=CONTEXT)
    assert blob.startswith(b"w1.new.")
    assert re.fullmatch(rb"w1\.new\.[A-Za-z0-9_-]+", blob)


def test_wrap_draws_a_fresh_nonce_each_time() -> None:
    ring = KeyRing.from_string(NEW)
    assert ring.wrap(b"x", context=CONTEXT) != ring.wrap(b"x", context=CONTEXT)


def test_old_key_still_unwraps_after_a_new_key_is_put_first() -> None:
    blob = KeyRing.from_string(OLD).wrap(b"data", context=CONTEXT)
    assert KeyRing.from_string(f"{NEW},{OLD}").unwrap(blob, context=CONTEXT) == b"data"


def test_rotate_rewraps_under_the_current_key() -> None:
    blob = KeyRing.from_string(OLD).wrap(b"data", context=CONTEXT)
    ring = KeyRing.from_string(f"{NEW},{OLD}")
    rotated = ring.rotate(blob, context=CONTEXT)
    assert ring.is_current(rotated)
    assert KeyRing.from_string(NEW).unwrap(rotated, context=CONTEXT) == b"data"


def test_rotate_returns_a_current_blob_unchanged() -> None:
    ring = KeyRing.from_string(f"{NEW},{OLD}")
    blob = ring.wrap(b"data", context=CONTEXT)
    assert ring.rotate(blob, context=CONTEXT) is blob


def test_rotate_refuses_a_damaged_current_blob() -> None:
    ring = KeyRing.from_string(NEW)
    blob = ring.wrap(b"data", context=CONTEXT)
    with pytest.raises(InvalidWrap):
        ring.rotate(blob[:-2] + b"AA", context=CONTEXT)


def test_is_current_tells_old_from_current() -> None:
    ring = KeyRing.from_string(f"{NEW},{OLD}")
    assert ring.is_current(ring.wrap(b"x", context=CONTEXT))
    assert not ring.is_current(KeyRing.from_string(OLD).wrap(b"x", context=CONTEXT))


def test_is_current_is_false_for_garbage() -> None:
    assert not KeyRing.from_string(NEW).is_current(b"not a wrapped value")


def test_unwrap_refuses_an_unknown_key_id() -> None:
    blob = KeyRing.from_string(OLD).wrap(b"data", context=CONTEXT)
    with pytest.raises(InvalidWrap):
        KeyRing.from_string(NEW).unwrap(blob, context=CONTEXT)


def test_unwrap_refuses_another_context() -> None:
    ring = KeyRing.from_string(NEW)
    blob = ring.wrap(b"data", context=b"secret:one")
    with pytest.raises(InvalidWrap):
        ring.unwrap(blob, context=b"secret:two")


def test_unwrap_refuses_a_blob_relabelled_with_another_key_id() -> None:
    ring = KeyRing.from_string(f"{NEW},{OLD}")
    blob = ring.wrap(b"data", context=CONTEXT)
    with pytest.raises(InvalidWrap):
        ring.unwrap(blob.replace(b"w1.new.", b"w1.old.", 1), context=CONTEXT)


def test_unwrap_refuses_a_tampered_blob() -> None:
    ring = KeyRing.from_string(NEW)
    blob = bytearray(ring.wrap(b"data", context=CONTEXT))
    blob[len(b"w1.new.") + 20] ^= 0x01
    with pytest.raises(InvalidWrap):
        ring.unwrap(bytes(blob), context=CONTEXT)


@pytest.mark.parametrize(
    "blob",
    [
        b"",
        b"w1.",
        b"w1.new",
        b"w1.new.",
        b"w1.new.AAAA",
        b"w2.new." + b"A" * 40,
        b"w1.new." + b"A" * 40 + b"=",
        b"w1.n\xffw." + b"A" * 40,
    ],
    ids=repr,
)
def test_unwrap_refuses_a_malformed_blob(blob: bytes) -> None:
    with pytest.raises(InvalidWrap):
        KeyRing.from_string(NEW).unwrap(blob, context=CONTEXT)


def test_unwrap_refuses_text_instead_of_bytes() -> None:
    ring = KeyRing.from_string(NEW)
    text = ring.wrap(b"data", context=CONTEXT).decode("ascii")
    with pytest.raises(InvalidWrap):
        ring.unwrap(text, context=CONTEXT)  # type: ignore[arg-type]


def test_generated_ring_has_one_working_key() -> None:
    ring = KeyRing.generate()
    assert ring.ids == (ring.current_id,)
    assert ring.unwrap(ring.wrap(b"x", context=CONTEXT), context=CONTEXT) == b"x"


def test_repr_shows_ids_but_no_key_material() -> None:
    text = repr(KeyRing.from_string(f"{NEW},{OLD}"))
    assert "new" in text
    assert NEW_MATERIAL not in text
    assert OLD_MATERIAL not in text


def test_from_string_skips_empty_entries_and_spaces() -> None:
    assert KeyRing.from_string(f" {NEW} , ,{OLD},").ids == ("new", "old")


@pytest.mark.parametrize(
    ("spec", "complaint"),
    [
        ("", "no key"),
        (" , ", "no key"),
        (NEW_MATERIAL, "of the form"),
        (":" + NEW_MATERIAL, "key id"),
        ("bad id:" + NEW_MATERIAL, "key id"),
        ("x" * 33 + ":" + NEW_MATERIAL, "key id"),
        ("new:" + NEW_MATERIAL[:-1], "32 bytes"),
        ("new:" + NEW_MATERIAL + "=", "32 bytes"),
        ("new:" + NEW_MATERIAL[:-1] + "F", "32 bytes"),
        ("new:" + NEW_MATERIAL + "AAAA", "32 bytes"),
        (f"{NEW},{NEW}", "twice"),
        (f"{NEW},new:{OLD_MATERIAL}", "twice"),
    ],
    ids=[
        "empty",
        "only-separators",
        "no-id",
        "empty-id",
        "space-in-id",
        "id-too-long",
        "key-too-short",
        "key-padded",
        "key-non-canonical",
        "key-too-long",
        "same-entry-twice",
        "same-id-twice",
    ],
)
def test_bad_spec_is_refused_with_what_is_wrong(spec: str, complaint: str) -> None:
    with pytest.raises(KeyRingError, match=complaint):
        KeyRing.from_string(spec)


@pytest.mark.parametrize(
    "spec",
    [
        "new:" + NEW_MATERIAL[:-1],
        NEW_MATERIAL,
        NEW_MATERIAL + ":" + OLD_MATERIAL,
        f"{NEW},new:{OLD_MATERIAL}",
    ],
    ids=["short-key", "no-id", "key-as-id", "duplicate-id"],
)
def test_bad_spec_error_contains_no_key_material(spec: str) -> None:
    with pytest.raises(KeyRingError) as info:
        KeyRing.from_string(spec)
    shown = "".join(traceback.format_exception(info.value))
    assert NEW_MATERIAL[:-1] not in shown
    assert OLD_MATERIAL not in shown


def test_constructor_refuses_key_bytes_of_the_wrong_length() -> None:
    with pytest.raises(KeyRingError, match="32 bytes"):
        KeyRing([("k1", bytes(16))])


def test_from_file_reads_lines_commas_and_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(
        f"# vault key ring, current first\n\n{NEW}  # since 2025-01\n\n  {OLD} ,\n# end\n",
        encoding="utf-8",
    )
    assert KeyRing.from_file(str(path)).ids == ("new", "old")


def test_from_file_reads_a_comma_separated_line(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text(f"{NEW},{OLD}\n", encoding="utf-8")
    assert KeyRing.from_file(str(path)).current_id == "new"


def test_from_file_refuses_a_file_with_only_comments(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_text("# nothing here\n", encoding="utf-8")
    with pytest.raises(KeyRingError, match="no key"):
        KeyRing.from_file(str(path))


def test_from_file_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(KeyRingError, match="cannot read"):
        KeyRing.from_file(str(tmp_path / "absent"))


def test_from_file_refuses_non_utf8_without_chaining_its_bytes(tmp_path: Path) -> None:
    path = tmp_path / "keys"
    path.write_bytes(NEW.encode("ascii") + b"\xff\n")
    with pytest.raises(KeyRingError, match="UTF-8") as info:
        KeyRing.from_file(str(path))
    assert info.value.__context__ is None
    assert NEW_MATERIAL not in "".join(traceback.format_exception(info.value))
