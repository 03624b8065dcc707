"""Run the order service: `python -m services.order`."""

from __future__ import annotations

import asyncio

from services.common.logging import configure_logging
from services.common.server import serve
from services.common.tracing import configure_tracing
from services.order.app import build_app
from services.order.config import Settings


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    settings = Settings()
    configure_logging("order", settings.log_level)
    configure_tracing("order")
    asyncio.run(serve(settings, lambda: build_app(settings)))


if __name__ == "__main__":
    main()
