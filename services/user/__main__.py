"""Run the user service: `python -m services.user`."""

from __future__ import annotations

import asyncio

from services.common.logging import configure_logging
from services.common.server import serve
from services.common.tracing import configure_tracing
from services.user.app import build_app
from services.user.config import Settings


def main() -> None:
    """Read the settings from the environment and serve until SIGTERM."""
    settings = Settings()
    configure_logging("user", settings.log_level)
    configure_tracing("user")
    asyncio.run(serve(settings, lambda: build_app(settings)))


if __name__ == "__main__":
    main()
