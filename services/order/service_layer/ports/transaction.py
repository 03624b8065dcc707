"""The transaction every unit of work of the order service is: begin, commit, or roll back."""

from __future__ import annotations

from types import TracebackType
from typing import Protocol, Self


class Transaction(Protocol):
    """`async with uow:` begins; it rolls back unless `await uow.commit()` ran."""

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back what was not committed and give the connection back."""
        ...

    async def commit(self) -> None:
        """Make the writes durable."""
        ...
