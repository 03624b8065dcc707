"""The user service's account use cases on in-memory fakes: sign-up, sign-in, sessions."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from services.common.errors import (
    AlreadyExists,
    InvalidArgument,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
)
from services.common.identity import Caller, Role
from services.common.reasons import ErrorReason as CommonReason
from services.user.domain import commands
from services.user.domain.emails import EmailKind
from services.user.domain.model import User, hash_token
from services.user.domain.reasons import ErrorReason
from services.user.service_layer import (
    accounts,
    email_verification,
    passwords,
    sessions,
    sign_in,
)
from services.user.service_layer.throttling import DEFAULT_THROTTLE
from tests.fakes.user import ReversingHasher, UserWorld

PASSWORD = "correct horse battery"
# The default policy with a low block, so a test reaches it in a few attempts.
THROTTLE = replace(
    DEFAULT_THROTTLE,
    account_max_failures=4,
    lockout=timedelta(minutes=10),
    slowdown_after=2,
    slowdown_step=timedelta(milliseconds=100),
)


@pytest.fixture
def world() -> UserWorld:
    return UserWorld()


async def sign_up(world: UserWorld, name: str, email: str | None = None) -> str:
    await accounts.create_user(
        commands.CreateUser(email or f"{name}@example.com", name, PASSWORD, name.title()),
        uow=world.uow(),
        hasher=world.hasher,
        mail=world.mail,
        clock=world.clock,
    )
    return email or f"{name}@example.com"


async def login(
    world: UserWorld, email: str, password: str = PASSWORD, client_ip: str | None = "10.0.0.1"
) -> commands.IssuedTokens:
    return await sign_in.login(
        commands.Login(email, password, user_agent="pytest", client_ip=client_ip),
        uow=world.uow(),
        authenticator=await sign_in.Authenticator.create(world.hasher),
        issuer=world.issuer,
        refresh_ttl=timedelta(days=30),
        hasher=world.hasher,
        throttle=THROTTLE,
        sleep=world.sleep,
        clock=world.clock,
    )


async def refresh(world: UserWorld, token: str) -> commands.IssuedTokens:
    return await sessions.refresh(
        commands.RefreshTokens(token), uow=world.uow(), issuer=world.issuer, clock=world.clock
    )


# --- Sign-up ---------------------------------------------------------------------------


async def test_sign_up_stores_an_unverified_customer_and_mails_a_working_link(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")

    user = world.user(email)
    assert (user.roles, user.email_verified) == (frozenset({Role.CUSTOMER}), False)
    assert user.password_hash != PASSWORD and world.hasher.hashed == 1
    [mail] = world.store.mail_to(email, EmailKind.VERIFY_EMAIL)
    token = mail.body.split("token=")[1].split()[0]
    verified = await accounts_verify(world, token)
    assert verified.email_verified


async def accounts_verify(world: UserWorld, token: str) -> User:
    return await email_verification.verify_email(
        commands.VerifyEmail(token), uow=world.uow(), clock=world.clock
    )


async def test_a_taken_email_stores_nothing_mails_the_owner_once_and_holds_the_username(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    before = dict(world.store.users)

    await sign_up(world, "impostor1", email=email.upper())
    await sign_up(world, "impostor2", email=email)

    assert world.store.users == before
    # One notice per cooldown, however often the form is sent.
    assert len(world.store.mail_to(email, EmailKind.ACCOUNT_EXISTS)) == 1
    # The attempt's username is held as a new account would hold it.
    with pytest.raises(AlreadyExists) as taken:
        await sign_up(world, "impostor1")
    assert taken.value.reason == ErrorReason.USERNAME_TAKEN
    world.clock.advance(world.mail.cooldown + timedelta(seconds=1))
    await sign_up(world, "impostor3", email=email)
    assert len(world.store.mail_to(email, EmailKind.ACCOUNT_EXISTS)) == 2


async def test_a_taken_username_is_already_exists_in_any_case(world: UserWorld) -> None:
    await sign_up(world, "grace")
    with pytest.raises(AlreadyExists) as caught:
        await sign_up(world, "GRACE", email="other@example.com")
    assert caught.value.reason == ErrorReason.USERNAME_TAKEN
    assert len(world.store.users) == 1


# --- Sign-in and the throttle ----------------------------------------------------------


async def test_sign_in_opens_a_session_holding_only_the_refresh_token_hash(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    tokens = await login(world, email)

    [session] = world.store.sessions.values()
    assert session.user_id == world.user(email).id
    assert session.tokens[0].token_hash == hash_token(tokens.refresh_token)
    assert tokens.access_token.startswith(f"access:{session.user_id}:{session.id}:customer:")


async def test_failed_sign_ins_are_slowed_then_blocked_until_the_lockout_ends(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    for _ in range(THROTTLE.account_max_failures):
        with pytest.raises(Unauthenticated) as wrong:
            await login(world, email, "not the password")
        assert wrong.value.reason == ErrorReason.INVALID_CREDENTIALS
    # Slowed from the 2nd failure on, doubling: 100, 200, 400 ms.
    assert world.sleep.waits == pytest.approx([0.1, 0.2, 0.4])

    # Blocked now, even with the right password, and told how long to wait.
    with pytest.raises(ResourceExhausted) as blocked:
        await login(world, email)
    assert blocked.value.reason == ErrorReason.TOO_MANY_FAILED_SIGN_INS
    assert blocked.value.metadata == {"retry_after_seconds": "600"}

    world.clock.advance(THROTTLE.lockout)
    await login(world, email)
    # A success clears the account's count, so the next mistake is not slowed.
    world.sleep.waits.clear()
    with pytest.raises(Unauthenticated):
        await login(world, email, "typo")
    assert world.sleep.waits == []


async def test_the_window_forgets_old_failures(world: UserWorld) -> None:
    email = await sign_up(world, "ada")
    for _ in range(THROTTLE.account_max_failures - 1):
        with pytest.raises(Unauthenticated):
            await login(world, email, "wrong")
    world.clock.advance(THROTTLE.window + timedelta(seconds=1))
    with pytest.raises(Unauthenticated):
        await login(world, email, "wrong")
    # One failure in a fresh window: not blocked.
    assert (await login(world, email)).access_token


async def test_unknown_emails_are_throttled_like_accounts_and_cost_a_hash(
    world: UserWorld,
) -> None:
    for _ in range(THROTTLE.account_max_failures):
        with pytest.raises(Unauthenticated) as unknown:
            await login(world, "nobody@example.com")
        assert str(unknown.value) == sign_in.INVALID_CREDENTIALS
    # Each attempt checks the password against the dummy hash, as for a real account.
    assert world.hasher.verified == THROTTLE.account_max_failures
    with pytest.raises(ResourceExhausted):
        await login(world, "NOBODY@example.com")


async def test_sign_in_rehashes_a_password_hashed_with_old_parameters(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    world.hasher = ReversingHasher(tag="v2")
    assert world.hasher.needs_rehash(world.user(email).password_hash)
    await login(world, email)
    assert world.user(email).password_hash.startswith("v2$")


async def test_invalid_sign_in_input_is_refused_before_any_lookup(world: UserWorld) -> None:
    with pytest.raises(InvalidArgument) as caught:
        await login(world, " ", "")
    assert {v.field for v in caught.value.violations} == {"email", "password"}
    assert world.hasher.verified == 0


# --- Sessions --------------------------------------------------------------------------


async def test_refresh_rotates_and_reuse_of_a_rotated_token_ends_the_session(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    first = await login(world, email)
    world.clock.advance(timedelta(minutes=5))

    second = await refresh(world, first.refresh_token)
    assert second.refresh_token != first.refresh_token
    [session] = world.store.sessions.values()
    assert session.last_used_at == world.clock.now()

    with pytest.raises(Unauthenticated) as reused:
        await refresh(world, first.refresh_token)
    assert reused.value.reason == ErrorReason.REFRESH_TOKEN_REUSED
    # The thief cannot be told from the owner: the successor stops working too.
    with pytest.raises(Unauthenticated) as revoked:
        await refresh(world, second.refresh_token)
    assert revoked.value.reason == ErrorReason.REFRESH_TOKEN_REVOKED


async def test_a_refreshed_session_keeps_its_sign_in_expiry(world: UserWorld) -> None:
    email = await sign_up(world, "ada")
    tokens = await login(world, email)
    world.clock.advance(timedelta(days=29))
    tokens = await refresh(world, tokens.refresh_token)
    world.clock.advance(timedelta(days=1))
    with pytest.raises(Unauthenticated) as expired:
        await refresh(world, tokens.refresh_token)
    assert expired.value.reason == ErrorReason.REFRESH_TOKEN_EXPIRED


async def test_logout_all_ends_every_session_and_lists_none(world: UserWorld) -> None:
    email = await sign_up(world, "ada")
    for _ in range(3):
        await login(world, email)
    caller = Caller(user_id=str(world.user(email).id), roles=frozenset({Role.CUSTOMER}))
    listed = await sessions.list_sessions(
        commands.CallerOnly(caller), uow=world.uow(), clock=world.clock
    )
    assert len(listed) == 3
    ended = await sessions.logout_all(
        commands.CallerOnly(caller), uow=world.uow(), clock=world.clock
    )
    assert ended == 3
    assert (
        await sessions.list_sessions(
            commands.CallerOnly(caller), uow=world.uow(), clock=world.clock
        )
        == []
    )


# --- Passwords -------------------------------------------------------------------------


async def test_a_password_reset_ends_sessions_and_lifts_the_sign_in_block(
    world: UserWorld,
) -> None:
    email = await sign_up(world, "ada")
    session = await login(world, email)
    for _ in range(THROTTLE.account_max_failures):
        with pytest.raises(Unauthenticated):
            await login(world, email, "attacker guess")

    await passwords.request_password_reset(
        commands.RequestPasswordReset(email), uow=world.uow(), mail=world.mail, clock=world.clock
    )
    [mail] = world.store.mail_to(email, EmailKind.RESET_PASSWORD)
    token = mail.body.split("token=")[1].split()[0]
    await passwords.reset_password(
        commands.ResetPassword(token, "a brand new passphrase"),
        uow=world.uow(),
        hasher=world.hasher,
        clock=world.clock,
    )

    with pytest.raises(Unauthenticated):
        await refresh(world, session.refresh_token)
    assert (await login(world, email, "a brand new passphrase")).access_token
    # The token is single-use.
    with pytest.raises(InvalidArgument) as reused:
        await passwords.reset_password(
            commands.ResetPassword(token, "yet another passphrase"),
            uow=world.uow(),
            hasher=world.hasher,
            clock=world.clock,
        )
    assert reused.value.reason == CommonReason.TOKEN_INVALID


async def test_a_refused_new_password_keeps_the_reset_token_usable(world: UserWorld) -> None:
    email = await sign_up(world, "ada")
    await passwords.request_password_reset(
        commands.RequestPasswordReset(email), uow=world.uow(), mail=world.mail, clock=world.clock
    )
    token = world.store.mail_to(email)[-1].body.split("token=")[1].split()[0]
    with pytest.raises(InvalidArgument):
        await passwords.reset_password(
            commands.ResetPassword(token, "ada"),
            uow=world.uow(),
            hasher=world.hasher,
            clock=world.clock,
        )
    await passwords.reset_password(
        commands.ResetPassword(token, "a fine new passphrase"),
        uow=world.uow(),
        hasher=world.hasher,
        clock=world.clock,
    )
    assert (await login(world, email, "a fine new passphrase")).access_token


async def test_get_user_resolves_me_and_hides_other_accounts(world: UserWorld) -> None:
    ada = world.user(await sign_up(world, "ada"))
    bob = world.user(await sign_up(world, "bob"))
    caller = Caller(user_id=str(ada.id), roles=frozenset({Role.CUSTOMER}))
    me = await accounts.get_user(commands.GetUser("me", caller), uow=world.uow(), clock=world.clock)
    assert me.id == ada.id
    with pytest.raises(PermissionDenied):
        await accounts.get_user(
            commands.GetUser(str(bob.id), caller), uow=world.uow(), clock=world.clock
        )
    admin = Caller(user_id=str(uuid.uuid4()), roles=frozenset({Role.ADMIN}))
    seen = await accounts.get_user(
        commands.GetUser(str(bob.id), admin), uow=world.uow(), clock=world.clock
    )
    assert seen.email == bob.email
