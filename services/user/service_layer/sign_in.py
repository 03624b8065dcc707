"""Sign-in: credentials checked in constant shape, throttled, a session opened."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Unauthenticated,
    Violations,
)
from services.user.domain import commands, rules
from services.user.domain.model import (
    Session,
    ThrottlePolicy,
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.ports import (
    PasswordHasher,
    Sleep,
    TokenIssuer,
    UnitOfWork,
)
from services.user.service_layer.throttling import (
    DEFAULT_THROTTLE,
    record_failed_sign_in,
    refuse_if_throttled,
    throttle_keys,
)

log = structlog.get_logger("user.sign_in")

# One message for unknown emails, wrong passwords and suspended accounts, so the answer
# does not tell an attacker which addresses have accounts.
INVALID_CREDENTIALS = "invalid email or password"


class Authenticator:
    """Verifies credentials in constant shape: unknown emails cost one hash check too."""

    def __init__(self, hasher: PasswordHasher, dummy_hash: str) -> None:
        self._hasher = hasher
        self._dummy_hash = dummy_hash

    @classmethod
    async def create(cls, hasher: PasswordHasher) -> Authenticator:
        """Build one with a dummy hash made with the hasher's current parameters."""
        return cls(hasher, await hasher.hash(secrets.token_urlsafe(16)))

    async def check(self, user: User | None, password: str) -> User:
        """The user if `password` is theirs and they may sign in; else UNAUTHENTICATED."""
        if user is None:
            # Same work as a real check, so response times do not reveal unknown emails.
            await self._hasher.verify(self._dummy_hash, password)
            raise Unauthenticated(INVALID_CREDENTIALS, reason=ErrorReason.INVALID_CREDENTIALS)
        if not await self._hasher.verify(user.password_hash, password) or not user.can_sign_in:
            raise Unauthenticated(INVALID_CREDENTIALS, reason=ErrorReason.INVALID_CREDENTIALS)
        return user


async def login(
    command: commands.Login,
    *,
    uow: UnitOfWork,
    authenticator: Authenticator,
    issuer: TokenIssuer,
    refresh_ttl: timedelta,
    hasher: PasswordHasher | None = None,
    throttle: ThrottlePolicy = DEFAULT_THROTTLE,
    sleep: Sleep = asyncio.sleep,
    clock: Clock,
) -> commands.IssuedTokens:
    """Check the credentials, open a session and issue an access and a refresh token.

    Failed attempts are counted per account and per client: slowed, then refused for a
    while. A successful sign-in clears the account's count and rehashes the password
    when the argon2 parameters changed since it was hashed.
    """
    violations = Violations()
    violations.check(bool(command.email.strip()), "email", "is required")
    violations.check(
        len(command.email) <= rules.MAX_EMAIL_LENGTH * 2,
        "email",
        f"must be at most {rules.MAX_EMAIL_LENGTH} characters",
    )
    violations.check(bool(command.password), "password", "is required")
    violations.check(
        len(command.password) <= rules.MAX_PASSWORD_LENGTH,
        "password",
        f"must be at most {rules.MAX_PASSWORD_LENGTH} characters",
    )
    violations.raise_if_any()

    email = rules.normalise_email(command.email)
    keys = throttle_keys(email, command.client_ip)
    now = clock.now()
    await refuse_if_throttled(keys, uow=uow, now=now)

    async with uow:
        found = await uow.users.get_by_email(email)
    # The hash check runs outside any transaction, so no connection waits on argon2.
    try:
        user = await authenticator.check(found, command.password)
    except Unauthenticated:
        await record_failed_sign_in(keys, uow=uow, policy=throttle, now=now, sleep=sleep)
        raise
    new_hash = None
    if hasher is not None and hasher.needs_rehash(user.password_hash):
        new_hash = await hasher.hash(command.password)

    refresh_token = secrets.token_urlsafe(32)
    session = Session.start(
        user_id=user.id,
        user_agent=command.user_agent[:512],
        client_ip=command.client_ip,
        refresh_token=refresh_token,
        refresh_ttl=refresh_ttl,
        now=clock.now(),
    )
    async with uow:
        await uow.sessions.add(session)
        await uow.throttle.clear(keys[0])
        if new_hash is not None:
            await uow.users.set_password_hash(user.id, new_hash, session.created_at)
        await uow.commit()
    if new_hash is not None:
        log.info("password_rehashed", user_id=str(user.id))
    log.info("user_signed_in", user_id=str(user.id), session_id=str(session.id))
    return commands.IssuedTokens(
        access_token=issuer.issue(user, session.id, session.created_at),
        refresh_token=refresh_token,
        expires_in=issuer.ttl_seconds,
    )
