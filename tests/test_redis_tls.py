"""`rediss://`: vault (its rate limits included) talks to a real redis-server over TLS, verifying the
server's certificate against the CA named in the URL; a wrong CA or plain text is a 503."""

from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from harness import base_config, follow_output, free_port
from helpers import sealed

from vault import create_app


def _certificate(subject: str, key: Any, issuer: tuple[x509.Name, Any] | None = None,
                 *, ca: bool = False) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    issuer_name, issuer_key = issuer or (name, key)
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(hours=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: x509.Certificate | None = None, key: Any = None) -> str:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(path)


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("tls")
    ca_key, server_key, other_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("vault test CA", ca_key, ca=True)
    server = _certificate("127.0.0.1", server_key, (ca.subject, ca_key))
    other_ca = _certificate("another CA", other_key, ca=True)
    port = free_port()
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed: run scripts/test"
    proc = subprocess.Popen(
        [binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(tmp),
         "--tls-cert-file", _write(tmp / "server.pem", server),
         "--tls-key-file", _write(tmp / "server.key", key=server_key),
         "--tls-ca-cert-file", _write(tmp / "ca.pem", ca), "--tls-auth-clients", "no"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        follow_output(proc, b"Ready to accept connections", what="redis-server (TLS)")
        yield {"port": port, "ca": str(tmp / "ca.pem"),
               "other_ca": _write(tmp / "other.pem", other_ca)}
    finally:
        proc.terminate()
        proc.wait(10)


def test_vault_runs_over_tls_and_checks_the_servers_certificate(tls_redis: dict[str, Any]
                                                                ) -> None:
    url = f"rediss://127.0.0.1:{tls_redis['port']}/0?ssl_ca_certs={tls_redis['ca']}"
    app = create_app(base_config(url, ratelimit_submit="2/minute"))
    ext = app.extensions["vault"]
    try:
        client = app.test_client()
        ext.accounts.add_agent("tls@example.com", "correct horse battery staple")
        token, _ = ext.accounts.create_token("tls@example.com")
        envelope, _ = sealed("tls-1")
        made = client.post("/api/v1/secrets", json={"ticket": "tls-1", "kind": "wordpress",
                                                    "envelope": envelope})
        assert made.status_code == 201
        revealed = client.post(f"/api/v1/secrets/{made.get_json()['id']}/reveal",
                               headers={"Authorization": f"Bearer {token}"})
        assert revealed.status_code == 200 and revealed.get_json()["envelope"] == envelope
        # The rate limit is counted over TLS too: its counter is what refuses the third.
        second = client.post("/api/v1/secrets", json={"ticket": "tls-1", "kind": "wordpress",
                                                      "envelope": envelope})
        assert second.status_code == 201
        third = client.post("/api/v1/secrets", json={"ticket": "tls-1", "kind": "wordpress",
                                                     "envelope": envelope})
        assert third.status_code == 429
        assert client.get("/readyz").status_code == 200
    finally:
        ext.close()


@pytest.mark.parametrize("which", ["wrong-ca", "plain-text"])
def test_a_server_that_fails_verification_is_a_503_never_a_500(tls_redis: dict[str, Any],
                                                                which: str) -> None:
    url = (f"rediss://127.0.0.1:{tls_redis['port']}/0?ssl_ca_certs={tls_redis['other_ca']}"
           if which == "wrong-ca" else f"redis://127.0.0.1:{tls_redis['port']}/0")
    app = create_app(base_config(url))
    try:
        client = app.test_client()
        envelope, _ = sealed("tls-2")
        rv = client.post("/api/v1/secrets", json={"ticket": "tls-2", "kind": "wordpress",
                                                  "envelope": envelope})
        assert rv.status_code == 503 and rv.headers["Retry-After"]
        assert client.get("/readyz").status_code == 503
    finally:
        app.extensions["vault"].close()
