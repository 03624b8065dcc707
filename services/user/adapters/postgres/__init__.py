"""PostgreSQL adapters of the user service: one module per aggregate, and the unit of work."""

from services.user.adapters.postgres.pool import Connection, Pool, create_pool
from services.user.adapters.postgres.unit_of_work import PostgresUnitOfWork

__all__ = ["Connection", "Pool", "PostgresUnitOfWork", "create_pool"]
