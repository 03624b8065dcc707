"""The order service as its own process, for crash and payment-fault contract tests.

The user service runs in the test's process and serves the JWKS the order process
verifies the test tokens with.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest_asyncio

from services.devmesh.mesh import grpc_serving
from services.devmesh.processes import ManagedProcess
from services.user.app import build_app as user_build_app
from tests.support.crashing_order import CRASH_AT_ENV
from tests.support.inprocess import serve_in_process
from tests.support.order import UserService, user_settings
from tests.support.servers import Backends
from tests.support.tls import probe_credentials
from tests.support.tokens import TestTokens

SERVICE = "marketplace.order.v1.OrderService"


@dataclass
class Accounts:
    """The user service, which also serves the test tokens' JWKS to the order process."""

    users: UserService
    jwks_url: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def accounts(backends: Backends, tokens: TestTokens) -> AsyncIterator[Accounts]:
    """The user service on its own database, signing with the test tokens' key ring."""
    settings = user_settings(backends, "order_process_users")
    # Signing with the test tokens' ring: its JWKS endpoint vouches for them.
    async with serve_in_process(
        settings, lambda: user_build_app(settings, key_ring=tokens.ring)
    ) as served:
        jwks = f"http://127.0.0.1:{served.server.ops_port}/.well-known/jwks.json"
        yield Accounts(UserService(served, tokens), jwks)


@dataclass
class OrderProcess:
    """How to start the order service as its own process, with or without a crash."""

    env: dict[str, str]
    log: Path
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, crash_at: str = "") -> ManagedProcess:
        # The crash hook lives in the tests: a crashing run starts the test entry point.
        module = "tests.support.crashing_order" if crash_at else "services.order"
        env = {**self.env, CRASH_AT_ENV: crash_at}
        process = ManagedProcess("order", [sys.executable, "-m", module], self.log, env=env).start()
        try:
            # Polled from a thread: the product and user services share this test's loop.
            await asyncio.to_thread(
                process.wait_ready,
                lambda: grpc_serving(self.target, SERVICE, probe_credentials()),
                30,
            )
        except BaseException:
            # A process that never became ready is nobody's to stop otherwise.
            await asyncio.to_thread(process.stop, 5)
            raise
        return process
