"""Order journeys over REST through the real Envoy edge, from placing an order to its refund."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from services.devmesh.mesh import Mesh
from tests.support.edge import (
    DEMO_PASSWORD,
    Account,
    create_product,
    login,
    mail_token,
    place_order,
    stock_of,
)

# The password the `buyer` fixture registers with.
PASSWORD = "correct-horse-battery"


def watch_in_background(
    edge: httpx.Client, order_id: str, account: Account
) -> tuple[threading.Thread, list[dict[str, Any]]]:
    """Read GET /v1/orders/{id}:watch line by line (one JSON object each) until it ends."""
    updates: list[dict[str, Any]] = []

    def read() -> None:
        with edge.stream("GET", f"/v1/orders/{order_id}:watch", headers=account.headers) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.strip():
                    updates.append(json.loads(line))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    return reader, updates


def wait_for(updates: list[dict[str, Any]], count: int) -> None:
    deadline = threading.Event()
    for _ in range(100):
        if len(updates) >= count:
            return
        deadline.wait(0.05)
    raise AssertionError(f"only {len(updates)} updates arrived: {updates}")


def eventually(check: Callable[[], bool], *, seconds: float = 5.0) -> bool:
    """Whether `check` holds within `seconds`: events reach other services asynchronously."""
    give_up = time.monotonic() + seconds
    while not check():
        if time.monotonic() > give_up:
            return False
        time.sleep(0.1)
    return True


def verified(mesh: Mesh, edge: httpx.Client, account: Account) -> Account:
    """`account` after following the link of its verification mail, signed in again.

    Reviews need a verified email, and the claim is in the access token, so the buyer
    signs in again after verifying. The mail arrives through the user service's outbox.
    """
    token = mail_token(mesh, account.email, "verify_email")
    confirmed = edge.post("/v1/auth/email:verify", json={"token": token})
    assert confirmed.status_code == 200, confirmed.text
    return login(edge, account.email, PASSWORD)


def test_place_watch_ship_deliver_review_and_refund_but_never_past_the_capture(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    buyer = verified(mesh, edge, buyer)
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    product = create_product(edge, seller, stock=3, price=25)
    placed = place_order(edge, buyer, product["productId"])
    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "ORDER_STATUS_PAID"
    order_id = order["orderId"]

    reader, updates = watch_in_background(edge, order_id, buyer)
    wait_for(updates, 1)  # the order as it is now, before anything changes
    shipped = edge.post(
        f"/v1/orders/{order_id}:ship",
        headers=seller.headers,
        json={"carrier": "DHL", "trackingNumber": f"JD{uuid.uuid4().hex[:10]}"},
    )
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["status"] == "ORDER_STATUS_SHIPPED"
    not_admin = edge.post(f"/v1/orders/{order_id}:deliver", headers=buyer.headers, json={})
    assert not_admin.status_code == 403
    delivered = edge.post(f"/v1/orders/{order_id}:deliver", headers=admin.headers, json={})
    assert delivered.status_code == 200, delivered.text
    reader.join(timeout=15)
    assert not reader.is_alive(), "the stream did not end at the final status"
    statuses = [u["status"] for u in updates]
    assert statuses[0] == "ORDER_STATUS_PAID"
    assert "ORDER_STATUS_SHIPPED" in statuses
    assert statuses[-1] == "ORDER_STATUS_DELIVERED"

    timeline = edge.get(f"/v1/orders/{order_id}", headers=buyer.headers).json()["statusHistory"]
    assert [c["toStatus"] for c in timeline][-1] == "ORDER_STATUS_DELIVERED"

    # The buyer reviews what arrived. The product service learns of the delivery from the
    # DELIVERED order event, so the review shows as a verified purchase once that is consumed
    # (at once if it was before the review was written, else when the event flags it).
    reviews_url = f"/v1/products/{product['productId']}/reviews"
    written = edge.post(
        reviews_url,
        headers=buyer.headers,
        json={"rating": 5, "title": "Arrived intact", "body": "Bright and steady."},
    )
    assert written.status_code == 200, written.text
    review_id = written.json()["reviewId"]

    def shown_as_verified() -> bool:
        listed = edge.get(reviews_url).json()["reviews"]
        return [(r["reviewId"], r.get("verifiedPurchase", False)) for r in listed] == [
            (review_id, True)
        ]

    assert eventually(shown_as_verified), edge.get(reviews_url).text

    def refund(units: int, key: str) -> httpx.Response:
        return edge.post(
            f"/v1/orders/{order_id}:refund",
            headers={**admin.headers, "Idempotency-Key": key},
            json={"amount": {"currencyCode": "USD", "units": units}, "reason": "damaged box"},
        )

    partial = refund(5, "refund-1")
    assert partial.status_code == 200, partial.text
    assert partial.json()["status"] == "ORDER_STATUS_PARTIALLY_REFUNDED"
    replayed = refund(5, "refund-1")  # the same key replays; it does not refund again
    assert replayed.json()["status"] == "ORDER_STATUS_PARTIALLY_REFUNDED"
    too_much = refund(21, "refund-2")  # 5 + 21 > the 25 captured
    assert too_much.status_code == 400, too_much.text
    rest = refund(20, "refund-3")  # exactly what is left: only one 5 was refunded
    assert rest.status_code == 200, rest.text
    assert rest.json()["status"] == "ORDER_STATUS_REFUNDED"
    assert refund(1, "refund-4").status_code == 400  # nothing is left
    after = edge.get(f"/v1/orders/{order_id}", headers=admin.headers).json()
    assert after["status"] == "ORDER_STATUS_REFUNDED"


def test_the_buyer_cancels_before_shipment_and_is_refunded(
    edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=2)
    placed = place_order(edge, buyer, product["productId"])
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    assert stock_of(edge, product["productId"]) == 1

    cancelled = edge.post(
        f"/v1/orders/{order_id}:cancel", headers=buyer.headers, json={"reason": "changed my mind"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "ORDER_STATUS_CANCELLED"
    assert cancelled.json()["payment"]["status"] == "PAYMENT_STATUS_REFUNDED"
    # The sale was committed, so its unit returns to stock when the product service
    # consumes the cancellation event (restock_required) from the order event stream.
    assert eventually(lambda: stock_of(edge, product["productId"]) == 2), (
        f"the cancelled unit did not return: stock is {stock_of(edge, product['productId'])}"
    )
    again = edge.post(f"/v1/orders/{order_id}:cancel", headers=buyer.headers, json={})
    assert again.status_code == 400  # cancelled is final
