"""The two flows (docs/architecture.md) through the JSON API, on a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import WP_FIELDS, sealed, share, ticket_record

from vault.crypto import open_envelope
from vault.ids import slot_tag
from vault.storage.keys import envelope as envelope_key
from vault.storage.keys import gone as gone_key
from vault.storage.keys import ticket as ticket_key


def problem(rv: Any) -> dict[str, Any]:
    assert rv.mimetype == "application/problem+json", rv.data
    body: dict[str, Any] = rv.get_json()
    for field in ("type", "title", "status", "detail"):
        assert field in body
    assert body["status"] == rv.status_code
    return body


# -- request flow (agent first) -------------------------------------------------------------

def test_request_flow_end_to_end(client, agent):
    rv = client.post("/api/v1/requests", json={"ticket": "12345", "note": "WP admin please"},
                     headers=agent.headers)
    assert rv.status_code == 201
    req = rv.get_json()
    assert req["ticket"] == "12345"
    assert req["url"] == f"https://vault.test/r/{req['id']}"
    assert "#" not in req["url"]
    assert req["id"].startswith(slot_tag("12345"))

    assert client.get(f"/api/v1/requests/{req['id']}").get_json()["state"] == "open"

    envelope, key = sealed("12345")
    rv = client.post(f"/api/v1/requests/{req['id']}/secret",
                     json={"kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 201
    filled = rv.get_json()
    assert filled["manage_token"].startswith("vm_")
    state = client.get(f"/api/v1/requests/{req['id']}").get_json()
    assert state["state"] == "submitted"
    assert state["secret_id"] == filled["secret_id"]

    rv = client.post(f"/api/v1/secrets/{filled['secret_id']}/reveal", headers=agent.headers)
    assert rv.status_code == 200
    body = rv.get_json()
    assert (body["kind"], body["ticket"]) == ("wordpress", "12345")
    assert open_envelope(key, body["envelope"], ticket="12345", kind="wordpress") == WP_FIELDS
    assert client.get(f"/api/v1/requests/{req['id']}").get_json()["state"] == "revealed"


def test_request_sets_the_assignee_when_there_is_none(client, agent, make_agent):
    other = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "77"}, headers=agent.headers)
    client.post("/api/v1/requests", json={"ticket": "77"}, headers=other.headers)
    view = client.get("/api/v1/tickets/77", headers=agent.headers).get_json()
    assert view["assignee"] == agent.email


def test_filling_a_filled_request_is_a_conflict_but_the_same_retry_is_answered(client, agent):
    req = client.post("/api/v1/requests", json={"ticket": "5"}, headers=agent.headers).get_json()
    envelope, _ = sealed("5")
    first = client.post(f"/api/v1/requests/{req['id']}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    retry = client.post(f"/api/v1/requests/{req['id']}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    assert retry.status_code == 201
    assert retry.get_json()["secret_id"] == first.get_json()["secret_id"]
    assert retry.get_json()["expires_at"] == first.get_json()["expires_at"]
    # The first answer was lost: its manage token is replaced by the retry's, which works.
    sid, token = retry.get_json()["secret_id"], retry.get_json()["manage_token"]
    assert client.delete(f"/api/v1/secrets/{sid}",
                         headers={"X-Manage-Token": first.get_json()["manage_token"]}
                         ).status_code == 403
    assert client.delete(f"/api/v1/secrets/{sid}", headers={"X-Manage-Token": token}
                         ).status_code == 204
    assert client.get(f"/api/v1/requests/{req['id']}").get_json()["state"] == "open"
    first = client.post(f"/api/v1/requests/{req['id']}/secret",
                        json={"kind": "wordpress", "envelope": envelope})
    assert first.status_code == 201
    other, _ = sealed("5")
    rv = client.post(f"/api/v1/requests/{req['id']}/secret",
                     json={"kind": "wordpress", "envelope": other})
    assert rv.status_code == 409


def test_customer_delete_puts_a_request_back_to_open(client, agent):
    req = client.post("/api/v1/requests", json={"ticket": "6"}, headers=agent.headers).get_json()
    envelope, _ = sealed("6")
    filled = client.post(f"/api/v1/requests/{req['id']}/secret",
                         json={"kind": "wordpress", "envelope": envelope}).get_json()
    rv = client.delete(f"/api/v1/secrets/{filled['secret_id']}",
                       headers={"X-Manage-Token": filled["manage_token"]})
    assert rv.status_code == 204
    assert client.get(f"/api/v1/requests/{req['id']}").get_json()["state"] == "open"
    assert problem(client.get(f"/api/v1/secrets/{filled['secret_id']}"))["reason"] == "deleted"


def test_unknown_request_is_404_and_expired_request_is_410(client, agent, clock):
    assert client.get("/api/v1/requests/" + "A" * 28).status_code == 404
    req = client.post("/api/v1/requests", json={"ticket": "8"}, headers=agent.headers).get_json()
    clock.advance(8 * 86400)
    rv = client.get(f"/api/v1/requests/{req['id']}")
    assert rv.status_code == 410
    assert problem(rv)["reason"] == "expired"


# -- share flow (customer first) --------------------------------------------------------------

def test_share_flow_end_to_end(client, agent, ext):
    s = share(client, "1001")
    assert s["url"] == f"https://vault.test/s/{s['id']}"
    meta = client.get(f"/api/v1/secrets/{s['id']}").get_json()
    assert meta["state"] == "waiting"
    assert meta["ticket"] == "1001" and meta["kind"] == "wordpress"
    assert "envelope" not in meta
    # Assigning without credentials is refused and assigns nobody: the reveal below claims.
    rv = client.put("/api/v1/tickets/1001/assignee", json={"agent": agent.email})
    assert rv.status_code == 401
    assert not ticket_record(ext.store, "1001").get("assignee")
    rv = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)  # claims
    assert rv.status_code == 200
    assert open_envelope(s["key"], rv.get_json()["envelope"], ticket="1001",
                         kind="wordpress") == WP_FIELDS
    meta = client.get(f"/api/v1/secrets/{s['id']}").get_json()
    assert meta["state"] == "revealed"
    assert meta["revealed_by"] == "Alice"
    assert meta["revealed_at"]


def test_ttl_above_the_maximum_is_400(client):
    envelope, _ = sealed("1")
    rv = client.post("/api/v1/secrets", json={"ticket": "1", "kind": "wordpress",
                                             "envelope": envelope, "ttl": 31 * 86400})
    assert rv.status_code == 400
    assert problem(rv)["invalid_params"][0]["name"] == "ttl"


def test_validation_errors_name_every_bad_field(client):
    rv = client.post("/api/v1/secrets", json={"ticket": "bad ticket!", "kind": "ftp",
                                             "envelope": "v2.nope"})
    assert rv.status_code == 400
    names = {p["name"] for p in problem(rv)["invalid_params"]}
    assert names == {"ticket", "kind", "envelope"}


@pytest.mark.parametrize("body", [b"[]", b"\"x\"", b"{", b"\xff\xfe", b"1" * 10,
                                  b"{" * 5000 + b"}" * 5000])
def test_bodies_that_are_not_a_json_object_are_400(client, body):
    rv = client.post("/api/v1/secrets", data=body, content_type="application/json")
    assert rv.status_code == 400
    problem(rv)


def test_bodies_over_64_kib_are_413(client):
    rv = client.post("/api/v1/secrets", json={"ticket": "1", "kind": "wordpress",
                                             "envelope": "v1." + "A" * 70000})
    assert rv.status_code == 413
    problem(rv)


@pytest.mark.parametrize("bad_id", ["short", "A" * 29, "A" * 27 + "!", "A" * 27 + "B"])
def test_ids_of_the_wrong_shape_are_404(client, agent, bad_id):
    # "A"*27+"B": base64url with non-zero trailing bits, not canonical.
    assert client.get(f"/api/v1/secrets/{bad_id}").status_code == 404
    assert client.post(f"/api/v1/secrets/{bad_id}/reveal", headers=agent.headers).status_code \
        == 404
    assert client.get(f"/api/v1/requests/{bad_id}").status_code == 404


# -- reveal semantics ------------------------------------------------------------------------

def test_reveal_by_a_non_assignee_is_403_and_consumes_nothing(client, agent, make_agent):
    bob = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "900"}, headers=agent.headers)
    s = share(client, "900")
    rv = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=bob.headers)
    assert rv.status_code == 403
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 200
    # 403 comes before 410: the wrong agent learns nothing about the state.
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=bob.headers).status_code \
        == 403


def test_the_winning_session_may_refetch_within_the_grace_window_only(client, agent, clock,
                                                                     ext):
    s = share(client, "31")
    first = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    again = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    assert again.status_code == 200
    assert again.get_json()["envelope"] == first.get_json()["envelope"]
    # Another session (a second token) of the same agent gets nothing.
    token, _ = ext.accounts.create_token(agent.email)
    rv = client.post(f"/api/v1/secrets/{s['id']}/reveal",
                     headers={"Authorization": f"Bearer {token}"})
    assert rv.status_code == 410
    body = problem(rv)
    assert body["reason"] == "revealed" and body["revealed_by"] == "Alice"
    clock.advance(61)
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 410


def test_ack_deletes_the_envelope_at_once(client, agent, redis_client, ext):
    s = share(client, "32")
    client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    assert redis_client.exists(envelope_key(s["id"]))
    assert client.post(f"/api/v1/secrets/{s['id']}/ack", headers=agent.headers).status_code == 204
    assert not redis_client.exists(envelope_key(s["id"]))
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 410
    # Acknowledging again is still 204; another session is 403.
    assert client.post(f"/api/v1/secrets/{s['id']}/ack", headers=agent.headers).status_code == 204
    token, _ = ext.accounts.create_token(agent.email)
    assert client.post(f"/api/v1/secrets/{s['id']}/ack",
                       headers={"Authorization": f"Bearer {token}"}).status_code == 403


def test_grace_zero_deletes_the_envelope_in_the_reveal_itself(make_app, agent, redis_client):
    app = make_app(reveal_grace=0)
    client = app.test_client()
    s = share(client, "33")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 200
    assert not redis_client.exists(envelope_key(s["id"]))
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 410


def test_unassigned_policy_deny_refuses(make_app, agent):
    app = make_app(unassigned="deny")
    client = app.test_client()
    s = share(client, "34")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 403
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"


def test_assignment_to_an_unknown_email_leaves_nobody_able_to_reveal(client, agent, admin):
    rv = client.put("/api/v1/tickets/35/assignee", json={"agent": "ghost@example.com"},
                    headers=admin.headers)
    assert rv.status_code == 200
    assert rv.get_json()["known_agent"] is False
    s = share(client, "35")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 403
    client.put("/api/v1/tickets/35/assignee", json={"agent": agent.email}, headers=admin.headers)
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 200


def test_expired_secret_is_410_expired(client, agent, clock):
    s = share(client, "36", ttl=3600)
    clock.advance(3601)
    rv = client.get(f"/api/v1/secrets/{s['id']}")
    assert rv.status_code == 410 and problem(rv)["reason"] == "expired"
    rv = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "expired"


def test_a_revealed_secret_cannot_be_deleted_by_the_customer(client, agent):
    s = share(client, "37")
    client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    rv = client.delete(f"/api/v1/secrets/{s['id']}", headers={"X-Manage-Token": s["manage_token"]})
    assert rv.status_code == 410 and problem(rv)["reason"] == "revealed"


def test_delete_needs_the_right_manage_token(client):
    s = share(client, "38")
    other = share(client, "38")
    assert client.delete(f"/api/v1/secrets/{s['id']}").status_code == 403
    assert client.delete(f"/api/v1/secrets/{s['id']}",
                         headers={"X-Manage-Token": other["manage_token"]}).status_code == 403
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"


# -- tickets, purge and tombstones -----------------------------------------------------------

def test_close_purges_everything_and_leaves_only_the_tombstone(client, agent, helpdesk, ext,
                                                              redis_client):
    req = client.post("/api/v1/requests", json={"ticket": "4242"},
                      headers=agent.headers).get_json()
    shared = [share(client, "4242") for _ in range(3)]
    client.post(f"/api/v1/secrets/{shared[0]['id']}/reveal", headers=agent.headers)
    rv = client.post("/api/v1/tickets/4242/close", headers=helpdesk)
    assert rv.status_code == 200
    assert rv.get_json() == {"ticket": "4242", "purged": 4}
    assert client.post("/api/v1/tickets/4242/close", headers=helpdesk).get_json()["purged"] == 0

    for s in shared:
        rv = client.get(f"/api/v1/secrets/{s['id']}")
        assert rv.status_code == 410 and problem(rv)["reason"] == "purged"
    assert client.get(f"/api/v1/requests/{req['id']}").status_code == 410
    tag = slot_tag("4242")
    left = {k.decode() for k in redis_client.scan_iter(f"vault:{{{tag}}}:*")}
    gone = {gone_key(i) for i in [req["id"], *[s["id"] for s in shared]]}
    assert left == {ticket_key("4242"), f"vault:{{{tag}}}:log:4242"} | gone
    for key in left - {f"vault:{{{tag}}}:log:4242"}:
        assert redis_client.pttl(key) > 0, key


def test_a_closed_ticket_refuses_submissions_until_reopened(client, agent, helpdesk):
    req = client.post("/api/v1/requests", json={"ticket": "50"}, headers=agent.headers).get_json()
    client.post("/api/v1/tickets/50/close", headers=helpdesk)
    envelope, _ = sealed("50")
    rv = client.post("/api/v1/secrets", json={"ticket": "50", "kind": "wordpress",
                                             "envelope": envelope})
    assert rv.status_code == 409
    assert client.post(f"/api/v1/requests/{req['id']}/secret",
                       json={"kind": "wordpress", "envelope": envelope}).status_code == 410
    assert client.post("/api/v1/tickets/50/reopen", headers=helpdesk).status_code == 200
    assert client.post("/api/v1/secrets", json={"ticket": "50", "kind": "wordpress",
                                               "envelope": envelope}).status_code == 201


def test_the_tombstone_expires_with_its_ttl(make_app, helpdesk, redis_client):
    app = make_app(tombstone_ttl=30 * 86400)
    client = app.test_client()
    client.post("/api/v1/tickets/51/close", headers=helpdesk)
    ttl = redis_client.pttl(ticket_key("51"))
    assert 29 * 86400 * 1000 < ttl <= 30 * 86400 * 1000


def test_a_ticket_key_gets_a_life_then_only_a_longer_one(make_app, helpdesk, redis_client):
    """Each submission makes a ticket's keys live at least as long as it needs, and never
    shortens a longer life one of them already has (a reopened ticket's 30-day record)."""
    app = make_app(tombstone_ttl=30 * 86400)
    client = app.test_client()
    record = ticket_key("52")
    waiting = f"vault:{{{slot_tag('52')}}}:w:52"
    client.post("/api/v1/tickets/52/close", headers=helpdesk)
    client.post("/api/v1/tickets/52/reopen", headers=helpdesk)
    share(client, "52", ttl=3600)
    assert 3599_000 < redis_client.pttl(waiting) <= 3600_000  # a new key: given its first life
    assert redis_client.pttl(record) > 29 * 86400 * 1000  # the longer life stays
    share(client, "52", ttl=86400)
    assert 86399_000 < redis_client.pttl(waiting) <= 86400_000  # pushed later
    share(client, "52", ttl=3600)
    assert 86398_000 < redis_client.pttl(waiting) <= 86400_000  # not shortened
    assert redis_client.pttl(record) > 29 * 86400 * 1000


def test_a_ticket_is_full_at_the_waiting_limit(make_app):
    app = make_app(max_waiting_per_ticket=2)
    client = app.test_client()
    share(client, "60")
    share(client, "60")
    envelope, _ = sealed("60")
    rv = client.post("/api/v1/secrets", json={"ticket": "60", "kind": "wordpress",
                                             "envelope": envelope})
    assert rv.status_code == 409 and problem(rv)["reason"] == "ticket-full"


def test_an_expired_secret_no_longer_takes_a_ticket_s_room(make_app, clock):
    """Only live waiting secrets count against the limit: once one has expired (its member may
    still stand in the waiting set, tidied later), its place is free again."""
    app = make_app(max_waiting_per_ticket=1)
    client = app.test_client()
    share(client, "61", ttl=3600)
    envelope, _ = sealed("61")
    body = {"ticket": "61", "kind": "wordpress", "envelope": envelope}
    assert client.post("/api/v1/secrets", json=body).status_code == 409
    clock.advance(3600)  # the first one's expiry: from this millisecond on it is gone
    assert client.post("/api/v1/secrets", json=body).status_code == 201


def test_close_and_assignee_need_a_helpdesk_key_or_an_admin(client, agent, admin, helpdesk):
    assert client.post("/api/v1/tickets/70/close").status_code == 401
    assert client.post("/api/v1/tickets/70/close", headers=agent.headers).status_code == 403
    assert client.post("/api/v1/tickets/70/close", headers=admin.headers).status_code == 200
    rv = client.put("/api/v1/tickets/70/assignee", json={"agent": agent.email}, headers=helpdesk)
    assert rv.status_code == 200
    assert client.put("/api/v1/tickets/70/assignee", json={"agent": agent.email},
                      headers=agent.headers).status_code == 403


def test_ticket_view_lists_items_and_events_without_content(client, agent):
    client.post("/api/v1/requests", json={"ticket": "80"}, headers=agent.headers)
    s = share(client, "80")
    view = client.get("/api/v1/tickets/80", headers=agent.headers).get_json()
    assert view["assignee"] == agent.email
    assert [x["state"] for x in view["requests"]] == ["open"]
    assert [x["id"] for x in view["secrets"]] == [s["id"]]
    assert {"request.created", "secret.submitted"} <= {e["event"] for e in view["events"]}
    assert s["envelope"] not in str(view) and s["manage_token"] not in str(view)
    assert client.get("/api/v1/tickets/80").status_code == 401
    assert client.get("/api/v1/tickets/bad%20ticket", headers=agent.headers).status_code == 400


def test_a_claim_by_reveal_gives_the_ticket_record_a_lifetime(client, agent, ext, redis_client):
    s = share(client, "90")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 200
    assert ticket_record(ext.store, "90")["assignee"] == agent.email
    assert redis_client.pttl(ticket_key("90")) > 0


def test_a_revealed_secret_is_expired_after_its_ttl(client, agent, clock):
    s = share(client, "91", ttl=3600)
    client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "revealed"
    clock.advance(3601)
    rv = client.get(f"/api/v1/secrets/{s['id']}")
    assert rv.status_code == 410 and problem(rv)["reason"] == "expired"


def test_a_one_second_ttl_is_allowed(client):
    assert share(client, "92", ttl=1)["id"]


def test_403_comes_before_410_for_purged_and_deleted_secrets(client, agent, make_agent, helpdesk):
    bob = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "93"}, headers=agent.headers)
    deleted, purged = share(client, "93"), share(client, "93")
    client.delete(f"/api/v1/secrets/{deleted['id']}",
                  headers={"X-Manage-Token": deleted["manage_token"]})
    client.post("/api/v1/tickets/93/close", headers=helpdesk)
    for s, reason in ((deleted, "purged"), (purged, "purged")):
        assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=bob.headers
                           ).status_code == 403
        rv = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
        assert rv.status_code == 410 and problem(rv)["reason"] in {"deleted", reason}


def test_the_assignee_may_acknowledge_after_a_purge(client, agent, make_agent, helpdesk):
    bob = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "94"}, headers=agent.headers)
    s = share(client, "94")
    client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    client.post("/api/v1/tickets/94/close", headers=helpdesk)
    assert client.post(f"/api/v1/secrets/{s['id']}/ack", headers=agent.headers).status_code == 204
    assert client.post(f"/api/v1/secrets/{s['id']}/ack", headers=bob.headers).status_code == 403


@pytest.mark.parametrize("path,body", [
    ("/api/v1/requests", '{"ticket": "95", "note": "\\ud800"}'),
    ("/api/v1/secrets", '{"ticket": "95", "kind": "other", "envelope": "\\udfff"}'),
    ("/api/v1/tickets/95/assignee", '{"agent": "\\ud800@example.com"}'),
])
def test_lone_surrogates_are_400_not_500(client, admin, path, body):
    method = "PUT" if path.endswith("assignee") else "POST"
    rv = client.open(path, method=method, data=body, content_type="application/json",
                     headers=admin.headers)
    assert rv.status_code == 400
    problem(rv)


@pytest.mark.parametrize("depth,too_deep", [(20, False), (21, True)])
def test_a_body_nested_past_20_levels_is_refused_before_validation(client, depth, too_deep):
    inner = "[" * (depth - 2) + "1" + "]" * (depth - 2)
    body = f'{{"ticket": "98", "kind": "other", "envelope": "x", "extra": {{"a": {inner}}}}}'
    rv = client.post("/api/v1/secrets", data=body, content_type="application/json")
    assert rv.status_code == 400
    detail = problem(rv)["detail"]
    assert detail == ("The JSON is nested too deeply." if too_deep
                      else "Some fields are not valid: envelope.")


def test_deny_policy_keeps_403_before_410_for_gone_secrets(make_app, agent):
    app = make_app(unassigned="deny")
    client = app.test_client()
    s = share(client, "96")
    client.delete(f"/api/v1/secrets/{s['id']}", headers={"X-Manage-Token": s["manage_token"]})
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers
                       ).status_code == 403


def test_an_expired_secret_claims_no_ticket(client, agent, ext, clock):
    s = share(client, "97", ttl=60)
    clock.advance(61)
    rv = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)
    assert rv.status_code == 410 and problem(rv)["reason"] == "expired"
    assert not ticket_record(ext.store, "97").get("assignee")


def test_no_content_answers_carry_no_page_policy(client):
    s = share(client, "98")
    rv = client.delete(f"/api/v1/secrets/{s['id']}", headers={"X-Manage-Token": s["manage_token"]})
    assert rv.status_code == 204
    assert "Content-Type" not in rv.headers
    assert rv.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"


def test_a_name_stored_before_the_name_rule_is_shown_within_it(client, agent, ext):
    """A name from an older vault (control characters, a bidi override) is recorded at the
    reveal as it is stored, and cleaned wherever the API shows it."""
    ext.store.update_agent(agent.email, {"name": "Al\x1b[2Jice\u202e\r\nX"})
    s = share(client, "8801")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).status_code \
        == 200
    client.post(f"/api/v1/secrets/{s['id']}/ack", headers=agent.headers)
    meta = client.get(f"/api/v1/secrets/{s['id']}").get_json()
    again = client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers).get_json()
    ticket = client.get("/api/v1/tickets/8801", headers=agent.headers).get_json()
    shown = [meta["revealed_by"], again["revealed_by"],
             *[x["revealed_by"] for x in ticket["secrets"]]]
    assert shown == ["Al[2Jice X"] * 3
