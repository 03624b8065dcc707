"""The REST edge of the running mesh, as the end-to-end tests drive it.

Plain helpers (accounts, products, orders, mailed tokens) shared by the test modules under
tests/e2e; the fixtures that start the mesh stay in tests/e2e/conftest.py.
"""

from __future__ import annotations

import email
import email.policy
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from services.devmesh.mesh import Mesh

DEMO_PASSWORD = "e2e-demo-password"
# Sales settle for payouts after this long in the e2e mesh: long enough that a loaded CI
# machine still sees a fresh sale pending, short enough for the payout journeys to wait.
PAYOUT_HOLD_SECONDS = 5


@dataclass(frozen=True)
class Account:
    """A signed-in user of the REST edge."""

    user_id: str
    email: str
    access_token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.access_token}"}


def register(edge: httpx.Client, password: str = "correct-horse-battery") -> tuple[str, str]:
    """Register a new account over REST; returns (email, user id)."""
    suffix = uuid.uuid4().hex[:10]
    email = f"buyer-{suffix}@example.org"
    response = edge.post(
        "/v1/users",
        json={
            "email": email,
            "username": f"buyer_{suffix}",
            "password": password,
            "display_name": "E2E Buyer",
        },
    )
    assert response.status_code == 200, response.text
    return email, str(response.json()["userId"])


def login(edge: httpx.Client, email: str, password: str) -> Account:
    """Sign in over REST."""
    response = edge.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    me = edge.get("/v1/users/me", headers={"Authorization": f"Bearer {body['accessToken']}"})
    assert me.status_code == 200, me.text
    return Account(me.json()["userId"], email, body["accessToken"])


def create_product(edge: httpx.Client, seller: Account, *, stock: int, price: int = 25) -> Any:
    """A published product of the demo seller with `stock` units at `price` dollars.

    It is listed under a category pair that the dev seed creates (see demo_catalog).
    """
    response = edge.post(
        "/v1/products",
        headers=seller.headers,
        json={
            "product": {
                "title": f"E2E Lamp {uuid.uuid4().hex[:8]}",
                "description": "A desk lamp made for end-to-end tests.",
                "category": "home-kitchen",
                "subcategory": "bedding",
                "listPrice": {"currencyCode": "USD", "units": price},
                "initialStock": stock,
            },
            "publish": True,
        },
    )
    assert response.status_code == 200, response.text
    return response.json()


def place_order(
    edge: httpx.Client,
    account: Account,
    product_id: str,
    *,
    quantity: int = 1,
    token: str = "tok_visa",
    key: str | None = None,
) -> httpx.Response:
    """POST /v1/orders with an Idempotency-Key header."""
    return edge.post(
        "/v1/orders",
        headers={**account.headers, "Idempotency-Key": key or uuid.uuid4().hex},
        json={
            "items": [{"productId": product_id, "quantity": quantity}],
            "shippingAddress": {
                "recipientName": "Ada Buyer",
                "line1": "1 Main Street",
                "city": "Springfield",
                "postalCode": "12345",
                "countryCode": "US",
            },
            "paymentMethodToken": token,
        },
    )


def stock_of(edge: httpx.Client, product_id: str) -> int:
    """The product's available stock as the public API reports it."""
    response = edge.get(f"/v1/products/{product_id}")
    assert response.status_code == 200, response.text
    return int(response.json()["stockAvailable"])


def mail_token(mesh: Mesh, to: str, kind: str, *, count: int = 1) -> str:
    """The token of the newest mail of `kind` to `to`, waiting for the relay to deliver it."""
    folder = Path(mesh.state_dir) / "mailbox"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tokens = []
        for path in sorted(folder.glob("*.eml")):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if message["To"] == to and message["X-Marketplace-Kind"] == kind:
                body = message.get_body()
                assert body is not None
                found = re.search(r"Token: (\S+)", body.get_content())
                assert found
                tokens.append(found.group(1))
        if len(tokens) >= count:
            return tokens[-1]
        time.sleep(0.1)
    raise AssertionError(f"no {kind} mail to {to} in {folder}")


def new_seller(
    mesh: Mesh,
    edge: httpx.Client,
    *,
    password: str = "correct-horse-battery",
    admin: Account | None = None,
) -> Account:
    """A new account, signed in, with a verified email (it may list and review) and the
    seller role, given by `admin` (the demo admin unless named): no other test's sales are
    in its ledger.
    """
    address, user_id = register(edge, password)
    verified = edge.post(
        "/v1/auth/email:verify", json={"token": mail_token(mesh, address, "verify_email")}
    )
    assert verified.status_code == 200, verified.text
    admin = admin or login(edge, "admin@example.com", DEMO_PASSWORD)
    granted = edge.post(
        f"/v1/users/{user_id}:setRoles",
        headers=admin.headers,
        json={"roles": ["ROLE_CUSTOMER", "ROLE_SELLER"]},
    )
    assert granted.status_code == 200, granted.text
    return login(edge, address, password)
