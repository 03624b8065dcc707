"""What a checkout remembers on its idempotency key: the answer to replay, or nothing."""

from __future__ import annotations

from services.common.errors import (
    Aborted,
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)
from services.order.domain.commands import PlaceOrder
from services.order.domain.idempotency import IdempotencyRecord, StoredError
from services.order.domain.model import Order
from services.order.service_layer.ports import OrderCodec, UnitOfWorkFactory

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


def replay(record: IdempotencyRecord, codec: OrderCodec) -> Order:
    """The stored outcome of a completed key: its order, or its error raised again."""
    if record.response is not None:
        return codec.decode(record.response)
    assert record.error is not None
    error_class = _ERROR_CLASSES.get(record.error.code, Unavailable)
    raise error_class(
        record.error.message, reason=record.error.reason, metadata=record.error.metadata
    )


def stored(error: DomainError) -> StoredError:
    """The form an error is stored in on its key."""
    return StoredError(error.kind.name, error.message, error.reason, dict(error.metadata))


async def store_error(uow: UnitOfWorkFactory, command: PlaceOrder, error: DomainError) -> None:
    """Answer the key with `error` from now on."""
    async with uow() as work:
        await work.idempotency.fail(command.buyer_id, command.idempotency_key, stored(error))
        await work.commit()


async def store_failure(
    uow: UnitOfWorkFactory, command: PlaceOrder, order: Order, error: DomainError
) -> None:
    """Save the failed order and answer the key with `error`, in one transaction."""
    async with uow() as work:
        await work.orders.save(order)
        await work.idempotency.fail(command.buyer_id, command.idempotency_key, stored(error))
        await work.commit()


async def release_key(uow: UnitOfWorkFactory, command: PlaceOrder) -> None:
    """Give the key back: the request left no trace, so a retry with it runs afresh."""
    async with uow() as work:
        await work.idempotency.release(command.buyer_id, command.idempotency_key)
        await work.commit()
