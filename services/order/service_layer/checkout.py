"""Checkout: place an order exactly once per idempotency key, as a saga over stock and payment."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.common.clock import Clock
from services.common.deadlines import outliving_context
from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Unavailable,
)
from services.order.domain.commands import PlaceOrder
from services.order.domain.idempotency import IdempotencyRecord, KeyState
from services.order.domain.model import GatewayCall, Order, OrderItem, ShippingAddress
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import SYSTEM_ACTOR, MixedCurrencies, OrderStatus
from services.order.service_layer.charging import charge
from services.order.service_layer.idempotency_keys import (
    release_key,
    replay,
    store_error,
)
from services.order.service_layer.payment_recovery import Settled, new_call, order_keys
from services.order.service_layer.ports import (
    Buyers,
    Capture,
    Inventory,
    OrderCodec,
    PaymentGateway,
    UnitOfWorkFactory,
)
from services.order.service_layer.pricing import price_order
from services.order.service_layer.stock import commit_stock, release_stock

log = structlog.get_logger("orders")


async def place_order(
    command: PlaceOrder,
    *,
    uow: UnitOfWorkFactory,
    checkout: Checkout,
    clock: Clock,
    wait_seconds: float,
) -> Order:
    """Place the order, or replay the outcome of the first request with the same key.

    A retry that finds the first request still running waits for it up to `wait_seconds`
    (measured on the event loop's monotonic clock), then answers ABORTED.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        # The claim and the start of its saga are one step the caller cannot interrupt: a
        # deadline landing after the claim committed would otherwise leave the key held
        # with no saga behind it, and every retry ABORTED until the lease ran out.
        claiming = asyncio.ensure_future(_claim_and_start(command, uow, checkout, clock))
        # A caller that was cancelled no longer awaits it; its failure is not news to anyone.
        claiming.add_done_callback(lambda task: task.cancelled() or task.exception())
        existing, saga = await asyncio.shield(claiming)
        if saga is not None:
            return await asyncio.shield(saga)
        record: IdempotencyRecord | None = existing
        while record is not None:
            if record.request_fingerprint != command.request_fingerprint:
                raise FailedPrecondition(
                    "this idempotency key was used for a different request; use a new key",
                    reason=ErrorReason.IDEMPOTENCY_KEY_REUSED,
                )
            if record.state is KeyState.COMPLETED:
                return replay(record, checkout.codec)
            if loop.time() >= deadline:
                raise Aborted(
                    "a request with this idempotency key is still running; retry later",
                    reason=ErrorReason.REQUEST_IN_PROGRESS,
                )
            await asyncio.sleep(checkout.poll_seconds)
            async with uow() as work:
                record = await work.idempotency.get(command.buyer_id, command.idempotency_key)
        # The first request gave the key back (it failed without a trace): claim it again.


async def _claim_and_start(
    command: PlaceOrder, uow: UnitOfWorkFactory, checkout: Checkout, clock: Clock
) -> tuple[IdempotencyRecord | None, asyncio.Task[Order] | None]:
    """Claim the key and start its saga; or the record of whoever holds it, and no saga."""
    # The key names its order from the claim on (one statement, no separate attach), so a
    # crash at any later step leaves the reconciler the order to settle.
    order_id = uuid.uuid4()
    async with uow() as work:
        existing = await work.idempotency.claim(
            command.buyer_id,
            command.idempotency_key,
            command.request_fingerprint,
            lease_until=clock.now() + timedelta(seconds=checkout.lease_seconds),
            order_id=order_id,
        )
        await work.commit()
    if existing is not None:
        return existing, None
    return None, checkout.start(command, order_id)


@dataclass(frozen=True)
class CheckoutPlacer:
    """`place_order` bound to its ports: the `OrderPlacer` the cart checks out through."""

    uow: UnitOfWorkFactory
    checkout: Checkout
    clock: Clock

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        """Place the order exactly as CreateOrder does, with the same key semantics."""
        return await place_order(
            command,
            uow=self.uow,
            checkout=self.checkout,
            clock=self.clock,
            wait_seconds=wait_seconds,
        )


@dataclass
class Checkout:
    """The checkout saga: check the buyer, reserve, record, charge, confirm.

    `place_order` claims the key and hands the saga here. Each saga runs in its own task, shielded from the RPC: a client that disconnects or
    times out does not stop it halfway, and its retry finds the stored outcome.
    """

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    codec: OrderCodec
    buyers: Buyers
    clock: Clock
    poll_seconds: float = 0.05
    # How long a saga's claim on its key lasts unless renewed: after a crash the reconciler
    # takes the saga over this soon.
    lease_seconds: float = 10.0
    # Called with each step's name as the saga passes it; a no-op unless the composition
    # root passes a hook (the crash tests kill the process at a step with one).
    checkpoint: Callable[[str], None] = lambda step: None
    _sagas: set[asyncio.Task[Order]] = field(default_factory=set, repr=False)
    _orders_in_flight: set[uuid.UUID] = field(default_factory=set, repr=False)

    def in_flight(self) -> frozenset[uuid.UUID]:
        """The orders this process is placing right now, which the reconciler leaves alone."""
        return frozenset(self._orders_in_flight)

    def start(self, command: PlaceOrder, order_id: uuid.UUID) -> asyncio.Task[Order]:
        """Run the saga of a freshly claimed key (naming `order_id`) in its own task."""
        # Shielded from the RPC, and outliving it, so it does not inherit its deadline.
        saga = asyncio.create_task(self._run(command, order_id), context=outliving_context())
        self._sagas.add(saga)
        saga.add_done_callback(self._forget)
        return saga

    async def drain(self, grace_seconds: float) -> None:
        """Let running sagas finish before the pools they use close."""
        if self._sagas:
            await asyncio.wait(set(self._sagas), timeout=grace_seconds)

    def _forget(self, saga: asyncio.Task[Order]) -> None:
        self._sagas.discard(saga)
        if not saga.cancelled():
            # The caller may be gone; its outcome is stored on the key and logged already.
            saga.exception()

    def lease_end(self) -> datetime:
        """When a claim made now lapses unless renewed."""
        return self.clock.now() + timedelta(seconds=self.lease_seconds)

    async def _run(self, command: PlaceOrder, order_id: uuid.UUID) -> Order:
        log.info("order_saga_started", order_id=str(order_id))
        paying = answered = False
        self._orders_in_flight.add(order_id)
        heartbeat = asyncio.create_task(self._keep_leased(command))
        try:
            address = await self._check_buyer(command)
            self.checkpoint("before_reserve")
            order, authorize_call = await self._reserve_and_record(command, order_id, address)
            self.checkpoint("after_record")
            paying = True
            settled: list[Settled] = []
            capture = await charge(
                command,
                order,
                uow=self.uow,
                payments=self.payments,
                inventory=self.inventory,
                clock=self.clock,
                checkpoint=self.checkpoint,
                authorize_call=authorize_call,
                settled=settled,
            )
            self.checkpoint("after_capture")
            confirmed = await self._confirm(command, order, capture, settled)
            answered = True
            return confirmed
        except DomainError:
            raise  # each failure path already compensated, stored or handed over its outcome
        except BaseException:
            log.exception("order_saga_crashed", order_id=str(order_id), paying=paying)
            if paying:
                # Money may have moved: keep the key in progress so no retry charges again;
                # the reconciler asks the gateway and settles the order.
                log.error("order_needs_reconciliation", order_id=str(order_id))
            else:
                await self._undo(command, order_id)
            raise
        finally:
            heartbeat.cancel()
            self._orders_in_flight.discard(order_id)
            if not answered:
                await self._lapse_lease(command)

    async def _keep_leased(self, command: PlaceOrder) -> None:
        """Renew the key's lease while the saga runs, so no reconciler takes it over."""
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            try:
                async with self.uow() as uow:
                    await uow.idempotency.lease(
                        command.buyer_id, command.idempotency_key, self.lease_end()
                    )
                    await uow.commit()
            except Exception as error:
                log.warning("saga_lease_not_renewed", error=str(error))

    async def _lapse_lease(self, command: PlaceOrder) -> None:
        """A key the saga left in progress goes to the reconciler now, not at lease end."""
        try:
            async with self.uow() as uow:
                await uow.idempotency.lease(
                    command.buyer_id, command.idempotency_key, self.clock.now()
                )
                await uow.commit()
        except Exception as error:
            log.warning("saga_lease_not_lapsed", error=str(error))

    async def _check_buyer(self, command: PlaceOrder) -> ShippingAddress:
        """The buyer may buy (the user service says so), and the address to ship to.

        Users live in the user service's database, so no foreign key can hold buyer_id to
        an account: this call is where that rule is enforced, before anything is reserved.
        """
        try:
            if command.address_id is not None:
                return await self.buyers.shipping_address(command.buyer_id, command.address_id)
            await self.buyers.check_buyer(command.buyer_id)
        except (Unavailable, InvalidArgument):
            # Not the buyer's outcome (the user service is down, or refused what we let
            # through): give the key back so a retry with it runs afresh.
            await release_key(self.uow, command)
            raise
        except DomainError as error:
            await store_error(self.uow, command, error)
            raise
        if command.shipping_address is None:  # the mapper lets no such request through
            raise InvalidArgument([FieldViolation("shipping_address", "is required")])
        return command.shipping_address

    async def _reserve_and_record(
        self, command: PlaceOrder, order_id: uuid.UUID, address: ShippingAddress
    ) -> tuple[Order, GatewayCall]:
        """Reserve the stock, then write the order with its pending authorisation."""
        try:
            priced = await self.inventory.reserve(
                order_id, command.lines, checkout_id=command.checkout_id
            )
        except Unavailable:
            # A reservation may have landed before the deadline hit: give it back, and the
            # key too, so a retry with the same key runs afresh.
            await release_stock(uow=self.uow, inventory=self.inventory, order_id=order_id)
            await release_key(self.uow, command)
            raise
        except InvalidArgument:
            # The product service refused lines we let through: nothing was reserved, and
            # the request is at fault, so it is answered but not remembered.
            await release_key(self.uow, command)
            raise
        except DomainError as error:
            await store_error(self.uow, command, error)
            raise
        items = [
            OrderItem(p.product_id, p.seller_id, p.title, p.quantity, p.unit_price) for p in priced
        ]
        try:
            if len({item.unit_price.currency for item in items}) != 1:
                raise MixedCurrencies("the items of an order must share one currency")
            # Shipping and tax are fixed now, at the rates of the moment of placement.
            parts = await price_order(items, address.country_code, uow=self.uow)
            order = Order.place(
                order_id=order_id,
                buyer_id=command.buyer_id,
                items=items,
                shipping_address=address,
                at=self.clock.now(),
                parts=parts,
            )
        except MixedCurrencies:
            await release_stock(uow=self.uow, inventory=self.inventory, order_id=order_id)
            mixed = FailedPrecondition(
                "the items are priced in different currencies; order them separately",
                reason=ErrorReason.CURRENCY_MISMATCH,
            )
            await store_error(self.uow, command, mixed)
            raise mixed from None
        except FailedPrecondition as refused:  # a seller's shipping profile in another currency
            await release_stock(uow=self.uow, inventory=self.inventory, order_id=order_id)
            await store_error(self.uow, command, refused)
            raise
        except Unavailable:  # the rules could not be read: nothing recorded, a retry runs afresh
            await release_stock(uow=self.uow, inventory=self.inventory, order_id=order_id)
            await release_key(self.uow, command)
            raise
        # The authorisation is recorded as pending with the order, before money can move.
        authorize_call = new_call(
            order_id, "authorize", order.total, f"{order_keys(order_id)}:authorize", self.clock
        )
        async with self.uow() as uow:
            await uow.orders.add(order)
            await uow.attempts.start(authorize_call)
            await uow.commit()
        return order, authorize_call

    async def _confirm(
        self, command: PlaceOrder, order: Order, capture: Capture, settled: list[Settled]
    ) -> Order:
        order.mark_paid(gateway_reference=capture.charge_id, at=self.clock.now())
        async with self.uow() as uow:
            for outcome in settled:  # the capture's outcome, with the order it paid
                await outcome.record(uow)
            await uow.orders.save(order)
            await uow.idempotency.complete(
                command.buyer_id, command.idempotency_key, self.codec.encode(order)
            )
            await uow.commit()
        self.checkpoint("after_paid")
        if await commit_stock(order.order_id, inventory=self.inventory):
            order.stock_committed = True
            async with self.uow() as uow:
                await uow.orders.save(order)
                await uow.commit()
        log.info("order_paid", order_id=str(order.order_id), total_minor=order.total.minor)
        return order

    async def _undo(self, command: PlaceOrder, order_id: uuid.UUID) -> None:
        """Best-effort compensation after a bug or crash, before any money moved."""
        try:
            await release_stock(uow=self.uow, inventory=self.inventory, order_id=order_id)
            async with self.uow() as uow:
                stored = await uow.orders.get(order_id, for_update=True)
                if stored is not None and stored.status is OrderStatus.PENDING:
                    stored.cancel(
                        actor=SYSTEM_ACTOR, reason="placement failed", at=self.clock.now()
                    )
                    await uow.orders.save(stored)
                await uow.idempotency.release(command.buyer_id, command.idempotency_key)
                await uow.commit()
        except Exception:
            log.exception("order_undo_failed", order_id=str(order_id))
