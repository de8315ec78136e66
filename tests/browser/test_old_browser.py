"""A browser older than the pages support is told so, in the customer's language, and left with
no button that cannot work; a current one never sees the message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from browser.harness import RecordedContext

NewContext = Callable[..., RecordedContext]

# What came last, in each engine, of what the pages use (check.js tests each): taking one away
# makes this Chromium look like a browser just below the supported ones (Chrome 87, Firefox 78,
# Safari 14.1).
OLDER_BROWSERS = {
    "Safari 13.0 (no replaceAll)": "delete String.prototype.replaceAll;",
    "Chrome 85, Safari 13.1 (no replaceChildren)": "delete Element.prototype.replaceChildren;",
    "Chrome 86, Safari 14.0 (no inset-inline)": """{
        const supports = CSS.supports.bind(CSS);
        CSS.supports = (...args) => !String(args[0]).startsWith("inset-inline") && supports(...args);
    }""",
}


@pytest.mark.parametrize(("locale", "words", "older"), [
    ("en-US", "This browser is too old to encrypt safely", "Safari 13.0 (no replaceAll)"),
    ("fr-FR", "Ce navigateur est trop ancien pour chiffrer", "Safari 13.0 (no replaceAll)"),
    ("ja-JP", "Safari 14.1", "Chrome 85, Safari 13.1 (no replaceChildren)"),
    ("en-US", "This browser is too old to encrypt safely", "Chrome 86, Safari 14.0 (no inset-inline)"),
])
def test_a_browser_too_old_is_told_so_in_its_language(new_context: NewContext, locale: str,
                                                      words: str, older: str) -> None:
    context, _ = new_context(locale=locale)
    context.add_init_script(OLDER_BROWSERS[older])
    page = context.new_page()
    for path in ("/", "/login"):
        page.goto(path)
        expect(page.locator("#old-browser")).to_be_visible()
        expect(page.locator("#old-browser")).to_contain_text(words)
        expect(page.locator("#old-browser")).to_contain_text("Safari 14.1")
        buttons = page.locator("main button")
        assert buttons.count() >= 1
        for index in range(buttons.count()):
            expect(buttons.nth(index)).to_be_disabled()


def test_a_current_browser_never_sees_the_message(new_context: NewContext) -> None:
    context, _ = new_context()
    page = context.new_page()
    page.goto("/")
    expect(page.locator("#share-form button[type=submit]")).to_be_enabled()
    expect(page.locator("#old-browser")).to_be_hidden()
