"""Returns' rules and use cases on in-memory fakes: window, quantities, decisions, refunds."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from services.common.money import Money
from services.order.domain.changes import ChangeState
from services.order.domain.commands import Caller
from services.order.domain.model import Order, OrderItem, Refund
from services.order.domain.returns import (
    CreateReturn,
    DecideReturn,
    GetReturn,
    ListReturns,
    ReceiveReturn,
    RequestedLine,
    Return,
    ReturnState,
)
from services.order.domain.status import OrderStatus
from services.order.service_layer import returns as use_cases
from services.order.service_layer.refunds import ChangeRunner
from tests.fakes.cart import ADDRESS
from tests.fakes.clock import ManualClock
from tests.fakes.order import FakeInventory, FakeUnitOfWork
from tests.fakes.returns import FakeReturnUnitOfWork, RefundingGateway, ReturnStore

BUYER = uuid.UUID("00000000-0000-4000-8000-0000000000b1")
SELLER_A, SELLER_B = "seller-a", "seller-b"
WINDOW = timedelta(days=30)


class World:
    """One order delivered now: 2 lamps (10.00 each) of seller A, 1 shade (5.00) of seller B."""

    def __init__(self) -> None:
        self.store = ReturnStore()
        self.clock = ManualClock()
        self.gateway = RefundingGateway()
        self.changes = ChangeRunner(
            uow=lambda: FakeUnitOfWork(self.store.orders),
            inventory=FakeInventory(),
            payments=self.gateway,
            clock=self.clock,
        )
        now = self.clock.now()
        order = Order.place(
            order_id=uuid.uuid4(),
            buyer_id=BUYER,
            items=[
                OrderItem("lamp", SELLER_A, "Lamp", 2, Money(1000, "EUR")),
                OrderItem("shade", SELLER_B, "Shade", 1, Money(500, "EUR")),
            ],
            shipping_address=ADDRESS,
            at=now,
        )
        order.mark_paid(gateway_reference="ch_1", at=now)
        for seller in (SELLER_A, SELLER_B):
            order.ship(
                seller_id=seller,
                product_ids=frozenset(),
                carrier="DHL",
                tracking_number="T",
                at=now,
            )
        order.mark_delivered(actor="admin", at=now)
        order.mark_saved()
        self.order = order
        self.store.orders.orders[order.order_id] = order

    def uow(self) -> FakeReturnUnitOfWork:
        return FakeReturnUnitOfWork(self.store)

    async def ask(
        self, *lines: tuple[str, int], key: str | None = None, who: Caller | None = None
    ) -> Return:
        key = key or uuid.uuid4().hex
        command = CreateReturn(
            order_id=self.order.order_id,
            caller=who or Caller(str(BUYER)),
            lines=tuple(RequestedLine(p, q) for p, q in lines),
            reason="broken",
            idempotency_key=key,
            request_fingerprint=repr(lines).encode(),
        )
        return await use_cases.create_return(command, uow=self.uow, clock=self.clock, window=WINDOW)

    async def decide(self, item: Return, *, approve: bool = True, who: str = SELLER_A) -> Return:
        command = DecideReturn(item.return_id, Caller(who, is_seller=True), approve, "ok")
        return await use_cases.decide_return(command, uow=self.uow, clock=self.clock)

    async def receive(self, item: Return, who: str = SELLER_A) -> Return:
        return await use_cases.receive_return(
            ReceiveReturn(item.return_id, Caller(who, is_seller=True)),
            uow=self.uow,
            changes=self.changes,
            clock=self.clock,
        )

    async def read(self, item: Return, who: Caller | None = None) -> Return:
        return await use_cases.get_return(
            GetReturn(item.return_id, who or Caller(str(BUYER))), uow=self.uow, clock=self.clock
        )


@pytest.fixture()
def world() -> World:
    return World()


async def test_a_return_is_asked_approved_received_and_refunded_once(world: World) -> None:
    asked = await world.ask(("lamp", 1))
    assert (asked.state, asked.seller_id, asked.items_total) == (
        ReturnState.REQUESTED,
        SELLER_A,
        Money(1000, "EUR"),
    )
    approved = await world.decide(asked)
    assert approved.state is ReturnState.APPROVED
    refunded = await world.receive(approved)
    assert refunded.state is ReturnState.REFUNDED
    assert refunded.refund_amount == Money(1000, "EUR")
    assert list(world.gateway.refunds.values()) == [Money(1000, "EUR")]
    assert world.order.status is OrderStatus.PARTIALLY_REFUNDED
    assert world.order.refunded == Money(1000, "EUR")
    # Receiving again neither refunds again nor fails.
    again = await world.receive(approved)
    assert again.state is ReturnState.REFUNDED and len(world.gateway.refunds) == 1


async def test_the_same_key_returns_the_first_return_and_another_body_is_refused(
    world: World,
) -> None:
    first = await world.ask(("lamp", 1), key="k")
    assert (await world.ask(("lamp", 1), key="k")).return_id == first.return_id
    with pytest.raises(FailedPrecondition) as reused:
        await world.ask(("lamp", 2), key="k")
    assert reused.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert len(world.store.returns) == 1


async def test_a_line_is_never_returned_beyond_its_quantity_unless_a_return_was_rejected(
    world: World,
) -> None:
    first = await world.ask(("lamp", 1))
    await world.ask(("lamp", 1))
    with pytest.raises(FailedPrecondition) as exceeded:
        await world.ask(("lamp", 1))
    assert exceeded.value.reason == "RETURN_QUANTITY_EXCEEDED"
    assert exceeded.value.metadata["returnable"] == "0"
    await world.decide(first, approve=False)
    assert (await world.ask(("lamp", 1))).state is ReturnState.REQUESTED


async def test_concurrent_asks_for_the_same_units_return_them_once(world: World) -> None:
    results = await asyncio.gather(
        *(world.ask(("lamp", 2)) for _ in range(4)), return_exceptions=True
    )
    made = [r for r in results if isinstance(r, Return)]
    refused = [r for r in results if isinstance(r, DomainError)]
    assert len(made) == 1 and len(refused) == 3
    assert {r.reason for r in refused} == {"RETURN_QUANTITY_EXCEEDED"}


async def test_the_window_closes_days_after_delivery(world: World) -> None:
    world.clock.advance(WINDOW)
    await world.ask(("lamp", 1))  # the last moment of the window
    world.clock.advance(timedelta(seconds=1))
    with pytest.raises(FailedPrecondition) as closed:
        await world.ask(("lamp", 1))
    assert closed.value.reason == "RETURN_WINDOW_CLOSED"
    assert closed.value.metadata["window_days"] == "30"


async def test_only_delivered_orders_of_one_seller_and_their_own_lines_are_returned(
    world: World,
) -> None:
    with pytest.raises(FailedPrecondition) as spans:
        await world.ask(("lamp", 1), ("shade", 1))
    assert spans.value.reason == "RETURN_SPANS_SELLERS"
    with pytest.raises(FailedPrecondition) as foreign:
        await world.ask(("kettle", 1))
    assert foreign.value.reason == "RETURN_ITEM_NOT_IN_ORDER"
    world.order.status = OrderStatus.SHIPPED
    with pytest.raises(FailedPrecondition) as early:
        await world.ask(("lamp", 1))
    assert early.value.reason == "ORDER_NOT_DELIVERED"


async def test_only_the_buyer_asks_and_only_the_lines_seller_or_an_admin_decides(
    world: World,
) -> None:
    with pytest.raises(PermissionDenied) as seller_asks:
        await world.ask(("lamp", 1), who=Caller(SELLER_A, is_seller=True))
    assert seller_asks.value.reason == "NOT_ORDER_BUYER"
    with pytest.raises(NotFound) as stranger:
        await world.ask(("lamp", 1), who=Caller(str(uuid.uuid4())))
    assert stranger.value.reason == "ORDER_NOT_FOUND"
    asked = await world.ask(("lamp", 1))
    with pytest.raises(NotFound) as other_seller:  # seller B cannot even see A's return
        await world.decide(asked, who=SELLER_B)
    assert other_seller.value.reason == "RETURN_NOT_FOUND"
    with pytest.raises(PermissionDenied) as buyer_decides:
        await world.decide(asked, who=str(BUYER))
    assert buyer_decides.value.reason == "NOT_RETURN_SELLER"
    admin = Caller("admin-1", is_admin=True)
    decided = await use_cases.decide_return(
        DecideReturn(asked.return_id, admin, False, "worn"), uow=world.uow, clock=world.clock
    )
    assert (decided.state, decided.decision_reason) == (ReturnState.REJECTED, "worn")
    with pytest.raises(FailedPrecondition) as late:
        await world.decide(asked)
    assert late.value.reason == "RETURN_STATE_INVALID"
    with pytest.raises(FailedPrecondition) as unapproved:
        await world.receive(asked)
    assert unapproved.value.reason == "RETURN_STATE_INVALID"


async def test_the_refund_is_capped_by_what_the_order_may_still_refund(world: World) -> None:
    world.order.refund(_manual_refund(world, Money(1500, "EUR")))
    world.order.mark_saved()
    asked = await world.decide(await world.ask(("lamp", 1)))
    refunded = await world.receive(asked)
    # Seller A's lines were worth 20.00, 15.00 of which went back already.
    assert refunded.refund_amount == Money(500, "EUR")
    assert world.order.refunded == Money(2000, "EUR")
    second = await world.decide(await world.ask(("lamp", 1)))
    closed = await world.receive(second)
    assert closed.state is ReturnState.REFUNDED and closed.refund_amount == Money(0, "EUR")
    assert len(world.gateway.refunds) == 1


async def test_an_unanswered_refund_settles_when_the_change_is_finished_later(
    world: World,
) -> None:
    asked = await world.decide(await world.ask(("lamp", 2)))
    world.gateway.answer = "silent"
    with pytest.raises(Unavailable) as pending:
        await world.receive(asked)
    assert pending.value.reason == "CHANGE_PENDING"
    waiting = await world.read(asked)
    assert waiting.state is ReturnState.RECEIVED and waiting.refund_change_id is not None
    with pytest.raises(Aborted) as busy:
        await world.receive(asked)
    assert busy.value.reason == "RETURN_REFUND_IN_PROGRESS"
    # The reconciler finishes the change with the same gateway key; the return follows.
    world.gateway.answer = "ok"
    change = world.store.orders.changes[waiting.refund_change_id]
    await world.changes.finish(change)
    settled = await world.read(asked)
    assert settled.state is ReturnState.REFUNDED and settled.refund_amount == Money(2000, "EUR")
    assert list(world.gateway.refunds) == [change.gateway_key]


async def test_a_refused_refund_leaves_the_return_received_and_a_retry_refunds(
    world: World,
) -> None:
    asked = await world.decide(await world.ask(("lamp", 1)))
    world.gateway.answer = "refuse"
    with pytest.raises(Unavailable):
        await world.receive(asked)
    failed = await world.read(asked)
    assert failed.state is ReturnState.RECEIVED and failed.refund_failure
    assert [c.state for c in world.store.orders.changes.values()] == [ChangeState.FAILED]
    world.gateway.answer = "ok"
    retried = await world.receive(asked)
    assert retried.state is ReturnState.REFUNDED and retried.refund_failure == ""
    assert len(world.gateway.refunds) == 1


async def test_lists_show_the_buyer_all_and_a_seller_theirs_page_by_page(world: World) -> None:
    mine = [
        await world.ask(("lamp", 1)),
        await world.ask(("shade", 1)),
        await world.ask(("lamp", 1)),
    ]
    buyer = Caller(str(BUYER))
    first, cursor = await use_cases.list_returns(
        ListReturns(world.order.order_id, buyer, 2, None), uow=world.uow, clock=world.clock
    )
    rest, end = await use_cases.list_returns(
        ListReturns(world.order.order_id, buyer, 2, cursor), uow=world.uow, clock=world.clock
    )
    assert sorted(r.return_id for r in first + rest) == sorted(r.return_id for r in mine)
    assert cursor is not None and end is None
    theirs, _ = await use_cases.list_returns(
        ListReturns(world.order.order_id, Caller(SELLER_B, is_seller=True), 10, None),
        uow=world.uow,
        clock=world.clock,
    )
    assert [r.seller_id for r in theirs] == [SELLER_B]


def _manual_refund(world: World, amount: Money) -> Refund:
    return Refund(
        refund_id=uuid.uuid4(),
        idempotency_key="manual",
        request_fingerprint=b"",
        actor=SELLER_A,
        seller_id=SELLER_A,
        amount=amount,
        reason="manual",
        gateway_reference="ch_1",
        at=world.clock.now(),
    )
