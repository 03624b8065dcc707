"""A typed asyncio client of the marketplace's gRPC APIs for internal teams."""

from marketplace_client.auth import TokenProvider
from marketplace_client.channel import (
    INTERNAL_TIMEOUT_SECONDS,
    channel_options,
    create_channel,
    service_config,
)
from marketplace_client.client import IDEMPOTENCY_KEY_HEADER, MarketplaceClient, new_idempotency_key
from marketplace_client.errors import (
    AbortedError,
    AlreadyExistsError,
    DeadlineExceededError,
    FailedPreconditionError,
    FieldViolation,
    InvalidArgumentError,
    MarketplaceError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
    from_rpc_error,
    from_status,
)
from marketplace_client.internal import (
    OrderInternalClient,
    ProductCatalogClient,
    ProductInternalClient,
    UserInternalClient,
)
from marketplace_client.paging import iterate_pages

__all__ = [
    "IDEMPOTENCY_KEY_HEADER",
    "INTERNAL_TIMEOUT_SECONDS",
    "AbortedError",
    "AlreadyExistsError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InvalidArgumentError",
    "MarketplaceClient",
    "MarketplaceError",
    "NotFoundError",
    "OrderInternalClient",
    "PermissionDeniedError",
    "ProductCatalogClient",
    "ProductInternalClient",
    "ResourceExhaustedError",
    "TokenProvider",
    "UnauthenticatedError",
    "UnavailableError",
    "UserInternalClient",
    "channel_options",
    "create_channel",
    "from_rpc_error",
    "from_status",
    "iterate_pages",
    "new_idempotency_key",
    "service_config",
]
