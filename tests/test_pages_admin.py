"""The admin pages (agents, keys, audit), the dashboard and the account page with its two-factor
enrolment, through the Flask test client on a real Redis, logged in like a browser."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from helpers import sealed

from vault.errors import Conflict
from vault.web import SESSION_COOKIE

PASSWORD = "correct horse battery staple"


class Session:
    """A browser's web login: its cookie on every call, and the page's CSRF token for forms."""

    def __init__(self, client: Any, email: str, password: str = PASSWORD,
                 totp: str | None = None) -> None:
        body: dict[str, Any] = {"email": email, "password": password}
        if totp is not None:
            body["totp"] = totp
        # A client of its own without a cookie jar: the cookie goes by hand in each call (the
        # cookie is Secure and these calls are http), and sessions never mix.
        self.client = client.application.test_client(use_cookies=False)
        rv = self.client.post("/api/v1/session", json=body)
        assert rv.status_code == 200, rv.get_json()
        self.cookie = rv.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
        self.csrf = rv.get_json()["csrf_token"]

    @property
    def headers(self) -> dict[str, str]:
        return {"Cookie": f"{SESSION_COOKIE}={self.cookie}"}

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, headers=self.headers, **kwargs)

    def post(self, path: str, data: dict[str, Any], *, csrf: str | None = "valid") -> Any:
        form = dict(data)
        if csrf == "valid":
            form["csrf_token"] = self.csrf
        elif csrf is not None:
            form["csrf_token"] = csrf
        return self.client.post(path, data=form, headers=self.headers)


def text(rv: Any) -> str:
    return unescape(rv.get_data(as_text=True))


@pytest.fixture
def as_admin(client: Any, admin: Any) -> Session:
    return Session(client, admin.email)


@pytest.fixture
def as_agent(client: Any, agent: Any) -> Session:
    return Session(client, agent.email)


ADMIN_PAGES = ["/admin/agents", "/admin/keys", "/admin/audit"]


# -- who may see the pages ----------------------------------------------------------------------

@pytest.mark.parametrize("path", [*ADMIN_PAGES, "/dashboard", "/account"])
def test_anonymous_visitors_are_sent_to_the_login_page_and_back(client, path):
    rv = client.get(path)
    assert rv.status_code == 303
    location = urlsplit(rv.headers["Location"])
    assert location.path == "/login" and parse_qs(location.query) == {"next": [path]}


@pytest.mark.parametrize("path", ["/admin/agents", "/admin/keys", "/account"])
def test_an_anonymous_form_post_changes_nothing(client, ext, path):
    rv = client.post(path, data={"action": "add", "email": "x@example.com", "password": PASSWORD})
    assert rv.status_code == 303 and rv.headers["Location"].startswith("/login?next=")
    assert [a["email"] for a in ext.accounts.list_agents()] == []


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_are_forbidden_to_agents(as_agent, path):
    assert as_agent.get(path).status_code == 403


def test_an_agents_form_post_to_an_admin_page_changes_nothing(as_agent, ext):
    rv = as_agent.post("/admin/agents", {"action": "add", "email": "eve@example.com",
                                         "password": PASSWORD, "admin": "1"})
    assert rv.status_code == 403
    rv = as_agent.post("/admin/keys", {"action": "create", "name": "sneaky"})
    assert rv.status_code == 403
    assert ext.store.get_agent("eve@example.com") is None
    assert ext.accounts.list_api_keys() == []


def test_a_bearer_token_does_not_open_the_pages(client, admin):
    rv = client.get("/admin/agents", headers=admin.headers)
    assert rv.status_code == 303


def test_the_pages_carry_the_csp_and_no_inline_script(as_admin):
    for path in [*ADMIN_PAGES, "/dashboard", "/account"]:
        rv = as_admin.get(path)
        assert rv.status_code == 200, path
        assert "script-src 'self'" in rv.headers["Content-Security-Policy"]
        html = rv.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert " style=" not in html, path


# -- agents ---------------------------------------------------------------------------------------

def test_the_agents_page_lists_agents_with_role_state_and_two_factor(as_admin, ext, agent):
    ext.accounts.enroll_totp(agent.email)
    html = text(as_admin.get("/admin/agents"))
    assert agent.email in html and "admin@example.com" in html
    row = html[html.index(agent.email):]
    row = row[:row.index("</tr>")]
    assert "enabled" in row and ">on<" in row


def test_an_admin_adds_an_agent_who_can_then_log_in(as_admin, client, ext):
    rv = as_admin.post("/admin/agents", {"action": "add", "email": "New@Example.com",
                                         "name": "Newbie", "password": "a long new password"})
    assert rv.status_code == 303 and rv.headers["Location"] == "/admin/agents?done=added"
    assert "Agent added." in text(as_admin.get(rv.headers["Location"]))
    added = ext.accounts.get_agent("new@example.com")
    assert (added["name"], added["role"]) == ("Newbie", "agent")
    Session(client, "new@example.com", "a long new password")
    created = [e for e in ext.store.audit_tail(20) if e.event == "agent.created"]
    assert (created[-1].actor, created[-1].detail) == ("admin@example.com", "new@example.com")


def test_adding_an_admin_needs_the_checkbox(as_admin, ext):
    as_admin.post("/admin/agents", {"action": "add", "email": "boss@example.com",
                                    "password": PASSWORD, "admin": "1"})
    assert ext.accounts.get_agent("boss@example.com")["role"] == "admin"


@pytest.mark.parametrize("csrf", [None, "wrong", ""])
def test_adding_an_agent_without_the_right_csrf_token_is_refused(as_admin, ext, csrf):
    rv = as_admin.post("/admin/agents", {"action": "add", "email": "x@example.com",
                                         "password": PASSWORD}, csrf=csrf)
    assert rv.status_code == 403
    assert ext.store.get_agent("x@example.com") is None


def test_a_bad_new_agent_is_shown_again_with_messages_and_without_the_password(as_admin, ext):
    rv = as_admin.post("/admin/agents", {"action": "add", "email": "not an e-mail",
                                         "name": "Kept Name", "password": "secret-typed-pw"})
    assert rv.status_code == 400
    html = text(rv)
    assert "Enter an e-mail address." in html
    assert 'value="not an e-mail"' in html and 'value="Kept Name"' in html
    assert "secret-typed-pw" not in html
    rv = as_admin.post("/admin/agents", {"action": "add", "email": "short@example.com",
                                         "password": "short"})
    assert rv.status_code == 400 and "Use at least 10 characters." in text(rv)
    assert ext.store.get_agent("short@example.com") is None


def test_adding_an_existing_agent_is_a_conflict(as_admin, agent):
    rv = as_admin.post("/admin/agents", {"action": "add", "email": agent.email,
                                         "password": PASSWORD})
    assert rv.status_code == 409
    assert "An agent with this e-mail already exists." in text(rv)


def test_disable_and_enable_an_agent(as_admin, client, ext, agent):
    rv = as_admin.post("/admin/agents", {"action": "disable", "email": agent.email})
    assert rv.status_code == 303 and rv.headers["Location"] == "/admin/agents?done=disabled"
    assert ext.accounts.get_agent(agent.email)["disabled"] is True
    # Disabling ends the agent's tokens at once.
    assert client.get("/api/v1/tickets/1", headers=agent.headers).status_code == 401
    assert "disabled" in text(as_admin.get("/admin/agents"))
    rv = as_admin.post("/admin/agents", {"action": "enable", "email": agent.email})
    assert rv.status_code == 303
    assert ext.accounts.get_agent(agent.email)["disabled"] is False
    Session(client, agent.email)


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_disabling_without_the_right_csrf_token_is_refused(as_admin, ext, agent, csrf):
    rv = as_admin.post("/admin/agents", {"action": "disable", "email": agent.email}, csrf=csrf)
    assert rv.status_code == 403
    assert ext.accounts.get_agent(agent.email)["disabled"] is False


def test_an_admin_cannot_disable_themself(as_admin, ext, admin):
    rv = as_admin.post("/admin/agents", {"action": "disable", "email": admin.email})
    assert rv.status_code == 409
    assert "ask another admin" in text(rv)
    assert ext.accounts.get_agent(admin.email)["disabled"] is False


def test_actions_on_an_unknown_agent_are_a_404_page(as_admin):
    rv = as_admin.post("/admin/agents", {"action": "disable", "email": "ghost@example.com"})
    assert rv.status_code == 404 and "ghost@example.com" in text(rv)
    rv = as_admin.post("/admin/agents", {"action": "disable", "email": "<not an e-mail>"})
    assert rv.status_code == 400
    rv = as_admin.post("/admin/agents", {"action": "explode", "email": "ghost@example.com"})
    assert rv.status_code == 400


def test_reset_an_agents_password(as_admin, client, agent):
    rv = as_admin.post("/admin/agents", {"action": "password", "email": agent.email,
                                         "password": "a brand new password"})
    assert rv.status_code == 303 and rv.headers["Location"] == "/admin/agents?done=password"
    assert client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD}
                       ).status_code == 401
    Session(client, agent.email, "a brand new password")


def test_a_too_short_new_password_is_refused_and_the_old_one_still_works(as_admin, client,
                                                                         agent):
    rv = as_admin.post("/admin/agents", {"action": "password", "email": agent.email,
                                         "password": "short"})
    assert rv.status_code == 400
    assert "Use at least 10 characters." in text(rv) and "short\"" not in text(rv)
    Session(client, agent.email)


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_a_password_reset_without_the_right_csrf_token_is_refused(as_admin, client, agent, csrf):
    rv = as_admin.post("/admin/agents", {"action": "password", "email": agent.email,
                                         "password": "a brand new password"}, csrf=csrf)
    assert rv.status_code == 403
    Session(client, agent.email)


def test_reset_an_agents_two_factor(as_admin, ext, agent):
    ext.accounts.enroll_totp(agent.email)
    rv = as_admin.post("/admin/agents", {"action": "reset-2fa", "email": agent.email},
                       csrf="wrong")
    assert rv.status_code == 403
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is True
    rv = as_admin.post("/admin/agents", {"action": "reset-2fa", "email": agent.email})
    assert rv.status_code == 303 and rv.headers["Location"] == "/admin/agents?done=2fa-reset"
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False


def test_change_an_agents_role_but_not_ones_own(as_admin, ext, admin, agent):
    assert as_admin.post("/admin/agents", {"action": "make-admin", "email": agent.email}
                         ).status_code == 303
    assert ext.accounts.get_agent(agent.email)["role"] == "admin"
    assert as_admin.post("/admin/agents", {"action": "make-agent", "email": admin.email}
                         ).status_code == 409
    assert ext.accounts.get_agent(admin.email)["role"] == "admin"


# -- helpdesk API keys ----------------------------------------------------------------------------

def test_a_new_api_key_is_shown_once_and_works_as_a_bearer(as_admin, client, agent):
    rv = as_admin.post("/admin/keys", {"action": "create", "name": "helpscout"})
    assert rv.status_code == 201
    html = text(rv)
    match = re.search(r'<input id="new-key" type="text" readonly value="(vk_[^"]+)"', html)
    assert match, html
    key = match.group(1)
    assert 'data-copy="new-key"' in html
    listing = text(as_admin.get("/admin/keys"))
    assert "helpscout" in listing and key not in listing
    client.post("/api/v1/requests", json={"ticket": "K-1"}, headers=agent.headers)
    rv = client.post("/api/v1/tickets/K-1/close", headers={"Authorization": f"Bearer {key}"})
    assert rv.status_code == 200 and rv.get_json()["purged"] == 1


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_creating_a_key_without_the_right_csrf_token_is_refused(as_admin, ext, csrf):
    assert as_admin.post("/admin/keys", {"action": "create", "name": "helpscout"}, csrf=csrf
                         ).status_code == 403
    assert ext.accounts.list_api_keys() == []


def test_bad_and_duplicate_key_names_are_refused_with_a_message(as_admin, ext):
    rv = as_admin.post("/admin/keys", {"action": "create", "name": "no spaces please"})
    assert rv.status_code == 400
    assert 'value="no spaces please"' in text(rv) and "letters, digits" in text(rv)
    ext.accounts.create_api_key("helpscout")
    rv = as_admin.post("/admin/keys", {"action": "create", "name": "helpscout"})
    assert rv.status_code == 409 and "already exists" in text(rv)
    assert not re.search(r"vk_[A-Za-z0-9_-]{20}", text(rv))


def test_revoking_a_key_stops_it_at_once(as_admin, client, ext):
    key = ext.accounts.create_api_key("zendesk")
    headers = {"Authorization": f"Bearer {key}"}
    assert as_admin.post("/admin/keys", {"action": "revoke", "name": "zendesk"}, csrf="wrong"
                         ).status_code == 403
    assert client.post("/api/v1/tickets/K-2/close", headers=headers).status_code == 200
    rv = as_admin.post("/admin/keys", {"action": "revoke", "name": "zendesk"})
    assert rv.status_code == 303 and rv.headers["Location"] == "/admin/keys?done=revoked"
    assert client.post("/api/v1/tickets/K-2/close", headers=headers).status_code == 401
    assert as_admin.post("/admin/keys", {"action": "revoke", "name": "zendesk"}
                         ).status_code == 404


# -- audit log ------------------------------------------------------------------------------------

def event_rows(rv: Any) -> list[str]:
    html = text(rv)
    if "<tbody>" not in html:
        return []
    body = html[html.index("<tbody>"):html.index("</tbody>")]
    return re.findall(r"<tr[^>]*>(.*?)</tr>", body, flags=re.S)


def test_the_audit_log_shows_the_newest_events_first(as_admin, client, agent):
    client.post("/api/v1/requests", json={"ticket": "A-1"}, headers=agent.headers)
    client.post("/api/v1/requests", json={"ticket": "A-2"}, headers=agent.headers)
    rows = event_rows(as_admin.get("/admin/audit"))
    assert "request.created" in rows[0] and "A-2" in rows[0]
    assert any("login.succeeded" in r for r in rows)


def test_the_audit_log_filters_by_ticket(as_admin, client, agent):
    client.post("/api/v1/requests", json={"ticket": "A-1"}, headers=agent.headers)
    client.post("/api/v1/requests", json={"ticket": "A-2"}, headers=agent.headers)
    rows = event_rows(as_admin.get("/admin/audit?ticket=A-1"))
    assert rows and all("A-1" in r for r in rows) and not any("A-2" in r for r in rows)
    assert any("request.created" in r for r in rows)


def test_the_audit_log_filters_by_agent(as_admin, client, agent, make_agent):
    bob = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "A-1"}, headers=agent.headers)
    client.post("/api/v1/requests", json={"ticket": "A-3"}, headers=bob.headers)
    rows = event_rows(as_admin.get("/admin/audit?agent=Bob@Example.com"))
    assert rows and all("bob@example.com" in r for r in rows)
    assert any("A-3" in r for r in rows) and not any("A-1" in r for r in rows)
    # Events about the agent count too: who created the account.
    assert any("agent.created" in r for r in rows)


def test_bad_audit_filters_get_a_message_not_an_error(as_admin):
    for query in ("ticket=has%20spaces", "ticket=" + "x" * 65, "agent=nobody", "ticket=%00"):
        rv = as_admin.get("/admin/audit?" + query)
        assert rv.status_code == 400, query
        assert "Please correct the filters marked below." in text(rv)
    assert "Use 1 to 64 letters" in text(as_admin.get("/admin/audit?ticket=a/b"))


# -- dashboard ------------------------------------------------------------------------------------

def test_the_dashboard_lists_my_tickets_with_counts(client, agent, as_agent):
    req = client.post("/api/v1/requests", json={"ticket": "T-100"}, headers=agent.headers
                      ).get_json()
    client.post("/api/v1/requests", json={"ticket": "T-100"}, headers=agent.headers)
    envelope, _ = sealed("T-100")
    client.post(f"/api/v1/requests/{req['id']}/secret",
                json={"kind": "wordpress", "envelope": envelope})
    rv = as_agent.get("/dashboard")
    assert rv.status_code == 200
    (row,) = event_rows(rv)
    assert '<a href="/tickets/T-100">T-100</a>' in row
    assert re.search(r'data-count="open_requests">\s*1<', row)
    assert re.search(r'data-count="waiting"><strong>1</strong>', row)
    assert re.search(r'data-count="revealed">\s*0<', row)


def test_the_dashboard_shows_only_my_tickets(client, make_agent, agent, as_agent):
    bob = make_agent("bob@example.com")
    client.post("/api/v1/requests", json={"ticket": "T-bob"}, headers=bob.headers)
    html = text(as_agent.get("/dashboard"))
    assert "T-bob" not in html
    assert 'href="/requests/new"' in html and "No tickets are assigned to you yet." in html


# -- account and two-factor enrolment -------------------------------------------------------------

def secret_on(rv: Any) -> str:
    match = re.search(r'<textarea id="totp-secret"[^>]*>([A-Z2-7]+)</textarea>', text(rv))
    assert match, text(rv)
    return match.group(1)


def test_the_account_page_shows_who_i_am(as_agent, agent):
    html = text(as_agent.get("/account"))
    assert agent.email in html and "Alice" in html
    assert re.search(r'id="two-factor-state">off<', html)
    assert "Set up two-factor authentication" in html


def test_two_factor_enrolment_start_wrong_code_then_right_code(as_agent, client, agent, ext,
                                                               clock):
    rv = as_agent.post("/account", {"action": "start-2fa"})
    assert rv.status_code == 200
    secret = secret_on(rv)
    html = text(rv)
    assert "otpauth://totp/" in html and "<svg" in html
    # Pending only: logging in still needs no code.
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False
    assert "being set up" in text(as_agent.get("/account"))
    assert secret not in text(as_agent.get("/account"))  # a GET never shows the key again

    totp = pyotp.TOTP(secret)
    wrong = "000000" if totp.at(clock()) != "000000" else "111111"
    rv = as_agent.post("/account", {"action": "confirm-2fa", "code": wrong})
    assert rv.status_code == 400 and "That code is not valid." in text(rv)
    assert secret_on(rv) == secret  # shown again, to scan or type once more
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False
    Session(client, agent.email)  # still no code needed

    rv = as_agent.post("/account", {"action": "confirm-2fa", "code": totp.at(clock())})
    assert rv.status_code == 303 and rv.headers["Location"] == "/account?done=2fa-on"
    html = text(as_agent.get("/account"))  # this session goes on
    assert re.search(r'id="two-factor-state">on<', html)
    assert "Set up two-factor authentication" not in html

    rv = client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD})
    assert rv.status_code == 401 and rv.get_json()["reason"] == "totp-required"
    # The confirming code is spent; the next one logs in.
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": PASSWORD,
                                              "totp": totp.at(clock())})
    assert rv.status_code == 401
    clock.advance(30)
    Session(client, agent.email, totp=totp.at(clock()))


def test_a_malformed_code_is_a_clear_message(as_agent, ext, agent):
    as_agent.post("/account", {"action": "start-2fa"})
    rv = as_agent.post("/account", {"action": "confirm-2fa", "code": "12ab"})
    assert rv.status_code == 400 and "Enter the 6-digit code from your app." in text(rv)
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False


@pytest.mark.parametrize("csrf", [None, "wrong"])
def test_enrolment_without_the_right_csrf_token_is_refused(as_agent, ext, agent, clock, csrf):
    assert as_agent.post("/account", {"action": "start-2fa"}, csrf=csrf).status_code == 403
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor_pending"] is False
    secret = secret_on(as_agent.post("/account", {"action": "start-2fa"}))
    rv = as_agent.post("/account", {"action": "confirm-2fa",
                                    "code": pyotp.TOTP(secret).at(clock())}, csrf=csrf)
    assert rv.status_code == 403
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False


def test_an_unconfirmed_setup_expires(as_agent, ext, agent, clock):
    secret = secret_on(as_agent.post("/account", {"action": "start-2fa"}))
    clock.advance(16 * 60)
    rv = as_agent.post("/account", {"action": "confirm-2fa",
                                    "code": pyotp.TOTP(secret).at(clock())})
    assert rv.status_code == 409 and "Start again" in text(rv)
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor"] is False


def test_starting_again_replaces_the_pending_key(as_agent, ext, agent, clock):
    first = secret_on(as_agent.post("/account", {"action": "start-2fa"}))
    second = secret_on(as_agent.post("/account", {"action": "start-2fa"}))
    assert first != second
    rv = as_agent.post("/account", {"action": "confirm-2fa",
                                    "code": pyotp.TOTP(first).at(clock())})
    assert rv.status_code == 400
    rv = as_agent.post("/account", {"action": "confirm-2fa",
                                    "code": pyotp.TOTP(second).at(clock())})
    assert rv.status_code == 303


def test_two_factor_that_is_on_cannot_be_replaced_from_a_session(as_agent, ext, agent):
    ext.accounts.enroll_totp(agent.email)  # revokes the agent's sessions: log in again
    rv = as_agent.post("/account", {"action": "start-2fa"})
    assert rv.status_code == 303  # the old session ended: back to the login page
    with pytest.raises(Conflict, match="already on"):
        ext.accounts.start_totp(agent.email)


def test_the_pending_secret_is_stored_wrapped(as_agent, ext, agent, redis_client):
    secret = secret_on(as_agent.post("/account", {"action": "start-2fa"}))
    blob = b"".join(redis_client.dump(k) or b"" for k in redis_client.scan_iter("*"))
    assert secret.encode() not in blob


def test_confirming_after_an_admin_reset_needs_a_new_start(ext, agent, clock):
    enrolment = ext.accounts.start_totp(agent.email)
    assert ext.accounts.get_agent(agent.email, with_2fa=True)["two_factor_pending"] is True
    ext.accounts.reset_2fa(agent.email, actor="admin@example.com")
    with pytest.raises(Conflict):
        ext.accounts.confirm_totp(agent.email, pyotp.TOTP(enrolment.secret).at(clock()))
    assert ext.accounts.get_agent(agent.email, with_2fa=True) == {
        **ext.accounts.get_agent(agent.email), "two_factor": False, "two_factor_pending": False,
        "passkeys": 0}


def test_the_agents_list_stops_calling_an_expired_setup_pending(ext, agent, clock):
    ext.accounts.start_totp(agent.email)
    clock.advance(16 * 60)
    (listed,) = ext.accounts.list_agents(with_2fa=True)
    assert (listed["two_factor"], listed["two_factor_pending"]) == (False, False)
    assert ext.accounts.pending_totp(agent.email) is None
