"""JWT verification: access tokens in, the caller's identity (services.common.identity) out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp
import jwt

from services.common.errors import Unauthenticated, Unavailable
from services.common.identity import (
    Caller,
    Role,
    current_caller,
    optional_caller,
    reset_caller,
    set_caller,
)
from services.common.reasons import ErrorReason

# The identity names stay importable from here for the gRPC-side code that used them.
__all__ = [
    "ALLOWED_ALGORITHMS",
    "Caller",
    "JwksKeySource",
    "KeySource",
    "Role",
    "StaticKeySource",
    "TokenVerifier",
    "current_caller",
    "optional_caller",
    "reset_caller",
    "set_caller",
]

# EdDSA only: accepting a list with HS* would let a public key be used as an HMAC secret.
ALLOWED_ALGORITHMS = ["EdDSA"]


class KeySource(Protocol):
    """Finds the public key a token was signed with, by its `kid`."""

    async def get_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for `kid` or raise Unauthenticated."""
        ...


class StaticKeySource:
    """Keys known in-process, as in the user service that signs the tokens."""

    def __init__(self, jwks: Mapping[str, Any]) -> None:
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(dict(jwks)).keys}

    async def get_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for `kid` or raise Unauthenticated."""
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthenticated(
                "token signed by an unknown key", reason=ErrorReason.TOKEN_INVALID
            ) from None


class JwksKeySource:
    """Keys fetched from the user service's JWKS and cached; unknown kids trigger a refetch."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        *,
        max_age_seconds: float = 300.0,
        min_refetch_seconds: float = 5.0,
    ) -> None:
        self._url = url
        self._session = session
        self._max_age = max_age_seconds
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def get_key(self, kid: str) -> jwt.PyJWK:
        """Return the key for `kid`, refreshing the cache when it is old or misses."""
        now = time.monotonic()
        if kid not in self._keys or now - self._fetched_at > self._max_age:
            async with self._lock:
                # Bounded refetching keeps forged kids from turning into a flood of fetches.
                if now - self._fetched_at > self._min_refetch or not self._keys:
                    await self._refresh()
        try:
            return self._keys[kid]
        except KeyError:
            raise Unauthenticated(
                "token signed by an unknown key", reason=ErrorReason.TOKEN_INVALID
            ) from None

    async def _refresh(self) -> None:
        try:
            timeout = aiohttp.ClientTimeout(total=3)
            async with self._session.get(self._url, timeout=timeout) as response:
                response.raise_for_status()
                document = await response.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            if self._keys:
                return  # keep verifying with the keys we have while the user service is away
            raise Unavailable(
                "signing keys are unavailable", reason=ErrorReason.JWKS_UNAVAILABLE
            ) from exc
        self._keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(document).keys if k.key_id}
        self._fetched_at = time.monotonic()


# Enough for every signed-in user of a busy replica within one token lifetime; at ~1 KiB an
# entry the cache stays a few MiB.
DEFAULT_VERIFIED_CACHE_SIZE = 10_000


class TokenVerifier:
    """Verifies access tokens: signature by kid, expiry, issuer and audience.

    A verified token is remembered until it expires, keyed by the token itself: a signed-in
    client sends the same token on every call, and an Ed25519 verification plus PyJWT's
    claim checks cost more than the rest of a cached read. Nothing an access token says can
    change before it expires (revoking a session ends its refresh token, not the access
    tokens already issued), so the cache changes no answer, with one care: a cached token
    is accepted only while its signing key is still the one the key source trusts, so a
    key withdrawn from the JWKS stops its tokens as it did before. The cache is bounded;
    when full, the oldest entry makes room.
    """

    def __init__(
        self,
        keys: KeySource,
        *,
        issuer: str,
        audience: str,
        cache_size: int = DEFAULT_VERIFIED_CACHE_SIZE,
    ) -> None:
        self._keys = keys
        self._issuer = issuer
        self._audience = audience
        self._cache_size = cache_size
        # token -> (caller, expiry in epoch seconds, kid, the key that verified it)
        self._verified: dict[str, tuple[Caller, float, str, jwt.PyJWK]] = {}

    async def verify(self, token: str) -> Caller:
        """Return the caller a valid token names, or raise Unauthenticated."""
        cached = self._verified.get(token)
        if cached is not None:
            caller, expires, kid, key = cached
            if time.time() < expires and await self._still_trusted(kid, key):
                return caller
            self._verified.pop(token, None)
        caller, expires, kid, key = await self._verify(token)
        if self._cache_size > 0:
            if len(self._verified) >= self._cache_size:
                # Insertion order: the first entry is the oldest.
                self._verified.pop(next(iter(self._verified)), None)
            self._verified[token] = (caller, expires, kid, key)
        return caller

    async def _still_trusted(self, kid: str, key: jwt.PyJWK) -> bool:
        try:
            return await self._keys.get_key(kid) is key
        except Unauthenticated:
            return False

    async def _verify(self, token: str) -> tuple[Caller, float, str, jwt.PyJWK]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise Unauthenticated(
                "malformed access token", reason=ErrorReason.TOKEN_INVALID
            ) from None
        kid = header.get("kid")
        if not isinstance(kid, str) or header.get("alg") not in ALLOWED_ALGORITHMS:
            raise Unauthenticated(
                "access token has no usable key id", reason=ErrorReason.TOKEN_INVALID
            )
        key = await self._keys.get_key(kid)
        try:
            claims = jwt.decode(
                token,
                key=key,
                algorithms=ALLOWED_ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated(
                "access token expired", reason=ErrorReason.TOKEN_EXPIRED
            ) from None
        except jwt.PyJWTError:
            raise Unauthenticated(
                "invalid access token", reason=ErrorReason.TOKEN_INVALID
            ) from None
        roles = frozenset(Role(r) for r in claims.get("roles", []) if r in Role)
        caller = Caller(
            user_id=str(claims["sub"]),
            roles=roles,
            email_verified=bool(claims.get("email_verified", False)),
            session_id=str(claims.get("sid", "")),
        )
        return caller, float(claims["exp"]), kid, key
