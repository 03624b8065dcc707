"""PayoutService over gRPC on real PostgreSQL, with the real user and product services in-process.

Orders are placed, refunded and cancelled through the order service's API; the ledger they
book is read through the PayoutService and checked against the order tables and the sales
report. Sales are held for HOLD seconds before they are available to a payout run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest_asyncio
from google.type import date_pb2, money_pb2
from marketplace.order.v1 import (
    order_pb2,
    order_service_pb2,
    payout_pb2,
    payout_service_pb2,
    payout_service_pb2_grpc,
)

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.common.rpc_status import RemoteError
from services.order.adapters.payments import SandboxGateway
from tests.support.failures import failure_of
from tests.support.order import (
    MIGRATIONS,
    OrderService,
    ProductService,
    UserService,
    accounts,
    create_product,
    order_request,
    order_settings,
    product,
    serving_orders,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

HOLD = 3.0
COMMISSION_BPS = 1000
Metadata = tuple[tuple[str, str], ...]


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    backends: Backends,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
) -> AsyncIterator[OrderService]:
    """An order service holding sales for HOLD seconds and taking 10 % commission."""
    database_url = backends.database_url("orders_payouts", MIGRATIONS)
    settings = order_settings(
        database_url, product.served.target, backends.redis_url, user_target=accounts.served.target
    ).model_copy(update={"payout_hold_seconds": HOLD, "commission_bps": COMMISSION_BPS})
    gateway = SandboxGateway(latency_seconds=0.01, timeout_seconds=settings.payment_timeout_seconds)
    async with serving_orders(settings, accounts, tokens, gateway) as served:
        yield served


def payouts_stub(orders: OrderService) -> payout_service_pb2_grpc.PayoutServiceAsyncStub:
    return payout_service_pb2_grpc.PayoutServiceStub(orders.served.channel)


def seller(tokens: TestTokens, user_id: str) -> Metadata:
    return bearer(tokens.mint(user_id, roles=(Role.SELLER,)))


def admin(tokens: TestTokens) -> Metadata:
    return bearer(tokens.mint(roles=(Role.ADMIN,)))


def cents(value: money_pb2.Money) -> int:
    return value.units * 100 + value.nanos // 10_000_000


@dataclass
class Sale:
    """A paid order of one line per seller: {seller id: line total in cents}."""

    order: order_pb2.Order
    parts: dict[str, int]


async def sell(
    orders: OrderService, product: ProductService, tokens: TestTokens, parts: dict[str, int]
) -> Sale:
    """Place and pay an order of one unit per seller, priced at that seller's cents."""
    lines = []
    for seller_id, price in parts.items():
        seller_token = tokens.mint(seller_id, roles=(Role.SELLER,))
        product_id = await create_product(
            product, 5, Money(price, "USD"), "Kettle", seller_token=seller_token
        )
        lines.append((product_id, 1))
    buyer = await orders.accounts.buyer_token()
    placed = await orders.stub.CreateOrder(
        order_request(*lines), metadata=(*bearer(buyer), ("idempotency-key", uuid.uuid4().hex))
    )
    assert placed.status == order_pb2.ORDER_STATUS_PAID
    return Sale(placed, dict(parts))


async def refund(orders: OrderService, metadata: Metadata, order_id: str, amount: int) -> None:
    await orders.stub.RefundOrder(
        order_service_pb2.RefundOrderRequest(
            order_id=order_id, amount=money_to_proto(Money(amount, "USD")), reason="damaged"
        ),
        metadata=(*metadata, ("idempotency-key", uuid.uuid4().hex)),
    )


async def balance(
    orders: OrderService, metadata: Metadata, seller_id: str = "me"
) -> tuple[int, int]:
    """(available, pending) in USD cents."""
    answer = await payouts_stub(orders).GetSellerBalance(
        payout_service_pb2.GetSellerBalanceRequest(seller_id=seller_id), metadata=metadata
    )
    usd = [b for b in answer.balances if b.available.currency_code == "USD"]
    return (cents(usd[0].available), cents(usd[0].pending)) if usd else (0, 0)


async def ledger(orders: OrderService, metadata: Metadata) -> list[payout_pb2.LedgerEntry]:
    """Every entry of the caller's ledger, page by page."""
    entries: list[payout_pb2.LedgerEntry] = []
    token = ""
    while True:
        page = await payouts_stub(orders).ListLedgerEntries(
            payout_service_pb2.ListLedgerEntriesRequest(
                seller_id="me", page_size=2, page_token=token
            ),
            metadata=metadata,
        )
        entries += page.entries
        token = page.next_page_token
        if not token:
            return entries


def by_kind(entries: list[payout_pb2.LedgerEntry]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for e in entries:
        name = payout_pb2.LedgerEntryKind.Name(e.kind).removeprefix("LEDGER_ENTRY_KIND_")
        totals[name] = totals.get(name, 0) + cents(e.amount)
    return totals


async def run(orders: OrderService, tokens: TestTokens) -> payout_service_pb2.RunPayoutsResponse:
    return await payouts_stub(orders).RunPayouts(
        payout_service_pb2.RunPayoutsRequest(), metadata=admin(tokens)
    )


async def test_a_sale_is_pending_for_the_hold_then_available_net_of_commission(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    await sell(orders, product, tokens, {a: 2000, b: 1050})

    assert await balance(orders, seller(tokens, a)) == (0, 2000 - 200)
    assert await balance(orders, seller(tokens, b)) == (0, 1050 - 105)
    entries = await ledger(orders, seller(tokens, a))
    assert by_kind(entries) == {"SALE": 2000, "COMMISSION": -200}
    assert all(e.seller_id == a for e in entries)

    await asyncio.sleep(HOLD + 0.2)
    assert await balance(orders, seller(tokens, a)) == (1800, 0)
    # An admin reads any seller's balance.
    assert await balance(orders, admin(tokens), seller_id=b) == (945, 0)


async def test_the_by_seller_report_reconciles_with_the_ledger_after_an_admin_partial_refund(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    # Issue 15's case: 157 USD sold by two sellers, then an admin refunds 5 USD of the
    # order without naming a seller, and seller B refunds 1 USD of their own line.
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    sale = await sell(orders, product, tokens, {a: 10000, b: 5700})
    await refund(orders, admin(tokens), sale.order.order_id, 500)
    await refund(orders, seller(tokens, b), sale.order.order_id, 100)

    today = datetime.now(UTC).date()
    day = date_pb2.Date(year=today.year, month=today.month, day=today.day)
    for seller_id in (a, b):
        report = await orders.stub.GetSalesReport(
            order_service_pb2.GetSalesReportRequest(
                start_date=day,
                end_date=day,
                grouping=order_service_pb2.SALES_REPORT_GROUPING_SELLER,
            ),
            metadata=seller(tokens, seller_id),
        )
        by_day = await orders.stub.GetSalesReport(
            order_service_pb2.GetSalesReportRequest(
                start_date=day, end_date=day, grouping=order_service_pb2.SALES_REPORT_GROUPING_DAY
            ),
            metadata=seller(tokens, seller_id),
        )
        kinds = by_kind(await ledger(orders, seller(tokens, seller_id)))
        # Sales by seller minus refunds == the ledger's sale and refund entries, to the cent.
        assert cents(report.total) == cents(by_day.total) == kinds["SALE"] + kinds["REFUND"]
    a_kinds = by_kind(await ledger(orders, seller(tokens, a)))
    b_kinds = by_kind(await ledger(orders, seller(tokens, b)))
    # Together: 157 sold, 6 refunded, every refunded cent on exactly one seller.
    assert a_kinds["SALE"] + b_kinds["SALE"] == 15700
    assert a_kinds["REFUND"] + b_kinds["REFUND"] == -600
    # The admin's 5 USD splits by what each part still held: 10000:5600 -> 321 and 179.
    assert (a_kinds["REFUND"], b_kinds["REFUND"]) == (-321, -100 - 179)
    assert (a_kinds["COMMISSION_REFUND"], b_kinds["COMMISSION_REFUND"]) == (32, 27)


async def test_the_ledger_balances_to_the_captured_refunded_and_paid_out_totals(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    kept = await sell(orders, product, tokens, {a: 3333, b: 1234})
    cancelled = await sell(orders, product, tokens, {a: 999})
    await refund(orders, admin(tokens), kept.order.order_id, 777)
    await orders.stub.CancelOrder(
        order_service_pb2.CancelOrderRequest(order_id=cancelled.order.order_id),
        metadata=admin(tokens),
    )
    await asyncio.sleep(HOLD + 0.2)
    await run(orders, tokens)
    await refund(orders, seller(tokens, b), kept.order.order_id, 100)  # after the payout

    ids = [uuid.UUID(kept.order.order_id), uuid.UUID(cancelled.order.order_id)]
    # The buyer's side, from the order tables: captured minus refunded (a cancel refunds all).
    captured = await orders.db.fetchval(
        "SELECT sum(total_minor) FROM orders WHERE id = ANY($1::uuid[])", ids
    )
    refunded = await orders.db.fetchval(
        "SELECT sum(amount_minor) FROM refunds WHERE order_id = ANY($1::uuid[])", ids
    )
    assert (captured, refunded) == (3333 + 1234 + 999, 777 + 100)
    paid_out = 0
    for seller_id in (a, b):
        listed = await payouts_stub(orders).ListPayouts(
            payout_service_pb2.ListPayoutsRequest(seller_id="me"),
            metadata=seller(tokens, seller_id),
        )
        paid_out += sum(cents(p.amount) for p in listed.payouts)
    totals = dict.fromkeys(("SALE", "REFUND", "COMMISSION", "COMMISSION_REFUND", "PAYOUT"), 0)
    balances = 0
    for seller_id in (a, b):
        for kind, amount in by_kind(await ledger(orders, seller(tokens, seller_id))).items():
            totals[kind] += amount
        available, pending = await balance(orders, seller(tokens, seller_id))
        balances += available + pending
    assert totals["SALE"] == captured
    assert -totals["REFUND"] == refunded + 999
    # Commission: 10 % of each part, less what refunds gave back; the cancelled part's in full.
    assert -totals["COMMISSION"] == 333 + 123 + 99
    assert 0 < totals["COMMISSION_REFUND"] <= 99 + 77 + 10
    assert -totals["PAYOUT"] == paid_out > 0
    # sum(ledger) == captured parts - refunds - commission kept - payouts, and it is the balance.
    commission_kept = -totals["COMMISSION"] - totals["COMMISSION_REFUND"]
    assert balances == sum(totals.values())
    assert balances == captured - (refunded + 999) - commission_kept - paid_out


async def test_concurrent_payout_runs_pay_each_seller_once_and_exactly_the_settled_balance(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    sellers = [str(uuid.uuid4()) for _ in range(3)]
    for index, seller_id in enumerate(sellers):
        await sell(orders, product, tokens, {seller_id: 1000 + index})
    await asyncio.sleep(HOLD + 0.2)
    # Everything settled in the whole database, before the runs.
    settled = await orders.db.fetch(
        """
        SELECT seller_id, sum(amount_minor) AS available FROM ledger_entries
        GROUP BY seller_id HAVING sum(amount_minor) > 0
        """
    )
    due = {r["seller_id"]: int(r["available"]) for r in settled}
    assert {s: due[s] for s in sellers} == {s: 900 + i for i, s in enumerate(sellers)}

    answers = await asyncio.gather(*(run(orders, tokens) for _ in range(4)))

    paid = [p for answer in answers for p in answer.payouts]
    assert sorted(p.seller_id for p in paid) == sorted(due)  # one payout per seller
    assert {p.seller_id: cents(p.amount) for p in paid} == due
    assert sum(cents(p.amount) for p in paid) == sum(due.values())
    assert len({answer.run_id for answer in answers}) == 4
    for seller_id in sellers:
        assert await balance(orders, seller(tokens, seller_id)) == (0, 0)
    # A later run finds nothing left to pay.
    assert not (await run(orders, tokens)).payouts


async def test_a_refund_after_a_payout_carries_a_negative_balance_forward(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    a = str(uuid.uuid4())
    sale = await sell(orders, product, tokens, {a: 5000})
    await asyncio.sleep(HOLD + 0.2)
    paid = [p for p in (await run(orders, tokens)).payouts if p.seller_id == a]
    assert [cents(p.amount) for p in paid] == [4500]

    await refund(orders, seller(tokens, a), sale.order.order_id, 2000)
    assert await balance(orders, seller(tokens, a)) == (-2000 + 200, 0)
    assert not [p for p in (await run(orders, tokens)).payouts if p.seller_id == a]
    assert await balance(orders, seller(tokens, a)) == (-1800, 0)
    # The next sale pays out only once it has covered the debt.
    await sell(orders, product, tokens, {a: 3000})
    await asyncio.sleep(HOLD + 0.2)
    paid = [p for p in (await run(orders, tokens)).payouts if p.seller_id == a]
    assert [cents(p.amount) for p in paid] == [2700 - 1800]
    listed = await payouts_stub(orders).ListPayouts(
        payout_service_pb2.ListPayoutsRequest(seller_id="me", page_size=1),
        metadata=seller(tokens, a),
    )
    assert [cents(p.amount) for p in listed.payouts] == [900] and listed.next_page_token
    rest = await payouts_stub(orders).ListPayouts(
        payout_service_pb2.ListPayoutsRequest(seller_id="me", page_token=listed.next_page_token),
        metadata=seller(tokens, a),
    )
    assert [cents(p.amount) for p in rest.payouts] == [4500] and not rest.next_page_token


async def expect(call: Awaitable[object], code: grpc.StatusCode, reason: str) -> RemoteError:
    failure = await failure_of(call)
    assert (failure.code, failure.reason) == (code, reason), failure
    return failure


async def test_every_rpc_authorises_and_validates_its_caller(
    orders: OrderService, tokens: TestTokens
) -> None:
    stub = payouts_stub(orders)
    buyer = bearer(tokens.mint())
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    denied = grpc.StatusCode.PERMISSION_DENIED
    invalid = grpc.StatusCode.INVALID_ARGUMENT
    balance_of = payout_service_pb2.GetSellerBalanceRequest
    await expect(
        stub.GetSellerBalance(balance_of(seller_id="me"), metadata=buyer), denied, "ROLE_REQUIRED"
    )
    await expect(
        stub.GetSellerBalance(balance_of(seller_id=b), metadata=seller(tokens, a)),
        denied,
        "NOT_YOUR_LEDGER",
    )
    await expect(
        stub.ListLedgerEntries(
            payout_service_pb2.ListLedgerEntriesRequest(seller_id=b), metadata=seller(tokens, a)
        ),
        denied,
        "NOT_YOUR_LEDGER",
    )
    await expect(
        stub.ListPayouts(
            payout_service_pb2.ListPayoutsRequest(seller_id="-"), metadata=seller(tokens, a)
        ),
        denied,
        "NOT_YOUR_LEDGER",
    )
    await expect(
        stub.RunPayouts(payout_service_pb2.RunPayoutsRequest(), metadata=seller(tokens, a)),
        denied,
        "ROLE_REQUIRED",
    )
    await expect(
        stub.RunPayouts(payout_service_pb2.RunPayoutsRequest(), metadata=buyer),
        denied,
        "ROLE_REQUIRED",
    )
    await expect(
        stub.GetSellerBalance(balance_of(seller_id="me")),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_MISSING",
    )
    bad_id = await expect(
        stub.GetSellerBalance(balance_of(seller_id="a b"), metadata=seller(tokens, a)),
        invalid,
        "INVALID_ARGUMENT",
    )
    assert [v.field for v in bad_id.violations] == ["seller_id"]
    await expect(
        stub.ListLedgerEntries(
            payout_service_pb2.ListLedgerEntriesRequest(seller_id="me", page_size=-1),
            metadata=seller(tokens, a),
        ),
        invalid,
        "INVALID_ARGUMENT",
    )
    await expect(
        stub.ListPayouts(
            payout_service_pb2.ListPayoutsRequest(seller_id="me", page_token="forged"),
            metadata=seller(tokens, a),
        ),
        invalid,
        "INVALID_ARGUMENT",
    )
    # Admins see any seller's money, and every seller's payouts with "-".
    assert await balance(orders, admin(tokens), seller_id=a) == (0, 0)
    everyone = await stub.ListPayouts(
        payout_service_pb2.ListPayoutsRequest(seller_id="-", page_size=1), metadata=admin(tokens)
    )
    assert len(everyone.payouts) <= 1
