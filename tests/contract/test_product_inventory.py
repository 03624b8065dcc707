"""Inventory over real gRPC: stock figures, adjustments, the ledger, expiry and price snapshots."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.rpc_status import remote_error
from services.product.config import Settings
from tests.support.failures import failure_of, violated_fields
from tests.support.product import (
    ServedProduct,
    as_seller,
    create,
    discount,
    internal_stub,
    product_settings,
    product_stub,
    reserve_request,
    serve_product,
    usd,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens

pytestmark = pytest.mark.asyncio(loop_scope="session")
SECRET = "product-inventory-secret"
TTL_SECONDS = 0.3

if TYPE_CHECKING:
    from tests.support.product import InternalStub, ProductStub


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(
        backends,
        "products_inventory",
        internal_secret=SECRET,
        reservation_ttl_seconds=TTL_SECONDS,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


@pytest.fixture
def internal(served: ServedProduct) -> InternalStub:
    return internal_stub(served[0])


async def level(stub: ProductStub, product_id: str, metadata: Any) -> tuple[int, int, int]:
    got = await stub.GetInventory(
        product_service_pb2.GetInventoryRequest(product_id=product_id), metadata=metadata
    )
    return got.on_hand, got.reserved, got.available


async def test_sellers_adjust_stock_with_a_reason_and_never_below_reserved(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, initial_stock=10)
    adjusted = await stub.AdjustInventory(
        product_service_pb2.AdjustInventoryRequest(
            product_id=item.product_id, delta=15, reason="restock from supplier"
        ),
        metadata=metadata,
    )
    assert (adjusted.on_hand, adjusted.available) == (25, 25)
    await internal.ReserveInventory(reserve_request(str(uuid.uuid4()), (item.product_id, 20)))
    refused = await failure_of(
        stub.AdjustInventory(
            product_service_pb2.AdjustInventoryRequest(
                product_id=item.product_id, delta=-6, reason="damaged"
            ),
            metadata=metadata,
        )
    )
    assert refused.code == grpc.StatusCode.FAILED_PRECONDITION
    assert refused.reason == "INSUFFICIENT_STOCK"
    assert await level(stub, item.product_id, metadata) == (25, 20, 5)
    await stub.AdjustInventory(
        product_service_pb2.AdjustInventoryRequest(
            product_id=item.product_id, delta=-5, reason="damaged in storage"
        ),
        metadata=metadata,
    )
    assert await level(stub, item.product_id, metadata) == (20, 20, 0)


async def test_adjustments_are_validated_and_owned(stub: ProductStub, tokens: TestTokens) -> None:
    seller = str(uuid.uuid4())
    item = await create(stub, tokens, seller_id=seller)
    invalid = await failure_of(
        stub.AdjustInventory(
            product_service_pb2.AdjustInventoryRequest(product_id=item.product_id, delta=0),
            metadata=as_seller(tokens, seller),
        )
    )
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(invalid)) == {"delta", "reason"}
    other = as_seller(tokens, str(uuid.uuid4()))
    for call in (
        stub.AdjustInventory(
            product_service_pb2.AdjustInventoryRequest(
                product_id=item.product_id, delta=1, reason="x"
            ),
            metadata=other,
        ),
        stub.GetInventory(
            product_service_pb2.GetInventoryRequest(product_id=item.product_id), metadata=other
        ),
        stub.ListInventoryLedgerEntries(
            product_service_pb2.ListInventoryLedgerEntriesRequest(product_id=item.product_id),
            metadata=other,
        ),
    ):
        assert (await failure_of(call)).code == grpc.StatusCode.PERMISSION_DENIED


async def test_every_stock_change_is_in_the_ledger_and_adds_up(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, initial_stock=0)
    await stub.AdjustInventory(
        product_service_pb2.AdjustInventoryRequest(
            product_id=item.product_id, delta=10, reason="first delivery"
        ),
        metadata=metadata,
    )
    sold, released = str(uuid.uuid4()), str(uuid.uuid4())
    await internal.ReserveInventory(reserve_request(sold, (item.product_id, 3)))
    await internal.CommitReservation(product_service_pb2.CommitReservationRequest(order_id=sold))
    await internal.ReserveInventory(reserve_request(released, (item.product_id, 2)))
    await internal.ReleaseReservation(
        product_service_pb2.ReleaseReservationRequest(order_id=released)
    )
    entries: list[product_pb2.InventoryLedgerEntry] = []
    token = ""
    while True:
        page = await stub.ListInventoryLedgerEntries(
            product_service_pb2.ListInventoryLedgerEntriesRequest(
                product_id=item.product_id, page_size=2, page_token=token
            ),
            metadata=metadata,
        )
        entries.extend(page.entries)
        token = page.next_page_token
        if not token:
            break
    reasons = [e.reason for e in reversed(entries)]  # oldest first
    assert reasons == [
        "first delivery",
        f"reserve order {sold}",
        f"commit order {sold}",
        f"reserve order {released}",
        f"release order {released}",
    ]
    assert entries[-1].actor == seller
    on_hand = sum(e.on_hand_delta for e in entries)
    reserved = sum(e.reserved_delta for e in entries)
    assert await level(stub, item.product_id, metadata) == (on_hand, reserved, on_hand - reserved)
    assert (on_hand, reserved) == (7, 0)


async def test_lapsed_reservations_return_their_stock_and_cannot_be_committed(
    stub: ProductStub,
    internal: InternalStub,
    tokens: TestTokens,
    served: ServedProduct,
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, initial_stock=4)
    lapsing, committed = str(uuid.uuid4()), str(uuid.uuid4())
    await internal.ReserveInventory(reserve_request(lapsing, (item.product_id, 3)))
    await internal.ReserveInventory(reserve_request(committed, (item.product_id, 1)))
    await internal.CommitReservation(
        product_service_pb2.CommitReservationRequest(order_id=committed)
    )
    sweeper = served[1].sweeper
    await sweeper.run_once()
    assert await level(stub, item.product_id, metadata) == (3, 3, 0)  # not lapsed yet
    await asyncio.sleep(TTL_SECONDS + 0.1)
    assert await sweeper.run_once() >= 1
    assert await level(stub, item.product_id, metadata) == (3, 0, 3)
    late = await failure_of(
        internal.CommitReservation(product_service_pb2.CommitReservationRequest(order_id=lapsing))
    )
    assert late.code == grpc.StatusCode.FAILED_PRECONDITION
    assert late.reason == "RESERVATION_RELEASED"
    ledger = await stub.ListInventoryLedgerEntries(
        product_service_pb2.ListInventoryLedgerEntriesRequest(product_id=item.product_id),
        metadata=metadata,
    )
    assert ledger.entries[0].reason == f"expire reservation of order {lapsing}"
    assert ledger.entries[0].actor == "reservation-sweeper"


async def test_a_commit_racing_the_expiry_settles_one_way(
    stub: ProductStub,
    internal: InternalStub,
    tokens: TestTokens,
    served: ServedProduct,
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, initial_stock=2)
    order = str(uuid.uuid4())
    await internal.ReserveInventory(reserve_request(order, (item.product_id, 2)))
    await asyncio.sleep(TTL_SECONDS + 0.1)
    commit = internal.CommitReservation(
        product_service_pb2.CommitReservationRequest(order_id=order)
    )
    results = await asyncio.gather(commit, served[1].sweeper.run_once(), return_exceptions=True)
    stock = await level(stub, item.product_id, metadata)
    if isinstance(results[0], grpc.aio.AioRpcError):
        assert remote_error(results[0]).reason == "RESERVATION_RELEASED"
        assert stock == (2, 0, 2)  # expired: the units are back
    else:
        assert stock == (0, 0, 0)  # committed: the units are sold


async def test_concurrent_reservations_and_adjustments_never_go_negative(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, initial_stock=6)

    async def reserve() -> bool:
        try:
            await internal.ReserveInventory(
                reserve_request(str(uuid.uuid4()), (item.product_id, 1))
            )
            return True
        except grpc.aio.AioRpcError:
            return False

    async def shrink() -> bool:
        try:
            await stub.AdjustInventory(
                product_service_pb2.AdjustInventoryRequest(
                    product_id=item.product_id, delta=-1, reason="shrinkage"
                ),
                metadata=metadata,
            )
            return True
        except grpc.aio.AioRpcError:
            return False

    outcomes = await asyncio.gather(*(reserve() if n % 2 else shrink() for n in range(20)))
    on_hand, reserved, available = await level(stub, item.product_id, metadata)
    reserved_count = sum(outcomes[n] for n in range(1, 20, 2))
    shrunk = sum(outcomes[n] for n in range(0, 20, 2))
    assert reserved_count + shrunk == 6  # exactly the units there were
    assert (on_hand, reserved, available) == (6 - shrunk, reserved_count, 0)


async def test_the_price_snapshot_of_a_placed_order_never_changes(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    item = await create(stub, tokens, seller_id=seller, list_price=usd(40), initial_stock=5)
    order = str(uuid.uuid4())
    first = await internal.ReserveInventory(reserve_request(order, (item.product_id, 2)))
    assert first.items[0].unit_price == usd(40)
    now = datetime.now(UTC)
    await stub.CreateDiscount(
        product_service_pb2.CreateDiscountRequest(
            product_id=item.product_id,
            discount=discount(now - timedelta(minutes=1), now + timedelta(days=1), percent=50),
        ),
        metadata=metadata,
    )
    read = await stub.GetProduct(product_service_pb2.GetProductRequest(product_id=item.product_id))
    assert read.effective_price == usd(20)
    again = await internal.ReserveInventory(reserve_request(order, (item.product_id, 2)))
    assert again.items[0].unit_price == usd(40)  # the order keeps the price it was placed at
    fresh = await internal.ReserveInventory(
        reserve_request(str(uuid.uuid4()), (item.product_id, 1))
    )
    assert fresh.items[0].unit_price == usd(20)  # new orders get the new price
