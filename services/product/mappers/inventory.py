"""Stock and reservations: requests to commands, inventory and ledger to responses."""

from __future__ import annotations

from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Caller
from services.common.proto_money import money_to_proto
from services.product.domain.commands import (
    AdjustInventory,
    CommitReservation,
    GetInventory,
    ListLedgerEntries,
    ReleaseReservation,
    ReserveInventory,
)
from services.product.domain.model import (
    Inventory,
    LedgerEntry,
    PricedItem,
    Reservation,
    ReservationLine,
)
from services.product.mappers.fields import timestamp
from services.product.service_layer.inventory import LedgerPage


def reserve_command(request: product_service_pb2.ReserveInventoryRequest) -> ReserveInventory:
    """The command of a ReserveInventory request."""
    return ReserveInventory(
        order_id=request.order_id,
        lines=tuple(ReservationLine(item.product_id, item.quantity) for item in request.items),
        checkout_id=request.checkout_id,
    )


def commit_command(request: product_service_pb2.CommitReservationRequest) -> CommitReservation:
    """The command of a CommitReservation request."""
    return CommitReservation(order_id=request.order_id)


def release_command(request: product_service_pb2.ReleaseReservationRequest) -> ReleaseReservation:
    """The command of a ReleaseReservation request."""
    return ReleaseReservation(order_id=request.order_id)


def _priced_item(item: PricedItem) -> product_service_pb2.PricedItem:
    return product_service_pb2.PricedItem(
        product_id=item.product_id,
        seller_id=item.seller_id,
        title=item.title,
        quantity=item.quantity,
        unit_price=money_to_proto(item.unit_price),
    )


def reserve_response(reservation: Reservation) -> product_service_pb2.ReserveInventoryResponse:
    """The response of ReserveInventory: the priced items, in the order they were asked."""
    return product_service_pb2.ReserveInventoryResponse(
        items=[_priced_item(item) for item in reservation.items]
    )


def get_inventory_command(
    request: product_service_pb2.GetInventoryRequest, *, caller: Caller
) -> GetInventory:
    """The command of a GetInventory request."""
    return GetInventory(caller=caller, product_id=request.product_id)


def adjust_inventory_command(
    request: product_service_pb2.AdjustInventoryRequest, *, caller: Caller
) -> AdjustInventory:
    """The command of an AdjustInventory request."""
    return AdjustInventory(
        caller=caller, product_id=request.product_id, delta=request.delta, reason=request.reason
    )


def inventory_to_proto(product_id: str, inventory: Inventory) -> product_pb2.InventoryLevel:
    """The API view of a stock figure."""
    return product_pb2.InventoryLevel(
        product_id=product_id,
        on_hand=inventory.on_hand,
        reserved=inventory.reserved,
        available=inventory.available,
    )


def ledger_command(
    request: product_service_pb2.ListInventoryLedgerEntriesRequest, *, caller: Caller
) -> ListLedgerEntries:
    """The command of a ListInventoryLedgerEntries request."""
    return ListLedgerEntries(
        caller=caller,
        product_id=request.product_id,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def _ledger_entry(entry: LedgerEntry) -> product_pb2.InventoryLedgerEntry:
    return product_pb2.InventoryLedgerEntry(
        entry_id=entry.entry_id,
        product_id=entry.product_id,
        on_hand_delta=entry.on_hand_delta,
        reserved_delta=entry.reserved_delta,
        reason=entry.reason,
        actor=entry.actor,
        create_time=timestamp(entry.create_time),
    )


def ledger_response(page: LedgerPage) -> product_service_pb2.ListInventoryLedgerEntriesResponse:
    """The response of ListInventoryLedgerEntries."""
    return product_service_pb2.ListInventoryLedgerEntriesResponse(
        entries=[_ledger_entry(e) for e in page.entries], next_page_token=page.next_page_token
    )
