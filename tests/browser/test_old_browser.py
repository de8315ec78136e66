"""A browser older than the pages support is told so, in the customer's language, and left with
no button that cannot work; a current one never sees the message."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from browser.harness import RecordedContext

NewContext = Callable[..., RecordedContext]

# What check.js tests first: String.prototype.replaceAll came last of what the pages use (Chrome
# 85, Firefox 78, Safari 13.1). Taking it away makes this Chromium look like an older one.
OLDER_BROWSER = "delete String.prototype.replaceAll;"


@pytest.mark.parametrize(("locale", "words"), [
    ("en-US", "This browser is too old to encrypt safely"),
    ("fr-FR", "Ce navigateur est trop ancien pour chiffrer"),
])
def test_a_browser_too_old_is_told_so_in_its_language(new_context: NewContext, locale: str,
                                                      words: str) -> None:
    context, _ = new_context(locale=locale)
    context.add_init_script(OLDER_BROWSER)
    page = context.new_page()
    for path in ("/", "/login"):
        page.goto(path)
        expect(page.locator("#old-browser")).to_be_visible()
        expect(page.locator("#old-browser")).to_contain_text(words)
        expect(page.locator("#old-browser")).to_contain_text("Safari 13.1")
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
