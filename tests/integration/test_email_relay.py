"""The email relay holds no connection or row lock while a mail is sent (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest_asyncio

from services.user.adapters.email import EmailRelay
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.domain.emails import EmailKind, OutgoingEmail
from tests.support.servers import Backends

MIGRATIONS = Path("services/user/migrations")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def database_url(backends: Backends) -> str:
    return backends.database_url("users", MIGRATIONS)


@pytest_asyncio.fixture(loop_scope="session")
async def pool(database_url: str) -> AsyncIterator[Pool]:
    # One connection: were the relay to keep it across a send, nothing else could run.
    pool = await create_pool(database_url, min_size=1, max_size=1, acquire_timeout=2.0)
    try:
        yield pool
    finally:
        await pool.close()


class StalledTransport:
    """A mail transport that blocks in send() until released, like a hung SMTP server."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.sent: list[OutgoingEmail] = []

    async def send(self, message: OutgoingEmail) -> None:
        self.entered.set()
        await self.release.wait()
        self.sent.append(message)


class RecordingTransport:
    """A mail transport that delivers at once."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []
        self.delivered = asyncio.Event()

    async def send(self, message: OutgoingEmail) -> None:
        self.sent.append(message)
        self.delivered.set()


async def queue(pool: Pool, message: OutgoingEmail) -> None:
    uow = PostgresUnitOfWork(pool)
    async with uow:
        await uow.outbox.add(message)
        await uow.commit()


def mail() -> OutgoingEmail:
    return OutgoingEmail(
        f"{uuid.uuid4().hex[:10]}@example.com", "Hello", "Token", EmailKind.VERIFY_EMAIL
    )


async def test_a_stalled_send_holds_no_connection_and_no_row_lock(
    pool: Pool, database_url: str
) -> None:
    message = mail()
    await queue(pool, message)
    transport = StalledTransport()
    relay = EmailRelay(pool, transport, batch_size=100)
    running = asyncio.create_task(relay.run_once())
    try:
        await asyncio.wait_for(transport.entered.wait(), 10)
        # The pool's only connection is free: acquire() would time out if it were held.
        async with pool.acquire(timeout=1) as connection:
            assert await connection.fetchval("select 1") == 1
        # Another session can lock and update the row while the send is stalled.
        other = await asyncpg.connect(database_url)
        try:
            async with other.transaction():
                await other.execute("set local lock_timeout = '1s'")
                locked = await other.fetchval(
                    "select id from email_outbox where id = $1 for update nowait", message.id
                )
                await other.execute(
                    "update email_outbox set last_error = 'touched' where id = $1", message.id
                )
            # ...and no session of the relay sits in a transaction.
            idle_in_transaction = await other.fetchval(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and state like 'idle in transaction%' and pid <> pg_backend_pid()"
            )
        finally:
            await other.close()
        assert locked == message.id
        assert idle_in_transaction == 0
        assert not running.done()
    finally:
        transport.release.set()
    assert await asyncio.wait_for(running, 10) >= 1
    row = await pool.fetchrow(
        "select sent_at, body, claimed_until from email_outbox where id = $1", message.id
    )
    assert row is not None
    assert row["sent_at"] is not None and row["body"] is None and row["claimed_until"] is None
    assert [m.id for m in transport.sent if m.id == message.id] == [message.id]


async def test_a_crashed_senders_lease_lapses_and_the_mail_is_sent_again(pool: Pool) -> None:
    message = mail()
    await queue(pool, message)
    crashed = StalledTransport()
    first = EmailRelay(pool, crashed, batch_size=100, lease_seconds=2.0)
    running = asyncio.create_task(first.run_once())
    await asyncio.wait_for(crashed.entered.wait(), 10)
    running.cancel()  # the relay dies mid-send: its claim stays behind
    with contextlib.suppress(asyncio.CancelledError):
        await running

    second_transport = RecordingTransport()
    second = EmailRelay(pool, second_transport, batch_size=100)
    await second.run_once()
    assert message.id not in [m.id for m in second_transport.sent], "still leased"

    await asyncio.sleep(2.2)
    await second.run_once()
    assert [m.id for m in second_transport.sent if m.id == message.id] == [message.id]
    sent_at = await pool.fetchval("select sent_at from email_outbox where id = $1", message.id)
    assert sent_at is not None


async def test_a_queued_mail_wakes_the_relay_without_waiting_for_its_poll(
    pool: Pool, database_url: str
) -> None:
    transport = RecordingTransport()
    # Polls only once a minute: a prompt delivery comes from the NOTIFY.
    relay = EmailRelay(
        pool, transport, interval_seconds=60, listen_url=database_url, fallback_seconds=60
    )
    running = asyncio.create_task(relay.run())
    try:
        await asyncio.sleep(1.0)  # the first pass ran and the relay is listening
        transport.sent.clear()
        transport.delivered.clear()
        message = mail()
        await queue(pool, message)
        await asyncio.wait_for(transport.delivered.wait(), 5)
        assert message.id in [m.id for m in transport.sent]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
