"""The sandbox gateway's durable memory: charges and idempotency records in SQLite."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS charges (
    authorization_id TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class GatewayStore:
    """Writes every charge and every answered key through to a SQLite file.

    A real processor never forgets a charge it made; neither does the fake, across its own
    restarts. A charge and the key that made it are written in one transaction, so a
    gateway killed mid-call either did the whole call or none of it.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def charges(self) -> list[dict[str, Any]]:
        """Every stored charge, as written."""
        rows = self._db.execute("SELECT document FROM charges ORDER BY rowid").fetchall()
        return [json.loads(row[0]) for row in rows]

    def answered_keys(self) -> list[tuple[str, str, int, dict[str, Any]]]:
        """Every stored key: (key, fingerprint, status, body)."""
        rows = self._db.execute(
            "SELECT key, fingerprint, status, body FROM idempotency_keys ORDER BY rowid"
        ).fetchall()
        return [(row[0], row[1], int(row[2]), json.loads(row[3])) for row in rows]

    def write(
        self,
        charges: Iterable[dict[str, Any]],
        key: tuple[str, str, int, dict[str, Any]] | None,
    ) -> None:
        """Store changed charges and an answered key atomically."""
        with self._db:
            self._db.execute("BEGIN")
            for charge in charges:
                self._db.execute(
                    "INSERT OR REPLACE INTO charges (authorization_id, document) VALUES (?, ?)",
                    (charge["authorization_id"], json.dumps(charge, sort_keys=True)),
                )
            if key is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO idempotency_keys (key, fingerprint, status, body) "
                    "VALUES (?, ?, ?, ?)",
                    (key[0], key[1], key[2], json.dumps(key[3], sort_keys=True)),
                )

    def close(self) -> None:
        """Close the file."""
        self._db.close()
