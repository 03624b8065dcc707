"""The checks every use case makes first: ids and tokens in shape, and who may act for whom."""

from __future__ import annotations

import uuid

from services.common.errors import FieldViolation, InvalidArgument, NotFound, PermissionDenied
from services.common.identity import Caller
from services.user.domain.model import User, hash_token
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.ports import UnitOfWork

ME = "me"
# Tokens this service issues are 43 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH = 256


def parse_uuid(value: str) -> uuid.UUID | None:
    """The UUID `value` spells, or None."""
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def require_id(value: str, field: str, what: str = "an id (UUID)") -> uuid.UUID:
    """The UUID in `field`, or INVALID_ARGUMENT naming the field."""
    parsed = parse_uuid(value.strip())
    if parsed is None:
        problem = f"must be {what}" if value.strip() else "is required"
        raise InvalidArgument([FieldViolation(field, problem)])
    return parsed


def resolve_owner(
    caller: Caller, requested: str, *, field: str = "user_id", admin_may: bool = False
) -> uuid.UUID:
    """The user a request names ("me" is the caller), if the caller may act for them.

    Permission is checked before anything is looked up, so a caller probing other ids
    learns nothing about which of them exist.
    """
    requested = requested.strip()
    if requested == ME:
        requested = caller.user_id
    user_id = require_id(requested, field, "a user id (UUID) or 'me'")
    if str(user_id) != caller.user_id and not (admin_may and caller.is_admin):
        raise PermissionDenied("you may only act on your own account", reason=ErrorReason.NOT_OWNER)
    return user_id


def require_token_hash(token: str, field: str) -> str:
    """The stored hash of a presented token, or INVALID_ARGUMENT when it cannot be one."""
    token = token.strip()
    if not token:
        raise InvalidArgument([FieldViolation(field, "is required")])
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument([FieldViolation(field, "is not a token this service issued")])
    return hash_token(token)


async def locked_user(uow: UnitOfWork, user_id: uuid.UUID) -> User:
    """The user, row-locked in the open transaction; NOT_FOUND when there is none."""
    user = await uow.users.get_for_update(user_id)
    if user is None:
        raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
    return user
