"""Help Scout's event rules, called directly: no HTTP, and no Redis until a test applies one.

tests/test_webhooks.py drives the same rules through the webhook; here each rule is one call to
vault.helpdesks.helpscout, so the next change to them can be tried without a server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest
from helpers import share

from vault.errors import Unauthenticated
from vault.helpdesks import helpscout
from vault.helpdesks.tickets import (
    ASSIGNED,
    CLOSED,
    DELETED,
    IGNORED,
    MERGED,
    NONE,
    REFUSED,
    REOPENED,
    TEST,
    Deliveries,
    Delivery,
)

DIGEST = hashlib.sha256(b"a body").hexdigest()
SECRETS = ("hs-secret-one", "hs-secret-two")


def event(name: str, body: dict[str, Any]) -> Any:
    return helpscout.ticket_event(name, body, DIGEST)


def conversation(status: str = "active", **extra: Any) -> dict[str, Any]:
    return {"id": 900001, "number": 3001, "status": status,
            "userUpdatedAt": "2026-01-02T03:04:05Z", **extra}


def signed(raw: bytes, secret: str = SECRETS[1]) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha1).digest()).decode()


def headers(values: dict[str, str]) -> Any:
    return lambda name: values.get(name, "")


# -- what a body asks ---------------------------------------------------------------------------

def test_a_closed_conversation_closes_its_ticket_with_the_helpdesks_clock():
    found = event("convo.status", conversation("closed"))
    assert (found.kind, found.reason, found.ticket, found.conversation) == \
        (CLOSED, "closed", "3001", "900001")
    assert found.answer == {"event": "convo.status"}
    # The body's own time and digest go to the ticket script, which refuses older news.
    assert found.news.updated_ms == 1_767_323_045_000
    assert found.news.body == DIGEST[:32] and found.news.timed and not found.news.ordered


@pytest.mark.parametrize(("status", "kind", "reason"), [
    ("spam", CLOSED, "spam"), ("CLOSED", CLOSED, "closed"), ("active", REOPENED, ""),
    ("pending", REOPENED, ""), ("open", REOPENED, ""), ("archived", NONE, "")])
def test_the_status_is_read_from_the_body(status, kind, reason):
    found = event("convo.status", conversation(status))
    assert (found.kind, found.reason) == (kind, reason)


def test_a_deletion_is_the_conversation_id_alone():
    found = event("convo.deleted", {"id": 900001})
    assert (found.kind, found.ticket, found.conversation) == (DELETED, None, "900001")
    # A conversation's state named a deletion is not one.
    found = event("convo.deleted", conversation("active"))
    assert (found.kind, found.reason) == (IGNORED, helpscout.NOT_A_DELETION)
    assert found.name == "convo.deleted"


def test_a_merge_is_an_id_alone_or_a_conversation_refused_when_older():
    alone = event("convo.merged", {"id": 900001})
    assert (alone.kind, alone.news.ordered) == (MERGED, False)
    state = event("convo.merged", conversation("closed"))
    assert (state.kind, state.news.ordered) == (MERGED, True)
    other = event("convo.merged", {"id": 900001, "subject": "no number, no status"})
    assert (other.kind, other.reason) == (IGNORED, helpscout.NOT_A_CONVERSATION)


def test_an_assignment_names_the_agent_by_e_mail_and_keeps_their_help_scout_id():
    found = event("convo.assigned",
                  conversation(assignee={"id": 77, "email": " Alice@Example.com "}))
    assert (found.kind, found.assignee, found.helpdesk_user) == \
        (ASSIGNED, "alice@example.com", "77")
    nobody = event("convo.assigned", conversation(assignee=None))
    assert (nobody.kind, nobody.assignee, nobody.helpdesk_user) == (ASSIGNED, "", "")
    owner = event("convo.assigned", conversation(owner={"email": "bob@example.com", "id": "x"}))
    assert (owner.assignee, owner.helpdesk_user) == ("bob@example.com", "")


def test_an_assignment_body_that_cannot_say_who_is_ignored_or_refused():
    assert event("convo.assigned", conversation()).reason == helpscout.NOT_AN_ASSIGNMENT
    refused = event("convo.assigned", conversation(assignee="alice@example.com"))
    assert (refused.kind, refused.reason) == \
        (REFUSED, "The assignee must be an object with an e-mail, or null.")
    bad = event("convo.assigned", conversation(assignee={"email": "not an e-mail"}))
    assert (bad.kind, bad.reason) == (REFUSED, "The assignee's e-mail is not valid.")


def test_only_help_scouts_own_ids_and_numbers_are_used():
    found = event("convo.status", {"id": "90 0001", "number": True, "status": "closed"})
    assert (found.ticket, found.conversation) == (None, "")
    assert event("convo.status", {"id": 12, "number": "T-1", "status": "closed"}).ticket == "T-1"


def test_the_test_delivery_and_unknown_events_change_nothing():
    assert event("helpscout.test", {}).kind == TEST
    assert event("convo.created", conversation()).kind == NONE


@pytest.mark.parametrize(("value", "expected"), [
    ("2026-01-02T03:04:05Z", 1_767_323_045_000), ("2026-01-02T03:04:05", 1_767_323_045_000),
    ("2026-01-02T04:04:05+01:00", 1_767_323_045_000), ("2026-13-02T03:04:05Z", None),
    ("", None), (1_767_323_045, None)])
def test_help_scouts_update_time(value, expected):
    assert helpscout.updated_ms(value) == expected


# -- a delivery and its repeats -------------------------------------------------------------------

def test_a_delivery_is_verified_and_known_by_its_body_digest():
    desk = helpscout.HelpScout(SECRETS)
    raw = json.dumps(conversation("closed")).encode()
    delivery = desk.verify(raw, headers({"X-HelpScout-Signature": signed(raw),
                                         "X-HelpScout-Event": " convo.status "}))
    assert delivery == Delivery(digest=hashlib.sha256(raw).hexdigest(), raw=raw,
                                name="convo.status")
    with pytest.raises(Unauthenticated, match="does not match"):
        desk.verify(raw, headers({"X-HelpScout-Signature": signed(raw + b" ")}))
    with pytest.raises(Unauthenticated, match="Missing"):
        desk.verify(raw, headers({}))
    with pytest.raises(Unauthenticated, match="not configured"):
        helpscout.HelpScout(()).verify(raw, headers({"X-HelpScout-Signature": signed(raw)}))


def test_the_same_body_under_another_name_is_acted_on_once_per_name_it_can_be_read_as():
    desk = helpscout.HelpScout(SECRETS)
    raw = b'{"id": 900001}'

    def delivery(name: str) -> Delivery:
        return Delivery(digest=hashlib.sha256(raw).hexdigest(), raw=raw, name=name)

    first = {"event": "convo.status", "action": "none", "ticket": "3001"}
    assert desk.repeat(delivery("convo.status"), first) is None  # a plain repeat
    again = desk.repeat(delivery("convo.assigned"), first)
    assert again is not None and again.event is None
    assert again.digest == hashlib.sha256(b"convo.assigned\n" + raw).hexdigest()
    # A deletion is asserted by its name alone: a body seen as something else is not one.
    deleted = desk.repeat(delivery("convo.deleted"), first)
    assert deleted is not None and deleted.event is not None
    assert (deleted.event.kind, deleted.event.ticket, deleted.event.reason) == \
        (IGNORED, "3001", "the same body came as convo.status")
    odd = desk.repeat(delivery("convo.merged"), {"event": "<script>", "ticket": "no ticket!"})
    assert odd is not None and odd.event is not None
    assert (odd.event.ticket, odd.event.reason) == \
        (None, "the same body came as another event")


# -- applied, without HTTP -----------------------------------------------------------------------

def test_deliveries_apply_an_event_once_and_remember_the_conversation(app, ext):
    client = app.test_client()
    secret = share(client, "3001")
    counted: list[tuple[str, str]] = []
    deliveries = Deliveries(ext.vault, ext.accounts, ext.config,
                            lambda source, outcome: counted.append((source, outcome)))
    desk = helpscout.HelpScout(SECRETS)
    raw = json.dumps(conversation("closed")).encode()
    delivery = desk.verify(raw, headers({"X-HelpScout-Signature": signed(raw),
                                         "X-HelpScout-Event": "convo.status"}))
    answer = deliveries.receive(desk, delivery, json.loads(raw))
    assert answer == {"event": "convo.status", "action": "purged", "ticket": "3001", "purged": 1}
    assert deliveries.receive(desk, delivery, json.loads(raw)) == {**answer, "duplicate": True}
    assert counted == [("helpscout", "applied"), ("helpscout", "duplicate")]
    assert client.get(f"/api/v1/secrets/{secret['id']}").get_json()["reason"] == "purged"
    # The id came with the number: a later body with the id alone finds the ticket.
    assert ext.vault.conversation_ticket("900001") == "3001"
