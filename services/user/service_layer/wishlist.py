"""The wishlist: products a user keeps for later, checked against the catalog."""

from __future__ import annotations

import re
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FieldViolation,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.user.domain import commands
from services.user.domain.model import (
    WishlistItem,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    resolve_owner,
)
from services.user.service_layer.ports import (
    ProductCatalog,
    UnitOfWork,
)

log = structlog.get_logger("user.wishlist")

MAX_WISHLIST_ITEMS = 500
_PRODUCT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _product_id(value: str) -> str:
    value = value.strip()
    if not value:
        raise InvalidArgument([FieldViolation("product_id", "is required")])
    if not _PRODUCT_ID.match(value):
        raise InvalidArgument(
            [FieldViolation("product_id", "must be 1 to 64 letters, digits, '_' or '-'")]
        )
    return value


async def add_wishlist_item(
    command: commands.WishlistChange, *, uow: UnitOfWork, catalog: ProductCatalog, clock: Clock
) -> WishlistItem:
    """Keep a product on the owner's wishlist; adding it again returns the same item."""
    owner = resolve_owner(command.caller, command.user_id)
    product_id = _product_id(command.product_id)
    async with uow:
        existing = await uow.wishlist.get(owner, product_id)
    if existing is not None:
        return existing  # adding twice is harmless and needs no catalog round trip
    # Asked outside any transaction: the catalog's deadline never holds a connection.
    if not await catalog.exists(product_id):
        raise NotFound("no such product", reason=ErrorReason.PRODUCT_NOT_FOUND)
    async with uow:
        if await uow.users.get_for_update(owner) is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        if await uow.wishlist.count(owner) >= MAX_WISHLIST_ITEMS:
            raise ResourceExhausted(
                f"a wishlist holds at most {MAX_WISHLIST_ITEMS} products",
                reason=ErrorReason.WISHLIST_LIMIT_REACHED,
            )
        item = await uow.wishlist.add(owner, product_id, clock.now())
        await uow.commit()
    return item


async def remove_wishlist_item(
    command: commands.WishlistChange, *, uow: UnitOfWork, clock: Clock
) -> None:
    """Take a product off the owner's wishlist."""
    owner = resolve_owner(command.caller, command.user_id)
    product_id = _product_id(command.product_id)
    async with uow:
        removed = await uow.wishlist.remove(owner, product_id)
        await uow.commit()
    if not removed:
        raise NotFound(
            "the product is not on the wishlist", reason=ErrorReason.WISHLIST_ITEM_NOT_FOUND
        )


async def list_wishlist(
    command: commands.ListWishlist, *, uow: UnitOfWork, clock: Clock
) -> tuple[list[WishlistItem], str]:
    """One page of the owner's wishlist (admins may read any), newest first."""
    owner = resolve_owner(command.caller, command.user_id, admin_may=True)
    size = clamp_page_size(command.page_size, default=50, maximum=200)
    position = decode_page_token(command.page_token)
    after = None
    if position is not None:
        try:
            if position["u"] != str(owner):
                raise ValueError("token of another wishlist")
            after = (datetime.fromisoformat(position["t"]), str(position["p"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidArgument(
                [FieldViolation("page_token", "is not a token this API issued for this list")]
            ) from None
    async with uow:
        items = await uow.wishlist.page(owner, after=after, limit=size + 1)
    token = ""
    if len(items) > size:
        items = items[:size]
        last = items[-1]
        token = encode_page_token(
            {"u": str(owner), "t": last.added_at.isoformat(), "p": last.product_id}
        )
    return items, token
