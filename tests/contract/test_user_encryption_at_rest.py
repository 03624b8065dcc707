"""Encryption at rest of addresses and phone numbers in the user database, over gRPC.

The raw rows hold no plaintext, a ciphertext moved to another row does not open, plaintext
rows from before the migration are sealed at startup, and a KEK rotation keeps the data
readable while a wrong keyring fails closed (UNAVAILABLE) without logging plaintext.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import uuid
from contextlib import AbstractAsyncContextManager
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf import field_mask_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from structlog.testing import capture_logs

from services.common.envelope import Keyring
from services.common.reasons import ErrorReason
from services.common.sealed_rows import rotate
from services.devmesh import processes
from services.user.adapters.postgres import create_pool
from services.user.adapters.signing import KeyRing, SigningKey
from services.user.data_keys import SEALED_COLUMNS
from tests.support.failures import rpc_failure
from tests.support.migrations import database_before
from tests.support.servers import Backends
from tests.support.tokens import bearer
from tests.support.user import MIGRATIONS, UserService, register_and_login, running_user_service

LINE1 = "221B Baker Street"
RECIPIENT = "Sherlock Holmes"
POSTAL = "NW1 6XE"
PHONE = "+442071234567"
PROFILE_PHONE = "+447700900123"
PLAINTEXTS = (LINE1, RECIPIENT, POSTAL, PHONE, PROFILE_PHONE, "London")


def kek(kek_id: str) -> tuple[str, str]:
    """A keyring entry with a fresh random key: (id, "id:base64key")."""
    return kek_id, f"{kek_id}:{base64.b64encode(os.urandom(32)).decode()}"


def address() -> user_pb2.Address:
    return user_pb2.Address(
        recipient_name=RECIPIENT,
        line1=LINE1,
        line2="Flat B",
        city="London",
        postal_code=POSTAL,
        country_code="GB",
        phone_number=PHONE,
    )


def internal(svc: UserService) -> user_service_pb2_grpc.UserInternalServiceAsyncStub:
    stub: user_service_pb2_grpc.UserInternalServiceAsyncStub
    stub = user_service_pb2_grpc.UserInternalServiceStub(svc.served.internal_channel)
    return stub


async def shipping(svc: UserService, user_id: str, address_id: str) -> user_pb2.Address:
    response = await internal(svc).GetShippingAddress(
        user_service_pb2.GetShippingAddressRequest(user_id=user_id, address_id=address_id)
    )
    return response.address


async def create(svc: UserService, token: str) -> user_pb2.Address:
    return await svc.stub.CreateAddress(
        user_service_pb2.CreateAddressRequest(user_id="me", address=address()),
        metadata=bearer(token),
    )


async def set_phone(svc: UserService, token: str, phone: str) -> user_pb2.User:
    return await svc.stub.UpdateUser(
        user_service_pb2.UpdateUserRequest(
            user=user_pb2.User(user_id="me", phone_number=phone),
            update_mask=field_mask_pb2.FieldMask(paths=["phone_number"]),
        ),
        metadata=bearer(token),
    )


async def raw_text(db: asyncpg.Connection[asyncpg.Record], table: str, row_id: str) -> str:
    """The whole row as PostgreSQL prints it (bytea as hex, so also check the bytes)."""
    row = await db.fetchrow(f"SELECT t::text AS text, t.* FROM {table} t WHERE id = $1", row_id)
    assert row is not None
    sealed = b"".join(bytes(v) for v in row.values() if isinstance(v, bytes))
    return str(row["text"]) + sealed.decode("latin-1")


async def test_address_and_phone_rows_hold_no_plaintext_and_round_trip(
    backends: Backends,
) -> None:
    async with running_user_service(backends) as svc:
        user, token = await register_and_login(svc)
        created = await create(svc, token)
        updated = await set_phone(svc, token, PROFILE_PHONE)

        address_text = await raw_text(svc.db, "addresses", created.address_id)
        user_text = await raw_text(svc.db, "users", user.user_id)
        for plaintext in PLAINTEXTS:
            assert plaintext not in address_text
            assert plaintext not in user_text
        row = await svc.db.fetchrow(
            "SELECT line1, phone_number, country_code, personal_sealed FROM addresses "
            "WHERE id = $1",
            uuid.UUID(created.address_id),
        )
        assert row is not None
        assert (row["line1"], row["phone_number"], row["country_code"]) == (None, None, "GB")
        assert row["personal_sealed"] is not None

        fetched = await svc.stub.GetAddress(
            user_service_pb2.GetAddressRequest(user_id="me", address_id=created.address_id),
            metadata=bearer(token),
        )
        assert fetched == created
        assert (fetched.line1, fetched.phone_number, fetched.postal_code) == (LINE1, PHONE, POSTAL)
        assert (await shipping(svc, user.user_id, created.address_id)).line1 == LINE1
        assert updated.phone_number == PROFILE_PHONE
        me = await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
        )
        assert me.phone_number == PROFILE_PHONE


async def test_a_ciphertext_moved_to_another_row_does_not_open(backends: Backends) -> None:
    async with running_user_service(backends) as svc:
        user, token = await register_and_login(svc)
        first = await create(svc, token)
        second = await svc.stub.CreateAddress(
            user_service_pb2.CreateAddressRequest(user_id="me", address=_other_address()),
            metadata=bearer(token),
        )
        await svc.db.execute(
            "UPDATE addresses SET personal_sealed = "
            "(SELECT personal_sealed FROM addresses WHERE id = $1) WHERE id = $2",
            uuid.UUID(first.address_id),
            uuid.UUID(second.address_id),
        )
        with capture_logs() as logs, pytest.raises(grpc.aio.AioRpcError) as caught:
            await svc.stub.GetAddress(
                user_service_pb2.GetAddressRequest(user_id="me", address_id=second.address_id),
                metadata=bearer(token),
            )
        failure = rpc_failure(caught)
        assert failure.code is grpc.StatusCode.UNAVAILABLE
        assert failure.reason == ErrorReason.DEPENDENCY_UNAVAILABLE
        assert LINE1 not in failure.message
        assert any(e["event"] == "sealed_value_rejected" for e in logs)
        assert not any(p in repr(logs) for p in PLAINTEXTS)
        # The phone number of the profile is bound to its row the same way.
        other, _ = await register_and_login(svc)
        await set_phone(svc, token, PROFILE_PHONE)
        await svc.db.execute(
            "UPDATE users SET phone_sealed = (SELECT phone_sealed FROM users WHERE id = $1) "
            "WHERE id = $2",
            uuid.UUID(user.user_id),
            uuid.UUID(other.user_id),
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await internal(svc).GetShippingAddress(
                user_service_pb2.GetShippingAddressRequest(user_id=other.user_id)
            )
        assert rpc_failure(caught).code is grpc.StatusCode.UNAVAILABLE


def _other_address() -> user_pb2.Address:
    other = address()
    other.line1 = "1 Other Road"
    return other


async def test_plaintext_rows_from_before_the_migration_are_sealed_at_startup(
    backends: Backends,
) -> None:
    url = database_before(backends, "users_legacy", MIGRATIONS, "seal_personal_data")
    user_id, address_id = uuid.uuid4(), uuid.uuid4()
    db = await asyncpg.connect(url)
    try:
        await db.execute(
            "INSERT INTO users (id, email, username, password_hash, phone_number) "
            "VALUES ($1, $2, $3, 'x', $4)",
            user_id,
            f"{user_id.hex}@example.com",
            f"u{user_id.hex[:12]}",
            PROFILE_PHONE,
        )
        await db.execute(
            "INSERT INTO addresses (id, user_id, recipient_name, line1, city, postal_code, "
            "country_code, phone_number, is_default_shipping) "
            "VALUES ($1, $2, $3, $4, 'London', $5, 'GB', $6, true)",
            address_id,
            user_id,
            RECIPIENT,
            LINE1,
            POSTAL,
            PHONE,
        )
    finally:
        await db.close()
    processes.migrate(url, MIGRATIONS)

    async with running_user_service(backends, database_url=url) as svc:
        for plaintext in PLAINTEXTS:
            assert plaintext not in await raw_text(svc.db, "addresses", str(address_id))
            assert plaintext not in await raw_text(svc.db, "users", str(user_id))
        found = await shipping(svc, str(user_id), "")
        assert (found.recipient_name, found.line1, found.postal_code, found.phone_number) == (
            RECIPIENT,
            LINE1,
            POSTAL,
            PHONE,
        )
        assert (found.line2, found.region, found.country_code) == ("", "", "GB")


async def health(svc: UserService) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
    """The server-wide health status the probes and the edge read."""
    stub = health_pb2_grpc.HealthStub(svc.served.channel)
    answer = await stub.Check(health_pb2.HealthCheckRequest(service=""))
    return answer.status


async def test_a_kek_rotation_keeps_data_readable_and_a_wrong_keyring_fails_closed(
    backends: Backends,
) -> None:
    url = backends.database_url("users_keys", MIGRATIONS)
    ring = KeyRing(SigningKey.generate())
    old_id, old = kek("k1")
    new_id, new = kek("k2")

    def serve(data_kek: str, **extra: Any) -> AbstractAsyncContextManager[UserService]:
        return running_user_service(
            backends, app_overrides={"key_ring": ring}, database_url=url, data_kek=data_kek, **extra
        )

    async with serve(old) as svc:
        user, token = await register_and_login(svc)
        created = await create(svc, token)
        await set_phone(svc, token, PROFILE_PHONE)
    assert {r["kek_id"] for r in await _data_keys(url)} == {old_id}

    # The new KEK goes in as the newest entry; the documented command re-wraps every DEK
    # under it, printing a report with key ids and counts only.
    done = await asyncio.to_thread(data_keys_command, url, f"{new},{old}", "rotate")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["rewrapped"] == 1
    assert {r["kek_id"] for r in await _data_keys(url)} == {new_id}
    assert not any(p in done.stdout + done.stderr for p in (*PLAINTEXTS, new, old))
    # Without the KEK its DEK is wrapped by, the command fails and says so.
    refused = await asyncio.to_thread(data_keys_command, url, kek("k9")[1], "rotate")
    assert refused.returncode == 1
    assert "not configured" in refused.stderr

    # The old KEK is gone from the keyring: the data still opens.
    async with serve(new) as svc:
        assert await health(svc) == health_pb2.HealthCheckResponse.SERVING
        assert (await shipping(svc, user.user_id, created.address_id)).line1 == LINE1
        me = await svc.stub.GetUser(
            user_service_pb2.GetUserRequest(user_id="me"), metadata=bearer(token)
        )
        assert me.phone_number == PROFILE_PHONE

    # A fresh DEK: every row is re-encrypted under it, and still reads the same.
    pool = await create_pool(url, keyring=Keyring.parse(new))
    try:
        assert pool.data_keys is not None
        report = await rotate(pool, pool.data_keys, SEALED_COLUMNS, new_data_key=True)
    finally:
        await pool.close()
    keys = await _data_keys(url)
    assert len(keys) == 2
    assert report["reencrypted"] >= 2
    newest = str(keys[-1]["key_id"])
    for usage in report["keys"].values():
        assert set(usage) == {newest}, usage

    # Only the retired KEK: nothing opens, and nothing is written, answered as UNAVAILABLE
    # (not INTERNAL), with no plaintext in the logs.
    async with serve(old, seed_demo_accounts=False) as svc:
        # Up, but out of rotation: probes and the registry never send it traffic.
        assert await health(svc) == health_pb2.HealthCheckResponse.NOT_SERVING
        with capture_logs() as logs:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await shipping(svc, user.user_id, created.address_id)
            read = rpc_failure(caught)
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await create(svc, token)
            written = rpc_failure(caught)
        for failure in (read, written):
            assert failure.code is grpc.StatusCode.UNAVAILABLE
            assert failure.reason == ErrorReason.DEPENDENCY_UNAVAILABLE
        assert any(e["event"] == "data_key_kek_missing" for e in logs)
        assert not any(p in repr(logs) for p in PLAINTEXTS)
        assert (
            await svc.db.fetchval(
                "SELECT count(*) FROM addresses WHERE user_id = $1", uuid.UUID(user.user_id)
            )
            == 1
        )

    # The new KEK again: everything reads as it was written.
    async with serve(new) as svc:
        got = await shipping(svc, user.user_id, created.address_id)
        assert (got.recipient_name, got.phone_number, got.postal_code) == (RECIPIENT, PHONE, POSTAL)


def data_keys_command(url: str, keyring: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m services.user.data_keys ARGS` with the service's environment."""
    env = {
        **os.environ,
        "USER_DATABASE_URL": url,
        "USER_ENVIRONMENT": "test",
        "USER_PLAINTEXT": "true",
        "USER_DATA_KEK": keyring,
    }
    return subprocess.run(
        [sys.executable, "-m", "services.user.data_keys", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def _data_keys(url: str) -> list[asyncpg.Record]:
    db = await asyncpg.connect(url)
    try:
        return await db.fetch("SELECT key_id, kek_id FROM data_keys ORDER BY created_at")
    finally:
        await db.close()
