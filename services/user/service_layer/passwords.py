"""Passwords: change one, ask for a reset link, reset with it."""

from __future__ import annotations

import secrets

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FieldViolation,
    InvalidArgument,
)
from services.common.reasons import ErrorReason as CommonReason
from services.user.domain import commands, rules
from services.user.domain.emails import (
    MailPolicy,
    password_changed_email,
    reset_email,
)
from services.user.domain.model import (
    ActionToken,
    ThrottlePolicy,
    TokenPurpose,
    User,
)
from services.user.service_layer.access import (
    parse_uuid,
    require_id,
    require_token_hash,
)
from services.user.service_layer.ports import (
    PasswordHasher,
    Sleep,
    UnitOfWork,
)
from services.user.service_layer.throttling import (
    DEFAULT_THROTTLE,
    account_key,
    verify_current_password,
)

log = structlog.get_logger("user.passwords")

_BAD_MAILED_TOKEN = "is invalid, already used or expired; ask for a new one"


async def change_password(
    command: commands.ChangePassword,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    sleep: Sleep,
    throttle: ThrottlePolicy = DEFAULT_THROTTLE,
    clock: Clock,
) -> None:
    """Replace the caller's password and end their other sessions.

    Wrong current passwords count as failed sign-ins of the account, so a stolen
    access token cannot be used to guess the password at leisure.
    """
    user_id = require_id(command.caller.user_id, "user_id")
    now = clock.now()
    user = await verify_current_password(
        user_id,
        command.current_password,
        command.client_ip,
        uow=uow,
        hasher=hasher,
        sleep=sleep,
        throttle=throttle,
        now=now,
    )
    _check_new_password(command.new_password, user, current=command.current_password)
    new_hash = await hasher.hash(command.new_password)
    keep = parse_uuid(command.caller.session_id)
    async with uow:
        await uow.users.set_password_hash(user.id, new_hash, now)
        ended = await uow.sessions.revoke_all(user.id, "password_change", now, keep=keep)
        await uow.outbox.add(password_changed_email(to=user.email, user_id=user.id, how="changed"))
        await uow.commit()
    log.info("password_changed", user_id=str(user.id), other_sessions_ended=ended)


def _check_new_password(password: str, user: User, *, current: str | None = None) -> None:
    problem = rules.password_problem(password, email=user.email, username=user.username)
    if problem is None and current is not None and password == current:
        problem = "must differ from the current password"
    if problem is not None:
        raise InvalidArgument([FieldViolation("new_password", problem)])


async def request_password_reset(
    command: commands.RequestPasswordReset, *, uow: UnitOfWork, mail: MailPolicy, clock: Clock
) -> None:
    """Mail a reset token when the address has an active account; answer the same anyway."""
    email = rules.normalise_email(command.email)
    problem = rules.email_problem(email)
    if problem is not None:
        # Only the shape is judged: a well-formed unknown address passes like a known one.
        raise InvalidArgument([FieldViolation("email", problem)])
    now = clock.now()
    async with uow:
        user = await uow.users.get_by_email(email)
        if user is None or not user.can_sign_in:
            return
        latest = await uow.action_tokens.latest_issue_time(user.id, TokenPurpose.RESET_PASSWORD)
        if latest is not None and now - latest < mail.cooldown:
            return  # silently: a flood of requests must not flood the inbox
        raw = secrets.token_urlsafe(32)
        await uow.action_tokens.invalidate(user.id, TokenPurpose.RESET_PASSWORD, now)
        await uow.action_tokens.add(
            ActionToken.issue(
                user_id=user.id,
                purpose=TokenPurpose.RESET_PASSWORD,
                raw_token=raw,
                email=user.email,
                ttl=mail.reset_ttl,
                now=now,
            )
        )
        await uow.outbox.add(
            reset_email(
                to=user.email,
                user_id=user.id,
                token=raw,
                base_url=mail.base_url,
                ttl_minutes=max(1, int(mail.reset_ttl.total_seconds() // 60)),
            )
        )
        await uow.commit()
    log.info("password_reset_requested", user_id=str(user.id))


async def reset_password(
    command: commands.ResetPassword, *, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock
) -> None:
    """Set a new password with a reset token; ends every session and lifts sign-in blocks."""
    token_hash = require_token_hash(command.token, "token")
    problem = rules.password_problem(command.new_password)
    if problem is not None:
        raise InvalidArgument([FieldViolation("new_password", problem)])
    new_hash = await hasher.hash(command.new_password)
    now = clock.now()
    async with uow:
        token = await uow.action_tokens.consume(token_hash, TokenPurpose.RESET_PASSWORD, now)
        user = None if token is None else await uow.users.get_for_update(token.user_id)
        if token is None or user is None or not user.can_sign_in:
            raise InvalidArgument(
                [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=CommonReason.TOKEN_INVALID
            )
        # Raising here rolls the consumption back: a refused password keeps the token.
        _check_new_password(command.new_password, user)
        await uow.users.set_password_hash(user.id, new_hash, now)
        await uow.action_tokens.invalidate(user.id, TokenPurpose.RESET_PASSWORD, now)
        ended = await uow.sessions.revoke_all(user.id, "password_reset", now)
        # The owner of the mailbox proved it: lift the block an attacker may have caused.
        await uow.throttle.clear(account_key(user.email))
        if rules.normalise_email(token.email) == rules.normalise_email(user.email):
            await uow.users.mark_email_verified(user.id, user.email, now)
        await uow.outbox.add(password_changed_email(to=user.email, user_id=user.id, how="reset"))
        await uow.commit()
    log.info("password_reset", user_id=str(user.id), sessions_ended=ended)
