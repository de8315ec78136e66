"""A real OpenID Provider for the tests: panva's oidc-provider (OpenID Certified) under node.

scripts/test installs it from the npm registry into .cache/oidc; `OidcProvider` writes its
configuration (a client for vault, test accounts, an RSA signing key made here), starts
tests/oidc/provider.mjs on a free loopback port and waits until it listens. `sign_in` walks the
provider's own login and consent pages with a plain HTTP client, as a person would in a
browser, and returns where the provider sends the browser back.

It runs in either of two modes (`conform`): the scope's claims in the ID token as well
(`conformIdTokenClaims: false`, as Google, Entra ID or Keycloak give them), or its conformant
default, where the code flow's ID token carries `sub` alone and the claims are at UserInfo
(OpenID Connect Core 5.4; as Zitadel or Authelia give them).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
from harness import follow_output, free_port, stop_process
from joserfc.jwk import RSAKey

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / ".cache" / "oidc"
SCRIPT = Path(__file__).resolve().parent / "oidc" / "provider.mjs"
CLIENT_ID = "vault-tests"
CLIENT_SECRET = "vault-tests-client-secret-0123456789abcdef"
# Another client of the same provider, with the same redirect URIs: its codes are not vault's.
OTHER_CLIENT_ID = "another-app"
# vault again, registered for UserInfo as a signed JWT (userinfo_signed_response_alg RS256).
SIGNED_USERINFO_CLIENT_ID = "vault-signed-userinfo"
MODES = {"id-token": False, "userinfo": True}  # where the claims are: conform
# Logins with claims of their own; any other login signs in as a verified e-mail of that name.
ACCOUNTS: dict[str, dict[str, Any]] = {
    "alice@example.com": {"email": "alice@example.com", "email_verified": True,
                          "name": "Alice Martin"},
    "unverified@example.com": {"email": "unverified@example.com", "email_verified": False},
    "no-email": {"name": "Nobody"},
    # As Microsoft Entra ID signs a work account in: no email_verified, the tenant's xms_edov.
    "entra@example.com": {"email": "entra@example.com", "xms_edov": True, "name": "Entra User"},
    "silent@example.com": {"email": "silent@example.com"},  # says nothing of verification
    "entra-false@example.com": {"email": "entra-false@example.com", "email_verified": False,
                                "xms_edov": True},
    "entra-string@example.com": {"email": "entra-string@example.com", "xms_edov": "true"},
}
# Display names no vault agent may carry (test_sso.py: what vault makes of them), each the
# `name` claim of a verified e-mail of that login.
HOSTILE_NAMES: dict[str, Any] = {
    "ansi@example.com": "\x1b[2J\x1b[31mMallory\x1b[0m\x07",
    "bidi@example.com": "\u202eMallory\u202c\u2066 gnp.exe\u2069",
    "lines@example.com": "Mallory\r\nrevealed by: Admin\u2028\u2029\t",
    "nul@example.com": "Mal\x00lory\x7f",
    "surrogate@example.com": "\ud800Mallory\udfff",
    "spaces@example.com": "  Alice\u00a0\u3000Martin\u200b ",
    "long@example.com": "M" * 5000,
    "invisible@example.com": "\x1b\u202e\u200b\x00\u2028",
    "not-text@example.com": ["Mallory"],
    "exact@example.com": "É" * 100,
}
ACCOUNTS.update({login: {"email": login, "email_verified": True, "name": name}
                 for login, name in HOSTILE_NAMES.items()})
# E-mail addresses that are none, whose owner vault must not write into its audit.
HOSTILE_EMAIL = "\u202emallory\x1b[2J@example.com" + "x" * 500
ACCOUNTS.update({"hostile-unverified": {"email": HOSTILE_EMAIL, "email_verified": False},
                 "hostile-verified": {"email": HOSTILE_EMAIL, "email_verified": True}})


class OidcProvider:
    def __init__(self, tmp: Path, redirect_uris: list[str], *, conform: bool = False) -> None:
        node = shutil.which("node")
        if node is None or not (MODULES / "node_modules" / "oidc-provider").is_dir():
            pytest.fail("oidc-provider is missing (.cache/oidc): run scripts/test, which "
                        "installs it from the npm registry", pytrace=False)
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-key-1", "alg": "RS256",
                                                         "use": "sig"}, private=True)
        self.conform = conform
        config = {"issuer": self.issuer, "port": self.port, "accounts": ACCOUNTS,
                  "conformIdTokenClaims": conform,
                  "jwks": {"keys": [self.key.as_dict(private=True)]},
                  "clients": [{"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                               "redirect_uris": redirect_uris,
                               "grant_types": ["authorization_code"],
                               "response_types": ["code"],
                               "token_endpoint_auth_method": "client_secret_basic"},
                              {"client_id": SIGNED_USERINFO_CLIENT_ID,
                               "client_secret": CLIENT_SECRET,
                               "redirect_uris": redirect_uris,
                               "grant_types": ["authorization_code"],
                               "response_types": ["code"],
                               "token_endpoint_auth_method": "client_secret_basic",
                               "userinfo_signed_response_alg": "RS256"},
                              {"client_id": OTHER_CLIENT_ID,
                               "client_secret": "another-app-client-secret-0123456789",
                               "redirect_uris": redirect_uris,
                               "grant_types": ["authorization_code"],
                               "response_types": ["code"],
                               "token_endpoint_auth_method": "client_secret_basic"}]}
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / "oidc-provider.json"
        path.write_text(json.dumps(config))
        # Node resolves `import 'oidc-provider'` from the script's folder: run a copy beside
        # the installed modules.
        script = MODULES / "provider.mjs"
        shutil.copyfile(SCRIPT, script)
        self.proc = subprocess.Popen([node, str(script), str(path)], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        follow_output(self.proc, b"oidc-provider listening", what="oidc-provider")

    def settings(self, client_id: str = CLIENT_ID) -> dict[str, str]:
        """vault's settings for this provider (config mapping keys)."""
        return {"oidc_issuer": self.issuer, "oidc_client_id": client_id,
                "oidc_client_secret": CLIENT_SECRET}

    def tamper(self, mode: str | None, **details: Any) -> None:
        """Make the next ID token one vault must refuse, or the next answer of the token
        endpoint, of UserInfo or of discovery another one (tests/oidc/provider.mjs: the modes
        and their details); None clears them all."""
        rv = requests.post(self.issuer + "/__test__/tamper", json={"mode": mode, **details},
                           timeout=10)
        assert rv.status_code == 204

    def fetched(self) -> dict[str, int]:
        """How often vault (or anyone) fetched the JWKS and the discovery document, and asked
        UserInfo."""
        answer = requests.get(self.issuer + "/__test__/requests", timeout=10).json()
        return {name: int(answer[name]) for name in ("jwks", "discovery", "userinfo")}

    def userinfo_token(self) -> str:
        """The access token UserInfo was last asked with ("" before the first)."""
        answer = requests.get(self.issuer + "/__test__/requests", timeout=10).json()
        return str(answer["userinfo_token"])

    def stop(self) -> None:
        stop_process(self.proc, grace=10)


def _form_action(page: requests.Response) -> str:
    found = re.search(r'<form[^>]*action="([^"]+)"', page.text)
    assert found, page.text[:500]
    return urljoin(page.url, found.group(1))


def sign_in(authorization_url: str, login: str, *, abort: bool = False) -> str:
    """Sign in at the provider as `login` (any password), consent, and return the URL the
    provider redirects the browser to (vault's callback, with code or error, and state).
    `abort`: press the login page's abort link instead (the provider answers access_denied)."""
    browser = requests.Session()
    here = authorization_url
    for _ in range(12):
        rv = browser.get(here, allow_redirects=False, timeout=10)
        if rv.status_code in {302, 303} and "/login/oidc/callback" in rv.headers["Location"]:
            return str(rv.headers["Location"])
        if rv.status_code in {302, 303}:
            here = urljoin(here, rv.headers["Location"])
            continue
        assert rv.status_code == 200, (rv.status_code, rv.text[:500])
        if 'name="login"' in rv.text:
            if abort:
                link = re.search(r'href="([^"]+/abort)"', rv.text)
                assert link, rv.text[:500]
                here = urljoin(rv.url, link.group(1))
                continue
            answer = browser.post(_form_action(rv), data={"prompt": "login", "login": login,
                                                          "password": "any"},
                                  allow_redirects=False, timeout=10)
        else:  # the consent page
            answer = browser.post(_form_action(rv), data={"prompt": "consent"},
                                  allow_redirects=False, timeout=10)
        assert answer.status_code in {302, 303}, (answer.status_code, answer.text[:500])
        here = urljoin(answer.url, answer.headers["Location"])
        if "/login/oidc/callback" in here:
            return here
    raise AssertionError("the provider never sent the browser back")
