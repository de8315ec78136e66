"""Browser tests: Debian's chromium driven by Playwright against a real gunicorn vault, and
in test_engines.py Debian's Firefox ESR and WebKitGTK as well (drivers.py).

A package (unlike tests/ itself) so that its modules are imported as `browser.conftest` and
`browser.harness`: top-level `conftest` and `harness` modules of its own would replace
tests/conftest.py and tests/harness.py in sys.modules, and the test files that do
`from harness import ...` would then import this folder's harness.
"""
