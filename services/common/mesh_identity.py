"""Who is calling, by the mesh certificate it presented: SPIFFE-style URI SANs.

A service's certificate names it `spiffe://<trust domain>/service/<name>`; only those
identities are internal callers. The edge (`.../edge`) and operators (`.../operator`)
hold certificates from the same CA but call like any client: with a token, never an
internal RPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import grpc

TRUST_DOMAIN = "marketplace.local"
MESH_SERVICES = ("user", "product", "order")
EDGE_IDENTITY = "edge"
OPERATOR_IDENTITY = "operator"
_SERVICE_PATH = "/service/"
# The auth context keys grpc core fills from the peer's certificate: the URI SAN that is
# a SPIFFE ID (set only when the certificate has exactly one), and every URI SAN.
_SPIFFE_KEY = "peer_spiffe_id"
_URI_KEY = "peer_uri"


def service_identity(name: str, trust_domain: str = TRUST_DOMAIN) -> str:
    """The URI SAN of service `name`'s certificate."""
    return f"spiffe://{trust_domain}{_SERVICE_PATH}{name}"


def peer_identities(auth_context: Mapping[str, Iterable[bytes]]) -> list[str]:
    """The spiffe:// URIs in a peer's certificate (none without TLS or a certificate)."""
    found: list[str] = []
    for key in (_SPIFFE_KEY, _URI_KEY):
        for value in auth_context.get(key, ()):
            text = value.decode(errors="replace")
            if text.startswith("spiffe://") and text not in found:
                found.append(text)
    return found


def caller_service(
    context: grpc.aio.ServicerContext[Any, Any], trust_domain: str = TRUST_DOMAIN
) -> tuple[str | None, str | None]:
    """The calling service's name, and the identity the peer presented.

    Returns:
        (service name, identity): the name is None unless the certificate names a service
        of `trust_domain`; the identity is None when the peer presented no SPIFFE ID
        (plaintext, or a certificate without one).
    """
    identities = peer_identities(context.auth_context())
    prefix = f"spiffe://{trust_domain}{_SERVICE_PATH}"
    for identity in identities:
        name = identity.removeprefix(prefix)
        if identity.startswith(prefix) and name and "/" not in name:
            return name, identity
    return None, identities[0] if identities else None
