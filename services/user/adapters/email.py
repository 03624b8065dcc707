"""Email delivery (an .eml mailbox folder, SMTP) and the relay that drains the outbox."""

from __future__ import annotations

import asyncio
import os
import smtplib
import ssl
import time
import uuid
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import structlog

from services.common.clock import Clock
from services.common.notify import repeat_on_notify
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


EMAIL_OUTBOX_CHANNEL = "email_outbox"  # NOTIFYed by a trigger on every insert


class EmailRelay:
    """Delivers due outbox mail; run_once() for tests, run() as the background loop.

    No pooled connection or row lock is held while a mail is sent. A pass claims a batch
    with a lease in one short statement (`claimed_until`, `claimed_by`, committed at
    once, FOR UPDATE SKIP LOCKED so relays in parallel take different rows), sends each
    mail with no connection held, and marks it sent in another short statement. A mail
    whose lease is about to lapse is left for the next claim rather than sent late.

    Delivery is at least once: a relay that crashes (or loses the database) between a
    send and its mark leaves a lease that lapses after `lease_seconds`, and the mail is
    sent again; that window is the only source of duplicates. A failed delivery is
    retried with exponential backoff.

    Waking: given `listen_url`, the relay LISTENs on a dedicated connection for the
    NOTIFY an insert into the outbox sends, and runs at once; it still runs every
    `fallback_seconds` (mail due after a backoff, a lost notification), and every
    `interval_seconds` while the listening connection is down or without `listen_url`.
    """

    def __init__(
        self,
        pool: Pool,
        sender: EmailSender,
        *,
        batch_size: int = 20,
        interval_seconds: float = 1.0,
        max_backoff_seconds: float = 600.0,
        lease_seconds: float = 300.0,
        listen_url: str | None = None,
        fallback_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._sender = sender
        self._batch_size = batch_size
        self._interval = interval_seconds
        self._max_backoff = max_backoff_seconds
        self._lease = lease_seconds
        self._listen_url = listen_url
        self._fallback = fallback_seconds

    async def run_once(self) -> int:
        """Deliver the mail that is due now; how many were delivered."""
        owner = uuid.uuid4()  # this claim's token: a later claim of the same rows differs
        # Measured before the claim, so the local deadline never outlives the lease.
        deadline = time.monotonic() + self._lease
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(_CLAIM, self._batch_size, self._lease, owner)
        delivered = 0
        for row in sorted(rows, key=lambda r: (r["next_attempt_at"], r["id"])):
            # Margin for one send: a mail started this late could outlive the lease and
            # go out twice, once here and once from the relay that claims it next.
            if time.monotonic() > deadline - min(self._lease / 2, 30.0):
                await self._release([row["id"] for row in rows], owner)
                break
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
                async with self._pool.acquire() as connection:
                    await connection.execute(
                        _FAILED,
                        row["id"],
                        owner,
                        attempts,
                        f"{type(error).__name__}: {error}"[:500],
                        timedelta(seconds=backoff),
                    )
                log.warning("email_delivery_failed", email_id=str(row["id"]), attempts=attempts)
                continue
            async with self._pool.acquire() as connection:
                await connection.execute(_SENT, row["id"])
            delivered += 1
            log.info("email_sent", email_id=str(row["id"]), kind=row["kind"])
        return delivered

    async def _release(self, ids: list[uuid.UUID], owner: uuid.UUID) -> None:
        """Hand unsent claimed rows back at once rather than when their lease lapses."""
        async with self._pool.acquire() as connection:
            await connection.execute(_RELEASE, ids, owner)

    async def run(self) -> None:
        """Relay until cancelled."""
        await repeat_on_notify(
            self.run_once,
            listen_url=self._listen_url,
            channel=EMAIL_OUTBOX_CHANNEL,
            failure_event="email_relay_failed",
            wait_seconds=lambda listening: self._fallback if listening else self._interval,
            again_at_once=lambda delivered: delivered >= self._batch_size,
        )


# One statement, so its row locks last only as long as it runs (autocommit).
_CLAIM = """
    update email_outbox set claimed_until = now() + make_interval(secs => $2), claimed_by = $3
    where id in (
        select id from email_outbox
        where sent_at is null and next_attempt_at <= now()
          and (claimed_until is null or claimed_until < now())
        order by next_attempt_at
        limit $1
        for update skip locked
    )
    returning id, user_id, kind, to_address, subject, body, attempts, next_attempt_at
"""
# Whoever holds the lease now, the mail did go out: mark it whatever the owner.
_SENT = """
    update email_outbox set sent_at = now(), body = null, attempts = attempts + 1,
                            claimed_until = null, claimed_by = null
    where id = $1 and sent_at is null
"""
# A failure only counts against our own claim: after a lapse another relay owns the row.
_FAILED = """
    update email_outbox set attempts = $3, last_error = $4, next_attempt_at = now() + $5,
                            claimed_until = null, claimed_by = null
    where id = $1 and claimed_by = $2 and sent_at is null
"""
_RELEASE = """
    update email_outbox set claimed_until = null, claimed_by = null
    where id = any($1::uuid[]) and claimed_by = $2 and sent_at is null
"""
