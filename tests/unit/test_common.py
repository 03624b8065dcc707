"""The chassis' pure helpers: money, pagination and field violations."""

from __future__ import annotations

import asyncio

import pytest
from google.type import money_pb2

from services.common.errors import InvalidArgument, Violations
from services.common.money import Money
from services.common.notify import repeat_on_notify
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.proto_money import money_from_proto, money_to_proto
from services.common.workers import repeat


def test_money_round_trips_through_google_type_money() -> None:
    money = money_from_proto(
        money_pb2.Money(currency_code="EUR", units=12, nanos=340_000_000), "price"
    )
    assert money == Money(1234, "EUR")
    assert money_from_proto(money_to_proto(money), "price") == money
    assert money_to_proto(Money(-1234, "EUR")).nanos == -340_000_000


def test_money_refuses_fractions_of_a_cent_bad_currencies_and_negatives() -> None:
    with pytest.raises(InvalidArgument) as error:
        money_from_proto(money_pb2.Money(currency_code="usd", units=-1, nanos=1), "price")
    fields = {v.field for v in error.value.violations}
    assert fields == {"price.currency_code", "price.nanos", "price"}


def test_money_arithmetic_keeps_currencies_apart() -> None:
    assert Money(150, "USD").times(3) + Money(50, "USD") == Money(500, "USD")
    with pytest.raises(ValueError, match="cannot combine"):
        _ = Money(1, "USD") + Money(1, "EUR")


@pytest.mark.parametrize(("asked", "expected"), [(0, 20), (5, 5), (100, 100), (1000, 100)])
def test_page_size_defaults_and_clamps(asked: int, expected: int) -> None:
    assert clamp_page_size(asked, default=20, maximum=100) == expected


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as error:
        clamp_page_size(-1, default=20, maximum=100)
    assert error.value.violations[0].field == "page_size"


def test_page_tokens_are_opaque_round_trips_and_garbage_is_invalid() -> None:
    token = encode_page_token({"offset": 40, "f": "abc"})
    assert decode_page_token(token) == {"offset": 40, "f": "abc"}
    assert decode_page_token("") is None
    for garbage in ("!!!", "bm90IGpzb24", encode_page_token({"x": 1})[:-3] + "@@"):
        with pytest.raises(InvalidArgument):
            decode_page_token(garbage)


def test_violations_collect_every_field_before_raising() -> None:
    violations = Violations()
    violations.check(True, "ok", "never reported")
    violations.check(False, "email", "must be an email address")
    violations.add("password", "is too short")
    with pytest.raises(InvalidArgument) as error:
        violations.raise_if_any()
    assert [v.field for v in error.value.violations] == ["email", "password"]
    assert "email: must be an email address" in error.value.message


async def test_workers_survive_a_failed_pass_and_skip_the_wait_while_a_backlog_remains() -> None:
    results: list[int | Exception] = [RuntimeError("database away"), 5, 5, 1]
    scripted = iter(results)
    passes: list[float] = []

    async def run_once() -> int:
        passes.append(asyncio.get_running_loop().time())
        outcome = next(scripted)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome == 1:
            raise asyncio.CancelledError  # stop the endless loop after the last scripted pass
        return outcome

    with pytest.raises(asyncio.CancelledError):
        await repeat(
            run_once,
            interval_seconds=0.05,
            failure_event="test_pass_failed",
            again_at_once=lambda backlog: backlog >= 5,
        )
    assert len(passes) == 4
    assert passes[1] - passes[0] >= 0.04  # waited after the failure
    assert passes[3] - passes[1] < 0.04  # a full batch goes on at once


async def test_a_notify_worker_without_a_listen_url_only_polls_at_its_unlistening_pace() -> None:
    passes: list[float] = []
    asked: list[bool] = []

    async def run_once() -> int:
        passes.append(asyncio.get_running_loop().time())
        if len(passes) == 3:
            raise asyncio.CancelledError  # stop the endless loop after the third pass
        return 0

    def wait_seconds(listening: bool) -> float:
        asked.append(listening)
        return 60.0 if listening else 0.05

    # Bounded: a worker that tried to listen instead would hang on its connection attempts.
    with pytest.raises(asyncio.CancelledError):
        async with asyncio.timeout(10):
            await repeat_on_notify(
                run_once,
                listen_url=None,
                channel="unused",
                failure_event="test_pass_failed",
                wait_seconds=wait_seconds,
            )
    assert asked == [False]  # never tried to listen: the poll's pace, read once
    assert 0.04 <= passes[1] - passes[0] < 1
    assert 0.04 <= passes[2] - passes[1] < 1
