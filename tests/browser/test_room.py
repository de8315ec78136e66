"""The assignee discards junk from the ticket page, in Chromium: the button, the message, the
sender's page afterwards, each accessible."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from playwright.sync_api import expect

from browser.flows import create_request, log_in, share
from browser.harness import LiveAgent, RecordedContext, assert_accessible

NewContext = Callable[..., RecordedContext]


def test_the_assignee_discards_junk_from_the_ticket_page(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    ticket = str(uuid.uuid4().int % 10**9)
    agent_ctx, _ = new_context()
    agent = agent_ctx.new_page()
    stranger_ctx, _ = new_context()
    stranger = stranger_ctx.new_page()
    log_in(agent, live_agent(name="Rita Rocketeer"))
    create_request(agent, ticket)  # the agent becomes the assignee
    _, junk_manage = share(stranger, ticket, "other", {"text": "junk"})
    _, kept_manage = share(stranger, ticket, "other", {"text": "more junk"})

    agent.goto(f"/tickets/{ticket}")
    buttons = agent.locator('button[name="action"][value="discard"]')
    expect(buttons).to_have_count(2)
    assert_accessible(agent, "ticket page with discard buttons")
    junk_id = junk_manage.split("/m/", 1)[1].split("#", 1)[0]
    agent.locator(f'form:has(input[name="secret"][value="{junk_id}"]) button').click()
    agent.wait_for_url(re.compile(rf"/tickets/{ticket}\?done=discarded$"))
    expect(agent.locator("p.alert.info")).to_be_visible()
    expect(buttons).to_have_count(1)
    assert_accessible(agent, "ticket page after a discard")

    stranger.goto(junk_manage)
    expect(stranger.locator("#state")).to_have_class(re.compile("reason-discarded"))
    expect(stranger.locator("#delete-button")).to_have_count(0)
    assert_accessible(stranger, "manage page of a discarded secret")
    stranger.goto(kept_manage)  # the other one still waits
    expect(stranger.locator("#state")).to_have_class(re.compile("state-waiting"))
