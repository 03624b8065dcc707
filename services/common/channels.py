"""Channels to other services of the mesh: mTLS, deadlines and retries, declared once.

Every channel a service opens to another comes from `channel_factory(settings)`: it
presents the service's own mesh certificate (the callee authorises internal RPCs by it),
trusts only the mesh CA, and carries the gRPC service config built from the contract:
retries with backoff and a retry budget for the methods the contract declares idempotent
(`idempotency_level`: reads, and writes keyed by an idempotency key or an order id), no
hedging. Its interceptors give every call a deadline, capped at what remains of the
incoming call's (see services/common/deadlines.py).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import ServiceDescriptor
from marketplace.order.v1 import order_service_pb2
from marketplace.product.v1 import product_service_pb2
from marketplace.user.v1 import user_service_pb2

from services.common.deadlines import deadline_interceptors
from services.common.tracing import client_interceptors

if TYPE_CHECKING:
    from services.common.config import ServiceSettings

type ChannelFactory = Callable[[str], grpc.aio.Channel]

_KEEPALIVE_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
]
_IDEMPOTENT = (
    descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS,
    descriptor_pb2.MethodOptions.IDEMPOTENT,
)
# The services other services call; their descriptors say which methods are idempotent.
MESH_SERVICES: tuple[ServiceDescriptor, ...] = tuple(
    service
    for module in (user_service_pb2, product_service_pb2, order_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
)


@dataclass(frozen=True)
class ClientTls:
    """The mesh CA and the certificate a client presents (PEM bytes)."""

    ca: bytes
    cert: bytes
    key: bytes

    @classmethod
    def from_files(cls, ca_file: Path, cert_file: Path, key_file: Path) -> ClientTls:
        """Read the three PEM files."""
        return cls(ca_file.read_bytes(), cert_file.read_bytes(), key_file.read_bytes())

    def credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials: verify the server against the mesh CA, present our cert."""
        return grpc.ssl_channel_credentials(self.ca, self.key, self.cert)


def client_tls(settings: ServiceSettings) -> ClientTls | None:
    """The service's client TLS from its settings; None in (dev-only) plaintext mode."""
    if settings.plaintext:
        return None
    if settings.tls_ca_file is None or settings.tls_cert_file is None:
        raise ValueError("mTLS needs tls_ca_file, tls_cert_file and tls_key_file")
    if settings.tls_key_file is None:
        raise ValueError("mTLS needs tls_key_file")
    return ClientTls.from_files(settings.tls_ca_file, settings.tls_cert_file, settings.tls_key_file)


def idempotent_methods(services: Iterable[ServiceDescriptor]) -> list[tuple[str, str]]:
    """(service, method) of every method the contract declares idempotent."""
    return [
        (service.full_name, method.name)
        for service in services
        for method in service.methods
        if method.GetOptions().idempotency_level in _IDEMPOTENT
    ]


def service_config(
    *, services: Iterable[ServiceDescriptor] = MESH_SERVICES, max_attempts: int = 3
) -> dict[str, Any]:
    """The gRPC service config of every mesh channel: who is retried, and how much.

    Deadlines are not in it: grpc.aio measures a service-config timeout from a stale clock
    (measured with grpcio 1.85: a "1s" timeout expired before the call was sent, a "2s"
    one after 0.5 s), so the deadline interceptor sets every call's deadline instead.

    Args:
        services: Whose methods get a config; idempotency comes from their descriptors.
        max_attempts: Tries of an idempotent call, the first one included.

    Returns:
        The JSON-shaped config gRPC reads from the `grpc.service_config` option.
    """
    retry_policy = {
        "maxAttempts": max_attempts,
        "initialBackoff": "0.05s",
        "maxBackoff": "1s",
        "backoffMultiplier": 2,
        # Only "no server acted on it" (a dead, draining or unreachable peer). A deadline
        # is never retried: the time is spent.
        "retryableStatusCodes": ["UNAVAILABLE"],
    }
    idempotent = idempotent_methods(services)
    # Every other method gets no entry: a single attempt. No hedging anywhere.
    method_config: list[dict[str, Any]] = []
    if idempotent:
        method_config.append(
            {
                "name": [{"service": s, "method": m} for s, m in idempotent],
                "retryPolicy": retry_policy,
            }
        )
    return {
        # Calls are spread over every address the target resolves to: the instances a
        # registry lists (an `ipv4:a:p,b:p` target, services.common.discovery) or the pods
        # behind a headless Service (`dns:///user.marketplace.svc.cluster.local:50051`).
        # pick_first, the default, would send every call to the first one.
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": method_config,
        # The retry budget: retries stop while more than half the tokens are spent (each
        # failure costs 1, each success earns 0.1), so a sick peer is not hammered.
        "retryThrottling": {"maxTokens": 10, "tokenRatio": 0.1},
    }


def create_channel(
    target: str,
    *,
    tls: ClientTls | None = None,
    server_name: str | None = None,
    timeout_seconds: float = 5.0,
    options: Iterable[tuple[str, Any]] = (),
    retries: bool = True,
) -> grpc.aio.Channel:
    """A channel to another service (or to several instances of it).

    Args:
        target: host:port, or any gRPC target (`dns:///product:50051`, `ipv4:a:p,b:p`).
        tls: The mesh CA and this service's certificate; None is plaintext, which every
            TLS server refuses (dev tests that serve plaintext only).
        server_name: The name the server's certificate is checked against, when the target
            does not carry it (a list of addresses): the callee's service name.
        timeout_seconds: The deadline of calls that set none (a call's own deadline, and
            the incoming call's remaining time, may only shorten it).
        options: More channel options (a load-balancing policy, for instance).
        retries: False for a channel that never retries (a probe or a test that must see
            each answer the server gives, not what a retry made of it).

    Returns:
        An asyncio channel carrying request ids, trace context and deadline propagation.
    """
    config = service_config() if retries else service_config(services=())
    all_options = [
        *(o for o in _KEEPALIVE_OPTIONS if retries or o[0] != "grpc.enable_retries"),
        ("grpc.service_config", json.dumps(config)),
        *options,
    ]
    interceptors = [*client_interceptors(), *deadline_interceptors(timeout_seconds)]
    if tls is None:
        return grpc.aio.insecure_channel(target, options=all_options, interceptors=interceptors)
    if server_name:
        all_options.append(("grpc.ssl_target_name_override", server_name))
    return grpc.aio.secure_channel(
        target, tls.credentials(), options=all_options, interceptors=interceptors
    )


def channel_factory(settings: ServiceSettings) -> Callable[..., grpc.aio.Channel]:
    """`create_channel` bound to the service's credentials and deadline.

    The result takes a target (and optionally `server_name=`, `options=`), so registry
    code can open channels to whatever instances it resolved.
    """
    return functools.partial(
        create_channel, tls=client_tls(settings), timeout_seconds=settings.rpc_timeout_seconds
    )
