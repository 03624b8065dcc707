"""The sandbox card processor: test tokens, idempotency keys and timeouts."""

from __future__ import annotations

import asyncio

import pytest

from services.common.money import Money
from services.order.adapters.payments import (
    PaymentDeclined,
    PaymentError,
    PaymentTimeout,
    SandboxGateway,
)

AMOUNT = Money(2500, "USD")


def gateway(timeout: float = 1.0) -> SandboxGateway:
    return SandboxGateway(latency_seconds=0.001, timeout_seconds=timeout)


async def test_visa_authorizes_and_captures() -> None:
    sandbox = gateway()
    authorization = await sandbox.authorize(AMOUNT, "tok_visa", "k1")
    capture = await sandbox.capture(authorization.authorization_id, AMOUNT, "k2")
    assert capture.amount == AMOUNT
    assert sandbox.captured_total("USD") == AMOUNT
    assert len(sandbox.captured()) == 1


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("tok_chargeDeclined", "card_declined"),
        ("tok_insufficientFunds", "insufficient_funds"),
        ("tok_unknown", "invalid_token"),
    ],
)
async def test_declining_tokens(token: str, code: str) -> None:
    sandbox = gateway()
    with pytest.raises(PaymentDeclined) as declined:
        await sandbox.authorize(AMOUNT, token, "k1")
    assert declined.value.decline_code == code
    assert sandbox.charges == []


async def test_the_timeout_token_never_answers() -> None:
    sandbox = gateway(timeout=0.05)
    with pytest.raises(PaymentTimeout):
        await sandbox.authorize(AMOUNT, "tok_timeout", "k1")
    assert sandbox.charges == []


async def test_the_same_key_replays_the_first_result_even_concurrently() -> None:
    sandbox = gateway()
    results = await asyncio.gather(
        *(sandbox.authorize(AMOUNT, "tok_visa", "same-key") for _ in range(10))
    )
    assert len({r.authorization_id for r in results}) == 1
    assert len(sandbox.charges) == 1
    first = await sandbox.capture(results[0].authorization_id, AMOUNT, "cap")
    again = await sandbox.capture(results[0].authorization_id, AMOUNT, "cap")
    assert first == again
    assert sandbox.captured_total("USD") == AMOUNT


async def test_a_key_reused_for_another_request_is_refused() -> None:
    sandbox = gateway()
    await sandbox.authorize(AMOUNT, "tok_visa", "k1")
    with pytest.raises(PaymentError):
        await sandbox.authorize(Money(1, "USD"), "tok_visa", "k1")


async def test_void_and_refund() -> None:
    sandbox = gateway()
    held = await sandbox.authorize(AMOUNT, "tok_visa", "a1")
    await sandbox.void(held.authorization_id, "v1")
    with pytest.raises(PaymentError):
        await sandbox.capture(held.authorization_id, AMOUNT, "c1")
    charged = await sandbox.authorize(AMOUNT, "tok_visa", "a2")
    capture = await sandbox.capture(charged.authorization_id, AMOUNT, "c2")
    await sandbox.refund(capture.charge_id, Money(500, "USD"), "r1")
    assert sandbox.captured_total("USD") == Money(2000, "USD")
    with pytest.raises(PaymentError):
        await sandbox.refund(capture.charge_id, AMOUNT, "r2")
