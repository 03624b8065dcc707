"""Access tokens: JWTs signed with the service's key ring, in the shape every service verifies."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.signing import KeyRing
from services.user.domain.model import User


class JwtTokenIssuer:
    """Signs EdDSA access tokens carrying the user's id, roles and session."""

    def __init__(self, ring: KeyRing, *, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._ring = ring
        self._issuer = issuer
        self._audience = audience
        self._ttl_seconds = ttl_seconds

    @property
    def ttl_seconds(self) -> int:
        """How long an access token stays valid."""
        return self._ttl_seconds

    def issue(self, user: User, session_id: uuid.UUID, now: datetime) -> str:
        """A signed access token for `user` in session `session_id`, issued at `now`."""
        claims = {
            "sub": str(user.id),
            "roles": sorted(r.value for r in user.roles),
            "email_verified": user.email_verified,
            "sid": str(session_id),
        }
        return self._ring.sign(
            claims,
            ttl_seconds=self._ttl_seconds,
            issuer=self._issuer,
            audience=self._audience,
            now=now,
        )
