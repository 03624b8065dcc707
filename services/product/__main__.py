"""Run the product service: `python -m services.product`."""

from __future__ import annotations

import asyncio

from services.common.logging import configure_logging
from services.common.server import serve
from services.common.tracing import configure_tracing
from services.product.app import build_app
from services.product.config import Settings


def main() -> None:
    """Serve the product service until SIGTERM or SIGINT."""
    settings = Settings()
    configure_logging("product", settings.log_level)
    configure_tracing("product")
    asyncio.run(serve(settings, lambda: build_app(settings)))


if __name__ == "__main__":
    main()
