"""The address book and the order service's shipping-address lookup, over gRPC."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from services.user.domain.addresses import MAX_ADDRESSES_PER_USER
from tests.support.failures import rpc_failure, violations_of
from tests.support.servers import Backends
from tests.support.tokens import bearer
from tests.support.user import (
    UserService,
    login,
    register_and_login,
    running_user_service,
)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def svc(backends: Backends) -> AsyncIterator[UserService]:
    async with running_user_service(backends) as running:
        yield running


def home(**overrides: object) -> user_pb2.Address:
    fields: dict[str, object] = {
        "recipient_name": "Ada Lovelace",
        "line1": "12 St James's Square",
        "city": "London",
        "postal_code": "SW1Y 4JH",
        "country_code": "GB",
        "phone_number": "+442079460000",
    }
    fields.update(overrides)
    return user_pb2.Address(**fields)  # type: ignore[arg-type]


async def create(
    svc: UserService, token: str, address: user_pb2.Address, user_id: str = "me"
) -> user_pb2.Address:
    return await svc.stub.CreateAddress(
        user_service_pb2.CreateAddressRequest(user_id=user_id, address=address),
        metadata=bearer(token),
    )


async def listed(svc: UserService, token: str, user_id: str = "me") -> list[user_pb2.Address]:
    response = await svc.stub.ListAddresses(
        user_service_pb2.ListAddressesRequest(user_id=user_id), metadata=bearer(token)
    )
    return list(response.addresses)


def internal(svc: UserService) -> user_service_pb2_grpc.UserInternalServiceAsyncStub:
    stub: user_service_pb2_grpc.UserInternalServiceAsyncStub
    stub = user_service_pb2_grpc.UserInternalServiceStub(svc.served.internal_channel)
    return stub


async def shipping(svc: UserService, user_id: str, address_id: str = "") -> user_pb2.Address:
    response = await internal(svc).GetShippingAddress(
        user_service_pb2.GetShippingAddressRequest(user_id=user_id, address_id=address_id),
    )
    return response.address


async def test_create_get_list_and_the_first_address_becomes_default(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    first = await create(svc, token, home(country_code=" gb "))
    assert first.user_id == user.user_id
    assert first.country_code == "GB"
    assert first.is_default_shipping, "the first address is the default shipping address"
    assert uuid.UUID(first.address_id)

    second = await create(svc, token, home(recipient_name="Charles Babbage", city="Marylebone"))
    assert not second.is_default_shipping

    got = await svc.stub.GetAddress(
        user_service_pb2.GetAddressRequest(user_id=user.user_id, address_id=second.address_id),
        metadata=bearer(token),
    )
    assert got == second
    assert [a.address_id for a in await listed(svc, token)] == [
        first.address_id,
        second.address_id,
    ]


async def test_marking_another_default_moves_the_default(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    first = await create(svc, token, home())
    second = await create(svc, token, home(line1="1 Other Road", is_default_shipping=True))
    addresses = await listed(svc, token)
    assert [(a.address_id, a.is_default_shipping) for a in addresses] == [
        (second.address_id, True),
        (first.address_id, False),
    ]

    moved = await svc.stub.UpdateAddress(
        user_service_pb2.UpdateAddressRequest(
            address=user_pb2.Address(
                user_id="me", address_id=first.address_id, is_default_shipping=True
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["is_default_shipping"]),
        ),
        metadata=bearer(token),
    )
    assert moved.is_default_shipping
    assert moved.line1 == first.line1, "fields outside the mask are kept"
    defaults = [a.address_id for a in await listed(svc, token) if a.is_default_shipping]
    assert defaults == [first.address_id]


async def test_concurrent_default_changes_leave_exactly_one_default(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    created = [await create(svc, token, home(line1=f"{n} Race Street")) for n in range(6)]

    await asyncio.gather(
        *(
            svc.stub.UpdateAddress(
                user_service_pb2.UpdateAddressRequest(
                    address=user_pb2.Address(
                        user_id="me", address_id=a.address_id, is_default_shipping=True
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["is_default_shipping"]),
                ),
                metadata=bearer(token),
            )
            for a in created
        ),
        *(
            create(svc, token, home(line1="New Default", is_default_shipping=True))
            for _ in range(4)
        ),
    )
    addresses = await listed(svc, token)
    assert len(addresses) == 10
    assert sum(a.is_default_shipping for a in addresses) == 1


async def test_update_changes_only_masked_fields_and_validates(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    address = await create(svc, token, home())
    updated = await svc.stub.UpdateAddress(
        user_service_pb2.UpdateAddressRequest(
            address=user_pb2.Address(
                user_id="me",
                address_id=address.address_id,
                city="Cambridge",
                line1="ignored, not in the mask",
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["city"]),
        ),
        metadata=bearer(token),
    )
    assert updated.city == "Cambridge"
    assert updated.line1 == address.line1

    for paths, field in (
        ([], "update_mask"),
        (["user_id"], "update_mask"),
        (["address_id"], "update_mask"),
        (["country_code"], "address.country_code"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.UpdateAddress(
                user_service_pb2.UpdateAddressRequest(
                    address=user_pb2.Address(
                        user_id="me", address_id=address.address_id, country_code="XX"
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=paths),
                ),
                metadata=bearer(token),
            )
        got = rpc_failure(caught)
        assert got.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in violations_of(got), (paths, violations_of(got))
    assert (await listed(svc, token))[0] == updated


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"recipient_name": ""}, "address.recipient_name"),
        ({"line1": "   "}, "address.line1"),
        ({"city": ""}, "address.city"),
        ({"country_code": ""}, "address.country_code"),
        ({"country_code": "XX"}, "address.country_code"),
        ({"country_code": "DEU"}, "address.country_code"),
        ({"recipient_name": "x" * 101}, "address.recipient_name"),
        ({"line1": "y" * 201}, "address.line1"),
        ({"line2": "z" * 10_000}, "address.line2"),
        ({"city": "Lon\x00don"}, "address.city"),
        ({"postal_code": "<script>"}, "address.postal_code"),
        ({"phone_number": "0123 456"}, "address.phone_number"),
    ],
)
async def test_invalid_addresses_are_refused_and_not_stored(
    svc: UserService, overrides: dict[str, str], field: str
) -> None:
    _, token = await register_and_login(svc)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(svc, token, home(**overrides))
    got = rpc_failure(caught)
    assert got.code == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations_of(got)
    assert await listed(svc, token) == []


async def test_a_user_cannot_read_or_edit_another_users_addresses(svc: UserService) -> None:
    victim, victim_token = await register_and_login(svc)
    _, attacker_token = await register_and_login(svc)
    address = await create(svc, victim_token, home())
    bad = bearer(attacker_token)

    # Naming the victim's book is refused outright.
    calls: list[Awaitable[object]] = [
        svc.stub.ListAddresses(
            user_service_pb2.ListAddressesRequest(user_id=victim.user_id), metadata=bad
        ),
        svc.stub.GetAddress(
            user_service_pb2.GetAddressRequest(
                user_id=victim.user_id, address_id=address.address_id
            ),
            metadata=bad,
        ),
        svc.stub.CreateAddress(
            user_service_pb2.CreateAddressRequest(user_id=victim.user_id, address=home()),
            metadata=bad,
        ),
        svc.stub.UpdateAddress(
            user_service_pb2.UpdateAddressRequest(
                address=user_pb2.Address(
                    user_id=victim.user_id, address_id=address.address_id, city="Evil"
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["city"]),
            ),
            metadata=bad,
        ),
        svc.stub.DeleteAddress(
            user_service_pb2.DeleteAddressRequest(
                user_id=victim.user_id, address_id=address.address_id
            ),
            metadata=bad,
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED

    # The victim's address id under the attacker's own book does not exist for them.
    for call in (
        svc.stub.GetAddress(
            user_service_pb2.GetAddressRequest(user_id="me", address_id=address.address_id),
            metadata=bad,
        ),
        svc.stub.UpdateAddress(
            user_service_pb2.UpdateAddressRequest(
                address=user_pb2.Address(user_id="me", address_id=address.address_id, city="Evil"),
                update_mask=field_mask_pb2.FieldMask(paths=["city"]),
            ),
            metadata=bad,
        ),
        svc.stub.DeleteAddress(
            user_service_pb2.DeleteAddressRequest(user_id="me", address_id=address.address_id),
            metadata=bad,
        ),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert rpc_failure(caught).reason == "ADDRESS_NOT_FOUND"

    assert await listed(svc, victim_token) == [address]


async def test_admins_may_read_but_not_write_another_users_book(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    address = await create(svc, token, home())
    admin = await login(svc, "admin@example.com", "demo-password-for-tests")
    assert await listed(svc, admin, user.user_id) == [address]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(svc, admin, home(), user_id=user.user_id)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_delete_removes_the_address_and_unknown_ids_are_not_found(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    address = await create(svc, token, home())
    await svc.stub.DeleteAddress(
        user_service_pb2.DeleteAddressRequest(user_id="me", address_id=address.address_id),
        metadata=bearer(token),
    )
    assert await listed(svc, token) == []
    with pytest.raises(grpc.aio.AioRpcError) as again:
        await svc.stub.DeleteAddress(
            user_service_pb2.DeleteAddressRequest(user_id="me", address_id=address.address_id),
            metadata=bearer(token),
        )
    assert again.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await svc.stub.GetAddress(
            user_service_pb2.GetAddressRequest(user_id="me", address_id="not-a-uuid"),
            metadata=bearer(token),
        )
    assert violations_of(rpc_failure(malformed)).keys() == {"address_id"}


async def test_the_address_book_has_a_limit(svc: UserService) -> None:
    _, token = await register_and_login(svc)
    await asyncio.gather(
        *(create(svc, token, home(line1=f"{n} Full Street")) for n in range(MAX_ADDRESSES_PER_USER))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(svc, token, home(line1="One Too Many"))
    assert rpc_failure(caught).code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert len(await listed(svc, token)) == MAX_ADDRESSES_PER_USER


async def test_address_book_needs_a_token(svc: UserService) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await svc.stub.ListAddresses(user_service_pb2.ListAddressesRequest(user_id="me"))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_shipping_address_by_id_and_default(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    default = await create(svc, token, home())
    other = await create(svc, token, home(line1="2 Work Lane"))

    assert await shipping(svc, user.user_id) == default
    assert await shipping(svc, user.user_id, other.address_id) == other


async def test_shipping_address_of_someone_else_or_missing_is_not_found(svc: UserService) -> None:
    owner, owner_token = await register_and_login(svc)
    buyer, _ = await register_and_login(svc)
    address = await create(svc, owner_token, home())

    for user_id, address_id, reason in (
        (buyer.user_id, address.address_id, "ADDRESS_NOT_FOUND"),
        (buyer.user_id, "", "NO_DEFAULT_SHIPPING_ADDRESS"),
        (owner.user_id, str(uuid.uuid4()), "ADDRESS_NOT_FOUND"),
        (str(uuid.uuid4()), address.address_id, "USER_NOT_FOUND"),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await shipping(svc, user_id, address_id)
        got = rpc_failure(caught)
        assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, reason)

    with pytest.raises(grpc.aio.AioRpcError) as malformed:
        await shipping(svc, "nope", "")
    assert violations_of(rpc_failure(malformed)).keys() == {"user_id"}


async def test_shipping_address_of_a_suspended_buyer_is_failed_precondition(
    svc: UserService,
) -> None:
    user, token = await register_and_login(svc)
    address = await create(svc, token, home())
    await svc.db.execute(
        "update users set state = 'suspended' where id = $1", uuid.UUID(user.user_id)
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await shipping(svc, user.user_id, address.address_id)
    got = rpc_failure(caught)
    assert (got.code, got.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "USER_SUSPENDED")


async def test_shipping_address_needs_the_order_services_certificate(svc: UserService) -> None:
    user, token = await register_and_login(svc)
    await create(svc, token, home())
    outsider = user_service_pb2_grpc.UserInternalServiceStub(svc.served.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await outsider.GetShippingAddress(
            user_service_pb2.GetShippingAddressRequest(user_id=user.user_id),
            metadata=bearer(token),
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_failure(caught).reason == "CALLER_NOT_ALLOWED"
