"""Security headers on every response, no-store on everything that concerns a secret."""

from __future__ import annotations

import pytest
from helpers import share

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=(), usb=()",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"


def check(rv):
    for name, value in COMMON.items():
        assert rv.headers.get(name) == value, name
    assert rv.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("method,path", [
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/secrets/" + "A" * 28), ("POST", "/api/v1/secrets"),
    ("GET", "/no/such/page"), ("DELETE", "/healthz"),
])
def test_every_response_carries_the_security_headers(client, method, path):
    rv = client.open(path, method=method)
    check(rv)
    if rv.mimetype != "text/html":
        assert rv.headers["Content-Security-Policy"] == DATA_CSP


def test_secret_responses_are_no_store(client, agent):
    s = share(client, "h-1")
    for rv in (client.get(f"/api/v1/secrets/{s['id']}"),
               client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers),
               client.post(f"/api/v1/secrets/{s['id']}/reveal", headers=agent.headers)):
        check(rv)
        assert rv.headers["Content-Security-Policy"] == DATA_CSP


def test_html_errors_get_the_page_csp(client):
    rv = client.get("/no/such/page")
    assert rv.status_code == 404
    assert rv.mimetype == "text/html"
    assert rv.headers["Content-Security-Policy"].startswith("default-src 'none'; script-src 'self'")


def test_development_sends_no_hsts(make_app):
    client = make_app(env="development").test_client()
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
