"""The user service's domain rules and handlers, with fakes instead of I/O."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Self

import pytest

from services.common.errors import InvalidArgument, PermissionDenied, Unauthenticated
from services.common.identity import Caller, Role
from services.common.metadata import CLIENT_ADDRESS_HEADER, RequestMetadata
from services.user.domain import commands, rules
from services.user.domain.emails import MailPolicy
from services.user.domain.model import Session, User, UserState, hash_token
from services.user.service_layer import accounts, sign_in
from tests.fakes.clock import FixedClock
from tests.fakes.user import ReversingHasher

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "email",
    ["a@example.com", "first.last+tag@mail.example.co.uk", "x_y-z@sub-domain.example.org"],
)
def test_valid_emails(email: str) -> None:
    assert rules.email_problem(email) is None


@pytest.mark.parametrize(
    "email",
    [
        "",
        "plain",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "a@-example.com",
        "a@example.",
        "x" * 65 + "@example.com",
        "a@" + "d" * 250 + ".com",
    ],
)
def test_invalid_emails(email: str) -> None:
    assert rules.email_problem(email) is not None


def test_emails_are_normalised_to_trimmed_lower_case() -> None:
    assert rules.normalise_email("  Alice@Example.COM ") == "alice@example.com"


@pytest.mark.parametrize("username", ["abc", "a" * 32, "Under_score-dash9"])
def test_valid_usernames(username: str) -> None:
    assert rules.username_problem(username) is None


@pytest.mark.parametrize("username", ["", "ab", "a" * 33, "dot.ted", "spa ce", "ünï"])
def test_invalid_usernames(username: str) -> None:
    assert rules.username_problem(username) is not None


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        ("", "is required"),
        ("123456789", "must be at least 10 characters"),
        ("x" * 129, "must be at most 128 characters"),
        ("QwertyUiop", "is too common; choose another"),
        ("alice-name", "must not be your email or username"),
    ],
)
def test_password_rules(password: str, problem: str) -> None:
    assert rules.password_problem(password, username="Alice-Name") == problem


def test_a_long_uncommon_password_is_fine() -> None:
    assert rules.password_problem("tr0mbone-lantern-quiet", email="a@example.com") is None


def test_display_name_rules() -> None:
    assert rules.display_name_problem("") is None
    assert rules.display_name_problem("Zoë O'Brien") is None
    assert rules.display_name_problem("n" * 101) is not None
    assert rules.display_name_problem("tab\there") is not None


def test_registered_users_are_active_unverified_customers() -> None:
    user = User.register(
        email="a@example.com", username="alice", password_hash="h", display_name="", now=NOW
    )
    assert user.roles == {Role.CUSTOMER}
    assert user.state is UserState.ACTIVE
    assert not user.email_verified
    assert user.can_sign_in
    assert user.created_at == user.updated_at == NOW


def test_accounts_are_readable_by_their_owner_and_admins_only() -> None:
    owner, other = str(uuid.uuid4()), str(uuid.uuid4())
    assert rules.may_read_account(owner, owner, caller_is_admin=False)
    assert rules.may_read_account(other, owner, caller_is_admin=True)
    assert not rules.may_read_account(other, owner, caller_is_admin=False)


def test_sessions_store_the_sha256_of_their_refresh_token() -> None:
    session = Session.start(
        user_id=uuid.uuid4(),
        user_agent="ua",
        client_ip=None,
        refresh_token="secret",
        refresh_ttl=timedelta(days=1),
        now=NOW,
    )
    (token,) = session.tokens
    assert token.token_hash == hashlib.sha256(b"secret").hexdigest() == hash_token("secret")
    assert token.family_id == session.id
    assert token.expires_at == NOW + timedelta(days=1)


@pytest.mark.parametrize(
    ("peer", "ip"),
    [
        ("ipv4:10.0.0.7:5123", "10.0.0.7"),
        ("ipv6:[::1]:5123", "::1"),
        ("ipv6:[2001:db8::2]:443", "2001:db8::2"),
        ("unix:/tmp/socket", None),
        ("", None),
        (None, None),
    ],
)
def test_peer_addresses_parse(peer: str | None, ip: str | None) -> None:
    assert RequestMetadata(peer=peer or "").client_address == ip


def test_the_edge_client_address_wins_over_the_peer() -> None:
    metadata = RequestMetadata({CLIENT_ADDRESS_HEADER: " 203.0.113.9 "}, "ipv4:10.0.0.7:5123")
    assert metadata.client_address == "203.0.113.9"


class ExplodingUnitOfWork:
    """A unit of work a handler must not open."""

    @property
    def users(self) -> object:
        raise AssertionError("no repository access expected")

    @property
    def sessions(self) -> object:
        raise AssertionError("no repository access expected")

    async def __aenter__(self) -> Self:
        raise AssertionError("no transaction expected")

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def commit(self) -> None:
        raise AssertionError("no commit expected")


async def test_invalid_registration_lists_every_violation_and_touches_nothing() -> None:
    command = commands.CreateUser(email="bad", username="!", password="x", display_name="")
    with pytest.raises(InvalidArgument) as caught:
        await accounts.create_user(
            command,
            uow=ExplodingUnitOfWork(),  # type: ignore[arg-type]
            hasher=ReversingHasher(),
            mail=MailPolicy(),
            clock=FixedClock(),
        )
    assert [v.field for v in caught.value.violations] == ["email", "username", "password"]


async def test_get_user_of_another_user_is_denied_before_any_lookup() -> None:
    caller = Caller(user_id=str(uuid.uuid4()), roles=frozenset({Role.CUSTOMER}))
    with pytest.raises(PermissionDenied):
        await accounts.get_user(
            commands.GetUser(user_id=str(uuid.uuid4()), caller=caller),
            uow=ExplodingUnitOfWork(),  # type: ignore[arg-type]
            clock=FixedClock(),
        )


async def test_unknown_email_still_costs_a_hash_verification() -> None:
    hasher = ReversingHasher()
    authenticator = await sign_in.Authenticator.create(hasher)
    with pytest.raises(Unauthenticated) as caught:
        await authenticator.check(None, "whatever-password")
    assert caught.value.reason == "INVALID_CREDENTIALS"
    assert hasher.verified == 1


async def test_suspended_users_fail_like_wrong_passwords() -> None:
    hasher = ReversingHasher()
    authenticator = await sign_in.Authenticator.create(hasher)
    user = User.register(
        email="a@example.com",
        username="alice",
        password_hash=await hasher.hash("right-password"),
        display_name="",
        now=NOW,
    )
    assert await authenticator.check(user, "right-password") is user
    user.state = UserState.SUSPENDED
    with pytest.raises(Unauthenticated) as suspended:
        await authenticator.check(user, "right-password")
    with pytest.raises(Unauthenticated) as wrong:
        await authenticator.check(None, "wrong-password")
    assert str(suspended.value) == str(wrong.value) == sign_in.INVALID_CREDENTIALS
