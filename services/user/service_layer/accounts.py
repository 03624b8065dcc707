"""Accounts: sign up, read one, search them (admins), and the dev mode's demo accounts."""

from __future__ import annotations

import uuid
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import (
    AlreadyExists,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Violations,
)
from services.common.identity import Role
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.user.domain import commands, rules
from services.user.domain.emails import (
    EmailKind,
    MailPolicy,
    account_exists_email,
)
from services.user.domain.model import (
    DuplicateUser,
    UniqueField,
    User,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    ME,
    parse_uuid,
)
from services.user.service_layer.email_verification import new_verification
from services.user.service_layer.ports import (
    PasswordHasher,
    UnitOfWork,
)

log = structlog.get_logger("user.accounts")

MAX_QUERY_LENGTH = 100


async def create_user(
    command: commands.CreateUser,
    *,
    uow: UnitOfWork,
    hasher: PasswordHasher,
    mail: MailPolicy,
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


async def get_user(command: commands.GetUser, *, uow: UnitOfWork, clock: Clock) -> User:
    """The caller's own account ("me" or their id), or any account for admins."""
    caller = command.caller
    requested = command.user_id.strip()
    if requested == ME:
        requested = caller.user_id
    user_id = parse_uuid(requested)
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


async def list_users(
    command: commands.ListUsers, *, uow: UnitOfWork, clock: Clock
) -> tuple[list[User], str]:
    """One page of users matching the query and role, newest first."""
    command.caller.require_any_role(Role.ADMIN)
    size = clamp_page_size(command.page_size, default=50, maximum=200)
    # Matching ignores case, so the page token does too.
    query = command.query.strip().lower()
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidArgument(
            [FieldViolation("query", f"must be at most {MAX_QUERY_LENGTH} characters")]
        )
    role = None if command.role is None else Role(command.role)
    position = decode_page_token(command.page_token)
    after = None
    if position is not None:
        try:
            # A token only continues the search it came from.
            if position["q"] != query or position["r"] != command.role:
                raise ValueError("token of another search")
            after = (datetime.fromisoformat(position["c"]), uuid.UUID(position["i"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                [FieldViolation("page_token", "is not a token this API issued for this search")]
            ) from None
    async with uow:
        users = await uow.users.search(query=query, role=role, after=after, limit=size + 1)
    token = ""
    if len(users) > size:
        users = users[:size]
        last = users[-1]
        token = encode_page_token(
            {"q": query, "r": command.role, "c": last.created_at.isoformat(), "i": str(last.id)}
        )
    return users, token


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
