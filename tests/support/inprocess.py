"""Run a service's real app in-process on free ports, for contract tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import grpc

from services.common.channels import ClientTls, create_channel
from services.common.config import Environment, ServiceSettings
from services.common.server import RunningServer, ServiceApp, running_server

# The identity of the default channel (a caller from outside, as through the edge) and of
# the internal one (the order service: the one caller of every internal RPC).
_CLIENT_IDENTITY = "edge"
INTERNAL_CALLER = "order"


@dataclass
class InProcessService:
    """A served app and channels to it: `channel` as an outside caller, `internal_channel`
    as the order service (admitted to the internal RPCs by its mesh certificate).
    """

    server: RunningServer
    channel: grpc.aio.Channel
    internal_channel: grpc.aio.Channel

    @property
    def target(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.server.grpc_port}"


def client_channel(settings: ServiceSettings, target: str, identity: str) -> grpc.aio.Channel:
    """A channel to a server configured by `settings`: plaintext if it is, else mTLS as
    `identity` (a certificate of the tests' CA, whose files sit beside the server's).
    """
    if settings.plaintext or settings.tls_ca_file is None:
        return grpc.aio.insecure_channel(target)
    folder = settings.tls_ca_file.parent
    tls = ClientTls.from_files(
        settings.tls_ca_file,
        folder / f"{_file_name(identity)}.pem",
        folder / f"{_file_name(identity)}-key.pem",
    )
    return grpc.aio.secure_channel(target, tls.credentials())


def mesh_channel(
    target: str, identity: str = INTERNAL_CALLER, *, retries: bool = True
) -> grpc.aio.Channel:
    """A channel from the chassis factory (service config, deadline propagation) that
    presents `identity`'s certificate from the tests' CA, as that service's own would.

    `retries=False` for a test that must see each answer the server gives (a retried
    idempotent call would turn a PAYMENT_PENDING into the paid order).
    """
    settings = ServiceSettings(environment=Environment.TEST)  # the TLS files from the env
    if settings.tls_ca_file is None:
        raise RuntimeError("the tests' CA is not configured (tests/conftest.py mesh_tls)")
    folder = settings.tls_ca_file.parent
    tls = ClientTls.from_files(
        settings.tls_ca_file,
        folder / f"{_file_name(identity)}.pem",
        folder / f"{_file_name(identity)}-key.pem",
    )
    return create_channel(target, tls=tls, retries=retries)


def _file_name(identity: str) -> str:
    return "edge-client" if identity == "edge" else identity


@asynccontextmanager
async def serve_in_process(
    settings: ServiceSettings,
    build_app: Callable[[], AbstractAsyncContextManager[ServiceApp]],
) -> AsyncIterator[InProcessService]:
    """Serve `build_app()` with the real chassis (interceptors, health, reflection).

    `settings` should use grpc_port=0 and ops_port=0 so the OS picks free ports.
    """
    async with build_app() as app, running_server(settings, app) as server:
        target = f"127.0.0.1:{server.grpc_port}"
        channel = client_channel(settings, target, _CLIENT_IDENTITY)
        internal = client_channel(settings, target, INTERNAL_CALLER)
        try:
            yield InProcessService(server, channel, internal)
        finally:
            await channel.close()
            await internal.close()
