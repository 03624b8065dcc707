"""The sandbox payment gateway as its own process, with its fault controls, for fault tests."""

from __future__ import annotations

import secrets
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from services.devmesh.mesh import http_status
from services.devmesh.processes import ManagedProcess, free_port


@dataclass
class GatewayProcess:
    """A sandbox gateway process keeping its charges in `state_dir` across restarts."""

    state_dir: Path
    port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    process: ManagedProcess | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> GatewayProcess:
        self.process = ManagedProcess(
            "payment-gateway",
            [sys.executable, "-m", "services.order.sandbox_gateway"],
            self.state_dir / "gateway.log",
            env={
                "SANDBOX_GATEWAY_PORT": str(self.port),
                "SANDBOX_GATEWAY_API_KEY": self.api_key,
                "SANDBOX_GATEWAY_LATENCY_MS": "5",
                "SANDBOX_GATEWAY_STATE_DIR": str(self.state_dir),
            },
        ).start()
        self.process.wait_ready(lambda: http_status(f"{self.url}/healthz") == 200, timeout=30)
        return self

    def kill(self) -> None:
        """SIGKILL: no cleanup, as a crashed processor node."""
        assert self.process is not None
        self.process.signal(signal.SIGKILL)
        self.process.stop(timeout=5)

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=5)

    @property
    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    async def stall(self, operation: str, seconds: float) -> None:
        """Make `operation` stall this long after it is received (the fake's control)."""
        async with (
            aiohttp.ClientSession() as session,
            session.put(
                f"{self.url}/_sandbox/stalls/{operation}",
                json={"seconds": seconds},
                headers=self._headers,
            ) as response,
        ):
            assert response.status == 200, await response.text()

    async def unstall(self, operation: str) -> None:
        async with (
            aiohttp.ClientSession() as session,
            session.delete(
                f"{self.url}/_sandbox/stalls/{operation}", headers=self._headers
            ) as response,
        ):
            assert response.status == 200

    async def charges(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{self.url}/v1/charges", headers=self._headers) as response,
        ):
            assert response.status == 200
            body = await response.json()
        charges: list[dict[str, Any]] = body["charges"]
        return charges
