"""One handler per use case: validate the command, run it in a unit of work, return domain objects."""

from __future__ import annotations

import asyncio
import math
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Violations,
)
from services.common.identity import Role
from services.user.domain import commands, rules
from services.user.domain.emails import (
    EmailKind,
    OutgoingEmail,
    account_exists_email,
    verification_email,
)
from services.user.domain.model import (
    ActionToken,
    DuplicateUser,
    Session,
    ThrottlePolicy,
    TokenPurpose,
    UniqueField,
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.ports import PasswordHasher, TokenIssuer, UnitOfWork

log = structlog.get_logger("user.handlers")

ME = "me"
# One message for unknown emails, wrong passwords and suspended accounts, so the answer
# does not tell an attacker which addresses have accounts.
INVALID_CREDENTIALS = "invalid email or password"


@dataclass(frozen=True)
class MailPolicy:
    """Lifetimes and limits of the mailed tokens, and where their links point."""

    base_url: str = "http://localhost:8080"
    verification_ttl: timedelta = timedelta(hours=48)
    reset_ttl: timedelta = timedelta(minutes=30)
    cooldown: timedelta = timedelta(seconds=60)


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


async def create_user(
    command: commands.CreateUser,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    mail: MailPolicy | None = None,
    clock: Clock,
) -> User:
    """Register a customer and mail a verification link, in one transaction.

    A taken email gets the same answer as a free one, so the form does not reveal who
    has an account: nothing is stored, and the owner is mailed about the attempt
    instead. Usernames are public handles, so a taken one is ALREADY_EXISTS.

    Both paths must look alike from outside, in every later answer too:
    - same work: one argon2 hash each, before any transaction, so timing is alike;
    - same answer: the registered user's shape, whatever happened to the email;
    - same effect on the username: a sign-up with a taken email reserves its username
      exactly as a new account would hold it, so a second sign-up with that username is
      ALREADY_EXISTS either way and tells nothing about the first email;
    - a taken username is ALREADY_EXISTS on both paths, decided by the username alone,
      before the email is looked at.
    """
    mail = mail or MailPolicy()
    email = rules.normalise_email(command.email)
    display_name = command.display_name.strip()
    violations = Violations()
    for field, problem in (
        ("email", rules.email_problem(email)),
        ("username", rules.username_problem(command.username)),
        (
            "password",
            rules.password_problem(command.password, email=email, username=command.username),
        ),
        ("display_name", rules.display_name_problem(display_name)),
    ):
        if problem is not None:
            violations.add(field, problem)
    violations.raise_if_any()

    # Hash before the transaction opens: a connection is not held for the ~100 ms of
    # argon2. Taken emails pay the same hash, so timing tells nothing either.
    password_hash = await hasher.hash(command.password)
    now = clock.now()
    user = User.register(
        email=email,
        username=command.username,
        password_hash=password_hash,
        display_name=display_name,
        now=now,
    )
    token, verification = new_verification(user, mail, now)
    try:
        async with uow:
            await uow.users.add(user)
            await uow.action_tokens.add(token)
            await uow.outbox.add(verification)
            await uow.commit()
    except DuplicateUser as duplicate:
        if duplicate.field is UniqueField.USERNAME:
            raise AlreadyExists(
                "this username is taken", reason=ErrorReason.USERNAME_TAKEN
            ) from None
        await _tell_owner_of_signup_attempt(user, uow=uow, mail=mail, now=now)
        log.info("registration_with_taken_email")
        return user
    log.info("user_created", user_id=str(user.id))
    return user


async def _tell_owner_of_signup_attempt(
    attempt: User, *, uow: UnitOfWork, mail: MailPolicy, now: datetime
) -> None:
    async with uow:
        # The username decides alone, exactly as it would for a new email, and is held
        # from now on exactly as a new account would hold it.
        if not await uow.users.reserve_username(attempt.username, now):
            raise AlreadyExists("this username is taken", reason=ErrorReason.USERNAME_TAKEN)
        owner = await uow.users.get_by_email(attempt.email)
        # At most one such mail per cooldown, so the form cannot flood someone's inbox.
        if owner is not None and not await uow.outbox.queued_since(
            owner.id, EmailKind.ACCOUNT_EXISTS, now - mail.cooldown
        ):
            await uow.outbox.add(
                account_exists_email(to=owner.email, user_id=owner.id, base_url=mail.base_url)
            )
        await uow.commit()


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


DEFAULT_THROTTLE = ThrottlePolicy(
    window=timedelta(minutes=15),
    account_max_failures=10,
    client_max_failures=50,
    lockout=timedelta(minutes=15),
    slowdown_after=3,
    slowdown_step=timedelta(milliseconds=200),
    slowdown_max=timedelta(seconds=3),
)

type Sleep = Callable[[float], Awaitable[None]]


def account_key(email: str) -> str:
    """The throttle key of an account, by the (normalised) email it signs in with."""
    return f"account:{rules.normalise_email(email)[: rules.MAX_EMAIL_LENGTH]}"


def client_key(client_ip: str | None) -> str | None:
    """The throttle key of a client address, when it is known."""
    return f"client:{client_ip}" if client_ip else None


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
            failures = await uow.throttle.record_failure(
                key,
                now=now,
                window_seconds=policy.window.total_seconds(),
                max_failures=maximum,
                lockout_seconds=policy.lockout.total_seconds(),
            )
            delay = max(delay, policy.delay_after(failures, maximum))
        await uow.commit()
    if delay:
        # Outside any transaction: a slowed answer holds no database connection.
        await sleep(delay.total_seconds())


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
    keys = [account_key(email)]
    client = client_key(command.client_ip)
    if client is not None:
        keys.append(client)
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
        access_token=issuer.issue(user, session.id),
        refresh_token=refresh_token,
        expires_in=issuer.ttl_seconds,
    )


async def get_user(command: commands.GetUser, *, uow: UnitOfWork) -> User:
    """The caller's own account ("me" or their id), or any account for admins."""
    caller = command.caller
    requested = command.user_id.strip()
    if requested == ME:
        requested = caller.user_id
    user_id = _parse_uuid(requested)
    if user_id is None:
        problem = "must be a user id (UUID) or 'me'" if requested else "is required"
        raise InvalidArgument([FieldViolation("user_id", problem)])

    # Permission first: a non-admin learns nothing about which other ids exist.
    if not rules.may_read_account(caller.user_id, str(user_id), caller_is_admin=caller.is_admin):
        raise PermissionDenied("you may only read your own account", reason=ErrorReason.NOT_OWNER)
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
    return user


async def seed_demo_account(
    command: commands.SeedDemoAccount, *, uow: UnitOfWork, hasher: PasswordHasher, clock: Clock
) -> bool:
    """Create a verified demo account unless one exists; whether it was created."""
    password_hash = await hasher.hash(command.password)
    user = User.register(
        email=rules.normalise_email(command.email),
        username=command.username,
        password_hash=password_hash,
        display_name=command.display_name,
        now=clock.now(),
        roles=frozenset(Role(r) for r in command.roles),
        email_verified=True,
    )
    async with uow:
        created = await uow.users.add_if_absent(user)
        await uow.commit()
    if created:
        log.info("demo_account_created", email=user.email, roles=sorted(command.roles))
    return created


def _parse_uuid(value: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
