"""The first admin and the category tree of a new deployment, idempotent and safe to re-run.

The admin account is registered through the user service's public CreateUser (so hashing,
normalisation and validation are the service's own), then given the admin role by one
guarded statement on the users database: no RPC can grant the first admin (SetUserRoles
needs an admin caller), and the statement changes nothing once any admin exists, so this
can never promote anyone on a running platform. The admin then signs in and creates the
categories that are missing through the product service's CreateCategory.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import grpc
import structlog
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.product.demo_catalog import demo_categories

log = structlog.get_logger("bootstrap")

# Grants the role only while nobody holds it: the first admin, never a later one.
PROMOTE_FIRST_ADMIN = """
update users
   set roles = array['admin', 'customer']::text[], email_verified = true, updated_at = now()
 where lower(email) = lower($1)
   and not exists (select 1 from users where 'admin' = any(roles))
"""
CALL_TIMEOUT_SECONDS = 10.0


class BootstrapError(RuntimeError):
    """The bootstrap cannot finish; the message says what to fix."""


class BootstrapSettings(BaseSettings):
    """BOOTSTRAP_* environment variables (the admin's from the marketplace-bootstrap Secret)."""

    model_config = SettingsConfigDict(env_prefix="BOOTSTRAP_", extra="ignore", frozen=True)

    user_target: str = "user:50051"
    product_target: str = "product:50051"
    users_database_url: SecretStr
    admin_email: str
    admin_username: str
    admin_password: SecretStr
    admin_display_name: str = "Administrator"
    # How long to wait for the services to serve (they may still be migrating or starting).
    ready_timeout_seconds: float = Field(default=600.0, gt=0)
    # The services serve mTLS: the job's client certificate (an operator identity of the
    # mesh CA) and the CA. Plaintext only against a dev mesh that serves it.
    tls_ca_file: Path | None = None
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    plaintext: bool = False

    def channel(self, target: str) -> grpc.aio.Channel:
        """A channel to a service with the job's credentials."""
        if self.plaintext:
            return grpc.aio.insecure_channel(target)
        if self.tls_ca_file is None or self.tls_cert_file is None or self.tls_key_file is None:
            raise BootstrapError(
                "set BOOTSTRAP_TLS_CA_FILE, BOOTSTRAP_TLS_CERT_FILE and BOOTSTRAP_TLS_KEY_FILE"
            )
        credentials = grpc.ssl_channel_credentials(
            self.tls_ca_file.read_bytes(),
            self.tls_key_file.read_bytes(),
            self.tls_cert_file.read_bytes(),
        )
        return grpc.aio.secure_channel(target, credentials)


async def bootstrap(
    settings: BootstrapSettings, categories: list[product_pb2.Category] | None = None
) -> None:
    """Create the first admin and the missing categories; a no-op on a bootstrapped platform."""
    tree = demo_categories() if categories is None else categories
    async with (
        settings.channel(settings.user_target) as user_channel,
        settings.channel(settings.product_target) as product_channel,
    ):
        deadline = time.monotonic() + settings.ready_timeout_seconds
        await _wait_serving(user_channel, "marketplace.user.v1.UserService", deadline)
        await _wait_serving(product_channel, "marketplace.product.v1.ProductService", deadline)
        users = user_service_pb2_grpc.UserServiceStub(user_channel)
        await _register(users, settings)
        promoted = await promote_first_admin(
            settings.users_database_url.get_secret_value(), settings.admin_email
        )
        log.info("first_admin", promoted=promoted)
        products = product_service_pb2_grpc.ProductServiceStub(product_channel)
        existing = await products.ListCategories(
            product_service_pb2.ListCategoriesRequest(), timeout=CALL_TIMEOUT_SECONDS
        )
        present = {category.category_id for category in existing.categories}
        missing = [category for category in tree if category.category_id not in present]
        if missing:
            token = await _sign_in(users, settings)
            await _create_categories(products, token, missing)
        log.info("categories", created=len(missing), present=len(present))


async def promote_first_admin(database_url: str, email: str) -> bool:
    """Make the account with `email` the admin unless an admin exists; whether it did."""
    connection = await asyncpg.connect(database_url, timeout=CALL_TIMEOUT_SECONDS)
    try:
        status = await connection.execute(PROMOTE_FIRST_ADMIN, email)
    finally:
        await connection.close()
    return bool(status == "UPDATE 1")


async def _wait_serving(channel: grpc.aio.Channel, service: str, deadline: float) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    while True:
        try:
            answer = await health.Check(
                health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_SECONDS
            )
            if answer.status == health_pb2.HealthCheckResponse.SERVING:
                return
        except grpc.aio.AioRpcError as error:
            log.info("waiting_for_service", service=service, code=error.code().name)
        if time.monotonic() > deadline:
            raise BootstrapError(f"{service} did not become SERVING in time")
        await asyncio.sleep(2)


async def _register(
    users: user_service_pb2_grpc.UserServiceAsyncStub, settings: BootstrapSettings
) -> None:
    try:
        await users.CreateUser(
            user_service_pb2.CreateUserRequest(
                email=settings.admin_email,
                username=settings.admin_username,
                password=settings.admin_password.get_secret_value(),
                display_name=settings.admin_display_name,
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        # A re-run: the username is the admin's own from the first run.
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise BootstrapError(f"CreateUser: {error.code().name}: {error.details()}") from None


async def _sign_in(
    users: user_service_pb2_grpc.UserServiceAsyncStub, settings: BootstrapSettings
) -> str:
    try:
        answer = await users.Login(
            user_service_pb2.LoginRequest(
                email=settings.admin_email, password=settings.admin_password.get_secret_value()
            ),
            timeout=CALL_TIMEOUT_SECONDS,
        )
    except grpc.aio.AioRpcError as error:
        raise BootstrapError(f"Login: {error.code().name}: {error.details()}") from None
    return str(answer.access_token)


async def _create_categories(
    products: product_service_pb2_grpc.ProductServiceAsyncStub,
    token: str,
    categories: list[product_pb2.Category],
) -> None:
    metadata = (("authorization", f"Bearer {token}"),)
    for category in categories:  # parents come first, so they exist for their children
        try:
            await products.CreateCategory(
                product_service_pb2.CreateCategoryRequest(category=category),
                metadata=metadata,
                timeout=CALL_TIMEOUT_SECONDS,
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.ALREADY_EXISTS:
                continue
            if error.code() == grpc.StatusCode.PERMISSION_DENIED:
                raise BootstrapError(
                    "the bootstrap account is not an admin (another admin existed before it): "
                    "create the categories as that admin, or give this account the admin role"
                ) from None
            raise BootstrapError(
                f"CreateCategory {category.category_id}: {error.code().name}: {error.details()}"
            ) from None
