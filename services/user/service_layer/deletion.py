"""Account deletion: the owner proves their password, personal data goes, an event follows."""

from __future__ import annotations

import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import NotFound
from services.user.domain import commands
from services.user.domain.model import AccountDeleted, ThrottlePolicy
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import require_id
from services.user.service_layer.ports import PasswordHasher, Sleep, UnitOfWork
from services.user.service_layer.throttling import (
    DEFAULT_THROTTLE,
    account_key,
    verify_current_password,
)

log = structlog.get_logger("user.deletion")


async def delete_account(
    command: commands.DeleteAccount,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    sleep: Sleep,
    throttle: ThrottlePolicy = DEFAULT_THROTTLE,
    clock: Clock,
) -> None:
    """Delete the caller's account: erase its personal data and announce user.deleted.

    An access token alone is not enough (a stolen one must not erase an account): the
    current password is checked, and wrong ones count as failed sign-ins of the account
    like ChangePassword's. The tombstone, the erasure and the event commit together, so
    the other services hear of every deletion (the outbox delivers at least once) and of
    none that did not happen.
    """
    user_id = require_id(command.caller.user_id, "user_id")
    now = clock.now()
    # Hashing is slow: it runs outside the transaction, and the row is re-read under
    # its lock below, so a concurrent deletion makes this one NOT_FOUND.
    await verify_current_password(
        user_id,
        command.current_password,
        command.client_ip,
        uow=uow,
        hasher=hasher,
        sleep=sleep,
        throttle=throttle,
        now=now,
    )
    async with uow:
        current = await uow.users.get_for_update(user_id)
        if current is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        await uow.users.erase(current, current.tombstone(now), now)
        # The failed sign-in counter is keyed by the email: it goes with the account.
        await uow.throttle.clear(account_key(current.email))
        await uow.outbox.add_event(
            AccountDeleted(event_id=uuid.uuid4(), user_id=current.id, occurred_at=now)
        )
        await uow.commit()
    log.info("account_deleted", user_id=str(user_id))
