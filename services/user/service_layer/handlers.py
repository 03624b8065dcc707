"""One handler per use case: validate the command, run it in a unit of work, return domain objects."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta

import structlog

from services.common.auth import Role
from services.common.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Violations,
)
from services.user.domain import commands, rules
from services.user.domain.model import DuplicateUser, Session, UniqueField, User
from services.user.service_layer.ports import PasswordHasher, TokenIssuer, UnitOfWork

log = structlog.get_logger("user.handlers")

ME = "me"
# One message for unknown emails, wrong passwords and suspended accounts, so the answer
# does not tell an attacker which addresses have accounts.
INVALID_CREDENTIALS = "invalid email or password"


def _now() -> datetime:
    return datetime.now(UTC)


async def create_user(
    command: commands.CreateUser, *, uow: UnitOfWork, hasher: PasswordHasher
) -> User:
    """Register a customer; the unique indexes decide races between equal sign-ups."""
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

    # Hash before the transaction opens: a connection is not held for the ~100 ms of argon2.
    password_hash = await hasher.hash(command.password)
    user = User.register(
        email=email,
        username=command.username,
        password_hash=password_hash,
        display_name=display_name,
        now=_now(),
    )
    try:
        async with uow:
            await uow.users.add(user)
            await uow.commit()
    except DuplicateUser as duplicate:
        if duplicate.field is UniqueField.EMAIL:
            raise AlreadyExists(
                "an account with this email already exists", reason="EMAIL_TAKEN"
            ) from None
        raise AlreadyExists("this username is taken", reason="USERNAME_TAKEN") from None
    log.info("user_created", user_id=str(user.id))
    return user


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
            raise Unauthenticated(INVALID_CREDENTIALS, reason="INVALID_CREDENTIALS")
        if not await self._hasher.verify(user.password_hash, password) or not user.can_sign_in:
            raise Unauthenticated(INVALID_CREDENTIALS, reason="INVALID_CREDENTIALS")
        return user


async def login(
    command: commands.Login,
    *,
    uow: UnitOfWork,
    authenticator: Authenticator,
    issuer: TokenIssuer,
    refresh_ttl: timedelta,
) -> commands.IssuedTokens:
    """Check the credentials, open a session and issue an access and a refresh token."""
    violations = Violations()
    violations.check(bool(command.email.strip()), "email", "is required")
    violations.check(bool(command.password), "password", "is required")
    violations.check(
        len(command.password) <= rules.MAX_PASSWORD_LENGTH,
        "password",
        f"must be at most {rules.MAX_PASSWORD_LENGTH} characters",
    )
    violations.raise_if_any()

    async with uow:
        found = await uow.users.get_by_email(rules.normalise_email(command.email))
    # The hash check runs outside any transaction, so no connection waits on argon2.
    user = await authenticator.check(found, command.password)

    refresh_token = secrets.token_urlsafe(32)
    session = Session.start(
        user_id=user.id,
        user_agent=command.user_agent[:512],
        client_ip=command.client_ip,
        refresh_token=refresh_token,
        refresh_ttl=refresh_ttl,
        now=_now(),
    )
    async with uow:
        await uow.sessions.add(session)
        await uow.commit()
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
        raise PermissionDenied("you may only read your own account", reason="NOT_OWNER")
    async with uow:
        user = await uow.users.get(user_id)
    if user is None:
        raise NotFound("no such user", reason="USER_NOT_FOUND")
    return user


async def seed_demo_account(
    command: commands.SeedDemoAccount, *, uow: UnitOfWork, hasher: PasswordHasher
) -> bool:
    """Create a verified demo account unless one exists; whether it was created."""
    password_hash = await hasher.hash(command.password)
    user = User.register(
        email=rules.normalise_email(command.email),
        username=command.username,
        password_hash=password_hash,
        display_name=command.display_name,
        now=_now(),
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
