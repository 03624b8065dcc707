"""The use cases: place an order (a saga over inventory and payment), read and list orders."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

import structlog

from services.common.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from services.common.money import Money
from services.order.adapters.inventory import Inventory
from services.order.adapters.payments import (
    Authorization,
    Capture,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
    PaymentTimeout,
)
from services.order.adapters.users import Buyers
from services.order.domain.commands import (
    Caller,
    CancelOrder,
    GetOrder,
    ListOrders,
    MarkOrderDelivered,
    OrderCursor,
    PlaceOrder,
    RefundOrder,
    ShipOrderItems,
    WatchOrder,
)
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import (
    FINAL_STATUSES,
    SYSTEM_ACTOR,
    GatewayCall,
    IllegalTransition,
    MixedCurrencies,
    Order,
    OrderItem,
    OrderRuleViolated,
    OrderStatus,
    PaymentStatus,
    Refund,
    ShippingAddress,
)
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

log = structlog.get_logger("orders")

# Stored errors are replayed as the same class, found by their gRPC status name.
_ERROR_CLASSES: dict[str, type[DomainError]] = {
    cls.code.name: cls
    for cls in (
        NotFound,
        AlreadyExists,
        FailedPrecondition,
        Aborted,
        PermissionDenied,
        Unauthenticated,
        ResourceExhausted,
        Unavailable,
    )
}


class OrderCodec(Protocol):
    """Turns an order into the bytes stored as a key's response, and back."""

    def encode(self, order: Order) -> bytes:
        """The stored form of `order`."""
        ...

    def decode(self, data: bytes) -> Order:
        """The order `data` stores."""
        ...


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Checkout:
    """Places orders exactly once per idempotency key: check, reserve, record, charge, confirm.

    Each saga runs in its own task, shielded from the RPC: a client that disconnects or
    times out does not stop it halfway, and its retry finds the stored outcome.
    """

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    codec: OrderCodec
    buyers: Buyers
    clock: Callable[[], datetime] = _now
    poll_seconds: float = 0.05
    # Crash injection for tests: called with each step's name; the default does nothing.
    checkpoint: Callable[[str], None] = lambda step: None
    _sagas: set[asyncio.Task[Order]] = field(default_factory=set, repr=False)
    _orders_in_flight: set[uuid.UUID] = field(default_factory=set, repr=False)

    def in_flight(self) -> frozenset[uuid.UUID]:
        """The orders this process is placing right now, which the reconciler leaves alone."""
        return frozenset(self._orders_in_flight)

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        """Place the order, or replay the outcome of the first request with the same key."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            async with self.uow() as uow:
                existing = await uow.idempotency.claim(
                    command.buyer_id, command.idempotency_key, command.request_fingerprint
                )
                await uow.commit()
            if existing is None:
                saga = asyncio.create_task(self._run(command))
                self._sagas.add(saga)
                saga.add_done_callback(self._forget)
                return await asyncio.shield(saga)
            record: IdempotencyRecord | None = existing
            while record is not None:
                if record.request_fingerprint != command.request_fingerprint:
                    raise FailedPrecondition(
                        "this idempotency key was used for a different request; use a new key",
                        reason="IDEMPOTENCY_KEY_REUSED",
                    )
                if record.state is KeyState.COMPLETED:
                    return self._replay(record)
                if loop.time() >= deadline:
                    raise Aborted(
                        "a request with this idempotency key is still running; retry later",
                        reason="REQUEST_IN_PROGRESS",
                    )
                await asyncio.sleep(self.poll_seconds)
                async with self.uow() as uow:
                    record = await uow.idempotency.get(command.buyer_id, command.idempotency_key)
            # The first request gave the key back (it failed without a trace): claim it again.

    async def drain(self, grace_seconds: float) -> None:
        """Let running sagas finish before the pools they use close."""
        if self._sagas:
            await asyncio.wait(set(self._sagas), timeout=grace_seconds)

    def _forget(self, saga: asyncio.Task[Order]) -> None:
        self._sagas.discard(saga)
        if not saga.cancelled():
            # The caller may be gone; its outcome is stored on the key and logged already.
            saga.exception()

    def _replay(self, record: IdempotencyRecord) -> Order:
        if record.response is not None:
            return self.codec.decode(record.response)
        assert record.error is not None
        error_class = _ERROR_CLASSES.get(record.error.code, Unavailable)
        raise error_class(
            record.error.message, reason=record.error.reason, metadata=record.error.metadata
        )

    async def _run(self, command: PlaceOrder) -> Order:
        order_id = uuid.uuid4()
        log.info("order_saga_started", order_id=str(order_id))
        charged = False
        self._orders_in_flight.add(order_id)
        try:
            async with self.uow() as uow:
                await uow.idempotency.attach_order(
                    command.buyer_id, command.idempotency_key, order_id
                )
                await uow.commit()
            address = await self._check_buyer(command)
            self.checkpoint("before_reserve")
            order = await self._reserve_and_record(command, order_id, address)
            self.checkpoint("after_record")
            capture = await self._charge(command, order)
            charged = True
            self.checkpoint("after_capture")
            return await self._confirm(command, order, capture)
        except DomainError:
            raise  # each failure path already compensated and stored its outcome
        except BaseException:
            log.exception("order_saga_crashed", order_id=str(order_id), charged=charged)
            if charged:
                # Money was taken: keep the key in progress so no retry charges again; the
                # order id on the key row lets an operator reconcile.
                log.error("order_needs_reconciliation", order_id=str(order_id))
            else:
                await self._undo(command, order_id)
            raise
        finally:
            self._orders_in_flight.discard(order_id)

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
            await self._release_key(command)
            raise
        except DomainError as error:
            await self._store_error(command, error)
            raise
        if command.shipping_address is None:  # the mapper lets no such request through
            raise InvalidArgument([FieldViolation("shipping_address", "is required")])
        return command.shipping_address

    async def _reserve_and_record(
        self, command: PlaceOrder, order_id: uuid.UUID, address: ShippingAddress
    ) -> Order:
        try:
            priced = await self.inventory.reserve(order_id, command.lines)
        except Unavailable:
            # A reservation may have landed before the deadline hit: give it back, and the
            # key too, so a retry with the same key runs afresh.
            await self._release_stock(order_id)
            await self._release_key(command)
            raise
        except InvalidArgument:
            # The product service refused lines we let through: nothing was reserved, and
            # the request is at fault, so it is answered but not remembered.
            await self._release_key(command)
            raise
        except DomainError as error:
            await self._store_error(command, error)
            raise
        items = [
            OrderItem(p.product_id, p.seller_id, p.title, p.quantity, p.unit_price) for p in priced
        ]
        try:
            order = Order.place(
                order_id=order_id,
                buyer_id=command.buyer_id,
                items=items,
                shipping_address=address,
                at=self.clock(),
            )
        except MixedCurrencies:
            await self._release_stock(order_id)
            mixed = FailedPrecondition(
                "the items are priced in different currencies; order them separately",
                reason="CURRENCY_MISMATCH",
            )
            await self._store_error(command, mixed)
            raise mixed from None
        async with self.uow() as uow:
            await uow.orders.add(order)
            await uow.commit()
        return order

    async def _charge(self, command: PlaceOrder, order: Order) -> Capture:
        """Authorise and capture the total; on failure cancel the order and return the stock."""
        authorization: Authorization | None = None
        keys = f"order-{order.order_id}"  # the gateway's keys: one charge per order, ever
        try:
            authorization = await gateway_call(
                self.uow,
                order.order_id,
                "authorize",
                order.total,
                f"{keys}:authorize",
                lambda key: self.payments.authorize(order.total, command.payment_method_token, key),
                self.clock,
            )
            self.checkpoint("after_authorize")
            authorized = authorization
            capture = await gateway_call(
                self.uow,
                order.order_id,
                "capture",
                order.total,
                f"{keys}:capture",
                lambda key: self.payments.capture(authorized.authorization_id, order.total, key),
                self.clock,
            )
        except PaymentDeclined as declined:
            await self._release_stock(order.order_id)
            order.cancel_for_payment(
                status=PaymentStatus.DECLINED,
                failure_reason=declined.decline_code,
                gateway_reference="",
                at=self.clock(),
            )
            error = FailedPrecondition(
                "the payment was declined; try another payment method",
                reason="PAYMENT_DECLINED",
                metadata={"order_id": str(order.order_id), "decline_code": declined.decline_code},
            )
            await self._store_failure(command, order, error)
            raise error from None
        except PaymentError as failure:
            log.warning("payment_failed", order_id=str(order.order_id), error=str(failure))
            if authorization is not None:
                await self._void(order.order_id, authorization, f"{keys}:void")
            await self._release_stock(order.order_id)
            order.cancel_for_payment(
                status=PaymentStatus.FAILED,
                failure_reason=type(failure).__name__,
                gateway_reference=authorization.authorization_id if authorization else "",
                at=self.clock(),
            )
            unavailable = Unavailable(
                "the payment service did not answer; the order was cancelled and nothing "
                "charged: place it again with a new idempotency key",
                reason="PAYMENT_UNAVAILABLE",
                metadata={"order_id": str(order.order_id)},
            )
            await self._store_failure(command, order, unavailable)
            raise unavailable from None
        return capture

    async def _confirm(self, command: PlaceOrder, order: Order, capture: Capture) -> Order:
        order.mark_paid(gateway_reference=capture.charge_id, at=self.clock())
        async with self.uow() as uow:
            await uow.orders.save(order)
            await uow.idempotency.complete(
                command.buyer_id, command.idempotency_key, self.codec.encode(order)
            )
            await uow.commit()
        self.checkpoint("after_paid")
        if await self._commit_stock(order.order_id):
            order.stock_committed = True
            async with self.uow() as uow:
                await uow.orders.save(order)
                await uow.commit()
        log.info("order_paid", order_id=str(order.order_id), total_minor=order.total.minor)
        return order

    async def _commit_stock(self, order_id: uuid.UUID) -> bool:
        # The order is paid either way; an uncommitted reservation still holds the units,
        # so a failure here can never oversell, it only needs a retry (the reconciler's).
        for attempt in range(3):
            try:
                await self.inventory.commit(order_id)
                return True
            except DomainError as error:
                log.warning(
                    "reservation_commit_failed",
                    order_id=str(order_id),
                    attempt=attempt,
                    reason=error.reason,
                )
                await asyncio.sleep(0.1 * (attempt + 1))
        log.error("reservation_commit_abandoned", order_id=str(order_id))
        return False

    async def _release_stock(self, order_id: uuid.UUID) -> None:
        try:
            await self.inventory.release(order_id)
        except DomainError as error:
            log.error("reservation_release_failed", order_id=str(order_id), reason=error.reason)

    async def _void(self, order_id: uuid.UUID, authorization: Authorization, key: str) -> None:
        try:
            await gateway_call(
                self.uow,
                order_id,
                "void",
                authorization.amount,
                key,
                lambda k: self.payments.void(authorization.authorization_id, k),
                self.clock,
            )
        except PaymentError as error:
            log.error(
                "payment_void_failed",
                authorization=authorization.authorization_id,
                error=str(error),
            )

    async def _store_error(self, command: PlaceOrder, error: DomainError) -> None:
        async with self.uow() as uow:
            await uow.idempotency.fail(command.buyer_id, command.idempotency_key, _stored(error))
            await uow.commit()

    async def _store_failure(self, command: PlaceOrder, order: Order, error: DomainError) -> None:
        async with self.uow() as uow:
            await uow.orders.save(order)
            await uow.idempotency.fail(command.buyer_id, command.idempotency_key, _stored(error))
            await uow.commit()

    async def _release_key(self, command: PlaceOrder) -> None:
        async with self.uow() as uow:
            await uow.idempotency.release(command.buyer_id, command.idempotency_key)
            await uow.commit()

    async def _undo(self, command: PlaceOrder, order_id: uuid.UUID) -> None:
        """Best-effort compensation after a bug or crash, before any money moved."""
        try:
            await self._release_stock(order_id)
            async with self.uow() as uow:
                stored = await uow.orders.get(order_id, for_update=True)
                if stored is not None and stored.status is OrderStatus.PENDING:
                    stored.cancel(actor=SYSTEM_ACTOR, reason="placement failed", at=self.clock())
                    await uow.orders.save(stored)
                await uow.idempotency.release(command.buyer_id, command.idempotency_key)
                await uow.commit()
        except Exception:
            log.exception("order_undo_failed", order_id=str(order_id))


def _stored(error: DomainError) -> StoredError:
    return StoredError(error.code.name, error.message, error.reason, dict(error.metadata))


async def gateway_call[T](
    uow: UnitOfWorkFactory,
    order_id: uuid.UUID,
    operation: str,
    amount: Money,
    key: str,
    call: Callable[[str], Awaitable[T]],
    clock: Callable[[], datetime] = _now,
) -> T:
    """Make one payment gateway call, recorded as pending before and with its outcome after.

    The pending row is durable before the money can move, so a crash mid-call leaves a
    trace the reconciler settles by looking the gateway's idempotency key up.
    """
    attempt = GatewayCall(uuid.uuid4(), order_id, operation, key, amount, clock())
    async with uow() as work:
        await work.attempts.start(attempt)
        await work.commit()
    outcome, reference, detail = "failed", "", ""
    try:
        result = await call(key)
        outcome = "succeeded"
        if isinstance(result, Authorization):
            reference = result.authorization_id
        elif isinstance(result, Capture):
            reference = result.charge_id
        return result
    except PaymentDeclined as declined:
        outcome, detail = "declined", declined.decline_code
        raise
    except PaymentTimeout as timeout:
        outcome, detail = "timed_out", str(timeout)
        raise
    except PaymentError as error:
        detail = str(error)
        raise
    finally:
        try:
            async with uow() as work:
                await work.attempts.finish(attempt.attempt_id, outcome, reference, detail, clock())
                await work.commit()
        except Exception:
            log.exception("payment_attempt_not_recorded", attempt_id=str(attempt.attempt_id))


def view_for(order: Order, caller: Caller) -> Order:
    """The order as the caller may see it: sellers see only their lines and no payment."""
    if caller.is_admin or str(order.buyer_id) == caller.user_id:
        return order
    return replace(
        order,
        items=[item for item in order.items if item.seller_id == caller.user_id],
        payments=[],
        refunds=[r for r in order.refunds if r.seller_id == caller.user_id],
    )


def _visible(order: Order | None, caller: Caller) -> Order:
    if order is None or not order.can_be_seen_by(caller.user_id, is_admin=caller.is_admin):
        raise NotFound("no such order", reason="ORDER_NOT_FOUND")
    return order


def _rule_error(error: OrderRuleViolated | IllegalTransition) -> DomainError:
    if isinstance(error, IllegalTransition):
        return FailedPrecondition(
            f"the order is {error.current.value} and cannot become {error.target.value}",
            reason="ILLEGAL_STATUS_TRANSITION",
            metadata={"status": error.current.value, "target": error.target.value},
        )
    if error.reason in ("NOT_ORDER_SELLER", "ITEM_NOT_YOURS"):
        return PermissionDenied(error.message, reason=error.reason)
    return FailedPrecondition(error.message, reason=error.reason)


async def get_order(command: GetOrder, uow: UnitOfWorkFactory) -> Order:
    """The order, if the caller may see it; NOT_FOUND hides other buyers' orders."""
    async with uow() as work:
        order = await work.orders.get(command.order_id)
    return view_for(_visible(order, command.caller), command.caller)


async def list_orders(
    command: ListOrders, uow: UnitOfWorkFactory
) -> tuple[list[Order], OrderCursor | None]:
    """One page of the caller's orders: admins all, sellers those with their items, buyers theirs."""
    caller = command.caller
    async with uow() as work:
        if caller.is_admin or caller.is_seller:
            orders = await work.orders.list_for_seller(
                None if caller.is_admin else caller.user_id,
                limit=command.page_size + 1,
                after=command.after,
                status=command.status,
            )
        else:
            orders = await work.orders.list_for_buyer(
                uuid.UUID(caller.user_id),
                limit=command.page_size + 1,
                after=command.after,
                status=command.status,
            )
    visible = [view_for(order, caller) for order in orders]
    if len(visible) <= command.page_size:
        return visible, None
    page = visible[: command.page_size]
    return page, OrderCursor(page[-1].created_at, page[-1].order_id)


@dataclass
class Lifecycle:
    """Everything after checkout: cancel, ship, deliver, refund. Each runs with the order locked.

    The order row stays locked (SELECT ... FOR UPDATE) for the whole use case, gateway call
    included: two refunds of one order run one after the other, so together they can never
    pass the captured amount, and a cancel cannot cross a shipment.
    """

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    clock: Callable[[], datetime] = _now

    async def cancel(self, command: CancelOrder) -> Order:
        """Cancel a paid order before shipment: refund the capture, return the stock."""
        async with self.uow() as uow:
            order = _visible(
                await uow.orders.get(command.order_id, for_update=True), command.caller
            )
            if not (command.caller.is_admin or str(order.buyer_id) == command.caller.user_id):
                raise PermissionDenied(
                    "only the buyer or an admin can cancel an order", reason="NOT_ORDER_BUYER"
                )
            if order.status is OrderStatus.PENDING:
                raise FailedPrecondition(
                    "the order's payment is still being processed; try again shortly",
                    reason="PAYMENT_IN_PROGRESS",
                )
            if order.status is not OrderStatus.PAID:
                raise _rule_error(IllegalTransition(order.status, OrderStatus.CANCELLED))
            reference = await self._refund_at_gateway(
                order, order.captured, f"order-{order.order_id}:cancel-refund"
            )
            if not order.stock_committed:
                await self.inventory.release(order.order_id)
            reason = command.reason or "cancelled by the buyer"
            order.cancel_paid(
                actor=command.caller.user_id,
                reason=reason,
                refund_reference=reference,
                at=self.clock(),
            )
            await uow.orders.save(order)
            await uow.commit()
        log.info("order_cancelled", order_id=str(order.order_id))
        return view_for(order, command.caller)

    async def ship(self, command: ShipOrderItems) -> Order:
        """Mark a seller's items shipped with a carrier and tracking number."""
        if not command.caller.is_seller:
            raise PermissionDenied("only sellers ship items", reason="ROLE_REQUIRED")
        async with self.uow() as uow:
            order = _visible(
                await uow.orders.get(command.order_id, for_update=True), command.caller
            )
            try:
                order.ship(
                    seller_id=command.caller.user_id,
                    product_ids=command.product_ids,
                    carrier=command.carrier,
                    tracking_number=command.tracking_number,
                    at=self.clock(),
                )
            except (OrderRuleViolated, IllegalTransition) as error:
                raise _rule_error(error) from None
            await uow.orders.save(order)
            await uow.commit()
        return view_for(order, command.caller)

    async def deliver(self, command: MarkOrderDelivered) -> Order:
        """Record that every item arrived; admins only."""
        if not command.caller.is_admin:
            raise PermissionDenied("only admins mark orders delivered", reason="ROLE_REQUIRED")
        async with self.uow() as uow:
            order = _visible(
                await uow.orders.get(command.order_id, for_update=True), command.caller
            )
            try:
                order.mark_delivered(actor=command.caller.user_id, at=self.clock())
            except IllegalTransition as error:
                raise _rule_error(error) from None
            await uow.orders.save(order)
            await uow.commit()
        return order

    async def refund(self, command: RefundOrder) -> Order:
        """Refund all or part of a captured order, once per idempotency key."""
        caller = command.caller
        if not (caller.is_admin or caller.is_seller):
            raise PermissionDenied("only admins and sellers refund", reason="ROLE_REQUIRED")
        async with self.uow() as uow:
            order = _visible(await uow.orders.get(command.order_id, for_update=True), caller)
            seller_id = None if caller.is_admin else caller.user_id
            if seller_id is not None and seller_id not in order.seller_ids:
                raise PermissionDenied(
                    "none of this order's items are yours", reason="NOT_ORDER_SELLER"
                )
            earlier = order.find_refund(command.idempotency_key)
            if earlier is not None:
                if earlier.request_fingerprint != command.request_fingerprint:
                    raise FailedPrecondition(
                        "this idempotency key was used for a different refund; use a new key",
                        reason="IDEMPOTENCY_KEY_REUSED",
                    )
                return view_for(order, caller)
            amount = command.amount or order.refundable(seller_id)
            if amount.minor == 0 and command.amount is None:
                raise FailedPrecondition("nothing is left to refund", reason="NOTHING_TO_REFUND")
            try:
                order.check_refund(amount, seller_id)
            except (OrderRuleViolated, IllegalTransition) as error:
                raise _rule_error(error) from None
            reference = await self._refund_at_gateway(
                order, amount, f"order-{order.order_id}:refund:{command.idempotency_key}"
            )
            order.refund(
                Refund(
                    refund_id=uuid.uuid4(),
                    idempotency_key=command.idempotency_key,
                    request_fingerprint=command.request_fingerprint,
                    actor=caller.user_id,
                    seller_id=seller_id,
                    amount=amount,
                    reason=command.reason,
                    gateway_reference=reference,
                    at=self.clock(),
                )
            )
            await uow.orders.save(order)
            await uow.commit()
        log.info("order_refunded", order_id=str(order.order_id), amount_minor=amount.minor)
        return view_for(order, caller)

    async def _refund_at_gateway(self, order: Order, amount: Money, key: str) -> str:
        payment = order.payment
        if payment is None or payment.status not in (
            PaymentStatus.CAPTURED,
            PaymentStatus.REFUNDED,
        ):
            raise FailedPrecondition("the order has no captured payment", reason="NOT_CAPTURED")
        try:
            await gateway_call(
                self.uow,
                order.order_id,
                "refund",
                amount,
                key,
                lambda k: self.payments.refund(payment.gateway_reference, amount, k),
                self.clock,
            )
        except PaymentError as error:
            log.warning("refund_failed", order_id=str(order.order_id), error=str(error))
            raise Unavailable(
                "the payment gateway did not refund; nothing changed, retry with the same key",
                reason="PAYMENT_UNAVAILABLE",
            ) from None
        return payment.gateway_reference


class Subscriptions(Protocol):
    """Tells a watcher that an order changed."""

    def subscribe(self, order_id: uuid.UUID) -> AbstractAsyncContextManager[asyncio.Queue[None]]:
        """A queue that gets a token at every change of the order."""
        ...


async def watch_order(
    command: WatchOrder,
    uow: UnitOfWorkFactory,
    feed: Subscriptions,
    *,
    recheck_seconds: float,
) -> AsyncIterator[Order]:
    """The order now, then again at every change, until it reaches a final status."""
    async with feed.subscribe(command.order_id) as changed:
        # Subscribed before the first read, so no change between the two is missed.
        async with uow() as work:
            order = _visible(await work.orders.get(command.order_id), command.caller)
        yield view_for(order, command.caller)
        last = (order.status, order.updated_at)
        while order.status not in FINAL_STATUSES:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(recheck_seconds):
                    await changed.get()
            async with uow() as work:
                fresh = await work.orders.get(command.order_id)
            if fresh is None:
                return
            order = fresh
            if (order.status, order.updated_at) != last:
                last = (order.status, order.updated_at)
                yield view_for(order, command.caller)
