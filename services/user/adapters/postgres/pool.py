"""The pool and connection types the user service's repositories use (the chassis's)."""

from __future__ import annotations

import asyncpg

from services.common.postgres import AnyConnection, create_pool

type Connection = AnyConnection
type Pool = asyncpg.Pool[asyncpg.Record]

__all__ = ["Connection", "Pool", "create_pool"]
