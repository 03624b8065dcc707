"""Rows with sealed personal fields: backfill of plaintext rows, re-encryption, the rotation CLI.

A `SealedColumn` is one bytea column holding a JSON object of personal fields, sealed by
`envelope.DataKeys` with the row's id as associated data; `plain` names the legacy plaintext
columns it replaces (kept nullable, NULL once sealed). Each service lists its sealed columns
and runs `main()` from its own `data_keys` module (see the README's "Encryption at rest").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from services.common.envelope import (
    DataKey,
    DataKeys,
    SealedDataUnavailable,
    field_context,
    sealed_key_id,
)
from services.common.logging import configure_logging
from services.common.postgres import BoundedPool

log = structlog.get_logger("common.sealed_rows")

_BATCH = 200


@dataclass(frozen=True)
class SealedColumn:
    """A bytea column sealing a JSON object of personal fields of its table's rows."""

    table: str
    sealed: str
    # The legacy plaintext columns folded into the sealed object (NULL once sealed).
    plain: tuple[str, ...]
    key: str = "id"

    def context(self, row_id: object) -> bytes:
        """The associated data of this column in the row `row_id`."""
        return field_context(self.table, self.sealed, row_id)

    def seal(self, keys: DataKeys, row_id: object, fields: Mapping[str, Any]) -> bytes:
        """The sealed JSON of `fields` for row `row_id`."""
        return keys.seal(_dump(fields), context=self.context(row_id))

    async def open(
        self, keys: DataKeys, connection: Any, row_id: object, sealed: bytes
    ) -> dict[str, Any]:
        """The fields sealed in row `row_id`."""
        opened: dict[str, Any] = json.loads(
            await keys.open(connection, sealed, context=self.context(row_id))
        )
        return opened


def _dump(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(fields), separators=(",", ":"), sort_keys=True).encode()


async def backfill(pool: asyncpg.Pool[asyncpg.Record], keys: DataKeys, column: SealedColumn) -> int:
    """Seal every row still holding plaintext and NULL its plaintext; how many were sealed.

    Batches of rows locked with SKIP LOCKED, one transaction each, so replicas starting
    together share the work and a request never waits long on a backfill lock.
    """
    total = 0
    plain = ", ".join(column.plain)
    nulls = ", ".join(f"{c} = NULL" for c in column.plain)
    # A row with neither form holds no personal data (erased): nothing to seal.
    held = " OR ".join(f"{c} IS NOT NULL" for c in column.plain)
    while True:
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT {column.key}, {plain} FROM {column.table} "
                f"WHERE {column.sealed} IS NULL AND ({held}) "
                f"LIMIT {_BATCH} FOR UPDATE SKIP LOCKED"
            )
            for row in rows:
                fields = {c: row[c] for c in column.plain}
                sealed = column.seal(keys, row[column.key], fields)
                await connection.execute(
                    f"UPDATE {column.table} SET {column.sealed} = $2, {nulls} "
                    f"WHERE {column.key} = $1",
                    row[column.key],
                    sealed,
                )
        total += len(rows)
        if len(rows) < _BATCH:
            break
    if total:
        log.info("sealed_rows_backfilled", table=column.table, column=column.sealed, rows=total)
    return total


async def seal_legacy_rows(pool: BoundedPool, columns: Sequence[SealedColumn]) -> None:
    """The startup step: seal the rows written before encryption at rest (quick when none are).

    Without a usable data key (a wrong keyring) it logs and leaves them: the service stays
    up, and sealed data fails closed until the keyring is fixed.
    """
    if pool.data_keys is None:
        raise RuntimeError("the pool has no data keys")
    try:
        for column in columns:
            await backfill(pool, pool.data_keys, column)
    except SealedDataUnavailable:
        log.error("sealed_rows_backfill_skipped", reason="no usable data key")


async def reencrypt(
    pool: asyncpg.Pool[asyncpg.Record], keys: DataKeys, column: SealedColumn, dek: DataKey
) -> int:
    """Re-seal under `dek` every row sealed under another DEK; how many were re-sealed."""
    total = 0
    while True:
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                f"SELECT {column.key}, {column.sealed} FROM {column.table} "
                f"WHERE {column.sealed} IS NOT NULL AND substring({column.sealed} FROM 2 FOR 16) <> $1 "
                f"LIMIT {_BATCH} FOR UPDATE SKIP LOCKED",
                dek.key_id.bytes,
            )
            for row in rows:
                row_id, sealed = row[column.key], bytes(row[column.sealed])
                plaintext = await keys.open(connection, sealed, context=column.context(row_id))
                await connection.execute(
                    f"UPDATE {column.table} SET {column.sealed} = $2 WHERE {column.key} = $1",
                    row_id,
                    DataKeys.seal_with(dek, plaintext, context=column.context(row_id)),
                )
        total += len(rows)
        if len(rows) < _BATCH:
            break
    log.info("sealed_rows_reencrypted", table=column.table, column=column.sealed, rows=total)
    return total


async def key_usage(connection: Any, columns: Sequence[SealedColumn]) -> dict[str, dict[str, int]]:
    """How many rows of each sealed column each DEK seals (plaintext rows under "plaintext")."""
    usage: dict[str, dict[str, int]] = {}
    for column in columns:
        counts: dict[str, int] = {}
        for row in await connection.fetch(
            f"SELECT substring({column.sealed} FROM 2 FOR 16) AS k, count(*) AS n "
            f"FROM {column.table} GROUP BY 1"
        ):
            name = "plaintext" if row["k"] is None else str(sealed_key_id(b"\x01" + row["k"]))
            counts[name] = row["n"]
        usage[f"{column.table}.{column.sealed}"] = counts
    return usage


async def rotate(
    pool: asyncpg.Pool[asyncpg.Record],
    keys: DataKeys,
    columns: Sequence[SealedColumn],
    *,
    new_data_key: bool = False,
    reencrypt_rows: bool = False,
) -> dict[str, Any]:
    """The rotation: backfill, re-wrap every DEK under the primary KEK, optionally re-encrypt.

    With `new_data_key`, a fresh DEK is committed and every row moves to it. Instances
    still running seal new writes with the DEK they loaded until restarted; after the
    restart, `reencrypt_rows` moves those rows to the newest DEK without making another.
    """
    async with pool.acquire() as connection:
        await keys.load(connection)
    report: dict[str, Any] = {"backfilled": 0, "reencrypted": 0}
    for column in columns:
        report["backfilled"] += await backfill(pool, keys, column)
    async with pool.acquire() as connection, connection.transaction():
        report["rewrapped"] = await keys.rewrap(connection)
    target: DataKey | None = None
    if new_data_key:
        async with pool.acquire() as connection, connection.transaction():
            target = await keys.create(connection)
    elif reencrypt_rows and keys.active_key_id is not None:
        async with pool.acquire() as connection:
            target = await keys.get(connection, keys.active_key_id)
    if target is not None:
        for column in columns:
            report["reencrypted"] += await reencrypt(pool, keys, column, target)
    async with pool.acquire() as connection:
        report["keys"] = await key_usage(connection, columns)
    return report


def main(
    *,
    service: str,
    open_pool: Callable[[], Awaitable[BoundedPool]],
    columns: Sequence[SealedColumn],
    argv: Sequence[str] | None = None,
) -> int:
    """The `python -m services.<service>.data_keys` command: status, backfill or rotate.

    Exits 1 (the reason on stderr) when a key it needs is not in the keyring.

    `open_pool` opens the service's own pool (its codecs, its configured keyring).
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m services.{service}.data_keys",
        description="Data keys of the service's database (see the README: Encryption at rest).",
    )
    parser.add_argument("command", choices=["status", "backfill", "rotate"])
    parser.add_argument(
        "--new-data-key",
        action="store_true",
        help="rotate: also create a fresh DEK and re-encrypt every row under it",
    )
    parser.add_argument(
        "--reencrypt",
        action="store_true",
        help="rotate: re-encrypt rows sealed under older DEKs with the newest one",
    )
    args = parser.parse_args(argv)
    # Log lines go to stderr, so stdout holds the JSON report alone.
    configure_logging(f"{service}-data-keys")

    async def run() -> dict[str, Any]:
        pool = await open_pool()
        keys = pool.data_keys
        if keys is None:
            raise RuntimeError("the pool has no data keys")
        try:
            if args.command == "rotate":
                return await rotate(
                    pool,
                    keys,
                    columns,
                    new_data_key=args.new_data_key,
                    reencrypt_rows=args.reencrypt,
                )
            if args.command == "backfill":
                done = [await backfill(pool, keys, c) for c in columns]
                return {"backfilled": sum(done)}
            async with pool.acquire() as connection:
                keyed = await connection.fetch(
                    "SELECT key_id, kek_id FROM data_keys ORDER BY created_at"
                )
                return {
                    "data_keys": [
                        {"key_id": str(r["key_id"]), "kek_id": r["kek_id"]} for r in keyed
                    ],
                    "active": str(keys.active_key_id),
                    "rows": await key_usage(connection, columns),
                }
        finally:
            await pool.close()

    try:
        report = asyncio.run(run())
    except SealedDataUnavailable as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0
