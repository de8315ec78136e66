"""vault/static/js/envelope.js in Chromium, against the known answers and against Python's twin.

Every call runs on a page of the live server served with the page CSP (`script-src 'self'`), so
the module is imported exactly as the pages import it: same origin, WebCrypto in a secure
context (http://127.0.0.1 counts as one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page

from browser.harness import RecordedContext
from vault.crypto.b64 import b64url_decode, b64url_encode
from vault.crypto.envelope import FIELDS, KINDS, _seal_with_nonce, generate_key, open_envelope, seal
from vault.crypto.envelope import InvalidEnvelope as PyInvalidEnvelope

VECTORS = json.loads((Path(__file__).resolve().parents[1] / "vectors" / "envelope_v1.json")
                     .read_text(encoding="utf-8"))
VALID: list[dict[str, Any]] = VECTORS["valid"]
INVALID: list[dict[str, Any]] = VECTORS["invalid"]

# One function evaluated in the page for every operation: it imports the module and answers
# {ok, value} or {ok: false, error: {name, message, instance}} (`instance`: an InvalidEnvelope).
# Fields come back as JSON text, so a lone surrogate survives the trip to Python unchanged.
CALL_JS = """async ({op, args}) => {
  const m = await import('/static/js/envelope.js');
  const ops = {
    open: async (key, text, ticket, kind) => JSON.stringify(await m.open(key, text, {ticket, kind})),
    sealWithNonce: (key, nonce, ticket, kind, plaintext) =>
      m._sealWithNonce(key, new Uint8Array(nonce), {ticket, kind, plaintext}),
    seal: (key, ticket, kind, fields) => m.seal(key, {ticket, kind, fields}),
    plaintextOf: (kind, fields) => m.plaintextOf(kind, fields),
    generateKey: () => m.generateKey(),
    api: () => ({kinds: [...m.KINDS], fields: Object.fromEntries(
      Object.entries(m.FIELDS).map(([kind, names]) => [kind, [...names]]))}),
  };
  try {
    return {ok: true, value: await ops[op](...args)};
  } catch (e) {
    return {ok: false, error: {name: e.name, message: e.message,
                               instance: e instanceof m.InvalidEnvelope}};
  }
}"""

INVALID_ERROR = {"name": "InvalidEnvelope", "message": "invalid envelope", "instance": True}

# Each kind's fields with what breaks naive code: several lines (LF and CRLF), accents, emoji
# outside the BMP, JSON and HTML metacharacters, and an empty field (left out by both sides).
ROUND_TRIP_FIELDS: dict[str, dict[str, str]] = {
    "wordpress": {
        "url": "https://café.example/wp-admin/?a=1&b=ü",
        "username": "amélie",
        "password": "ü😀\"\\ </script> ' \t end",
        "note": "first line\nsecond line é\r\nthird 😀\n",
    },
    "sftp": {
        "host": "sftp.exämple.net",
        "port": "2222",
        "username": "deploy",
        "password": "",
        "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nYWJj😀\n-----END OPENSSH PRIVATE KEY-----\n",
        "note": "Chroot: /var/www\nNo password 😀",
    },
    "other": {"text": "Line one é\nLine two ü\n\nLine four 😀 — done"},
}

Call = Callable[..., Any]


@pytest.fixture(scope="module")
def envelope_page(module_context: Callable[..., RecordedContext]) -> Page:
    context, _ = module_context()
    page = context.new_page()
    page.goto("/login")  # any page served with the page CSP will do
    return page


@pytest.fixture
def js(envelope_page: Page) -> Call:
    """js(op, *args) -> the op's value, or {"error": {...}} when it threw."""
    page = envelope_page

    def call(op: str, *args: Any) -> Any:
        answer = page.evaluate(CALL_JS, {"op": op, "args": list(args)})
        return answer["value"] if answer["ok"] else {"error": answer["error"]}
    return call


def js_open(js: Call, key: str, text: str, *, ticket: str, kind: str) -> Any:
    """The fields JS opens, or {"error": ...}."""
    answer = js("open", key, text, ticket, kind)
    return json.loads(answer) if isinstance(answer, str) else answer


def flip_bit(envelope: str, index: int) -> str:
    """The envelope with one bit of byte `index` of its binary form flipped, still canonical."""
    raw = bytearray(b64url_decode(envelope[3:]))
    raw[index] ^= 0x01
    return "v1." + b64url_encode(bytes(raw))


def test_kinds_and_field_names_match_python(js: Call) -> None:
    assert js("api") == {"kinds": list(KINDS), "fields": {k: list(v) for k, v in FIELDS.items()}}


@pytest.mark.parametrize("vector", VALID, ids=[v["name"] for v in VALID])
def test_valid_vector(js: Call, vector: dict[str, Any]) -> None:
    key, ticket, kind = vector["key"], vector["ticket"], vector["kind"]
    assert js_open(js, key, vector["envelope"], ticket=ticket, kind=kind) == vector["fields"]
    nonce = list(b64url_decode(vector["nonce"]))
    assert js("sealWithNonce", key, nonce, ticket, kind, vector["plaintext"]) == vector["envelope"]
    assert js("plaintextOf", kind, vector["fields"]) == vector["plaintext"]


@pytest.mark.parametrize("vector", INVALID, ids=[v["name"] for v in INVALID])
def test_invalid_vector(js: Call, vector: dict[str, Any]) -> None:
    answer = js_open(js, vector["key"], vector["envelope"], ticket=vector["ticket"],
                     kind=vector["kind"])
    assert answer == {"error": INVALID_ERROR}, vector["why"]


@pytest.mark.parametrize("kind", list(ROUND_TRIP_FIELDS))
def test_js_seal_opens_in_python(js: Call, kind: str) -> None:
    fields = ROUND_TRIP_FIELDS[kind]
    present = {name: value for name, value in fields.items() if value}
    key = js("generateKey")
    assert isinstance(key, str) and len(key) == 43
    envelope = js("seal", key, "SUP-42", kind, fields)
    assert open_envelope(key, envelope, ticket="SUP-42", kind=kind) == present
    # Same plaintext bytes on both sides, so either side's envelope could be a known answer.
    python_plaintext = json.dumps(present, ensure_ascii=False, separators=(",", ":"),
                                  sort_keys=True)
    assert js("plaintextOf", kind, fields) == python_plaintext


@pytest.mark.parametrize("kind", list(ROUND_TRIP_FIELDS))
def test_python_seal_opens_in_js(js: Call, kind: str) -> None:
    fields = ROUND_TRIP_FIELDS[kind]
    present = {name: value for name, value in fields.items() if value}
    key = generate_key()
    envelope = seal(key, ticket="SUP-42", kind=kind, fields=fields)
    assert js_open(js, key, envelope, ticket="SUP-42", kind=kind) == present


def test_tampering_wrong_key_ticket_or_kind_is_one_error(js: Call) -> None:
    key = js("generateKey")
    envelope = js("seal", key, "SUP-42", "wordpress", ROUND_TRIP_FIELDS["wordpress"])
    size = len(b64url_decode(envelope[3:]))
    attempts = {
        "nonce": (key, flip_bit(envelope, 0), "SUP-42", "wordpress"),
        "ciphertext": (key, flip_bit(envelope, 12), "SUP-42", "wordpress"),
        "tag": (key, flip_bit(envelope, size - 1), "SUP-42", "wordpress"),
        "truncated": (key, envelope[:-4], "SUP-42", "wordpress"),
        "wrong key": (generate_key(), envelope, "SUP-42", "wordpress"),
        "wrong ticket": (key, envelope, "SUP-43", "wordpress"),
        "wrong kind": (key, envelope, "SUP-42", "other"),
        "malformed key": (key[:-1], envelope, "SUP-42", "wordpress"),
    }
    for what, (k, text, ticket, kind) in attempts.items():
        assert js_open(js, k, text, ticket=ticket, kind=kind) == {"error": INVALID_ERROR}, what
        with pytest.raises(PyInvalidEnvelope):
            open_envelope(k, text, ticket=ticket, kind=kind)
    # The untouched envelope still opens: the failures above are the changes, not the setup.
    assert js_open(js, key, envelope, ticket="SUP-42", kind="wordpress") == {
        name: value for name, value in ROUND_TRIP_FIELDS["wordpress"].items() if value}


# Authentic envelopes (right key, ticket and kind) around plaintexts at the edges of "a flat
# JSON object of this kind's string fields": both sides must reach the same verdict.
EDGE_PLAINTEXTS: dict[str, bytes] = {
    "repeated-name": b'{"username":"a","username":"b"}',
    "utf8-bom": b'\xef\xbb\xbf{"username":"a"}',
    "surrounding-whitespace": b' \n{"username":"a"}\t',
    "escaped-lone-surrogate": b'{"username":"\\ud800"}',
    "escaped-pair": b'{"username":"\\ud83d\\ude00"}',
    "raw-control-character": b'{"username":"a\x01b"}',
    "nan-value": b'{"username":NaN}',
    "proto-name": b'{"__proto__":"a"}',
    "null": b"null",
    "string": b'"username"',
    "overlong-utf8": b'{"username":"\xc0\xaf"}',
    "encoded-surrogate": b'{"username":"\xed\xa0\x80"}',
}


@pytest.mark.parametrize("name", list(EDGE_PLAINTEXTS))
def test_edge_plaintexts_get_the_same_verdict(js: Call, name: str) -> None:
    key = generate_key()
    envelope = _seal_with_nonce(key, bytes(12), ticket="7", kind="wordpress",
                                plaintext=EDGE_PLAINTEXTS[name])
    try:
        expected: Any = open_envelope(key, envelope, ticket="7", kind="wordpress")
    except PyInvalidEnvelope:
        expected = {"error": INVALID_ERROR}
    assert js_open(js, key, envelope, ticket="7", kind="wordpress") == expected


def test_a_browser_without_object_has_own_still_seals(module_context: Callable[..., Any]
                                                      ) -> None:
    """Safari before 15.4 has no Object.hasOwn: an older iPhone must encrypt all the same."""
    context, _ = module_context()
    page = context.new_page()
    page.add_init_script("delete Object.hasOwn;")
    page.goto("/login")
    assert page.evaluate("typeof Object.hasOwn") == "undefined"
    answer = page.evaluate(CALL_JS, {"op": "generateKey", "args": []})
    key = answer["value"]
    answer = page.evaluate(CALL_JS, {"op": "seal",
                                     "args": [key, "SUP-42", "other", {"text": "x"}]})
    assert answer["ok"], answer
    assert open_envelope(key, answer["value"], ticket="SUP-42", kind="other") == {"text": "x"}
