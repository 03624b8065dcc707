"""Run a service's real app in-process on free ports, for contract tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import grpc

from services.common.config import ServiceSettings
from services.common.server import RunningServer, ServiceApp, running_server


@dataclass
class InProcessService:
    """A served app and a channel to it."""

    server: RunningServer
    channel: grpc.aio.Channel

    @property
    def target(self) -> str:
        """host:port of the gRPC server."""
        return f"127.0.0.1:{self.server.grpc_port}"


@asynccontextmanager
async def serve_in_process(
    settings: ServiceSettings,
    build_app: Callable[[], AbstractAsyncContextManager[ServiceApp]],
) -> AsyncIterator[InProcessService]:
    """Serve `build_app()` with the real chassis (interceptors, health, reflection).

    `settings` should use grpc_port=0 and ops_port=0 so the OS picks free ports.
    """
    async with build_app() as app, running_server(settings, app) as server:
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}")
        try:
            yield InProcessService(server, channel)
        finally:
            await channel.close()
