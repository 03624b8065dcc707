"""The user service's signing keys: Ed25519, published as a JWKS, identified by thumbprint."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    """One Ed25519 key pair and its key id (the RFC 7638 thumbprint of its public JWK)."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        """A fresh key, for dev mode and tests."""
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: str) -> SigningKey:
        """Load a PKCS#8 PEM private key."""
        key = serialization.load_pem_private_key(pem.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("signing keys must be Ed25519")
        return cls(key)

    def to_pem(self) -> str:
        """The private key as PKCS#8 PEM."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    @property
    def public_jwk(self) -> dict[str, str]:
        """The public half as a JWK, with kid, alg and use."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        members = {"crv": "Ed25519", "kty": "OKP", "x": _b64(raw)}
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        kid = _b64(hashlib.sha256(canonical).digest())
        return {**members, "kid": kid, "alg": "EdDSA", "use": "sig"}

    @property
    def kid(self) -> str:
        """The key id tokens carry in their header."""
        return self.public_jwk["kid"]


class KeyRing:
    """Signs with the current key; publishes the current, next and previous keys.

    Keeping previous keys in the JWKS lets tokens they signed stay valid until they
    expire, so rotating the key logs nobody out. Publishing the next key before it signs
    anything means verifiers that cache the JWKS (Envoy refetches only every
    `cache_duration`) know it by the time the rotation makes it current.
    """

    def __init__(
        self,
        current: SigningKey,
        previous: Sequence[SigningKey] = (),
        upcoming: SigningKey | None = None,
    ) -> None:
        self.current = current
        self.previous = tuple(previous)
        self.upcoming = upcoming

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set document, without duplicate key ids."""
        keys: dict[str, dict[str, str]] = {}
        upcoming = () if self.upcoming is None else (self.upcoming,)
        for key in (self.current, *upcoming, *self.previous):
            keys.setdefault(key.kid, key.public_jwk)
        return {"keys": list(keys.values())}

    def sign(
        self,
        claims: dict[str, Any],
        *,
        ttl_seconds: int,
        issuer: str,
        audience: str,
        now: datetime,
    ) -> str:
        """A compact JWS of `claims` issued at `now`, with standard registered claims added."""
        issued_at = int(now.timestamp())
        payload = {
            **claims,
            "iss": issuer,
            "aud": audience,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(
            payload, self.current.private_key, algorithm="EdDSA", headers={"kid": self.current.kid}
        )
