"""Order notifications: which mail an order event sends to whom, and what it says.

Preferences are coarse today: a user's `notification_channels` either include email or
not. Leaving email out opts a user out of the order *updates* (shipped, delivered, and a
seller's "you sold" notice). The mails that confirm a contract or a movement of money
(the order confirmation, a cancellation, a refund) are transactional and always go: the
buyer is owed a durable record of them (consumer law in most markets requires the
order confirmation), and they are no marketing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from services.common.money import Money
from services.user.domain.emails import EmailKind, OutgoingEmail

EMAIL_CHANNEL = "email"


class OrderEventKind(StrEnum):
    """The order event types the user service mails about, by their contract names."""

    PLACED = "ORDER_EVENT_TYPE_PLACED"
    PAID = "ORDER_EVENT_TYPE_PAID"
    SHIPPED = "ORDER_EVENT_TYPE_SHIPPED"
    DELIVERED = "ORDER_EVENT_TYPE_DELIVERED"
    REFUNDED = "ORDER_EVENT_TYPE_REFUNDED"
    CANCELLED = "ORDER_EVENT_TYPE_CANCELLED"
    OTHER = "OTHER"


# The buyer's mail per event; a seller's "sold" notice goes when the payment is captured,
# the moment the sale is real (a placed order may still fail its payment).
_BUYER_KINDS: dict[OrderEventKind, EmailKind] = {
    OrderEventKind.PLACED: EmailKind.ORDER_PLACED,
    OrderEventKind.SHIPPED: EmailKind.ORDER_SHIPPED,
    OrderEventKind.DELIVERED: EmailKind.ORDER_DELIVERED,
    OrderEventKind.REFUNDED: EmailKind.ORDER_REFUNDED,
    OrderEventKind.CANCELLED: EmailKind.ORDER_CANCELLED,
}

# Sent whatever the preferences say: see the module docstring.
TRANSACTIONAL: frozenset[EmailKind] = frozenset(
    {EmailKind.ORDER_PLACED, EmailKind.ORDER_CANCELLED, EmailKind.ORDER_REFUNDED}
)


@dataclass(frozen=True)
class OrderLine:
    """One line of the order as the mail lists it."""

    title: str
    quantity: int
    seller_id: uuid.UUID | None
    line_total: Money


@dataclass(frozen=True)
class OrderNotice:
    """An order event, reduced to what its mails need; the command of `notify_order_event`."""

    event_id: str
    kind: OrderEventKind
    order_id: str
    buyer_id: uuid.UUID | None
    lines: tuple[OrderLine, ...]
    total: Money | None
    refund_amount: Money | None = None

    def seller_ids(self) -> tuple[uuid.UUID, ...]:
        """The sellers of the order, each once, in the order of their first line."""
        return tuple(dict.fromkeys(line.seller_id for line in self.lines if line.seller_id))

    def recipient_ids(self) -> tuple[uuid.UUID, ...]:
        """The users a mail about this event may go to."""
        if self.kind not in _BUYER_KINDS and self.kind is not OrderEventKind.PAID:
            return ()
        buyer = () if self.buyer_id is None else (self.buyer_id,)
        sellers = self.seller_ids() if self.kind is OrderEventKind.PAID else ()
        return tuple(dict.fromkeys((*buyer, *sellers)))


@dataclass(frozen=True)
class Recipient:
    """A user a mail may go to: their address and the channels they accept."""

    user_id: uuid.UUID
    email: str
    channels: tuple[str, ...] = (EMAIL_CHANNEL,)

    def accepts(self, kind: EmailKind) -> bool:
        """Whether a mail of this kind may go to this user."""
        return kind in TRANSACTIONAL or EMAIL_CHANNEL in self.channels


def order_mails(
    notice: OrderNotice, recipients: Mapping[uuid.UUID, Recipient], *, base_url: str
) -> list[OutgoingEmail]:
    """The mails an order event sends, after the recipients' preferences.

    Users missing from `recipients` (unknown, or erased) get nothing.
    """
    link = f"{base_url.rstrip('/')}/orders/{notice.order_id}"
    mails: list[OutgoingEmail] = []
    buyer_kind = _BUYER_KINDS.get(notice.kind)
    buyer = recipients.get(notice.buyer_id) if notice.buyer_id else None
    if buyer_kind is not None and buyer is not None and buyer.accepts(buyer_kind):
        mails.append(_buyer_mail(notice, buyer, buyer_kind, link))
    if notice.kind is OrderEventKind.PAID:
        for seller_id in notice.seller_ids():
            seller = recipients.get(seller_id)
            if seller is not None and seller.accepts(EmailKind.ORDER_SOLD):
                mails.append(_sold_mail(notice, seller, link))
    return mails


_BUYER_TEXT: dict[EmailKind, tuple[str, str]] = {
    EmailKind.ORDER_PLACED: (
        "Order {id} placed",
        "Thank you for your order. We have received it and are taking the payment.",
    ),
    EmailKind.ORDER_SHIPPED: ("Order {id} shipped", "Every item of your order is on its way."),
    EmailKind.ORDER_DELIVERED: ("Order {id} delivered", "Your order has been delivered."),
    EmailKind.ORDER_REFUNDED: ("Order {id} refunded", "A refund of your order was issued."),
    EmailKind.ORDER_CANCELLED: (
        "Order {id} cancelled",
        "Your order was cancelled. Any payment taken is refunded.",
    ),
}


def format_money(money: Money) -> str:
    """An amount as people read it: "32.50 USD"."""
    sign = "-" if money.minor < 0 else ""
    units, cents = divmod(abs(money.minor), 100)
    return f"{sign}{units}.{cents:02d} {money.currency}"


def _lines(lines: tuple[OrderLine, ...]) -> str:
    return "".join(
        f"  {line.quantity} x {line.title}  {format_money(line.line_total)}\n" for line in lines
    )


def _buyer_mail(notice: OrderNotice, buyer: Recipient, kind: EmailKind, link: str) -> OutgoingEmail:
    subject, opening = _BUYER_TEXT[kind]
    body = f"{opening}\n\nOrder {notice.order_id}\n\n{_lines(notice.lines)}"
    if notice.total is not None:
        body += f"\n  Total: {format_money(notice.total)}\n"
    if kind is EmailKind.ORDER_REFUNDED and notice.refund_amount is not None:
        body += f"  Refunded now: {format_money(notice.refund_amount)}\n"
    body += f"\nSee the order at:\n\n  {link}\n"
    return OutgoingEmail(buyer.email, subject.format(id=notice.order_id), body, kind, buyer.user_id)


def _sold_mail(notice: OrderNotice, seller: Recipient, link: str) -> OutgoingEmail:
    own = tuple(line for line in notice.lines if line.seller_id == seller.user_id)
    body = f"You sold items in order {notice.order_id}; the payment is captured.\n\n{_lines(own)}"
    if own:
        total = own[0].line_total
        for line in own[1:]:
            total = total + line.line_total
        body += f"\n  Your part: {format_money(total)}\n"
    body += f"\nShip them and add the tracking number at:\n\n  {link}\n"
    return OutgoingEmail(
        seller.email,
        f"You sold items in order {notice.order_id}",
        body,
        EmailKind.ORDER_SOLD,
        seller.user_id,
    )
