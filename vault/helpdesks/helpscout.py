"""Help Scout, all of it in one place: its two signature formats, what its webhook events
mean for tickets, what its sidebar shows, and what a recorded delivery is for a replay.

**Signatures.**
- *Body* (webhooks and the legacy dynamic app): `X-HelpScout-Signature` header, base64 of
  HMAC-SHA1 over the raw request body, keyed by the secret typed into Help Scout.
- *Query* (the App Developer Platform): Help Scout loads the app's page with the conversation's
  context in the query string and `X-HelpScout-Signature` among the parameters: base64 of
  HMAC-SHA1, keyed by the app's secret, over the JSON encoding of the *other* parameters, in the
  order they came, minus those that were already part of the callback URL (Help Scout's
  "Signature Validation" guide). Help Scout's own servers run on JavaScript (`JSON.stringify`:
  compact, no escaping of `/` or non-ASCII) and its guide shows PHP (`json_encode` of the
  request: compact, `\\/`, `\\uXXXX`); both encodings are accepted.

Every secret of a rotation list is tried, every time, each comparison in constant time: how
long a check takes does not tell which secret (if any) matched. No check touches Redis: a
forged call costs one HMAC per secret and encoding.

**Events** (`ticket_event`, no Redis, no HTTP). The signature covers the body only: the
`X-HelpScout-Event` header is a claim about it, not a fact. So what a status change or an
assignment does is read from the body (READ_FROM_BODY), a deletion must look like one (the
conversation id alone), and a merge is either that or a conversation's state, which is refused
when older than what was applied. A delivery is the same delivery by the digest of its body;
the same body again under another event name is acted on once per name it can be read as
(`repeat`). Help Scout's ticket is its conversation *number*; its *id*, remembered when both
come together, stands for it in a body or a sidebar that gives only the id.

**Sidebar** (`legacy_subject`, `app_subject`, `sidebar_context`): what vault holds for the open
conversation, states, times and names only, never an envelope, a key, a token or a customer's
field; every value escaped. The legacy dynamic app posts the context signed like the webhooks;
the App Developer Platform frames a page whose query is signed. Help Scout's signatures carry
no timestamp, so a captured call can be replayed: the sidebar's script counts calls per ticket
against VAULT_RATELIMIT_WEBHOOK before reading anything. A signed `timestamp` parameter, should
Help Scout add one, is held to VAULT_WEBHOOK_TOLERANCE.

**Replay** (`recorded_delivery`, `Recorded`): a line of a file of recorded deliveries, and the
request Help Scout would make of it, for `vault helpscout replay` to send (vault/cli/replay.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl

from babel.dates import get_month_names
from flask_babel import get_locale, gettext, ngettext
from markupsafe import Markup, escape

from vault.accounts import normalise_email
from vault.config import Config
from vault.errors import Unauthenticated, ValidationFailed
from vault.helpdesks.tickets import (
    ASSIGNED,
    CLOSED,
    DELETED,
    IGNORED,
    MERGED,
    NONE,
    REFUSED,
    REOPENED,
    TEST,
    Delivery,
    Repeat,
    TicketEvent,
)
from vault.ids import is_ticket
from vault.service import Vault
from vault.storage import HelpdeskNews

NAME = "helpscout"

# -- signatures -----------------------------------------------------------------------------------

SIGNATURE = "X-HelpScout-Signature"
MAX_PARAMS = 32  # Help Scout sends eight; a longer query is not Help Scout's


class BadSignature(ValueError):
    """Unsigned, wrongly signed or malformed. The message is safe to show and to log."""


def helpscout_sign(secret: str, data: bytes) -> str:
    """Base64 HMAC-SHA1 of `data`: what Help Scout sends (and `vault helpscout replay`)."""
    return base64.b64encode(hmac.new(secret.encode(), data, hashlib.sha1).digest()).decode()


def _matches(candidates: Sequence[bytes], secrets: Sequence[str], presented: str) -> bool:
    given = presented.strip().encode("ascii", "replace")
    matched = False
    for secret in secrets:
        for data in candidates:
            matched |= hmac.compare_digest(helpscout_sign(secret, data).encode(), given)
    return matched


def helpscout_body_signed(raw: bytes, secrets: Sequence[str], presented: str | None) -> None:
    """Raise BadSignature unless `presented` signs `raw` with one of `secrets`."""
    if not presented:
        raise BadSignature("Missing X-HelpScout-Signature.")
    if not _matches([raw], secrets, presented):
        raise BadSignature("The X-HelpScout-Signature does not match.")


def _encodings(params: dict[str, str]) -> list[bytes]:
    js = json.dumps(params, ensure_ascii=False, separators=(",", ":"))
    php = json.dumps(params, separators=(",", ":")).replace("/", "\\/")
    return list(dict.fromkeys([js.encode(), php.encode()]))


def helpscout_query_context(query: bytes, secrets: Sequence[str], *,
                            unsigned: Collection[str] = ()) -> dict[str, str]:
    """The signed parameters of an app load's raw query string, in their order; BadSignature
    unless one of `secrets` signed them. `unsigned` names the parameters of the callback URL
    itself (vault's own, such as `lang`): left out of the signed data and of the answer.

    A parameter given twice is refused: the signature would cover one value and the page could
    read the other.
    """
    try:
        pairs = parse_qsl(query.decode("utf-8"), keep_blank_values=True, strict_parsing=True,
                          errors="strict", max_num_fields=MAX_PARAMS)
    except ValueError:  # UnicodeDecodeError included
        raise BadSignature("The query string is not one Help Scout sends.") from None
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise BadSignature("A parameter is given twice.")
    params = dict(pairs)
    presented = params.pop(SIGNATURE, "")
    if not presented:
        raise BadSignature("Missing X-HelpScout-Signature.")
    for name in unsigned:
        params.pop(name, None)
    # A `+` of the base64 alphabet that was not percent-encoded arrives as a space.
    if not _matches(_encodings(params), secrets, presented.replace(" ", "+")):
        raise BadSignature("The X-HelpScout-Signature does not match.")
    return params


def helpscout_sign_query(secret: str, params: dict[str, str]) -> str:
    """The `X-HelpScout-Signature` Help Scout adds to `params` (JavaScript's encoding), for
    rehearsals and tests."""
    return helpscout_sign(secret, _encodings(params)[0])


# -- webhooks ----------------------------------------------------------------------------------------

# Help Scout's ids (conversations, users) are integers; nothing else becomes part of a Redis key.
HELPSCOUT_ID = re.compile(r"[0-9]{1,20}")
# Events whose effect is read from the signed body (its status, its assignee), not from the
# unsigned X-HelpScout-Event header that names them.
READ_FROM_BODY = frozenset({"convo.status", "convo.assigned"})
NOT_A_DELETION = "the body is not a deletion's (the conversation id alone)"
NOT_AN_ASSIGNMENT = "the body has no assignee"
NOT_A_CONVERSATION = "the body is not a conversation"
_EVENT = re.compile(r"[a-z0-9._-]{1,100}")


def verify_body(raw: bytes, secrets: tuple[str, ...], header: str | None) -> None:
    """Unauthenticated unless `header` signs `raw` with one of `secrets` (none: not set up)."""
    if not secrets:
        raise Unauthenticated("Help Scout webhooks are not configured on this server.")
    try:
        helpscout_body_signed(raw, secrets, header)
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None


def updated_ms(value: Any) -> int | None:
    """Help Scout's `userUpdatedAt` (ISO 8601; UTC when it names no zone) in ms, else None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return int(parsed.timestamp() * 1000)


def _id(value: Any) -> str:
    """A Help Scout id as text, or "" for anything that is not one."""
    return str(value) if isinstance(value, int | str) and not isinstance(value, bool) \
        and HELPSCOUT_ID.fullmatch(str(value)) else ""


def ticket_event(name: str, body: dict[str, Any], digest: str) -> TicketEvent:
    """What a signed delivery named `name` (its X-HelpScout-Event) asks, read from its JSON
    `body`; `digest` is the body's SHA-256, hex."""
    answer = {"event": name}
    if name == "helpscout.test":
        return TicketEvent(TEST, answer)
    conversation = _id(body.get("id"))
    number = body.get("number")
    ticket = str(number) if isinstance(number, int | str) and not isinstance(number, bool) \
        and is_ticket(str(number)) else None
    # Help Scout keeps a clock: a body without its time cannot undo a later update.
    news = HelpdeskNews(conversation=conversation, updated_ms=updated_ms(body.get("userUpdatedAt")),
                        body=digest[:32], timed=True)  # the ticket record keeps 32 digits
    about = TicketEvent(NONE, answer, name=name, ticket=ticket, conversation=conversation,
                        news=news)
    if name == "convo.deleted":
        # A deletion's body is the conversation's id alone; a conversation's state (or any
        # other body Help Scout signs) named a deletion is not one.
        if set(body) != {"id"}:
            return replace(about, kind=IGNORED, reason=NOT_A_DELETION)
        return replace(about, kind=DELETED)
    if name == "convo.merged":
        if set(body) == {"id"}:  # a conversation id alone, as a deletion: purged as one
            return replace(about, kind=MERGED)
        if "number" not in body or "status" not in body:
            return replace(about, kind=IGNORED, reason=NOT_A_CONVERSATION)
        # A conversation's state named a merge: refused when it is older than what was
        # applied (or has no time, when vault has one), or is the very body applied last.
        return replace(about, kind=MERGED, news=replace(news, ordered=True))
    if name == "convo.status":
        status = str(body.get("status", "")).lower()
        if status in {"closed", "spam"}:
            return replace(about, kind=CLOSED, reason=status)
        if status in {"active", "pending", "open"}:
            return replace(about, kind=REOPENED)
        return about
    if name == "convo.assigned":
        return _assignment(body, about)
    return about


def _assignment(body: dict[str, Any], about: TicketEvent) -> TicketEvent:
    if "assignee" not in body and "owner" not in body:
        return replace(about, kind=IGNORED, reason=NOT_AN_ASSIGNMENT)
    person = body.get("assignee", body.get("owner"))
    if person is not None and not isinstance(person, dict):
        return replace(about, kind=REFUSED,
                       reason="The assignee must be an object with an e-mail, or null.")
    email = hs_user = ""
    if person and person.get("email"):
        try:
            email = normalise_email(person.get("email"))
        except ValidationFailed:
            return replace(about, kind=REFUSED, reason="The assignee's e-mail is not valid.")
        hs_user = _id(person.get("id"))
    return replace(about, kind=ASSIGNED, assignee=email, helpdesk_user=hs_user)


def _safe_event(result: dict[str, Any]) -> str:
    name = result.get("event")
    return name if isinstance(name, str) and _EVENT.fullmatch(name) else "another event"


class HelpScout:
    """Help Scout's webhooks, as the rules take a helpdesk (vault.helpdesks.tickets)."""

    source = NAME
    actor = NAME

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self.secrets = secrets

    def verify(self, raw: bytes, header: Callable[[str], str]) -> Delivery:
        verify_body(raw, self.secrets, header(SIGNATURE))
        # The signature covers the body only: the event's name is a claim about it.
        return Delivery(digest=hashlib.sha256(raw).hexdigest(), raw=raw,
                        name=header("X-HelpScout-Event").strip()[:100])

    def ticket_event(self, delivery: Delivery, body: dict[str, Any]) -> TicketEvent:
        return ticket_event(delivery.name, body, delivery.digest)

    def repeat(self, delivery: Delivery, first: dict[str, Any]) -> Repeat | None:
        """The same signed body again, under another event name. Help Scout may send one
        conversation's state for two events at once (a status change and an assignment):
        what those two do is read from the body, so each is acted on once. A deletion or a
        merge is asserted by the name alone: a body delivered before as something else is
        not one."""
        name = delivery.name
        if first.get("event") == name:
            return None  # a plain repeat: the first answer
        if name in READ_FROM_BODY:
            return Repeat(digest=hashlib.sha256(f"{name}\n".encode() + delivery.raw).hexdigest())
        ticket = first.get("ticket") if is_ticket(first.get("ticket")) else None
        return Repeat(event=TicketEvent(IGNORED, {"event": name}, name=name, ticket=ticket,
                                        reason=f"the same body came as {_safe_event(first)}"))


# -- replay ------------------------------------------------------------------------------------------

# Where Help Scout posts its webhook deliveries on vault (vault/api/webhooks.py's route).
WEBHOOK_PATH = "/api/v1/webhooks/helpscout"
_RECORDED_EVENT = re.compile(r"[A-Za-z0-9._-]{1,100}")


class BadRecording(ValueError):
    """A line of a replay file that is not a delivery. The message names what is wrong (a JSON
    position, a field), never the line's text."""


@dataclass(frozen=True)
class Recorded:
    """One recorded delivery of a replay file: its line, its event's name, its body's bytes."""

    line: int
    event: str
    raw: bytes

    def headers(self, secret: str) -> dict[str, str]:
        """The headers Help Scout would send with it, signed with `secret`."""
        return {"Content-Type": "application/json", "X-HelpScout-Event": self.event,
                SIGNATURE: helpscout_sign(secret, self.raw)}


def recorded_delivery(number: int, data: bytes) -> Recorded | None:
    """Line `number` of a replay file, as bytes: None for a blank line or a comment (`#`);
    BadRecording when it is not {"event", "body"} (the event may come instead as an
    X-HelpScout-Event entry of a "headers" object; other headers are ignored). A body that is
    an object is sent as compact JSON, as Help Scout sends it; a string body is the recorded
    bytes, kept as they are."""
    try:
        text = data.decode("utf-8-sig" if number == 1 else "utf-8").strip()
    except UnicodeDecodeError:
        raise BadRecording("not UTF-8 text") from None
    if not text or text.startswith("#"):
        return None
    try:
        item = json.loads(text)
    except ValueError as exc:
        # The decoder's message names a position, never the text itself.
        where = f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError) \
            else type(exc).__name__
        raise BadRecording(f"not valid JSON ({where})") from None
    if not isinstance(item, dict):
        raise BadRecording('expected a JSON object with "event" and "body"')
    headers = item.get("headers", {})
    if not isinstance(headers, dict):
        raise BadRecording('"headers" must be an object')
    named = [v for k, v in headers.items() if k.lower() == "x-helpscout-event"]
    event = item.get("event", named[0] if named else None)
    if named and any(v != event for v in named):
        raise BadRecording('"event" and the X-HelpScout-Event header disagree')
    if not isinstance(event, str) or not _RECORDED_EVENT.fullmatch(event):
        raise BadRecording('"event" (or an X-HelpScout-Event header) must name the event, '
                           "such as convo.assigned")
    body = item.get("body")
    try:
        if isinstance(body, dict):
            raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        elif isinstance(body, str):
            raw = body.encode()
        else:
            raise BadRecording('"body" must be a JSON object (sent as compact JSON) or a '
                               "string (sent byte for byte)")
    except UnicodeEncodeError:
        raise BadRecording('"body" holds an unpaired surrogate escape (\\ud800-\\udfff)'
                           ) from None
    return Recorded(line=number, event=event, raw=raw)


# -- the sidebar -------------------------------------------------------------------------------------

# Parameters vault reads from its own callback URL for the app page: Help Scout does not sign them.
APP_UNSIGNED = ("lang",)


def app_secrets(config: Config) -> tuple[str, ...]:
    if not config.helpscout_app_secret:
        raise Unauthenticated("The Help Scout app is not configured on this server.")
    return config.helpscout_app_secret


def verify_sidebar_body(raw: bytes, config: Config, header: str | None) -> None:
    """The legacy dynamic app's call: Unauthenticated unless signed with an app secret."""
    try:
        helpscout_body_signed(raw, app_secrets(config), header)
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None


def legacy_subject(body: dict[str, Any]) -> tuple[str | None, str]:
    """(ticket, Help Scout user) of the legacy app's call; no ticket for a draft."""
    ticket_info = body.get("ticket")
    number = ticket_info.get("number") if isinstance(ticket_info, dict) else None  # a draft
    ticket = str(number) if isinstance(number, int | str) and not isinstance(number, bool) \
        and is_ticket(str(number)) else None
    user = body.get("user")
    hs_user = str(user.get("id")) if isinstance(user, dict) and user.get("id") is not None else ""
    return ticket, hs_user


def app_subject(query: bytes, config: Config, vault: Vault) -> tuple[str | None, str, bool]:
    """(ticket, Help Scout user, whether the conversation is one vault cannot tell) of an app
    page load's signed query; Unauthenticated unless signed (and, with a signed `timestamp`,
    fresh). The ticket is the conversation's number, else what the webhooks learnt of its id
    (Help Scout's ids and numbers differ; vault's ticket is the number)."""
    try:
        context = helpscout_query_context(query, app_secrets(config), unsigned=APP_UNSIGNED)
    except BadSignature as exc:
        raise Unauthenticated(str(exc)) from None
    _fresh(context, config, vault.clock)
    number = context.get("conversation-number", "")
    conversation = context.get("conversation-id", "")
    known_id = bool(HELPSCOUT_ID.fullmatch(conversation))
    if is_ticket(number):
        ticket: str | None = number
    else:
        ticket = vault.conversation_ticket(conversation) if known_id else None
    # A saved conversation whose number Help Scout did not give and no webhook told vault.
    return ticket, context.get("user-id", ""), ticket is None and known_id


def _fresh(context: dict[str, str], config: Config, clock: Callable[[], float]) -> None:
    """A signed `timestamp` (Unix seconds or milliseconds) must be within the tolerance."""
    stamp = context.get("timestamp")
    if stamp is None:
        return
    if not re.fullmatch(r"[0-9]{1,13}", stamp):
        raise Unauthenticated("The signed timestamp is not one vault reads.")
    seconds = int(stamp) / (1000 if len(stamp) > 11 else 1)
    if abs(clock() - seconds) > config.webhook_tolerance:
        raise Unauthenticated("The signature is too old (or from the future): reload the page.")


def sidebar_context(vault: Vault, config: Config, windows: list[tuple[int, int]],
                    ticket: str | None, hs_user: str) -> dict[str, Any]:
    """What `helpscout/_sidebar.html` renders for `ticket` (None: a conversation vault cannot
    tell, a draft) opened by the Help Scout user `hs_user`; `windows` are the webhook limit's,
    which the sidebar's script counts per ticket."""
    if ticket is None:
        return {"view": None}
    view = vault.sidebar_view(ticket, hs_user if HELPSCOUT_ID.fullmatch(hs_user) else "",
                              limits=windows)
    rows = _Rows()
    items = [rows.item(r) for r in view["rows"]] + [rows.deleted(d["deleted_at"])
                                                   for d in view["deleted"]]
    if view["more_deleted"]:
        items.append(rows.more_deleted(view["more_deleted"]))
    return {"view": view, "base_url": config.base_url, "items": items,
            "closed_at": rows.when(view["closed_at"])}


class _Rows:
    """The sidebar's list rows as escaped HTML, in the request's language.

    A ticket of 100 secrets has 100 rows: each phrase and the month names are looked up once
    per render here, not once per row in the template (a Flask-Babel lookup per row made the
    sidebar of a full ticket miss its latency target: bench/README.md, "Help Scout's
    sidebar"). Every dynamic value goes through Markup's %-formatting, which escapes it."""

    def __init__(self) -> None:
        months = get_month_names("abbreviated", locale=get_locale())
        self.months = [""] + [str(months[m]) for m in range(1, 13)]
        self.row = _markup(gettext("%(label)s: %(state)s"))
        self.labels = {"request": gettext("Request"), "wordpress": gettext("WordPress admin"),
                       "sftp": gettext("sFTP / SSH"), "other": gettext("Other")}
        self.secret = gettext("Secret")
        self.anyone = gettext("an agent")
        self.states = {
            "revealed": _markup(gettext("revealed by %(who)s at %(when)s")),
            "expired unread": _markup(gettext("expired unread %(when)s")),
            "expired": _markup(gettext("expired %(when)s")),
            "open": _markup(gettext("waiting for the customer since %(when)s")),
            "waiting": _markup(gettext("waiting to be read since %(when)s")),
            "deleted": _markup(gettext("deleted by the customer at %(when)s")),
        }

    def when(self, value: str | None) -> Markup:
        """A time (RFC 3339, as the service writes it): day, month, year, hour and minute,
        UTC, machine-readable in the tag. Sliced, not parsed."""
        if not value:
            return Markup("")
        shown = f"{value[8:10]} {self.months[int(value[5:7])]} {value[:4]} {value[11:16]} UTC"
        return Markup('<time datetime="%s">%s</time>') % (value, shown)

    def item(self, r: dict[str, Any]) -> Markup:
        state = r["state"]
        if state == "expired" and r["what"] != "request":
            state = "expired unread"
        text = self.states.get(state, self.states["waiting"]) % {
            "who": r["by"] or self.anyone, "when": self.when(r["at"])}
        return self.row % {"label": _strong(self.labels.get(r["what"], self.secret)),
                           "state": text}

    def deleted(self, at: str | None) -> Markup:
        return self.row % {"label": _strong(self.secret),
                           "state": self.states["deleted"] % {"when": self.when(at)}}

    def more_deleted(self, n: int) -> Markup:
        text = ngettext("%(num)d earlier one deleted by the customer",
                        "%(num)d earlier ones deleted by the customer", n)
        return self.row % {"label": _strong(self.secret), "state": text}


def _markup(text: str) -> Markup:
    return escape(text)  # a translation is text: escaped (a Markup), then used as a format


def _strong(text: str) -> Markup:
    return Markup("<strong>%s</strong>") % text


__all__ = ["APP_UNSIGNED", "HELPSCOUT_ID", "NAME", "NOT_AN_ASSIGNMENT", "NOT_A_CONVERSATION",
           "NOT_A_DELETION", "READ_FROM_BODY", "SIGNATURE", "WEBHOOK_PATH", "BadRecording",
           "BadSignature", "HelpScout", "Recorded", "app_secrets", "app_subject",
           "helpscout_body_signed", "helpscout_query_context", "helpscout_sign",
           "helpscout_sign_query", "legacy_subject", "recorded_delivery", "sidebar_context",
           "ticket_event", "updated_ms", "verify_body", "verify_sidebar_body"]
