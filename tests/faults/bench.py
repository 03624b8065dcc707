"""The supervised mesh the fault cases strike, and how a case settles and records its figures."""

from __future__ import annotations

import contextlib
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from services.devmesh.edge import EdgeSettings
from services.devmesh.mesh import Mesh, MeshOptions, http_status
from services.devmesh.processes import free_port
from tests.faults.harness import (
    DEMO_PASSWORD,
    GatewayTap,
    Load,
    create_product,
    ensure_category,
    login,
    new_buyer,
)
from tests.faults.invariants import World, gateway_charges, replay_violations, settled_violations

# Reservations must be gone a minute after the last checkout ended; a little slack for the
# sweep interval.
SETTLE_SECONDS = 80.0


@dataclass(frozen=True)
class Result:
    """One row of the summary table."""

    fault: str
    attempted: int
    succeeded: int
    retried: int
    settled_seconds: float | None
    invariants_ok: bool


RESULTS: list[Result] = []


class MeshHolder:
    """One supervised mesh for the whole suite, rebuilt when a case left it broken."""

    def __init__(self, *, replicas: int = 1) -> None:
        self.replicas = replicas
        self.mesh: Mesh | None = None
        self.tap: GatewayTap | None = None

    def healthy(self) -> tuple[Mesh, GatewayTap]:
        """The mesh with every process running and the edge healthy, rebuilding if needed."""
        if self.mesh is not None and self.tap is not None:
            mesh, deadline = self.mesh, time.monotonic() + 90
            while time.monotonic() < deadline:
                running = all(p.state == "running" for p in mesh.processes().values())
                if running and http_status(f"{mesh.edge_url}/healthz") == 200:
                    return mesh, self.tap
                time.sleep(0.5)
            self.close()  # a case broke it for good: the next case gets a fresh one
        self._start()
        assert self.mesh is not None and self.tap is not None
        return self.mesh, self.tap

    def _start(self) -> None:
        state_dir = Path(tempfile.mkdtemp(prefix="marketplace-faults-"))
        state_dir.chmod(0o755)
        tap_port = free_port()
        mesh = Mesh(
            MeshOptions(
                state_dir=state_dir,
                edge_port=free_port(),
                demo_password=DEMO_PASSWORD,
                seed_demo_data=False,
                supervise=True,
                replicas=self.replicas,
                # The readers and buyers all come from one address (and the readers as one
                # user) as fast as the mesh answers: on a quiet machine that passes the
                # edge's per-client limits, and a 429 says nothing about the faults studied.
                rate_limit_burst=UNLIMITED,
                rate_limit_per_second=UNLIMITED,
                edge=EdgeSettings(
                    client_rate_limit_burst=UNLIMITED,
                    client_rate_limit_per_second=UNLIMITED,
                    user_rate_limit_burst=UNLIMITED,
                    user_rate_limit_per_second=UNLIMITED,
                ),
                # The order service reaches the gateway through the tap, to time stalls.
                extra_env={"order": {"PAYMENT_GATEWAY_URL": f"http://127.0.0.1:{tap_port}"}},
            )
        )
        self.tap = GatewayTap(tap_port, lambda: _host_port(mesh.payment_gateway_url))
        with contextlib.ExitStack() as undo:
            undo.callback(mesh.stop)
            mesh.start()
            with httpx.Client(base_url=mesh.edge_url, timeout=30) as edge:
                ensure_category(edge, login(edge, "admin@example.com", DEMO_PASSWORD))
            undo.pop_all()
        self.mesh = mesh

    def close(self) -> None:
        """Stop the mesh and the tap."""
        if self.mesh is not None:
            self.mesh.stop()
            self.mesh = None
        if self.tap is not None:
            self.tap.close()
            self.tap = None


# Far above what one test client can send: the edge's rate limits stay out of the studies.
UNLIMITED = 100_000


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


class Bench:
    """What a fault case works with: the healthy mesh, its tap, and set-up and settling."""

    def __init__(self, mesh: Mesh, tap: GatewayTap) -> None:
        self.mesh = mesh
        self.tap = tap

    def edge(self) -> httpx.Client:
        """A REST client of the edge."""
        return httpx.Client(base_url=self.mesh.edge_url, timeout=30)

    def world(self, *, products: int = 2, stock: int = 8, buyers: int = 4) -> World:
        """Fresh products and buyers for one case, and the gateway's charges before it."""
        with self.edge() as edge:
            seller = login(edge, "seller@example.com", DEMO_PASSWORD)
            stocked = {create_product(edge, seller, stock): stock for _ in range(products)}
            accounts = [new_buyer(edge) for _ in range(buyers)]
        world = World(
            edge_url=self.mesh.edge_url,
            gateway_url=self.mesh.payment_gateway_url,
            gateway_key=self.mesh.payment_gateway_api_key,
            seller=seller,
            buyers=accounts,
            stock=stocked,
        )
        world.charges_before = {c["authorization_id"] for c in gateway_charges(world)}
        return world

    def load(self, world: World, *, per_client: int = 5) -> Load:
        """Bounded checkout load by the world's buyers, recorded in the world."""
        load = Load(self.mesh.edge_url, world.buyers, list(world.stock), per_client=per_client)
        world.checkouts += load.checkouts
        return load

    def settle(self, world: World, fault: str, *, since: float) -> None:
        """Wait until every invariant holds (bounded), record the figures, fail on violations."""
        deadline = since + SETTLE_SECONDS
        settled: float | None = None
        problems: list[str] = []
        while True:
            try:
                problems = settled_violations(world)
            except httpx.HTTPError as error:
                problems = [f"cannot read the state yet: {error!r}"]
            if not problems:
                settled = time.monotonic() - since
                break
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        for checkout in world.checkouts:
            if 500 in checkout.answers:
                problems.append(f"checkout {checkout.key} was answered HTTP 500 (not UNAVAILABLE)")
        problems += world.violations
        if settled is not None:
            problems += replay_violations(world)
        RESULTS.append(
            Result(
                fault=fault,
                attempted=len(world.checkouts),
                succeeded=sum(c.order_id is not None for c in world.checkouts),
                retried=sum(c.retried for c in world.checkouts),
                settled_seconds=settled,
                invariants_ok=not problems,
            )
        )
        assert not problems, f"{fault}: {len(problems)} violations\n" + "\n".join(problems)


def new_key() -> str:
    """A fresh Idempotency-Key."""
    return uuid.uuid4().hex


def summary_table() -> str:
    """The figures of every case that ran, as a Markdown table."""
    lines = [
        "| fault | checkouts | 2xx | retried | settled in s | invariants |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for r in RESULTS:
        settled = f"{r.settled_seconds:.1f}" if r.settled_seconds is not None else "-"
        verdict = "ok" if r.invariants_ok else "VIOLATED"
        lines.append(
            f"| {r.fault} | {r.attempted} | {r.succeeded} | {r.retried} | {settled} | {verdict} |"
        )
    return "\n".join(lines)
