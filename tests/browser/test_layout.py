"""Every page fits a phone and a laptop (in Chromium, Firefox and WebKit), mirrors right to
left, and keeps its visual defects fixed (in Chromium). The page list, the hostile data and the
width check are in layout.py, engine-neutral; the checks of the defects below read computed
styles and element boxes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from playwright.sync_api import Page, expect

from browser import flows
from browser.drivers import Driver
from browser.harness import LiveAgent, RecordedContext, assert_accessible, shot
from browser.layout import (
    CREATE_LINK,
    HEIGHT,
    LAPTOP,
    PHONE,
    PHONE_SMALL,
    REPLY_CUT,
    REPLY_WHOLE,
    ROWS,
    HostileData,
    layout_pages,
    log_in,
    make_hostile_data,
    measure,
    measure_pages,
    misfits,
    sides,
    width_table,
)

NewContext = Callable[..., RecordedContext]
MUTED = "rgb(74, 74, 74)"  # --muted


class PlaywrightDriver:
    """layout.Driver over a Playwright page."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def goto(self, path: str) -> None:
        self.page.goto(path)

    def resize(self, width: int, height: int) -> None:
        self.page.set_viewport_size({"width": width, "height": height})

    def run(self, script: str, arg: Any = None) -> Any:
        return self.page.evaluate(script, arg)

    def wait(self, condition: str) -> None:
        self.page.wait_for_function(condition, timeout=15_000)


class EngineDriver:
    """layout.Driver over a tab of browser/drivers.py (Firefox over BiDi, WebKit over WebDriver)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver

    def goto(self, path: str) -> None:
        # The data's links carry the live server's origin; these tabs are on its https twin.
        url = urlsplit(path)
        self.driver.goto(urlunsplit(("", "", url.path, url.query, url.fragment)))

    def resize(self, width: int, height: int) -> None:
        self.driver.set_viewport(width, height)

    def run(self, script: str, arg: Any = None) -> Any:
        return self.driver.evaluate(script) if arg is None else self.driver.evaluate(script, arg)

    def wait(self, condition: str) -> None:
        self.driver.wait_for(condition)


def tab(module_context: NewContext, width: int = LAPTOP, **options: Any) -> PlaywrightDriver:
    context, _ = module_context(viewport={"width": width, "height": HEIGHT}, **options)
    return PlaywrightDriver(context.new_page())


def assert_fits(driver: PlaywrightDriver, what: str) -> None:
    found = measure(driver, driver.page.viewport_size["width"] if driver.page.viewport_size
                    else LAPTOP)
    assert found.fits, f"{what}: {found.scroll} px wide for {found.client} ({found.wide})"


# -- screenshots at 375 px, with ordinary data (first: before the hostile data exists) -----------

def test_screenshots_of_the_agent_pages_and_the_share_page_on_a_phone(
        new_context: NewContext, live_agent: Callable[..., LiveAgent]) -> None:
    admin = live_agent(admin=True, name="Sam Support")
    agent_ctx, _ = new_context(viewport={"width": PHONE, "height": HEIGHT})
    page = agent_ctx.new_page()
    agent = PlaywrightDriver(page)
    customer_ctx, _ = new_context(viewport={"width": PHONE, "height": HEIGHT})
    customer = customer_ctx.new_page()

    flows.log_in(page, admin)
    link = flows.create_request(page, "48213", note="Hello! We need your WordPress admin to "
                                "look at the checkout error.")
    assert_fits(agent, "new request, link ready")
    shot(page, "phone-agent-new-request-link")
    flows.submit_request(customer, link, "wordpress", flows.WP_FIELDS)
    flows.share(customer, "48170", "other", {"text": "FTP: ftp.example.com / temp-support"})
    for path, name in [("/dashboard", "phone-agent-dashboard"),
                       ("/tickets/48213", "phone-agent-ticket"),
                       ("/account", "phone-agent-account"),
                       ("/admin/agents", "phone-admin-agents")]:
        page.goto(path)
        assert_fits(agent, path)
        shot(page, name)
    for lang, locale in [("en", "en-US"), ("fr", "fr-FR"), ("ar", "ar")]:
        context, _ = new_context(locale=locale, viewport={"width": PHONE, "height": HEIGHT})
        share = context.new_page()
        share.goto("/")
        expect(share.locator("html")).to_have_attribute("lang", lang)
        assert_fits(PlaywrightDriver(share), f"share page ({lang})")
        shot(share, "phone-customer-share" + ("" if lang == "en" else f"-{lang}"))


# -- every page, hostile data, three widths ---------------------------------------------------------

@pytest.fixture(scope="module")
def hostile(live_server: Any) -> HostileData:
    return make_hostile_data(live_server)


@pytest.fixture(scope="module")
def drivers(module_context: NewContext, hostile: HostileData
            ) -> Iterator[dict[str, PlaywrightDriver]]:
    """An anonymous tab and the hostile admin's, logged in once for the module."""
    tabs = {"anonymous": tab(module_context),
            "admin": tab(module_context, permissions=["clipboard-read", "clipboard-write"])}
    log_in(tabs["admin"], hostile.admin.email, hostile.admin.password)
    yield tabs


def test_every_page_fits_a_phone_and_a_laptop(drivers: dict[str, PlaywrightDriver],
                                              hostile: HostileData) -> None:
    found = measure_pages(drivers, layout_pages(hostile, lap=0))
    print("\n" + width_table(found))  # the table for a change's notes (pytest -s)
    assert not misfits(found), "pages wider than the viewport:\n" + "\n".join(misfits(found))


@pytest.mark.parametrize(("engine", "lap"), [("firefox", 2), ("webkit", 3)], indirect=["engine"])
def test_every_page_fits_a_phone_and_a_laptop_in_firefox_and_webkit(
        new_driver: Callable[..., Driver], hostile: HostileData, engine: str, lap: int) -> None:
    """The same pages and data as in Chromium (the https server shares the live server's
    Redis), each engine revealing credentials of its own lap."""
    tabs = {"anonymous": EngineDriver(new_driver()), "admin": EngineDriver(new_driver())}
    log_in(tabs["admin"], hostile.admin.email, hostile.admin.password)
    found = measure_pages(tabs, layout_pages(hostile, lap=lap))
    print(f"\n{engine}\n" + width_table(found))
    assert not misfits(found), f"pages wider than the viewport in {engine}:\n" + "\n".join(
        misfits(found))


def test_right_to_left_pages_mirror_and_fit_a_phone(
        module_context: NewContext, drivers: dict[str, PlaywrightDriver],
        hostile: HostileData) -> None:
    rtl = {"anonymous": tab(module_context, PHONE), "admin": tab(module_context, PHONE)}
    rtl["anonymous"].goto("/?lang=ar")  # remembered by each tab from here on
    log_in(rtl["admin"], hostile.admin.email, hostile.admin.password)
    rtl["admin"].goto("/dashboard?lang=ar")
    found = measure_pages(rtl, layout_pages(hostile, lap=1), widths=(PHONE,))
    assert not misfits(found), "right-to-left pages wider than a phone:\n" + "\n".join(
        misfits(found))

    for who, path in [("anonymous", "/"), ("admin", "/dashboard")]:
        ltr_tab, rtl_tab = drivers[who], rtl[who]
        for driver in (ltr_tab, rtl_tab):
            driver.resize(PHONE, HEIGHT)
            driver.goto(path)
        ltr, rtl_ = sides(ltr_tab), sides(rtl_tab)
        assert (ltr["direction"], rtl_["direction"]) == ("ltr", "rtl")
        # The language menu at the header's end: right of the brand, or left of it.
        assert ltr["lang"][0] > ltr["brand"][1], ltr
        assert rtl_["lang"][1] < rtl_["brand"][0], rtl_
        if who == "anonymous":  # the advice's bar on the side the text starts from
            assert ltr["advice_bar"] == [4, 0] and rtl_["advice_bar"] == [0, 4], (ltr, rtl_)
        else:  # columns run right to left, and a header's text starts at its cell's right
            assert ltr["columns"] == sorted(ltr["columns"]), ltr
            assert rtl_["columns"] == sorted(rtl_["columns"], reverse=True), rtl_
            left, right = ltr["header_room"]
            assert left < right, ltr
            left, right = rtl_["header_room"]
            assert right < left, rtl_


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_the_language_menu_opens_inside_a_small_phone(module_context: NewContext,
                                                      lang: str) -> None:
    driver = tab(module_context, PHONE_SMALL)
    page = driver.page
    page.goto(f"/?lang={lang}")
    links = page.locator(".lang nav a")
    expect(links.first).to_be_hidden()  # closed, it takes one line of the header
    page.click("details.lang summary")
    expect(links).to_have_count(10)
    inside = driver.run("""() => Array.from(document.querySelectorAll(".lang nav a"), (a) => {
        const r = a.getBoundingClientRect();
        const hit = document.elementFromPoint((r.left + r.right) / 2, (r.top + r.bottom) / 2);
        return r.left >= 0 && r.right <= document.documentElement.clientWidth && r.height > 0
          && a.contains(hit); })""")
    assert inside == [True] * 10, "every language is on the screen and uncovered"
    assert_fits(driver, f"the open menu ({lang})")
    page.keyboard.press("Escape")  # closes it, back on its button
    expect(links.first).to_be_hidden()
    expect(page.locator("details.lang summary")).to_be_focused()
    page.click("details.lang summary")
    page.mouse.click(5, HEIGHT - 5)  # so does a click elsewhere
    expect(links.first).to_be_hidden()
    page.click("details.lang summary")
    page.click('.lang a[hreflang="fr"]')
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.locator("html")).to_have_attribute("dir", "ltr")


# -- the visual defects ------------------------------------------------------------------------------

def test_the_agents_actions_stay_in_their_row(drivers: dict[str, PlaywrightDriver]) -> None:
    admin = drivers["admin"]
    admin.goto("/admin/agents")
    for width in (PHONE, LAPTOP):
        admin.resize(width, HEIGHT)
        rows, strays = admin.run("""() => {
          const rows = document.querySelectorAll("table.agents tbody tr"), strays = [];
          for (const row of rows) {
            const r = row.getBoundingClientRect();
            for (const cell of row.children) {
              const c = cell.getBoundingClientRect();
              if (getComputedStyle(cell).display !== "table-cell" || c.top < r.top - 0.5
                  || c.bottom > r.bottom + 0.5 || c.left < r.left - 0.5 || c.right > r.right + 0.5)
                strays.push(cell.className || cell.tagName);
            }
          }
          return [rows.length, strays]; }""")
        assert rows >= ROWS and strays == [], f"at {width} px: cells out of their row: {strays}"


def test_a_tickets_state_cells_have_no_status_bar(drivers: dict[str, PlaywrightDriver],
                                                  hostile: HostileData) -> None:
    admin, anonymous = drivers["admin"], drivers["anonymous"]
    admin.goto(f"/tickets/{hostile.ticket}")
    borders = admin.run("""() => Array.from(document.querySelectorAll('td[class^="state-"]'),
        (td) => [td.className, getComputedStyle(td).borderLeftWidth,
                 getComputedStyle(td).borderRightWidth])""")
    states = {name for name, _, _ in borders}
    assert {"state-waiting", "state-revealed", "state-open"} <= states, states
    assert all(sides_ == ["0px", "0px"] for _, *sides_ in borders), borders
    anonymous.goto(hostile.manage_link)  # the status box keeps its bar
    assert anonymous.run("() => getComputedStyle(document.querySelector('#state'))"
                         ".borderLeftWidth") == "5px"


FOCUS = """(selector) => { const el = document.querySelector(selector);
  const s = getComputedStyle(document.activeElement);
  return {inside: el.contains(document.activeElement), style: s.outlineStyle,
          width: s.outlineWidth, tag: document.activeElement.tagName}; }"""


def test_result_panels_take_the_focus_without_the_error_outline(
        drivers: dict[str, PlaywrightDriver], hostile: HostileData) -> None:
    admin, anonymous = drivers["admin"], drivers["anonymous"]
    admin.resize(LAPTOP, HEIGHT)
    admin.goto(f"/requests/new?ticket={hostile.ticket}")
    admin.page.click("#create-request")  # the mouse
    expect(admin.page.locator("#request-done")).to_be_focused()
    assert admin.run(FOCUS, "#request-done")["style"] == "none"

    admin.goto(f"/requests/new?ticket={hostile.ticket}")
    admin.page.focus("#f-note")
    admin.page.keyboard.press("Tab")  # the keyboard, to the button
    admin.page.keyboard.press("Enter")
    expect(admin.page.locator("#request-done")).to_be_focused()
    assert admin.run(FOCUS, "#request-done")["style"] == "none"
    admin.page.keyboard.press("Tab")  # into the panel: its first control shows the focus
    focus = admin.run(FOCUS, "#request-done")
    assert focus["inside"] and (focus["style"], focus["width"]) == ("solid", "3px"), focus

    page = anonymous.page
    anonymous.goto("/")
    page.fill("#f-ticket", hostile.ticket)
    flows.fill_credentials(page, "other", {"text": "sent with the mouse"})
    page.click("#share-form button[type=submit]")
    expect(page.locator("#share-done")).to_be_focused()
    assert anonymous.run(FOCUS, "#share-done")["style"] == "none"


def test_the_agents_message_and_the_advice_are_two_boxes(drivers: dict[str, PlaywrightDriver],
                                                         hostile: HostileData) -> None:
    anonymous = drivers["anonymous"]
    anonymous.goto(hostile.fill_link)
    for width in (PHONE, LAPTOP):
        anonymous.resize(width, HEIGHT)
        note, advice = anonymous.run("""() => [".note", ".advice"].map((selector) => {
            const el = document.querySelector(selector), s = getComputedStyle(el);
            const r = el.getBoundingClientRect();
            return {top: r.top, bottom: r.bottom, background: s.backgroundColor,
                    bar: s.borderLeftColor}; })""")
        assert advice["top"] - note["bottom"] >= 16, f"at {width} px they touch: {note} {advice}"
        assert note["background"] != advice["background"] and note["bar"] != advice["bar"]


def test_the_ready_to_paste_reply_shows_its_whole_sentence_and_copies_it(
        drivers: dict[str, PlaywrightDriver], hostile: HostileData) -> None:
    admin = drivers["admin"]
    admin.resize(LAPTOP, HEIGHT)
    admin.goto(f"/requests/new?ticket={hostile.ticket}")
    admin.run(CREATE_LINK)
    link = admin.page.input_value("#request-link")
    for width in (PHONE_SMALL, PHONE, LAPTOP):
        admin.resize(width, HEIGHT)
        reply = admin.run("""() => { const el = document.querySelector("#request-sentence");
            return {tag: el.tagName, readOnly: el.readOnly, value: el.value}; }""")
        assert reply["tag"] == "TEXTAREA" and reply["readOnly"], reply
        assert link in reply["value"]
        cut = admin.run(REPLY_CUT)
        assert cut <= 0, f"at {width} px, {cut} px of the reply are cut"
    admin.page.click('button[data-copy="request-sentence"]')
    expect(admin.page.locator("#copy-status")).to_have_text("Copied.")
    assert admin.run("() => navigator.clipboard.readText()") == reply["value"]


# A browser without CSS field-sizing (Firefox and Safari, for now), as far as the page can tell.
NO_FIELD_SIZING = """
  const supports = CSS.supports.bind(CSS);  // everything else as it is (check.js asks too)
  CSS.supports = (...args) => !args.join(" ").includes("field-sizing") && supports(...args);
  document.addEventListener("DOMContentLoaded", () => {
    const sheet = new CSSStyleSheet();
    sheet.replaceSync("textarea { field-sizing: fixed !important; }");
    document.adoptedStyleSheets = [sheet];
  });"""


def test_the_reply_is_shown_whole_by_the_script_where_css_cannot(
        module_context: NewContext, hostile: HostileData) -> None:
    driver = tab(module_context)
    driver.page.add_init_script(NO_FIELD_SIZING)
    log_in(driver, hostile.admin.email, hostile.admin.password)
    driver.goto(f"/requests/new?ticket={hostile.ticket}")
    assert driver.run("() => getComputedStyle(document.querySelector('#request-sentence'))"
                      ".fieldSizing") == "fixed"
    driver.run(CREATE_LINK)
    for width in (LAPTOP, PHONE, PHONE_SMALL):  # narrower each time: it grows with the text
        driver.resize(width, HEIGHT)
        driver.run(REPLY_WHOLE)


def test_the_agents_way_in_is_small_and_quiet(drivers: dict[str, PlaywrightDriver]) -> None:
    anonymous = drivers["anonymous"]
    anonymous.goto("/")
    way = anonymous.run("""() => {
        const a = document.querySelector(".agent-way a"), s = getComputedStyle(a);
        return {last: document.querySelector("main").lastElementChild === a.parentElement,
                href: a.getAttribute("href"), size: parseFloat(s.fontSize), color: s.color,
                text: parseFloat(getComputedStyle(document.querySelector(".lead")).fontSize)}; }""")
    assert way["last"] and way["href"] == "/login", way
    assert way["size"] < way["text"] and way["size"] <= 14, way
    assert way["color"] == MUTED, way


def test_tables_scroll_in_a_named_region_the_keyboard_reaches(
        drivers: dict[str, PlaywrightDriver], hostile: HostileData) -> None:
    admin = drivers["admin"]
    admin.resize(PHONE, HEIGHT)
    for path in ("/dashboard", f"/tickets/{hostile.ticket}", "/admin/agents", "/admin/keys",
                 "/admin/audit"):
        admin.goto(path)
        wraps = admin.run("""() => Array.from(document.querySelectorAll("main table"), (t) => {
            const w = t.parentElement;
            return {wrapped: w.matches('.table-wrap[role="region"][tabindex="0"]'),
                    name: w.getAttribute("aria-label"), scrolls: w.scrollWidth > w.clientWidth};
            })""")
        assert wraps and all(w["wrapped"] and w["name"] and w["scrolls"] for w in wraps), (
            path, wraps)
    assert_accessible(admin.page, "the agents' table on a phone")
