"""Address books in the `addresses` table, their personal fields sealed at rest."""

from __future__ import annotations

import uuid
from collections.abc import Mapping

import asyncpg

from services.common.envelope import DataKeys
from services.common.sealed_rows import SealedColumn
from services.user.adapters.postgres.pool import Connection
from services.user.domain.addresses import Address, AddressFields

_ADDRESS_COLUMNS = """
    id, user_id, recipient_name, line1, line2, city, region, postal_code, country_code,
    phone_number, personal_sealed, is_default_shipping, created_at, updated_at
"""

# The personal fields of an address, sealed together (envelope encryption at rest); the
# plaintext columns of the same names are NULL once sealed. country_code stays in clear.
PERSONAL_FIELDS = (
    "recipient_name",
    "line1",
    "line2",
    "city",
    "region",
    "postal_code",
    "phone_number",
)
SEALED = SealedColumn("addresses", "personal_sealed", PERSONAL_FIELDS)


class PostgresAddressRepository:
    """Addresses in the `addresses` table; every lookup is scoped to its owner."""

    def __init__(self, connection: Connection, keys: DataKeys) -> None:
        self._connection = connection
        self._keys = keys

    async def _address(self, row: asyncpg.Record) -> Address:
        sealed = row["personal_sealed"]
        personal: Mapping[str, str | None] = (
            {n: row[n] for n in PERSONAL_FIELDS}  # written before encryption, not backfilled
            if sealed is None
            else await SEALED.open(self._keys, self._connection, row["id"], sealed)
        )
        return Address(
            id=row["id"],
            user_id=row["user_id"],
            fields=AddressFields(
                **{name: personal[name] or "" for name in PERSONAL_FIELDS},
                country_code=row["country_code"],
                is_default_shipping=row["is_default_shipping"],
            ),
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    def _seal(self, address: Address) -> bytes:
        f = address.fields
        return SEALED.seal(self._keys, address.id, {n: getattr(f, n) for n in PERSONAL_FIELDS})

    async def list(self, user_id: uuid.UUID) -> list[Address]:
        """The user's addresses, the default shipping address first, then newest first."""
        rows = await self._connection.fetch(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 "
            "order by is_default_shipping desc, created_at desc, id",
            user_id,
        )
        return [await self._address(r) for r in rows]

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
        return None if row is None else await self._address(row)

    async def get_default(self, user_id: uuid.UUID) -> Address | None:
        """The user's default shipping address, if they have one."""
        row = await self._connection.fetchrow(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 and is_default_shipping",
            user_id,
        )
        return None if row is None else await self._address(row)

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
            "insert into addresses (id, user_id, country_code, personal_sealed, "
            "is_default_shipping, created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7)",
            address.id,
            address.user_id,
            f.country_code,
            self._seal(address),
            f.is_default_shipping,
            address.created_at,
            address.updated_at,
        )

    async def update(self, address: Address) -> None:
        """Write back the fields of an existing address."""
        f = address.fields
        # The plaintext columns are cleared too: a row backfilled late may still hold them.
        await self._connection.execute(
            "update addresses set personal_sealed = $3, country_code = $4, "
            "is_default_shipping = $5, updated_at = $6, recipient_name = null, line1 = null, "
            "line2 = null, city = null, region = null, postal_code = null, phone_number = null "
            "where id = $1 and user_id = $2",
            address.id,
            address.user_id,
            self._seal(address),
            f.country_code,
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
