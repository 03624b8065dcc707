"""Brute-force protection of sign-in: slowed, then refused for a while, never for ever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio
from marketplace.user.v1 import user_service_pb2

from services.common.metadata import CLIENT_ADDRESS_HEADER
from tests.support.failures import rpc_failure
from tests.support.servers import Backends
from tests.support.tokens import bearer
from tests.support.user import (
    PASSWORD,
    UserService,
    new_user_request,
    running_user_service,
)

ACCOUNT_MAX = 5
CLIENT_MAX = 8
LOCKOUT_SECONDS = 1


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(backends: Backends) -> AsyncIterator[UserService]:
    async with running_user_service(
        backends,
        login_account_max_failures=ACCOUNT_MAX,
        login_client_max_failures=CLIENT_MAX,
        login_lockout_seconds=LOCKOUT_SECONDS,
        login_slowdown_after=2,
        login_slowdown_ms=40,
        login_slowdown_max_ms=160,
    ) as running:
        yield running


def from_client(ip: str) -> tuple[tuple[str, str], ...]:
    # What the edge sets to the address it accepted the request from.
    return ((CLIENT_ADDRESS_HEADER, ip),)


async def attempt(
    svc: UserService, email: str, password: str, ip: str
) -> tuple[grpc.StatusCode, str, float]:
    started = time.monotonic()
    try:
        await svc.stub.Login(
            user_service_pb2.LoginRequest(email=email, password=password),
            metadata=from_client(ip),
        )
    except grpc.aio.AioRpcError as error:
        got = rpc_failure(error)
        return got.code, got.reason, time.monotonic() - started
    return grpc.StatusCode.OK, "", time.monotonic() - started


async def registered(svc: UserService) -> str:
    request = new_user_request()
    await svc.stub.CreateUser(request)
    return request.email


async def test_failures_on_one_account_are_slowed_then_refused_for_a_while(
    svc: UserService,
) -> None:
    email = await registered(svc)
    outcomes = [await attempt(svc, email, "wrong password!", f"10.1.0.{n}") for n in range(5)]
    assert [o[1] for o in outcomes] == ["INVALID_CREDENTIALS"] * ACCOUNT_MAX
    # The first failure answers at once; the later ones are held longer and longer.
    assert outcomes[0][2] < 0.5
    assert outcomes[-1][2] >= 0.15 > outcomes[1][2] - 0.1

    # Blocked now, even with the right password and from a fresh client address.
    code, reason, _ = await attempt(svc, email, PASSWORD, "10.1.1.1")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_SIGN_INS")

    # The block ends by itself: a victim is never locked out for good.
    await asyncio.sleep(LOCKOUT_SECONDS + 0.2)
    code, _, _ = await attempt(svc, email, PASSWORD, "10.1.1.1")
    assert code == grpc.StatusCode.OK


async def test_one_client_failing_across_many_accounts_is_refused(svc: UserService) -> None:
    emails = [await registered(svc) for _ in range(CLIENT_MAX)]
    for email in emails:  # one failure each: no account gets near its own limit
        code, _, _ = await attempt(svc, email, "wrong password!", "203.0.113.7")
        assert code == grpc.StatusCode.UNAUTHENTICATED
    code, reason, _ = await attempt(svc, emails[0], PASSWORD, "203.0.113.7")
    assert (code, reason) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_FAILED_SIGN_INS")
    # Other clients are not affected, and neither are the accounts.
    code, _, _ = await attempt(svc, emails[0], PASSWORD, "203.0.113.8")
    assert code == grpc.StatusCode.OK


async def test_a_success_clears_the_accounts_failures(svc: UserService) -> None:
    email = await registered(svc)
    for round_ in range(3):
        for n in range(ACCOUNT_MAX - 1):
            code, _, _ = await attempt(svc, email, "wrong password!", f"10.2.{round_}.{n}")
            assert code == grpc.StatusCode.UNAUTHENTICATED
        code, _, _ = await attempt(svc, email, PASSWORD, f"10.2.{round_}.99")
        assert code == grpc.StatusCode.OK


async def test_concurrent_failures_are_all_counted_and_block(svc: UserService) -> None:
    email = await registered(svc)
    results = await asyncio.gather(
        *(attempt(svc, email, f"guess number {n}", f"10.3.0.{n}") for n in range(20))
    )
    assert all(
        r[0] in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED)
        for r in results
    )
    # The counter is one atomic upsert: no failure is lost to a race, and the block is set.
    # (Guesses already in flight when the block is set are still checked; the edge's rate
    # limit bounds how many that can be.)
    row = await svc.db.fetchrow(
        "select failures, blocked_until from login_throttle where key = $1", f"account:{email}"
    )
    assert row is not None
    checked = sum(r[0] == grpc.StatusCode.UNAUTHENTICATED for r in results)
    assert row["failures"] == checked
    assert row["blocked_until"] is not None
    await asyncio.sleep(LOCKOUT_SECONDS + 0.2)


async def test_wrong_current_passwords_count_as_failed_sign_ins(svc: UserService) -> None:
    request = new_user_request()
    await svc.stub.CreateUser(request)
    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email, password=PASSWORD)
    )
    codes = []
    for _ in range(ACCOUNT_MAX + 1):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.ChangePassword(
                user_service_pb2.ChangePasswordRequest(
                    current_password="a wrong guess", new_password="another fine passphrase"
                ),
                metadata=(*bearer(tokens.access_token), *from_client("10.4.0.1")),
            )
        codes.append(caught.value.code())
    assert codes[:ACCOUNT_MAX] == [grpc.StatusCode.INVALID_ARGUMENT] * ACCOUNT_MAX
    assert codes[-1] == grpc.StatusCode.RESOURCE_EXHAUSTED
