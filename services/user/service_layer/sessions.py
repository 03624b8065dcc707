"""Sessions: refresh-token rotation, signing out, and listing the caller's sessions."""

from __future__ import annotations

import secrets
import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Unauthenticated,
)
from services.user.domain import commands
from services.user.domain.model import (
    RefreshToken,
    SessionView,
    hash_token,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    parse_uuid,
    require_id,
    require_token_hash,
)
from services.user.service_layer.ports import (
    TokenIssuer,
    UnitOfWork,
)

log = structlog.get_logger("user.sessions")

_SIGN_IN_AGAIN = "the refresh token is invalid or expired; sign in again"


async def refresh(
    command: commands.RefreshTokens, *, uow: UnitOfWork, issuer: TokenIssuer, clock: Clock
) -> commands.IssuedTokens:
    """Rotate a refresh token; reuse of a rotated one ends the whole session.

    The new token keeps the session's original expiry: a session lives at most the
    refresh lifetime after its sign-in, however often it refreshes.
    """
    token_hash = require_token_hash(command.refresh_token, "refresh_token")
    now = clock.now()
    async with uow:
        state = await uow.sessions.find_token(token_hash)
        if state is None:
            raise Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.REFRESH_TOKEN_INVALID)
        old = state.token
        if state.session_revoked or old.revoked_at is not None:
            raise Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.REFRESH_TOKEN_REVOKED)
        if old.replaced_by is not None:
            # A rotated token came back: either it was stolen or its successor was. The
            # session cannot tell thief from owner, so it ends for both.
            await uow.sessions.revoke(old.family_id, "token_reuse", now)
            await uow.commit()
            log.warning(
                "refresh_token_reused", user_id=str(old.user_id), session_id=str(old.family_id)
            )
            raise Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.REFRESH_TOKEN_REUSED)
        if old.expires_at <= now:
            raise Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.REFRESH_TOKEN_EXPIRED)
        user = await uow.users.get(old.user_id)
        if user is None or not user.can_sign_in:
            await uow.sessions.revoke(old.family_id, "suspended", now)
            await uow.commit()
            raise Unauthenticated(_SIGN_IN_AGAIN, reason=ErrorReason.REFRESH_TOKEN_REVOKED)
        raw = secrets.token_urlsafe(32)
        new = RefreshToken(
            id=uuid.uuid4(),
            family_id=old.family_id,
            user_id=old.user_id,
            token_hash=hash_token(raw),
            created_at=now,
            expires_at=old.expires_at,
        )
        await uow.sessions.rotate(old, new, now)
        await uow.commit()
    return commands.IssuedTokens(
        # Roles and verification are read afresh, so a refresh picks up their changes.
        access_token=issuer.issue(user, old.family_id, now),
        refresh_token=raw,
        expires_in=issuer.ttl_seconds,
    )


async def logout(command: commands.Logout, *, uow: UnitOfWork, clock: Clock) -> None:
    """End the token's session; unknown or already ended sessions answer the same."""
    token_hash = require_token_hash(command.refresh_token, "refresh_token")
    async with uow:
        state = await uow.sessions.find_token(token_hash)
        if state is not None:
            await uow.sessions.revoke(state.token.family_id, "logout", clock.now())
            await uow.commit()
            log.info("user_signed_out", session_id=str(state.token.family_id))


async def logout_all(command: commands.CallerOnly, *, uow: UnitOfWork, clock: Clock) -> int:
    """End every session of the caller; how many ended."""
    user_id = require_id(command.caller.user_id, "user_id")
    async with uow:
        ended = await uow.sessions.revoke_all(user_id, "logout_all", clock.now())
        await uow.commit()
    log.info("user_signed_out_everywhere", user_id=str(user_id), sessions=ended)
    return ended


async def list_sessions(
    command: commands.CallerOnly, *, uow: UnitOfWork, clock: Clock
) -> list[tuple[SessionView, bool]]:
    """The caller's live sessions, newest first, each with whether it is the calling one."""
    user_id = require_id(command.caller.user_id, "user_id")
    current = parse_uuid(command.caller.session_id)
    async with uow:
        sessions = await uow.sessions.list_live(user_id, clock.now())
    return [(s, s.id == current) for s in sessions]
