"""A software passkey authenticator for the server-side tests: the browser's side of WebAuthn.

It stands in for `navigator.credentials` and a platform authenticator (ES256 keys made with
`cryptography`, a "none" attestation, its own small CBOR writer): it answers vault's options as
a browser would, as JSON with base64url binary fields, and can be told to lie (another origin or
relying party, no user verification, a counter that goes backwards) the way a phishing page or a
cloned device would. It is a test double of the browser, never of vault's code: vault checks
its answers with the real py_webauthn.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

UP, UV, AT = 0x01, 0x04, 0x40  # authenticator data flags: user present, verified, attested data


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64u(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("too large for CBOR")


def cbor(value: Any) -> bytes:
    """CBOR (RFC 8949) of the few types an attestation needs: ints, bytes, text, maps."""
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        data = value.encode()
        return _head(3, len(data)) + data
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(cbor(k) + cbor(v) for k, v in value.items())
    raise TypeError(type(value))


@dataclass
class Passkey:
    """One discoverable credential the authenticator holds."""

    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int = 0


@dataclass
class Authenticator:
    """A platform authenticator and the browser around it, at `origin`.

    `counting`: whether it keeps a signature counter (a hardware key does; most synced passkeys
    send 0 every time)."""

    origin: str
    counting: bool = True
    passkeys: list[Passkey] = field(default_factory=list)

    def create(self, options: dict[str, Any], *, origin: str | None = None,
               rp_id: str | None = None, verified: bool = True,
               credential_id: bytes | None = None) -> dict[str, Any]:
        """What `navigator.credentials.create({publicKey: options})` answers, as JSON
        (`credential_id`: a forger's choice of id, instead of a random one)."""
        rp = rp_id or options["rp"]["id"]
        excluded = {c["id"] for c in options.get("excludeCredentials", [])}
        if any(b64u(p.credential_id) in excluded for p in self.passkeys):
            raise ValueError("InvalidStateError: this authenticator holds one already")
        passkey = Passkey(credential_id=credential_id or secrets.token_bytes(32),
                          key=ec.generate_private_key(ec.SECP256R1()), rp_id=rp,
                          user_handle=unb64u(options["user"]["id"]))
        numbers = passkey.key.public_key().public_numbers()
        cose = {1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"),
                -3: numbers.y.to_bytes(32, "big")}
        attested = (bytes(16) + struct.pack(">H", len(passkey.credential_id))
                    + passkey.credential_id + cbor(cose))
        flags = UP | AT | (UV if verified else 0)
        auth_data = hashlib.sha256(rp.encode()).digest() + bytes([flags]) \
            + struct.pack(">I", 0) + attested
        client_data = self._client_data("webauthn.create", options["challenge"], origin)
        # One passkey per user of a site, as a platform authenticator keeps them.
        self.passkeys = [p for p in self.passkeys
                         if (p.rp_id, p.user_handle) != (rp, passkey.user_handle)]
        self.passkeys.append(passkey)
        attestation = cbor({"fmt": "none", "attStmt": {}, "authData": auth_data})
        return {"id": b64u(passkey.credential_id), "rawId": b64u(passkey.credential_id),
                "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client_data),
                             "attestationObject": b64u(attestation),
                             "transports": ["internal"]}}

    def get(self, options: dict[str, Any], *, passkey: Passkey | None = None,
            origin: str | None = None, rp_id: str | None = None, verified: bool = True,
            counter: int | None = None, user_handle: bytes | None = None) -> dict[str, Any]:
        """What `navigator.credentials.get({publicKey: options})` answers, as JSON: signed by
        `passkey` (the only or the newest one for the relying party by default)."""
        rp = options.get("rpId", "")
        if passkey is None:
            mine = [p for p in self.passkeys if p.rp_id == rp]
            assert mine, f"no passkey for {rp}"
            passkey = mine[-1]
        if counter is None:
            if self.counting:
                passkey.counter += 1
            counter = passkey.counter
        flags = UP | (UV if verified else 0)
        auth_data = hashlib.sha256((rp_id or passkey.rp_id).encode()).digest() \
            + bytes([flags]) + struct.pack(">I", counter)
        client_data = self._client_data("webauthn.get", options["challenge"], origin)
        signature = passkey.key.sign(auth_data + hashlib.sha256(client_data).digest(),
                                     ec.ECDSA(hashes.SHA256()))
        return {"id": b64u(passkey.credential_id), "rawId": b64u(passkey.credential_id),
                "type": "public-key", "authenticatorAttachment": "platform",
                "clientExtensionResults": {},
                "response": {"clientDataJSON": b64u(client_data),
                             "authenticatorData": b64u(auth_data),
                             "signature": b64u(signature),
                             "userHandle": b64u(user_handle if user_handle is not None
                                                else passkey.user_handle)}}

    def _client_data(self, kind: str, challenge: str, origin: str | None) -> bytes:
        return json.dumps({"type": kind, "challenge": challenge,
                           "origin": origin or self.origin, "crossOrigin": False},
                          separators=(",", ":")).encode()
