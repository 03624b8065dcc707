"""The running mesh, started once for the end-to-end tests: real Envoy, services and servers.

Fixtures only; the helpers the tests share are in tests/support/edge.py.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services.devmesh.mesh import Mesh, MeshOptions
from services.devmesh.processes import free_port
from tests.support.edge import DEMO_PASSWORD, PAYOUT_HOLD_SECONDS, Account, login, register


@pytest.fixture(scope="session")
def mesh() -> Iterator[Mesh]:
    """Everything `nox -s up` starts, on free ports, in dev mode with the demo data."""
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-e2e-"))
    state_dir.chmod(0o755)
    options = MeshOptions(
        state_dir=state_dir,
        edge_port=free_port(),
        demo_password=DEMO_PASSWORD,
        # Long enough that a shutdown test can catch an order in flight.
        payment_latency_ms=300,
        # Every call logged: the observability tests follow one request through the logs
        # (the mesh prefixes each key with the service name).
        extra_env={
            name: {
                "ACCESS_LOG_SAMPLE_EVERY": "1",
                # Sales settle for payouts within the payout journey's patience (the mesh
                # prefixes ORDER_).
                **({"PAYOUT_HOLD_SECONDS": str(PAYOUT_HOLD_SECONDS)} if name == "order" else {}),
            }
            for name in ("user", "product", "order")
        },
    )
    with Mesh(options) as running:
        yield running


@pytest.fixture(scope="session")
def edge(mesh: Mesh) -> Iterator[httpx.Client]:
    """An HTTP client for the REST edge."""
    with httpx.Client(base_url=mesh.edge_url, timeout=30) as client:
        yield client


@pytest.fixture()
def buyer(edge: httpx.Client) -> Account:
    """A freshly registered, signed-in buyer."""
    email, _ = register(edge)
    return login(edge, email, "correct-horse-battery")


@pytest.fixture(scope="session")
def seller(edge: httpx.Client) -> Account:
    """The demo seller."""
    return login(edge, "seller@example.com", DEMO_PASSWORD)
