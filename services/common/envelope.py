"""Envelope encryption at rest: KEKs from the environment wrap the DEKs that seal personal data.

A database's data-encryption keys (DEKs, AES-256) live in its `data_keys` table, each wrapped
(AES-256-GCM) by a key-encryption key (KEK) that only the environment holds. A field is sealed
with AES-256-GCM under the newest DEK, its associated data naming the table, the column and
the row, so a ciphertext copied to another row or column does not open. Rotating a KEK
re-wraps the few DEKs (cheap); a fresh DEK re-encrypts rows (see `sealed_rows`).

Sealed value layout: version (1 byte) | DEK id (16 bytes) | nonce (12 bytes) | ciphertext+tag.
Nothing here logs a key or a plaintext.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from services.common.errors import DEPENDENCY_UNAVAILABLE, Unavailable

if TYPE_CHECKING:
    from services.common.postgres import AnyConnection

log = structlog.get_logger("common.envelope")

KEY_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"
_HEADER_BYTES = 1 + 16 + _NONCE_BYTES
_WRAP_CONTEXT = b"marketplace.data-key.v1|"

# Dev mode and tests only: a fixed key, so data written by one `nox -s up` still opens after a
# restart. Settings refuse it outside dev mode.
DEV_KEK_ID = "dev"
DEV_KEK = hashlib.sha256(b"marketplace dev data key, not for production").digest()


class KeyringError(ValueError):
    """The configured keyring is malformed; the message never holds key material."""


class SealedDataUnavailable(Unavailable):
    """Sealed data cannot be opened or written: its key is not in the keyring, or it was altered.

    Fails closed as UNAVAILABLE (the operator fixes the keyring; the data is not lost), never
    as INTERNAL and never with a plaintext or a key in the message.
    """

    def __init__(self, message: str) -> None:
        super().__init__(
            message, reason=DEPENDENCY_UNAVAILABLE, metadata={"dependency": "data-keys"}
        )


@dataclass(frozen=True)
class Kek:
    """One key-encryption key of the keyring."""

    kek_id: str
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class Keyring:
    """The KEKs a service holds, the primary (newest, the one that wraps) first."""

    keks: tuple[Kek, ...]

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """Parse `id:base64key,id:base64key` (newest first); raises KeyringError."""
        keks: list[Kek] = []
        for position, entry in enumerate(e.strip() for e in text.split(",")):
            kek_id, sep, encoded = entry.partition(":")
            kek_id = kek_id.strip()
            if not sep or not kek_id:
                raise KeyringError(f"entry {position + 1} is not of the form id:base64key")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise KeyringError(f"key {kek_id!r} is not valid base64") from None
            if len(key) != KEY_BYTES:
                raise KeyringError(f"key {kek_id!r} must decode to {KEY_BYTES} bytes")
            if any(k.kek_id == kek_id for k in keks):
                raise KeyringError(f"key id {kek_id!r} appears twice")
            keks.append(Kek(kek_id, key))
        if not keks:
            raise KeyringError("the keyring holds no key")
        return cls(tuple(keks))

    @classmethod
    def dev(cls) -> Keyring:
        """The fixed keyring of dev mode and tests."""
        return cls((Kek(DEV_KEK_ID, DEV_KEK),))

    @property
    def primary(self) -> Kek:
        """The KEK new and re-wrapped DEKs are wrapped with."""
        return self.keks[0]

    @property
    def holds_dev_key(self) -> bool:
        """Whether the placeholder dev key is in the ring (refused outside dev mode)."""
        return any(k.kek_id == DEV_KEK_ID or k.key == DEV_KEK for k in self.keks)

    def find(self, kek_id: str) -> Kek | None:
        """The KEK with this id, if the ring holds it."""
        return next((k for k in self.keks if k.kek_id == kek_id), None)

    def wrap(self, dek_id: uuid.UUID, dek: bytes) -> tuple[str, bytes]:
        """The DEK wrapped by the primary KEK, bound to its id: (kek id, nonce + ciphertext)."""
        nonce = os.urandom(_NONCE_BYTES)
        aad = _WRAP_CONTEXT + dek_id.bytes
        return self.primary.kek_id, nonce + AESGCM(self.primary.key).encrypt(nonce, dek, aad)

    def unwrap(self, dek_id: uuid.UUID, kek_id: str, wrapped: bytes) -> bytes:
        """The DEK; SealedDataUnavailable when its KEK is not held or does not open it."""
        kek = self.find(kek_id)
        if kek is None:
            log.error("data_key_kek_missing", dek_id=str(dek_id), kek_id=kek_id)
            raise SealedDataUnavailable("the key that protects this data is not configured")
        try:
            nonce, body = wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:]
            return AESGCM(kek.key).decrypt(nonce, body, _WRAP_CONTEXT + dek_id.bytes)
        except (InvalidTag, ValueError):
            log.error("data_key_unwrap_failed", dek_id=str(dek_id), kek_id=kek_id)
            raise SealedDataUnavailable(
                "the key that protects this data does not match the configured one"
            ) from None


@dataclass(frozen=True)
class DataKey:
    """An unwrapped DEK."""

    key_id: uuid.UUID
    key: bytes = field(repr=False)


def field_context(table: str, column: str, row_id: object) -> bytes:
    """The associated data binding a sealed value to its table, column and row."""
    return f"{table}.{column}:{row_id}".encode()


def sealed_key_id(sealed: bytes) -> uuid.UUID:
    """The id of the DEK a sealed value was written with."""
    return uuid.UUID(bytes=bytes(sealed[1:17]))


class DataKeys:
    """The DEKs of one database: loaded at startup, unwrapped once, cached in memory.

    `seal` writes with the newest DEK known at `load`; `open` fetches (on the caller's
    connection, inside its transaction) a DEK it has not seen, such as one a rotation made
    after this instance started.
    """

    def __init__(self, keyring: Keyring, *, table: str = "data_keys") -> None:
        """Keys of `table`, unwrapped with `keyring`."""
        self.keyring = keyring
        self._table = table
        self._cache: dict[uuid.UUID, DataKey] = {}
        self._active: DataKey | None = None

    async def load(self, connection: AnyConnection) -> None:
        """Find the newest DEK (creating the first one); never raises for a wrong keyring.

        A keyring that cannot open the newest DEK leaves sealed data failing closed
        (UNAVAILABLE) until the keyring is fixed, and logs why; the service then reports
        NOT_SERVING (`BoundedPool.not_ready`), so no traffic is routed to it.
        """
        row = await connection.fetchrow(
            f"SELECT key_id, wrapped_key, kek_id FROM {self._table} "
            "ORDER BY created_at DESC, key_id DESC LIMIT 1"
        )
        if row is None:
            self._active = await self.create(connection)
            return
        try:
            self._active = self._unwrap(row["key_id"], row["kek_id"], bytes(row["wrapped_key"]))
        except SealedDataUnavailable:
            self._active = None

    async def create(self, connection: AnyConnection) -> DataKey:
        """A fresh DEK, wrapped by the primary KEK and stored (committed by the caller)."""
        dek = DataKey(uuid.uuid4(), AESGCM.generate_key(bit_length=256))
        kek_id, wrapped = self.keyring.wrap(dek.key_id, dek.key)
        await connection.execute(
            f"INSERT INTO {self._table} (key_id, wrapped_key, kek_id) VALUES ($1, $2, $3)",
            dek.key_id,
            wrapped,
            kek_id,
        )
        self._cache[dek.key_id] = dek
        log.info("data_key_created", dek_id=str(dek.key_id), kek_id=kek_id)
        return dek

    @property
    def active_key_id(self) -> uuid.UUID | None:
        """The id of the DEK `seal` writes with, if the keyring opened it."""
        return None if self._active is None else self._active.key_id

    def seal(self, plaintext: bytes, *, context: bytes) -> bytes:
        """`plaintext` encrypted under the active DEK, bound to `context`."""
        if self._active is None:
            raise SealedDataUnavailable("no usable data key: the keyring does not open it")
        return self.seal_with(self._active, plaintext, context=context)

    @staticmethod
    def seal_with(dek: DataKey, plaintext: bytes, *, context: bytes) -> bytes:
        """`plaintext` encrypted under `dek`, bound to `context`."""
        nonce = os.urandom(_NONCE_BYTES)
        header = _VERSION + dek.key_id.bytes + nonce
        return header + AESGCM(dek.key).encrypt(nonce, plaintext, _VERSION + context)

    async def open(self, connection: AnyConnection, sealed: bytes, *, context: bytes) -> bytes:
        """The plaintext of a sealed value; SealedDataUnavailable when it does not open."""
        sealed = bytes(sealed)
        if len(sealed) < _HEADER_BYTES + 16 or sealed[:1] != _VERSION:
            log.error("sealed_value_malformed", context=context.decode(errors="replace"))
            raise SealedDataUnavailable("stored personal data is unreadable")
        dek = await self.get(connection, sealed_key_id(sealed))
        nonce, body = sealed[17:_HEADER_BYTES], sealed[_HEADER_BYTES:]
        try:
            return AESGCM(dek.key).decrypt(nonce, body, _VERSION + context)
        except InvalidTag:
            # Altered, or moved from another row or column: never return it.
            log.error(
                "sealed_value_rejected",
                context=context.decode(errors="replace"),
                dek_id=str(dek.key_id),
            )
            raise SealedDataUnavailable("stored personal data failed its integrity check") from None

    async def get(self, connection: AnyConnection, key_id: uuid.UUID) -> DataKey:
        """The DEK with this id, unwrapped (cached after the first time)."""
        cached = self._cache.get(key_id)
        if cached is not None:
            return cached
        row = await connection.fetchrow(
            f"SELECT key_id, wrapped_key, kek_id FROM {self._table} WHERE key_id = $1",
            key_id,
        )
        if row is None:
            log.error("data_key_missing", dek_id=str(key_id))
            raise SealedDataUnavailable("the key that protects this data is missing")
        return self._unwrap(row["key_id"], row["kek_id"], bytes(row["wrapped_key"]))

    def _unwrap(self, key_id: uuid.UUID, kek_id: str, wrapped: bytes) -> DataKey:
        dek = DataKey(key_id, self.keyring.unwrap(key_id, kek_id, wrapped))
        self._cache[key_id] = dek
        return dek

    async def rewrap(self, connection: AnyConnection) -> int:
        """Wrap every DEK under the primary KEK (the cheap rotation step); how many moved.

        Raises SealedDataUnavailable when a DEK's KEK is no longer in the ring: add it back
        (as an older entry) and run again.
        """
        primary = self.keyring.primary.kek_id
        rows = await connection.fetch(
            f"SELECT key_id, wrapped_key, kek_id FROM {self._table} "
            "WHERE kek_id <> $1 ORDER BY created_at FOR UPDATE",
            primary,
        )
        for row in rows:
            dek = self._unwrap(row["key_id"], row["kek_id"], bytes(row["wrapped_key"]))
            kek_id, wrapped = self.keyring.wrap(dek.key_id, dek.key)
            await connection.execute(
                f"UPDATE {self._table} SET wrapped_key = $2, kek_id = $3, "
                "rewrapped_at = now() WHERE key_id = $1",
                dek.key_id,
                wrapped,
                kek_id,
            )
            log.info("data_key_rewrapped", dek_id=str(dek.key_id), kek_id=kek_id)
        return len(rows)


def configured_keyring(value: str | None, *, dev_mode: bool, variable: str) -> Keyring:
    """The keyring of a `variable` setting; dev mode falls back to the fixed dev keyring.

    Raises ValueError (settings validation, so the service refuses to start) when the value
    is missing or malformed outside dev mode, or holds the dev key there. The message names
    the variable and never the key.
    """
    if value is None or not value.strip():
        if dev_mode:
            return Keyring.dev()
        raise ValueError(
            f"{variable} must be set outside dev mode: id:base64key[,id:base64key...], "
            f"newest first, each key {KEY_BYTES} random bytes"
        )
    try:
        keyring = Keyring.parse(value)
    except KeyringError as error:
        raise ValueError(f"{variable} is invalid: {error}") from None
    if keyring.holds_dev_key and not dev_mode:
        raise ValueError(f"{variable} holds the dev key; it is refused outside dev mode")
    return keyring
