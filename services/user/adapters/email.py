"""Email delivery (an .eml mailbox folder, SMTP) and the relay that drains the outbox."""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import structlog

from services.common.clock import Clock
from services.common.workers import repeat
from services.user.adapters.postgres import Pool
from services.user.domain.emails import EmailKind, OutgoingEmail
from services.user.service_layer.ports import EmailSender

log = structlog.get_logger("user.email")


def to_mime(message: OutgoingEmail, sender: str, sent_at: datetime) -> EmailMessage:
    """The RFC 5322 form of a message sent at `sent_at`."""
    mime = EmailMessage()
    mime["From"] = sender
    mime["To"] = message.to
    mime["Subject"] = message.subject
    mime["Date"] = formatdate(sent_at.timestamp(), usegmt=True)
    mime["Message-ID"] = make_msgid(idstring=message.id.hex, domain="marketplace.invalid")
    mime["X-Marketplace-Kind"] = message.kind.value
    mime.set_content(message.body)
    return mime


class MailboxEmailSender:
    """Dev and test delivery: each mail becomes an .eml file in a folder.

    A person running the dev mesh opens the files (any mail client reads .eml) to follow
    verification and reset links, and tests read the tokens from them. Files are written
    under a temporary name and renamed, so a reader never sees half a mail.
    """

    def __init__(self, folder: Path, sender: str, *, clock: Clock) -> None:
        self._folder = folder
        self._sender = sender
        self._clock = clock

    async def send(self, message: OutgoingEmail) -> None:
        """Write the mail into the folder."""
        await asyncio.to_thread(self._write, message)

    def _write(self, message: OutgoingEmail) -> None:
        self._folder.mkdir(parents=True, exist_ok=True)
        now = self._clock.now()
        stamp = now.strftime("%Y%m%dT%H%M%S%f")
        final = self._folder / f"{stamp}-{message.kind.value}-{message.id.hex}.eml"
        partial = final.with_suffix(".tmp")
        partial.write_bytes(bytes(to_mime(message, self._sender, now)))
        os.replace(partial, final)


class SmtpEmailSender:
    """Production delivery through an SMTP relay, with STARTTLS unless told otherwise."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout_seconds: float = 10.0,
        clock: Clock,
    ) -> None:
        self._clock = clock
        self._host = host
        self._port = port
        self._sender = sender
        self._username = username
        self._password = password
        self._starttls = starttls
        self._timeout = timeout_seconds

    async def send(self, message: OutgoingEmail) -> None:
        """Hand the mail to the SMTP server; raises on failure so the relay retries."""
        await asyncio.to_thread(self._send, to_mime(message, self._sender, self._clock.now()))

    def _send(self, mime: EmailMessage) -> None:
        with smtplib.SMTP(self._host, self._port, timeout=self._timeout) as smtp:
            if self._starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self._username and self._password:
                smtp.login(self._username, self._password)
            smtp.send_message(mime)


class EmailRelay:
    """Delivers due outbox mail; run_once() for tests, run() as the background loop.

    Rows are claimed with FOR UPDATE SKIP LOCKED, so several replicas relay in parallel
    without sending a mail twice; a failed delivery is retried with exponential backoff.
    """

    def __init__(
        self,
        pool: Pool,
        sender: EmailSender,
        *,
        batch_size: int = 20,
        interval_seconds: float = 1.0,
        max_backoff_seconds: float = 600.0,
    ) -> None:
        self._pool = pool
        self._sender = sender
        self._batch_size = batch_size
        self._interval = interval_seconds
        self._max_backoff = max_backoff_seconds

    async def run_once(self) -> int:
        """Deliver the mail that is due now; how many were delivered."""
        delivered = 0
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "select id, user_id, kind, to_address, subject, body, attempts "
                "from email_outbox where sent_at is null and next_attempt_at <= now() "
                "order by next_attempt_at limit $1 for update skip locked",
                self._batch_size,
            )
            for row in rows:
                message = OutgoingEmail(
                    to=row["to_address"],
                    subject=row["subject"],
                    body=row["body"] or "",
                    kind=EmailKind(row["kind"]),
                    user_id=row["user_id"],
                    id=row["id"],
                )
                try:
                    await self._sender.send(message)
                except Exception as error:  # any delivery failure is retried later
                    attempts = int(row["attempts"]) + 1
                    backoff = min(self._max_backoff, 2.0**attempts)
                    await connection.execute(
                        "update email_outbox set attempts = $2, last_error = $3, "
                        "next_attempt_at = now() + $4 where id = $1",
                        row["id"],
                        attempts,
                        f"{type(error).__name__}: {error}"[:500],
                        timedelta(seconds=backoff),
                    )
                    log.warning("email_delivery_failed", email_id=str(row["id"]), attempts=attempts)
                    continue
                await connection.execute(
                    "update email_outbox set sent_at = now(), body = null, "
                    "attempts = attempts + 1 where id = $1",
                    row["id"],
                )
                delivered += 1
                log.info("email_sent", email_id=str(row["id"]), kind=row["kind"])
        return delivered

    async def run(self) -> None:
        """Relay until cancelled."""
        await repeat(
            self.run_once, interval_seconds=self._interval, failure_event="email_relay_failed"
        )
