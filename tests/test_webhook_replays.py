"""A Help Scout delivery is acted on only as the event its body is.

Help Scout signs the body, not the `X-HelpScout-Event` header that names it: whoever captured one
signed delivery can send its body again under any event name, today or months later. What a
status change or an assignment does is read from the signed body; a deletion and a merge are
asserted by the name alone, so a body that is not theirs is ignored (200, audited), never
acted on. A body without Help Scout's `userUpdatedAt` cannot undo a later update.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from helpers import share, ticket_record
from test_webhooks import convo, hs_post, waiting

from vault.storage.keys import ticket as ticket_key

EVENTS = ["convo.assigned", "convo.status", "convo.deleted", "convo.merged", "convo.created",
          "convo.moved", "convo.tags", "convo.customer.reply.created", "customer.created",
          "satisfaction.ratings", "helpscout.test", "", "CONVO.DELETED", "convo.deleted "]
T1, T2, T3, T4 = ("2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z",
                  "2026-11-20T13:00:00Z")


def forget_deliveries(ext: Any) -> None:
    """What the dedupe window's end does (24 h later): every delivery record goes."""
    for key in list(ext.store.client.scan_iter("vault:wh:*")):
        ext.store.client.delete(key)


def audited(ext: Any, ticket: str) -> list[dict[str, Any]]:
    events = ext.vault.audit_log(limit=1000)["events"]
    return [e for e in events if e["event"] == "webhook.ignored" and e["ticket"] == ticket]


# Signed bodies Help Scout sends that purge nothing as the event they came as: (the event,
# the body) for conversation `number` whose id is `conv_id`.
def captured(kind: str, number: int, conv_id: int, agent: str) -> tuple[str, dict[str, Any]]:
    return {
        "assigned": ("convo.assigned", convo(number, conv_id=conv_id, userUpdatedAt=T1,
                                             assignee={"id": 1, "email": agent})),
        "active": ("convo.status", convo(number, "active", conv_id=conv_id, userUpdatedAt=T1)),
        "untimed": ("convo.status", convo(number, "pending", conv_id=conv_id)),
        "customer": ("customer.created", {"id": conv_id, "firstName": "Ann", "lastName": "Lee",
                                          "emails": [{"value": "ann@example.com"}]}),
        "rating": ("satisfaction.ratings", {"id": conv_id, "conversationId": conv_id,
                                            "rating": "great"}),
    }[kind]


@pytest.mark.parametrize("later", [False, True], ids=["within-24h", "after-24h"])
def test_no_captured_body_purges_under_another_event_name(make_app, make_agent, later) -> None:
    app = make_app(ratelimit_submit="1000/minute", ratelimit_webhook="1000/minute")
    client, ext = app.test_client(), app.extensions["vault"]
    agent = make_agent("alice@example.com")
    kinds = ["assigned", "active", "untimed", "customer", "rating"]
    for number, (kind, event) in enumerate(itertools.product(kinds, EVENTS), start=5100):
        conv_id = 70000 + number
        # The conversation is known to vault (an earlier event), and holds a waiting secret.
        hs_post(client, "convo.assigned", convo(number, conv_id=conv_id,
                                                assignee={"id": 1, "email": agent.email},
                                                userUpdatedAt="2026-11-20T09:00:00Z"))
        first, body = captured(kind, number, conv_id, agent.email)
        assert hs_post(client, first, body).status_code == 200
        s = share(client, str(number))
        if later:
            forget_deliveries(ext)
        rv = hs_post(client, event, body)
        assert rv.status_code == 200, (kind, event, rv.get_json())
        assert rv.get_json().get("action") != "purged", (kind, event, rv.get_json())
        assert waiting(client, s["id"]), (kind, event)


def test_an_assignment_body_renamed_a_deletion_is_ignored_and_audited(client, ext, agent):
    body = convo(5001, conv_id=66001, assignee={"id": 1, "email": agent.email},
                 userUpdatedAt=T1)
    assert hs_post(client, "convo.assigned", body).get_json()["action"] == "assigned"
    s = share(client, "5001")
    rv = hs_post(client, "convo.deleted", body)
    assert rv.status_code == 200
    assert rv.get_json()["action"] == "ignored" and rv.get_json()["ticket"] == "5001"
    forget_deliveries(ext)
    rv = hs_post(client, "convo.deleted", body)
    assert rv.get_json()["action"] == "ignored"
    assert "deletion" in rv.get_json()["reason"]
    assert waiting(client, s["id"])
    entries = audited(ext, "5001")
    assert len(entries) == 2 and all(e["actor"] == "helpscout" for e in entries)
    assert all(e["detail"].startswith("convo.deleted: ") for e in entries)
    assert "Site is slow" not in json.dumps(entries)  # the body itself is never audited
    # A deletion as Help Scout sends it, the conversation id alone, still purges.
    rv = hs_post(client, "convo.deleted", {"id": 66001})
    assert rv.get_json()["action"] == "purged" and rv.get_json()["purged"] == 1


def test_a_body_renamed_a_merge_is_ignored_months_later_and_after_a_reopening(
        client, ext, agent):
    captured_body = convo(5002, conv_id=66002, assignee={"id": 1, "email": agent.email},
                          userUpdatedAt=T1)
    hs_post(client, "convo.assigned", captured_body)
    # Within the dedupe window: the same signed body, named a merge.
    rv = hs_post(client, "convo.merged", captured_body)
    assert rv.get_json()["action"] == "ignored"
    assert rv.get_json()["reason"] == "the same body came as convo.assigned"
    # Then the ticket closes and reopens, and months pass.
    hs_post(client, "convo.status", convo(5002, "closed", conv_id=66002, userUpdatedAt=T2))
    hs_post(client, "convo.status", convo(5002, "active", conv_id=66002, userUpdatedAt=T3))
    s = share(client, "5002")
    forget_deliveries(ext)
    for body in (captured_body, convo(5002, "closed", conv_id=66002, userUpdatedAt=T2)):
        rv = hs_post(client, "convo.merged", body)
        assert rv.get_json()["action"] == "ignored", rv.get_json()
        assert rv.get_json()["reason"] == "older than the last update"
    # The last body applied, renamed a merge after the window: that very body was an update.
    forget_deliveries(ext)
    rv = hs_post(client, "convo.merged", convo(5002, "active", conv_id=66002, userUpdatedAt=T3))
    assert rv.get_json()["action"] == "ignored"
    assert waiting(client, s["id"])
    assert len(audited(ext, "5002")) == 4
    # A real merge, news of its own, purges.
    rv = hs_post(client, "convo.merged", convo(5002, "closed", conv_id=66002, userUpdatedAt=T4))
    assert rv.get_json()["action"] == "purged" and rv.get_json()["purged"] == 1


def test_one_body_sent_for_a_status_change_and_an_assignment_is_acted_on_as_both(
        client, ext, agent, make_agent):
    """Help Scout may send one state of the conversation for two events at once."""
    bob = make_agent("bob@example.com")
    body = convo(5003, "active", conv_id=66003, assignee={"id": 2, "email": bob.email},
                 userUpdatedAt=T1)
    assert hs_post(client, "convo.status", body).get_json()["action"] == "none"
    rv = hs_post(client, "convo.assigned", body)
    assert rv.get_json()["action"] == "assigned"
    assert ticket_record(ext.store, "5003")["assignee"] == bob.email
    # Each one's repeat is answered from its own first result.
    assert hs_post(client, "convo.assigned", body).get_json()["duplicate"] is True
    assert hs_post(client, "convo.status", body).get_json()["duplicate"] is True
    # A closing assigned at the same moment: the status change still purges.
    s = share(client, "5003")
    closing = convo(5003, "closed", conv_id=66003, assignee={"id": 2, "email": bob.email},
                    userUpdatedAt=T2)
    assert hs_post(client, "convo.assigned", closing).get_json()["action"] == "assigned"
    rv = hs_post(client, "convo.status", closing)
    assert rv.get_json()["action"] == "purged" and rv.get_json()["purged"] == 1
    assert not waiting(client, s["id"])


def test_a_body_without_its_time_cannot_undo_a_later_update(client, ext, agent, make_agent):
    bob = make_agent("bob@example.com")
    hs_post(client, "convo.assigned", convo(5004, conv_id=66004,
                                            assignee={"id": 1, "email": agent.email},
                                            userUpdatedAt=T1))
    rv = hs_post(client, "convo.assigned", convo(5004, conv_id=66004,
                                                 assignee={"id": 2, "email": bob.email}))
    assert rv.get_json()["action"] == "ignored"
    assert ticket_record(ext.store, "5004")["assignee"] == agent.email
    hs_post(client, "convo.status", convo(5004, "closed", conv_id=66004, userUpdatedAt=T2))
    rv = hs_post(client, "convo.status", convo(5004, "active", conv_id=66004))
    assert rv.get_json()["action"] == "ignored"
    assert ticket_record(ext.store, "5004").get("closed") == "1"
    assert len(audited(ext, "5004")) == 2
    # A closing is applied with or without its time.
    hs_post(client, "convo.status", convo(5004, "active", conv_id=66004, userUpdatedAt=T3))
    s = share(client, "5004")
    assert hs_post(client, "convo.status",
                   convo(5004, "closed", conv_id=66004)).get_json()["purged"] == 1
    assert not waiting(client, s["id"])


def test_a_conversation_vault_never_had_a_time_for_takes_bodies_without_one(client, ext, agent):
    rv = hs_post(client, "convo.assigned", convo(5005, conv_id=66005,
                                                 assignee={"id": 1, "email": agent.email}))
    assert rv.get_json()["action"] == "assigned"
    hs_post(client, "convo.status", convo(5005, "closed", conv_id=66005))
    rv = hs_post(client, "convo.status", convo(5005, "active", conv_id=66005))
    assert rv.get_json()["action"] == "reopened"


def test_an_assignment_without_an_assignee_field_changes_nothing(client, ext, agent):
    hs_post(client, "convo.assigned", convo(5006, conv_id=66006,
                                            assignee={"id": 1, "email": agent.email},
                                            userUpdatedAt=T1))
    rv = hs_post(client, "convo.assigned", convo(5006, conv_id=66006, userUpdatedAt=T2))
    assert rv.get_json()["action"] == "ignored"
    assert ticket_record(ext.store, "5006")["assignee"] == agent.email
    # An explicit null assignee is an unassignment, as before.
    rv = hs_post(client, "convo.assigned", convo(5006, conv_id=66006, assignee=None,
                                                 userUpdatedAt=T3))
    assert rv.get_json()["action"] == "assigned"
    assert ticket_record(ext.store, "5006")["assignee"] == ""


def test_a_body_of_the_same_moment_as_the_last_one_renamed_a_merge_is_ignored(client, ext,
                                                                               agent):
    """A status change and an assignment of one agent's action share their userUpdatedAt."""
    assigned = convo(5007, conv_id=66007, assignee={"id": 1, "email": agent.email},
                     userUpdatedAt=T1)
    status = convo(5007, "pending", conv_id=66007, assignee={"id": 1, "email": agent.email},
                   userUpdatedAt=T1, preview="another body")
    hs_post(client, "convo.assigned", assigned)
    hs_post(client, "convo.status", status)
    s = share(client, "5007")
    forget_deliveries(ext)
    for body in (assigned, status):
        rv = hs_post(client, "convo.merged", body)
        assert rv.get_json()["action"] == "ignored", rv.get_json()
    assert waiting(client, s["id"])


def test_a_merge_of_a_ticket_vault_forgot_purges_nothing_and_leaves_no_tombstone(client, ext,
                                                                                agent):
    captured_body = convo(5008, conv_id=66008, assignee={"id": 1, "email": agent.email},
                          userUpdatedAt=T1)
    hs_post(client, "convo.assigned", captured_body)
    # Months later: the ticket record and every delivery record have expired.
    ext.store.client.delete(ticket_key("5008"))
    forget_deliveries(ext)
    rv = hs_post(client, "convo.merged", captured_body)
    assert rv.status_code == 200 and rv.get_json()["purged"] == 0
    assert share(client, "5008")["id"]  # the ticket takes submissions: no tombstone
