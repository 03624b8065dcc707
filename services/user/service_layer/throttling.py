"""Failed sign-ins: counted per account and per client, slowed, then refused for a while."""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta

from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Violations,
)
from services.user.domain import rules
from services.user.domain.model import ThrottlePolicy, User
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.ports import PasswordHasher, Sleep, UnitOfWork

DEFAULT_THROTTLE = ThrottlePolicy(
    window=timedelta(minutes=15),
    account_max_failures=10,
    client_max_failures=50,
    lockout=timedelta(minutes=15),
    slowdown_after=3,
    slowdown_step=timedelta(milliseconds=200),
    slowdown_max=timedelta(seconds=3),
)


def account_key(email: str) -> str:
    """The throttle key of an account, by the (normalised) email it signs in with."""
    return f"account:{rules.normalise_email(email)[: rules.MAX_EMAIL_LENGTH]}"


def client_key(client_ip: str | None) -> str | None:
    """The throttle key of a client address, when it is known."""
    return f"client:{client_ip}" if client_ip else None


def throttle_keys(email: str, client_ip: str | None) -> list[str]:
    """The keys a sign-in attempt counts under: the account's first, then the client's."""
    client = client_key(client_ip)
    return [account_key(email)] if client is None else [account_key(email), client]


async def refuse_if_throttled(keys: list[str], *, uow: UnitOfWork, now: datetime) -> None:
    """RESOURCE_EXHAUSTED while any of the keys is blocked, with the seconds to wait."""
    async with uow:
        blocked_until = await uow.throttle.blocked_until(keys, now)
    if blocked_until is not None:
        wait = max(1, math.ceil((blocked_until - now).total_seconds()))
        raise ResourceExhausted(
            f"too many failed sign-ins; try again in {wait} seconds",
            reason=ErrorReason.TOO_MANY_FAILED_SIGN_INS,
            metadata={"retry_after_seconds": str(wait)},
        )


async def record_failed_sign_in(
    keys: list[str], *, uow: UnitOfWork, policy: ThrottlePolicy, now: datetime, sleep: Sleep
) -> None:
    """Count a failure for each key, then hold the answer as long as the policy says."""
    delay = timedelta(0)
    async with uow:
        for key in keys:
            maximum = (
                policy.account_max_failures
                if key.startswith("account:")
                else policy.client_max_failures
            )
            count = await uow.throttle.count_for_update(key, now)
            count = count.after_failure(
                now, window=policy.window, max_failures=maximum, lockout=policy.lockout
            )
            await uow.throttle.save(count)
            delay = max(delay, policy.delay_after(count.failures, maximum))
        await uow.commit()
    if delay:
        # Outside any transaction: a slowed answer holds no database connection.
        await sleep(delay.total_seconds())


async def verify_current_password(
    user_id: uuid.UUID,
    current_password: str,
    client_ip: str | None,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    sleep: Sleep,
    throttle: ThrottlePolicy,
    now: datetime,
) -> User:
    """The caller's account, once `current_password` proves the caller holds it.

    For acts an access token alone must not allow (a stolen one must not change the
    password or erase the account): wrong passwords count as failed sign-ins of the
    account, so the password cannot be guessed at leisure. The hash is checked outside
    any transaction; callers re-read the row under its lock before they write.
    """
    violations = Violations()
    violations.check(bool(current_password), "current_password", "is required")
    violations.check(
        len(current_password) <= rules.MAX_PASSWORD_LENGTH,
        "current_password",
        "is not your current password",
    )
    violations.raise_if_any()
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
    keys = throttle_keys(user.email, client_ip)
    await refuse_if_throttled(keys, uow=uow, now=now)
    if not await hasher.verify(user.password_hash, current_password):
        await record_failed_sign_in(keys, uow=uow, policy=throttle, now=now, sleep=sleep)
        raise InvalidArgument(
            [FieldViolation("current_password", "is not your current password")],
            reason=ErrorReason.WRONG_PASSWORD,
        )
    return user
