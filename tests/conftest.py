"""Fixtures shared by every test layer: real backing servers and test tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import Backends, started_backends
from tests.support.tokens import TestTokens


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    """PostgreSQL, Redis and the MongoDB wire server, started once per test run."""
    with started_backends() as started:
        yield started


@pytest.fixture(scope="session")
def tokens() -> TestTokens:
    """A token minter whose keys the in-process services trust."""
    return TestTokens()
