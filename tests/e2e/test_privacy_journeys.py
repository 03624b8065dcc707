"""Privacy through the edge: a data export from the three services, and account deletion."""

from __future__ import annotations

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
    new_seller,
    place_order,
)

PASSWORD = "correct-horse-battery"


def eventually[T](read: Callable[[], T], done: Callable[[T], bool], what: str) -> T:
    """`read()` once `done` holds of it; the events travel through outbox, stream, consumer."""
    deadline = time.monotonic() + 30
    while True:
        value = read()
        if done(value):
            return value
        assert time.monotonic() < deadline, f"{what}: {value}"
        time.sleep(0.25)


def fill_account(edge: httpx.Client, user: Account, seller: Account) -> dict[str, Any]:
    """Give the user data in every service: address, wishlist, order, cart, review, listing."""
    bought = create_product(edge, seller, stock=5, price=30)
    carted = create_product(edge, seller, stock=5, price=12)
    address = edge.post(
        "/v1/users/me/addresses",
        headers=user.headers,
        json={
            "recipientName": "Grace Hopper",
            "line1": "7 Navy Yard",
            "city": "Arlington",
            "postalCode": "22201",
            "countryCode": "US",
            "phoneNumber": "+17035550100",
        },
    )
    assert address.status_code == 200, address.text
    wished = edge.post(
        "/v1/users/me/wishlist", headers=user.headers, json={"productId": bought["productId"]}
    )
    assert wished.status_code == 200, wished.text
    placed = place_order(edge, user, bought["productId"])
    assert placed.status_code == 200, placed.text
    carted_item = edge.post(
        "/v1/cart/items",
        headers=user.headers,
        json={"productId": carted["productId"], "quantity": 2},
    )
    assert carted_item.status_code == 200, carted_item.text
    review = edge.post(
        f"/v1/products/{bought['productId']}/reviews",
        headers=user.headers,
        json={"rating": 5, "title": "By Grace", "body": "Grace Hopper loves it."},
    )
    assert review.status_code == 200, review.text
    listing = edge.post(
        "/v1/products",
        headers=user.headers,
        json={
            "product": {
                "title": f"Privacy Lamp {uuid.uuid4().hex[:8]}",
                "description": "A lamp its seller will delete with their account.",
                "category": "home-kitchen",
                "subcategory": "bedding",
                "listPrice": {"currencyCode": "USD", "units": 9},
                "initialStock": 1,
            },
            "publish": True,
        },
    )
    assert listing.status_code == 200, listing.text
    return {
        "bought": bought["productId"],
        "carted": carted["productId"],
        "order": placed.json(),
        "review": review.json()["reviewId"],
        "listing": listing.json()["productId"],
    }


def test_export_holds_the_data_of_all_three_services(
    mesh: Mesh, edge: httpx.Client, seller: Account
) -> None:
    user = new_seller(mesh, edge, password=PASSWORD)
    made = fill_account(edge, user, seller)

    response = edge.get("/v1/users/me:export", headers=user.headers)

    assert response.status_code == 200, response.text
    export = response.json()
    assert export["account"]["userId"] == user.user_id
    assert export["account"]["email"] == user.email
    assert [a["line1"] for a in export["addresses"]] == ["7 Navy Yard"]
    assert [w["productId"] for w in export["wishlistItems"]] == [made["bought"]]
    assert export["sessions"] and all("refreshToken" not in s for s in export["sessions"])
    assert "passwordHash" not in str(export)
    assert [r["reviewId"] for r in export["reviews"]] == [made["review"]]
    assert [p["productId"] for p in export["listings"]] == [made["listing"]]
    assert [o["orderId"] for o in export["orders"]] == [made["order"]["orderId"]]
    assert [(i["productId"], i["quantity"]) for i in export["cart"]["items"]] == [
        (made["carted"], 2)
    ]
    assert "returns" not in export or export["returns"] == []


def test_deletion_erases_the_account_across_the_three_services(
    mesh: Mesh, edge: httpx.Client, seller: Account
) -> None:
    user = new_seller(mesh, edge, password=PASSWORD)
    made = fill_account(edge, user, seller)
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    order_id = made["order"]["orderId"]

    refused = edge.request(
        "DELETE", "/v1/users/me", headers=user.headers, json={"currentPassword": "wrong-password!"}
    )
    assert refused.status_code == 400, refused.text
    deleted = edge.request(
        "DELETE", "/v1/users/me", headers=user.headers, json={"currentPassword": PASSWORD}
    )
    assert deleted.status_code == 200, deleted.text

    # The user service: no sign-in, no export, nothing to read.
    signed_in = edge.post("/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert signed_in.status_code == 401, signed_in.text
    exported = edge.get("/v1/users/me:export", headers=user.headers)
    assert exported.status_code == 404, exported.text

    # The product service: the review keeps its rating and loses its author and text.
    reviews_url = f"/v1/products/{made['bought']}/reviews"

    def review() -> dict[str, Any]:
        listed = edge.get(reviews_url).json().get("reviews", [])
        return next(r for r in listed if r["reviewId"] == made["review"])

    anonymous = eventually(
        review, lambda r: r.get("authorId", "") != user.user_id, "review still names its author"
    )
    assert anonymous["rating"] == 5
    assert "Grace" not in str(anonymous)
    assert edge.get(f"/v1/products/{made['bought']}").json()["rating"]["count"] == 1
    listing = eventually(
        lambda: edge.get(f"/v1/products/{made['listing']}", headers=admin.headers).json(),
        lambda p: p.get("state") == "PRODUCT_STATE_ARCHIVED",
        "listing not archived",
    )
    assert listing["productId"] == made["listing"]

    # The order service: the order and its money stay, the address keeps only its country.
    order = eventually(
        lambda: edge.get(f"/v1/orders/{order_id}", headers=admin.headers).json(),
        lambda o: not o["shippingAddress"].get("line1"),
        "order address not erased",
    )
    address = order["shippingAddress"]
    assert address["countryCode"] == "US"
    assert {k: v for k, v in address.items() if k != "countryCode" and v} == {}
    assert order["total"] == made["order"]["total"]
    assert [i["productId"] for i in order["items"]] == [made["bought"]]
