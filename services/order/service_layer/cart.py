"""The cart's use cases: read it priced, change its lines, and check it out through the saga.

Checking out holds the cart (one row lock, one short transaction), then calls the checkout
saga of CreateOrder with no connection held, then settles the hold from the key's durable
outcome: a paid order takes its lines out, a failure leaves the cart as it was, and an
unknown outcome keeps the hold until the saga's record says how it ended. Every other cart
call settles a hold it finds the same way, so nothing depends on the checkout's caller
staying around.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

import structlog

from services.common.clock import Clock
from services.common.errors import Aborted, FailedPrecondition, NotFound, Unavailable
from services.order.domain.cart import (
    AddCartItem,
    Cart,
    CartView,
    CheckoutCart,
    CheckoutOutcome,
    GetCart,
    ProductQuote,
    RemoveCartItem,
    UpdateCartItem,
    price,
)
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import Order, OrderLine
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.ports import (
    CartUnitOfWork,
    CartUnitOfWorkFactory,
    Catalog,
    OrderPlacer,
)

log = structlog.get_logger("cart")


@dataclass(frozen=True)
class CheckoutTimes:
    """How long a checkout's runner may hold the cart, and how a retry waits for it."""

    # Past this, a retry with the same key takes over a checkout whose runner stopped
    # (crashed, or lost its client); a running saga answers well within it.
    lease_seconds: float = 30.0
    poll_seconds: float = 0.05


async def get_cart(
    command: GetCart, *, uow: CartUnitOfWorkFactory, catalog: Catalog, clock: Clock
) -> CartView:
    """The buyer's cart with today's prices, discounts and availability of every line."""
    async with uow() as work:
        cart = await work.carts.get(command.buyer_id)
        if cart.hold is not None:
            # A checkout held the cart: its outcome may be known by now.
            cart = await work.carts.get(command.buyer_id, for_update=True)
            if await _settle(work, cart, clock):
                await work.carts.save(cart)
                await work.commit()
    return await _priced(cart, catalog)


async def add_cart_item(
    command: AddCartItem, *, uow: CartUnitOfWorkFactory, catalog: Catalog, clock: Clock
) -> CartView:
    """Add units of a product on sale, priced as the catalog prices it now."""
    # Asked before the transaction: no connection waits on the product service.
    quote = (await catalog.quote([command.product_id])).get(command.product_id)
    if quote is None:
        raise NotFound(
            "no product on sale has this id",
            reason=ErrorReason.PRODUCT_NOT_FOUND,
            metadata={"product_id": command.product_id},
        )
    async with uow() as work:
        cart = await work.carts.get(command.buyer_id, for_update=True)
        await _settle(work, cart, clock)
        cart.add(quote, command.quantity, at=clock.now())
        await work.carts.save(cart)
        await work.commit()
    return await _priced(cart, catalog)


async def update_cart_item(
    command: UpdateCartItem, *, uow: CartUnitOfWorkFactory, catalog: Catalog, clock: Clock
) -> CartView:
    """Set the quantity of a line."""
    async with uow() as work:
        cart = await work.carts.get(command.buyer_id, for_update=True)
        await _settle(work, cart, clock)
        cart.set_quantity(command.product_id, command.quantity, at=clock.now())
        await work.carts.save(cart)
        await work.commit()
    return await _priced(cart, catalog)


async def remove_cart_item(
    command: RemoveCartItem, *, uow: CartUnitOfWorkFactory, catalog: Catalog, clock: Clock
) -> CartView:
    """Take a line out of the cart."""
    async with uow() as work:
        cart = await work.carts.get(command.buyer_id, for_update=True)
        await _settle(work, cart, clock)
        cart.remove(command.product_id, at=clock.now())
        await work.carts.save(cart)
        await work.commit()
    return await _priced(cart, catalog)


class _Step(Enum):
    """What a checkout request does when the cart is held or the key already used."""

    REPLAY = "replay"  # the key's checkout ended: the saga answers its stored outcome
    WAIT = "wait"  # a request with the same key is running it now


async def checkout_cart(
    command: CheckoutCart,
    *,
    uow: CartUnitOfWorkFactory,
    orders: OrderPlacer,
    clock: Clock,
    wait_seconds: float,
    times: CheckoutTimes | None = None,
) -> Order:
    """Buy the cart's lines as one order through the checkout saga, once per key.

    The saga brings its guarantees (one order and one charge per key, unknown payment
    outcomes found out, reservations given back); the hold on the cart adds that no other
    key buys the same lines meanwhile.
    """
    times = times or CheckoutTimes()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    owner = uuid.uuid4()
    while True:
        step = await _begin(command, owner, uow, clock, times)
        if step is _Step.REPLAY:
            return await orders.place_order(_place(command, ()), wait_seconds=0.0)
        if step is not _Step.WAIT:
            lines = step
            break
        if loop.time() >= deadline:
            raise Aborted(
                "a request with this idempotency key is still running; retry later",
                reason=ErrorReason.REQUEST_IN_PROGRESS,
            )
        await asyncio.sleep(times.poll_seconds)
    remaining = max(0.0, deadline - loop.time())
    try:
        return await orders.place_order(_place(command, lines), wait_seconds=remaining)
    finally:
        await _finish(command, owner, uow, clock)


async def _begin(
    command: CheckoutCart,
    owner: uuid.UUID,
    uow: CartUnitOfWorkFactory,
    clock: Clock,
    times: CheckoutTimes,
) -> _Step | tuple[OrderLine, ...]:
    """Hold the cart for this request, or say why it must replay or wait."""
    now = clock.now()
    lease_until = now + timedelta(seconds=times.lease_seconds)
    async with uow() as work:
        cart = await work.carts.get(command.buyer_id, for_update=True)
        outcome, fingerprint = await work.checkouts.outcome(
            command.buyer_id, command.idempotency_key
        )
        if fingerprint is not None and fingerprint != command.request_fingerprint:
            raise FailedPrecondition(
                "this idempotency key was used for a different request; use a new key",
                reason=ErrorReason.IDEMPOTENCY_KEY_REUSED,
            )
        settled = await _settle(work, cart, clock)
        step: _Step | tuple[OrderLine, ...]
        hold = cart.hold
        if outcome in (CheckoutOutcome.PLACED, CheckoutOutcome.FAILED):
            step = _Step.REPLAY
        elif hold is not None and hold.key != command.idempotency_key:
            raise Aborted(
                "another checkout of this cart is in progress; read the cart when it has finished",
                reason=ErrorReason.CART_CHECKOUT_IN_PROGRESS,
            )
        elif hold is not None and now < hold.lease_until:
            step = _Step.WAIT
        elif hold is not None:
            log.info("cart_checkout_taken_over", buyer_id=str(command.buyer_id))
            step = cart.take_over(owner, lease_until=lease_until)
        elif outcome is CheckoutOutcome.RUNNING:
            step = _Step.WAIT  # the key's saga runs without a hold: another path owns it
        else:
            step = cart.hold_for_checkout(
                command.idempotency_key, owner, command.product_ids, lease_until=lease_until
            )
        if settled or isinstance(step, tuple):
            await work.carts.save(cart)
            await work.commit()
    return step


async def _finish(
    command: CheckoutCart, owner: uuid.UUID, uow: CartUnitOfWorkFactory, clock: Clock
) -> None:
    """Settle the hold this request ran; an unknown outcome is left for a retry or a read."""
    try:
        async with uow() as work:
            cart = await work.carts.get(command.buyer_id, for_update=True)
            if cart.hold is None or cart.hold.owner != owner:
                return  # settled already, or taken over by a retry that settles it
            now = clock.now()
            outcome, _ = await work.checkouts.outcome(command.buyer_id, cart.hold.key)
            if cart.settle(outcome, now=now, owner=owner) or cart.lapse(owner, now=now):
                await work.carts.save(cart)
                await work.commit()
    except Exception as error:
        # The hold stays; the next call on the cart settles it from the same records.
        log.warning("cart_checkout_not_settled", buyer_id=str(command.buyer_id), error=str(error))


async def _settle(work: CartUnitOfWork, cart: Cart, clock: Clock) -> bool:
    """Apply the outcome of a checkout holding the (locked) cart; whether it changed."""
    if cart.hold is None:
        return False
    outcome, _ = await work.checkouts.outcome(cart.buyer_id, cart.hold.key)
    return cart.settle(outcome, now=clock.now())


async def _priced(cart: Cart, catalog: Catalog) -> CartView:
    """The cart priced now; an unreachable catalog leaves the lines' availability unknown."""
    quotes: dict[str, ProductQuote] | None = {}
    if cart.lines:
        try:
            quotes = await catalog.quote([line.product_id for line in cart.lines])
        except Unavailable:
            quotes = None
    return price(cart, quotes)


def _place(command: CheckoutCart, lines: Sequence[OrderLine]) -> PlaceOrder:
    return PlaceOrder(
        buyer_id=command.buyer_id,
        idempotency_key=command.idempotency_key,
        request_fingerprint=command.request_fingerprint,
        lines=tuple(lines),
        shipping_address=command.shipping_address,
        payment_method_token=command.payment_method_token,
        address_id=command.address_id,
    )
