"""The user service's outbox relay, sign-in throttle and password rehashing on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import argon2
import pytest_asyncio

from services.common.clock import SystemClock
from services.user.adapters.email import EmailRelay, MailboxEmailSender, SmtpEmailSender
from services.user.adapters.passwords import Argon2PasswordHasher
from services.user.adapters.postgres import Pool, PostgresUnitOfWork, create_pool
from services.user.adapters.signing import KeyRing, SigningKey
from services.user.adapters.tokens import JwtTokenIssuer
from services.user.domain import commands
from services.user.domain.emails import EmailKind, MailPolicy, OutgoingEmail
from services.user.domain.model import FailureCount
from services.user.service_layer import accounts, sign_in
from tests.support.servers import Backends

MIGRATIONS = Path("services/user/migrations")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def pool(backends: Backends) -> AsyncIterator[Pool]:
    pool = await create_pool(backends.database_url("users", MIGRATIONS), max_size=10)
    try:
        yield pool
    finally:
        await pool.close()


class FlakySender:
    """A sender that fails the first `failures` deliveries, like an SMTP relay in trouble."""

    def __init__(self, failures: int = 0, delay: float = 0.0) -> None:
        self.failures = failures
        self.delay = delay
        self.sent: list[OutgoingEmail] = []

    async def send(self, message: OutgoingEmail) -> None:
        await asyncio.sleep(self.delay)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionRefusedError("relay unavailable")
        self.sent.append(message)


async def queue(pool: Pool, *messages: OutgoingEmail) -> None:
    uow = PostgresUnitOfWork(pool)
    async with uow:
        for message in messages:
            await uow.outbox.add(message)
        await uow.commit()


def mail(to: str = "someone@example.com") -> OutgoingEmail:
    return OutgoingEmail(to, "Hello", f"Token: {uuid.uuid4().hex}", EmailKind.VERIFY_EMAIL)


async def test_a_failed_delivery_is_retried_with_backoff_then_cleared(pool: Pool) -> None:
    message = mail(f"{uuid.uuid4().hex[:8]}@example.com")
    await queue(pool, message)
    sender = FlakySender(failures=1)
    relay = EmailRelay(pool, sender, batch_size=100)

    await relay.run_once()
    row = await pool.fetchrow(
        "select attempts, last_error, sent_at, next_attempt_at > now() as later, body "
        "from email_outbox where id = $1",
        message.id,
    )
    assert row is not None
    assert (row["attempts"], row["sent_at"], row["later"]) == (1, None, True)
    assert "relay unavailable" in row["last_error"]
    assert row["body"] == message.body, "kept until delivered"

    await pool.execute(
        "update email_outbox set next_attempt_at = now() - interval '1 second' where id = $1",
        message.id,
    )
    await relay.run_once()
    assert [m.id for m in sender.sent] == [message.id]
    row = await pool.fetchrow("select sent_at, body from email_outbox where id = $1", message.id)
    assert row is not None and row["sent_at"] is not None and row["body"] is None


async def test_concurrent_relays_deliver_each_mail_once(pool: Pool) -> None:
    messages = [mail(f"many-{n}-{uuid.uuid4().hex[:6]}@example.com") for n in range(12)]
    await queue(pool, *messages)
    sender = FlakySender(delay=0.01)
    relays = [EmailRelay(pool, sender, batch_size=3) for _ in range(4)]
    for _ in range(6):
        await asyncio.gather(*(r.run_once() for r in relays))
    ids = [m.id for m in sender.sent if m.id in {x.id for x in messages}]
    assert sorted(ids) == sorted(m.id for m in messages)


async def test_the_mailbox_sender_writes_whole_eml_files(tmp_path: Path) -> None:
    sender = MailboxEmailSender(
        tmp_path / "mailbox", "Marketplace <no-reply@example.com>", clock=SystemClock()
    )
    await sender.send(mail("reader@example.com"))
    files = list((tmp_path / "mailbox").iterdir())
    assert len(files) == 1 and files[0].suffix == ".eml"
    text = files[0].read_text()
    assert "To: reader@example.com" in text and "X-Marketplace-Kind: verify_email" in text


async def fail(pool: Pool, key: str, at: datetime, max_failures: int = 3) -> FailureCount:
    """Count one failed sign-in of `key` at `at`, as the sign-in use case does."""
    uow = PostgresUnitOfWork(pool)
    async with uow:
        count = (await uow.throttle.count_for_update(key, at)).after_failure(
            at,
            window=timedelta(seconds=60),
            max_failures=max_failures,
            lockout=timedelta(seconds=30),
        )
        await uow.throttle.save(count)
        await uow.commit()
    return count


async def test_throttle_windows_reset_and_blocks_expire(pool: Pool) -> None:
    key = f"account:{uuid.uuid4().hex}@example.com"
    now = datetime.now(UTC)
    counts = [(await fail(pool, key, now)).failures for _ in range(3)]
    uow = PostgresUnitOfWork(pool)
    async with uow:
        blocked = await uow.throttle.blocked_until([key], now)
        still = await uow.throttle.blocked_until([key], now + timedelta(seconds=31))
    # After the window and the block, counting starts afresh.
    fresh = await fail(pool, key, now + timedelta(seconds=61))
    assert counts == [1, 2, 3]
    assert blocked == now + timedelta(seconds=30)
    assert still is None
    assert fresh.failures == 1 and fresh.blocked_until is None


async def test_concurrent_failures_of_a_new_key_are_all_counted(pool: Pool) -> None:
    key = f"client:{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    await asyncio.gather(*(fail(pool, key, now, max_failures=50) for _ in range(8)))
    assert await pool.fetchval("select failures from login_throttle where key = $1", key) == 8


async def test_sign_in_rehashes_a_password_hashed_with_old_parameters(pool: Pool) -> None:
    old = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
    new = Argon2PasswordHasher(argon2.PasswordHasher(time_cost=2, memory_cost=16384, parallelism=1))
    name = f"rehash{uuid.uuid4().hex[:8]}"
    password = "a passphrase to keep"
    user = await accounts.create_user(
        commands.CreateUser(f"{name}@example.com", name, password, ""),
        uow=PostgresUnitOfWork(pool),
        hasher=old,
        mail=MailPolicy(),
        clock=SystemClock(),
    )
    before = await pool.fetchval("select password_hash from users where id = $1", user.id)
    assert "m=8192,t=1" in before and new.needs_rehash(before)

    issuer = JwtTokenIssuer(
        KeyRing(SigningKey.generate()), issuer="marketplace", audience="marketplace", ttl_seconds=60
    )
    await sign_in.login(
        commands.Login(f"{name}@example.com", password),
        uow=PostgresUnitOfWork(pool),
        authenticator=await sign_in.Authenticator.create(new),
        issuer=issuer,
        refresh_ttl=timedelta(days=1),
        hasher=new,
        clock=SystemClock(),
    )
    after = await pool.fetchval("select password_hash from users where id = $1", user.id)
    assert "m=16384,t=2" in after and not new.needs_rehash(after)
    assert await new.verify(after, password)


class RecordingSmtpServer:
    """A minimal SMTP server on a real socket: enough of RFC 5321 for one client."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async def reply(line: str) -> None:
            writer.write(f"{line}\r\n".encode())
            await writer.drain()

        await reply("220 test.invalid ESMTP")
        sender, recipients = "", []
        while line := (await reader.readline()).decode().strip():
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await reply("250 test.invalid")
            elif verb == "MAIL":
                sender = line.split(":", 1)[1].strip("<> ")
                await reply("250 OK")
            elif verb == "RCPT":
                recipients.append(line.split(":", 1)[1].strip("<> "))
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 End data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := await reader.readline()) != b".\r\n":
                    data += chunk
                self.messages.append(bytes(data))
                self.envelopes.append((sender, recipients))
                await reply("250 OK")
            elif verb == "QUIT":
                await reply("221 Bye")
                break
            else:
                await reply("502 Not implemented")
        writer.close()


async def test_the_smtp_sender_delivers_through_a_real_smtp_conversation() -> None:
    server = RecordingSmtpServer()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        sender = SmtpEmailSender(
            host="127.0.0.1",
            port=port,
            sender="no-reply@example.com",
            starttls=False,
            clock=SystemClock(),
        )
        message = mail("smtp-reader@example.com")
        await sender.send(message)
    finally:
        listener.close()
        await listener.wait_closed()
    assert server.envelopes == [("no-reply@example.com", ["smtp-reader@example.com"])]
    assert message.body.encode() in server.messages[0]
