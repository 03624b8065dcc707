"""Address books in the `addresses` table."""

from __future__ import annotations

import uuid

import asyncpg

from services.user.adapters.postgres.pool import Connection
from services.user.domain.addresses import Address, AddressFields

_ADDRESS_COLUMNS = """
    id, user_id, recipient_name, line1, line2, city, region, postal_code, country_code,
    phone_number, is_default_shipping, created_at, updated_at
"""


def _address_from_row(row: asyncpg.Record) -> Address:
    return Address(
        id=row["id"],
        user_id=row["user_id"],
        fields=AddressFields(
            recipient_name=row["recipient_name"],
            line1=row["line1"],
            line2=row["line2"],
            city=row["city"],
            region=row["region"],
            postal_code=row["postal_code"],
            country_code=row["country_code"],
            phone_number=row["phone_number"],
            is_default_shipping=row["is_default_shipping"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresAddressRepository:
    """Addresses in the `addresses` table; every lookup is scoped to its owner."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def list(self, user_id: uuid.UUID) -> list[Address]:
        """The user's addresses, the default shipping address first, then newest first."""
        rows = await self._connection.fetch(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 "
            "order by is_default_shipping desc, created_at desc, id",
            user_id,
        )
        return [_address_from_row(r) for r in rows]

    async def get(
        self, user_id: uuid.UUID, address_id: uuid.UUID, *, for_update: bool = False
    ) -> Address | None:
        """The address if it exists and belongs to the user; row-locked when asked."""
        lock = " for update" if for_update else ""
        row = await self._connection.fetchrow(
            f"select {_ADDRESS_COLUMNS} from addresses where id = $1 and user_id = $2{lock}",
            address_id,
            user_id,
        )
        return None if row is None else _address_from_row(row)

    async def get_default(self, user_id: uuid.UUID) -> Address | None:
        """The user's default shipping address, if they have one."""
        row = await self._connection.fetchrow(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 and is_default_shipping",
            user_id,
        )
        return None if row is None else _address_from_row(row)

    async def count(self, user_id: uuid.UUID) -> int:
        """How many addresses the user keeps."""
        value = await self._connection.fetchval(
            "select count(*) from addresses where user_id = $1", user_id
        )
        return int(value or 0)

    async def add(self, address: Address) -> None:
        """Insert a new address."""
        f = address.fields
        await self._connection.execute(
            f"insert into addresses ({_ADDRESS_COLUMNS}) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            address.id,
            address.user_id,
            f.recipient_name,
            f.line1,
            f.line2,
            f.city,
            f.region,
            f.postal_code,
            f.country_code,
            f.phone_number,
            f.is_default_shipping,
            address.created_at,
            address.updated_at,
        )

    async def update(self, address: Address) -> None:
        """Write back the fields of an existing address."""
        f = address.fields
        await self._connection.execute(
            "update addresses set recipient_name = $3, line1 = $4, line2 = $5, city = $6, "
            "region = $7, postal_code = $8, country_code = $9, phone_number = $10, "
            "is_default_shipping = $11, updated_at = $12 where id = $1 and user_id = $2",
            address.id,
            address.user_id,
            f.recipient_name,
            f.line1,
            f.line2,
            f.city,
            f.region,
            f.postal_code,
            f.country_code,
            f.phone_number,
            f.is_default_shipping,
            address.updated_at,
        )

    async def delete(self, user_id: uuid.UUID, address_id: uuid.UUID) -> bool:
        """Remove the user's address; whether it existed."""
        status = await self._connection.execute(
            "delete from addresses where id = $1 and user_id = $2", address_id, user_id
        )
        return status == "DELETE 1"

    async def clear_default(self, user_id: uuid.UUID) -> None:
        """Make none of the user's addresses the default shipping address."""
        await self._connection.execute(
            "update addresses set is_default_shipping = false "
            "where user_id = $1 and is_default_shipping",
            user_id,
        )
