"""DeleteMyAccount and ExportMyData on real PostgreSQL and Valkey: re-authentication,
erasure, the user.deleted event, and an export that fails whole when a peer is away."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import grpc
import pytest_asyncio
from marketplace.user.v1 import events_pb2, user_pb2, user_service_pb2
from redis.asyncio import Redis

from services.common.outbox_relay import OutboxRelay
from services.devmesh.processes import free_port
from tests.support.failures import failure_of
from tests.support.servers import Backends
from tests.support.tokens import bearer
from tests.support.user import (
    PASSWORD,
    UserService,
    new_user_request,
    running_user_service,
)

STREAM = f"test.user.events.{uuid.uuid4().hex[:8]}"


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def relays() -> list[OutboxRelay]:
    return []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(backends: Backends, relays: list[OutboxRelay]) -> AsyncIterator[UserService]:
    # The product and order services are not running: their ports refuse connections.
    async with running_user_service(
        backends,
        product_target=f"127.0.0.1:{free_port()}",
        order_target=f"127.0.0.1:{free_port()}",
        redis_url=backends.redis_url,
        consume_order_events=False,
        user_events_stream=STREAM,
        app_overrides={"run_event_relay": False, "event_relays": relays},
    ) as running:
        yield running


async def signed_up(svc: UserService) -> tuple[user_service_pb2.CreateUserRequest, str, str]:
    """A new account with an address, a wishlist-free profile and a session."""
    request = new_user_request()
    user = await svc.stub.CreateUser(request)
    tokens = await svc.stub.Login(
        user_service_pb2.LoginRequest(email=request.email, password=PASSWORD)
    )
    await svc.stub.CreateAddress(
        user_service_pb2.CreateAddressRequest(
            user_id="me",
            address=user_pb2.Address(
                recipient_name="Ada Lovelace",
                line1="12 St James's Square",
                city="London",
                postal_code="SW1Y 4JH",
                country_code="GB",
                phone_number="+442079460000",
            ),
        ),
        metadata=bearer(tokens.access_token),
    )
    return request, user.user_id, tokens.access_token


async def delete(svc: UserService, token: str, password: str = PASSWORD) -> None:
    await svc.stub.DeleteMyAccount(
        user_service_pb2.DeleteMyAccountRequest(current_password=password),
        metadata=bearer(token),
    )


async def test_deletion_clears_the_failed_sign_in_counter_of_the_email(svc: UserService) -> None:
    request, _user_id, token = await signed_up(svc)
    await failure_of(delete(svc, token, "not the password at all"))
    key = f"account:{request.email.lower()}"
    assert await svc.db.fetchval("select count(*) from login_throttle where key = $1", key) == 1

    await delete(svc, token)

    assert await svc.db.fetchval("select count(*) from login_throttle where key = $1", key) == 0


async def test_a_wrong_or_missing_password_deletes_nothing(svc: UserService) -> None:
    request, user_id, token = await signed_up(svc)

    wrong = await failure_of(delete(svc, token, "not the password at all"))
    missing = await failure_of(delete(svc, token, ""))
    anonymous = await failure_of(
        svc.stub.DeleteMyAccount(user_service_pb2.DeleteMyAccountRequest(current_password=PASSWORD))
    )

    assert (wrong.code, wrong.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "WRONG_PASSWORD")
    assert missing.code == grpc.StatusCode.INVALID_ARGUMENT
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    row = await svc.db.fetchrow("select email, state from users where id = $1", uuid.UUID(user_id))
    assert row is not None and (row["email"], row["state"]) == (request.email, "active")
    assert (
        await svc.db.fetchval("select count(*) from outbox where user_id = $1", uuid.UUID(user_id))
        == 0
    )


async def test_deletion_erases_personal_data_and_announces_it(
    svc: UserService, relays: list[OutboxRelay]
) -> None:
    request, user_id, token = await signed_up(svc)
    uid = uuid.UUID(user_id)

    await delete(svc, token)

    row = await svc.db.fetchrow(
        "select email, username, display_name, password_hash, state, deleted_at "
        "from users where id = $1",
        uid,
    )
    assert row is not None
    assert row["email"] == f"deleted-{uid.hex}@deleted.invalid"
    assert row["username"] != request.username and row["display_name"] == ""
    assert row["state"] == "deleted" and row["deleted_at"] is not None
    assert not row["password_hash"].startswith("$argon2")
    for table in ("addresses", "sessions", "refresh_tokens", "email_outbox", "action_tokens"):
        count = await svc.db.fetchval(f"select count(*) from {table} where user_id = $1", uid)
        assert count == 0, table

    # Signing in is impossible, the account reads as absent, a second deletion finds nothing.
    login = await failure_of(
        svc.stub.Login(user_service_pb2.LoginRequest(email=request.email, password=PASSWORD))
    )
    assert login.code == grpc.StatusCode.UNAUTHENTICATED
    me = await failure_of(
        svc.stub.GetUser(user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token))
    )
    assert (me.code, me.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    again = await failure_of(delete(svc, token))
    assert again.code == grpc.StatusCode.NOT_FOUND

    # One user.deleted event, published to the user event stream by the outbox relay.
    (relay,) = relays
    await relay.publish_once()
    redis = Redis.from_url(str(svc.settings.redis_url))
    try:
        entries = await redis.xrange(STREAM)
    finally:
        await redis.aclose()
    events = [
        events_pb2.UserEvent.FromString(fields[b"payload"])
        for _id, fields in entries
        if fields[b"type"] == b"USER_EVENT_TYPE_DELETED"
    ]
    mine = [event for event in events if event.user_id == user_id]
    assert len(mine) == 1
    assert mine[0].event_type == events_pb2.USER_EVENT_TYPE_DELETED and mine[0].event_id


async def test_the_email_is_free_again_and_the_username_stays_reserved(svc: UserService) -> None:
    request, _user_id, token = await signed_up(svc)
    await delete(svc, token)

    again = await svc.stub.CreateUser(new_user_request(email=request.email))
    assert again.email == request.email

    taken = await failure_of(svc.stub.CreateUser(new_user_request(username=request.username)))
    assert (taken.code, taken.reason) == (grpc.StatusCode.ALREADY_EXISTS, "USERNAME_TAKEN")


async def test_a_token_outliving_the_account_writes_nothing(svc: UserService) -> None:
    # The access token stays valid until it expires; every write locks the account row
    # first, and a deleted account reads as absent, so nothing lands on the tombstone.
    _request, user_id, token = await signed_up(svc)
    await delete(svc, token)

    address = await failure_of(
        svc.stub.CreateAddress(
            user_service_pb2.CreateAddressRequest(
                user_id="me",
                address=user_pb2.Address(
                    recipient_name="X", line1="1 Road", city="Paris", country_code="FR"
                ),
            ),
            metadata=bearer(token),
        )
    )
    assert (address.code, address.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
    listed = await svc.stub.ListAddresses(
        user_service_pb2.ListAddressesRequest(user_id="me"), metadata=bearer(token)
    )
    assert list(listed.addresses) == []
    count = await svc.db.fetchval(
        "select count(*) from addresses where user_id = $1", uuid.UUID(user_id)
    )
    assert count == 0


async def test_an_export_with_a_peer_away_is_unavailable_never_partial(svc: UserService) -> None:
    _request, _user_id, token = await signed_up(svc)

    failure = await failure_of(
        svc.stub.ExportMyData(user_service_pb2.ExportMyDataRequest(), metadata=bearer(token))
    )

    assert failure.code == grpc.StatusCode.UNAVAILABLE
    assert failure.reason in ("PRODUCT_SERVICE_UNAVAILABLE", "ORDER_SERVICE_UNAVAILABLE")


async def test_a_deleted_account_has_nothing_to_export(svc: UserService) -> None:
    _request, _user_id, token = await signed_up(svc)
    await delete(svc, token)

    failure = await failure_of(
        svc.stub.ExportMyData(user_service_pb2.ExportMyDataRequest(), metadata=bearer(token))
    )

    assert (failure.code, failure.reason) == (grpc.StatusCode.NOT_FOUND, "USER_NOT_FOUND")
