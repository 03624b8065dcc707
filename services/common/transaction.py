"""The transaction port every unit of work is: `async with uow:` begins, `commit()` keeps.

The user and order services' units of work (and their in-memory fakes) are this protocol
plus the repositories they bind; the PostgreSQL base in `postgres.py` implements it.
"""

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
        tb: TracebackType | None,
    ) -> None:
        """Roll back what was not committed and give the connection back."""
        ...

    async def commit(self) -> None:
        """Make the writes durable."""
        ...
