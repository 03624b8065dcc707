"""The order use cases other than checkout, on the in-memory fakes of their ports."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest

from services.common.errors import NotFound, PermissionDenied
from services.common.money import Money
from services.order.domain.commands import Caller, GetOrder, GetSalesReport, ListOrders
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.status import SOLD_STATUSES, OrderStatus
from services.order.service_layer.ports import ReportRow
from services.order.service_layer.queries import get_order, list_orders
from services.order.service_layer.reports import sales_report
from tests.fakes.clock import EPOCH
from tests.fakes.order import FakeSalesReports, FakeUnitOfWork, Store

DAY = date(2026, 3, 1)
SELLER = Caller(user_id="seller-1", is_seller=True)
ADMIN = Caller(user_id="admin-1", is_admin=True)


def report(caller: Caller, seller_id: str | None = None) -> GetSalesReport:
    return GetSalesReport(caller, DAY, DAY, by_seller=True, seller_id=seller_id)


async def test_a_seller_gets_only_their_own_sales_of_sold_orders() -> None:
    reports = FakeSalesReports(answer=[ReportRow(None, "seller-1", 2, Money(3000, "EUR"))])

    answered = await sales_report(report(SELLER), reports=reports)

    [(_, _, by_seller, seller_id, statuses)] = reports.asked
    assert (by_seller, seller_id, statuses) == (True, "seller-1", SOLD_STATUSES)
    assert OrderStatus.CANCELLED not in statuses and OrderStatus.PENDING not in statuses
    assert answered.total == Money(3000, "EUR")


async def test_a_seller_asking_for_another_sellers_sales_is_refused() -> None:
    with pytest.raises(PermissionDenied) as refused:
        await sales_report(report(SELLER, "seller-2"), reports=FakeSalesReports())
    assert refused.value.reason == "NOT_YOUR_SALES"


async def test_a_buyer_gets_no_report_and_an_admin_any() -> None:
    with pytest.raises(PermissionDenied) as refused:
        await sales_report(report(Caller(user_id="b-1")), reports=FakeSalesReports())
    assert refused.value.reason == "ROLE_REQUIRED"

    reports = FakeSalesReports(
        answer=[
            ReportRow(None, "seller-2", 1, Money(1000, "EUR")),
            ReportRow(None, "seller-2", 1, Money(500, "USD")),
        ]
    )
    answered = await sales_report(report(ADMIN, "seller-2"), reports=reports)
    assert reports.asked[0][3] == "seller-2"
    assert answered.total is None  # euros and dollars do not add up


def placed(store: Store, buyer: uuid.UUID, seller: str, minutes: int) -> Order:
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=buyer,
        items=[OrderItem("p-1", seller, "Lamp", 1, Money(1000, "EUR"))],
        shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
        at=EPOCH + timedelta(minutes=minutes),
    )
    store.orders[order.order_id] = order
    return order


async def test_buyers_page_through_their_own_orders_newest_first() -> None:
    store, buyer = Store(), uuid.uuid4()
    mine = [placed(store, buyer, "seller-1", minutes) for minutes in range(3)]
    placed(store, uuid.uuid4(), "seller-1", 10)  # someone else's
    caller = Caller(user_id=str(buyer))

    first, cursor = await list_orders(
        ListOrders(caller, 2, None, None), uow=lambda: FakeUnitOfWork(store)
    )
    rest, last = await list_orders(
        ListOrders(caller, 2, cursor, None), uow=lambda: FakeUnitOfWork(store)
    )

    assert [o.order_id for o in first + rest] == [o.order_id for o in reversed(mine)]
    assert cursor is not None and last is None


async def test_another_buyers_order_is_not_found_and_a_seller_sees_only_their_lines() -> None:
    store, buyer = Store(), uuid.uuid4()
    order = placed(store, buyer, "seller-1", 0)

    with pytest.raises(NotFound):
        await get_order(
            GetOrder(order.order_id, Caller(user_id=str(uuid.uuid4()))),
            uow=lambda: FakeUnitOfWork(store),
        )
    seen = await get_order(GetOrder(order.order_id, SELLER), uow=lambda: FakeUnitOfWork(store))
    assert [item.seller_id for item in seen.items] == ["seller-1"]
    assert seen.payments == []
