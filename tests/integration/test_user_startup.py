"""Starting the user service: demo accounts only in dev mode with the seed flag."""

from __future__ import annotations

import base64
from typing import Any

import asyncpg
import pytest

from services.user.adapters.signing import SigningKey
from services.user.app import build_app
from tests.support.servers import Backends
from tests.support.user import MIGRATIONS, user_settings

DEMO_EMAILS = {"admin@example.com", "seller@example.com", "buyer@example.com"}


async def demo_accounts(url: str) -> dict[str, list[str]]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("select email, roles, email_verified from users")
    finally:
        await connection.close()
    assert all(r["email_verified"] for r in rows)
    return {r["email"]: sorted(r["roles"]) for r in rows}


async def test_dev_mode_with_the_flag_seeds_demo_accounts_idempotently(backends: Backends) -> None:
    url = backends.database_url("users", MIGRATIONS)
    config = user_settings(url, seed_demo_accounts=True)

    async with build_app(config):
        pass
    async with build_app(config):  # a restart finds them and changes nothing
        pass

    assert await demo_accounts(url) == {
        "admin@example.com": ["admin", "customer"],
        "seller@example.com": ["customer", "seller"],
        "buyer@example.com": ["customer"],
    }


@pytest.mark.parametrize(
    "overrides",
    [
        {"environment": "test", "seed_demo_accounts": False},
        {"environment": "dev"},
        {
            "environment": "prod",
            "seed_demo_accounts": True,
            "internal_secret": "a-real-secret-for-production",
            "signing_key_pem": SigningKey.generate().to_pem(),
            "smtp_host": "smtp.invalid",
            "data_kek": "prod-1:" + base64.b64encode(bytes(range(32))).decode(),
        },
    ],
    ids=["test-without-flag", "dev-default", "prod-with-flag"],
)
async def test_no_demo_accounts_without_dev_mode_and_the_flag(
    backends: Backends, overrides: dict[str, Any]
) -> None:
    url = backends.database_url("users", MIGRATIONS)

    async with build_app(user_settings(url, **overrides)):
        pass

    assert await demo_accounts(url) == {}
