"""The loop of a service's background workers: one pass after another until cancelled."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn

import structlog

log = structlog.get_logger("workers")


async def repeat[T](
    run_once: Callable[[], Awaitable[T]],
    *,
    interval_seconds: float,
    failure_event: str,
    again_at_once: Callable[[T], bool] = lambda _: False,
) -> NoReturn:
    """Run `run_once` every `interval_seconds` until cancelled.

    A failed pass is logged and retried after the interval, so a database or Redis hiccup
    never stops the worker; `again_at_once(result)` skips the wait while a backlog remains.
    """
    while True:
        try:
            result = await run_once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception(failure_event)
        else:
            if again_at_once(result):
                continue
        await asyncio.sleep(interval_seconds)
