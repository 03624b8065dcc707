"""Suspension: admins suspend accounts (ending their sessions) and lift it."""

from __future__ import annotations

import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from services.common.identity import Role
from services.user.domain import commands
from services.user.domain.emails import (
    suspended_email,
)
from services.user.domain.model import (
    User,
    UserState,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    locked_user,
    require_id,
)
from services.user.service_layer.ports import (
    UnitOfWork,
)

log = structlog.get_logger("user.suspension")

MAX_REASON_LENGTH = 500


async def suspend_user(command: commands.SuspendUser, *, uow: UnitOfWork, clock: Clock) -> User:
    """Suspend an account and end all its sessions; suspending twice changes nothing."""
    command.caller.require_any_role(Role.ADMIN)
    user_id = require_id(command.user_id, "user_id", "a user id (UUID)")
    reason = command.reason.strip()
    if not reason:
        raise InvalidArgument([FieldViolation("reason", "is required for the audit trail")])
    if len(reason) > MAX_REASON_LENGTH:
        raise InvalidArgument(
            [FieldViolation("reason", f"must be at most {MAX_REASON_LENGTH} characters")]
        )
    if str(user_id) == command.caller.user_id:
        raise FailedPrecondition(
            "you cannot suspend yourself", reason=ErrorReason.CANNOT_SUSPEND_SELF
        )
    now = clock.now()
    async with uow:
        user = await locked_user(uow, user_id)
        if user.state is UserState.SUSPENDED:
            return user
        await uow.users.set_state(
            user_id,
            UserState.SUSPENDED,
            by=uuid.UUID(command.caller.user_id),
            reason=reason,
            now=now,
        )
        ended = await uow.sessions.revoke_all(user_id, "suspended", now)
        await uow.outbox.add(suspended_email(to=user.email, user_id=user.id))
        await uow.commit()
    user.state, user.updated_at = UserState.SUSPENDED, now
    log.info("user_suspended", user_id=str(user_id), by=command.caller.user_id, sessions=ended)
    return user


async def reactivate_user(
    command: commands.ReactivateUser, *, uow: UnitOfWork, clock: Clock
) -> User:
    """Lift a suspension; reactivating an active account changes nothing."""
    command.caller.require_any_role(Role.ADMIN)
    user_id = require_id(command.user_id, "user_id", "a user id (UUID)")
    now = clock.now()
    async with uow:
        user = await locked_user(uow, user_id)
        if user.state is UserState.ACTIVE:
            return user
        await uow.users.set_state(user_id, UserState.ACTIVE, by=None, reason=None, now=now)
        await uow.commit()
    user.state, user.updated_at = UserState.ACTIVE, now
    log.info("user_reactivated", user_id=str(user_id), by=command.caller.user_id)
    return user
