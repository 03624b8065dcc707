"""The event-stream settings the three services share, each read under its own env prefix."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.config import EventStreamSettings
from services.order.config import Settings as OrderSettings
from services.product.config import Settings as ProductSettings
from services.user.config import Settings as UserSettings

DATABASE_URL = "postgresql://marketplace@127.0.0.1:5432/test"


@pytest.mark.parametrize(
    ("prefix", "settings_type", "required"),
    [
        ("USER_", UserSettings, {"database_url": DATABASE_URL}),
        ("ORDER_", OrderSettings, {"database_url": DATABASE_URL}),
        ("PRODUCT_", ProductSettings, {}),
    ],
)
def test_each_service_reads_the_event_stream_settings_under_its_own_prefix(
    monkeypatch: pytest.MonkeyPatch,
    prefix: str,
    settings_type: type[EventStreamSettings],
    required: dict[str, Any],
) -> None:
    # An unprefixed variable belongs to no service: it must not leak into any of them.
    monkeypatch.setenv("EVENT_BLOCK_MS", "999")
    monkeypatch.setenv(f"{prefix}USER_EVENTS_STREAM", "test.user.events.v9")
    monkeypatch.setenv(f"{prefix}EVENT_CONSUMER_NAME", "replica-7")
    monkeypatch.setenv(f"{prefix}EVENT_BLOCK_MS", "123")
    monkeypatch.setenv(f"{prefix}EVENT_CLAIM_IDLE_MS", "4567")

    settings = settings_type(environment="test", plaintext=True, **required)

    assert settings.user_events_stream == "test.user.events.v9"
    assert settings.event_consumer_name == "replica-7"
    assert settings.consumer_tuning() == {"block_ms": 123, "claim_idle_ms": 4567}


def test_the_defaults_are_the_platform_streams_and_a_two_second_read() -> None:
    settings = ProductSettings(environment="test", plaintext=True)

    assert settings.user_events_stream == "marketplace.user.events.v1"
    assert settings.event_consumer_name  # the host name: unique per replica
    assert settings.consumer_tuning() == {"block_ms": 2000, "claim_idle_ms": 60_000}
