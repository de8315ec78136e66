"""The catalogs and the pages in every language: every message translated, the compiled .mo
current, placeholders kept, and no English sentence left on a page rendered in another language.

`scripts/i18n` extracts the messages (babel.cfg), merges them into each language's .po and
compiles it; these tests fail until every new message is translated in every catalog and the .mo
files are rebuilt (docs/translating.md).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from tests.helpers import share
from tests.test_pages import fill, login, request_for
from vault.i18n import LANG_COOKIE, LANGUAGES, RIGHT_TO_LEFT

ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = ROOT / "vault" / "translations"
# Every language but English (the sources'), as Babel names its catalogs ("pt-BR" is "pt_BR").
LOCALES = [tag.replace("-", "_") for tag in LANGUAGES[1:]]
REFRESH = ("run scripts/i18n, translate the new or fuzzy entries of each "
           "vault/translations/<locale>/LC_MESSAGES/messages.po, then run scripts/i18n again to "
           "compile (docs/translating.md)")

# %(name)s for the server (Jinja and Flask-Babel), {name} for the page scripts' messages.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|\{(\w+)\}")


# -- the catalogs ----------------------------------------------------------------------------------

def _ids(message: Message) -> tuple[str, ...]:
    return message.id if isinstance(message.id, tuple) else (message.id,)


def _strings(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string or "",)


def po_path(locale: str) -> Path:
    return TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po"


@functools.cache
def source_catalog() -> Catalog:
    """The messages in the sources, extracted as scripts/i18n does (babel.cfg, `_`, `lazy_gettext`)."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "lazy_gettext": None}
    catalog = Catalog(project="vault")
    for filename, lineno, msgid, comments, context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=keywords, strip_comment_tags=True):
        catalog.add(msgid, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


@functools.cache
def catalog(locale: str) -> Catalog:
    with po_path(locale).open("rb") as po:
        return read_po(po, locale=locale)


@functools.cache
def pairs(locale: str) -> tuple[tuple[str, str, bool], ...]:
    """(English, translation, plural) for every translated message, plural forms included."""
    found = []
    for message in catalog(locale):
        if not message.id or message.fuzzy:
            continue
        ids, strings = _ids(message), _strings(message)
        for index, text in enumerate(strings):
            if text:
                found.append((ids[min(index, len(ids) - 1)], text, len(ids) > 1))
    return tuple(found)


def french_pairs() -> list[tuple[str, str]]:
    return [(english, french) for english, french, _ in pairs("fr")]


def test_every_language_has_a_catalog_and_nothing_else_does() -> None:
    assert LANGUAGES[0] == "en" and len(LANGUAGES) >= 10 and set(LANGUAGES) >= RIGHT_TO_LEFT
    on_disk = sorted(path.name for path in TRANSLATIONS.iterdir() if path.is_dir())
    assert on_disk == sorted(LOCALES)


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_translates_every_message_of_the_sources(locale: str) -> None:
    source = source_catalog()
    assert len(source) > 100, "extraction found almost no messages: is babel.cfg right?"
    po = catalog(locale)
    missing = []
    for message in source:
        if not message.id:
            continue
        translated = po.get(message.id, context=message.context)
        if translated is None or translated.fuzzy or not all(_strings(translated)) \
                or (isinstance(message.id, tuple) and len(_strings(translated)) != po.num_plurals):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    assert not missing, (f"{len(missing)} message(s) without a {locale} translation ({REFRESH}):"
                         "\n  " + "\n  ".join(repr(m) for m in sorted(missing)))


@pytest.mark.parametrize("locale", LOCALES)
def test_the_catalog_header_names_its_language_and_nothing_is_fuzzy(locale: str) -> None:
    po = catalog(locale)
    assert str(po.locale) == locale
    assert dict(po.mime_headers)["Language"] == locale
    assert po.plural_forms == Catalog(locale=locale).plural_forms  # CLDR's rule for the language
    assert not po.fuzzy, "the .po header is marked fuzzy"
    fuzzy = [m.id for m in po if m.id and m.fuzzy]
    assert not fuzzy, f"fuzzy entries ({REFRESH}): {fuzzy}"


@pytest.mark.parametrize("locale", LOCALES)
def test_the_committed_mo_is_the_compiled_po(locale: str) -> None:
    def key(value: Any) -> Any:  # a plural's forms come as a tuple from .po, a list from .mo
        return tuple(value) if isinstance(value, list | tuple) else value

    po = {key(m.id): key(m.string) for m in catalog(locale) if m.id and not m.fuzzy and m.string}
    with po_path(locale).with_suffix(".mo").open("rb") as mo_file:
        mo = {key(m.id): key(m.string) for m in read_mo(mo_file) if m.id}
    stale = sorted(str(k) for k in po.keys() | mo.keys() if po.get(k) != mo.get(k))
    assert not stale, (f"{locale}'s messages.mo does not match its messages.po ({REFRESH}): "
                       + ", ".join(repr(s) for s in stale[:20]))
    # And the file Flask-Babel loads answers with the .po's words.
    translations = Translations.load(str(TRANSLATIONS), [locale])
    assert isinstance(translations, Translations), f"no {locale} .mo that babel can load"
    for msgid, text in po.items():
        if isinstance(msgid, str):
            assert translations.gettext(msgid) == text, msgid


def _placeholders(text: str) -> set[str]:
    return {f"%({named})s" if named else f"{{{braced}}}"
            for named, braced in PLACEHOLDER.findall(text)}


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_every_placeholder(locale: str) -> None:
    """The same placeholders as the English; a plural form may leave out the count (Polish and
    Arabic say "one" or "two" in words), never another placeholder."""
    wrong = []
    for english, text, plural in pairs(locale):
        want, got = _placeholders(english), _placeholders(text)
        if got == want or (plural and got | {"%(num)s"} == want | {"%(num)s"} and got <= want):
            continue
        wrong.append(f"{english!r}: {sorted(want)} -> {text!r}: {sorted(got)}")
    assert not wrong, f"placeholders differ between English and {locale}:\n  " + "\n  ".join(wrong)


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_are_safe_to_format_and_to_put_in_html(locale: str) -> None:
    """Jinja's newstyle gettext %-formats every message and marks it safe (it is not escaped):
    a stray % breaks the page, and < > & or a double quote would end up in the HTML as is."""
    bad = []
    for english, text, _ in pairs(locale):
        bare = PLACEHOLDER.sub("", text).replace("%%", "")
        if "%" in bare:
            bad.append(f"{text!r}: a '%' that is not a placeholder (write %%)")
        for char in '<>&"':
            if char in text and char not in english:
                bad.append(f"{text!r}: {char!r}")
        if any(ord(char) in BIDI_CONTROLS for char in text):
            bad.append(f"{text!r}: a bidi control character (the page's dir does that job)")
    assert not bad, "\n  ".join(["unsafe translations:", *bad])


BIDI_CONTROLS = frozenset({*range(0x202A, 0x202F), *range(0x2066, 0x206A)})


# -- the pages, rendered ---------------------------------------------------------------------------

class VisibleText(HTMLParser):
    """What a visitor can read (or hear) on a page: text, and the attributes that are shown or
    spoken, the script messages (data-messages) and the sentences held in data-* attributes."""

    SPOKEN = frozenset({"title", "aria-label", "aria-description", "aria-roledescription",
                        "placeholder", "alt", "label"})
    BUTTON_TYPES = frozenset({"submit", "button", "reset"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def _add(self, text: str) -> None:
        text = " ".join(text.split())
        if text:
            self.chunks.append(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "style"}:
            self._skip += 1
        found = {name: value or "" for name, value in attrs}
        for name, value in found.items():
            shown_value = name == "value" and tag == "input" and found.get("type") in self.BUTTON_TYPES
            if name in self.SPOKEN or shown_value:
                self._add(value)
            elif name == "data-messages":
                for message in json.loads(value or "{}").values():
                    self._add(str(message))
            elif name.startswith("data-") and (found.get("id") == "field-labels" or " " in value):
                self._add(value)  # the field labels of revealed credentials, data-sentence

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag in {"script", "style"}:
            self._skip -= 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"} and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._add(data)


def visible_text(html: str) -> list[str]:
    parser = VisibleText()
    parser.feed(html)
    parser.close()
    return parser.chunks


def _literal_words(message: str) -> int:
    return sum(1 for token in PLACEHOLDER.sub(" ", message).split() if re.search(r"[^\W\d_]", token))


def _pattern(message: str) -> re.Pattern[str]:
    """The message as it appears on a page: any text where a placeholder was, spaces loose."""
    parts = []
    for index, piece in enumerate(PLACEHOLDER.split(message)[::3]):
        if index:
            parts.append(r".+?")
        parts.append(r"\s+".join(re.escape(word) for word in piece.split(" ")))
    body = "".join(parts)
    start = r"(?<!\w)" if re.match(r"\w", message) else ""
    end = r"(?!\w)" if re.search(r"\w$", message) else ""
    return re.compile(start + body + end)


@functools.cache
def telltales(language: str) -> tuple[tuple[str, re.Pattern[str]], ...]:
    """The catalog's sentences that give a page away as being in another language: English
    messages for a page in another language, French translations for an English one. A message
    is only a telltale when both languages differ and it has two words or more (not "Port")."""
    found = []
    for english, translated, _ in pairs(language.replace("-", "_") if language != "en" else "fr"):
        if " ".join(english.split()) == " ".join(translated.split()):
            continue
        text = translated if language == "en" else english
        if _literal_words(text) >= 2:
            found.append((text, _pattern(" ".join(text.split()))))
    return tuple(found)


def other_language_on(html: str, language: str) -> list[str]:
    chunks = visible_text(html)
    return sorted({text for text, pattern in telltales(language)
                   if any(pattern.search(chunk) for chunk in chunks)})


@dataclass
class Walk:
    """Every page in each of its states, as seen by one language setting."""

    app: Any
    how: str  # "header" or "cookie"
    language: str
    pages: list[tuple[str, str]] = field(default_factory=list)  # (label, html)

    def client(self) -> Any:
        client = self.app.test_client()
        other = "fr" if self.language == "en" else "en"
        if self.how == "cookie":  # the cookie wins over the browser's languages
            client.set_cookie(LANG_COOKIE, self.language)
            client.environ_base["HTTP_ACCEPT_LANGUAGE"] = f"{other},{self.language};q=0.1"
        else:
            client.environ_base["HTTP_ACCEPT_LANGUAGE"] = f"{self.language};q=0.9,{other};q=0.5"
        return client

    def keep(self, label: str, rv: Any, status: int, marker: str = "", absent: str = "") -> str:
        html = str(rv.get_data(as_text=True))
        assert rv.status_code == status, f"{label}: answered {rv.status_code}, not {status}"
        assert rv.mimetype == "text/html", label
        assert marker in html, f"{label}: not the expected state (no {marker!r} in the page)"
        assert not absent or absent not in html, f"{label}: not the expected state ({absent!r})"
        self.pages.append((label, html))
        return html

    def visit(self, client: Any, path: str, status: int = 200, marker: str = "",
              absent: str = "", label: str = "") -> str:
        return self.keep(f"{label or path} [{path}]", client.get(path), status, marker, absent)


def walk_every_page(walk: Walk, clock: Any, agent: Any, admin: Any, helpdesk: Any) -> None:
    api, anon, staff, boss = walk.app.test_client(), walk.client(), walk.client(), walk.client()
    visit = walk.visit

    visit(anon, "/", marker='id="share-form"', label="share")
    visit(anon, "/login", marker='id="login-form"', label="login")
    visit(anon, "/s/not-an-id", 404, label="404 (bad link)")
    visit(anon, "/nothing/here", 404, label="404 (unknown page)")

    csrf = login(staff, agent)
    visit(staff, "/dashboard", absent='class="tickets"', label="dashboard (no tickets)")
    visit(staff, "/requests/new?ticket=1", marker='id="request-form"', label="new request")
    visit(staff, "/account", marker='id="two-factor-state"', label="account")
    walk.keep("account (two-factor setup started)",
              staff.post("/account", data={"csrf_token": csrf, "action": "start-2fa"}), 200)
    visit(staff, "/account", marker='id="two-factor-state"', label="account (setup pending)")

    # A request through its states: open, submitted, revealed.
    request_id = request_for(api, agent, "4242")
    visit(anon, f"/r/{request_id}", marker='id="fill-form"', label="request open")
    secret_id = fill(api, request_id, "4242")["secret_id"]
    visit(anon, f"/r/{request_id}", marker="state-waiting", label="request submitted")
    visit(anon, f"/s/{secret_id}", marker='id="login-to-reveal"', label="secret waiting (anonymous)")
    visit(staff, f"/s/{secret_id}", marker='id="reveal-button"', label="secret waiting (agent)")
    visit(anon, f"/m/{secret_id}", marker='id="delete-button"', label="manage waiting")
    assert api.post(f"/api/v1/secrets/{secret_id}/reveal", headers=agent.headers).status_code == 200
    visit(anon, f"/r/{request_id}", marker="state-revealed", label="request revealed")
    visit(anon, f"/s/{secret_id}", marker="state-revealed", label="secret revealed")
    visit(anon, f"/m/{secret_id}", marker="state-revealed", label="manage revealed")

    # Shared from the start page, then deleted by the customer.
    shared = share(api, ticket="4242")
    assert api.delete(f"/api/v1/secrets/{shared['id']}",
                      headers={"X-Manage-Token": shared["manage_token"]}).status_code == 204
    visit(anon, f"/s/{shared['id']}", marker="reason-deleted", label="secret deleted")
    visit(anon, f"/m/{shared['id']}", marker="reason-deleted", label="manage deleted")

    visit(staff, "/tickets/4242", label="ticket (open)")
    visit(staff, "/dashboard", marker='class="tickets"', label="dashboard")

    # Junk through the share page, discarded by the assignee on the ticket page.
    junk = share(api, ticket="4242")
    share(api, ticket="4242")  # a second one, so that the page still offers a discard after
    visit(staff, "/tickets/4242", marker='value="discard"', label="ticket (discard offered)")
    form = {"csrf_token": csrf, "action": "discard", "secret": junk["id"]}
    assert staff.post("/tickets/4242", data=form).status_code == 303
    visit(staff, "/tickets/4242?done=discarded", marker="alert info", label="ticket (discarded)")
    walk.keep("ticket (discard refused)", staff.post("/tickets/4242", data=form), 410,
              marker="alert error")
    visit(anon, f"/s/{junk['id']}", marker="reason-discarded", label="secret discarded")
    visit(anon, f"/m/{junk['id']}", marker="reason-discarded", label="manage discarded")

    # A ticket closed with credentials still waiting: purged.
    closing = request_for(api, agent, "5151")
    purged_id = fill(api, closing, "5151")["secret_id"]
    assert api.post("/api/v1/tickets/5151/close", headers=helpdesk).status_code == 200
    visit(anon, f"/r/{closing}", marker="reason-purged", label="request purged")
    visit(anon, f"/s/{purged_id}", marker="reason-purged", label="secret purged")
    visit(anon, f"/m/{purged_id}", marker="reason-purged", label="manage purged")
    visit(staff, "/tickets/5151", label="ticket (closed)")
    visit(staff, "/dashboard", marker="ticket-closed", label="dashboard (closed ticket)")

    visit(staff, "/admin/agents", 403, label="403 (admin page, plain agent)")
    visit(staff, "/tickets/bad%20ticket", 400, label="400 (bad ticket)")

    admin_csrf = login(boss, admin)
    visit(boss, "/admin/agents", label="admin agents")
    visit(boss, "/admin/agents?done=disabled", label="admin agents (after a change)")
    visit(boss, "/admin/keys", label="admin keys")
    walk.keep("admin keys (new key)", boss.post(
        "/admin/keys", data={"csrf_token": admin_csrf, "action": "create", "name": "zendesk"}), 201)
    walk.keep("admin keys (bad name)", boss.post(
        "/admin/keys", data={"csrf_token": admin_csrf, "action": "create", "name": "bad name!"}), 400)
    visit(boss, "/admin/keys?done=revoked", label="admin keys (after revoking)")
    visit(boss, "/admin/audit", label="admin audit")
    visit(boss, "/admin/audit?ticket=4242", label="admin audit (a ticket)")
    visit(boss, f"/admin/audit?agent={agent.email}", label="admin audit (an agent)")

    # Last, as it moves the clock: a secret nobody read in time.
    expiring = share(api, ticket="555", ttl=60)
    clock.advance(61)
    visit(anon, f"/s/{expiring['id']}", marker="reason-expired", label="secret expired")
    visit(anon, f"/m/{expiring['id']}", marker="reason-expired", label="manage expired")


@pytest.fixture
def walk_in(app: Any, clock: Any, agent: Any, admin: Any, helpdesk: Any
            ) -> Iterator[Callable[[str, str], Walk]]:
    def run(language: str, how: str) -> Walk:
        walk = Walk(app=app, how=how, language=language)
        walk_every_page(walk, clock, agent, admin, helpdesk)
        return walk
    yield run


def _check_language(walk: Walk) -> None:
    other = "French" if walk.language == "en" else "English"
    html_tag = f'<html lang="{walk.language}" dir="{"rtl" if walk.language in RIGHT_TO_LEFT else "ltr"}">'
    wrong_lang = [label for label, html in walk.pages if html_tag not in html]
    assert not wrong_lang, f"pages without {html_tag}: {wrong_lang}"
    leaks = {label: found for label, html in walk.pages
             if (found := other_language_on(html, walk.language))}
    assert not leaks, (f"{other} text on {walk.language} pages ({walk.how}); a string not wrapped in "
                       f"_() or a stale catalog ({REFRESH}):\n" + "\n".join(
                           f"  {label}:\n" + "\n".join(f"    {text!r}" for text in found)
                           for label, found in leaks.items()))


@pytest.mark.parametrize("how", ["header", "cookie"])
def test_french_pages_hold_no_english_sentence(walk_in: Callable[[str, str], Walk], how: str) -> None:
    walk = walk_in("fr", how)
    assert len(walk.pages) >= 35
    _check_language(walk)


@pytest.mark.parametrize("language", [tag for tag in LANGUAGES if tag not in {"en", "fr"}])
def test_pages_in_every_language_hold_no_english_sentence(
        walk_in: Callable[[str, str], Walk], language: str) -> None:
    walk = walk_in(language, "header")
    assert len(walk.pages) >= 35
    _check_language(walk)


@pytest.mark.parametrize("how", ["header", "cookie"])
def test_english_pages_are_english(walk_in: Callable[[str, str], Walk], how: str) -> None:
    walk = walk_in("en", how)
    assert len(walk.pages) >= 35
    _check_language(walk)


def test_the_leak_check_sees_text_attributes_and_script_messages() -> None:
    """The detector itself: English in text, in a title, in data-messages or a data-sentence."""
    sample = "Encrypt and send"
    assert sample in dict(french_pairs())
    assert other_language_on(f"<p>\n  {sample}\n</p>", "fr") == [sample]
    assert other_language_on(f'<a title="{sample}">x</a>', "fr") == [sample]
    assert other_language_on(f'<section data-sentence="{sample}: x"></section>', "fr") == [sample]
    assert other_language_on(f'<input type="submit" value="{sample}">', "fr") == [sample]
    assert other_language_on(f'<input type="hidden" value="{sample}">', "fr") == []
    assert other_language_on(f"<script>'{sample}'</script>", "fr") == []
    script = "This link has lost its key (the part after #). Open the link exactly as you received it."
    messages = json.dumps({"no_key": script}).replace("'", "\\u0027")  # as |tojson does
    assert other_language_on(f"<body data-messages='{messages}'></body>", "fr") == [script]
    assert other_language_on("<h1>Ticket 4242 : identifiants</h1>", "fr") == []
    assert other_language_on("<h1>Ticket 4242: credentials</h1>", "fr") == [
        "Ticket %(ticket)s: credentials"]
    assert other_language_on("<p>Ticket 4242 : identifiants</p>", "en") == [
        "Ticket %(ticket)s\u00a0: identifiants"]  # a no-break space in French, any space on a page


# -- no literal text outside the catalog ----------------------------------------------------------

_ALLOWED_LITERALS = {"vault", "·", "sFTP", "SSH", "otpauth"}
_VISIBLE_ATTRIBUTES = re.compile(
    r'\b(?:aria-label|title|placeholder|alt)="([^"{]*)"'
    r'|<input\b[^>]*\btype="(?:submit|button|reset)"[^>]*\bvalue="([^"{]*)"')


def test_templates_hold_no_user_visible_text_outside_gettext() -> None:
    """What the catalog-based walk cannot see: a sentence typed into a template without `_()`
    would show in English on every French page. Strip every Jinja tag and every HTML tag; any
    word left (or in a visible attribute) is such a sentence."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "vault" / "templates").rglob("*.html")):
        source = path.read_text()
        source = re.sub(r"\{#.*?#\}|\{%.*?%\}|\{\{.*?\}\}", " ", source, flags=re.S)
        words = re.findall(r"[^\W\d_]{2,}", re.sub(r"<[^>]*>", " ", source))
        words += [w for values in _VISIBLE_ATTRIBUTES.findall(source) for value in values
                  for w in re.findall(r"[^\W\d_]{2,}", value)]
        left = [w for w in words if w not in _ALLOWED_LITERALS]
        if left:
            found[str(path.relative_to(ROOT))] = left
    assert not found, f"untranslatable text in templates (wrap it in _()): {found}"


# -- choosing a language -------------------------------------------------------------------------

@pytest.mark.parametrize(("accept", "chosen"), [
    ("de-CH,de;q=0.9", "de"), ("es-MX", "es"), ("it", "it"), ("pt-BR,pt;q=0.8", "pt-BR"),
    ("pt", "pt-BR"), ("nl-BE", "nl"), ("pl", "pl"), ("ja-JP,ja;q=0.9", "ja"), ("ar-EG", "ar"),
    ("sv, de;q=0.3", "de"), ("sv, zz", "en"), ("", "en")])
def test_accept_language_picks_the_closest_of_ten(client: Any, accept: str, chosen: str) -> None:
    page = client.get("/", headers={"Accept-Language": accept}).get_data(as_text=True)
    direction = "rtl" if chosen in RIGHT_TO_LEFT else "ltr"
    assert f'<html lang="{chosen}" dir="{direction}">' in page


@pytest.mark.parametrize("asked", ["pt-BR", "pt_br", "PT-BR", "ar", "JA"])
def test_the_switcher_takes_a_tag_in_any_case_and_remembers_it(client: Any, asked: str) -> None:
    rv = client.get(f"/login?lang={asked}")
    assert rv.status_code == 303 and rv.headers["Location"] == "/login"
    tag = {"pt_br": "pt-BR", "PT-BR": "pt-BR", "JA": "ja"}.get(asked, asked)
    assert f"{LANG_COOKIE}={tag};" in rv.headers["Set-Cookie"]
    page = client.get("/login", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert f'<html lang="{tag}"' in page


def test_the_switcher_offers_every_language_in_its_own_name(client: Any) -> None:
    page = client.get("/", headers={"Accept-Language": "ar"}).get_data(as_text=True)
    menu = page[page.index('<details class="lang">'):page.index("</details>")]
    offered = re.findall(r'href="/\?lang=([^"]+)" hreflang="([^"]+)" lang="([^"]+)"', menu)
    assert [tag for tag, _, _ in offered] == list(LANGUAGES)
    assert all(a == b == c for a, b, c in offered)
    assert "Deutsch" in menu and "日本語" in menu and "العربية" in menu and "Polski" in menu
    assert 'aria-current="true">العربية' in menu


def test_problem_titles_speak_the_readers_language_and_types_do_not(client: Any) -> None:
    english = client.get("/api/v1/secrets/nothing-here")
    assert english.status_code == 404 and english.get_json()["title"] == "Not found"
    assert english.headers["Content-Language"] == "en"
    for tag in LANGUAGES[1:]:
        rv = client.get("/api/v1/secrets/nothing-here", headers={"Accept-Language": tag})
        body = rv.get_json()
        assert rv.status_code == 404 and rv.headers["Content-Language"] == tag
        assert body["status"] == 404 and body["type"] == english.get_json()["type"]
        assert body["title"] and body["title"] != "Not found", tag
        translated = Translations.load(str(TRANSLATIONS), [tag.replace("-", "_")])
        assert body["title"] == translated.gettext("Not found")


def test_every_problem_title_is_in_the_catalog() -> None:
    """vault.errors' titles are English for programs; each has its place in the catalog."""
    import inspect

    from vault import errors, i18n
    titles = {cls.title for _, cls in inspect.getmembers(errors, inspect.isclass)
              if issubclass(cls, errors.VaultError)}
    assert titles <= i18n.PROBLEM_TITLES.keys(), titles - i18n.PROBLEM_TITLES.keys()
    assert all(str(text) == english for english, text in i18n.PROBLEM_TITLES.items())
