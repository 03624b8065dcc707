"""Data export: everything the marketplace holds about the caller, from every service."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime

from services.common.clock import Clock
from services.common.errors import NotFound
from services.user.domain import commands
from services.user.domain.addresses import Address
from services.user.domain.model import Preferences, SessionView, User, WishlistItem
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import parse_uuid, require_id
from services.user.service_layer.ports import ExportSource, UnitOfWork

# The wishlist is bounded (its limit is enforced on add); one read takes all of it.
_WISHLIST_READ = 10_000


@dataclass(frozen=True)
class DataExport[P, O]:
    """The caller's records: the user service's own, then the product and order services'."""

    exported_at: datetime
    user: User
    addresses: list[Address]
    preferences: Preferences
    wishlist: list[WishlistItem]
    sessions: list[tuple[SessionView, bool]]
    products: P
    orders: O


async def export_my_data[P, O](
    command: commands.CallerOnly,
    *,
    uow: UnitOfWork,
    products: ExportSource[P],
    orders: ExportSource[O],
    clock: Clock,
) -> DataExport[P, O]:
    """The caller's data across the three services, complete or not at all.

    The user service's own records are read in one transaction, which ends before the
    peers are asked (no pooled connection is held across a network call); the product
    and order services are asked at once, and when either cannot answer the export
    fails with its UNAVAILABLE: a partial export would look complete to its reader.
    A deleted account (or one deleted meanwhile) has nothing to export: NOT_FOUND.
    """
    user_id = require_id(command.caller.user_id, "user_id")
    now = clock.now()
    async with uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        addresses = await uow.addresses.list(user_id)
        preferences = await uow.preferences.get(user_id) or Preferences(user_id=user_id)
        wishlist = await uow.wishlist.page(user_id, after=None, limit=_WISHLIST_READ)
        sessions = await uow.sessions.list_live(user_id, now)
    product_records, order_records = await asyncio.gather(products(user_id), orders(user_id))
    current = parse_uuid(command.caller.session_id)
    return DataExport(
        exported_at=now,
        user=user,
        addresses=addresses,
        preferences=preferences,
        wishlist=wishlist,
        sessions=[(s, s.id == current) for s in sessions],
        products=product_records,
        orders=order_records,
    )
