"""The sandbox gateway's durability and fault controls, over a real socket."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from services.common.money import Money
from services.order.adapters.payments import HttpGateway, PaymentUnavailable
from services.order.sandbox_gateway.app import GatewayState, create_app
from services.order.sandbox_gateway.store import GatewayStore

API_KEY = "gateway-controls-key"
HEADERS = {"Authorization": f"Bearer {API_KEY}"}


class Served:
    def __init__(self, server: TestServer, session: aiohttp.ClientSession) -> None:
        self.url = str(server.make_url("")).rstrip("/")
        self.session = session
        self.client = HttpGateway(self.url, API_KEY, session, timeout_seconds=0.3)


@pytest_asyncio.fixture(loop_scope="session")
async def state(tmp_path: Path) -> GatewayState:
    return GatewayState(
        api_key=API_KEY,
        latency_seconds=0,
        rng=random.Random(3),
        store=GatewayStore(tmp_path / "gateway.sqlite3"),
    )


@pytest_asyncio.fixture(loop_scope="session")
async def served(state: GatewayState) -> AsyncIterator[Served]:
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Served(server, session)
    finally:
        await server.close()


async def test_a_stalled_capture_is_in_progress_to_lookups_then_done(served: Served) -> None:
    amount = Money(1200, "EUR")
    held = await served.client.authorize(amount, "tok_visa", "o-1:authorize")
    async with served.session.put(
        f"{served.url}/_sandbox/stalls/capture", json={"seconds": 0.6}, headers=HEADERS
    ) as response:
        assert response.status == 200
    capturing = asyncio.create_task(
        served.client.capture(held.authorization_id, amount, "o-1:capture")
    )
    await asyncio.sleep(0.1)
    with pytest.raises(PaymentUnavailable):  # received, not finished: unknown, not "none"
        await served.client.find_capture("o-1:capture")
    assert await served.client.find_capture("o-2:capture") is None  # never received
    with pytest.raises(PaymentUnavailable):
        await capturing  # the caller times out ...
    await asyncio.sleep(0.7)
    found = await served.client.find_capture("o-1:capture")  # ... and the capture happened
    assert found is not None and found.amount == amount
    async with served.session.delete(
        f"{served.url}/_sandbox/stalls/capture", headers=HEADERS
    ) as response:
        assert (await response.json())["stalls"] == {}


@pytest.mark.parametrize(
    ("operation", "body"), [("settle", {"seconds": 1}), ("capture", {"seconds": -1}), ("void", {})]
)
async def test_a_bad_stall_is_refused(served: Served, operation: str, body: dict[str, int]) -> None:
    async with served.session.put(
        f"{served.url}/_sandbox/stalls/{operation}", json=body, headers=HEADERS
    ) as response:
        assert response.status == 400
        assert (await response.json())["error"]["code"] == "invalid_stall"


async def test_the_controls_need_the_api_key(served: Served) -> None:
    async with served.session.put(
        f"{served.url}/_sandbox/stalls/capture", json={"seconds": 1}
    ) as response:
        assert response.status == 401


async def test_charges_and_keys_survive_a_restart(
    served: Served, state: GatewayState, tmp_path: Path
) -> None:
    amount = Money(900, "EUR")
    held = await served.client.authorize(amount, "tok_visa", "r-1:authorize")
    capture = await served.client.capture(held.authorization_id, amount, "r-1:capture")
    await served.client.refund(capture.charge_id, Money(400, "EUR"), "r-1:refund")

    restarted = GatewayState(api_key=API_KEY, store=GatewayStore(tmp_path / "gateway.sqlite3"))
    restarted.load()

    assert restarted.charges.keys() == state.charges.keys()
    charge = restarted.by_charge_id[capture.charge_id]
    assert (charge.status, charge.refunded_minor, charge.token) == ("captured", 400, "tok_visa")
    assert restarted.keys.keys() == state.keys.keys()
    assert restarted.keys["r-1:capture"].body["charge_id"] == capture.charge_id
