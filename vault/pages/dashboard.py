"""The agent's dashboard: the tickets assigned to them, most recently active first."""

from __future__ import annotations

from flask import Response

from vault.extension import ext
from vault.pages import agent_page, bp, render, viewer

# How many tickets the dashboard lists (the index keeps up to 500 per agent).
DASHBOARD_TICKETS = 50


@bp.get("/dashboard")
@agent_page
def dashboard() -> Response:
    who = viewer()
    assert who is not None  # agent_page
    tickets = ext().vault.agent_tickets(who.email, limit=DASHBOARD_TICKETS)
    return render("agent/dashboard.html", page="dashboard", tickets=tickets,
                  limit=DASHBOARD_TICKETS)
