"""Kill, stop and stall the mesh's real processes under checkout load; the invariants hold."""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
import time

import pytest
import redis

from tests.faults.bench import Bench
from tests.faults.harness import STALL_SECONDS, stalled, wait_running

pytestmark = pytest.mark.faults

KILLS = [
    pytest.param("user", signal.SIGKILL, marks=pytest.mark.faults_ci, id="SIGKILL-user"),
    pytest.param("user", signal.SIGTERM, marks=pytest.mark.faults_ci, id="SIGTERM-user"),
    pytest.param("product", signal.SIGKILL, id="SIGKILL-product"),
    pytest.param("product", signal.SIGTERM, id="SIGTERM-product"),
    pytest.param("order", signal.SIGKILL, id="SIGKILL-order"),
    pytest.param("order", signal.SIGTERM, id="SIGTERM-order"),
    pytest.param("payment-gateway", signal.SIGKILL, id="SIGKILL-gateway"),
    pytest.param("payment-gateway", signal.SIGTERM, id="SIGTERM-gateway"),
]


@pytest.mark.parametrize(("name", "sig"), KILLS)
def test_process_killed_mid_checkout_is_restarted_and_nothing_is_lost(
    bench: Bench, name: str, sig: signal.Signals
) -> None:
    world = bench.world()
    process = bench.mesh.process(name)
    old_pid = process.pid
    if name == "order":
        # Struck while a saga is in flight (its capture on the way to the gateway), so a
        # checkout is caught between authorise and capture, not between two checkouts.
        def strike() -> None:
            process.signal(sig)
            bench.tap.release()

        bench.tap.arm(b"/capture HTTP", strike)
    load = bench.load(world).start()
    if name == "order":
        assert bench.tap.matched.wait(60), "no capture passed the tap"
    else:
        load.wait_finished(3)
        process.signal(sig)
    try:
        wait_running(process, old_pid)
        assert_listed_in_mesh_json(bench, name)
    except AssertionError as failure:
        world.violations.append(str(failure))  # settle still measures what it left behind
    load.join()
    bench.settle(world, f"{sig.name} {name}", since=load.ended)


def assert_listed_in_mesh_json(bench: Bench, name: str) -> None:
    """mesh.json names the restarted process with its new pid and its restart count."""
    process = bench.mesh.process(name)
    wanted = {"pid": process.pid, "restarts": process.restarts, "state": "running"}
    deadline = time.monotonic() + 10
    while True:
        listed = json.loads((bench.mesh.state_dir / "mesh.json").read_text())["processes"][name]
        if {key: listed[key] for key in wanted} == wanted or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert {key: listed[key] for key in wanted} == wanted
    assert listed["ports"] == process.ports
    assert listed["log"] == str(process.log_path)


STALLS = [
    pytest.param(b"POST /v1/authorizations HTTP", "authorise", id="authorise"),
    pytest.param(b"/capture HTTP", "capture", id="capture"),
]


@pytest.mark.parametrize(("marker", "step"), STALLS)
def test_gateway_stall_mid_payment_takes_no_money_without_a_paid_order(
    bench: Bench, marker: bytes, step: str
) -> None:
    world = bench.world()
    gateway = bench.mesh.process("payment-gateway")
    pid = gateway.pid
    assert pid is not None
    resumed = threading.Event()

    def resume() -> None:
        os.kill(pid, signal.SIGCONT)
        bench.tap.release()
        resumed.set()

    # The gateway stops once it has done the call and before its answer is out, and
    # resumes past the order service's payment timeout: the outcome is unknown to the
    # order service, while the gateway holds the authorisation or the capture.
    timer = threading.Timer(STALL_SECONDS, resume)

    def stall() -> None:
        os.kill(pid, signal.SIGSTOP)
        timer.start()

    bench.tap.arm(marker, stall)
    load = bench.load(world).start()
    try:
        assert bench.tap.matched.wait(60), "no payment call passed the tap"
        assert resumed.wait(STALL_SECONDS + 10)
        load.join()
    finally:
        timer.cancel()
        os.kill(pid, signal.SIGCONT)
        bench.tap.release()
    bench.settle(world, f"gateway stall (SIGSTOP) during {step}", since=load.ended)


def test_postgres_immediate_shutdown_mid_checkout(bench: Bench) -> None:
    world = bench.world()
    load = bench.load(world).start()
    load.wait_finished(3)
    postgres = bench.mesh.process("postgres")
    old_pid = postgres.pid
    postgres.signal(signal.SIGQUIT)  # what `pg_ctl stop -m immediate` sends: no checkpoint
    wait_running(postgres, old_pid)
    load.join()
    bench.settle(world, "PostgreSQL immediate shutdown", since=load.ended)


def test_postgres_stalled_mid_checkout(bench: Bench) -> None:
    world = bench.world()
    load = bench.load(world).start()
    load.wait_finished(3)
    # The postmaster and every backend: the database answers nothing for a while.
    with stalled(bench.mesh.process("postgres"), group=True):
        time.sleep(STALL_SECONDS)
    load.join()
    bench.settle(world, "PostgreSQL SIGSTOP", since=load.ended)


def test_redis_killed_with_data_loss_loses_no_order_event(bench: Bench) -> None:
    world = bench.world(buyers=2)
    first = bench.load(world, per_client=3).start()
    first.join()
    paid = [c for c in world.checkouts if c.order_id is not None][:2]
    assert paid, "no order was paid before the fault"
    stream = redis.Redis.from_url(bench.mesh.redis_url)
    events = "marketplace.order.events.v1"

    def length() -> int:
        return int(stream.xlen(events))  # type: ignore[arg-type]  # sync client, not awaitable

    product = bench.mesh.process("product")
    try:
        # The product service reads nothing while the cancellations sit in Redis only.
        with stalled(product):
            published = length()
            with bench.edge() as edge:
                for checkout in paid:
                    assert checkout.order_id is not None
                    response = edge.post(
                        f"/v1/orders/{checkout.order_id}:cancel",
                        headers=checkout.buyer.headers,
                        json={"reason": "fault suite"},
                    )
                    assert response.status_code == 200, response.text
                    world.changed[checkout.order_id] = {"ORDER_STATUS_CANCELLED"}
            deadline = time.monotonic() + 15
            while length() < published + len(paid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert length() >= published + len(paid), "the relay published nothing"
            assert bench.mesh.supervisor is not None
            with bench.mesh.supervisor.held("redis") as server:
                old_pid = server.pid
                server.signal(signal.SIGKILL)
                assert server.process is not None
                server.process.wait(10)
                data = bench.mesh.state_dir / "redis"
                shutil.rmtree(data)
                data.mkdir()
            wait_running(server, old_pid)
    finally:
        stream.close()
    second = bench.load(world, per_client=2).start()
    second.join()
    bench.settle(world, "Redis SIGKILL + data loss", since=second.ended)
