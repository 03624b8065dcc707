"""Many simultaneous cancels or refunds of one order: one proceeds, others answer, nobody waits."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest

from tests.faults.bench import Bench
from tests.faults.harness import Account, Checkout, run_checkout
from tests.faults.invariants import World

pytestmark = pytest.mark.faults

# How long one answer may take before it counts as "never answered": far below Envoy's
# 60 s route timeout, which is where a frozen order service shows.
ANSWER_SECONDS = 20.0


def _paid_order(bench: Bench, world: World, buyer: Account) -> str:
    checkout = Checkout(uuid.uuid4().hex, buyer, next(iter(world.stock)))
    world.checkouts.append(checkout)
    with bench.edge() as edge:
        run_checkout(edge, checkout, budget=30)
    assert checkout.order_id is not None, checkout.answers
    return checkout.order_id


def _concurrently(
    bench: Bench, world: World, count: int, path: str, account: Account, body: dict[str, str]
) -> float:
    """`count` simultaneous POSTs of `path`, while another buyer checks out; returns the end."""
    answers: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(count)

    def send() -> None:
        headers = {**account.headers, "Idempotency-Key": uuid.uuid4().hex}
        with httpx.Client(base_url=bench.mesh.edge_url, timeout=ANSWER_SECONDS) as edge:
            # A connection to the edge first, so the changes arrive together, not one
            # connection set-up apart.
            edge.get("/healthz")
            barrier.wait()
            try:
                status = edge.post(path, headers=headers, json=body).status_code
            except httpx.TransportError:
                status = 0
        with lock:
            answers.append(status)

    threads = [threading.Thread(target=send, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    # Another buyer meanwhile: their checkout must not wait on this order's lock.
    other = Checkout(uuid.uuid4().hex, world.buyers[1], next(iter(world.stock)))
    world.checkouts.append(other)
    with httpx.Client(base_url=bench.mesh.edge_url, timeout=ANSWER_SECONDS) as edge:
        run_checkout(edge, other, budget=ANSWER_SECONDS)
    for thread in threads:
        thread.join(ANSWER_SECONDS + 10)
    ended = time.monotonic()
    if answers.count(200) != 1:
        world.violations.append(f"{answers.count(200)} of {count} changes proceeded: {answers}")
    unanswered = count - len(answers) + answers.count(0)
    if unanswered:
        world.violations.append(f"{unanswered} of {count} changes got no answer: {answers}")
    refused = [a for a in answers if a not in (0, 200, 400, 409)]
    if refused:
        world.violations.append(
            f"changes answered neither ABORTED nor FAILED_PRECONDITION: {answers}"
        )
    if other.order_id is None:
        world.violations.append(f"another buyer's checkout was held up: {other.answers}")
    return ended


def test_twelve_concurrent_cancels_of_one_order(bench: Bench) -> None:
    world = bench.world(products=1, buyers=2)
    buyer = world.buyers[0]
    order_id = _paid_order(bench, world, buyer)
    world.changed[order_id] = {"ORDER_STATUS_CANCELLED"}
    ended = _concurrently(
        bench, world, 12, f"/v1/orders/{order_id}:cancel", buyer, {"reason": "changed my mind"}
    )
    bench.settle(world, "12 concurrent cancels of one order", since=ended)


def test_ten_concurrent_refunds_of_one_order(bench: Bench) -> None:
    world = bench.world(products=1, buyers=2)
    order_id = _paid_order(bench, world, world.buyers[0])
    world.changed[order_id] = {"ORDER_STATUS_REFUNDED"}
    ended = _concurrently(
        bench, world, 10, f"/v1/orders/{order_id}:refund", world.seller, {"reason": "damaged"}
    )
    bench.settle(world, "10 concurrent refunds of one order", since=ended)
