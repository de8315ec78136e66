"""Atheris target: the helpdesk webhooks' signature checks and body parsers (vault/helpdesks/,
and the Help Scout sidebar that shares the Help Scout signature).

Properties, for every input:
- `helpscout.verify_body` returns only for the right signature and otherwise raises
  Unauthenticated;
- `standard.verify` (Standard Webhooks headers: id, timestamp, signatures) returns the message
  id only for a valid signature inside the tolerance, otherwise raises Unauthenticated;
- `parse_json_object` returns a dict or raises BadRequest; `helpscout.updated_ms` returns an
  int or None;
- a delivery signed for real, with any event and any body (structured like the helpdesks'
  bodies, or any bytes), is answered 200, 400 or 413 as problem+json, never 5xx, and no
  exception escapes the app (it runs with exceptions propagated).

Deliveries go to an app in the embedded mode (its in-process store), so the target needs no
Redis. CI runs it for a fixed number of inputs from a fixed seed (tests/test_fuzz_parsers.py).
By hand:

    mkdir -p .cache/fuzz/webhooks
    .venv/bin/python tests/fuzz/fuzz_webhooks.py -max_total_time=600 \
        -artifact_prefix=.cache/fuzz/ .cache/fuzz/webhooks

(a crash leaves its input in .cache/fuzz/crash-*; pass that file alone to replay it)
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import sys
from typing import Any

# Libraries are imported before the instrumented block: only vault's own code is instrumented.
import argon2  # noqa: F401
import atheris
import fakeredis  # noqa: F401
import flask
import flask_babel  # noqa: F401
import limits  # noqa: F401
import prometheus_client  # noqa: F401
import redis  # noqa: F401

with atheris.instrument_imports():
    from vault import create_app
    from vault.errors import BadRequest, Unauthenticated
    from vault.helpdesks import helpscout, standard
    from vault.web import parse_json_object

NOW = 1_790_000_000
HS_SECRETS = ("hs-secret-one", "hs-secret-two")
APP_SECRET = "hs-app-secret"
STANDARD_KEY = b"secret-key-for-standard-webhooks"
WHSEC = "whsec_" + base64.b64encode(STANDARD_KEY).decode()

APP = create_app({"env": "development", "log_level": "ERROR", "ratelimit_enabled": False,
                  "helpscout_secret": ",".join(HS_SECRETS), "helpscout_app_secret": APP_SECRET,
                  "webhook_secret": "whsec_bm90LWJhc2U2NA==," + WHSEC, "clock": lambda: NOW})
APP.testing = True  # an exception escapes as itself, not as a 500 page
EXT = APP.extensions["vault"]
CLIENT = APP.test_client()
logging.disable(logging.CRITICAL)  # the app logs every refusal; nothing to read here
EXT.accounts.add_agent("agent@example.com", "correct horse battery staple")

HS_EVENTS = ["convo.status", "convo.deleted", "convo.merged", "convo.assigned",
             "helpscout.test", "convo.created", ""]
HS_KEYS = ["id", "number", "status", "assignee", "owner", "userUpdatedAt", "email", "ticket",
           "customer", "user", "mailbox", "subject"]
STD_TYPES = ["ticket.closed", "ticket.deleted", "ticket.reopened", "ticket.assigned", "other"]
STD_KEYS = ["type", "timestamp", "data", "ticket", "agent"]
STATUSES = ["closed", "spam", "active", "pending", "open", "CLOSED"]
EMAILS = ["agent@example.com", "nobody@example.com", "not an e-mail", ""]
DATES = ["2026-01-01T00:00:00Z", "2026-01-01T00:00:00", "2026-13-01T00:00:00Z",
         "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def json_value(fdp: atheris.FuzzedDataProvider, keys: list[str], depth: int = 0) -> Any:
    """A JSON value shaped like a helpdesk body: objects with the keys they use, and values of
    every type at any of them."""
    choice = fdp.ConsumeIntInRange(0, 10 if depth < 4 else 7)
    if choice == 0:
        return None
    if choice == 1:
        return fdp.ConsumeBool()
    if choice == 2:
        return fdp.ConsumeInt(fdp.ConsumeIntInRange(1, 12))
    if choice == 3:
        return fdp.ConsumeRegularFloat()
    if choice == 4:
        return fdp.PickValueInList(STATUSES + EMAILS + DATES)
    if choice == 5:
        return str(fdp.ConsumeIntInRange(0, 10**6))
    if choice in (6, 7):
        return fdp.ConsumeUnicode(fdp.ConsumeIntInRange(0, 30))
    if choice == 8:
        return [json_value(fdp, keys, depth + 1) for _ in range(fdp.ConsumeIntInRange(0, 3))]
    return {fdp.PickValueInList(keys): json_value(fdp, keys, depth + 1)
            for _ in range(fdp.ConsumeIntInRange(0, 6))}


def body_of(fdp: atheris.FuzzedDataProvider, keys: list[str]) -> bytes:
    if fdp.ConsumeIntInRange(0, 4) == 0:
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300))  # any bytes
    value = json_value(fdp, keys)
    if fdp.ConsumeIntInRange(0, 4):  # mostly an object, as the helpdesks send
        value = {fdp.PickValueInList(keys): json_value(fdp, keys)
                 for _ in range(fdp.ConsumeIntInRange(0, 7))} if not isinstance(value, dict) \
            else value
    return json.dumps(value, ensure_ascii=fdp.ConsumeBool()).encode("utf-8", "surrogatepass")


def helpscout_signature(raw: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()).decode()


def standard_headers(msg_id: str, stamp: str, raw: bytes) -> dict[str, str]:
    digest = hmac.new(STANDARD_KEY, f"{msg_id}.{stamp}.".encode() + raw, hashlib.sha256).digest()
    return {"webhook-id": msg_id, "webhook-timestamp": stamp,
            "webhook-signature": "v1," + base64.b64encode(digest).decode()}


def oneline(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def answered(rv: Any, allowed: set[int]) -> None:
    assert rv.status_code in allowed, (rv.status_code, rv.get_data()[:300])
    if rv.status_code != 200:
        assert rv.mimetype == "application/problem+json", rv.mimetype


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 6)
    if mode == 0:  # Help Scout's signature check on any body and header
        raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        header = oneline(fdp.ConsumeUnicodeNoSurrogates(40))
        if fdp.ConsumeBool():
            header = helpscout_signature(raw, fdp.PickValueInList(list(HS_SECRETS)))
        valid = header.strip() in {helpscout_signature(raw, s) for s in HS_SECRETS}
        try:
            helpscout.verify_body(raw, HS_SECRETS, header or None)
            assert valid, "a wrong signature was accepted"
        except Unauthenticated:
            assert not valid, "a right signature was refused"
        return
    if mode == 1:  # Standard Webhooks' headers on any body
        raw = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 200))
        # No line breaks: no HTTP server hands a header value with one to the app.
        msg_id = oneline(fdp.ConsumeUnicodeNoSurrogates(20))
        stamp = str(NOW + fdp.ConsumeIntInRange(-400, 400)) if fdp.ConsumeBool() \
            else oneline(fdp.ConsumeUnicodeNoSurrogates(12))
        headers = standard_headers(msg_id, stamp, raw)
        signed = True
        if fdp.ConsumeBool():
            headers["webhook-signature"] = oneline(fdp.ConsumeUnicodeNoSurrogates(60))
            signed = False
        elif fdp.ConsumeBool():  # several signatures, one of them right
            headers["webhook-signature"] = f"v2,abc {headers['webhook-signature']} v1,x"
        # A plain id and a timestamp inside the tolerance, signed right: it must be accepted.
        valid = signed and msg_id.isascii() and msg_id.isprintable() and msg_id == msg_id.strip() \
            and msg_id != "" and stamp.isdigit() and abs(int(stamp) - NOW) <= 300
        with APP.test_request_context("/api/v1/webhooks/standard", method="POST",
                                      headers=headers, data=raw):
            try:
                got = standard.verify(raw, lambda name: flask.request.headers.get(name, ""),
                                      EXT.config.webhook_secret,
                                      tolerance=EXT.config.webhook_tolerance, now=NOW)
            except Unauthenticated:
                assert not valid, "a right signature was refused"
                return
        assert got == msg_id
        return
    if mode == 2:  # the body parser and the date parser
        with contextlib.suppress(BadRequest):
            assert isinstance(parse_json_object(fdp.ConsumeBytes(300)), dict)
        when = helpscout.updated_ms(fdp.PickValueInList(DATES) if fdp.ConsumeBool()
                                    else fdp.ConsumeUnicodeNoSurrogates(30))
        assert when is None or isinstance(when, int)
        return
    if mode in (3, 4):  # a signed Help Scout delivery: any event, any body
        raw = body_of(fdp, HS_KEYS)
        event = fdp.PickValueInList(HS_EVENTS) if fdp.ConsumeIntInRange(0, 7) \
            else fdp.ConsumeUnicodeNoSurrogates(20).encode("latin-1", "replace").decode("latin-1")
        rv = CLIENT.post("/api/v1/webhooks/helpscout", data=raw, headers={
            "X-HelpScout-Signature": helpscout_signature(raw, HS_SECRETS[mode - 3]),
            "X-HelpScout-Event": oneline(event)})
        answered(rv, {200, 400, 413})
        return
    if mode == 5:  # a signed Standard Webhooks delivery
        raw = body_of(fdp, STD_KEYS)
        if fdp.ConsumeBool():
            value: dict[str, Any] = {"type": fdp.PickValueInList(STD_TYPES),
                                     "data": {"ticket": json_value(fdp, STD_KEYS),
                                              "agent": fdp.PickValueInList(EMAILS)}}
            raw = json.dumps(value).encode()
        msg_id = f"msg_{fdp.ConsumeIntInRange(0, 50)}"
        rv = CLIENT.post("/api/v1/webhooks/standard", data=raw,
                         headers=standard_headers(msg_id, str(NOW), raw))
        answered(rv, {200, 400, 413})
        return
    # The Help Scout sidebar: the same signature scheme, with the app's secret.
    raw = body_of(fdp, HS_KEYS)
    rv = CLIENT.post("/integrations/helpscout/sidebar", data=raw,
                     headers={"X-HelpScout-Signature": helpscout_signature(raw, APP_SECRET)})
    answered(rv, {200, 400, 413})
    if rv.status_code == 200:
        assert isinstance(rv.get_json()["html"], str)


def main() -> None:
    flask.Flask  # noqa: B018  (the app above is a Flask app, imported before instrumentation)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
