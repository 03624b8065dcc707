"""Sealed shipping addresses in the order database, on a real PostgreSQL.

The orders row keeps only the destination country in clear; a sealed address moved to
another order does not open; orders placed before the migration are sealed by the startup
step; rotating the KEK (and the DEK) keeps every order readable.
"""

from __future__ import annotations

import base64
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from services.common.envelope import Keyring, SealedDataUnavailable
from services.common.money import Money
from services.common.sealed_rows import rotate, seal_legacy_rows
from services.devmesh import processes
from services.order.adapters.postgres.idempotency import seal_legacy_responses
from services.order.adapters.postgres.unit_of_work import PostgresUnitOfWork, create_pool
from services.order.data_keys import SEALED_COLUMNS
from services.order.domain.model import Order, OrderItem, ShippingAddress
from tests.support.migrations import database_before
from tests.support.servers import Backends

MIGRATIONS = Path("services/order/migrations")
ADDRESS = ShippingAddress(
    "Grace Hopper",
    "77 Massachusetts Ave",
    "Cambridge",
    "US",
    line2="Room 4-100",
    region="MA",
    postal_code="02139",
    phone_number="+16175550100",
)
BUYER = uuid.uuid4()
# A stored answer written before the migration: the serialized order holds the address.
LEGACY_RESPONSE = b"\x0a\x24order\x12\x0cGrace Hopper"
PLAINTEXTS = (
    "Grace Hopper",
    "77 Massachusetts Ave",
    "Cambridge",
    "Room 4-100",
    "02139",
    "+16175550100",
)


def new_order() -> Order:
    return Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[OrderItem("p-1", "s-1", "Lamp", 1, Money(1999, "USD"))],
        shipping_address=ADDRESS,
        at=datetime.now(UTC),
    )


def keyring_entry(kek_id: str) -> str:
    return f"{kek_id}:{base64.b64encode(os.urandom(32)).decode()}"


async def row_text(url: str, order_id: uuid.UUID) -> tuple[str, asyncpg.Record]:
    db = await asyncpg.connect(url)
    try:
        row = await db.fetchrow("SELECT o::text AS text, o.* FROM orders o WHERE id = $1", order_id)
    finally:
        await db.close()
    assert row is not None
    sealed = row["shipping_address_sealed"]
    return row["text"] + (bytes(sealed).decode("latin-1") if sealed else ""), row


async def test_the_row_keeps_only_the_country_in_clear_and_the_order_round_trips(
    backends: Backends,
) -> None:
    url = backends.database_url("orders_sealed", MIGRATIONS)
    pool = await create_pool(url, max_size=2)
    try:
        order = new_order()
        async with PostgresUnitOfWork(pool) as uow:
            await uow.orders.add(order)
            await uow.commit()
        text, row = await row_text(url, order.order_id)
        for plaintext in PLAINTEXTS:
            assert plaintext not in text
        assert row["shipping_address"] is None
        assert row["shipping_country_code"] == "US"
        async with PostgresUnitOfWork(pool) as uow:
            loaded = await uow.orders.get(order.order_id)
        assert loaded is not None and loaded.shipping_address == ADDRESS
    finally:
        await pool.close()


async def test_a_sealed_address_moved_to_another_order_does_not_open(backends: Backends) -> None:
    url = backends.database_url("orders_swap", MIGRATIONS)
    pool = await create_pool(url, max_size=2)
    try:
        first, second = new_order(), new_order()
        async with PostgresUnitOfWork(pool) as uow:
            await uow.orders.add(first)
            await uow.orders.add(second)
            await uow.commit()
        async with pool.acquire() as db:
            await db.execute(
                "UPDATE orders SET shipping_address_sealed = "
                "(SELECT shipping_address_sealed FROM orders WHERE id = $1) WHERE id = $2",
                first.order_id,
                second.order_id,
            )
        async with PostgresUnitOfWork(pool) as uow:
            assert (await uow.orders.get(first.order_id)) is not None
            with pytest.raises(SealedDataUnavailable):
                await uow.orders.get(second.order_id)
    finally:
        await pool.close()


async def test_orders_placed_before_the_migration_are_sealed_with_their_country_kept(
    backends: Backends,
) -> None:
    url = database_before(backends, "orders_legacy", MIGRATIONS, "seal_shipping_addresses")
    order_id = uuid.uuid4()
    db = await asyncpg.connect(url)
    try:
        await db.execute(
            "INSERT INTO orders (id, buyer_id, status, currency, subtotal_minor, total_minor, "
            "shipping_address, created_at, updated_at) "
            "VALUES ($1, $2, 'pending', 'USD', 1999, 1999, $3::jsonb, now(), now())",
            order_id,
            uuid.uuid4(),
            '{"recipient_name": "Grace Hopper", "line1": "77 Massachusetts Ave", '
            '"line2": "Room 4-100", "city": "Cambridge", "region": "MA", '
            '"postal_code": "02139", "country_code": "US", "phone_number": "+16175550100"}',
        )
        await db.execute(
            "INSERT INTO idempotency_keys (buyer_id, key, request_fingerprint, state, response, "
            "order_id) VALUES ($1, 'k-legacy', '\\x00', 'completed', $2, $3)",
            BUYER,
            LEGACY_RESPONSE,
            order_id,
        )
    finally:
        await db.close()
    processes.migrate(url, MIGRATIONS)

    pool = await create_pool(url, max_size=2)
    try:
        async with PostgresUnitOfWork(pool) as uow:  # readable before the backfill too
            legacy = await uow.orders.get(order_id)
        assert legacy is not None and legacy.shipping_address == ADDRESS
        await seal_legacy_rows(pool, SEALED_COLUMNS)
        assert await seal_legacy_responses(pool) == 1
        async with pool.acquire() as connection:
            stored = await connection.fetchrow(
                "SELECT response, response_sealed FROM idempotency_keys WHERE buyer_id = $1",
                BUYER,
            )
        assert stored is not None and stored["response_sealed"]
        assert b"Grace Hopper" not in bytes(stored["response"])
        async with PostgresUnitOfWork(pool) as uow:
            record = await uow.idempotency.get(BUYER, "k-legacy")
        assert record is not None and record.response == LEGACY_RESPONSE
        text, row = await row_text(url, order_id)
        for plaintext in PLAINTEXTS:
            assert plaintext not in text
        assert row["shipping_country_code"] == "US"
        async with PostgresUnitOfWork(pool) as uow:
            sealed = await uow.orders.get(order_id)
        assert sealed is not None and sealed.shipping_address == ADDRESS

        # Erasing a buyer's address (account deletion) leaves only the country, and the
        # startup step has nothing to seal in it.
        async with pool.acquire() as connection:
            await connection.execute(
                "UPDATE orders SET shipping_address_sealed = NULL, shipping_address = NULL "
                "WHERE id = $1",
                order_id,
            )
        await seal_legacy_rows(pool, SEALED_COLUMNS)
        async with PostgresUnitOfWork(pool) as uow:
            erased = await uow.orders.get(order_id)
        assert erased is not None
        assert erased.shipping_address == ShippingAddress("", "", "", "US")
    finally:
        await pool.close()


async def test_rotating_the_kek_and_the_dek_keeps_orders_readable(backends: Backends) -> None:
    url = backends.database_url("orders_rotation", MIGRATIONS)
    old, new = keyring_entry("k1"), keyring_entry("k2")
    first, late = new_order(), new_order()
    running = await create_pool(url, max_size=2, keyring=Keyring.parse(old))
    try:
        async with PostgresUnitOfWork(running) as uow:
            await uow.orders.add(first)
            await uow.commit()

        # KEK rotation (k2 first, k1 still there), then a fresh DEK for every row.
        for keyring, new_data_key in ((f"{new},{old}", False), (new, True)):
            pool = await create_pool(url, max_size=2, keyring=Keyring.parse(keyring))
            try:
                assert pool.data_keys is not None
                await rotate(pool, pool.data_keys, SEALED_COLUMNS, new_data_key=new_data_key)
            finally:
                await pool.close()

        # An instance started before the rotation still seals with the DEK it loaded (its
        # DEK cache also holds it unwrapped, so the KEK it came under is not needed).
        async with PostgresUnitOfWork(running) as uow:
            await uow.orders.add(late)
            await uow.commit()
    finally:
        await running.close()

    pool = await create_pool(url, max_size=2, keyring=Keyring.parse(new))
    try:
        assert pool.data_keys is not None
        report = await rotate(pool, pool.data_keys, SEALED_COLUMNS, reencrypt_rows=True)
        assert report["reencrypted"] == 1
        [usage] = report["keys"].values()
        assert usage == {str(pool.data_keys.active_key_id): 2}
        async with PostgresUnitOfWork(pool) as uow:
            for order in (first, late):
                loaded = await uow.orders.get(order.order_id)
                assert loaded is not None and loaded.shipping_address == ADDRESS
    finally:
        await pool.close()

    pool = await create_pool(url, max_size=2, keyring=Keyring.parse(old))
    try:
        async with PostgresUnitOfWork(pool) as uow:
            with pytest.raises(SealedDataUnavailable):
                await uow.orders.get(first.order_id)
    finally:
        await pool.close()
