"""Roles: admins grant and withdraw them."""

from __future__ import annotations

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
)
from services.common.identity import Role
from services.user.domain import commands
from services.user.domain.model import (
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    locked_user,
    require_id,
)
from services.user.service_layer.ports import (
    UnitOfWork,
)

log = structlog.get_logger("user.roles")


async def set_user_roles(command: commands.SetUserRoles, *, uow: UnitOfWork, clock: Clock) -> User:
    """Replace a user's roles; an admin cannot take the admin role from themselves."""
    command.caller.require_any_role(Role.ADMIN)
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
        user = await locked_user(uow, user_id)
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
