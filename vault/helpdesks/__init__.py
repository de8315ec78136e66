"""Helpdesks: what each one's deliveries mean for vault's tickets.

- `tickets`: the seam. A helpdesk module gives a `Helpdesk`: it verifies a delivery and turns
  it into one `TicketEvent` (assigned, closed, reopened, deleted, merged, or ignored with a
  reason), without Redis and without HTTP; `Deliveries` applies such events once each.
- `helpscout`: Help Scout (its two signature formats, its event rules, its sidebar).
- `standard`: Standard Webhooks, for any other helpdesk or automation.

The webhook views only read the request, call these and answer. docs/helpdesks.md says how to
add the next helpdesk.
"""
