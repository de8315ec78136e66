"""A stranger cannot lock a ticket: what an agent asked for always has room, and the assignee
can discard what anonymous senders put into the share flow's room.

The share flow (`POST /api/v1/secrets`) is anonymous, so a ticket's room for it
(`VAULT_MAX_WAITING_PER_TICKET` waiting secrets) can be filled by anyone who knows or guesses
the ticket number. A request's fill takes no place in that room; the ticket's assignee (or an
admin) deletes junk from it, unread, through the API or the ticket page, audited.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import asdict, replace
from typing import Any

import pytest

from tests.helpers import sealed, share
from tests.test_pages import fill, login, request_for
from vault.ids import new_id
from vault.logs import JsonFormatter

DAY = 86400


def problem(rv: Any) -> dict[str, Any]:
    assert rv.mimetype == "application/problem+json", rv.data
    return dict(json.loads(rv.data))


def junk(client: Any, ticket: str, count: int, *, ttl: int | None = None,
         addresses: int = 1) -> list[dict[str, Any]]:
    """`count` share-flow submissions to `ticket`, as a stranger sends them: from `addresses`
    client addresses in turn (the submit limit counts per address)."""
    made = []
    for i in range(count):
        envelope, _ = sealed(ticket, "other", {"text": f"junk {i}"})
        body: dict[str, Any] = {"ticket": ticket, "kind": "other", "envelope": envelope}
        if ttl is not None:
            body["ttl"] = ttl
        rv = client.post("/api/v1/secrets", json=body,
                         environ_base={"REMOTE_ADDR": f"203.0.113.{i % addresses + 1}"})
        assert rv.status_code == 201, (i, rv.get_json())
        made.append({**rv.get_json(), "envelope": envelope})
    return made


def shared_refused(client: Any, ticket: str) -> Any:
    envelope, _ = sealed(ticket)
    return client.post("/api/v1/secrets", json={"ticket": ticket, "kind": "wordpress",
                                               "envelope": envelope},
                       environ_base={"REMOTE_ADDR": "198.51.100.77"})


def state_of(client: Any, secret_id: str) -> tuple[int, str]:
    rv = client.get(f"/api/v1/secrets/{secret_id}")
    body = rv.get_json()
    return rv.status_code, body["state"] if rv.status_code == 200 else body["reason"]


def waiting_ids(client: Any, agent: Any, ticket: str) -> set[str]:
    view = client.get(f"/api/v1/tickets/{ticket}", headers=agent.headers).get_json()
    return {s["id"] for s in view["secrets"] if s["state"] == "waiting"}


# -- room for what the agent asked for --------------------------------------------------------------

def test_100_junk_shares_with_the_longest_ttl_leave_the_agents_request_fillable(
        make_app: Any, make_agent: Any) -> None:
    """The defaults as shipped: 100 waiting share-flow secrets per ticket, 30 days at most, 30
    submissions a minute per address. A stranger with four addresses fills the room for 30
    days; the customer's answer to the agent's request still gets in, and reveals."""
    app = make_app()
    config = app.extensions["vault"].config
    assert (config.max_waiting_per_ticket, config.max_ttl) == (100, 30 * DAY)
    client = app.test_client()
    agent = make_agent("alice@example.com")
    request_id = request_for(client, agent, "7001")
    junk(client, "7001", 100, ttl=30 * DAY, addresses=4)
    full = shared_refused(client, "7001")
    assert full.status_code == 409 and problem(full)["reason"] == "ticket-full"

    envelope, _ = sealed("7001")
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "wordpress", "envelope": envelope},
                     environ_base={"REMOTE_ADDR": "192.0.2.10"})
    assert rv.status_code == 201, rv.get_json()
    secret_id = rv.get_json()["secret_id"]
    assert client.get(f"/api/v1/requests/{request_id}").get_json()["state"] == "submitted"
    # The share flow is still full after the fill: the fill took no place in its room...
    again = shared_refused(client, "7001")
    assert again.status_code == 409 and problem(again)["reason"] == "ticket-full"
    # ... and the agent reads what they asked for.
    revealed = client.post(f"/api/v1/secrets/{secret_id}/reveal", headers=agent.headers)
    assert revealed.status_code == 200 and revealed.get_json()["envelope"] == envelope


def test_every_request_on_a_full_ticket_is_fillable(make_app: Any, make_agent: Any) -> None:
    app = make_app(max_waiting_per_ticket=2)
    client = app.test_client()
    agent = make_agent("alice@example.com")
    junk(client, "7002", 2)
    request_ids = [request_for(client, agent, "7002") for _ in range(5)]
    filled = [fill(client, rid, "7002")["secret_id"] for rid in request_ids]
    assert len(set(filled)) == 5
    assert set(filled) <= waiting_ids(client, agent, "7002")
    assert len(waiting_ids(client, agent, "7002")) == 7  # 2 shared + 5 fills, all waiting
    assert shared_refused(client, "7002").status_code == 409


def test_fills_take_no_place_in_the_share_flows_room(make_app: Any, make_agent: Any) -> None:
    """The other way round: fills first, and the room is still whole for the share flow."""
    app = make_app(max_waiting_per_ticket=2)
    client = app.test_client()
    agent = make_agent("alice@example.com")
    for _ in range(3):
        fill(client, request_for(client, agent, "7003"), "7003")
    junk(client, "7003", 2)
    full = shared_refused(client, "7003")
    assert full.status_code == 409 and problem(full)["reason"] == "ticket-full"


def test_a_refill_after_the_customer_deleted_is_not_refused_by_a_full_room(
        make_app: Any, make_agent: Any) -> None:
    app = make_app(max_waiting_per_ticket=1)
    client = app.test_client()
    agent = make_agent("alice@example.com")
    request_id = request_for(client, agent, "7004")
    first = fill(client, request_id, "7004")
    junk(client, "7004", 1)
    assert client.delete(f"/api/v1/secrets/{first['secret_id']}",
                         headers={"X-Manage-Token": first["manage_token"]}).status_code == 204
    second = fill(client, request_id, "7004")
    assert state_of(client, second["secret_id"]) == (200, "waiting")


def test_a_closed_ticket_still_refuses_a_fill(client: Any, agent: Any, helpdesk: Any) -> None:
    """The room no longer applies to fills; the close still does."""
    request_id = request_for(client, agent, "7005")
    assert client.post("/api/v1/tickets/7005/close", headers=helpdesk).status_code == 200
    envelope, _ = sealed("7005")
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 410 and problem(rv)["reason"] == "purged"


# -- discard through the API ------------------------------------------------------------------------

@pytest.fixture
def assigned(client: Any, agent: Any) -> str:
    """Ticket 7100, assigned to `agent` (by a request of theirs)."""
    request_for(client, agent, "7100")
    return "7100"


def test_the_assignee_discards_a_waiting_share_with_a_bearer_token(
        client: Any, agent: Any, assigned: str) -> None:
    made = junk(client, assigned, 2)
    rv = client.delete(f"/api/v1/secrets/{made[0]['id']}", headers=agent.headers)
    assert rv.status_code == 204 and rv.data == b""
    assert state_of(client, made[0]["id"]) == (410, "discarded")
    assert state_of(client, made[1]["id"]) == (200, "waiting")  # only that one
    assert waiting_ids(client, agent, assigned) == {made[1]["id"]}
    # The ticket stays open and keeps taking submissions.
    view = client.get(f"/api/v1/tickets/{assigned}", headers=agent.headers).get_json()
    assert view["state"] == "open" and view["purged"] == 0
    share(client, assigned)
    # A second discard, a reveal and the customer's own delete: gone, saying why.
    again = client.delete(f"/api/v1/secrets/{made[0]['id']}", headers=agent.headers)
    assert again.status_code == 410 and problem(again)["reason"] == "discarded"
    reveal = client.post(f"/api/v1/secrets/{made[0]['id']}/reveal", headers=agent.headers)
    assert reveal.status_code == 410 and problem(reveal)["reason"] == "discarded"
    own = client.delete(f"/api/v1/secrets/{made[0]['id']}",
                        headers={"X-Manage-Token": made[0]["manage_token"]})
    assert own.status_code == 410 and problem(own)["reason"] == "discarded"


def test_another_agent_is_refused_and_nothing_changes(client: Any, agent: Any, make_agent: Any,
                                                      assigned: str) -> None:
    bob = make_agent("bob@example.com")
    made = junk(client, assigned, 1)[0]
    rv = client.delete(f"/api/v1/secrets/{made['id']}", headers=bob.headers)
    assert rv.status_code == 403
    assert state_of(client, made["id"]) == (200, "waiting")
    events = client.get(f"/api/v1/tickets/{assigned}", headers=agent.headers).get_json()["events"]
    refused = [e for e in events if e["event"] == "discard.refused"]
    assert [(e["id"], e["actor"]) for e in refused] == [(made["id"], bob.email)]
    # 403 before 410: once it is gone, bob still learns nothing about it.
    assert client.delete(f"/api/v1/secrets/{made['id']}", headers=agent.headers).status_code == 204
    assert client.delete(f"/api/v1/secrets/{made['id']}", headers=bob.headers).status_code == 403


def test_an_admin_may_discard_on_any_ticket_even_unassigned(client: Any, agent: Any,
                                                            admin: Any, assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    assert client.delete(f"/api/v1/secrets/{made['id']}", headers=admin.headers).status_code == 204
    assert state_of(client, made["id"]) == (410, "discarded")
    # A ticket nobody is assigned to: no agent may, an admin may.
    loose = junk(client, "7101", 1)[0]
    assert client.delete(f"/api/v1/secrets/{loose['id']}", headers=agent.headers).status_code == 403
    assert state_of(client, loose["id"]) == (200, "waiting")
    assert client.delete(f"/api/v1/secrets/{loose['id']}", headers=admin.headers).status_code == 204
    view = client.get("/api/v1/tickets/7101", headers=admin.headers).get_json()
    assert view["assignee"] is None  # a discard claims nothing
    discarded = [e for e in view["events"] if e["event"] == "secret.discarded"]
    assert [(e["actor"], e["detail"]) for e in discarded] == [(admin.email, "other by an admin")]


def test_without_a_manage_token_or_a_credential_nothing_is_deleted(
        client: Any, assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    rv = client.delete(f"/api/v1/secrets/{made['id']}")
    assert rv.status_code == 403  # the customer's call without its token, as always
    for headers in ({"Authorization": "Bearer vt_" + "A" * 43}, {"Authorization": "Basic eDp5"}):
        assert client.delete(f"/api/v1/secrets/{made['id']}", headers=headers).status_code == 401
    assert state_of(client, made["id"]) == (200, "waiting")


def test_a_helpdesk_key_cannot_discard(client: Any, helpdesk: Any, assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    assert client.delete(f"/api/v1/secrets/{made['id']}", headers=helpdesk).status_code == 403
    assert state_of(client, made["id"]) == (200, "waiting")


def test_a_manage_token_makes_it_the_customers_delete_whatever_else_is_sent(
        client: Any, agent: Any, assigned: str) -> None:
    """The customer's delete works exactly as before: the manage token decides, even beside
    the assignee's own token (a wrong manage token is 403, not a discard)."""
    made = junk(client, assigned, 1)[0]
    wrong = "vm_" + "B" * 43
    rv = client.delete(f"/api/v1/secrets/{made['id']}",
                       headers={**agent.headers, "X-Manage-Token": wrong})
    assert rv.status_code == 403
    assert state_of(client, made["id"]) == (200, "waiting")
    rv = client.delete(f"/api/v1/secrets/{made['id']}",
                       headers={"X-Manage-Token": made["manage_token"]})
    assert rv.status_code == 204
    assert state_of(client, made["id"]) == (410, "deleted")


def test_a_session_cookie_needs_its_csrf_token(client: Any, agent: Any, assigned: str) -> None:
    csrf = login(client, agent)
    made = junk(client, assigned, 1)[0]
    for headers in ({}, {"X-CSRF-Token": "x" * 43}):
        rv = client.delete(f"/api/v1/secrets/{made['id']}", headers=headers)
        assert rv.status_code == 403 and problem(rv)["reason"] == "csrf"
        assert state_of(client, made["id"]) == (200, "waiting")
    rv = client.delete(f"/api/v1/secrets/{made['id']}", headers={"X-CSRF-Token": csrf})
    assert rv.status_code == 204
    assert state_of(client, made["id"]) == (410, "discarded")


def test_what_is_not_waiting_is_gone_and_unknown_is_404(client: Any, agent: Any,
                                                        helpdesk: Any, clock: Any,
                                                        assigned: str) -> None:
    revealed, expiring = share(client, assigned), share(client, assigned, ttl=60)
    assert client.post(f"/api/v1/secrets/{revealed['id']}/reveal",
                       headers=agent.headers).status_code == 200
    rv = client.delete(f"/api/v1/secrets/{revealed['id']}", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "revealed"
    assert problem(rv)["revealed_by"]
    deleted = share(client, assigned)
    client.delete(f"/api/v1/secrets/{deleted['id']}",
                  headers={"X-Manage-Token": deleted["manage_token"]})
    rv = client.delete(f"/api/v1/secrets/{deleted['id']}", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "deleted"
    for unknown in (new_id(assigned), "A" * 28, "not-an-id"):
        assert client.delete(f"/api/v1/secrets/{unknown}", headers=agent.headers).status_code == 404
    clock.advance(61)
    rv = client.delete(f"/api/v1/secrets/{expiring['id']}", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "expired"
    purged = share(client, assigned)
    assert client.post(f"/api/v1/tickets/{assigned}/close", headers=helpdesk).status_code == 200
    rv = client.delete(f"/api/v1/secrets/{purged['id']}", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "purged"


def test_a_discard_frees_room_for_a_new_share(make_app: Any, make_agent: Any) -> None:
    app = make_app(max_waiting_per_ticket=3)
    client = app.test_client()
    agent = make_agent("alice@example.com")
    request_for(client, agent, "7102")
    made = junk(client, "7102", 3)
    assert shared_refused(client, "7102").status_code == 409
    for i, item in enumerate(made[:2]):
        assert client.delete(f"/api/v1/secrets/{item['id']}",
                             headers=agent.headers).status_code == 204
        assert shared_refused(client, "7102").status_code == 201, i
    assert shared_refused(client, "7102").status_code == 409  # exactly the room freed


def test_a_discarded_fill_opens_its_request_again(client: Any, agent: Any,
                                                  assigned: str) -> None:
    request_id = request_for(client, agent, assigned)
    filled = fill(client, request_id, assigned)
    assert client.delete(f"/api/v1/secrets/{filled['secret_id']}",
                         headers=agent.headers).status_code == 204
    state = client.get(f"/api/v1/requests/{request_id}").get_json()
    assert state["state"] == "open" and "secret_id" not in state
    manage = client.get(f"/m/{filled['secret_id']}").data.decode()
    assert "reason-discarded" in manage and 'id="delete-button"' not in manage
    assert "The support team deleted it without reading it." in manage
    refilled = fill(client, request_id, assigned)  # the customer sends again, same link
    assert state_of(client, refilled["secret_id"]) == (200, "waiting")


def test_a_discard_is_audited_with_who_and_never_what(client: Any, agent: Any, ext: Any,
                                                      assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logging.getLogger("vault").addHandler(handler)
    try:
        assert client.delete(f"/api/v1/secrets/{made['id']}",
                             headers=agent.headers).status_code == 204
    finally:
        logging.getLogger("vault").removeHandler(handler)
    ticket_events = [e for e in ext.store.ticket_audit(assigned) if e.event == "secret.discarded"]
    global_events = [e for e in ext.store.audit_tail(50) if e.event == "secret.discarded"]
    assert [(e.id, e.actor, e.detail) for e in ticket_events] == [
        (made["id"], agent.email, "other by the assignee")]
    # The same events in both streams (each stream numbers its own entries).
    assert [replace(e, stream_id="") for e in global_events] == [
        replace(e, stream_id="") for e in ticket_events]
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    audited = [line["audit"] for line in lines if line.get("logger") == "vault.audit"]
    assert [(a["event"], a["id"], a["ticket"], a["actor"]) for a in audited] == [
        ("secret.discarded", made["id"], assigned, agent.email)]
    everything = json.dumps([asdict(e) for e in ext.store.audit_tail(1000)]) \
        + stream.getvalue()
    for secret in (made["envelope"], made["envelope"][3:40], made["manage_token"], "junk 0",
                   agent.token):
        assert secret not in everything


# -- the ticket page ---------------------------------------------------------------------------------

def discard_buttons(page: str) -> list[str]:
    """The secret ids the page offers to discard."""
    return re.findall(r'name="secret" value="([A-Za-z0-9_-]{28})"', page)


def test_the_ticket_page_offers_discard_for_waiting_secrets_to_the_assignee(
        client: Any, agent: Any, assigned: str) -> None:
    made = junk(client, assigned, 2)
    revealed = share(client, assigned)
    assert client.post(f"/api/v1/secrets/{revealed['id']}/reveal",
                       headers=agent.headers).status_code == 200
    login(client, agent)
    page = client.get(f"/tickets/{assigned}").data.decode()
    # Both waiting ones (made within one second: their order on the page is not the point),
    # not the revealed one.
    assert sorted(discard_buttons(page)) == sorted(m["id"] for m in made)
    assert "the share page" in page


def test_the_page_offers_discard_to_admins_but_not_to_other_agents(
        app: Any, agent: Any, admin: Any, make_agent: Any, assigned: str) -> None:
    made = junk(app.test_client(), assigned, 1)[0]
    bob, boss = app.test_client(), app.test_client()
    login(bob, make_agent("bob@example.com"))
    login(boss, admin)
    assert discard_buttons(bob.get(f"/tickets/{assigned}").data.decode()) == []
    assert discard_buttons(boss.get(f"/tickets/{assigned}").data.decode()) == [made["id"]]


def test_the_discard_button_discards_and_comes_back_with_a_message(
        client: Any, agent: Any, assigned: str) -> None:
    made = junk(client, assigned, 2)
    csrf = login(client, agent)
    rv = client.post(f"/tickets/{assigned}", data={"csrf_token": csrf, "action": "discard",
                                                   "secret": made[0]["id"]})
    assert rv.status_code == 303
    assert rv.headers["Location"] == f"/tickets/{assigned}?done=discarded"
    assert state_of(client, made[0]["id"]) == (410, "discarded")
    assert state_of(client, made[1]["id"]) == (200, "waiting")
    page = client.get(rv.headers["Location"]).data.decode()
    assert "Discarded: nobody can read it now" in page
    assert discard_buttons(page) == [made[1]["id"]]
    assert "secret.discarded" in page  # in the ticket's history


def test_a_discard_form_without_the_csrf_field_changes_nothing(client: Any, agent: Any,
                                                               assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    csrf = login(client, agent)
    altered = csrf[:-1] + ("B" if csrf.endswith("A") else "A")
    for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": altered}):
        rv = client.post(f"/tickets/{assigned}", data={**form, "action": "discard",
                                                       "secret": made["id"]})
        assert rv.status_code == 403
        assert state_of(client, made["id"]) == (200, "waiting")


def test_a_discard_form_refused_shows_the_page_again_and_changes_nothing(
        app: Any, agent: Any, make_agent: Any, assigned: str) -> None:
    api = app.test_client()
    made = junk(api, assigned, 1)[0]
    other = junk(api, "7199", 1)[0]  # a ticket of nobody's
    bob = app.test_client()
    bob_csrf = login(bob, make_agent("bob@example.com"))
    rv = bob.post(f"/tickets/{assigned}", data={"csrf_token": bob_csrf, "action": "discard",
                                                "secret": made["id"]})
    assert rv.status_code == 403 and "Only the agent assigned to this ticket" in rv.data.decode()
    assert state_of(api, made["id"]) == (200, "waiting")

    alice = app.test_client()
    csrf = login(alice, agent)
    # A secret of another ticket, posted to this ticket's page: not here.
    rv = alice.post(f"/tickets/{assigned}", data={"csrf_token": csrf, "action": "discard",
                                                  "secret": other["id"]})
    assert rv.status_code == 404
    assert state_of(api, other["id"]) == (200, "waiting")
    for form, status in (({"secret": "not-an-id"}, 404), ({"secret": new_id(assigned)}, 404),
                         ({"secret": made["id"], "action": "purge"}, 400)):
        rv = alice.post(f"/tickets/{assigned}",
                        data={"csrf_token": csrf, "action": "discard", **form})
        assert rv.status_code == status, form
        assert 'class="alert error"' in rv.data.decode()
    assert state_of(api, made["id"]) == (200, "waiting")
    assert alice.post(f"/tickets/{assigned}", data={"csrf_token": csrf, "action": "discard",
                                                    "secret": made["id"]}).status_code == 303
    rv = alice.post(f"/tickets/{assigned}", data={"csrf_token": csrf, "action": "discard",
                                                  "secret": made["id"]})
    assert rv.status_code == 410 and "no longer waiting" in rv.data.decode()


def test_an_anonymous_discard_form_goes_to_the_login_page(client: Any, assigned: str) -> None:
    made = junk(client, assigned, 1)[0]
    rv = client.post(f"/tickets/{assigned}", data={"action": "discard", "secret": made["id"]})
    assert rv.status_code == 303 and rv.headers["Location"].startswith("/login?next=")
    assert state_of(client, made["id"]) == (200, "waiting")
