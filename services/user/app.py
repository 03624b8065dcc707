"""The composition root of the user service: builds its pool, keys and servicers in the loop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import argon2
import structlog
from aiohttp import web
from marketplace.user.v1 import user_service_pb2_grpc
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from services.common.access import AccessPolicy
from services.common.auth import KeySource, Role, StaticKeySource
from services.common.business_metrics import BusinessEventsInterceptor, UserMetrics
from services.common.clock import Clock, SystemClock
from services.common.discovery import connect_peer
from services.common.order_stream import order_events_consumer
from services.common.outbox_relay import OutboxRelay
from services.common.sealed_rows import seal_legacy_rows
from services.common.server import ServiceApp
from services.common.streams import StreamConsumer, stream_client
from services.user.adapters import order_stream
from services.user.adapters.catalog import GrpcProductCatalog
from services.user.adapters.email import EmailRelay, MailboxEmailSender, SmtpEmailSender
from services.user.adapters.metrics import sign_in_observers
from services.user.adapters.passwords import Argon2PasswordHasher
from services.user.adapters.peers import GrpcOrderRecords, GrpcProductRecords
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.adapters.signing import KeyRing
from services.user.adapters.tokens import JwtTokenIssuer
from services.user.config import Settings
from services.user.data_keys import SEALED_COLUMNS
from services.user.domain import commands
from services.user.domain.emails import MailPolicy, OutgoingEmail
from services.user.domain.model import ThrottlePolicy
from services.user.domain.order_mail import OrderNotice
from services.user.privacy_servicer import PeerRecords
from services.user.service_layer import accounts, order_notifications, sign_in
from services.user.service_layer.ports import EmailSender, PasswordHasher, ProductCatalog
from services.user.servicer import Dependencies, UserInternalServicer, UserServicer

log = structlog.get_logger("user.app")

SERVICE = "marketplace.user.v1.UserService"
INTERNAL_SERVICE = "marketplace.user.v1.UserInternalService"
JWKS_PATH = "/.well-known/jwks.json"

# From the contract's access options: signing up and the token flows are public because
# they are how a caller gets a token.
POLICY = AccessPolicy.from_contract(SERVICE, INTERNAL_SERVICE)

DEMO_ACCOUNTS = (
    ("admin@example.com", "admin", "Demo Admin", frozenset({Role.ADMIN, Role.CUSTOMER})),
    ("seller@example.com", "seller", "Demo Seller", frozenset({Role.SELLER, Role.CUSTOMER})),
    ("buyer@example.com", "buyer", "Demo Buyer", frozenset({Role.CUSTOMER})),
)


def jwks_route(ring: KeyRing) -> web.RouteDef:
    """GET /.well-known/jwks.json: the public keys tokens are verified with."""

    async def jwks(_: web.Request) -> web.Response:
        # Caching is safe because a key is published (as the "next" key) at least this
        # long before it signs anything; see the rotation steps in the README.
        return web.json_response(ring.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return web.get(JWKS_PATH, jwks)


async def seed_demo_accounts(
    settings: Settings, pool: Pool, hasher: PasswordHasher, clock: Clock
) -> None:
    """Create the demo admin, seller and buyer unless they exist; never outside dev mode."""
    if not settings.dev_mode:
        raise RuntimeError("demo accounts are only seeded in dev mode")
    password = settings.demo_password.get_secret_value()
    await asyncio.gather(
        *(
            accounts.seed_demo_account(
                commands.SeedDemoAccount(
                    email=email,
                    username=username,
                    display_name=display_name,
                    password=password,
                    roles=frozenset(r.value for r in roles),
                ),
                uow=PostgresUnitOfWork(pool),
                hasher=hasher,
                clock=clock,
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
    email_sender: EmailSender | None = None,
    product_catalog: ProductCatalog | None = None,
    run_email_relay: bool = True,
    run_order_consumer: bool = True,
    order_consumers: list[StreamConsumer[OrderNotice]] | None = None,
    run_event_relay: bool = True,
    event_relays: list[OutboxRelay] | None = None,
    clock: Clock | None = None,
) -> AsyncIterator[ServiceApp]:
    """Build the user service inside the running loop; closes its pool on exit.

    Args:
        settings: The service's settings.
        key_source: Keys access tokens are verified with; defaults to the key ring's own.
        key_ring: Keys access tokens are signed with; defaults to the configured key.
        password_hasher: Overrides the argon2id hasher.
        email_sender: Overrides the sender the settings choose.
        product_catalog: Overrides the product service client of the wishlist.
        run_email_relay: Whether the outbox relay runs in the background; tests that
            drive it with run_once() turn it off.
        run_order_consumer: Whether the order event consumer runs in the background (when
            a Redis URL is set); tests that drive it with run_once() turn it off.
        order_consumers: When given, the built order event consumer is appended to it.
        run_event_relay: Whether the user event outbox's relay runs in the background
            (when a Redis URL is set); tests that drive it with run_once() turn it off.
        event_relays: When given, the built user event relay is appended to it.
        clock: Overrides the system clock the use cases read the time from.
    """
    clock = clock or SystemClock()
    ring = key_ring or KeyRing(
        settings.signing_key(),
        previous=settings.previous_signing_keys(),
        upcoming=settings.next_signing_key(),
    )
    if settings.signing_key_pem is None and key_ring is None:
        log.warning("signing_key_generated", kid=ring.current.kid, reason="dev mode, no key set")
    hasher = password_hasher or Argon2PasswordHasher(
        argon2.PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
        )
    )
    pool = await create_pool(
        str(settings.database_url),
        keyring=settings.data_keyring(),
        min_size=settings.db_pool_min_size,
        max_size=settings.db_pool_max_size,
        acquire_timeout=settings.db_acquire_timeout_seconds,
        command_timeout=settings.db_command_timeout_seconds,
    )
    product_channel = await connect_peer(settings, "product", settings.product_target)
    order_channel = await connect_peer(settings, "order", settings.order_target)
    relay_task: asyncio.Task[None] | None = None
    consumer_task: asyncio.Task[None] | None = None
    event_relay_task: asyncio.Task[None] | None = None
    stream_redis: Redis | None = None
    relay_redis: Redis | None = None
    try:
        await seal_legacy_rows(pool, SEALED_COLUMNS)
        if settings.dev_mode and settings.seed_demo_accounts:
            await seed_demo_accounts(settings, pool, hasher, clock)
        relay = EmailRelay(
            pool,
            email_sender or default_email_sender(settings, clock),
            interval_seconds=settings.email_relay_interval_seconds,
            lease_seconds=settings.email_relay_lease_seconds,
            # Woken by the NOTIFY each queued mail sends; the poll is the fallback.
            listen_url=str(settings.database_url),
            fallback_seconds=settings.email_relay_fallback_seconds,
        )
        if run_email_relay:
            relay_task = asyncio.create_task(relay.run(), name="user-email-relay")
        if settings.redis_url is not None and settings.consume_order_events:
            stream_redis = stream_client(str(settings.redis_url), settings)
            consumer = order_consumer(settings, pool, stream_redis, clock)
            if order_consumers is not None:
                order_consumers.append(consumer)
            if run_order_consumer:
                consumer_task = asyncio.create_task(consumer.run(), name="user-order-events")
        if settings.redis_url is not None:
            relay_redis = Redis.from_url(
                str(settings.redis_url), socket_timeout=5, socket_connect_timeout=2
            )
            event_relay = OutboxRelay(
                pool,
                relay_redis,
                clock=clock,
                stream=settings.user_events_stream,
                consumer_groups=settings.user_event_groups,
                interval_seconds=settings.event_relay_interval_seconds,
            )
            if event_relays is not None:
                event_relays.append(event_relay)
            if run_event_relay:
                event_relay_task = asyncio.create_task(event_relay.run(), name="user-events")
        deps = Dependencies(
            uow=lambda: PostgresUnitOfWork(pool),
            clock=clock,
            hasher=hasher,
            authenticator=await sign_in.Authenticator.create(hasher),
            issuer=JwtTokenIssuer(
                ring,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                ttl_seconds=settings.access_token_ttl_seconds,
            ),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            mail=MailPolicy(
                base_url=settings.public_base_url,
                verification_ttl=timedelta(seconds=settings.verification_token_ttl_seconds),
                reset_ttl=timedelta(seconds=settings.reset_token_ttl_seconds),
                cooldown=timedelta(seconds=settings.mail_cooldown_seconds),
            ),
            throttle=throttle_policy(settings),
            catalog=product_catalog
            or GrpcProductCatalog(product_channel, timeout_seconds=settings.rpc_timeout_seconds),
            peers=PeerRecords(
                products=GrpcProductRecords(
                    product_channel, timeout_seconds=settings.rpc_timeout_seconds
                ),
                orders=GrpcOrderRecords(
                    order_channel, timeout_seconds=settings.rpc_timeout_seconds
                ),
            ),
        )
        servicer = UserServicer(deps)
        registry = CollectorRegistry()
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
            metrics_registry=registry,
            not_ready=pool.not_ready,
            interceptors=[BusinessEventsInterceptor(sign_in_observers(UserMetrics(registry)))],
        )
    finally:
        for task in (relay_task, consumer_task, event_relay_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for redis in (stream_redis, relay_redis):
            if redis is not None:
                await redis.aclose()
        await product_channel.close()
        await order_channel.close()
        await pool.close()


def order_consumer(
    settings: Settings, pool: Pool, redis: Redis, clock: Clock
) -> StreamConsumer[OrderNotice]:
    """The consumer that turns order events into order mail."""

    async def notify(notice: OrderNotice) -> int:
        return await order_notifications.notify_order_event(
            notice, uow=PostgresUnitOfWork(pool), clock=clock, base_url=settings.public_base_url
        )

    return order_events_consumer(
        settings,
        redis,
        order_stream.parse_entry,
        notify,
        stream=settings.order_events_stream,
        group=order_stream.GROUP,
    )


def default_email_sender(settings: Settings, clock: Clock) -> EmailSender:
    """SMTP when a host is set, else the mailbox folder, else (dev only) a log line."""
    if settings.smtp_host:
        return SmtpEmailSender(
            host=settings.smtp_host,
            port=settings.smtp_port,
            sender=settings.mail_from,
            username=settings.smtp_username,
            password=(
                None
                if settings.smtp_password is None
                else settings.smtp_password.get_secret_value()
            ),
            starttls=settings.smtp_starttls,
            clock=clock,
        )
    if settings.mailbox_dir is not None:
        return MailboxEmailSender(settings.mailbox_dir, settings.mail_from, clock=clock)
    return DiscardingEmailSender()


class DiscardingEmailSender:
    """Dev mode without a mailbox: logs that a mail would go out, never its body."""

    async def send(self, message: OutgoingEmail) -> None:
        """Log the mail's kind and drop it."""
        log.info("email_discarded", kind=message.kind.value, reason="no USER_MAILBOX_DIR set")


def throttle_policy(settings: Settings) -> ThrottlePolicy:
    """The brute-force policy the settings describe."""
    return ThrottlePolicy(
        window=timedelta(seconds=settings.login_window_seconds),
        account_max_failures=settings.login_account_max_failures,
        client_max_failures=settings.login_client_max_failures,
        lockout=timedelta(seconds=settings.login_lockout_seconds),
        slowdown_after=settings.login_slowdown_after,
        slowdown_step=timedelta(milliseconds=settings.login_slowdown_ms),
        slowdown_max=timedelta(milliseconds=settings.login_slowdown_max_ms),
    )
