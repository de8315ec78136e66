"""vault's one HTTP client (vault/httpclient.py), which the CLI, the notifications and the sign-in
share: no redirect followed, no `.netrc`, proxy variables only where asked, the system's trust
store. Against real sockets: a small HTTP(S) server per test."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import free_port

from vault.httpclient import Session, configure, environment_proxies


class Server:
    """Answers every request with `status` (and a Location when it is a redirect), keeping
    each request's line and headers. With `tls`, over TLS with its own self-signed
    certificate (its PEM in `cert`)."""

    def __init__(self, tmp: Path, *, status: int = 200, location: str = "",
                 tls: bool = False) -> None:
        self.seen: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                server.seen.append((self.requestline, dict(self.headers.items())))
                self.send_response(status)
                if location:
                    self.send_header("Location", location)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_GET = do_POST = answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        port = self.httpd.server_address[1]
        self.cert = tmp / f"cert-{port}.pem"
        if tls:
            key_file = tmp / f"key-{port}.pem"
            _self_signed(self.cert, key_file)
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(self.cert, key_file)
            self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"{'https' if tls else 'http'}://{'localhost' if tls else '127.0.0.1'}:{port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _self_signed(cert_file: Path, key_file: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Any]:
    made: list[Server] = []

    def make(**kwargs: Any) -> Server:
        made.append(Server(tmp_path, **kwargs))
        return made[-1]

    yield make
    for server in made:
        server.close()


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No proxy variables, and a home whose .netrc has a password for 127.0.0.1 and localhost."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY",
                 "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "SSL_CERT_FILE", "SSL_CERT_DIR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text("machine 127.0.0.1 login someone password netrc-canary\n"
                     "machine localhost login someone password netrc-canary\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NETRC", str(netrc))
    return monkeypatch


@pytest.mark.parametrize("proxies_from_env", [True, False])
def test_a_redirect_is_the_answer_never_followed(servers, clean_env, proxies_from_env) -> None:
    elsewhere = servers()
    redirecting = servers(status=307, location=elsewhere.url + "/took-it")
    with Session(proxies_from_env=proxies_from_env) as session:
        for answer in (session.post(redirecting.url + "/x", data=b"signed", timeout=10,
                                    headers={"Authorization": "Bearer t"}),
                       session.get(redirecting.url + "/x", timeout=10, allow_redirects=True)):
            assert answer.status_code == 307 and answer.history == []
    assert len(redirecting.seen) == 2 and elsewhere.seen == []


def test_netrc_never_adds_or_replaces_credentials(servers, clean_env) -> None:
    """requests would read .netrc under its default trust_env, and its Basic password would
    replace the CLI's bearer token."""
    server = servers()
    with Session(proxies_from_env=True) as session:
        session.get(server.url, timeout=10)
        session.post(server.url, timeout=10, headers={"Authorization": "Bearer t"})
    assert [h.get("Authorization") for _, h in server.seen] == [None, "Bearer t"]
    with requests.Session() as plain:  # the default that would have applied
        plain.get(server.url, timeout=10)
    assert server.seen[-1][1]["Authorization"].startswith("Basic ")


def test_proxy_variables_apply_only_where_asked(servers, clean_env) -> None:
    proxy = servers()
    clean_env.setenv("http_proxy", proxy.url)
    target = f"http://vault.test:{free_port()}/api/v1/requests"
    with Session(proxies_from_env=True) as session:
        assert session.get(target, timeout=10).status_code == 200
    assert proxy.seen[0][0] == f"GET {target} HTTP/1.1"  # the proxy's absolute form
    with Session(proxies_from_env=False) as session, pytest.raises(requests.ConnectionError):
        session.get(target, timeout=10)  # vault.test does not resolve: sent directly
    assert len(proxy.seen) == 1


def test_environment_proxies_follow_urllibs_rules(clean_env) -> None:
    clean_env.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    clean_env.setenv("no_proxy", "localhost,.internal.example")
    assert environment_proxies("https://idp.example.com/.well-known/x") == {
        "https": "http://proxy.example:3128"}
    assert environment_proxies("https://localhost:8443/") == {}
    assert environment_proxies("https://sso.internal.example/") == {}
    assert environment_proxies("https://idp.example.com:notaport/") == {}


def test_certificates_are_checked_against_the_system_trust_store(servers, clean_env) -> None:
    """The standard library's clients, which vault used before, trusted what the system
    trusts (SSL_CERT_FILE included); requests' own bundle would not know a private CA."""
    server = servers(tls=True)
    with Session(proxies_from_env=False) as session, pytest.raises(requests.exceptions.SSLError):
        session.get(server.url, timeout=10)
    clean_env.setenv("SSL_CERT_FILE", str(server.cert))
    with Session(proxies_from_env=False) as session:
        assert session.get(server.url, timeout=10).status_code == 200
    with requests.Session() as plain, pytest.raises(requests.exceptions.SSLError):
        plain.get(server.url, timeout=10)  # requests' bundle alone
    clean_env.setenv("REQUESTS_CA_BUNDLE", str(server.cert))
    clean_env.delenv("SSL_CERT_FILE")
    with Session(proxies_from_env=True) as session, pytest.raises(requests.exceptions.SSLError):
        session.get(server.url, timeout=10)  # requests' variable does not apply


def test_a_library_session_is_set_up_the_same_way(servers, clean_env) -> None:
    """The sign-in's token request goes through Authlib's own requests Session."""
    session = configure(OAuth2Session("client", "secret"))
    assert session.trust_env is False
    server = servers(tls=True)
    clean_env.setenv("SSL_CERT_FILE", str(server.cert))
    session = configure(OAuth2Session("client", "secret"))
    assert session.get(server.url, timeout=10, withhold_token=True).status_code == 200
