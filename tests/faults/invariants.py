"""What must hold after any fault has settled: stock, money, orders and idempotency keys."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.faults.harness import ADDRESS, Account, Checkout, minor

# Orders whose units left the stock for good and whose money was taken (net of refunds).
SOLD = {
    "ORDER_STATUS_PAID",
    "ORDER_STATUS_FULFILLING",
    "ORDER_STATUS_SHIPPED",
    "ORDER_STATUS_DELIVERED",
    "ORDER_STATUS_REFUNDED",
    "ORDER_STATUS_PARTIALLY_REFUNDED",
}
PAID = {"ORDER_STATUS_PAID", "ORDER_STATUS_FULFILLING", "ORDER_STATUS_SHIPPED"}


@dataclass
class World:
    """What one fault case set up, and what the invariants compare against."""

    edge_url: str
    gateway_url: str
    gateway_key: str
    seller: Account
    buyers: list[Account]
    stock: dict[str, int]  # product id -> initial units
    charges_before: set[str] = field(default_factory=set)
    checkouts: list[Checkout] = field(default_factory=list)
    # Orders the case changed on purpose (cancelled, refunded): their allowed end states.
    changed: dict[str, set[str]] = field(default_factory=dict)
    # Answers that break a promise by themselves, collected while the case ran.
    violations: list[str] = field(default_factory=list)


def gateway_charges(world: World) -> list[dict[str, Any]]:
    """Every charge the sandbox gateway holds (GET /v1/charges, its operator API)."""
    response = httpx.get(
        f"{world.gateway_url}/v1/charges",
        headers={"Authorization": f"Bearer {world.gateway_key}"},
        timeout=10,
    )
    response.raise_for_status()
    charges: list[dict[str, Any]] = response.json()["charges"]
    return charges


def orders_of(edge: httpx.Client, buyer: Account) -> list[dict[str, Any]]:
    """Every order of `buyer`, through the edge."""
    found: list[dict[str, Any]] = []
    token = ""
    while True:
        params: dict[str, str | int] = {"pageSize": 100}
        if token:
            params["pageToken"] = token
        response = edge.get("/v1/orders", headers=buyer.headers, params=params)
        response.raise_for_status()
        body = response.json()
        found += body.get("orders", [])
        token = body.get("nextPageToken", "")
        if not token:
            return found


def settled_violations(world: World) -> list[str]:
    """Every invariant that does not hold right now (empty: settled and correct).

    Raises httpx errors while the edge or the gateway cannot answer yet.
    """
    problems: list[str] = []
    with httpx.Client(base_url=world.edge_url, timeout=10) as edge:
        orders = [o for buyer in world.buyers for o in orders_of(edge, buyer)]
        inventory = {}
        for product_id in world.stock:
            response = edge.get(
                f"/v1/products/{product_id}/inventory", headers=world.seller.headers
            )
            response.raise_for_status()
            inventory[product_id] = response.json()
    by_id = {o["orderId"]: o for o in orders}
    problems += _stock(world, orders, inventory)
    problems += _orders(world, orders, by_id)
    problems += _money(world, orders, gateway_charges(world))
    return problems


def _stock(
    world: World, orders: list[dict[str, Any]], inventory: dict[str, dict[str, Any]]
) -> list[str]:
    problems = []
    sold: Counter[str] = Counter()
    for order in orders:
        if order["status"] in SOLD:
            for item in order["items"]:
                sold[item["productId"]] += int(item["quantity"])
    for product_id, initial in world.stock.items():
        level = inventory[product_id]
        on_hand, reserved = int(level.get("onHand", 0)), int(level.get("reserved", 0))
        available = int(level.get("available", 0))
        if available + reserved + sold[product_id] != initial:
            problems.append(
                f"stock of {product_id}: initial {initial} != available {available} + "
                f"reserved {reserved} + sold {sold[product_id]} (on hand {on_hand})"
            )
        if reserved:
            problems.append(f"stock of {product_id}: {reserved} units still reserved")
    return problems


def _orders(
    world: World, orders: list[dict[str, Any]], by_id: dict[str, dict[str, Any]]
) -> list[str]:
    problems = []
    for order in orders:
        if order["status"] == "ORDER_STATUS_PENDING":
            problems.append(f"order {order['orderId']} is still pending")
    answered: dict[str, str] = {}
    for checkout in world.checkouts:
        if not checkout.final:
            problems.append(
                f"checkout {checkout.key} got no final answer (answers {checkout.answers})"
            )
        if checkout.order_id is None:
            continue
        if checkout.order_id in answered:
            problems.append(
                f"order {checkout.order_id} answered to keys {answered[checkout.order_id]} "
                f"and {checkout.key}"
            )
        answered[checkout.order_id] = checkout.key
        found = by_id.get(checkout.order_id)
        allowed = world.changed.get(checkout.order_id, PAID)
        if found is None:
            problems.append(f"order {checkout.order_id} answered 2xx does not exist")
        elif found["status"] not in allowed:
            problems.append(f"order {checkout.order_id} answered 2xx is {found['status']}")
    for order in orders:
        # Every sold order was answered to some key: no money taken behind a failure.
        unanswered = order["orderId"] not in answered and order["orderId"] not in world.changed
        if order["status"] in SOLD and unanswered:
            problems.append(
                f"order {order['orderId']} is {order['status']} but no key was answered with it"
            )
    return problems


def _money(world: World, orders: list[dict[str, Any]], charges: list[dict[str, Any]]) -> list[str]:
    problems = []
    by_reference = {o["payment"].get("gatewayReference", ""): o for o in orders if o.get("payment")}
    by_charge_id = {c["charge_id"]: c for c in charges if c.get("charge_id")}
    ours = {o["orderId"] for o in orders}
    for charge in charges:
        if charge["authorization_id"] in world.charges_before:
            continue
        if charge["status"] == "authorized":
            problems.append(f"authorisation {charge['authorization_id']} is still live")
        net = _net(charge)
        if net <= 0:
            continue
        owner = by_reference.get(charge["charge_id"]) or by_reference.get(
            charge["authorization_id"]
        )
        if owner is None or owner["orderId"] not in ours:
            problems.append(f"charge {charge['charge_id']} ({net} cents) belongs to no order")
        elif owner["status"] not in SOLD:
            problems.append(
                f"charge {charge['charge_id']} ({net} cents) on order {owner['orderId']} "
                f"which is {owner['status']}"
            )
    for order in orders:
        if order["status"] not in SOLD:
            continue
        payment = order.get("payment") or {}
        expected = minor(order.get("total")) - minor(payment.get("refundedAmount"))
        held = by_charge_id.get(payment.get("gatewayReference", ""))
        if held is None:
            problems.append(f"order {order['orderId']} is {order['status']}: gateway has no charge")
        elif _net(held) != expected:
            problems.append(
                f"order {order['orderId']}: gateway holds {_net(held)} cents, order says {expected}"
            )
    return problems


def _net(charge: dict[str, Any]) -> int:
    if charge["status"] != "captured":
        return 0
    return int(charge["amount_minor"]) - int(charge.get("refunded_minor", 0))


def replay_violations(world: World) -> list[str]:
    """Each key answered 2xx answers the same order again: one order per key."""
    problems = []
    with httpx.Client(base_url=world.edge_url, timeout=30) as edge:
        for checkout in world.checkouts:
            if checkout.order_id is None:
                continue
            response = edge.post(
                "/v1/orders",
                headers={**checkout.buyer.headers, "Idempotency-Key": checkout.key},
                json={
                    "items": [{"productId": checkout.product_id, "quantity": checkout.quantity}],
                    "shippingAddress": ADDRESS,
                    "paymentMethodToken": "tok_visa",
                },
            )
            if response.status_code != 200 or response.json()["orderId"] != checkout.order_id:
                problems.append(
                    f"key {checkout.key} replayed {response.status_code} "
                    f"{response.text[:200]} instead of order {checkout.order_id}"
                )
    return problems
