"""vault's one HTTP client: requests, set up one way for the three places that make requests.

They are the notifications to a helpdesk (vault/notify.py), the sign-in with the identity
provider (vault/sso.py) and the command line talking to a running vault (vault/cli/transport.py).

- A redirect is never followed: every call goes with `allow_redirects=False`, so a 3xx is the
  answer, for the caller to report. Following one would carry a bearer token, a signed delivery
  or a client secret to wherever the redirect points.
- The environment is not trusted wholesale (`trust_env = False`): `.netrc` would put a Basic
  password on requests that never asked for one (and replace the CLI's bearer token), and
  `REQUESTS_CA_BUNDLE` would change whom vault trusts behind its back. Proxy variables are a
  caller's choice (`proxies_from_env`): the CLI and the sign-in honour them, by the rules of
  Python's own urllib (`http_proxy`, `https_proxy`, `no_proxy`); notifications do not.
- Certificates are checked against the system's trust store, as Python's `ssl` checks them by
  default (`SSL_CERT_FILE` and `SSL_CERT_DIR` apply), rather than against requests' own bundle:
  a receiver or a provider with a certificate from the organisation's CA, installed on the
  machine, is trusted as it was by the standard library clients this replaced.

Nothing here logs, and callers never show an exception's text: requests puts the whole URL
(a path may hold an id, a query a receiver's token) into its messages.
"""

from __future__ import annotations

import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter

__all__ = ["Session", "configure", "environment_proxies"]


class _SystemTrust(HTTPAdapter):
    """requests' adapter, with the system's trust store instead of requests' CA bundle."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        super().init_poolmanager(*args, **kwargs)

    def proxy_manager_for(self, proxy: str, **kwargs: Any) -> Any:
        kwargs.setdefault("ssl_context", ssl.create_default_context())
        return super().proxy_manager_for(proxy, **kwargs)

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        super().cert_verify(conn, url, verify, cert)
        if verify is True:
            # requests names its own bundle here, which urllib3 would load into the context
            # above: the context's system store is the whole trust.
            conn.ca_certs = None
            conn.ca_cert_dir = None


def configure(session: requests.Session) -> requests.Session:
    """Set up a requests Session (vault's own, or a library's such as Authlib's) the one way:
    the environment left out, the system's trust store. Redirects are the caller's to refuse
    (Session.request does; with a library's session, pass allow_redirects=False)."""
    session.trust_env = False
    adapter = _SystemTrust()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def environment_proxies(url: str) -> dict[str, str]:
    """The proxies that `http_proxy` / `https_proxy` (upper case too) name for `url`, none when
    `no_proxy` covers its host: what Python's urllib would use."""
    parts = urlsplit(url)
    try:
        host = (parts.hostname or "") + (f":{parts.port}" if parts.port else "")
    except ValueError:  # a port that is not a number: requests refuses the URL itself
        return {}
    if not host or urllib.request.proxy_bypass(host):
        return {}
    return {scheme: proxy for scheme, proxy in urllib.request.getproxies().items()
            if scheme in {"http", "https"}}


class Session(requests.Session):
    """A requests Session that never follows a redirect, leaves the environment out except,
    when asked, its proxy variables, and checks certificates against the system's store."""

    def __init__(self, *, proxies_from_env: bool) -> None:
        super().__init__()
        configure(self)
        self.proxies_from_env = proxies_from_env

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        """Every call, get and post included, comes here (its options by keyword only)."""
        kwargs["allow_redirects"] = False
        if self.proxies_from_env and "proxies" not in kwargs:
            kwargs["proxies"] = environment_proxies(url)
        return super().request(method, url, **kwargs)
