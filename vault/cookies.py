"""vault's cookies: their names and flags, the same in every mode but one.

Every cookie is `__Host-` and `Secure` (sent over HTTPS only, to this host alone), HttpOnly,
SameSite=Lax (the passkey ceremony's: Strict), path `/`. The one exception is the embedded demo
(`vault serve` with no Redis configured) served over plain http on a loopback address: WebKit,
Safari's engine, keeps no Secure cookie from an http:// page, not even from 127.0.0.1, so the
demo's login would come back without a word. There the names lose `__Host-` (which requires
Secure) and the cookies lose `Secure`; everything else stays. Anything else, an https or
non-loopback demo included, gets production's cookies.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from vault.config import Config


@dataclass(frozen=True)
class Cookies:
    """The names of vault's cookies, and whether they are Secure."""

    session: str  # the agent's web session
    lang: str  # the language the switcher chose
    sso: str  # binds a sign-in through the identity provider to the browser that started it
    passkey: str  # binds a passkey ceremony's challenge to the browser that asked for it
    secure: bool

    def set(self, response: Response, name: str, value: str, *, max_age: int,
            same_site: str = "Lax") -> None:
        response.set_cookie(name, value, max_age=max_age, secure=self.secure, httponly=True,
                            samesite=same_site, path="/")

    def delete(self, response: Response, name: str, *, same_site: str = "Lax") -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True,
                               samesite=same_site)


PRODUCTION = Cookies(session="__Host-vault_session", lang="__Host-vault_lang",
                     sso="__Host-vault_sso", passkey="__Host-vault_pk", secure=True)
LOOPBACK_DEMO = Cookies(session="vault_session", lang="vault_lang", sso="vault_sso",
                        passkey="vault_pk", secure=False)


def for_config(config: Config) -> Cookies:
    """LOOPBACK_DEMO for the embedded demo whose base URL is plain http on a loopback address
    (127.0.0.0/8, ::1, localhost); PRODUCTION for everything else."""
    if not config.embedded or config.production:
        return PRODUCTION
    url = urlsplit(config.base_url)
    if url.scheme != "http" or not _is_loopback(url.hostname):
        return PRODUCTION
    return LOOPBACK_DEMO


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # any other name may resolve anywhere


__all__ = ["LOOPBACK_DEMO", "PRODUCTION", "Cookies", "for_config"]
