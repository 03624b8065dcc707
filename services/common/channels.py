"""Channels to other services of the mesh, and the metadata internal calls carry."""

from __future__ import annotations

import grpc

from services.common.metadata import INTERNAL_TOKEN_HEADER

_CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.enable_retries", 1),
]


def create_channel(target: str) -> grpc.aio.Channel:
    """An insecure channel: inside the mesh, TLS is the service mesh's (or Envoy's) job."""
    return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)


def internal_metadata(internal_secret: str) -> tuple[tuple[str, str], ...]:
    """Metadata that admits a call to another service's internal RPCs."""
    return ((INTERNAL_TOKEN_HEADER, internal_secret),)
