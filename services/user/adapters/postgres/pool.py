"""The pool and connection types the user service's repositories use (the chassis's)."""

from __future__ import annotations

from typing import Any

import asyncpg

from services.common import postgres
from services.common.envelope import DataKeys, Keyring
from services.common.postgres import AnyConnection

type Connection = AnyConnection
type Pool = asyncpg.Pool[asyncpg.Record]

__all__ = ["Connection", "Pool", "create_pool"]


async def create_pool(
    dsn: str, *, keyring: Keyring | None = None, **options: Any
) -> postgres.BoundedPool:
    """The chassis pool carrying the database's data keys, unwrapped with `keyring`.

    The app passes the configured keyring (USER_DATA_KEK); tests and tools that leave it
    out get the dev keyring, as the dev-mode settings do.
    """
    return await postgres.create_pool(dsn, data_keys=DataKeys(keyring or Keyring.dev()), **options)
