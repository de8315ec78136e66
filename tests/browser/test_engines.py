"""The customer's flows, the agent's reveal and the envelope in the three engines customers
use: Chromium, Firefox ESR and WebKitGTK (the engine of Safari on every iPhone), each Debian's
own, each started once for the session (browser/drivers.py).

The flows run with production settings over HTTPS (https_live_server: a certificate the test
made, which each engine is told to accept), so the cookies are production's, `__Host-` and
Secure. The embedded demo runs as ./scripts/serve runs it, over plain http on 127.0.0.1, where
WebKit keeps no Secure cookie: it logs in and reveals all the same.

Every test also passes new_driver's checks at its end: no CSP report, page error or request to
another origin in Chromium's and Firefox's records, and nothing at WebKit's network dead end.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from harness import ROOT, LiveServer, OutputLines, follow_output, free_port, stop_process
from playwright.sync_api import Browser

from browser.drivers import ENGINES, Cookie, Driver, Engines, drivers_for
from browser.engine_flows import (
    create_request,
    log_in,
    reveal,
    share,
    submit_request,
    wait_class,
)
from browser.flows import SFTP_FIELDS, WP_FIELDS
from browser.harness import AGENT_PASSWORD, LiveAgent, add_agent
from vault.crypto.envelope import InvalidEnvelope, generate_key, open_envelope, seal
from vault.serve import DEMO_ADMIN

NewDriver = Callable[..., Driver]


def ticket_number() -> str:
    return str(uuid.uuid4().int % 10**9)


def session_cookie(driver: Driver) -> Cookie:
    [cookie] = [c for c in driver.cookies() if c.name.endswith("vault_session")]
    return cookie


@pytest.fixture
def agent(https_live_server: LiveServer, engine: str) -> LiveAgent:
    """A new agent, made with the real command line."""
    return add_agent(https_live_server, f"{engine}-{uuid.uuid4().hex[:8]}@example.com",
                     password=AGENT_PASSWORD, name=f"Agent in {engine.title()}")


# -- the flows, production settings over https ---------------------------------------------------

def test_request_flow_customer_fills_agent_reveals_exactly_once(
        new_driver: NewDriver, agent: LiveAgent, engine: str) -> None:
    ticket = ticket_number()
    agent_tab = new_driver()
    log_in(agent_tab, agent.email, agent.password)
    cookie = session_cookie(agent_tab)
    assert (cookie.name, cookie.secure, cookie.http_only, cookie.same_site) == (
        "__Host-vault_session", True, True, "Lax")
    link = create_request(agent_tab, ticket)
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]{28}#[A-Za-z0-9_-]{43}", link)

    customer = new_driver()
    manage = submit_request(customer, link, "wordpress", WP_FIELDS)
    customer.screenshot("request-sent")
    assert "/m/" in manage

    assert reveal(agent_tab, link) == WP_FIELDS  # every byte, accents and emoji included
    agent_tab.screenshot("revealed")

    # Once: a second session of the same agent, inside the grace window, gets nothing.
    again = new_driver()
    log_in(again, agent.email, agent.password)
    again.goto(link)
    again.click("#reveal-button")
    again.wait_text("#reveal-status", f"Already revealed by {agent.name} at")
    assert not again.is_visible("#revealed")
    assert again.count("#revealed-fields .field-row") == 0

    customer.goto(manage)
    wait_class(customer, "#state", "state-revealed")
    assert f"Read by {agent.name}" in customer.text("#state")
    assert customer.count("#delete-button") == 0


def test_share_flow_the_manage_link_shows_the_state_and_deletes(
        new_driver: NewDriver, agent: LiveAgent) -> None:
    ticket = ticket_number()
    customer = new_driver()
    customer.set_viewport(375, 812)  # a phone, as most customers open the link
    assert customer.evaluate("() => [innerWidth, innerHeight]") == [375, 812]
    link, manage = share(customer, ticket, "sftp", SFTP_FIELDS)
    customer.screenshot("share-link")
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{28}#[A-Za-z0-9_-]{43}", link)
    assert re.fullmatch(r"https://127\.0\.0\.1:\d+/m/[A-Za-z0-9_-]{28}#vm_[A-Za-z0-9_-]{43}",
                        manage)
    second_link, second_manage = share(customer, ticket, "other", {"text": "Zweite Zeile\n😀"})

    manager = new_driver()  # the manage link kept, opened later: nothing else in that browser
    manager.goto(manage)
    wait_class(manager, "#state", "state-waiting")
    manager.goto(second_manage)
    wait_class(manager, "#state", "state-waiting")
    manager.click("#delete-button")
    wait_class(manager, "#state", "reason-deleted")
    assert not manager.is_visible("#delete-button")

    agent_tab = new_driver()
    log_in(agent_tab, agent.email, agent.password)
    assert reveal(agent_tab, link) == SFTP_FIELDS  # newlines, CRLF-free keys and emoji intact
    agent_tab.goto(second_link)
    wait_class(agent_tab, "#state", "reason-deleted")
    assert agent_tab.count("#reveal-button") == 0

    manager.goto(manage)
    wait_class(manager, "#state", "state-revealed")
    assert f"Read by {agent.name}" in manager.text("#state")


# -- envelopes: sealed in each engine, opened in every other one and in Python -----------------

ENVELOPE_JS = """async (op, key, ticket, kind, payload) => {
  const m = await import('/static/js/envelope.js');
  try {
    if (op === 'seal') {
      const fresh = m.generateKey();
      return {ok: true, key: fresh, envelope: await m.seal(fresh, {ticket, kind, fields: payload})};
    }
    return {ok: true, fields: JSON.stringify(await m.open(key, payload, {ticket, kind}))};
  } catch (e) {
    return {ok: false, name: e.name, invalid: e instanceof m.InvalidEnvelope};
  }
}"""
TICKET = "SUP-4711"
# Each kind's fields with what breaks naive code: line breaks (LF and CRLF), accents, emoji
# beyond the BMP, quotes and markup, and an empty field (left out on both sides).
FIELDS: dict[str, dict[str, str]] = {
    "wordpress": {"url": "https://café.example/wp-admin/?a=1&b=ü", "username": "amélie",
                  "password": "ü😀\"\\ </script> ' \t end", "note": "one\ntwo é\r\nthree 😀\n"},
    "sftp": {"host": "sftp.exämple.net", "port": "2222", "username": "deploy", "password": "",
             "private_key": "-----BEGIN OPENSSH PRIVATE KEY-----\nYWJj😀\n"
                            "-----END OPENSSH PRIVATE KEY-----\n"},
    "other": {"text": "Línea uno\nLinha dois ü\n\n四行目 😀"},
}


def present(kind: str) -> dict[str, str]:
    return {name: value for name, value in FIELDS[kind].items() if value}


Sealed = dict[str, dict[str, tuple[str, str]]]  # engine -> kind -> (key, envelope)


@pytest.fixture(scope="module")
def envelope_tabs(engines: Engines, browser: Browser, https_live_server: LiveServer
                  ) -> Iterator[dict[str, Driver]]:
    """A tab of each engine on a page served with the page CSP: envelope.js is imported as the
    pages import it, same origin, in a secure context."""
    with contextlib.ExitStack() as stack:
        tabs = {}
        for name in ENGINES:
            make = stack.enter_context(drivers_for(
                engines.factory(name, browser if name == "chromium" else None),
                https_live_server.url, engines.checked_sink(name)))
            tabs[name] = make()
            tabs[name].goto("/login")
        yield tabs


@pytest.fixture(scope="module")
def sealed(envelope_tabs: dict[str, Driver]) -> Sealed:
    """Each engine's envelope of each kind, under a key the engine made itself."""
    made: Sealed = {}
    for name, tab in envelope_tabs.items():
        made[name] = {}
        for kind, fields in FIELDS.items():
            answer = tab.evaluate(ENVELOPE_JS, "seal", None, TICKET, kind, fields)
            assert answer["ok"], (name, answer)
            made[name][kind] = (answer["key"], answer["envelope"])
    return made


def js_open(tab: Driver, key: str, envelope: str, *, ticket: str = TICKET, kind: str) -> Any:
    """The fields the engine opens, or {"invalid": ...} when it refuses."""
    answer = tab.evaluate(ENVELOPE_JS, "open", key, ticket, kind, envelope)
    return json.loads(answer["fields"]) if answer["ok"] else {"invalid": answer["invalid"]}


@pytest.mark.parametrize("opener", ENGINES)
@pytest.mark.parametrize("sealer", ENGINES)
def test_an_envelope_sealed_in_one_engine_opens_in_another(
        envelope_tabs: dict[str, Driver], sealed: Sealed, sealer: str, opener: str) -> None:
    for kind in FIELDS:
        key, envelope = sealed[sealer][kind]
        assert js_open(envelope_tabs[opener], key, envelope, kind=kind) == present(kind), kind


@pytest.mark.parametrize("engine_name", ENGINES)
def test_an_envelope_sealed_in_each_engine_opens_in_python_and_back(
        envelope_tabs: dict[str, Driver], sealed: Sealed, engine_name: str) -> None:
    tab = envelope_tabs[engine_name]
    for kind in FIELDS:
        key, envelope = sealed[engine_name][kind]
        assert open_envelope(key, envelope, ticket=TICKET, kind=kind) == present(kind), kind
        key = generate_key()
        envelope = seal(key, ticket=TICKET, kind=kind, fields=FIELDS[kind])
        assert js_open(tab, key, envelope, kind=kind) == present(kind), kind


@pytest.mark.parametrize("engine_name", ENGINES)
def test_a_wrong_key_or_ticket_fails_in_each_engine(
        envelope_tabs: dict[str, Driver], sealed: Sealed, engine_name: str) -> None:
    tab = envelope_tabs[engine_name]
    for sealer in ENGINES:
        key, envelope = sealed[sealer]["wordpress"]
        other_key = generate_key()
        assert js_open(tab, other_key, envelope, kind="wordpress") == {"invalid": True}
        assert js_open(tab, key, envelope, ticket="SUP-4712", kind="wordpress") == {
            "invalid": True}
        with pytest.raises(InvalidEnvelope):
            open_envelope(other_key, envelope, ticket=TICKET, kind="wordpress")
    python_envelope = seal(generate_key(), ticket=TICKET, kind="other", fields=FIELDS["other"])
    assert js_open(tab, generate_key(), python_envelope, kind="other") == {"invalid": True}


# -- the embedded demo, over plain http ------------------------------------------------------------

class Demo:
    def __init__(self, url: str, password: str) -> None:
        self.url, self.password = url, password


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`vault serve` with nothing configured, as ./scripts/serve runs it: the embedded store,
    plain http on 127.0.0.1, and the demo admin whose password the banner prints."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VAULT_")}
    port = free_port()
    output = OutputLines()
    process = subprocess.Popen(
        [sys.executable, "-m", "vault.cli", "serve", "--bind", f"127.0.0.1:{port}"], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT))
    try:
        follow_output(process, b"Booting worker", what="vault serve (embedded demo)",
                      log_path=tmp_path_factory.mktemp("demo") / "serve.log", on_line=output.add)
        password = re.search(r"Password:\s+(\S+)", output.text())
        assert password is not None, output.text()
        yield Demo(f"http://127.0.0.1:{port}", password.group(1))
    finally:
        stop_process(process)


def test_the_embedded_demo_logs_in_and_reveals_over_plain_http(
        new_driver: NewDriver, demo: Demo, engine: str) -> None:
    agent_tab = new_driver(base_url=demo.url)
    log_in(agent_tab, DEMO_ADMIN, demo.password)
    # WebKit keeps no Secure cookie from http://127.0.0.1: the demo's are neither Secure nor
    # __Host- (which requires Secure), and otherwise as production's.
    cookie = session_cookie(agent_tab)
    assert (cookie.name, cookie.secure, cookie.http_only, cookie.same_site) == (
        "vault_session", False, True, "Lax")
    link = create_request(agent_tab, ticket_number())
    assert link.startswith(demo.url + "/r/")
    customer = new_driver(base_url=demo.url)
    submit_request(customer, link, "wordpress", WP_FIELDS)
    assert reveal(agent_tab, link) == WP_FIELDS
    agent_tab.screenshot("demo-revealed")
