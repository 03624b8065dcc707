"""Registration does not tell whether an email has an account: not now, not on a later sign-up."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

import argon2
import grpc
import pytest
import pytest_asyncio
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.user.adapters.passwords import Argon2PasswordHasher
from services.user.adapters.signing import KeyRing, SigningKey
from services.user.app import build_app
from tests.support.failures import rpc_failure
from tests.support.inprocess import serve_in_process
from tests.support.servers import Backends
from tests.support.user import MIGRATIONS, PASSWORD, user_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")


class CountingHasher(Argon2PasswordHasher):
    """The real argon2id hasher, counting its hashes: both paths must do the same work."""

    def __init__(self) -> None:
        super().__init__(argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1))
        self.hashes = 0

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return await super().hash(password)


@dataclass
class Served:
    stub: Any
    hasher: CountingHasher


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(backends: Backends) -> AsyncIterator[Served]:
    settings = user_settings(
        backends.database_url("users_privacy", MIGRATIONS),
        internal_secret="registration-privacy-secret",
    )
    hasher = CountingHasher()
    ring = KeyRing(SigningKey.generate())
    async with serve_in_process(
        settings,
        lambda: build_app(settings, key_ring=ring, password_hasher=hasher, run_email_relay=False),
    ) as service:
        yield Served(user_service_pb2_grpc.UserServiceStub(service.channel), hasher)


def name() -> str:
    return f"u{uuid.uuid4().hex[:12]}"


async def register(served: Served, email: str, username: str) -> user_pb2.User:
    user: user_pb2.User = await served.stub.CreateUser(
        user_service_pb2.CreateUserRequest(
            email=email, username=username, password=PASSWORD, display_name="Someone"
        )
    )
    return user


async def refused(call: Awaitable[Any]) -> tuple[grpc.StatusCode, str, str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    got = rpc_failure(caught)
    return got.code, got.reason, got.message


def shape(user: user_pb2.User) -> tuple[Any, ...]:
    """What a response shows, apart from the values that differ for every sign-up."""
    present = sorted(field.name for field, _ in user.ListFields())
    return (present, user.email_verified, list(user.roles), user.display_name)


async def test_taken_email_reserves_its_username_like_a_new_account(served: Served) -> None:
    victim = f"{name()}@example.com"
    await register(served, victim, name())

    probe_taken, probe_free = name(), name()
    answer_taken = await register(served, victim, probe_taken)
    answer_free = await register(served, f"{name()}@example.com", probe_free)
    assert shape(answer_taken) == shape(answer_free)

    # The attacker's second step: the same usernames with fresh emails. Both must be taken,
    # or the answer would tell which first email had an account.
    second_taken = await refused(register(served, f"{name()}@example.com", probe_taken))
    second_free = await refused(register(served, f"{name()}@example.com", probe_free))
    assert second_taken == second_free
    assert second_taken[:2] == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


async def test_taken_username_answers_alike_whether_or_not_the_email_exists(
    served: Served,
) -> None:
    owner_email, owner_username = f"{name()}@example.com", name()
    await register(served, owner_email, owner_username)
    other_email = f"{name()}@example.com"
    await register(served, other_email, name())

    with_taken_email = await refused(register(served, other_email, owner_username))
    with_new_email = await refused(register(served, f"{name()}@example.com", owner_username))
    assert with_taken_email == with_new_email
    assert with_new_email[:2] == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


async def test_both_paths_hash_the_password_once(served: Served) -> None:
    existing = f"{name()}@example.com"
    await register(served, existing, name())
    work = {}
    for label, email, username in (
        ("taken email", existing, name()),
        ("new email", f"{name()}@example.com", name()),
    ):
        served.hasher.hashes = 0
        await register(served, email, username)
        work[label] = served.hasher.hashes
    assert work == {"taken email": 1, "new email": 1}
