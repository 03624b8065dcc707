"""Handlers of sessions, email verification and passwords: refresh, logout, resets."""

from __future__ import annotations

import secrets
import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unauthenticated,
    Violations,
)
from services.user.domain import commands, rules
from services.user.domain.emails import password_changed_email, reset_email
from services.user.domain.model import (
    ActionToken,
    RefreshToken,
    SessionView,
    ThrottlePolicy,
    TokenPurpose,
    User,
    hash_token,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import parse_uuid, require_id
from services.user.service_layer.handlers import (
    DEFAULT_THROTTLE,
    MailPolicy,
    Sleep,
    account_key,
    client_key,
    new_verification,
    record_failed_sign_in,
    refuse_if_throttled,
)
from services.user.service_layer.ports import PasswordHasher, TokenIssuer, UnitOfWork

log = structlog.get_logger("user.auth")

# Tokens this service issues are 43 characters; anything far longer is not one of ours.
MAX_TOKEN_LENGTH = 256
_SIGN_IN_AGAIN = "the refresh token is invalid or expired; sign in again"
_BAD_MAILED_TOKEN = "is invalid, already used or expired; ask for a new one"


def _token_hash(token: str, field: str) -> str:
    token = token.strip()
    if not token:
        raise InvalidArgument([FieldViolation(field, "is required")])
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument([FieldViolation(field, "is not a token this service issued")])
    return hash_token(token)


async def refresh(
    command: commands.RefreshTokens, *, uow: UnitOfWork, issuer: TokenIssuer, clock: Clock
) -> commands.IssuedTokens:
    """Rotate a refresh token; reuse of a rotated one ends the whole session.

    The new token keeps the session's original expiry: a session lives at most the
    refresh lifetime after its sign-in, however often it refreshes.
    """
    token_hash = _token_hash(command.refresh_token, "refresh_token")
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
        access_token=issuer.issue(user, old.family_id),
        refresh_token=raw,
        expires_in=issuer.ttl_seconds,
    )


async def logout(command: commands.Logout, *, uow: UnitOfWork, clock: Clock) -> None:
    """End the token's session; unknown or already ended sessions answer the same."""
    token_hash = _token_hash(command.refresh_token, "refresh_token")
    async with uow:
        state = await uow.sessions.find_token(token_hash)
        if state is not None:
            await uow.sessions.revoke(state.token.family_id, "logout", clock.now())
            await uow.commit()
            log.info("user_signed_out", session_id=str(state.token.family_id))


def _caller_id(command: commands.CallerOnly | commands.ChangePassword) -> uuid.UUID:
    return require_id(command.caller.user_id, "user_id")


async def logout_all(command: commands.CallerOnly, *, uow: UnitOfWork, clock: Clock) -> int:
    """End every session of the caller; how many ended."""
    user_id = _caller_id(command)
    async with uow:
        ended = await uow.sessions.revoke_all(user_id, "logout_all", clock.now())
        await uow.commit()
    log.info("user_signed_out_everywhere", user_id=str(user_id), sessions=ended)
    return ended


async def list_sessions(
    command: commands.CallerOnly, *, uow: UnitOfWork, clock: Clock
) -> list[tuple[SessionView, bool]]:
    """The caller's live sessions, newest first, each with whether it is the calling one."""
    user_id = _caller_id(command)
    current = parse_uuid(command.caller.session_id)
    async with uow:
        sessions = await uow.sessions.list_live(user_id, clock.now())
    return [(s, s.id == current) for s in sessions]


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
    user_id = _caller_id(command)
    violations = Violations()
    violations.check(bool(command.current_password), "current_password", "is required")
    violations.check(
        len(command.current_password) <= rules.MAX_PASSWORD_LENGTH,
        "current_password",
        "is not your current password",
    )
    violations.raise_if_any()
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
    keys = [account_key(user.email)]
    client = client_key(command.client_ip)
    if client is not None:
        keys.append(client)
    now = clock.now()
    await refuse_if_throttled(keys, uow=uow, now=now)
    if not await hasher.verify(user.password_hash, command.current_password):
        await record_failed_sign_in(keys, uow=uow, policy=throttle, now=now, sleep=sleep)
        raise InvalidArgument(
            [FieldViolation("current_password", "is not your current password")],
            reason=ErrorReason.WRONG_PASSWORD,
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


async def verify_email(command: commands.VerifyEmail, *, uow: UnitOfWork, clock: Clock) -> User:
    """Use up a verification token and mark the address it was sent to verified."""
    token_hash = _token_hash(command.token, "token")
    now = clock.now()
    async with uow:
        token = await uow.action_tokens.consume(token_hash, TokenPurpose.VERIFY_EMAIL, now)
        if token is None:
            raise InvalidArgument(
                [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=ErrorReason.TOKEN_INVALID
            )
        await uow.users.mark_email_verified(token.user_id, token.email, now)
        user = await uow.users.get(token.user_id)
        await uow.commit()
    if user is None:  # the account was deleted; its tokens went with it (cascade)
        raise InvalidArgument(
            [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=ErrorReason.TOKEN_INVALID
        )
    log.info("email_verified", user_id=str(user.id), verified=user.email_verified)
    return user


async def resend_verification(
    command: commands.CallerOnly, *, uow: UnitOfWork, mail: MailPolicy, clock: Clock
) -> None:
    """Mail the caller a new verification link; earlier ones stop working."""
    user_id = _caller_id(command)
    now = clock.now()
    async with uow:
        user = await uow.users.get_for_update(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
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
    token_hash = _token_hash(command.token, "token")
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
                [FieldViolation("token", _BAD_MAILED_TOKEN)], reason=ErrorReason.TOKEN_INVALID
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
