"""Channels to other services of the mesh, and the metadata internal calls carry."""

from __future__ import annotations

import json

import grpc

from services.common.metadata import INTERNAL_TOKEN_HEADER
from services.common.tracing import client_interceptors

# Calls are spread over every address the target resolves to: the instances a registry
# lists (an `ipv4:a:p,b:p` target, services.common.discovery) or the pods behind a headless
# Service (`dns:///user.marketplace.svc.cluster.local:50051`). pick_first, the default,
# would send every call to the first one.
SERVICE_CONFIG: dict[str, object] = {"loadBalancingConfig": [{"round_robin": {}}]}

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", json.dumps(SERVICE_CONFIG)),
]


def create_channel(target: str) -> grpc.aio.Channel:
    """An insecure channel: inside the mesh, TLS is the service mesh's (or Envoy's) job.

    Every call on it carries the caller's request id and W3C trace context.
    """
    return grpc.aio.insecure_channel(
        target, options=_CHANNEL_OPTIONS, interceptors=client_interceptors()
    )


def internal_metadata(internal_secret: str) -> tuple[tuple[str, str], ...]:
    """Metadata that admits a call to another service's internal RPCs."""
    return ((INTERNAL_TOKEN_HEADER, internal_secret),)
