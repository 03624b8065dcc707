"""Inventory use cases: stock figures, adjustments with a ledger, and reservation expiry."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from services.common.clock import Clock
from services.common.errors import DomainError, FailedPrecondition, Violations
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.workers import repeat
from services.product.domain.commands import (
    AdjustInventory,
    GetInventory,
    ListLedgerEntries,
    ReleaseReservation,
)
from services.product.domain.model import LAPSING_STATES, Inventory, LedgerEntry, to_millis
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.access import managed_product, product_not_found
from services.product.service_layer.ports import (
    LedgerNote,
    ProductRepository,
    ReservationStore,
    StockStore,
)
from services.product.service_layer.reservations import release_reservation

log = structlog.get_logger("product")

DEFAULT_LEDGER_PAGE = 50
MAX_LEDGER_PAGE = 200


async def get_inventory(
    command: GetInventory, *, products: ProductRepository
) -> tuple[str, Inventory]:
    """The stock figure of a product the caller manages."""
    product = await managed_product(command.product_id, command.caller, products)
    return product.product_id, product.inventory


async def adjust_inventory(
    command: AdjustInventory,
    *,
    products: ProductRepository,
    stock: StockStore,
    clock: Clock,
) -> tuple[str, Inventory]:
    """Restock or correct on-hand units; never below what open orders have reserved."""
    caller = command.caller
    violations = Violations()
    validation.check_id(violations, command.product_id, "product_id")
    violations.check(command.delta != 0, "delta", "must not be zero")
    violations.check(
        abs(command.delta) <= validation.MAX_ADJUST,
        "delta",
        f"must be at most {validation.MAX_ADJUST} units either way",
    )
    validation.validate_reason(violations, command.reason)
    violations.raise_if_any()
    await managed_product(command.product_id, caller, products)
    note = LedgerNote(command.reason.strip(), caller.user_id, to_millis(clock.now()))
    product = await stock.adjust(command.product_id, command.delta, note)
    if product is None:
        current = await products.get(command.product_id)
        if current is None:
            raise product_not_found(command.product_id)
        raise FailedPrecondition(
            "stock cannot go below the units reserved by open orders",
            reason=ErrorReason.INSUFFICIENT_STOCK,
            metadata={
                "product_id": command.product_id,
                "available": str(current.inventory.available),
            },
        )
    log.info("inventory_adjusted", product_id=command.product_id, delta=command.delta)
    return product.product_id, product.inventory


@dataclass(frozen=True)
class LedgerPage:
    """A page of ledger entries and the token of the next page ("" on the last)."""

    entries: list[LedgerEntry]
    next_page_token: str


async def list_ledger_entries(
    command: ListLedgerEntries, *, products: ProductRepository, stock: StockStore
) -> LedgerPage:
    """The product's recorded stock changes, newest first."""
    limit = clamp_page_size(command.page_size, default=DEFAULT_LEDGER_PAGE, maximum=MAX_LEDGER_PAGE)
    offset = 0
    position = decode_page_token(command.page_token)
    if position is not None:
        raw = position.get("o")
        if position.get("p") != command.product_id or not isinstance(raw, int) or raw < 0:
            violations = Violations()
            violations.add("page_token", "does not belong to this product's ledger")
            violations.raise_if_any()
        assert isinstance(raw, int)
        offset = raw
    await managed_product(command.product_id, command.caller, products)
    entries = await stock.ledger_page(command.product_id, offset=offset, limit=limit + 1)
    more = len(entries) > limit
    token = encode_page_token({"o": offset + limit, "p": command.product_id}) if more else ""
    return LedgerPage(entries[:limit], token)


class ReservationSweeper:
    """Returns the stock of reservations that lapsed, and restates prices as discounts turn.

    `run_once()` does one pass (tests drive it); `run()` repeats it until cancelled.
    """

    def __init__(
        self,
        reservations: ReservationStore,
        stock: StockStore,
        products: ProductRepository,
        *,
        interval_seconds: float,
        lease_seconds: float = 30.0,
        clock: Clock,
    ) -> None:
        self._reservations = reservations
        self._stock = stock
        self._products = products
        self._interval = interval_seconds
        self._lease = lease_seconds
        self._clock = clock

    async def run_once(self) -> int:
        """Release every lapsed reservation; returns how many were released."""
        released = 0
        expired = await self._reservations.expired(states=LAPSING_STATES, now=self._clock.now())
        for order_id in expired:
            try:
                await release_reservation(
                    ReleaseReservation(order_id),
                    reservations=self._reservations,
                    stock=self._stock,
                    clock=self._clock,
                    expired=True,
                )
            except DomainError as error:
                # A commit won the race for this reservation: the sale stands.
                log.info("reservation_expiry_skipped", order_id=order_id, reason=error.reason)
                continue
            released += 1
            log.info("reservation_expired", order_id=order_id)
        released += await self._abandon_stale_claims()
        await self._products.reprice_due(to_millis(self._clock.now()))
        await self._stock.flush_all_ledgers()
        return released

    async def _abandon_stale_claims(self) -> int:
        """Undo reservations whose caller died half-way and never retried.

        The sweeper takes the claim over like a retry would (only one taker wins), gives
        back whatever lines were already held, and forgets the claim, so a later retry of
        the order starts afresh.
        """
        abandoned = 0
        for order_id in await self._reservations.stale_pending(now=self._clock.now()):
            if not await self._reservations.take_over(
                order_id, lease_seconds=self._lease, now=self._clock.now()
            ):
                continue
            reservation = await self._reservations.get(order_id)
            if reservation is None:
                continue
            note = LedgerNote(
                f"abandon stale reservation of order {order_id}",
                "reservation-sweeper",
                self._clock.now(),
            )
            for line in reservation.lines:
                await self._stock.unhold(line.product_id, order_id, note)
            await self._reservations.abandon(order_id)
            abandoned += 1
            log.warning("stale_reservation_abandoned", order_id=order_id)
        return abandoned

    async def run(self) -> None:
        """Sweep every interval until cancelled; a failed pass is logged and retried."""
        await repeat(
            self.run_once, interval_seconds=self._interval, failure_event="reservation_sweep_failed"
        )
