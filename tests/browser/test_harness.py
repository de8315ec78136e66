"""The browser harness checks what it promises: a problem it should refuse is seen, axe runs
under the page CSP, the live server logs requests, and a CLI-made agent can log in."""

from __future__ import annotations

from collections.abc import Callable

from browser.harness import LiveAgent, LiveServer, RecordedContext, axe_violations


def test_live_server_is_its_own_base_url_and_logs_each_request(
        live_server: LiveServer, new_context: Callable[..., RecordedContext]) -> None:
    context, record = new_context()
    page = context.new_page()
    page.goto("/login?probe=harness")
    assert page.url == f"{live_server.url}/login?probe=harness"
    assert live_server.env["VAULT_BASE_URL"] == live_server.url
    line = live_server.wait_for_log('"GET /login?probe=harness ')
    assert "Mozilla" in line  # the access log's format, with the user agent
    assert [r.method for r in record.requests_to("/login")] == ["GET"]


def test_locale_reaches_the_page_and_the_server(new_context: Callable[..., RecordedContext]
                                                ) -> None:
    context, record = new_context(locale="fr-FR")
    page = context.new_page()
    page.goto("/login")
    assert page.evaluate("() => navigator.language") == "fr-FR"
    assert record.requests_to("/login")[0].headers["accept-language"].startswith("fr-FR")


def test_record_sees_csp_reports_page_errors_and_foreign_requests(
        new_context: Callable[..., RecordedContext]) -> None:
    context, record = new_context()
    page = context.new_page()
    page.goto("/login")
    assert record.problems() == []

    with context.expect_console_message(lambda m: "Content Security Policy" in m.text):
        page.evaluate("""() => document.body.append(
            Object.assign(document.createElement('script'), {textContent: 'window.inline = 1'}))""")
    with context.expect_event("weberror"):
        page.evaluate("() => { setTimeout(() => { throw new Error('on purpose'); }); }")
    context.route("http://elsewhere.test/**", lambda route: route.fulfill(body="elsewhere"))
    page.goto("http://elsewhere.test/")

    problems = record.problems()
    assert any(p.startswith("console error about the CSP:") and "inline script" in p
               for p in problems), problems
    assert "page error: Error: on purpose" in problems
    assert "request to another origin: GET http://elsewhere.test/" in problems
    record.clear()  # provoked on purpose: the fixture's own check at teardown must pass


def test_axe_runs_under_the_page_csp_and_reports_serious_violations(
        new_context: Callable[..., RecordedContext]) -> None:
    context, _ = new_context()
    page = context.new_page()
    page.goto("/login")
    page.evaluate("() => document.body.append(document.createElement('img'))")  # no alt text
    violations = axe_violations(page)
    assert "image-alt" in [v["id"] for v in violations]
    assert {v["impact"] for v in violations} <= {"serious", "critical"}


def test_cli_agent_logs_in_with_a_secure_host_cookie_over_loopback(
        live_agent: Callable[..., LiveAgent], new_context: Callable[..., RecordedContext]) -> None:
    agent = live_agent(name="Harness Agent", token=True)
    assert agent.token is not None and agent.token.startswith("vt_")
    context, record = new_context()
    page = context.new_page()
    page.goto("/login")
    status = page.evaluate("""async ({email, password}) => (await fetch('/api/v1/session', {
        method: 'POST', headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({email, password})})).status""",
                           {"email": agent.email, "password": agent.password})
    assert status == 200
    cookies = {c["name"]: c for c in context.cookies()}
    cookie = cookies["__Host-vault_session"]
    assert (cookie["secure"], cookie["httpOnly"], cookie["sameSite"]) == (True, True, "Lax")
    session = page.evaluate("async () => (await fetch('/api/v1/session')).json()")
    assert session["agent"]["email"] == agent.email
    [login] = record.requests_to("/api/v1/session", "POST")
    assert login.post_data is not None and agent.email in login.post_data
