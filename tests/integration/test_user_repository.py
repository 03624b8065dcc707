"""The user service's repositories and unit of work on a real, migrated PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio

from services.common.identity import Role
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.domain.model import DuplicateUser, Session, UniqueField, User, hash_token
from tests.support.servers import Backends

MIGRATIONS = Path("services/user/migrations")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    pool = await create_pool(backends.database_url("users", MIGRATIONS), max_size=20)
    try:
        yield pool
    finally:
        await pool.close()


def new_user(**overrides: object) -> User:
    name = f"r{uuid.uuid4().hex[:12]}"
    user = User.register(
        email=f"{name}@example.com",
        username=name,
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        display_name="Repo Test",
        now=datetime.now(UTC),
    )
    for key, value in overrides.items():
        setattr(user, key, value)
    return user


async def test_added_user_reads_back_equal(pool: Pool) -> None:
    user = new_user(roles=frozenset({Role.SELLER, Role.CUSTOMER}), bio="hello")
    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.add(user)
        await uow.commit()

    async with PostgresUnitOfWork(pool) as uow:
        by_id = await uow.users.get(user.id)
        by_email = await uow.users.get_by_email(user.email.upper())

    assert by_id == user
    assert by_email == user


async def test_unknown_users_are_none(pool: Pool) -> None:
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users.get(uuid.uuid4()) is None
        assert await uow.users.get_by_email("nobody@example.com") is None


async def test_without_commit_nothing_is_written(pool: Pool) -> None:
    user = new_user()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.add(user)

    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users.get(user.id) is None


async def test_an_error_rolls_the_transaction_back(pool: Pool) -> None:
    user = new_user()
    with pytest.raises(RuntimeError):
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.add(user)
            raise RuntimeError("boom")

    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users.get(user.id) is None


@pytest.mark.parametrize("field", [UniqueField.EMAIL, UniqueField.USERNAME])
async def test_duplicates_are_reported_by_field_case_insensitively(
    pool: Pool, field: UniqueField
) -> None:
    first = new_user()
    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.add(first)
        await uow.commit()
    second = new_user()
    if field is UniqueField.EMAIL:
        second.email = first.email.upper()
    else:
        second.username = first.username.upper()

    with pytest.raises(DuplicateUser) as caught:
        async with PostgresUnitOfWork(pool) as uow:
            await uow.users.add(second)
            await uow.commit()

    assert caught.value.field is field
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users.get(second.id) is None


async def test_add_if_absent_is_idempotent(pool: Pool) -> None:
    user = new_user()
    again = new_user(email=user.email, username=user.username)
    async with PostgresUnitOfWork(pool) as uow:
        assert await uow.users.add_if_absent(user)
        assert not await uow.users.add_if_absent(again)
        await uow.commit()


async def test_concurrent_adds_of_one_email_have_one_winner(pool: Pool) -> None:
    email = f"race{uuid.uuid4().hex[:12]}@example.com"

    async def add(user: User) -> bool:
        try:
            async with PostgresUnitOfWork(pool) as uow:
                await uow.users.add(user)
                await uow.commit()
        except DuplicateUser:
            return False
        return True

    results = await asyncio.gather(*(add(new_user(email=email)) for _ in range(15)))

    assert results.count(True) == 1
    async with pool.acquire() as connection:
        count = await connection.fetchval("select count(*) from users where email = $1", email)
    assert count == 1


async def test_database_refuses_roles_outside_the_known_set(pool: Pool) -> None:
    async with pool.acquire() as connection:
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "insert into users (email, username, password_hash, roles) "
                "values ('x@example.com', 'xrole', 'h', array['superuser'])"
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "insert into users (email, username, password_hash, roles) "
                "values ('y@example.com', 'yrole', 'h', array[]::text[])"
            )


async def test_session_with_its_refresh_token_round_trips(pool: Pool) -> None:
    user = new_user()
    now = datetime.now(UTC)
    session = Session.start(
        user_id=user.id,
        user_agent="pytest",
        client_ip="203.0.113.7",
        refresh_token="raw-refresh-token",
        refresh_ttl=timedelta(days=30),
        now=now,
    )
    async with PostgresUnitOfWork(pool) as uow:
        await uow.users.add(user)
        await uow.sessions.add(session)
        await uow.commit()

    async with PostgresUnitOfWork(pool) as uow:
        stored = await uow.sessions.get(session.id)

    assert stored == session
    assert stored is not None
    assert stored.tokens[0].token_hash == hash_token("raw-refresh-token")
    assert stored.tokens[0].expires_at == now + timedelta(days=30)


async def test_a_unit_of_work_runs_transactions_one_after_another(pool: Pool) -> None:
    user = new_user()
    uow = PostgresUnitOfWork(pool)
    async with uow:
        await uow.users.add(user)
        await uow.commit()
    async with uow:
        assert await uow.users.get(user.id) == user
