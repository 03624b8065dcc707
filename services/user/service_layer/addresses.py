"""The address book, and the order service's lookup of a buyer's shipping address."""

from __future__ import annotations

from dataclasses import replace

import structlog

from services.common.clock import Clock
from services.common.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from services.common.field_mask import mask_paths
from services.user.domain import commands
from services.user.domain.addresses import (
    MAX_ADDRESSES_PER_USER,
    MUTABLE_FIELDS,
    Address,
    address_violations,
)
from services.user.domain.model import (
    UserState,
)
from services.user.domain.reasons import ErrorReason
from services.user.service_layer.access import (
    require_id,
    resolve_owner,
)
from services.user.service_layer.ports import (
    UnitOfWork,
)

log = structlog.get_logger("user.addresses")

_ADDRESS_NOT_FOUND = "no such address in this address book"


async def list_addresses(
    command: commands.ListAddresses, *, uow: UnitOfWork, clock: Clock
) -> list[Address]:
    """The owner's addresses (admins may read any book), the default first."""
    owner = resolve_owner(command.caller, command.user_id, admin_may=True)
    async with uow:
        return await uow.addresses.list(owner)


async def get_address(command: commands.GetAddress, *, uow: UnitOfWork, clock: Clock) -> Address:
    """One address of the owner's book; NOT_FOUND for another user's address."""
    owner = resolve_owner(command.caller, command.user_id, admin_may=True)
    address_id = require_id(command.address_id, "address_id")
    async with uow:
        address = await uow.addresses.get(owner, address_id)
    if address is None:
        raise NotFound(_ADDRESS_NOT_FOUND, reason=ErrorReason.ADDRESS_NOT_FOUND)
    return address


async def create_address(
    command: commands.CreateAddress, *, uow: UnitOfWork, clock: Clock
) -> Address:
    """Add an address; the first one, or one marked default, becomes the default."""
    owner = resolve_owner(command.caller, command.user_id)
    fields = command.fields.normalised()
    violations = address_violations(fields)
    if violations:
        raise InvalidArgument(violations)
    async with uow:
        # Locking the owner's row serialises this user's address writes, so the limit
        # and the single default hold under concurrent requests.
        if await uow.users.get_for_update(owner) is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        count = await uow.addresses.count(owner)
        if count >= MAX_ADDRESSES_PER_USER:
            raise ResourceExhausted(
                f"an address book holds at most {MAX_ADDRESSES_PER_USER} addresses; "
                "delete one first",
                reason=ErrorReason.ADDRESS_LIMIT_REACHED,
            )
        if count == 0:
            # An order without an address id ships to the default; a book with
            # addresses but no default would make that fail for no reason.
            fields = replace(fields, is_default_shipping=True)
        if fields.is_default_shipping:
            await uow.addresses.clear_default(owner)
        address = Address.create(user_id=owner, fields=fields, now=clock.now())
        await uow.addresses.add(address)
        await uow.commit()
    log.info("address_created", user_id=str(owner), address_id=str(address.id))
    return address


async def update_address(
    command: commands.UpdateAddress, *, uow: UnitOfWork, clock: Clock
) -> Address:
    """Change the masked fields of one of the owner's addresses."""
    owner = resolve_owner(command.caller, command.user_id, field="address.user_id")
    address_id = require_id(command.address_id, "address.address_id")
    paths = mask_paths(command.paths, MUTABLE_FIELDS)
    incoming = command.fields.normalised()
    async with uow:
        await uow.users.get_for_update(owner)
        address = await uow.addresses.get(owner, address_id, for_update=True)
        if address is None:
            raise NotFound(_ADDRESS_NOT_FOUND, reason=ErrorReason.ADDRESS_NOT_FOUND)
        merged = address.fields.merged(incoming, paths)
        violations = address_violations(merged)
        if violations:
            raise InvalidArgument(violations)
        if merged.is_default_shipping and not address.is_default_shipping:
            await uow.addresses.clear_default(owner)
        address.fields = merged
        address.updated_at = clock.now()
        await uow.addresses.update(address)
        await uow.commit()
    log.info("address_updated", user_id=str(owner), address_id=str(address_id))
    return address


async def delete_address(command: commands.DeleteAddress, *, uow: UnitOfWork, clock: Clock) -> None:
    """Remove one of the owner's addresses; the book is then left without a default."""
    owner = resolve_owner(command.caller, command.user_id)
    address_id = require_id(command.address_id, "address_id")
    async with uow:
        await uow.users.get_for_update(owner)
        if not await uow.addresses.delete(owner, address_id):
            raise NotFound(_ADDRESS_NOT_FOUND, reason=ErrorReason.ADDRESS_NOT_FOUND)
        await uow.commit()
    log.info("address_deleted", user_id=str(owner), address_id=str(address_id))


async def get_shipping_address(
    command: commands.GetShippingAddress, *, uow: UnitOfWork, clock: Clock
) -> Address:
    """For the order service: the buyer may buy, and this is their address."""
    user_id = require_id(command.user_id, "user_id")
    address_id = (
        require_id(command.address_id, "address_id") if command.address_id.strip() else None
    )
    async with uow:
        user = await uow.users.get(user_id)
        if user is None:
            raise NotFound("no such user", reason=ErrorReason.USER_NOT_FOUND)
        if user.state is UserState.SUSPENDED:
            raise FailedPrecondition(
                "the buyer's account is suspended", reason=ErrorReason.USER_SUSPENDED
            )
        if address_id is None:
            address = await uow.addresses.get_default(user_id)
            if address is None:
                raise NotFound(
                    "the buyer has no default shipping address",
                    reason=ErrorReason.NO_DEFAULT_SHIPPING_ADDRESS,
                )
            return address
        address = await uow.addresses.get(user_id, address_id)
    if address is None:
        raise NotFound("the buyer has no such address", reason=ErrorReason.ADDRESS_NOT_FOUND)
    return address
