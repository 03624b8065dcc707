"""The tests' own mesh CA: certificates for every identity, and channels presenting them.

A session fixture (tests/conftest.py) issues them once and points every service's
settings at them through the environment (`<PREFIX>TLS_*`), so in-process servers and the
processes tests start serve mTLS unless a test asks for plaintext.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc

from services.devmesh.tls import CertificateFiles, MeshTls, ensure_mesh_tls

# The services, plus an identity the CA signs that no internal RPC admits.
TEST_IDENTITIES = ("user", "product", "order", "stranger")
# The env prefix of each service's settings, and the identity its certificate names. The
# chassis' bare ServiceSettings (tests of the chassis alone) serve as "product".
SETTINGS_PREFIXES = {"USER_": "user", "PRODUCT_": "product", "ORDER_": "order", "": "product"}
# The identity of the in-process services' default client channel: calls arriving from
# outside, as through the edge.
EDGE = "edge"
OPERATOR = "operator"


def configured_test_ca() -> MeshTls:
    """The tests' CA the session fixture configured (read back from the environment)."""
    ca_file = os.environ.get("TLS_CA_FILE")
    if not ca_file:
        raise RuntimeError("the tests' CA is not configured (tests/conftest.py mesh_tls)")
    return issue_test_ca(Path(ca_file).parent)  # valid files are reused, not remade


def probe_credentials(identity: str = OPERATOR) -> grpc.ChannelCredentials:
    """Credentials of `identity` from the configured test CA, for blocking probes."""
    return client_credentials(configured_test_ca(), identity)


def issue_test_ca(folder: Path) -> MeshTls:
    """A CA of the tests' own in `folder`, with a certificate per test identity."""
    return ensure_mesh_tls(folder, services=TEST_IDENTITIES)


def tls_environment(tls: MeshTls) -> dict[str, str]:
    """The environment that makes every service's settings serve and dial mTLS."""
    env: dict[str, str] = {}
    for prefix, identity in SETTINGS_PREFIXES.items():
        files = tls.services[identity]
        env[f"{prefix}TLS_CERT_FILE"] = str(files.cert_path)
        env[f"{prefix}TLS_KEY_FILE"] = str(files.key_path)
        env[f"{prefix}TLS_CA_FILE"] = str(tls.ca_path)
    return env


def identity_files(tls: MeshTls, identity: str) -> CertificateFiles:
    """The certificate of `identity`: a service, "edge" or "operator"."""
    if identity == EDGE:
        return tls.edge_client
    if identity == OPERATOR:
        return tls.operator
    return tls.services[identity]


def client_credentials(tls: MeshTls, identity: str) -> grpc.ChannelCredentials:
    """Channel credentials presenting `identity`'s certificate, trusting `tls`'s CA."""
    files = identity_files(tls, identity)
    return grpc.ssl_channel_credentials(
        tls.ca_path.read_bytes(), files.key_path.read_bytes(), files.cert_path.read_bytes()
    )


def aio_channel(tls: MeshTls, target: str, identity: str = EDGE) -> grpc.aio.Channel:
    """An asyncio channel to `target` as `identity`."""
    return grpc.aio.secure_channel(target, client_credentials(tls, identity))


@contextmanager
def blocking_channel(tls: MeshTls, target: str, identity: str = OPERATOR) -> Iterator[grpc.Channel]:
    """A blocking channel to `target` as `identity`, closed on exit."""
    with grpc.secure_channel(target, client_credentials(tls, identity)) as channel:
        yield channel
