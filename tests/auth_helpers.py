"""Keys, trusted-clients files and signed tokens for the authentication tests.

Every key is generated here (cryptography); nothing is signed with a real EHR's key. ``Signer.token``
mints a CDS Hooks client JWT shaped like the sandbox's (ES384, kid, jku optional, exp = iat + 300, jti a
UUID) and remembers it, so a test can check that no token it minted ever reached a log.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

ISSUER = "https://ehr.example.org"
FHIR_BASE = "https://ehr.example.org/fhir"
BASE_URL = "http://localhost"  # what Flask's test client calls

MINTED: list[str] = []  # every token signed by a test, for the log checks


@cache
def private_key(alg: str) -> Any:
    """One key per algorithm family and size, made once per test session."""
    if alg in ("ES256", "ES384", "ES512"):
        curve = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}[alg]
        return ec.generate_private_key(curve)
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _family(alg: str) -> str:
    return alg if alg.startswith("E") else "RSA"


def key_for(alg: str) -> Any:
    """The test key for ``alg`` (the RSA algorithms share one)."""
    return private_key(_family(alg))


def public_jwk(alg: str, kid: str, *, with_alg: bool = True) -> dict[str, Any]:
    public = key_for(alg).public_key()
    algorithm = ECAlgorithm if alg.startswith("E") else RSAAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)
    jwk.update(kid=kid, use="sig")
    if with_alg:
        jwk["alg"] = alg
    return jwk


def jwks(*keys: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(keys)}


@dataclass
class Signer:
    alg: str = "ES384"
    kid: str = "k1"
    issuer: str = ISSUER
    other_key: bool = False  # sign with a key the service does not know (a forgery)

    def token(
        self,
        aud: str | list[str] = f"{BASE_URL}/cds-services",
        *,
        exp_in: int = 300,
        iat_in: int = 0,
        jti: str | None = None,
        drop: tuple[str, ...] = (),
        headers: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        payload: dict[str, Any] = {
            "iss": self.issuer,
            "aud": aud,
            "exp": now + exp_in,
            "iat": now + iat_in,
            "jti": jti or str(uuid.uuid4()),
        }
        payload.update(claims or {})
        for claim in drop:
            payload.pop(claim, None)
        # A header given as None is left out.
        header = {k: v for k, v in {"kid": self.kid, **(headers or {})}.items() if v is not None}
        key = _other_key(_family(self.alg)) if self.other_key else key_for(self.alg)
        token = jwt.encode(payload, key, algorithm=self.alg, headers=header)
        MINTED.append(token)
        return token


@cache
def _other_key(family: str) -> Any:
    """A second key of the same kind: what a forger holds."""
    return private_key.__wrapped__(family if family != "RSA" else "RS256")


def unsigned_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token put together by hand (``alg: none``, or an HMAC made with the public key)."""

    def part(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    token = f"{part(json.dumps(header).encode())}.{part(json.dumps(payload).encode())}.{part(signature)}"
    MINTED.append(token)
    return token


def claims_now(aud: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"iss": ISSUER, "aud": aud, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4()), **extra}


@dataclass
class ClientsFile:
    """A trusted clients file under construction; ``write`` puts it in ``folder``."""

    clients: list[dict[str, Any]] = field(default_factory=list)

    def add(self, **entry: Any) -> ClientsFile:
        self.clients.append(entry)
        return self

    def write(self, folder: Path) -> Path:
        path = folder / "trusted-clients.json"
        path.write_text(json.dumps({"clients": self.clients}), encoding="utf-8")
        return path


def default_client(**overrides: Any) -> dict[str, Any]:
    """The EHR every test trusts: its ES384, ES256 and RSA public keys inline, its FHIR server allowed."""
    entry: dict[str, Any] = {
        "issuer": ISSUER,
        "jwks": jwks(
            public_jwk("ES384", "k1"), public_jwk("ES256", "k256"), public_jwk("RS384", "rsa", with_alg=False)
        ),
        "fhir_servers": [FHIR_BASE],
    }
    entry.update(overrides)
    return entry
