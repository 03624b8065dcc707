"""The channel factory: TLS or plaintext, keep-alive, and a service config with deadlines and retries."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc

# Reads and calls that carry an idempotency key may be sent again: the server answers a
# repeat with the first result. Everything else is tried once.
_READS: dict[str, tuple[str, ...]] = {
    "marketplace.user.v1.UserService": (
        "GetUser",
        "ListUsers",
        "ListSessions",
        "ListAddresses",
        "GetAddress",
        "GetPreferences",
        "ListWishlistItems",
    ),
    "marketplace.product.v1.ProductService": (
        "GetProduct",
        "BatchGetProducts",
        "SearchProducts",
        "ListSellerProducts",
        "ListCategories",
        "GetInventory",
        "ListInventoryLedgerEntries",
        "ListReviews",
        "ListRecommendations",
    ),
    "marketplace.order.v1.OrderService": (
        "GetOrder",
        "ListOrders",
        "GetSalesReport",
    ),
}
# Writes the client always sends with an idempotency key (request_id and metadata).
_KEYED_WRITES = (("marketplace.order.v1.OrderService", ("CreateOrder", "RefundOrder")),)
_SERVICES = tuple(_READS)

# Seconds an internal call (one service asking another) may take, every attempt included:
# a checkout waits on them, so they are held to far less than a public call.
INTERNAL_TIMEOUT_SECONDS = 5.0
# The internal services' methods; every one is idempotent (a read, or keyed by order id,
# so a repeat finds the first call's effect), so every one may be retried.
_INTERNAL: dict[str, tuple[str, ...]] = {
    "marketplace.user.v1.UserInternalService": ("GetShippingAddress",),
    "marketplace.product.v1.ProductInternalService": (
        "ReserveInventory",
        "CommitReservation",
        "ReleaseReservation",
    ),
}


def service_config(
    *,
    default_timeout: float = 10.0,
    write_timeout: float = 30.0,
    internal_timeout: float = INTERNAL_TIMEOUT_SECONDS,
    max_attempts: int = 4,
) -> dict[str, Any]:
    """The gRPC service config: a deadline for every method, retries only for idempotent ones.

    Args:
        default_timeout: Seconds a read may take, every attempt included.
        write_timeout: Seconds any other call may take (a checkout waits for the payment).
        internal_timeout: Seconds a call to an internal service may take.
        max_attempts: Tries of an idempotent call, the first one included.

    Returns:
        The config as the JSON-shaped dict gRPC reads from `grpc.service_config`.
    """
    retry_policy = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.1s",
        "maxBackoff": "2s",
        "backoffMultiplier": 2,
        # Only "the call never reached a server that could act on it" is retried.
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    reads = [
        {
            "name": [{"service": service, "method": method} for method in methods],
            "timeout": f"{default_timeout}s",
            "retryPolicy": retry_policy,
        }
        for service, methods in _READS.items()
    ]
    keyed_writes = [
        {
            "name": [{"service": service, "method": method} for method in methods],
            "timeout": f"{write_timeout}s",
            "retryPolicy": retry_policy,
        }
        for service, methods in _KEYED_WRITES
    ]
    internal = [
        {
            "name": [{"service": service, "method": method} for method in methods],
            "timeout": f"{internal_timeout}s",
            "retryPolicy": retry_policy,
        }
        for service, methods in _INTERNAL.items()
    ]
    return {
        "methodConfig": [
            *reads,
            *keyed_writes,
            *internal,
            # Every other method of the services: a deadline, no retry.
            {
                "name": [{"service": service} for service in _SERVICES],
                "timeout": f"{write_timeout}s",
            },
        ]
    }


def channel_options(
    *, keepalive_seconds: float = 30.0, config: dict[str, Any] | None = None
) -> list[tuple[str, Any]]:
    """The options of every channel the client opens.

    Args:
        keepalive_seconds: How often an idle connection with calls in flight is pinged.
        config: The service config; `service_config()` when None.

    Returns:
        gRPC channel options.
    """
    return [
        ("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", 10_000),
        # Pings only while calls are in flight: servers refuse idle pingers (too_many_pings).
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(config or service_config())),
    ]


def create_channel(
    target: str,
    *,
    ca_file: Path | str | None = None,
    cert_file: Path | str | None = None,
    key_file: Path | str | None = None,
    plaintext: bool = False,
    keepalive_seconds: float = 30.0,
    config: dict[str, Any] | None = None,
) -> grpc.aio.Channel:
    """Open a channel to a service (host:port) or to the edge's native gRPC.

    Args:
        target: host:port.
        ca_file: PEM file of the CA that signed the server's certificate; None uses the
            system's roots.
        cert_file: A client certificate (PEM) to present, with `key_file`: the services'
            own ports require one from the mesh CA (e.g. `.mesh/tls/operator.pem`); the
            edge does not.
        key_file: The client certificate's private key (PEM).
        plaintext: No TLS, for the dev mesh on 127.0.0.1 only.
        keepalive_seconds: Keep-alive ping interval while calls are in flight.
        config: The service config; `service_config()` when None.

    Returns:
        An asyncio channel; close it with `await channel.close()`.
    """
    options = channel_options(keepalive_seconds=keepalive_seconds, config=config)
    if plaintext:
        return grpc.aio.insecure_channel(target, options=options)
    root = Path(ca_file).read_bytes() if ca_file is not None else None
    if (cert_file is None) != (key_file is None):
        raise ValueError("a client certificate needs both cert_file and key_file")
    key = Path(key_file).read_bytes() if key_file is not None else None
    cert = Path(cert_file).read_bytes() if cert_file is not None else None
    credentials = grpc.ssl_channel_credentials(root, key, cert)
    return grpc.aio.secure_channel(target, credentials, options=options)
