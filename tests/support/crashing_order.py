"""The order service as a process that dies at a checkout step: `python -m tests.support.crashing_order`.

The step comes from TEST_ORDER_CRASH_AT; the process exits with os._exit there, with no
cleanup and no flush, as a killed process would. Production code only has the neutral
`checkpoint` hook this passes to build_app.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

import structlog

from services.common.logging import configure_logging
from services.common.server import serve
from services.order.app import build_app
from services.order.config import Settings

CRASH_AT_ENV = "TEST_ORDER_CRASH_AT"

log = structlog.get_logger("crash")


def crash_at(step_to_crash: str) -> Callable[[str], None]:
    """A checkpoint that kills the process when the saga reaches `step_to_crash`."""

    def checkpoint(step: str) -> None:
        if step == step_to_crash:
            log.warning("crash_injected", step=step)
            os._exit(70)

    return checkpoint


def main() -> None:
    settings = Settings()
    configure_logging("order", settings.log_level)
    checkpoint = crash_at(os.environ.get(CRASH_AT_ENV, ""))
    asyncio.run(serve(settings, lambda: build_app(settings, checkpoint=checkpoint)))


if __name__ == "__main__":
    main()
