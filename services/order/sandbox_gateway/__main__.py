"""Run the sandbox gateway: `python -m services.order.sandbox_gateway`."""

from __future__ import annotations

import random
from pathlib import Path

from aiohttp import web
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.tracing import configure_tracing
from services.order.sandbox_gateway.app import GatewayState, create_app
from services.order.sandbox_gateway.store import GatewayStore


class GatewaySettings(BaseSettings):
    """SANDBOX_GATEWAY_* environment variables."""

    model_config = SettingsConfigDict(env_prefix="SANDBOX_GATEWAY_", extra="ignore", frozen=True)

    host: str = "127.0.0.1"
    port: int = 8090
    api_key: SecretStr
    latency_ms: int = Field(default=50, ge=0)
    failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    # A fixed seed makes the simulated failures repeatable.
    seed: int | None = None
    # Where charges and idempotency records are kept across restarts (gateway.sqlite3);
    # empty keeps them in memory only.
    state_dir: Path | None = None
    # FAULT CONTROL of the fake, at start-up (the admin endpoint changes them at runtime):
    # how long authorize and capture stall after they were received.
    stall_authorize_ms: int = Field(default=0, ge=0)
    stall_capture_ms: int = Field(default=0, ge=0)


def main() -> None:
    """Serve until interrupted."""
    settings = GatewaySettings()  # api_key comes from the environment
    if configure_tracing("payment-gateway"):
        # Before create_app: the instrumentation adds its middleware to new applications.
        AioHttpServerInstrumentor().instrument()
    state = GatewayState(
        api_key=settings.api_key.get_secret_value(),
        latency_seconds=settings.latency_ms / 1000,
        failure_rate=settings.failure_rate,
        rng=random.Random(settings.seed),
        store=GatewayStore(settings.state_dir / "gateway.sqlite3") if settings.state_dir else None,
    )
    state.load()
    for operation, ms in (
        ("authorize", settings.stall_authorize_ms),
        ("capture", settings.stall_capture_ms),
    ):
        if ms:
            state.stalls[operation] = ms / 1000
    web.run_app(create_app(state), host=settings.host, port=settings.port, print=None)


if __name__ == "__main__":
    main()
