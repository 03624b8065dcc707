"""The use cases: place an order (a saga over inventory and payment), read and list orders."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

import structlog

from services.common.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from services.order.adapters.inventory import Inventory
from services.order.adapters.payments import (
    Authorization,
    Capture,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
)
from services.order.domain.commands import GetOrder, ListOrders, OrderCursor, PlaceOrder
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import (
    SYSTEM_ACTOR,
    MixedCurrencies,
    Order,
    OrderItem,
    OrderStatus,
    PaymentStatus,
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
    """Places orders exactly once per idempotency key: reserve, record, charge, confirm.

    Each saga runs in its own task, shielded from the RPC: a client that disconnects or
    times out does not stop it halfway, and its retry finds the stored outcome.
    """

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    codec: OrderCodec
    clock: Callable[[], datetime] = _now
    poll_seconds: float = 0.05
    _sagas: set[asyncio.Task[Order]] = field(default_factory=set, repr=False)

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
        try:
            async with self.uow() as uow:
                await uow.idempotency.attach_order(
                    command.buyer_id, command.idempotency_key, order_id
                )
                await uow.commit()
            order = await self._reserve_and_record(command, order_id)
            capture = await self._charge(command, order)
            charged = True
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

    async def _reserve_and_record(self, command: PlaceOrder, order_id: uuid.UUID) -> Order:
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
                shipping_address=command.shipping_address,
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
            authorization = await self.payments.authorize(
                order.total, command.payment_method_token, f"{keys}:authorize"
            )
            capture = await self.payments.capture(
                authorization.authorization_id, order.total, f"{keys}:capture"
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
                await self._void(authorization, f"{keys}:void")
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
        await self._commit_stock(order.order_id)
        log.info("order_paid", order_id=str(order.order_id), total_minor=order.total.minor)
        return order

    async def _commit_stock(self, order_id: uuid.UUID) -> None:
        # The order is paid either way; an uncommitted reservation still holds the units,
        # so a failure here can never oversell, it only needs a retry.
        for attempt in range(3):
            try:
                await self.inventory.commit(order_id)
                return
            except DomainError as error:
                log.warning(
                    "reservation_commit_failed",
                    order_id=str(order_id),
                    attempt=attempt,
                    reason=error.reason,
                )
                await asyncio.sleep(0.1 * (attempt + 1))
        log.error("reservation_commit_abandoned", order_id=str(order_id))

    async def _release_stock(self, order_id: uuid.UUID) -> None:
        try:
            await self.inventory.release(order_id)
        except DomainError as error:
            log.error("reservation_release_failed", order_id=str(order_id), reason=error.reason)

    async def _void(self, authorization: Authorization, key: str) -> None:
        try:
            await self.payments.void(authorization.authorization_id, key)
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


async def get_order(command: GetOrder, uow: UnitOfWorkFactory) -> Order:
    """The order, if the caller may see it; NOT_FOUND hides other buyers' orders."""
    async with uow() as work:
        order = await work.orders.get(command.order_id)
    if order is None or not order.can_be_seen_by(
        command.caller_id, is_admin=command.caller_is_admin
    ):
        raise NotFound("no such order", reason="ORDER_NOT_FOUND")
    return order


async def list_orders(
    command: ListOrders, uow: UnitOfWorkFactory
) -> tuple[list[Order], OrderCursor | None]:
    """One page of the buyer's orders and the cursor of the next page, if there is one."""
    async with uow() as work:
        orders = await work.orders.list_for_buyer(
            command.buyer_id,
            limit=command.page_size + 1,
            after=command.after,
            status=command.status,
        )
    if len(orders) <= command.page_size:
        return orders, None
    page = orders[: command.page_size]
    return page, OrderCursor(page[-1].created_at, page[-1].order_id)
