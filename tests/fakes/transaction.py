"""The transaction of the fakes whose writes land at once: nothing to begin, commit or undo."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class WritesAtOnce:
    """A unit of work's transaction protocol with no rollback: each write is already stored."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass

    async def commit(self) -> None:
        pass
