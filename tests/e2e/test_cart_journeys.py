"""The cart over REST through the real Envoy edge: fill it, check it out, and fail safely."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.edge import Account, create_product, stock_of

ADDRESS = {
    "recipientName": "Ada Buyer",
    "line1": "1 Main Street",
    "city": "Springfield",
    "postalCode": "12345",
    "countryCode": "US",
}


def checkout(
    edge: httpx.Client, buyer: Account, key: str | None, *, token: str = "tok_visa"
) -> httpx.Response:
    headers = dict(buyer.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return edge.post(
        "/v1/cart:checkout",
        headers=headers,
        json={"shippingAddress": ADDRESS, "paymentMethodToken": token},
    )


def reason(response: httpx.Response) -> str:
    """The ErrorInfo reason of an error answer."""
    return str(next(d["reason"] for d in response.json()["details"] if "reason" in d))


def usd(money: dict[str, Any]) -> tuple[str, int, int]:
    return money["currencyCode"], int(money["units"]), int(money.get("nanos", 0))


def lines(cart: dict[str, Any]) -> list[tuple[str, int]]:
    return [(item["productId"], item["quantity"]) for item in cart.get("items", [])]


def test_a_cart_becomes_one_paid_order_and_a_declined_card_leaves_it_intact(
    edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    lamp = create_product(edge, seller, stock=5, price=25)["productId"]
    shade = create_product(edge, seller, stock=5, price=10)["productId"]
    spare = create_product(edge, seller, stock=5, price=3)["productId"]

    assert edge.get("/v1/cart").status_code == 401
    empty = edge.get("/v1/cart", headers=buyer.headers)
    assert empty.status_code == 200, empty.text
    assert lines(empty.json()) == [] and empty.json()["name"] == f"users/{buyer.user_id}/cart"

    for product_id, quantity in ((lamp, 1), (shade, 1), (spare, 1), (lamp, 1)):
        added = edge.post(
            "/v1/cart/items",
            headers=buyer.headers,
            json={"productId": product_id, "quantity": quantity},
        )
        assert added.status_code == 200, added.text
    changed = edge.patch(f"/v1/cart/items/{shade}", headers=buyer.headers, json={"quantity": 3})
    assert changed.status_code == 200, changed.text
    removed = edge.delete(f"/v1/cart/items/{spare}", headers=buyer.headers)
    assert removed.status_code == 200, removed.text
    missing = edge.delete(f"/v1/cart/items/{spare}", headers=buyer.headers)
    assert missing.status_code == 404
    assert reason(missing) == "CART_ITEM_NOT_FOUND"

    cart = edge.get("/v1/cart", headers=buyer.headers).json()
    assert lines(cart) == [(lamp, 2), (shade, 3)]
    assert usd(cart["subtotal"]) == ("USD", 80, 0)
    assert cart["readyForCheckout"] is True
    assert {item["availability"] for item in cart["items"]} == {"CART_ITEM_AVAILABILITY_AVAILABLE"}

    unkeyed = checkout(edge, buyer, None)
    assert unkeyed.status_code == 400, unkeyed.text

    declined = checkout(edge, buyer, uuid.uuid4().hex, token="tok_chargeDeclined")
    assert declined.status_code == 400, declined.text
    assert reason(declined) == "PAYMENT_DECLINED"
    assert edge.get("/v1/cart", headers=buyer.headers).json() == cart
    assert (stock_of(edge, lamp), stock_of(edge, shade)) == (5, 5)

    key = uuid.uuid4().hex
    placed = checkout(edge, buyer, key)
    assert placed.status_code == 200, placed.text
    order = placed.json()
    assert order["status"] == "ORDER_STATUS_PAID"
    assert sorted((i["productId"], int(i["quantity"])) for i in order["items"]) == sorted(
        [(lamp, 2), (shade, 3)]
    )
    assert usd(order["total"]) == ("USD", 80, 0)
    assert lines(edge.get("/v1/cart", headers=buyer.headers).json()) == []
    assert (stock_of(edge, lamp), stock_of(edge, shade)) == (3, 2)

    retried = checkout(edge, buyer, key)
    assert retried.status_code == 200, retried.text
    assert retried.json()["orderId"] == order["orderId"]
    fetched = edge.get(f"/v1/orders/{order['orderId']}", headers=buyer.headers)
    assert fetched.status_code == 200 and fetched.json()["buyerId"] == buyer.user_id
    emptied = checkout(edge, buyer, uuid.uuid4().hex)
    assert emptied.status_code == 400
    assert reason(emptied) == "CART_EMPTY"
