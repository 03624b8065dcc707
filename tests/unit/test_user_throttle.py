"""The sign-in throttle's slowdown policy."""

from __future__ import annotations

import pytest

from services.user.service_layer.throttling import DEFAULT_THROTTLE


@pytest.mark.parametrize("failures", [0, 1, 2, 3, 6, 7, 8, 12, 40])
def test_the_delay_doubles_towards_the_block_and_is_capped(failures: int) -> None:
    policy = DEFAULT_THROTTLE  # slowed from the 3rd of 10 failures, 200 ms doubling
    delay = policy.delay_after(failures, policy.account_max_failures).total_seconds()
    expected = 0.0 if failures < 3 else min(3.0, 0.2 * 2 ** (failures - 3))
    assert delay == pytest.approx(expected)
    # A client is slowed the same distance before its own, higher block.
    client = policy.delay_after(failures + 40, policy.client_max_failures).total_seconds()
    assert client == pytest.approx(expected)
