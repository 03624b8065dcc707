"""Access tokens for tests, signed by a key ring the services under test trust."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

from services.common.auth import Role, StaticKeySource
from services.user.adapters.signing import KeyRing, SigningKey

ISSUER = "marketplace"
AUDIENCE = "marketplace"


class TestTokens:
    """Mints access tokens like the user service does, for contract tests of other services."""

    __test__ = False  # not a test class, despite the name

    def __init__(self) -> None:
        self.ring = KeyRing(SigningKey.generate())

    def key_source(self) -> StaticKeySource:
        """The keys a service under test should trust."""
        return StaticKeySource(self.ring.jwks())

    def mint(
        self,
        user_id: str | None = None,
        roles: Iterable[Role] = (Role.CUSTOMER,),
        *,
        email_verified: bool = True,
        ttl_seconds: int = 300,
    ) -> str:
        """A signed access token for `user_id` (a fresh id when omitted)."""
        claims = {
            "sub": user_id or str(uuid.uuid4()),
            "roles": [r.value for r in roles],
            "email_verified": email_verified,
            "sid": uuid.uuid4().hex,
        }
        return self.ring.sign(
            claims,
            ttl_seconds=ttl_seconds,
            issuer=ISSUER,
            audience=AUDIENCE,
            now=datetime.now(UTC),
        )


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)
