"""Email verification: the mailed link, using it, and asking for a new one."""

from __future__ import annotations

import secrets
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    ResourceExhausted,
)
from services.common.reasons import ErrorReason as CommonReason
from services.user.domain import commands
from services.user.domain.emails import (
    MailPolicy,
    OutgoingEmail,
    verification_email,
)
from services.user.domain.model import (
    ActionToken,
    TokenPurpose,
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    locked_user,
    require_id,
    require_token_hash,
)
from services.user.service_layer.ports import (
    UnitOfWork,
)

log = structlog.get_logger("user.email_verification")

_BAD_MAILED_TOKEN = "is invalid, already used or expired; ask for a new one"


def new_verification(
    user: User, policy: MailPolicy, now: datetime
) -> tuple[ActionToken, OutgoingEmail]:
    """A verification token for the user's email and the mail that carries it."""
    raw = secrets.token_urlsafe(32)
    token = ActionToken.issue(
        user_id=user.id,
        purpose=TokenPurpose.VERIFY_EMAIL,
        raw_token=raw,
        email=user.email,
        ttl=policy.verification_ttl,
        now=now,
    )
    mail = verification_email(
        to=user.email,
        user_id=user.id,
        token=raw,
        base_url=policy.base_url,
        ttl_hours=max(1, int(policy.verification_ttl.total_seconds() // 3600)),
    )
    return token, mail


async def verify_email(command: commands.VerifyEmail, *, uow: UnitOfWork, clock: Clock) -> User:
    """Use up a verification token and mark the address it was sent to verified."""
    token_hash = require_token_hash(command.token, "token")
    now = clock.now()
    async with uow:
        token = await uow.action_tokens.consume(token_hash, TokenPurpose.VERIFY_EMAIL, now)
        if token is None:
            raise InvalidArgument(
                [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=CommonReason.TOKEN_INVALID
            )
        await uow.users.mark_email_verified(token.user_id, token.email, now)
        user = await uow.users.get(token.user_id)
        await uow.commit()
    if user is None:  # the account was deleted; its tokens went with it (cascade)
        raise InvalidArgument(
            [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=CommonReason.TOKEN_INVALID
        )
    log.info("email_verified", user_id=str(user.id), verified=user.email_verified)
    return user


async def resend_verification(
    command: commands.CallerOnly, *, uow: UnitOfWork, mail: MailPolicy, clock: Clock
) -> None:
    """Mail the caller a new verification link; earlier ones stop working."""
    user_id = require_id(command.caller.user_id, "user_id")
    now = clock.now()
    async with uow:
        user = await locked_user(uow, user_id)
        if user.email_verified:
            raise FailedPrecondition(
                "your email address is already verified", reason=ErrorReason.EMAIL_ALREADY_VERIFIED
            )
        latest = await uow.action_tokens.latest_issue_time(user.id, TokenPurpose.VERIFY_EMAIL)
        if latest is not None and now - latest < mail.cooldown:
            wait = int((mail.cooldown - (now - latest)).total_seconds()) + 1
            raise ResourceExhausted(
                f"a verification mail was just sent; ask again in {wait} seconds",
                reason=ErrorReason.MAIL_TOO_SOON,
                metadata={"retry_after_seconds": str(wait)},
            )
        await uow.action_tokens.invalidate(user.id, TokenPurpose.VERIFY_EMAIL, now)
        token, message = new_verification(user, mail, now)
        await uow.action_tokens.add(token)
        await uow.outbox.add(message)
        await uow.commit()
    log.info("verification_resent", user_id=str(user_id))
