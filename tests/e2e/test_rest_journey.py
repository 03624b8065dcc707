"""A storefront's journey through the real Envoy edge over REST/JSON."""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import jwt

from services.devmesh.mesh import Mesh
from services.user.adapters.signing import KeyRing, SigningKey
from tests.support.edge import (
    DEMO_PASSWORD,
    Account,
    create_product,
    login,
    place_order,
    register,
    stock_of,
)


def test_edge_health_and_jwks_are_public(edge: httpx.Client) -> None:
    assert edge.get("/healthz").status_code == 200
    jwks = edge.get("/.well-known/jwks.json")
    assert jwks.status_code == 200
    keys = jwks.json()["keys"]
    assert keys and all(k["alg"] == "EdDSA" and k["kid"] for k in keys)


def test_register_login_and_read_my_account(edge: httpx.Client) -> None:
    email, user_id = register(edge)
    response = edge.post(
        "/v1/auth/login", json={"email": email, "password": "correct-horse-battery"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["tokenType"] == "Bearer"
    assert body["expiresIn"] > 0
    assert body["refreshToken"]
    header = jwt.get_unverified_header(body["accessToken"])
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {k["kid"] for k in edge.get("/.well-known/jwks.json").json()["keys"]}

    me = edge.get("/v1/users/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.status_code == 200
    assert me.json()["userId"] == user_id
    assert me.json()["email"] == email
    assert me.json()["roles"] == ["ROLE_CUSTOMER"]


def test_wrong_password_is_401_with_a_json_error(edge: httpx.Client) -> None:
    email, _ = register(edge)
    response = edge.post("/v1/auth/login", json={"email": email, "password": "not-the-password"})
    assert response.status_code == 401
    assert "invalid email or password" in response.json()["message"]


def test_bad_input_is_400_with_a_message_and_writes_nothing(edge: httpx.Client) -> None:
    suffix = uuid.uuid4().hex[:8]
    response = edge.post(
        "/v1/users",
        json={"email": "not-an-email", "username": f"u_{suffix}", "password": "short"},
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 3  # INVALID_ARGUMENT
    assert "email" in body["message"] and "password" in body["message"]
    # The username was not taken by the failed request.
    retry = edge.post(
        "/v1/users",
        json={
            "email": f"{suffix}@example.org",
            "username": f"u_{suffix}",
            "password": "correct-horse-battery",
        },
    )
    assert retry.status_code == 200, retry.text


def test_browse_and_search_the_seeded_catalog(edge: httpx.Client) -> None:
    first = edge.get("/v1/products", params={"page_size": 5})
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["products"]) == 5
    assert int(page["totalSize"]) >= 50
    second = edge.get("/v1/products", params={"page_size": 5, "page_token": page["nextPageToken"]})
    assert second.status_code == 200
    first_ids = {p["productId"] for p in page["products"]}
    assert first_ids.isdisjoint(p["productId"] for p in second.json()["products"])

    product = page["products"][0]
    one = edge.get(f"/v1/products/{product['productId']}")
    assert one.status_code == 200
    assert one.json()["title"] == product["title"]

    word = product["title"].split()[-1]
    found = edge.get("/v1/products", params={"query": word, "category": product["category"]})
    assert found.status_code == 200
    results = found.json()["products"]
    assert product["productId"] in {p["productId"] for p in results}
    assert all(p["category"] == product["category"] for p in results)

    categories = {
        p["category"]
        for p in edge.get("/v1/products", params={"page_size": 100}).json()["products"]
    }
    assert len(categories) >= 5


def test_unknown_product_is_404(edge: httpx.Client) -> None:
    response = edge.get(f"/v1/products/{uuid.uuid4()}")
    assert response.status_code == 404
    assert response.json()["code"] == 5  # NOT_FOUND


def test_only_sellers_create_products(edge: httpx.Client, buyer: Account, seller: Account) -> None:
    denied = edge.post(
        "/v1/products",
        headers=buyer.headers,
        json={
            "product": {
                "title": "x",
                "category": "home-kitchen",
                "listPrice": {"currencyCode": "USD", "units": 1},
            }
        },
    )
    assert denied.status_code == 403
    created = create_product(edge, seller, stock=4)
    assert created["state"] == "PRODUCT_STATE_PUBLISHED"
    assert int(created["stockAvailable"]) == 4


def test_order_track_and_list(edge: httpx.Client, buyer: Account, seller: Account) -> None:
    product = create_product(edge, seller, stock=5, price=40)
    response = place_order(edge, buyer, product["productId"], quantity=2)
    assert response.status_code == 200, response.text
    order = response.json()
    assert order["status"] == "ORDER_STATUS_PAID"
    assert order["buyerId"] == buyer.user_id
    assert order["total"]["currencyCode"] == "USD" and int(order["total"]["units"]) == 80
    assert order["payment"]["status"] == "PAYMENT_STATUS_CAPTURED"
    assert stock_of(edge, product["productId"]) == 3

    tracked = edge.get(f"/v1/orders/{order['orderId']}", headers=buyer.headers)
    assert tracked.status_code == 200
    history = [change["toStatus"] for change in tracked.json()["statusHistory"]]
    assert history == ["ORDER_STATUS_PENDING", "ORDER_STATUS_PAID"]

    mine = edge.get("/v1/orders", headers=buyer.headers)
    assert mine.status_code == 200
    assert [o["orderId"] for o in mine.json()["orders"]] == [order["orderId"]]


def test_other_users_cannot_see_my_order(
    edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=1)
    order = place_order(edge, buyer, product["productId"]).json()
    email, _ = register(edge)
    stranger = login(edge, email, "correct-horse-battery")
    response = edge.get(f"/v1/orders/{order['orderId']}", headers=stranger.headers)
    assert response.status_code == 404
    assert edge.get("/v1/orders", headers=stranger.headers).json()["orders"] == []


def test_declined_payment_releases_the_stock(
    edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=2)
    response = place_order(edge, buyer, product["productId"], token="tok_chargeDeclined")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 9  # FAILED_PRECONDITION
    assert "declined" in body["message"]
    assert stock_of(edge, product["productId"]) == 2
    orders = edge.get("/v1/orders", headers=buyer.headers).json()["orders"]
    assert [o["status"] for o in orders] == ["ORDER_STATUS_CANCELLED"]
    assert orders[0]["payment"]["status"] == "PAYMENT_STATUS_DECLINED"


def test_retried_order_with_the_same_key_charges_once(
    edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=5)
    key = uuid.uuid4().hex
    first = place_order(edge, buyer, product["productId"], key=key)
    second = place_order(edge, buyer, product["productId"], key=key)
    assert first.status_code == second.status_code == 200
    assert first.json()["orderId"] == second.json()["orderId"]
    assert stock_of(edge, product["productId"]) == 4
    assert len(edge.get("/v1/orders", headers=buyer.headers).json()["orders"]) == 1

    other_body = place_order(edge, buyer, product["productId"], quantity=2, key=key)
    assert other_body.status_code == 400
    assert stock_of(edge, product["productId"]) == 4


def test_concurrent_orders_on_scarce_stock_never_oversell(
    edge: httpx.Client, seller: Account, mesh: Mesh
) -> None:
    product = create_product(edge, seller, stock=3)
    buyers = []
    for _ in range(4):
        email, _ = register(edge)
        buyers.append(login(edge, email, "correct-horse-battery"))
    attempts = [buyers[i % len(buyers)] for i in range(12)]
    with httpx.Client(base_url=mesh.edge_url, timeout=60) as client, ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda a: place_order(client, a, product["productId"]), attempts))
    codes = sorted(r.status_code for r in responses)
    assert codes.count(200) == 3, [r.text for r in responses]
    assert codes.count(400) == 9
    assert all("OUT_OF_STOCK" in r.text or r.status_code == 200 for r in responses)
    assert stock_of(edge, product["productId"]) == 0


def test_missing_and_forged_tokens_are_rejected_at_the_edge(edge: httpx.Client) -> None:
    missing = edge.get("/v1/orders")
    assert missing.status_code == 401
    assert missing.json()["message"]
    claims = {
        "sub": str(uuid.uuid4()),
        "roles": ["admin"],
        "iss": "marketplace",
        "aud": "marketplace",
    }
    # Signed by an attacker's own key but naming the real key id.
    real_kid = edge.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    forged_token = KeyRing(SigningKey.generate()).sign(
        claims, ttl_seconds=300, issuer="marketplace", audience="marketplace", now=datetime.now(UTC)
    )
    _, payload, signature = forged_token.split(".")
    forged_header = jwt.utils.base64url_encode(
        json.dumps({"alg": "EdDSA", "typ": "JWT", "kid": real_kid}).encode()
    ).decode()
    forged = edge.get(
        "/v1/orders",
        headers={"Authorization": f"Bearer {forged_header}.{payload}.{signature}"},
    )
    assert forged.status_code == 401
    hmac_token = jwt.encode(claims, "a-guessed-shared-secret-of-32-bytes!", algorithm="HS256")
    hmac_forged = edge.get("/v1/orders", headers={"Authorization": f"Bearer {hmac_token}"})
    assert hmac_forged.status_code == 401
    garbage = edge.get("/v1/users/me", headers={"Authorization": "Bearer abc.def.ghi"})
    assert garbage.status_code == 401


def test_demo_accounts_sign_in(edge: httpx.Client) -> None:
    for email in ("admin@example.com", "seller@example.com", "buyer@example.com"):
        response = edge.post("/v1/auth/login", json={"email": email, "password": DEMO_PASSWORD})
        assert response.status_code == 200, (email, response.text)
