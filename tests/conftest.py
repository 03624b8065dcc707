"""Fixtures shared by every test layer: real backing servers and test tokens."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.devmesh.tls import MeshTls
from tests.support.servers import Backends, started_backends, started_etcd
from tests.support.tls import issue_test_ca, tls_environment
from tests.support.tokens import TestTokens


@pytest.fixture(scope="session", autouse=True)
def mesh_tls() -> Iterator[MeshTls]:
    """The tests' CA and certificates; every service's settings serve mTLS with them.

    Set through the environment, as in production, so every settings object a test builds
    (and every service process a test starts) is TLS unless it asks for plaintext.
    """
    folder = Path(tempfile.mkdtemp(prefix="marketplace-test-tls-"))
    tls = issue_test_ca(folder)
    with pytest.MonkeyPatch.context() as patch:
        for key, value in tls_environment(tls).items():
            patch.setenv(key, value)
        yield tls


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
