"""Failed sign-ins: counted per account and per client, slowed, then refused for a while."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from services.common.errors import ResourceExhausted
from services.user.domain import rules
from services.user.domain.model import ThrottlePolicy
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.ports import Sleep, UnitOfWork

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
