"""Handlers of the admin RPCs: search users, change roles, suspend and reactivate."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
)
from services.common.identity import Caller, Role
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.user.domain import commands
from services.user.domain.emails import suspended_email
from services.user.domain.model import User, UserState
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import require_id
from services.user.service_layer.ports import UnitOfWork

log = structlog.get_logger("user.admin")

MAX_QUERY_LENGTH = 100
MAX_REASON_LENGTH = 500


def _require_admin(caller: Caller) -> None:
    caller.require_any_role(Role.ADMIN)


async def list_users(command: commands.ListUsers, *, uow: UnitOfWork) -> tuple[list[User], str]:
    """One page of users matching the query and role, newest first."""
    _require_admin(command.caller)
    size = clamp_page_size(command.page_size, default=50, maximum=200)
    # Matching ignores case, so the page token does too.
    query = command.query.strip().lower()
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidArgument(
            [FieldViolation("query", f"must be at most {MAX_QUERY_LENGTH} characters")]
        )
    role = None if command.role is None else Role(command.role)
    position = decode_page_token(command.page_token)
    after = None
    if position is not None:
        try:
            # A token only continues the search it came from.
            if position["q"] != query or position["r"] != command.role:
                raise ValueError("token of another search")
            after = (datetime.fromisoformat(position["c"]), uuid.UUID(position["i"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                [FieldViolation("page_token", "is not a token this API issued for this search")]
            ) from None
    async with uow:
        users = await uow.users.search(query=query, role=role, after=after, limit=size + 1)
    token = ""
    if len(users) > size:
        users = users[:size]
        last = users[-1]
        token = encode_page_token(
            {"q": query, "r": command.role, "c": last.created_at.isoformat(), "i": str(last.id)}
        )
    return users, token


async def set_user_roles(command: commands.SetUserRoles, *, uow: UnitOfWork, clock: Clock) -> User:
    """Replace a user's roles; an admin cannot take the admin role from themselves."""
    _require_admin(command.caller)
    user_id = require_id(command.user_id, "user_id", "a user id (UUID)")
    if not command.roles:
        raise InvalidArgument([FieldViolation("roles", "must name at least one role")])
    if not all(r in Role.__members__.values() for r in command.roles):
        raise InvalidArgument([FieldViolation("roles", "must be CUSTOMER, SELLER or ADMIN")])
    roles = frozenset(Role(r) for r in command.roles)
    if str(user_id) == command.caller.user_id and Role.ADMIN not in roles:
        # Otherwise the last admin could leave the platform without one.
        raise FailedPrecondition(
            "you cannot remove your own admin role", reason=ErrorReason.CANNOT_DEMOTE_SELF
        )
    now = clock.now()
    async with uow:
        user = await uow.users.get_for_update(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        await uow.users.set_roles(user_id, roles, now)
        await uow.commit()
    user.roles, user.updated_at = roles, now
    log.info(
        "roles_changed",
        user_id=str(user_id),
        roles=sorted(r.value for r in roles),
        by=command.caller.user_id,
    )
    return user


async def suspend_user(command: commands.SuspendUser, *, uow: UnitOfWork, clock: Clock) -> User:
    """Suspend an account and end all its sessions; suspending twice changes nothing."""
    _require_admin(command.caller)
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
        user = await uow.users.get_for_update(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
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
    _require_admin(command.caller)
    user_id = require_id(command.user_id, "user_id", "a user id (UUID)")
    now = clock.now()
    async with uow:
        user = await uow.users.get_for_update(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        if user.state is UserState.ACTIVE:
            return user
        await uow.users.set_state(user_id, UserState.ACTIVE, by=None, reason=None, now=now)
        await uow.commit()
    user.state, user.updated_at = UserState.ACTIVE, now
    log.info("user_reactivated", user_id=str(user_id), by=command.caller.user_id)
    return user
