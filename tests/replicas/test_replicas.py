"""Two replicas of every service under REST and gRPC load through the edge: no read fails.

Each case strikes real processes (SIGKILL, SIGSTOP, a rolling restart, one more replica)
while readers go through the edge and buyers check out with Idempotency-Keys; the checkout
invariants of the fault suite (one order per key, stock and money balanced) must hold.
"""

from __future__ import annotations

import signal
import time

import pytest

from services.devmesh.mesh import SERVICE_START_SECONDS
from tests.faults.bench import Bench
from tests.faults.harness import stalled, wait_running
from tests.faults.invariants import World
from tests.replicas.load import ReadLoad, calls_served, host_flags, wait_registered

pytestmark = pytest.mark.faults

SERVICES = ("user", "product", "order")
FIGURES: dict[str, object] = {}


def start_reads(bench: Bench, world: World) -> ReadLoad:
    buyer = world.buyers[0]
    product_id = next(iter(world.stock))
    mesh = bench.mesh
    return ReadLoad(mesh.edge_url, f"127.0.0.1:{mesh.options.edge_port}", buyer, product_id).start()


def assert_no_failed_read(reads: ReadLoad, case: str) -> None:
    print(
        f"{case}: {reads.reads} reads, {len(reads.failures)} failed, slowest {reads.slowest:.2f}s"
    )
    FIGURES[case] = (reads.reads, len(reads.failures), round(reads.slowest, 2))
    assert reads.reads >= 20, "the readers barely ran"
    assert not reads.failures, "\n".join(reads.failures[:20])


def test_sigkill_one_replica_of_each_service_in_turn_fails_no_read(bench: Bench) -> None:
    world = bench.world(products=2, stock=30, buyers=3)
    reads = start_reads(bench, world)
    load = bench.load(world, per_client=4).start()
    try:
        for service in SERVICES:
            endpoint = bench.mesh.replicas[service][1]
            process = endpoint.process
            assert process is not None
            old_pid = process.pid
            process.signal(signal.SIGKILL)
            wait_running(process, old_pid, timeout=SERVICE_START_SECONDS)
            wait_registered(bench.mesh, service, 2)
            time.sleep(1.0)
    finally:
        reads.stop()
        load.join()
    # The checkout invariants first, so their figures are recorded whatever the reads did.
    bench.settle(world, "SIGKILL a replica of each service", since=load.ended)
    assert_no_failed_read(reads, "SIGKILL one replica of each")


def test_a_stalled_replica_is_ejected_within_seconds_and_reads_keep_succeeding(
    bench: Bench,
) -> None:
    world = bench.world(products=1, stock=5, buyers=1)
    reads = start_reads(bench, world)
    endpoint = bench.mesh.replicas["product"][1]
    assert endpoint.process is not None
    try:
        time.sleep(1.0)
        with stalled(endpoint.process):
            stopped = time.monotonic()
            while host_flags(bench.mesh, "product", endpoint.grpc_port) == "healthy":
                assert time.monotonic() - stopped < 10, "the stalled replica was never ejected"
                time.sleep(0.1)
            ejected = time.monotonic() - stopped
            FIGURES["SIGSTOP ejected after s"] = round(ejected, 2)
            print(f"stalled product replica ejected after {ejected:.2f}s")
            time.sleep(4.0)  # reads go on against the other replica meanwhile
    finally:
        reads.stop()
    assert ejected < 5.0
    assert_no_failed_read(reads, "SIGSTOP a product replica")


def test_a_rolling_restart_of_every_replica_fails_no_request(bench: Bench) -> None:
    world = bench.world(products=2, stock=30, buyers=3)
    reads = start_reads(bench, world)
    load = bench.load(world, per_client=4).start()
    try:
        for service in SERVICES:
            for endpoint in bench.mesh.replicas[service]:
                bench.mesh.restart_replica(endpoint)
                wait_registered(bench.mesh, service, 2)
    finally:
        reads.stop()
        load.join()
    bench.settle(world, "rolling restart of every replica", since=load.ended)
    assert_no_failed_read(reads, "rolling restart")
    retried = [c.key for c in world.checkouts if c.retried or c.order_id is None]
    assert not retried, f"checkouts that failed at first: {retried}"


def test_a_replica_added_under_load_receives_calls_within_5_seconds(bench: Bench) -> None:
    world = bench.world(products=1, stock=5, buyers=1)
    reads = start_reads(bench, world)
    try:
        time.sleep(1.0)
        added = {service: bench.mesh.add_replica(service) for service in SERVICES}
        serving = time.monotonic()
        waited: dict[str, float] = {}
        while len(waited) < len(added):
            for service, endpoint in added.items():
                if service not in waited and calls_served(endpoint) > 0:
                    waited[service] = time.monotonic() - serving
            assert time.monotonic() - serving < 5.0, f"no calls yet: {set(added) - set(waited)}"
            time.sleep(0.1)
        FIGURES["added replica first call after s"] = {s: round(w, 2) for s, w in waited.items()}
        print(f"added replicas got their first calls after {waited}")
    finally:
        reads.stop()
    assert_no_failed_read(reads, "replica added")
