"""The bootstrap grants the admin role to the first admin only, on real PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import asyncpg

from services.bootstrap.bootstrap import promote_first_admin
from tests.support.servers import Backends

USER_MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "user" / "migrations"


async def add_customer(url: str, email: str) -> None:
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "insert into users (id, email, username, password_hash) values ($1, $2, $3, $4)",
            uuid.uuid4(),
            email,
            f"user_{uuid.uuid4().hex[:12]}",
            "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        )
    finally:
        await connection.close()


async def roles_of(url: str, email: str) -> tuple[list[str], bool]:
    connection = await asyncpg.connect(url)
    try:
        row = await connection.fetchrow(
            "select roles, email_verified from users where lower(email) = lower($1)", email
        )
    finally:
        await connection.close()
    assert row is not None
    return list(row["roles"]), bool(row["email_verified"])


async def test_the_first_account_becomes_admin_and_no_later_one(backends: Backends) -> None:
    url = backends.database_url("bootstrap", USER_MIGRATIONS)
    await add_customer(url, "First.Admin@example.org")
    await add_customer(url, "someone-else@example.org")

    assert await promote_first_admin(url, "first.admin@example.org") is True
    assert await roles_of(url, "first.admin@example.org") == (["admin", "customer"], True)

    # Re-running with another address (a changed Secret, a second bootstrap) changes nothing.
    assert await promote_first_admin(url, "someone-else@example.org") is False
    assert await roles_of(url, "someone-else@example.org") == (["customer"], False)
    assert await promote_first_admin(url, "first.admin@example.org") is False


async def test_an_unknown_address_promotes_nobody(backends: Backends) -> None:
    url = backends.database_url("bootstrap", USER_MIGRATIONS)
    await add_customer(url, "customer@example.org")
    assert await promote_first_admin(url, "nobody@example.org") is False
    assert await roles_of(url, "customer@example.org") == (["customer"], False)
