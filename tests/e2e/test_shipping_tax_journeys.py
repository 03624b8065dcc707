"""Shipping and tax through the real Envoy edge over REST: two sellers, two countries.

Two new sellers set their shipping rates, the demo admin sets the tax rates of France
and Japan, and a buyer places one order to each country with items of both sellers (the
second through the cart). Each seller part and each order carries its subtotal, shipping,
tax and total, and the payment captures exactly the total.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from services.devmesh.mesh import Mesh
from tests.support.edge import (
    DEMO_PASSWORD,
    Account,
    create_product,
    login,
    new_seller,
)

PASSWORD = "shipping-tax-seller-password"


def cents(money: dict[str, Any]) -> int:
    assert money["currencyCode"] == "USD"
    return int(money.get("units", 0)) * 100 + int(money.get("nanos", 0)) // 10_000_000


def usd(minor: int) -> dict[str, Any]:
    return {"currencyCode": "USD", "units": minor // 100, "nanos": minor % 100 * 10_000_000}


def reason(response: httpx.Response) -> str:
    return str(next(d["reason"] for d in response.json()["details"] if "reason" in d))


def address(country: str) -> dict[str, str]:
    return {
        "recipientName": "Ada Buyer",
        "line1": "1 Rue de la Paix",
        "city": "Somewhere",
        "postalCode": "75002",
        "countryCode": country,
    }


def parts(order: dict[str, Any]) -> dict[str, tuple[int, int, int, int]]:
    return {
        p["sellerId"]: (
            cents(p["subtotal"]),
            cents(p["shippingTotal"]),
            cents(p["taxTotal"]),
            cents(p["total"]),
        )
        for p in order["parts"]
    }


def totals(order: dict[str, Any]) -> tuple[int, int, int, int]:
    return (
        cents(order["subtotal"]),
        cents(order["shippingTotal"]),
        cents(order["taxTotal"]),
        cents(order["total"]),
    )


@pytest.fixture(scope="module")
def admin(edge: httpx.Client) -> Account:
    return login(edge, "admin@example.com", DEMO_PASSWORD)


def test_shipping_and_tax_on_orders_of_two_sellers_to_two_countries(
    mesh: Mesh, edge: httpx.Client, buyer: Account, admin: Account
) -> None:
    seller_a, seller_b = (
        new_seller(mesh, edge, password=PASSWORD, admin=admin),
        new_seller(mesh, edge, password=PASSWORD, admin=admin),
    )
    profile_url = "/v1/sellers/me/shippingProfile"
    set_a = edge.patch(
        profile_url,
        headers=seller_a.headers,
        json={
            "currencyCode": "USD",
            "defaultRate": {"flatFee": usd(500)},
            "countryRates": [
                {
                    "countryCode": "FR",
                    "flatFee": usd(300),
                    "perItemFee": usd(100),
                    "freeOver": usd(10_000),
                }
            ],
        },
    )
    assert set_a.status_code == 200, set_a.text
    assert set_a.json()["name"] == f"sellers/{seller_a.user_id}/shippingProfile"
    set_b = edge.patch(
        profile_url,
        headers=seller_b.headers,
        json={
            "currencyCode": "USD",
            "defaultRate": {"perItemFee": usd(200)},
            "countryRates": [{"countryCode": "JP", "flatFee": usd(1000)}],
        },
    )
    assert set_b.status_code == 200, set_b.text
    for country, points in (("FR", 2000), ("JP", 825)):
        taxed = edge.put(
            f"/v1/taxRates/{country}?allowMissing=true",
            headers=admin.headers,
            json={"basisPoints": points},
        )
        assert taxed.status_code == 200, taxed.text
        assert taxed.json()["name"] == f"taxRates/{country}"
    rates = edge.get("/v1/taxRates", headers=admin.headers)
    assert rates.status_code == 200, rates.text
    assert {("FR", 2000), ("JP", 825)} <= {
        (r["countryCode"], r["basisPoints"]) for r in rates.json()["taxRates"]
    }
    lamp = create_product(edge, seller_a, stock=10, price=25)["productId"]
    chair = create_product(edge, seller_b, stock=10, price=40)["productId"]

    # Order 1, to France, placed directly.
    to_france = edge.post(
        "/v1/orders",
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={
            "items": [{"productId": lamp, "quantity": 2}, {"productId": chair, "quantity": 1}],
            "shippingAddress": address("FR"),
            "paymentMethodToken": "tok_visa",
        },
    )
    assert to_france.status_code == 200, to_france.text
    first = to_france.json()
    # A: 50.00 + FR rate 3.00 + 2 x 1.00, tax 20% of 55.00. B: 40.00 + default 1 x 2.00,
    # tax 20% of 42.00.
    assert parts(first) == {
        seller_a.user_id: (5000, 500, 1100, 6600),
        seller_b.user_id: (4000, 200, 840, 5040),
    }
    assert totals(first) == (9000, 700, 1940, 11640)
    assert first["payment"]["status"] == "PAYMENT_STATUS_CAPTURED"
    assert cents(first["payment"]["amount"]) == 11640

    # Order 2, to Japan, through the cart: the same saga, the same pricing.
    for product_id, quantity in ((lamp, 1), (chair, 3)):
        added = edge.post(
            "/v1/cart/items",
            headers=buyer.headers,
            json={"productId": product_id, "quantity": quantity},
        )
        assert added.status_code == 200, added.text
    to_japan = edge.post(
        "/v1/cart:checkout",
        headers={**buyer.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"shippingAddress": address("JP"), "paymentMethodToken": "tok_visa"},
    )
    assert to_japan.status_code == 200, to_japan.text
    second = to_japan.json()
    # A: 25.00 + default 5.00, tax 8.25% of 30.00 = 2.475 -> 2.48 (half up, per part).
    # B: 120.00 + JP rate 10.00, tax 8.25% of 130.00 = 10.725 -> 10.73.
    assert parts(second) == {
        seller_a.user_id: (2500, 500, 248, 3248),
        seller_b.user_id: (12000, 1000, 1073, 14073),
    }
    assert totals(second) == (14500, 1500, 1321, 17321)
    assert second["payment"]["status"] == "PAYMENT_STATUS_CAPTURED"
    assert cents(second["payment"]["amount"]) == 17321

    # Read back: fixed at placement; a seller sees only their own part.
    read = edge.get(f"/v1/orders/{second['orderId']}", headers=buyer.headers).json()
    assert parts(read) == parts(second) and totals(read) == totals(second)
    seen_by_a = edge.get(f"/v1/orders/{first['orderId']}", headers=seller_a.headers).json()
    assert parts(seen_by_a) == {seller_a.user_id: (5000, 500, 1100, 6600)}


def test_only_sellers_set_shipping_rates_and_only_admins_set_tax_rates(
    mesh: Mesh, edge: httpx.Client, buyer: Account, admin: Account
) -> None:
    seller = login(edge, "seller@example.com", DEMO_PASSWORD)
    profile = {"currencyCode": "USD", "defaultRate": {"flatFee": usd(100)}}
    by_buyer = edge.patch("/v1/sellers/me/shippingProfile", headers=buyer.headers, json=profile)
    assert by_buyer.status_code == 403, by_buyer.text
    assert reason(by_buyer) == "ROLE_REQUIRED"
    anonymous = edge.patch("/v1/sellers/me/shippingProfile", json=profile)
    assert anonymous.status_code == 401
    for response in (
        edge.put(
            "/v1/taxRates/SE?allowMissing=true", headers=seller.headers, json={"basisPoints": 1}
        ),
        edge.delete("/v1/taxRates/FR", headers=seller.headers),
        edge.get("/v1/taxRates", headers=buyer.headers),
    ):
        assert response.status_code == 403, response.text
        assert reason(response) == "ROLE_REQUIRED"
    missing = edge.put("/v1/taxRates/SE", headers=admin.headers, json={"basisPoints": 1})
    assert missing.status_code == 404, missing.text
    assert reason(missing) == "TAX_RATE_NOT_FOUND"
