"""Help Scout and Standard Webhooks: signatures, actions, replays, ordering."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from helpers import sealed, share, standard_signature, ticket_record

STANDARD_KEY = base64.b64decode("c2VjcmV0LWtleS1mb3Itc3RhbmRhcmQtd2ViaG9va3M=")


HS_SECRET = "hs-secret-one"


def hs_post(client: Any, event: str, body: dict[str, Any] | bytes, secret: str = HS_SECRET,
            signature: str | None = None) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"X-HelpScout-Event": event, "Content-Type": "application/json"}
    if signature is None:
        signature = base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()
                                     ).decode()
    if signature:
        headers["X-HelpScout-Signature"] = signature
    return client.post("/api/v1/webhooks/helpscout", data=raw, headers=headers)


def convo(number: int, status: str = "active", conv_id: int = 900001, **extra: Any
          ) -> dict[str, Any]:
    return {"id": conv_id, "number": number, "status": status, "subject": "Site is slow",
            "_embedded": {"threads": []}, "_links": {"self": {"href": "https://api"}}, **extra}


def std_post(client: Any, body: dict[str, Any], *, msg_id: str = "msg_1",
             timestamp: int, key: bytes = STANDARD_KEY, signature: str | None = None) -> Any:
    raw = json.dumps(body).encode()
    if signature is None:
        signature = standard_signature(key, msg_id, timestamp, raw)
    return client.post("/api/v1/webhooks/standard", data=raw, headers={
        "webhook-id": msg_id, "webhook-timestamp": str(timestamp),
        "webhook-signature": signature, "Content-Type": "application/json"})


def waiting(client: Any, secret_id: str) -> bool:
    return bool(client.get(f"/api/v1/secrets/{secret_id}").status_code == 200)


# -- Help Scout --------------------------------------------------------------------------------

def test_helpscout_close_with_a_good_signature_purges(client):
    s = share(client, "3001")
    rv = hs_post(client, "convo.status", convo(3001, "closed"))
    assert rv.status_code == 200
    assert rv.get_json()["purged"] == 1
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["reason"] == "purged"


def test_helpscout_any_configured_secret_signs(client):
    s = share(client, "3002")
    assert hs_post(client, "convo.status", convo(3002, "closed"),
                   secret="hs-secret-two").status_code == 200
    assert not waiting(client, s["id"])


def test_helpscout_wrong_or_missing_signature_is_401_and_purges_nothing(client):
    s = share(client, "3003")
    assert hs_post(client, "convo.status", convo(3003, "closed"),
                   secret="wrong").status_code == 401
    assert hs_post(client, "convo.status", convo(3003, "closed"), signature="").status_code == 401
    assert hs_post(client, "convo.status", convo(3003, "closed"),
                   signature="bm90IGEgc2lnbmF0dXJl").status_code == 401
    assert waiting(client, s["id"])


def test_helpscout_same_delivery_twice_is_acted_on_once(client, ext):
    body = convo(3004, "closed")
    first = hs_post(client, "convo.status", body)
    ext.vault.reopen("3004", actor="test")  # so that a second purge would have work to do
    later = share(client, "3004")
    again = hs_post(client, "convo.status", body)
    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["purged"] == first.get_json()["purged"]
    assert waiting(client, later["id"])  # the replay did not purge the new secret


def test_helpscout_assignment_sets_the_assignee_and_learns_the_user_id(client, agent, ext):
    body = convo(3005, assignee={"id": 4711, "email": agent.email.upper(), "first": "Alice"},
                 userUpdatedAt="2026-11-20T10:00:00Z")
    rv = hs_post(client, "convo.assigned", body)
    assert rv.status_code == 200
    assert ticket_record(ext.store, "3005")["assignee"] == agent.email
    assert ext.accounts.agent_for_helpscout("4711") == agent.email


def test_helpscout_older_assignment_is_ignored(client, agent, make_agent, ext):
    bob = make_agent("bob@example.com")
    newer = convo(3006, assignee={"id": 1, "email": agent.email},
                  userUpdatedAt="2026-11-20T10:00:00Z")
    older = convo(3006, assignee={"id": 2, "email": bob.email},
                  userUpdatedAt="2026-11-20T09:00:00Z")
    hs_post(client, "convo.assigned", newer)
    rv = hs_post(client, "convo.assigned", older)
    assert rv.status_code == 200
    assert rv.get_json()["action"] == "ignored"
    assert ticket_record(ext.store, "3006")["assignee"] == agent.email


def test_helpscout_old_reopening_cannot_reopen_a_closed_ticket(client):
    hs_post(client, "convo.status", convo(3007, "active", userUpdatedAt="2026-11-20T10:00:00Z"))
    hs_post(client, "convo.status", convo(3007, "closed", userUpdatedAt="2026-11-20T11:00:00Z"))
    rv = hs_post(client, "convo.status", convo(3007, "pending",
                                               userUpdatedAt="2026-11-20T09:30:00Z"))
    assert rv.get_json()["action"] == "ignored"
    envelope, _ = sealed("3007")
    assert client.post("/api/v1/secrets", json={"ticket": "3007", "kind": "wordpress",
                                               "envelope": envelope}).status_code == 409
    rv = hs_post(client, "convo.status", convo(3007, "active", userUpdatedAt="2026-11-20T12:00:00Z"))
    assert rv.get_json()["action"] == "reopened"


def test_helpscout_delete_by_id_purges_the_ticket_known_by_its_number(client):
    hs_post(client, "convo.assigned", convo(3008, conv_id=55501, assignee=None))
    s = share(client, "3008")
    rv = hs_post(client, "convo.deleted", {"id": 55501})
    assert rv.status_code == 200 and rv.get_json()["purged"] == 1
    assert not waiting(client, s["id"])
    unknown = hs_post(client, "convo.deleted", {"id": 99999999})
    assert unknown.status_code == 200 and unknown.get_json()["purged"] == 0


def test_helpscout_merge_and_spam_purge_and_test_event_answers(client):
    a, b = share(client, "3009"), share(client, "3010")
    assert hs_post(client, "convo.merged", convo(3009, conv_id=1)).get_json()["purged"] == 1
    assert hs_post(client, "convo.status", convo(3010, "spam", conv_id=2)).get_json()["purged"] \
        == 1
    assert not waiting(client, a["id"]) and not waiting(client, b["id"])
    assert hs_post(client, "helpscout.test", {"test": True}).status_code == 200


def test_helpscout_bad_json_with_a_good_signature_is_400(client):
    assert hs_post(client, "convo.status", b"not json").status_code == 400


# -- Standard Webhooks --------------------------------------------------------------------------

def test_standard_close_purges(client, clock):
    s = share(client, "4001")
    rv = std_post(client, {"type": "ticket.closed", "timestamp": "2026-11-25T10:00:00Z",
                           "data": {"ticket": "4001"}}, timestamp=int(clock()))
    assert rv.status_code == 200 and rv.get_json()["purged"] == 1
    assert not waiting(client, s["id"])


def test_standard_stale_timestamp_is_refused_and_changes_nothing(client, clock):
    s = share(client, "4002")
    body = {"type": "ticket.closed", "data": {"ticket": "4002"}}
    assert std_post(client, body, timestamp=int(clock()) - 301).status_code == 401
    assert std_post(client, body, timestamp=int(clock()) + 301, msg_id="m2").status_code == 401
    assert waiting(client, s["id"])


def test_standard_repeated_webhook_id_is_acted_on_once(client, clock, ext):
    body = {"type": "ticket.closed", "data": {"ticket": "4003"}}
    first = std_post(client, body, msg_id="msg_dup", timestamp=int(clock()))
    ext.vault.reopen("4003", actor="test")
    s = share(client, "4003")
    again = std_post(client, body, msg_id="msg_dup", timestamp=int(clock()))
    assert again.status_code == 200 and again.get_json()["duplicate"] is True
    assert again.get_json()["purged"] == first.get_json()["purged"]
    assert waiting(client, s["id"])


def test_standard_accepts_any_of_several_signatures_and_rotated_secrets(make_app, clock):
    new_key = b"a-brand-new-rotated-key-32-bytes"
    app = make_app(webhook_secret="whsec_" + base64.b64encode(new_key).decode() +
                   ",whsec_" + base64.b64encode(STANDARD_KEY).decode())
    client = app.test_client()
    s = share(client, "4004")
    body = {"type": "ticket.closed", "data": {"ticket": "4004"}}
    raw = json.dumps(body).encode()
    ts = int(clock())
    good = standard_signature(STANDARD_KEY, "m", ts, raw).removeprefix("v1,")
    # Beside the good one, signatures the library never makes: a wrong v1 and an unknown version.
    rv = std_post(client, body, msg_id="m", timestamp=ts,
                  signature=f"v1,bm9wZQ== v2,whatever v1,{good}")
    assert rv.status_code == 200
    assert not waiting(client, s["id"])


def test_standard_bad_signature_is_401(client, clock):
    s = share(client, "4005")
    rv = std_post(client, {"type": "ticket.closed", "data": {"ticket": "4005"}},
                  timestamp=int(clock()), key=b"wrong key")
    assert rv.status_code == 401
    assert waiting(client, s["id"])


def test_standard_assign_reopen_delete(client, clock, agent, ext):
    ts = int(clock())
    rv = std_post(client, {"type": "ticket.assigned", "data": {"ticket": "4006",
                                                              "agent": agent.email}},
                  msg_id="a1", timestamp=ts)
    assert rv.status_code == 200
    assert ticket_record(ext.store, "4006")["assignee"] == agent.email
    std_post(client, {"type": "ticket.deleted", "data": {"ticket": "4006"}}, msg_id="a2",
             timestamp=ts)
    assert ticket_record(ext.store, "4006")["closed"] == "1"
    rv = std_post(client, {"type": "ticket.reopened", "data": {"ticket": "4006"}}, msg_id="a3",
                  timestamp=ts)
    assert rv.get_json()["action"] == "reopened"
    # An unknown ticket's purge is a 200 with purged 0, never a 410.
    rv = std_post(client, {"type": "ticket.closed", "data": {"ticket": "never-seen"}},
                  msg_id="a4", timestamp=ts)
    assert rv.status_code == 200 and rv.get_json()["purged"] == 0


def test_helpscout_a_late_or_replayed_reopening_cannot_undo_a_close(client, ext):
    reopen = convo(3011, "active", userUpdatedAt="2026-11-20T10:00:00Z")
    hs_post(client, "convo.status", reopen)
    hs_post(client, "convo.status", convo(3011, "closed", userUpdatedAt="2026-11-20T11:00:00Z"))
    # The dedupe record of the first delivery is gone (24 h later): the replay is judged afresh.
    ext.store.client.delete(*ext.store.client.keys("vault:wh:*"))
    assert hs_post(client, "convo.status", reopen).get_json()["action"] == "ignored"
    late = convo(3011, "pending", userUpdatedAt="2026-11-20T10:30:00Z")
    assert hs_post(client, "convo.status", late).get_json()["action"] == "ignored"
    assert ticket_record(ext.store, "3011")["closed"] == "1"


def test_an_absurd_timestamp_is_401_not_500(client):
    rv = client.post("/api/v1/webhooks/standard", data=b"{}", headers={
        "webhook-id": "a", "webhook-timestamp": "9" * 400, "webhook-signature": "v1,xx"})
    assert rv.status_code == 401


def test_unsigned_floods_cannot_use_up_the_helpdesks_limit(make_app, clock):
    app = make_app(ratelimit_webhook="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert hs_post(client, "helpscout.test", {"x": 1}, secret="forged").status_code == 401
    flood = client.post("/api/v1/webhooks/helpscout", data=b"{}",
                        headers={"X-HelpScout-Signature": "AAAA"})
    assert flood.status_code == 429  # the flooding address is limited...
    genuine = client.post("/api/v1/webhooks/helpscout", data=json.dumps({"a": 1}).encode(),
                          environ_overrides={"REMOTE_ADDR": "198.51.100.7"}, headers={
                              "X-HelpScout-Event": "helpscout.test",
                              "X-HelpScout-Signature": base64.b64encode(hmac.new(
                                  HS_SECRET.encode(), b'{"a": 1}', hashlib.sha1).digest()
                              ).decode()})
    assert genuine.status_code == 200  # ...the helpdesk is not


def test_a_delivery_in_flight_answers_503_and_its_claim_is_short_lived(client, ext):
    body = convo(3012, "closed")
    raw = json.dumps(body).encode()
    digest = hashlib.sha256(raw).hexdigest()  # deliveries are known by their signed body
    assert ext.store.webhook_claim("helpscout", digest, 60_000) is None  # a worker mid-flight
    rv = hs_post(client, "convo.status", body)
    assert rv.status_code == 503 and "Retry-After" in rv.headers
    assert 0 < ext.store.client.pttl(f"vault:wh:helpscout:{digest}") <= 60_000


def test_a_malformed_assignee_changes_nothing(client, agent, ext):
    hs_post(client, "convo.assigned", convo(3013, assignee={"id": 1, "email": agent.email}))
    for bad in ("bob@example.com", ["x"], 7):
        rv = hs_post(client, "convo.assigned", convo(3013, assignee=bad))
        assert rv.status_code == 400
    assert ticket_record(ext.store, "3013")["assignee"] == agent.email
    hs_post(client, "convo.assigned", convo(3013, assignee={"id": {"a": 1}, "email": agent.email},
                                            userUpdatedAt="2026-11-21T00:00:00Z"))
    assert not list(ext.store.client.scan_iter("vault:{acct}:hsuser:{*"))
