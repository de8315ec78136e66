"""Browser tests: Debian's chromium driven by Playwright against a real gunicorn vault.

A package (unlike tests/ itself) so that its conftest is imported as `browser.conftest`: a second
top-level `conftest` module would replace tests/conftest.py in sys.modules, and the test files
that do `from conftest import ...` would then import this one.
"""
