"""Fixtures shared by every test layer: real backing servers and test tokens."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.servers import Backends, started_backends, started_etcd
from tests.support.tokens import TestTokens


@pytest.fixture(scope="session")
def backends() -> Iterator[Backends]:
    """PostgreSQL, Redis and the MongoDB wire server, started once per test run."""
    with started_backends() as started:
        yield started


@pytest.fixture(scope="session")
def etcd_url() -> Iterator[str]:
    """A real etcd, the service registry, started once per test run."""
    with started_etcd() as url:
        yield url


@pytest.fixture(scope="session")
def tokens() -> TestTokens:
    """A token minter whose keys the in-process services trust."""
    return TestTokens()
