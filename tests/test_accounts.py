"""Agents, tokens, helpdesk keys, web sessions, CSRF and rate limits."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import share

from vault.crypto.passwords import Passwords
from vault.errors import Conflict, NotFound
from vault.web import SESSION_COOKIE

PASSWORD = "correct horse battery staple"


def login(client: Any, email: str, password: str = PASSWORD) -> Any:
    return client.post("/api/v1/session", json={"email": email, "password": password})


def cookie_of(rv: Any) -> str:
    header = rv.headers["Set-Cookie"]
    assert "Secure" in header and "HttpOnly" in header and "SameSite=Lax" in header
    assert header.startswith(SESSION_COOKIE + "=") and "Path=/" in header
    return str(header.split(";")[0].split("=", 1)[1])


def with_cookie(cookie: str, csrf: str | None = None) -> dict[str, str]:
    headers = {"Cookie": f"{SESSION_COOKIE}={cookie}"}
    if csrf:
        headers["X-CSRF-Token"] = csrf
    return headers


def test_login_sets_a_host_cookie_and_returns_the_csrf_token(client, agent):
    rv = login(client, agent.email)
    assert rv.status_code == 200
    body = rv.get_json()
    assert body["agent"]["email"] == agent.email and body["csrf_token"]
    cookie = cookie_of(rv)
    state = client.get("/api/v1/session", headers=with_cookie(cookie))
    assert state.status_code == 200 and state.get_json()["csrf_token"] == body["csrf_token"]


def test_login_errors_do_not_say_which_part_was_wrong(client, agent):
    wrong_password = login(client, agent.email, "not the password at all")
    unknown = login(client, "nobody@example.com")
    assert wrong_password.status_code == unknown.status_code == 401
    assert wrong_password.get_json()["detail"] == unknown.get_json()["detail"]


def test_cookie_calls_that_change_state_need_the_csrf_token(client, agent):
    rv = login(client, agent.email)
    cookie, csrf = cookie_of(rv), rv.get_json()["csrf_token"]
    s = share(client, "c-1")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=with_cookie(cookie)
                       ).status_code == 403
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal",
                       headers=with_cookie(cookie, "wrong")).status_code == 403
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal",
                       headers=with_cookie(cookie, csrf)).status_code == 200


def test_a_web_login_is_its_own_session_for_reveals(client, agent):
    rv = login(client, agent.email)
    cookie, csrf = cookie_of(rv), rv.get_json()["csrf_token"]
    s = share(client, "c-2")
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal",
                       headers=with_cookie(cookie, csrf)).status_code == 200
    # The same agent's API token is another session: no grace re-fetch for it.
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers
                       ).status_code == 410


def test_sessions_end_after_the_idle_timeout(make_app, clock):
    app = make_app(session_idle=600, session_max=3600)
    client = app.test_client()
    app.extensions["vault"].accounts.add_agent("idle@example.com", PASSWORD)
    cookie = cookie_of(login(client, "idle@example.com"))
    clock.advance(599)
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 200
    clock.advance(599)
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 200
    clock.advance(601)
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 401


def test_sessions_end_after_the_absolute_timeout_even_when_active(make_app, clock):
    app = make_app(session_idle=600, session_max=1000)
    client = app.test_client()
    app.extensions["vault"].accounts.add_agent("busy@example.com", PASSWORD)
    cookie = cookie_of(login(client, "busy@example.com"))
    for _ in range(3):
        clock.advance(300)
        assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 200
    clock.advance(101)
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 401


def test_logout_ends_the_session(client, agent):
    rv = login(client, agent.email)
    cookie, csrf = cookie_of(rv), rv.get_json()["csrf_token"]
    assert client.delete("/api/v1/session", headers=with_cookie(cookie)).status_code == 403
    assert client.delete("/api/v1/session", headers=with_cookie(cookie, csrf)).status_code == 204
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 401


@pytest.mark.parametrize("action", ["disable", "passwd", "remove"])
def test_disabling_removing_or_a_new_password_ends_every_session_and_token(client, agent, ext,
                                                                           action):
    cookie = cookie_of(login(client, agent.email))
    if action == "disable":
        ext.accounts.set_disabled(agent.email, True)
    elif action == "passwd":
        ext.accounts.set_password(agent.email, "a brand new password")
    else:
        ext.accounts.remove_agent(agent.email)
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 401
    assert client.get("/api/v1/session", headers=agent.headers).status_code == 401
    if action == "disable":
        ext.accounts.set_disabled(agent.email, False)
        assert client.get("/api/v1/session", headers=agent.headers).status_code == 401  # stays dead
        assert login(client, agent.email).status_code == 200


@pytest.mark.parametrize("action", ["revoke", "disable", "passwd", "remove", "role"])
def test_a_reveal_is_refused_at_once_after_a_revocation(client, agent, ext, action):
    """The reveal's own script authenticates (one round trip): nothing in the process still
    believes in the token or the session once the agent's epoch moved or the token went."""
    client.post("/api/v1/requests", json={"ticket": "rv-1"}, headers=agent.headers)
    s = share(client, "rv-1")
    token, token_id = ext.accounts.create_token(agent.email)
    bearer = {"Authorization": f"Bearer {token}"}
    rv = login(client, agent.email)
    session = with_cookie(cookie_of(rv), rv.get_json()["csrf_token"])
    # Both credentials work up to the change (an unknown id: 404, past authentication).
    missing = "/api/v1/secrets/" + "A" * 28 + "/reveal"
    assert client.post(missing, headers=bearer).status_code == 404
    assert client.post(missing, headers=session).status_code == 404
    if action == "revoke":
        ext.accounts.revoke_token(token_id)
    elif action == "disable":
        ext.accounts.set_disabled(agent.email, True)
    elif action == "passwd":
        ext.accounts.set_password(agent.email, "a brand new password")
    elif action == "remove":
        ext.accounts.remove_agent(agent.email)
    else:
        ext.accounts.edit_agent(agent.email, admin=True)
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=bearer).status_code == 401
    if action != "revoke":  # revoking one token leaves the web session alone
        assert client.post(f"/api/v1/secrets/{s['id']}/reveal",
                           headers=session).status_code == 401
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"


def test_an_idle_session_cannot_reveal(client, agent, ext, clock):
    client.post("/api/v1/requests", json={"ticket": "rv-2"}, headers=agent.headers)
    s = share(client, "rv-2")
    rv = login(client, agent.email)
    session = with_cookie(cookie_of(rv), rv.get_json()["csrf_token"])
    clock.advance(ext.config.session_idle + 1)
    assert client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=session).status_code == 401
    assert client.get(f"/api/v1/secrets/{s['id']}").get_json()["state"] == "waiting"


def test_revoked_tokens_and_keys_stop_working(client, agent, ext):
    token, token_id = ext.accounts.create_token(agent.email)
    assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 200
    ext.accounts.revoke_token(token_id)
    assert client.get("/api/v1/session", headers={"Authorization": f"Bearer {token}"}
                      ).status_code == 401
    key = ext.accounts.create_api_key("desk")
    assert client.post("/api/v1/tickets/t/close", headers={"Authorization": f"Bearer {key}"}
                       ).status_code == 200
    ext.accounts.revoke_api_key("desk")
    assert client.post("/api/v1/tickets/t/close", headers={"Authorization": f"Bearer {key}"}
                       ).status_code == 401


def test_tokens_are_stored_only_as_digests(ext, redis_client, agent):
    blob = b"".join(redis_client.dump(k) or b"" for k in redis_client.scan_iter("*"))
    assert agent.token.encode() not in blob
    assert agent.token[3:].encode() not in blob


def test_login_rehashes_when_the_parameters_change(ext, client):
    weak = Passwords(time_cost=2, memory_cost=16, parallelism=1)  # not the app's profile
    ext.store.add_agent("old@example.com", {"name": "Old", "role": "agent",
                                            "pw": weak.hash(PASSWORD), "disabled": "0"})
    before = ext.store.get_agent("old@example.com")["pw"]
    assert login(client, "old@example.com").status_code == 200
    after = ext.store.get_agent("old@example.com")["pw"]
    assert after != before
    assert not ext.accounts.passwords.needs_rehash(after)


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer vt_short", "Bearer " + "x" * 46])
def test_malformed_authorization_is_401(client, header):
    assert client.get("/api/v1/tickets/t", headers={"Authorization": header}).status_code == 401


# -- rate limits ----------------------------------------------------------------------------

def test_logins_are_limited_per_account_with_retry_after(make_app):
    app = make_app(ratelimit_login_account="3/minute")
    client = app.test_client()
    for _ in range(3):
        assert login(client, "victim@example.com", "guess-guess-guess").status_code == 401
    rv = login(client, "victim@example.com", "guess-guess-guess")
    assert rv.status_code == 429
    assert 1 <= int(rv.headers["Retry-After"]) <= 60
    assert rv.mimetype == "application/problem+json"


def test_submissions_are_limited_per_address(make_app):
    app = make_app(ratelimit_submit="2/minute")
    client = app.test_client()
    share(client, "rl-1")
    share(client, "rl-1")
    rv = client.post("/api/v1/secrets", json={"ticket": "rl-1"})
    assert rv.status_code == 429 and "Retry-After" in rv.headers
    other = client.post("/api/v1/secrets", json={"ticket": "rl-1"},
                        environ_overrides={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 400  # another address is not limited (and the body is bad)


def test_reveals_are_limited_per_agent(make_app):
    app = make_app(ratelimit_reveal="2/minute")
    client = app.test_client()
    ext = app.extensions["vault"]
    ext.accounts.add_agent("fast@example.com", PASSWORD)
    token, _ = ext.accounts.create_token("fast@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(2):
        client.post("/api/v1/secrets/" + "A" * 28 + "/reveal", headers=headers)
    rv = client.post("/api/v1/secrets/" + "A" * 28 + "/reveal", headers=headers)
    assert rv.status_code == 429


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(make_app):
    app = make_app(ratelimit_submit="1/minute")
    client = app.test_client()
    client.post("/api/v1/secrets", json={}, headers={"X-Forwarded-For": "1.1.1.1"})
    rv = client.post("/api/v1/secrets", json={}, headers={"X-Forwarded-For": "2.2.2.2"})
    assert rv.status_code == 429
    trusting = make_app(ratelimit_submit="1/minute", trusted_proxies=1).test_client()
    trusting.post("/api/v1/secrets", json={}, headers={"X-Forwarded-For": "3.3.3.3"})
    rv = trusting.post("/api/v1/secrets", json={}, headers={"X-Forwarded-For": "4.4.4.4"})
    assert rv.status_code == 400


def test_removing_and_adding_an_agent_again_does_not_revive_old_sessions(client, agent, ext):
    cookie = cookie_of(login(client, agent.email))
    ext.accounts.remove_agent(agent.email)
    ext.accounts.add_agent(agent.email, "another good password")
    assert client.get("/api/v1/session", headers=with_cookie(cookie)).status_code == 401
    assert client.get("/api/v1/session", headers=agent.headers).status_code == 401


def test_login_needs_a_json_body(client, agent):
    rv = client.post("/api/v1/session", data=f'{{"email": "{agent.email}", "password": '
                     f'"{PASSWORD}"}}', content_type="text/plain")
    assert rv.status_code == 400
    assert "Set-Cookie" not in rv.headers


def test_the_csrf_token_is_not_stored_in_redis(client, agent, redis_client):
    csrf = login(client, agent.email).get_json()["csrf_token"]
    blob = b"".join(redis_client.dump(k) or b"" for k in redis_client.scan_iter("*"))
    assert csrf.encode() not in blob


def test_an_enrolled_agent_needs_a_fresh_totp_code(client, agent, ext, clock):
    import pyotp
    uri = ext.accounts.enroll_totp(agent.email)
    totp = pyotp.parse_uri(uri)
    rv = login(client, agent.email)
    assert rv.status_code == 401 and rv.get_json()["reason"] == "totp-required"
    code = totp.at(clock())
    ok = client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD,
                                              "totp": code})
    assert ok.status_code == 200
    replay = client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD,
                                                  "totp": code})
    assert replay.status_code == 401 and replay.get_json()["reason"] == "totp-invalid"
    assert client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD,
                                                "totp": "000000" if code != "000000" else "111111"}
                       ).status_code == 401


def test_required_2fa_keeps_admins_without_a_second_factor_out(make_app):
    app = make_app(require_2fa=True)
    client = app.test_client()
    ext = app.extensions["vault"]
    ext.accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    ext.accounts.add_agent("agent@example.com", PASSWORD)
    rv = login(client, "boss@example.com")
    assert rv.status_code == 401 and rv.get_json()["reason"] == "2fa-required"
    assert login(client, "agent@example.com").status_code == 200


# -- an admin's rules about their own account (the accounts layer holds them, not a page) -----------

def test_an_admin_cannot_disable_their_own_account_but_the_operator_and_others_can(
        client, ext, admin, agent):
    with pytest.raises(Conflict) as refused:
        ext.accounts.set_disabled(admin.email, True, actor=admin.email)
    assert refused.value.extra["reason"] == "self" and refused.value.status == 409
    assert ext.accounts.get_agent(admin.email)["disabled"] is False
    assert login(client, admin.email).status_code == 200  # still gets in

    ext.accounts.set_disabled(admin.email, False, actor=admin.email)  # enabling oneself: a no-op
    ext.accounts.set_disabled(agent.email, True, actor=admin.email)
    assert ext.accounts.get_agent(agent.email)["disabled"] is True
    ext.accounts.set_disabled(admin.email, True)  # the operator at the command line ("cli")
    assert ext.accounts.get_agent(admin.email)["disabled"] is True


def test_an_admin_cannot_change_their_own_role_but_can_change_their_name(ext, admin, agent):
    for admin_role in (False, True):
        with pytest.raises(Conflict) as refused:
            ext.accounts.edit_agent(admin.email, admin=admin_role, actor=admin.email)
        assert refused.value.extra["reason"] == "self"
    assert ext.accounts.get_agent(admin.email)["role"] == "admin"
    assert ext.accounts.edit_agent(admin.email, name="The Boss", actor=admin.email
                                   )["name"] == "The Boss"
    assert ext.accounts.edit_agent(agent.email, admin=True, actor=admin.email)["role"] == "admin"
    assert ext.accounts.edit_agent(admin.email, admin=False)["role"] == "agent"  # the operator


def test_with_2fa_required_an_admin_keeps_their_own_second_factor(make_app):
    ext = make_app(require_2fa=True).extensions["vault"]
    ext.accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    ext.accounts.enroll_totp("boss@example.com")
    with pytest.raises(Conflict) as refused:
        ext.accounts.reset_2fa("boss@example.com", actor="boss@example.com")
    assert refused.value.extra["reason"] == "2fa-required"
    assert ext.accounts.get_agent("boss@example.com", with_2fa=True)["two_factor"] is True
    ext.accounts.reset_2fa("boss@example.com")  # the operator may (and then enrols a new one)
    assert ext.accounts.get_agent("boss@example.com", with_2fa=True)["two_factor"] is False


def test_without_2fa_required_an_admin_may_reset_their_own_second_factor(ext, admin):
    ext.accounts.enroll_totp(admin.email)
    ext.accounts.reset_2fa(admin.email, actor=admin.email)
    assert ext.accounts.get_agent(admin.email, with_2fa=True)["two_factor"] is False


def test_with_2fa_required_an_admin_promotes_only_an_agent_with_a_second_factor(make_app):
    ext = make_app(require_2fa=True).extensions["vault"]
    ext.accounts.add_agent("boss@example.com", PASSWORD, admin=True)
    ext.accounts.add_agent("plain@example.com", PASSWORD)
    ext.accounts.add_agent("ready@example.com", PASSWORD)
    ext.accounts.enroll_totp("ready@example.com")
    with pytest.raises(Conflict) as refused:
        ext.accounts.edit_agent("plain@example.com", admin=True, actor="boss@example.com")
    assert refused.value.extra["reason"] == "2fa-required"
    assert ext.accounts.get_agent("plain@example.com")["role"] == "agent"
    with pytest.raises(NotFound):
        ext.accounts.edit_agent("gone@example.com", admin=True, actor="boss@example.com")
    assert ext.accounts.edit_agent("ready@example.com", admin=True, actor="boss@example.com"
                                   )["role"] == "admin"
    # Demoting needs no factor; and the operator may promote first, then `vault agent enrol-2fa`.
    assert ext.accounts.edit_agent("ready@example.com", admin=False, actor="boss@example.com"
                                   )["role"] == "agent"
    assert ext.accounts.edit_agent("plain@example.com", admin=True)["role"] == "admin"
