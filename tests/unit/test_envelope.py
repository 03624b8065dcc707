"""The envelope-encryption keyring: parsing, the dev fallback, and refusals outside dev mode."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from services.common.envelope import (
    DataKey,
    DataKeys,
    Keyring,
    KeyringError,
    SealedDataUnavailable,
    configured_keyring,
)
from services.order.config import Settings as OrderSettings
from services.user.config import Settings as UserSettings

KEY = base64.b64encode(os.urandom(32)).decode()


def test_a_keyring_parses_newest_first_and_never_shows_its_keys() -> None:
    other = base64.b64encode(os.urandom(32)).decode()
    ring = Keyring.parse(f" k2:{other} , k1:{KEY}")
    assert [k.kek_id for k in ring.keks] == ["k2", "k1"]
    assert ring.primary.kek_id == "k2"
    assert KEY not in repr(ring) and other not in repr(ring)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "k1",
        f":{KEY}",
        "k1:not-base64!",
        f"k1:{base64.b64encode(b'short').decode()}",
        f"k1:{KEY},k1:{KEY}",
    ],
)
def test_a_malformed_keyring_is_refused_without_echoing_the_key(text: str) -> None:
    with pytest.raises(KeyringError) as raised:
        Keyring.parse(text)
    assert KEY not in str(raised.value)


def test_dev_mode_falls_back_to_the_dev_keyring_and_production_refuses_it() -> None:
    assert configured_keyring(None, dev_mode=True, variable="X_DATA_KEK") == Keyring.dev()
    with pytest.raises(ValueError, match="X_DATA_KEK must be set outside dev mode"):
        configured_keyring(None, dev_mode=False, variable="X_DATA_KEK")
    dev = Keyring.dev().primary
    text = f"{dev.kek_id}:{base64.b64encode(dev.key).decode()}"
    with pytest.raises(ValueError, match="holds the dev key"):
        configured_keyring(text, dev_mode=False, variable="X_DATA_KEK")
    assert configured_keyring(f"k1:{KEY}", dev_mode=False, variable="X").primary.kek_id == "k1"


@pytest.mark.parametrize("settings", [UserSettings, OrderSettings])
def test_a_service_with_a_malformed_kek_refuses_to_start(settings: type[UserSettings]) -> None:
    with pytest.raises(ValidationError, match="DATA_KEK is invalid") as raised:
        settings(
            database_url="postgresql://u@localhost/db",
            environment="test",
            plaintext=True,
            data_kek=f"k1:{KEY[:-8]}",
        )
    assert KEY[:-8] not in str(raised.value)


async def test_a_sealed_value_opens_only_with_its_context() -> None:
    dek = DataKey(uuid.uuid4(), os.urandom(32))
    sealed = DataKeys.seal_with(dek, b"221B Baker Street", context=b"addresses.personal:1")
    assert b"Baker" not in sealed
    keys = DataKeys(Keyring.dev())
    keys._cache[dek.key_id] = dek  # a unit test: no database to fetch the key from
    no_db: Any = None  # the key is cached, so no connection is used
    assert await keys.open(no_db, sealed, context=b"addresses.personal:1") == b"221B Baker Street"
    with pytest.raises(SealedDataUnavailable):
        await keys.open(no_db, sealed, context=b"addresses.personal:2")
