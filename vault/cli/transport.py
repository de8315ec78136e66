"""Talking to a running vault over HTTP: `VAULT_URL`, one request at a time, redirects never
followed, and every way it can fail as one line that names the server's origin (never a path,
a token or a key).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from vault.cli.common import fail

if TYPE_CHECKING:
    from vault.httpclient import Session

# requests (vault.httpclient) is imported by the first Vault made: the store's commands, most
# of the CLI, never talk HTTP and need not load it.

DEFAULT_URL = "http://127.0.0.1:8000"
HTTP_TIMEOUT = 30.0


def vault_url() -> str:
    """VAULT_URL (default DEFAULT_URL) without its trailing slash; exit 2 unless http(s)."""
    base = os.environ.get("VAULT_URL", "").strip() or DEFAULT_URL
    parts = urlsplit(base)
    try:
        usable = parts.scheme in {"http", "https"} and bool(parts.hostname) \
            and not parts.query and not parts.fragment and (parts.port or 0) >= 0
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        fail("VAULT_URL must be an http:// or https:// URL, such as "
             f"{DEFAULT_URL}", 2)
    return base.rstrip("/")


def origin_of(base: str) -> str:
    """scheme://host[:port] of a URL, for messages (never its path)."""
    parts = urlsplit(base)
    return f"{parts.scheme}://{parts.hostname}" + (f":{parts.port}" if parts.port else "")


class Vault:
    """A running vault at `base` (VAULT_URL without its trailing slash), over one session.

    The user's proxy variables apply (`https_proxy`, `no_proxy`...: a laptop behind its
    organisation's proxy reaches vault as its browser does, and urllib, used here before,
    honoured them too); `.netrc` does not (requests would put its password in place of the
    bearer token). Redirects are never followed: one would carry the token, or a signed
    delivery, to wherever it points; a 3xx is reported as the answer it is (vault.httpclient).
    """

    def __init__(self, base: str) -> None:
        from vault.httpclient import Session

        self.base = base
        self.origin = origin_of(base)
        self._session: Session = Session(proxies_from_env=True)

    def send(self, method: str, path: str, *, body: bytes | None = None,
             headers: dict[str, str]) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request: (status, headers, body) of whatever vault answered, redirects
        included. CliError when no answer comes (unreachable, timeout), naming the origin
        only: requests' own messages hold the whole URL."""
        import requests

        try:
            resp = self._session.request(method, self.base + path, data=body, headers=headers,
                                         timeout=HTTP_TIMEOUT)
            return resp.status_code, resp.headers, resp.content
        except requests.ConnectTimeout as exc:  # before Timeout: it is both
            fail(f"cannot reach vault at {self.origin}: {_reason(exc)}")
        except requests.Timeout:
            fail(f"vault at {self.origin} did not answer within {HTTP_TIMEOUT:.0f} s")
        except requests.ConnectionError as exc:
            if _caused_by(exc, TimeoutError):  # the socket's, while reading the body
                fail(f"vault at {self.origin} did not answer within {HTTP_TIMEOUT:.0f} s")
            fail(f"cannot reach vault at {self.origin}: {_reason(exc)}")
        except requests.RequestException as exc:
            fail(f"cannot talk to vault at {self.origin}: {_reason(exc)}")


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """exc and what it wraps: requests wraps urllib3, which wraps the socket's OSError (as a
    cause, a reason or an argument)."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < 20:
        found = todo.pop(0)
        if id(found) in seen:
            continue
        seen.add(id(found))
        yield found
        todo.extend(e for e in (found.__cause__, found.__context__,
                                getattr(found, "reason", None), *found.args)
                    if isinstance(e, BaseException))


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    return any(isinstance(e, kind) for e in _causes(exc))


def _reason(exc: BaseException) -> str:
    """What failed, from the operating system's error under the wrappers: its message
    ("Connection refused", "Name or service not known", a certificate check's) or its type."""
    import requests

    for cause in _causes(exc):
        if isinstance(cause, OSError) and not isinstance(cause, requests.RequestException):
            return cause.strerror or type(cause).__name__
    return type(exc).__name__


def json_object(raw: bytes) -> dict[str, Any] | None:
    """The JSON object in an answer's body; None for anything else (an empty body too)."""
    try:
        value = json.loads(raw or b"null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def printable(value: Any, limit: int = 500) -> str:
    """Text from a server, as it may reach a terminal: no control or format characters (an
    escape sequence could rewrite the screen), bounded."""
    return "".join(c for c in str(value) if c.isprintable())[:limit]
