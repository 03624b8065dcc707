"""Background workers woken by PostgreSQL NOTIFY, with a poll as the fallback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import NoReturn

import asyncpg
import structlog

from services.common.workers import repeat

log = structlog.get_logger("workers")

type Listener = asyncpg.Connection[asyncpg.Record]


async def repeat_on_notify[T](
    run_once: Callable[[], Awaitable[T]],
    *,
    listen_url: str | None,
    channel: str,
    failure_event: str,
    wait_seconds: Callable[[bool], float],
    again_at_once: Callable[[T], bool] = lambda _: False,
) -> NoReturn:
    """Run `run_once` whenever `channel` is notified, and at least every `wait_seconds`.

    The LISTEN runs on a dedicated connection opened from `listen_url`, never a pooled
    one: a pooled connection goes back to the pool (and its listener away) after every
    use. Notifications are only hints, so a lost one delays work, never loses it: a pass
    also runs after `wait_seconds(listening)` seconds, which the caller makes short while
    the listening connection is down (`listening` is False) and long while it is up.
    A failed pass is logged and retried; `again_at_once(result)` skips the wait while a
    backlog remains. Without `listen_url` it only polls, every `wait_seconds(False)`.
    """
    if listen_url is None:
        await repeat(
            run_once,
            interval_seconds=wait_seconds(False),
            failure_event=failure_event,
            again_at_once=again_at_once,
        )
    wake = asyncio.Event()
    listener: Listener | None = None
    try:
        while True:
            if listener is None or listener.is_closed():
                listener = await _listen(listen_url, channel, wake)
            # Cleared before the pass: a NOTIFY arriving during it runs another at once.
            wake.clear()
            try:
                result = await run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(failure_event)
            else:
                if again_at_once(result):
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), wait_seconds(listener is not None))
    finally:
        if listener is not None:
            with contextlib.suppress(Exception):
                await listener.close(timeout=2)


async def _listen(url: str, channel: str, wake: asyncio.Event) -> Listener | None:
    """A connection that sets `wake` on every NOTIFY; None (polling) while it cannot open."""
    connection: Listener | None = None
    try:
        connection = await asyncpg.connect(url, timeout=5)
        await connection.add_listener(channel, lambda *_: wake.set())
    except (OSError, asyncpg.PostgresError, TimeoutError) as error:
        log.warning("listen_failed", channel=channel, error=repr(error))
        if connection is not None:
            connection.terminate()
        return None
    except BaseException:
        # Cancelled (the app stopping) between the connect and the LISTEN: the connection
        # is nobody's yet, so it is closed here rather than collected unclosed.
        if connection is not None:
            connection.terminate()
        raise
    # A dropped connection wakes the loop, which reconnects and catches up at once.
    connection.add_termination_listener(lambda _: wake.set())
    return connection
