"""A return through the real Envoy edge over REST: asked, approved, received, refunded."""

from __future__ import annotations

import uuid

import httpx

from services.devmesh.mesh import Mesh
from tests.support.edge import DEMO_PASSWORD, Account, create_product, login, place_order


def reason(response: httpx.Response) -> str:
    """The ErrorInfo reason of an error answer."""
    return str(next(d["reason"] for d in response.json()["details"] if "reason" in d))


def test_a_delivered_item_goes_back_and_its_refund_reaches_the_order(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    product_id = create_product(edge, seller, stock=4, price=25)["productId"]
    placed = place_order(edge, buyer, product_id, quantity=2)
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    returns_url = f"/v1/orders/{order_id}/returns"
    # The body is the Return resource itself (AIP-133).
    body = {
        "items": [{"productId": product_id, "quantity": 1}],
        "reason": "The lamp arrived cracked.",
    }

    def ask(key: str) -> httpx.Response:
        return edge.post(returns_url, headers={**buyer.headers, "Idempotency-Key": key}, json=body)

    too_early = ask(uuid.uuid4().hex)
    assert too_early.status_code == 400, too_early.text  # FAILED_PRECONDITION
    assert reason(too_early) == "ORDER_NOT_DELIVERED"
    shipped = edge.post(
        f"/v1/orders/{order_id}:ship",
        headers=seller.headers,
        json={"carrier": "DHL", "trackingNumber": "RT-1"},
    )
    assert shipped.status_code == 200, shipped.text
    delivered = edge.post(f"/v1/orders/{order_id}:deliver", headers=admin.headers, json={})
    assert delivered.status_code == 200, delivered.text

    assert edge.post(returns_url, json=body).status_code == 401
    key = uuid.uuid4().hex
    created = ask(key)
    assert created.status_code == 200, created.text
    asked = created.json()
    assert asked["state"] == "RETURN_STATE_REQUESTED"
    assert asked["itemsTotal"]["units"] in (25, "25")
    assert ask(key).json()["returnId"] == asked["returnId"]  # the same key, the same return
    listed = edge.get(returns_url, headers=buyer.headers)
    assert listed.status_code == 200, listed.text
    assert [r["returnId"] for r in listed.json()["returns"]] == [asked["returnId"]]

    return_url = f"/v1/returns/{asked['returnId']}"
    assert edge.post(f"{return_url}:approve", headers=buyer.headers, json={}).status_code == 403
    approved = edge.post(
        f"{return_url}:approve", headers=seller.headers, json={"reason": "Send it back."}
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["state"] == "RETURN_STATE_APPROVED"
    received = edge.post(f"{return_url}:receive", headers=seller.headers, json={})
    assert received.status_code == 200, received.text
    done = received.json()
    assert done["state"] == "RETURN_STATE_REFUNDED"
    assert done["refundAmount"]["units"] in (25, "25")

    seen = edge.get(return_url, headers=buyer.headers)
    assert seen.status_code == 200 and seen.json()["state"] == "RETURN_STATE_REFUNDED"
    order = edge.get(f"/v1/orders/{order_id}", headers=buyer.headers).json()
    assert order["status"] == "ORDER_STATUS_PARTIALLY_REFUNDED"
    assert order["payment"]["refundedAmount"]["units"] in (25, "25")
    # Receiving again does not refund again.
    again = edge.post(f"{return_url}:receive", headers=seller.headers, json={})
    assert again.status_code == 200 and again.json()["state"] == "RETURN_STATE_REFUNDED"
    after = edge.get(f"/v1/orders/{order_id}", headers=admin.headers).json()
    assert after["payment"]["refundedAmount"]["units"] in (25, "25")
