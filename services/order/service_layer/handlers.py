"""The use cases: place an order (a saga over inventory and payment), read and list orders."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

import structlog

from services.common.clock import Clock
from services.common.deadlines import outliving_context
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
from services.order.domain.commands import (
    GetOrder,
    ListOrders,
    OrderCursor,
    PlaceOrder,
    WatchOrder,
)
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import (
    FINAL_STATUSES,
    SYSTEM_ACTOR,
    MixedCurrencies,
    Order,
    OrderItem,
    OrderStatus,
    PaymentStatus,
    ShippingAddress,
)
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.access import view_for, visible
from services.order.service_layer.lifecycle import Lifecycle
from services.order.service_layer.payment_recovery import (
    OutcomeUnknown,
    authorization_made,
    capture_made,
    gateway_call,
    order_keys,
)
from services.order.service_layer.ports import (
    Authorization,
    Buyers,
    Capture,
    Inventory,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
    PaymentUnavailable,
)
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

# Re-exported: the composition root and the reconciler import them from here.
__all__ = ["Checkout", "Lifecycle", "OrderCodec", "gateway_call"]

log = structlog.get_logger("orders")

# Stored errors are replayed as the same class, found by their kind name (the gRPC code name).
_ERROR_CLASSES: dict[str, type[DomainError]] = {
    cls.kind.name: cls
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

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        """Place the order, or replay the outcome of the first request with the same key."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while True:
            async with self.uow() as uow:
                existing = await uow.idempotency.claim(
                    command.buyer_id,
                    command.idempotency_key,
                    command.request_fingerprint,
                    lease_until=self._lease_end(),
                )
                await uow.commit()
            if existing is None:
                # The saga outlives the RPC, so it does not inherit the RPC's deadline.
                saga = asyncio.create_task(self._run(command), context=outliving_context())
                self._sagas.add(saga)
                saga.add_done_callback(self._forget)
                return await asyncio.shield(saga)
            record: IdempotencyRecord | None = existing
            while record is not None:
                if record.request_fingerprint != command.request_fingerprint:
                    raise FailedPrecondition(
                        "this idempotency key was used for a different request; use a new key",
                        reason=ErrorReason.IDEMPOTENCY_KEY_REUSED,
                    )
                if record.state is KeyState.COMPLETED:
                    return self._replay(record)
                if loop.time() >= deadline:
                    raise Aborted(
                        "a request with this idempotency key is still running; retry later",
                        reason=ErrorReason.REQUEST_IN_PROGRESS,
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

    def _lease_end(self) -> datetime:
        return self.clock.now() + timedelta(seconds=self.lease_seconds)

    async def _run(self, command: PlaceOrder) -> Order:
        order_id = uuid.uuid4()
        log.info("order_saga_started", order_id=str(order_id))
        paying = answered = False
        self._orders_in_flight.add(order_id)
        heartbeat = asyncio.create_task(self._keep_leased(command))
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
            paying = True
            capture = await self._charge(command, order)
            self.checkpoint("after_capture")
            confirmed = await self._confirm(command, order, capture)
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
                        command.buyer_id, command.idempotency_key, self._lease_end()
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
            priced = await self.inventory.reserve(
                order_id, command.lines, checkout_id=command.checkout_id
            )
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
                at=self.clock.now(),
            )
        except MixedCurrencies:
            await self._release_stock(order_id)
            mixed = FailedPrecondition(
                "the items are priced in different currencies; order them separately",
                reason=ErrorReason.CURRENCY_MISMATCH,
            )
            await self._store_error(command, mixed)
            raise mixed from None
        async with self.uow() as uow:
            await uow.orders.add(order)
            await uow.commit()
        return order

    async def _charge(self, command: PlaceOrder, order: Order) -> Capture:
        """Authorise and capture the total; find out what an unanswered call did.

        A definite failure (declined, refused, never received) cancels the order and
        returns the stock. An outcome the gateway cannot tell yet leaves the order PENDING
        and its key in progress for the reconciler, and the buyer is told just that.
        """
        authorization: Authorization | None = None
        keys = order_keys(order.order_id)
        try:
            authorization = await self._authorize(command, order, keys)
            self.checkpoint("after_authorize")
            return await self._capture(order, authorization, keys)
        except PaymentDeclined as declined:
            await self._release_stock(order.order_id)
            order.cancel_for_payment(
                status=PaymentStatus.DECLINED,
                failure_reason=declined.decline_code,
                gateway_reference="",
                at=self.clock.now(),
            )
            error = FailedPrecondition(
                "the payment was declined; try another payment method",
                reason=ErrorReason.PAYMENT_DECLINED,
                metadata={"order_id": str(order.order_id), "decline_code": declined.decline_code},
            )
            await self._store_failure(command, order, error)
            raise error from None
        except OutcomeUnknown:
            raise _payment_pending(order) from None
        except PaymentError as failure:
            # A definite answer: the gateway refused the call, or never received it.
            log.warning("payment_failed", order_id=str(order.order_id), error=str(failure))
            if authorization is not None:
                try:
                    await self._void(order.order_id, authorization, f"{keys}:void")
                except PaymentError as error:
                    # The hold may still stand: the reconciler voids it before cancelling.
                    log.error("payment_void_failed", order_id=str(order.order_id), error=str(error))
                    raise _payment_pending(order) from None
            await self._release_stock(order.order_id)
            order.cancel_for_payment(
                status=PaymentStatus.FAILED,
                failure_reason=type(failure).__name__,
                gateway_reference=authorization.authorization_id if authorization else "",
                at=self.clock.now(),
            )
            unavailable = Unavailable(
                "the payment service did not answer; the order was cancelled and nothing "
                "charged: place it again with a new idempotency key",
                reason=ErrorReason.PAYMENT_UNAVAILABLE,
                metadata={"order_id": str(order.order_id)},
            )
            await self._store_failure(command, order, unavailable)
            raise unavailable from None

    async def _authorize(self, command: PlaceOrder, order: Order, keys: str) -> Authorization:
        try:
            return await gateway_call(
                self.uow,
                order.order_id,
                "authorize",
                order.total,
                f"{keys}:authorize",
                lambda key: self.payments.authorize(order.total, command.payment_method_token, key),
                self.clock,
            )
        except PaymentUnavailable:
            found = await authorization_made(self.payments, order.order_id)
            if found is None:
                raise  # the gateway never got it: a failure, and nothing is held
            return found

    async def _capture(self, order: Order, authorization: Authorization, keys: str) -> Capture:
        try:
            return await gateway_call(
                self.uow,
                order.order_id,
                "capture",
                order.total,
                f"{keys}:capture",
                lambda key: self.payments.capture(authorization.authorization_id, order.total, key),
                self.clock,
            )
        except PaymentUnavailable:
            found = await capture_made(self.payments, order.order_id)
            if found is None:
                raise  # the gateway never got it: the hold is voided, nothing taken
            return found

    async def _confirm(self, command: PlaceOrder, order: Order, capture: Capture) -> Order:
        order.mark_paid(gateway_reference=capture.charge_id, at=self.clock.now())
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
            # Remembered durably: the reconciler retries until the product service answers,
            # so the units do not stay held for the reservation's whole lifetime.
            log.warning("reservation_release_failed", order_id=str(order_id), reason=error.reason)
            try:
                async with self.uow() as uow:
                    await uow.releases.add(order_id)
                    await uow.commit()
            except Exception:
                log.exception("reservation_release_not_recorded", order_id=str(order_id))

    async def _void(self, order_id: uuid.UUID, authorization: Authorization, key: str) -> None:
        await gateway_call(
            self.uow,
            order_id,
            "void",
            authorization.amount,
            key,
            lambda k: self.payments.void(authorization.authorization_id, k),
            self.clock,
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
                    stored.cancel(
                        actor=SYSTEM_ACTOR, reason="placement failed", at=self.clock.now()
                    )
                    await uow.orders.save(stored)
                await uow.idempotency.release(command.buyer_id, command.idempotency_key)
                await uow.commit()
        except Exception:
            log.exception("order_undo_failed", order_id=str(order_id))


def _payment_pending(order: Order) -> Unavailable:
    log.warning("payment_pending", order_id=str(order.order_id))
    return Unavailable(
        "the payment's outcome is not known yet, so nothing is final: the order stays pending "
        "and is settled shortly; retry with the same idempotency key to get its final state",
        reason=ErrorReason.PAYMENT_PENDING,
        metadata={"order_id": str(order.order_id)},
    )


def _stored(error: DomainError) -> StoredError:
    return StoredError(error.kind.name, error.message, error.reason, dict(error.metadata))


async def get_order(command: GetOrder, uow: UnitOfWorkFactory) -> Order:
    """The order, if the caller may see it; NOT_FOUND hides other buyers' orders."""
    async with uow() as work:
        order = await work.orders.get(command.order_id)
    return view_for(visible(order, command.caller), command.caller)


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
    shown = [view_for(order, caller) for order in orders]
    if len(shown) <= command.page_size:
        return shown, None
    page = shown[: command.page_size]
    return page, OrderCursor(page[-1].created_at, page[-1].order_id)


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
            order = visible(await work.orders.get(command.order_id), command.caller)
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
