"""The HTML pages without a browser: what they answer, what a GET never does, languages,
headers, CSRF on form posts. The browser half is in tests/browser/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.helpers import sealed, share
from vault.web import PAGE_CSP

PREVIEW_AGENTS = [
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "Mozilla/5.0 (compatible; Microsoft Office/16.0; Outlook link preview)",
    "facebookexternalhit/1.1",
]


def login(client: Any, agent: Any) -> str:
    """Log `agent` in through the session API; the cookie is set by hand because the test
    client, like any non-browser client, does not send a Secure cookie over plain HTTP."""
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": agent.password})
    assert rv.status_code == 200, rv.get_json()
    cookie = re.search(r"__Host-vault_session=([^;]+)", rv.headers["Set-Cookie"])
    assert cookie is not None
    client.set_cookie("__Host-vault_session", cookie.group(1))
    return str(rv.get_json()["csrf_token"])


def request_for(client: Any, agent: Any, ticket: str = "4242") -> str:
    rv = client.post("/api/v1/requests", json={"ticket": ticket}, headers=agent.headers)
    assert rv.status_code == 201
    return str(rv.get_json()["id"])


def fill(client: Any, request_id: str, ticket: str = "4242") -> dict[str, Any]:
    envelope, _ = sealed(ticket)
    rv = client.post(f"/api/v1/requests/{request_id}/secret",
                     json={"kind": "wordpress", "envelope": envelope})
    assert rv.status_code == 201
    return dict(rv.get_json())


# -- what every page answers --------------------------------------------------------------------

PUBLIC_PAGES = ["/", "/login"]
AGENT_PAGES = ["/dashboard", "/requests/new", "/requests/new?ticket=77", "/tickets/77", "/account"]
ADMIN_PAGES = ["/admin/agents", "/admin/keys", "/admin/audit"]


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_answer_with_the_page_csp_and_no_store(client: Any, path: str) -> None:
    rv = client.get(path)
    assert rv.status_code == 200
    assert rv.mimetype == "text/html"
    assert rv.headers["Content-Security-Policy"] == PAGE_CSP
    assert rv.headers["Cache-Control"] == "no-store"
    assert rv.headers["Referrer-Policy"] == "no-referrer"
    assert rv.headers["X-Content-Type-Options"] == "nosniff"
    assert rv.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert rv.headers["Strict-Transport-Security"].startswith("max-age=63072000")


@pytest.mark.parametrize("path", AGENT_PAGES + ADMIN_PAGES)
def test_agent_pages_send_anonymous_visitors_to_login_and_back(client: Any, path: str) -> None:
    rv = client.get(path)
    assert rv.status_code == 303
    assert rv.headers["Location"].startswith("/login?next=")
    assert rv.headers["Content-Security-Policy"] == PAGE_CSP


@pytest.mark.parametrize("path", AGENT_PAGES)
def test_agent_pages_render_for_a_logged_in_agent(client: Any, agent: Any, path: str) -> None:
    login(client, agent)
    rv = client.get(path)
    assert rv.status_code == 200, path
    assert rv.headers["Content-Security-Policy"] == PAGE_CSP
    assert b'<meta name="csrf-token"' in rv.data


@pytest.mark.parametrize("path", ADMIN_PAGES)
def test_admin_pages_refuse_a_plain_agent(client: Any, agent: Any, path: str) -> None:
    login(client, agent)
    rv = client.get(path)
    assert rv.status_code == 403
    assert rv.mimetype == "text/html"


def test_pages_hold_no_inline_script_or_style(client: Any, agent: Any) -> None:
    pages = [client.get(p).data.decode() for p in PUBLIC_PAGES]
    login(client, agent)
    pages += [client.get(p).data.decode() for p in AGENT_PAGES]
    for html in pages:
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
        assert "style=" not in html and "<style" not in html
        assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either


def test_unknown_ids_and_bad_shapes_are_a_404_page(client: Any) -> None:
    for path in ["/r/" + "A" * 28, "/s/not-an-id", "/m/" + "x" * 40, "/nothing"]:
        rv = client.get(path)
        assert rv.status_code == 404, path
        assert rv.mimetype == "text/html"
        assert rv.headers["Content-Security-Policy"] == PAGE_CSP
        assert b"Nothing here" in rv.data


def test_a_bad_ticket_on_the_ticket_page_is_a_400_page(client: Any, agent: Any) -> None:
    login(client, agent)
    rv = client.get("/tickets/bad%20ticket")
    assert rv.status_code == 400
    assert rv.mimetype == "text/html"


# -- a GET never consumes ------------------------------------------------------------------------

@pytest.mark.parametrize("user_agent", PREVIEW_AGENTS)
def test_opening_links_with_get_or_head_consumes_nothing(client: Any, agent: Any,
                                                         user_agent: str) -> None:
    request_id = request_for(client, agent)
    secret_id = fill(client, request_id)["secret_id"]
    shared = share(client, ticket="4242")
    for path in [f"/r/{request_id}", f"/s/{secret_id}", f"/m/{secret_id}", f"/s/{shared['id']}"]:
        for method in (client.get, client.head):
            assert method(path, headers={"User-Agent": user_agent}).status_code == 200
    for sid in (secret_id, shared["id"]):
        rv = client.post(f"/api/v1/secrets/{sid}/reveal", headers=agent.headers)
        assert rv.status_code == 200
        assert rv.get_json()["envelope"].startswith("v1.")


# -- the states a link's page shows -----------------------------------------------------------------

def test_request_page_walks_through_its_states(client: Any, agent: Any) -> None:
    request_id = request_for(client, agent)
    page = client.get(f"/r/{request_id}").data.decode()
    assert 'id="fill-form"' in page and "Ticket 4242" in page
    filled = fill(client, request_id)
    page = client.get(f"/r/{request_id}").data.decode()
    assert 'id="fill-form"' not in page and "state-waiting" in page
    assert 'id="login-to-reveal"' in page  # not logged in: no reveal button
    assert client.post(f"/api/v1/secrets/{filled['secret_id']}/reveal",
                       headers=agent.headers).status_code == 200
    page = client.get(f"/r/{request_id}").data.decode()
    assert "state-revealed" in page and "alice" in page.lower()
    assert 'id="reveal-button"' not in page


def test_a_deleted_submission_puts_the_request_page_back_to_its_form(client: Any,
                                                                     agent: Any) -> None:
    request_id = request_for(client, agent)
    filled = fill(client, request_id)
    assert client.delete(f"/api/v1/secrets/{filled['secret_id']}",
                         headers={"X-Manage-Token": filled["manage_token"]}).status_code == 204
    assert 'id="fill-form"' in client.get(f"/r/{request_id}").data.decode()
    manage = client.get(f"/m/{filled['secret_id']}").data.decode()
    assert "reason-deleted" in manage and 'id="delete-button"' not in manage


def test_a_purged_ticket_reminds_the_customer_to_delete_the_accounts(client: Any, agent: Any,
                                                                   helpdesk: Any) -> None:
    request_id = request_for(client, agent)
    filled = fill(client, request_id)
    assert client.post("/api/v1/tickets/4242/close", headers=helpdesk).status_code == 200
    for path in [f"/r/{request_id}", f"/s/{filled['secret_id']}", f"/m/{filled['secret_id']}"]:
        page = client.get(path).data.decode()
        assert "reason-purged" in page, path
        assert "delete the temporary accounts" in page


def test_an_expired_secret_says_so(client: Any, clock: Any) -> None:
    shared = share(client, ticket="555", ttl=60)
    clock.advance(61)
    page = client.get(f"/s/{shared['id']}").data.decode()
    assert "reason-expired" in page


def test_a_logged_in_agent_gets_the_reveal_button_and_page_csrf(client: Any, agent: Any) -> None:
    csrf = login(client, agent)
    shared = share(client, ticket="99")
    page = client.get(f"/s/{shared['id']}").data.decode()
    assert 'id="reveal-button"' in page
    assert f'<meta name="csrf-token" content="{csrf}">' in page


# -- CSRF on form posts and cookie-authenticated calls ----------------------------------------------

def test_logout_without_the_csrf_field_is_refused_and_keeps_the_session(client: Any,
                                                                       agent: Any) -> None:
    csrf = login(client, agent)
    # One character changed: the last one becomes another (a fixed "A" was the same token in
    # one run of 64, and the test failed on a token that ended in "A").
    altered = csrf[:-1] + ("B" if csrf.endswith("A") else "A")
    for form in ({}, {"csrf_token": "wrong"}, {"csrf_token": altered}):
        assert client.post("/logout", data=form).status_code == 403
        assert client.get("/api/v1/session").status_code == 200
    rv = client.post("/logout", data={"csrf_token": csrf})
    assert rv.status_code == 303 and rv.headers["Location"] == "/login"
    assert client.get("/api/v1/session").status_code == 401


def test_a_cookie_authenticated_api_call_without_csrf_changes_nothing(client: Any,
                                                                      agent: Any) -> None:
    csrf = login(client, agent)
    rv = client.post("/api/v1/requests", json={"ticket": "31"})
    assert rv.status_code == 403 and rv.get_json()["reason"] == "csrf"
    rv = client.post("/api/v1/requests", json={"ticket": "31"}, headers={"X-CSRF-Token": "x" * 43})
    assert rv.status_code == 403
    view = client.get("/api/v1/tickets/31").get_json()
    assert view["requests"] == [] and view["assignee"] is None
    rv = client.post("/api/v1/requests", json={"ticket": "31"}, headers={"X-CSRF-Token": csrf})
    assert rv.status_code == 201


def test_login_answers_the_same_for_a_wrong_password_and_an_unknown_email(client: Any,
                                                                          agent: Any) -> None:
    wrong = client.post("/api/v1/session", json={"email": agent.email, "password": "nope nope"})
    unknown = client.post("/api/v1/session", json={"email": "who@example.com",
                                                   "password": "nope nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.get_json() == unknown.get_json()


def test_login_locks_out_by_rate_limit_with_retry_after(make_app: Any, agent: Any) -> None:
    client = make_app(ratelimit_login_account="3/minute").test_client()
    for _ in range(3):
        assert client.post("/api/v1/session", json={"email": agent.email,
                                                    "password": "wrong pw!"}).status_code == 401
    rv = client.post("/api/v1/session", json={"email": agent.email, "password": agent.password})
    assert rv.status_code == 429
    assert int(rv.headers["Retry-After"]) > 0


def test_login_page_never_redirects_to_another_site(client: Any, agent: Any) -> None:
    login(client, agent)
    for target, expected in [("//evil.example/x", "/dashboard"), ("https://evil.example", "/dashboard"),
                             ("/\\evil.example", "/dashboard"), ("/tickets/5", "/tickets/5")]:
        rv = client.get("/login", query_string={"next": target})
        assert rv.status_code == 303
        assert rv.headers["Location"] == expected


# -- languages ---------------------------------------------------------------------------------------

def test_accept_language_picks_french(client: Any) -> None:
    page = client.get("/", headers={"Accept-Language": "fr-CA,fr;q=0.9,en;q=0.5"}).data.decode()
    assert '<html lang="fr" dir="ltr">' in page
    page = client.get("/", headers={"Accept-Language": "sv, en;q=0.5"}).data.decode()
    assert '<html lang="en" dir="ltr">' in page


def test_the_switcher_remembers_the_choice_and_keeps_the_path(client: Any) -> None:
    rv = client.get("/login?lang=fr&next=/tickets/5")
    assert rv.status_code == 303
    assert rv.headers["Location"] == "/login?next=/tickets/5"
    cookie = rv.headers["Set-Cookie"]
    assert cookie.startswith("__Host-vault_lang=fr;") and "Secure" in cookie and "HttpOnly" in cookie
    client.set_cookie("__Host-vault_lang", "fr")
    page = client.get("/", headers={"Accept-Language": "en"}).data.decode()
    assert '<html lang="fr" dir="ltr">' in page
    assert client.get("/?lang=xx").status_code == 200  # an unknown language is ignored


@pytest.mark.parametrize("path", ["/%09/evil.example/?lang=fr", "/%5C/evil.example/?lang=fr",
                                  "//evil.example/?lang=fr", "/anything%0a?lang=fr",
                                  "/nothing/here?lang=fr&next=//evil.example"])
def test_the_language_switch_never_redirects_off_site_or_fails(client: Any, path: str) -> None:
    rv = client.get(path)
    assert rv.status_code == 303
    assert rv.headers["Location"] == "/"


def test_the_switcher_links_keep_the_pages_query(client: Any) -> None:
    page = client.get("/login?next=/s/abc").data.decode()
    assert 'href="/login?next=/s/abc&amp;lang=fr"' in page


@pytest.mark.parametrize("target", ["/x%0Ay", "/x%0D%0ASet-Cookie:%20a=b", "/x%09y", "/x%7Fy"])
def test_login_next_with_control_characters_goes_to_the_dashboard(client: Any, agent: Any,
                                                                  target: str) -> None:
    login(client, agent)
    rv = client.get("/login?next=" + target)
    assert rv.status_code == 303
    assert rv.headers["Location"] == "/dashboard"


def test_error_pages_speak_the_visitors_language(client: Any) -> None:
    rv = client.get("/s/not-an-id", headers={"Accept-Language": "fr"})
    assert rv.status_code == 404
    assert '<html lang="fr" dir="ltr">' in rv.data.decode()


# -- static files ---------------------------------------------------------------------------------------

def test_static_files_are_versioned_by_content_hash(client: Any) -> None:
    page = client.get("/").data.decode()
    src = re.search(r'src="(/static/js/app\.js\?v=[0-9a-f]{12})"', page)
    assert src is not None
    with client.get(src.group(1)) as rv:
        assert rv.status_code == 200
        assert rv.headers.getlist("Cache-Control") == ["public, max-age=31536000, immutable"]
    for stale in ("/static/js/app.js?v=000000000000", "/static/js/envelope.js"):
        with client.get(stale) as rv:
            assert rv.headers.getlist("Cache-Control") == ["no-cache"]


# -- who is signed in, and the agents' way in ------------------------------------------------------

def test_every_agent_page_says_who_is_signed_in(client: Any, agent: Any, admin: Any) -> None:
    login(client, agent)
    for path in ("/dashboard", "/requests/new", "/account", "/tickets/4242"):
        page = client.get(path).get_data(as_text=True)
        assert '<p class="who">Signed in as Alice</p>' in page, path
    anonymous = client.application.test_client()
    assert 'class="who"' not in anonymous.get("/").get_data(as_text=True)
    login(client, admin)
    assert "Signed in as Admin" in client.get("/admin/audit").get_data(as_text=True)


def test_the_customers_page_shows_agents_the_way_to_log_in(client: Any) -> None:
    page = client.get("/").get_data(as_text=True)
    assert '<p class="agent-way"><a href="/login">Agent? Log in</a></p>' in page
    # After the form and its result, so the customer meets the form first.
    assert page.index('id="share-form"') < page.index('class="agent-way"')
