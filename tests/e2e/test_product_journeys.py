"""Product journeys over REST through the real Envoy edge, against the whole running mesh."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from tests.support.edge import DEMO_PASSWORD, Account, create_product, login


def demo_buyer(edge: httpx.Client) -> Account:
    """The demo buyer: a verified account, so it may write reviews."""
    return login(edge, "buyer@example.com", DEMO_PASSWORD)


def cents(money: dict[str, Any]) -> int:
    return int(money.get("units", 0)) * 100 + int(money.get("nanos", 0)) // 10_000_000


def draft(edge: httpx.Client, seller: Account) -> dict[str, Any]:
    response = edge.post(
        "/v1/products",
        headers=seller.headers,
        json={
            "product": {
                "title": f"E2E Kettle {uuid.uuid4().hex[:8]}",
                "description": "A gooseneck kettle for pour-over coffee.",
                "category": "home-kitchen",
                "subcategory": "coffee",
                "attributes": {"colour": {"textValue": "black"}, "litres": {"numberValue": 1}},
                "listPrice": {"currencyCode": "USD", "units": 40},
                "initialStock": 10,
            },
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_seller_edits_publishes_and_unpublishes_a_listing(
    edge: httpx.Client, seller: Account, buyer: Account
) -> None:
    product = draft(edge, seller)
    url = f"/v1/products/{product['productId']}"
    assert product["state"] == "PRODUCT_STATE_DRAFT"
    assert edge.get(url).status_code == 404  # drafts are invisible to buyers

    published = edge.post(f"{url}:publish", headers=seller.headers, json={})
    assert published.status_code == 200, published.text
    assert edge.get(url).json()["state"] == "PRODUCT_STATE_PUBLISHED"

    etag = edge.get(url).json()["etag"]
    edited = edge.patch(
        url,
        params={"updateMask": "title,salePrice"},
        headers=seller.headers,
        json={
            "title": "E2E Kettle, matte black",
            "salePrice": {"currencyCode": "USD", "units": 35},
            "etag": etag,
        },
    )
    assert edited.status_code == 200, edited.text
    assert edge.get(url).json()["title"] == "E2E Kettle, matte black"  # never a stale read
    assert edge.get(url).json()["effectivePrice"]["units"] == "35"

    stale = edge.patch(
        url,
        params={"updateMask": "title"},
        headers=seller.headers,
        json={"title": "Lost update", "etag": etag},
    )
    assert stale.status_code == 409, stale.text  # ABORTED
    denied = edge.patch(
        url,
        params={"updateMask": "title"},
        headers=buyer.headers,
        json={"title": "Not mine", "etag": edited.json()["etag"]},
    )
    assert denied.status_code == 403, denied.text

    assert edge.post(f"{url}:unpublish", headers=seller.headers, json={}).status_code == 200
    assert edge.get(url).status_code == 404


def test_inventory_ledger_and_discounts(edge: httpx.Client, seller: Account) -> None:
    product = create_product(edge, seller, stock=3, price=20)
    url = f"/v1/products/{product['productId']}"
    adjusted = edge.post(
        f"{url}/inventory:adjust",
        headers=seller.headers,
        json={"delta": 7, "reason": "restock from supplier"},
    )
    assert adjusted.status_code == 200, adjusted.text
    assert adjusted.json()["available"] == "10"
    ledger = edge.get(f"{url}/inventory/ledger", headers=seller.headers)
    assert ledger.status_code == 200, ledger.text
    assert ledger.json()["entries"][0]["reason"] == "restock from supplier"
    assert edge.get(f"{url}/inventory").status_code == 401  # stock figures need a seller

    now = datetime.now(UTC)
    discount = edge.post(
        f"{url}/discounts",
        headers=seller.headers,
        json={
            "percentOff": 25,
            "startTime": (now - timedelta(minutes=1)).isoformat(),
            "endTime": (now + timedelta(days=1)).isoformat(),
        },
    )
    assert discount.status_code == 200, discount.text
    assert edge.get(url).json()["effectivePrice"]["units"] == "15"


def test_a_verified_buyer_reviews_once_and_the_rating_shows(
    edge: httpx.Client, seller: Account
) -> None:
    product = create_product(edge, seller, stock=5)
    url = f"/v1/products/{product['productId']}"
    reviewer = demo_buyer(edge)
    review = {"rating": 4, "title": "Bright", "body": "Lights the whole desk."}
    created = edge.post(f"{url}/reviews", headers=reviewer.headers, json=review)
    assert created.status_code == 200, created.text
    again = edge.post(f"{url}/reviews", headers=reviewer.headers, json=review)
    assert again.status_code == 409, again.text  # ALREADY_EXISTS
    rating = edge.get(url).json()["rating"]
    assert (
        rating["count"] == 1 and rating["average"] == 4 and rating["histogram"] == [0, 0, 0, 1, 0]
    )
    listed = edge.get(f"{url}/reviews").json()["reviews"]
    assert [r["reviewId"] for r in listed] == [created.json()["reviewId"]]
    reply = edge.post(
        f"{url}/reviews/{created.json()['reviewId']}:reply",
        headers=seller.headers,
        json={"reply": "Thanks for the review!"},
    )
    assert reply.status_code == 200, reply.text


def test_the_seeded_catalog_is_searchable_by_facets_filters_and_rating(
    edge: httpx.Client,
) -> None:
    everything = edge.get("/v1/products", params={"pageSize": 1}).json()
    assert int(everything["totalSize"]) >= 200
    facets = {f["field"]: f["values"] for f in everything["facets"]}
    assert len(facets["category"]) >= 7 and "attributes.colour" in facets
    wireless = edge.get(
        "/v1/products", params={"attributeFilters": "wireless=true", "pageSize": 100}
    ).json()
    assert wireless["products"] and all(
        p["attributes"]["wireless"]["boolValue"] for p in wireless["products"]
    )
    rated = edge.get(
        "/v1/products", params={"minRating": 4, "sortOrder": "SORT_ORDER_RATING", "pageSize": 50}
    ).json()
    averages = [p["rating"]["average"] for p in rated["products"]]
    assert averages and min(averages) >= 4 and averages == sorted(averages, reverse=True)
    cheap = edge.get(
        "/v1/products", params={"sortOrder": "SORT_ORDER_PRICE_ASCENDING", "pageSize": 20}
    ).json()
    prices = [int(p["effectivePrice"]["units"]) for p in cheap["products"]]
    assert prices == sorted(prices)
    page = edge.get("/v1/products", params={"pageSize": 100}).json()["products"]
    discounted = [
        p for p in page if cents(p["effectivePrice"]) < cents(p.get("salePrice", p["listPrice"]))
    ]
    assert discounted and all(p["discounts"] for p in discounted)  # seeded discounts apply
    tree = edge.get("/v1/categories").json()["categories"]
    top = [c for c in tree if not c.get("parentId")]
    assert len(top) >= 7 and len(tree) > len(top)


def test_recommendations_follow_co_purchases_from_order_events(
    edge: httpx.Client, seller: Account
) -> None:
    first = create_product(edge, seller, stock=5)
    second = create_product(edge, seller, stock=5)
    buyer = demo_buyer(edge)
    order = edge.post(
        "/v1/orders",
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "items": [
                {"productId": first["productId"], "quantity": 1},
                {"productId": second["productId"], "quantity": 1},
            ],
            "shippingAddress": {
                "recipientName": "Demo Buyer",
                "line1": "1 Main Street",
                "city": "Springfield",
                "postalCode": "12345",
                "countryCode": "US",
            },
            "paymentMethodToken": "tok_visa",
        },
    )
    assert order.status_code == 200, order.text
    url = f"/v1/products/{first['productId']}/recommendations"
    deadline = time.monotonic() + 15
    also: list[str] = []
    while time.monotonic() < deadline:
        response = edge.get(url, params={"kind": "RECOMMENDATION_KIND_ALSO_BOUGHT"})
        assert response.status_code == 200, response.text
        also = [p["productId"] for p in response.json().get("products", [])]
        if also:
            break
        time.sleep(0.2)
    assert also == [second["productId"]]
    mixed = edge.get(url).json()["products"]
    assert first["productId"] not in {p["productId"] for p in mixed}
    assert all(p["state"] == "PRODUCT_STATE_PUBLISHED" for p in mixed)


def test_a_seller_lists_their_drafts_through_the_edge(edge: httpx.Client, seller: Account) -> None:
    made = draft(edge, seller)
    path = "/v1/sellers/me/products"
    params: dict[str, str | int] = {"states": "PRODUCT_STATE_DRAFT", "pageSize": 5}
    listed = edge.get(path, params=params, headers=seller.headers)
    assert listed.status_code == 200, listed.text
    products = listed.json()["products"]
    assert products[0]["productId"] == made["productId"]
    assert {p["state"] for p in products} == {"PRODUCT_STATE_DRAFT"}
    assert edge.get(path, params=params).status_code == 401
    refused = edge.get(path, params={"pageSize": -1}, headers=seller.headers)
    assert refused.status_code == 400, refused.text
