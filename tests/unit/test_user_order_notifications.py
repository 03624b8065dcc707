"""Order events to mail: who gets which mail, after their preferences, and only once."""

from __future__ import annotations

import uuid

import pytest

from services.common.money import Money
from services.user.domain.emails import EmailKind
from services.user.domain.model import Preferences, User
from services.user.domain.order_mail import OrderEventKind, OrderLine, OrderNotice
from services.user.service_layer.order_notifications import notify_order_event
from tests.fakes.user import UserWorld

ORDER_ID = "3f0c2a4e-0000-4000-8000-000000000001"


@pytest.fixture
def world() -> UserWorld:
    return UserWorld()


def add_user(world: UserWorld, name: str, *, channels: tuple[str, ...] | None = None) -> User:
    user = User.register(
        email=f"{name}@example.com",
        username=name,
        password_hash="x",
        display_name=name.title(),
        now=world.clock.now(),
    )
    world.store.users[user.id] = user
    if channels is not None:
        world.store.preferences[user.id] = Preferences(user.id, notification_channels=channels)
    return user


def notice(
    kind: OrderEventKind,
    buyer: User,
    sellers: tuple[User, ...],
    *,
    event_id: str | None = None,
    refund: Money | None = None,
) -> OrderNotice:
    lines = tuple(
        OrderLine(f"Kettle {i}", i + 1, seller.id, Money(1000 * (i + 1), "USD"))
        for i, seller in enumerate(sellers)
    )
    return OrderNotice(
        event_id=event_id or str(uuid.uuid4()),
        kind=kind,
        order_id=ORDER_ID,
        buyer_id=buyer.id,
        lines=lines,
        total=Money(sum(line.line_total.minor for line in lines), "USD"),
        refund_amount=refund,
    )


async def notify(world: UserWorld, cmd: OrderNotice) -> int:
    return await notify_order_event(
        cmd, uow=world.uow(), clock=world.clock, base_url="https://shop.example/"
    )


@pytest.mark.parametrize(
    ("kind", "mail_kind", "subject"),
    [
        (OrderEventKind.PLACED, EmailKind.ORDER_PLACED, "placed"),
        (OrderEventKind.SHIPPED, EmailKind.ORDER_SHIPPED, "shipped"),
        (OrderEventKind.DELIVERED, EmailKind.ORDER_DELIVERED, "delivered"),
        (OrderEventKind.CANCELLED, EmailKind.ORDER_CANCELLED, "cancelled"),
    ],
)
async def test_each_buyer_event_mails_the_buyer_once_with_the_order(
    world: UserWorld, kind: OrderEventKind, mail_kind: EmailKind, subject: str
) -> None:
    buyer, seller = add_user(world, "ada"), add_user(world, "sam")
    assert await notify(world, notice(kind, buyer, (seller,))) == 1
    [mail] = world.store.mail_to(buyer.email)
    assert mail.kind is mail_kind and mail.user_id == buyer.id
    assert subject in mail.subject and ORDER_ID in mail.subject
    assert "1 x Kettle 0" in mail.body and "Total: 10.00 USD" in mail.body
    assert f"https://shop.example/orders/{ORDER_ID}" in mail.body
    assert world.store.mail_to(seller.email) == []  # sellers hear of payment, not of this


async def test_a_refund_mail_says_how_much_came_back(world: UserWorld) -> None:
    buyer, seller = add_user(world, "ada"), add_user(world, "sam")
    cmd = notice(OrderEventKind.REFUNDED, buyer, (seller,), refund=Money(250, "USD"))
    await notify(world, cmd)
    [mail] = world.store.mail_to(buyer.email, EmailKind.ORDER_REFUNDED)
    assert "Refunded now: 2.50 USD" in mail.body


async def test_payment_tells_each_seller_what_they_sold_and_only_that(world: UserWorld) -> None:
    buyer = add_user(world, "ada")
    first, second = add_user(world, "sam"), add_user(world, "sue")
    assert await notify(world, notice(OrderEventKind.PAID, buyer, (first, second))) == 2
    [to_first] = world.store.mail_to(first.email, EmailKind.ORDER_SOLD)
    [to_second] = world.store.mail_to(second.email, EmailKind.ORDER_SOLD)
    assert "Kettle 0" in to_first.body and "Kettle 1" not in to_first.body
    assert "2 x Kettle 1" in to_second.body and "Your part: 20.00 USD" in to_second.body
    assert world.store.mail_to(buyer.email) == []  # the buyer had the placed mail


async def test_a_repeated_event_mails_nothing_more(world: UserWorld) -> None:
    buyer, seller = add_user(world, "ada"), add_user(world, "sam")
    cmd = notice(OrderEventKind.PAID, buyer, (seller,), event_id="event-1")
    assert await notify(world, cmd) == 1
    assert await notify(world, cmd) == 0
    assert len(world.store.outbox) == 1
    assert world.store.processed_events == {"event-1": "ORDER_EVENT_TYPE_PAID"}


async def test_opting_out_of_email_stops_updates_but_not_transactional_mail(
    world: UserWorld,
) -> None:
    buyer = add_user(world, "ada", channels=("push",))
    seller = add_user(world, "sam", channels=("sms",))
    for kind in OrderEventKind:
        await notify(world, notice(kind, buyer, (seller,)))
    kinds = sorted(mail.kind.value for mail in world.store.mail_to(buyer.email))
    assert kinds == ["order_cancelled", "order_placed", "order_refunded"]
    assert world.store.mail_to(seller.email) == []  # no "sold" notice by email
    assert len(world.store.processed_events) == len(OrderEventKind)  # each one done


async def test_unknown_users_and_other_events_mail_nobody_but_count_as_done(
    world: UserWorld,
) -> None:
    buyer, seller = add_user(world, "ada"), add_user(world, "sam")
    del world.store.users[buyer.id]
    assert await notify(world, notice(OrderEventKind.SHIPPED, buyer, (seller,))) == 0
    assert await notify(world, notice(OrderEventKind.OTHER, buyer, (seller,))) == 0
    assert world.store.outbox == []
    assert len(world.store.processed_events) == 2
