"""The one reader of a call's metadata: request id, client address, idempotency key, token."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import grpc

REQUEST_ID_HEADER = "x-request-id"
# The edge's route sets this to the address of the client it accepted the request from,
# overwriting anything the client sent (envoy/envoy.yaml.tmpl); direct callers inside the
# mesh are identified by the peer of the gRPC connection instead.
CLIENT_ADDRESS_HEADER = "x-marketplace-client-address"
IDEMPOTENCY_KEY_HEADER = "idempotency-key"
AUTHORIZATION_HEADER = "authorization"
USER_AGENT_HEADER = "user-agent"


@dataclass(frozen=True)
class RequestMetadata:
    """The text metadata of one call (binary `-bin` entries are left out)."""

    values: Mapping[str, str] = field(default_factory=dict)
    peer: str = ""

    def get(self, key: str) -> str | None:
        """The value of `key` (lower-case, as gRPC delivers it), if sent."""
        return self.values.get(key)

    @property
    def request_id(self) -> str | None:
        """The x-request-id the edge or the caller set."""
        return self.values.get(REQUEST_ID_HEADER) or None

    @property
    def idempotency_key(self) -> str | None:
        """The Idempotency-Key header, when sent (an empty value is returned as sent)."""
        return self.values.get(IDEMPOTENCY_KEY_HEADER)

    @property
    def authorization(self) -> str:
        """The authorization header, or "" when there is none."""
        return self.values.get(AUTHORIZATION_HEADER, "")

    @property
    def user_agent(self) -> str:
        """The user-agent header, or ""."""
        return self.values.get(USER_AGENT_HEADER, "")

    @property
    def client_address(self) -> str | None:
        """The client's IP: the edge's client-address header, else the gRPC peer's address."""
        return _ip(self.values.get(CLIENT_ADDRESS_HEADER, "")) or _peer_ip(self.peer)


def request_metadata(context: grpc.aio.ServicerContext[Any, Any]) -> RequestMetadata:
    """The metadata of the call `context` serves."""
    values = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    return RequestMetadata(values, context.peer() or "")


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def _peer_ip(peer: str) -> str | None:
    """The address of a gRPC peer such as "ipv4:10.0.0.7:5123" or "ipv6:[::1]:5123"."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return _ip(rest.rpartition(":")[0])
    if kind == "ipv6":
        return _ip(rest.rpartition(":")[0].strip("[]"))
    return None
