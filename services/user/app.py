"""The composition root of the user service: builds its pool, keys and servicers in the loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import structlog
from aiohttp import web
from marketplace.user.v1 import user_service_pb2_grpc

from services.common.auth import KeySource, Role, StaticKeySource
from services.common.interceptors import AccessPolicy
from services.common.server import ServiceApp
from services.user.adapters.passwords import Argon2PasswordHasher
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.adapters.signing import KeyRing
from services.user.adapters.tokens import JwtTokenIssuer
from services.user.config import Settings
from services.user.domain import commands
from services.user.service_layer import handlers
from services.user.service_layer.ports import PasswordHasher
from services.user.servicer import Dependencies, UserInternalServicer, UserServicer

log = structlog.get_logger("user.app")

SERVICE = "marketplace.user.v1.UserService"
INTERNAL_SERVICE = "marketplace.user.v1.UserInternalService"
JWKS_PATH = "/.well-known/jwks.json"

POLICY = AccessPolicy(
    # Signing up and the token flows are how a caller gets a token, so they cannot need one.
    public_methods=frozenset(
        f"/{SERVICE}/{method}"
        for method in (
            "CreateUser",
            "Login",
            "VerifyEmail",
            "RefreshToken",
            "Logout",
            "RequestPasswordReset",
            "ResetPassword",
        )
    ),
    internal_services=frozenset({INTERNAL_SERVICE}),
)

DEMO_ACCOUNTS = (
    ("admin@example.com", "admin", "Demo Admin", frozenset({Role.ADMIN, Role.CUSTOMER})),
    ("seller@example.com", "seller", "Demo Seller", frozenset({Role.SELLER, Role.CUSTOMER})),
    ("buyer@example.com", "buyer", "Demo Buyer", frozenset({Role.CUSTOMER})),
)


def jwks_route(ring: KeyRing) -> web.RouteDef:
    """GET /.well-known/jwks.json: the public keys tokens are verified with."""

    async def jwks(_: web.Request) -> web.Response:
        # Verifiers refetch on an unknown kid, so five minutes of caching delays nothing.
        return web.json_response(ring.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return web.get(JWKS_PATH, jwks)


async def seed_demo_accounts(settings: Settings, pool: Pool, hasher: PasswordHasher) -> None:
    """Create the demo admin, seller and buyer unless they exist; never outside dev mode."""
    if not settings.dev_mode:
        raise RuntimeError("demo accounts are only seeded in dev mode")
    password = settings.demo_password.get_secret_value()
    await asyncio.gather(
        *(
            handlers.seed_demo_account(
                commands.SeedDemoAccount(
                    email=email,
                    username=username,
                    display_name=display_name,
                    password=password,
                    roles=frozenset(r.value for r in roles),
                ),
                uow=PostgresUnitOfWork(pool),
                hasher=hasher,
            )
            for email, username, display_name, roles in DEMO_ACCOUNTS
        )
    )


@asynccontextmanager
async def build_app(
    settings: Settings,
    *,
    key_source: KeySource | None = None,
    key_ring: KeyRing | None = None,
    password_hasher: PasswordHasher | None = None,
) -> AsyncIterator[ServiceApp]:
    """Build the user service inside the running loop; closes its pool on exit.

    Args:
        settings: The service's settings.
        key_source: Keys access tokens are verified with; defaults to the key ring's own.
        key_ring: Keys access tokens are signed with; defaults to the configured key.
        password_hasher: Overrides the argon2id hasher.
    """
    ring = key_ring or KeyRing(settings.signing_key())
    if settings.signing_key_pem is None and key_ring is None:
        log.warning("signing_key_generated", kid=ring.current.kid, reason="dev mode, no key set")
    hasher = password_hasher or Argon2PasswordHasher()
    pool = await create_pool(
        str(settings.database_url),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
    )
    try:
        if settings.dev_mode and settings.seed_demo_accounts:
            await seed_demo_accounts(settings, pool, hasher)
        deps = Dependencies(
            uow=lambda: PostgresUnitOfWork(pool),
            hasher=hasher,
            authenticator=await handlers.Authenticator.create(hasher),
            issuer=JwtTokenIssuer(
                ring,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
        )
        servicer = UserServicer(deps)
        internal_servicer = UserInternalServicer(deps)
        yield ServiceApp(
            name="user",
            servicers=[
                (user_service_pb2_grpc.add_UserServiceServicer_to_server, servicer),
                (
                    user_service_pb2_grpc.add_UserInternalServiceServicer_to_server,
                    internal_servicer,
                ),
            ],
            service_names=[SERVICE, INTERNAL_SERVICE],
            policy=POLICY,
            key_source=key_source or StaticKeySource(ring.jwks()),
            http_routes=[jwks_route(ring)],
        )
    finally:
        await pool.close()
