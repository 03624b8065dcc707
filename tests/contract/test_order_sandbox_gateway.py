"""The sandbox payment gateway's HTTP API over a real socket, and the order service's client of it."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestServer

from services.common.money import Money
from services.order.adapters.payments import HttpGateway, PaymentDeclined, PaymentTimeout
from services.order.sandbox_gateway.app import GatewayState, create_app

API_KEY = "gateway-test-key"


class Api:
    """A client of the gateway: raw HTTP calls for the API, and the adapter over them."""

    def __init__(self, server: TestServer, session: aiohttp.ClientSession, state: GatewayState):
        self.url = str(server.make_url("")).rstrip("/")
        self.session = session
        self.state = state

    async def post(
        self, path: str, body: dict[str, Any], key: str | None, api_key: str = API_KEY
    ) -> tuple[int, dict[str, Any], bool]:
        headers = {"Authorization": f"Bearer {api_key}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        async with self.session.post(f"{self.url}{path}", json=body, headers=headers) as response:
            payload: dict[str, Any] = await response.json()
            return response.status, payload, response.headers.get("Idempotent-Replayed") == "true"

    async def authorize(self, key: str, token: str = "tok_visa", amount: int = 1500) -> Any:
        return await self.post(
            "/v1/authorizations",
            {"token": token, "amount_minor": amount, "currency": "EUR"},
            key,
        )


@pytest_asyncio.fixture(loop_scope="session")
async def api() -> AsyncIterator[Api]:
    state = GatewayState(api_key=API_KEY, latency_seconds=0, rng=random.Random(7))
    server = TestServer(create_app(state), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Api(server, session, state)
    finally:
        await server.close()


async def test_calls_need_the_api_key_but_health_does_not(api: Api) -> None:
    status, body, _ = await api.post("/v1/authorizations", {}, "k-1", api_key="wrong")
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    async with api.session.get(f"{api.url}/v1/charges") as response:
        assert response.status == 401
    async with api.session.get(f"{api.url}/healthz") as response:
        assert response.status == 200
    assert api.state.charges == {}


async def test_a_key_replays_its_first_outcome_and_refuses_another_body(api: Api) -> None:
    first = await api.authorize("auth-1")
    again = await api.authorize("auth-1")
    assert first[0] == again[0] == 201
    assert again[1] == first[1] and (first[2], again[2]) == (False, True)
    assert len(api.state.charges) == 1  # one authorisation, however often it is asked

    status, body, _ = await api.authorize("auth-1", amount=9999)
    assert (status, body["error"]["code"]) == (409, "idempotency_key_reused")
    status, body, _ = await api.post("/v1/authorizations", {"token": "tok_visa"}, None)
    assert (status, body["error"]["code"]) == (400, "idempotency_key_missing")


async def test_concurrent_retries_of_one_key_authorize_once(api: Api) -> None:
    outcomes = await asyncio.gather(*(api.authorize("auth-race") for _ in range(8)))
    assert {o[1]["authorization_id"] for o in outcomes} == {outcomes[0][1]["authorization_id"]}
    assert len(api.state.charges) == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_unknown", "invalid_token"),
    ],
)
async def test_decline_tokens_answer_402_and_hold_nothing(api: Api, token: str, code: str) -> None:
    status, body, _ = await api.authorize(f"decline-{token}", token=token)
    assert (status, body["error"]["code"]) == (402, code)
    assert api.state.charges == {}


async def test_capture_void_and_refund_follow_the_money(api: Api) -> None:
    _, held, _ = await api.authorize("a-1", amount=1000)
    auth = held["authorization_id"]
    status, body, _ = await api.post(
        f"/v1/authorizations/{auth}/capture", {"amount_minor": 1001}, "c-0"
    )
    assert (status, body["error"]["code"]) == (400, "invalid_amount")  # past the hold
    status, captured, _ = await api.post(
        f"/v1/authorizations/{auth}/capture", {"amount_minor": 1000}, "c-1"
    )
    assert (status, captured["status"]) == (201, "captured")
    status, body, _ = await api.post(f"/v1/authorizations/{auth}/void", {}, "v-1")
    assert (status, body["error"]["code"]) == (409, "not_voidable")

    charge = captured["charge_id"]
    refunds = f"/v1/charges/{charge}/refunds"
    assert (await api.post(refunds, {"amount_minor": 600}, "r-1"))[0] == 201
    assert (await api.post(refunds, {"amount_minor": 600}, "r-1"))[2] is True  # replayed, once
    status, body, _ = await api.post(refunds, {"amount_minor": 401}, "r-2")
    assert (status, body["error"]["code"]) == (409, "refund_exceeds_charge")
    status, body, _ = await api.post(refunds, {"amount_minor": 400}, "r-3")
    assert (status, body["charge"]["refunded_minor"]) == (201, 1000)


async def test_simulated_outages_are_503_and_not_remembered(api: Api) -> None:
    api.state.failure_rate = 1.0
    status, body, _ = await api.authorize("flaky-1")
    assert (status, body["error"]["code"]) == (503, "service_unavailable")
    api.state.failure_rate = 0.0
    status, _, replayed = await api.authorize("flaky-1")  # the retry with the key succeeds
    assert (status, replayed) == (201, False)


async def test_the_adapter_maps_outcomes_and_finds_calls_by_key(api: Api) -> None:
    client = HttpGateway(api.url, API_KEY, api.session, timeout_seconds=0.3)
    amount = Money(2500, "EUR")
    held = await client.authorize(amount, "tok_visa", "order-x:authorize")
    charge = await client.capture(held.authorization_id, amount, "order-x:capture")
    found = await client.find_capture("order-x:capture")
    assert found is not None and found.charge_id == charge.charge_id
    assert (await client.find_authorization("order-x:authorize")) is not None
    assert await client.find_capture("order-y:capture") is None  # no call with that key

    with pytest.raises(PaymentDeclined) as declined:
        await client.authorize(amount, "tok_chargeDeclined", "order-z:authorize")
    assert declined.value.decline_code == "card_declined"
    with pytest.raises(PaymentTimeout):
        await client.authorize(amount, "tok_timeout", "order-t:authorize")  # the gateway hangs
