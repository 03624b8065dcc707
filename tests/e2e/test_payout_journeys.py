"""A payout run through the real Envoy edge over REST, and the seller's ledger balancing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from services.devmesh.mesh import Mesh
from tests.support.edge import (
    DEMO_PASSWORD,
    PAYOUT_HOLD_SECONDS,
    Account,
    create_product,
    login,
    new_seller,
    place_order,
)


def cents(money: dict[str, Any]) -> int:
    """The cents of a google.type.Money in proto3 JSON (units is a string, nanos may be absent)."""
    return int(money.get("units", 0)) * 100 + int(money.get("nanos", 0)) // 10_000_000


def whole_ledger(edge: httpx.Client, seller: Account) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    token = ""
    while True:
        page = edge.get(
            "/v1/sellers/me/ledger",
            headers=seller.headers,
            params={"pageSize": 3, "pageToken": token},
        )
        assert page.status_code == 200, page.text
        entries += page.json()["entries"]
        token = page.json()["nextPageToken"]
        if not token:
            return entries


def usd_balance(edge: httpx.Client, seller: Account) -> tuple[int, int]:
    answer = edge.get("/v1/sellers/me/balance", headers=seller.headers)
    assert answer.status_code == 200, answer.text
    [usd] = answer.json()["balances"]
    return cents(usd["available"]), cents(usd["pending"])


def test_a_payout_run_pays_the_settled_balance_and_the_ledger_balances(
    mesh: Mesh, edge: httpx.Client, buyer: Account
) -> None:
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    seller = new_seller(mesh, edge, admin=admin)
    product_id = create_product(edge, seller, stock=5, price=40)["productId"]
    orders = []
    for quantity in (1, 2):
        placed = place_order(edge, buyer, product_id, quantity=quantity)
        assert placed.status_code == 200, placed.text
        orders.append(placed.json()["orderId"])
    refunded = edge.post(
        f"/v1/orders/{orders[1]}:refund",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": {"currencyCode": "USD", "units": 5}, "reason": "scuffed box"},
    )
    assert refunded.status_code == 200, refunded.text

    # 120.00 sold, 12.00 commission kept, 5.00 refunded with 0.50 commission given back;
    # the refund counts at once, a sale only once held for the holding period.
    available, pending = usd_balance(edge, seller)
    assert available + pending == 12000 - 1200 - 500 + 50
    assert 0 <= pending <= 12000 - 1200
    assert edge.get("/v1/sellers/me/balance", headers=buyer.headers).status_code == 403
    assert edge.post("/v1/payouts:run", headers=seller.headers, json={}).status_code == 403

    time.sleep(PAYOUT_HOLD_SECONDS + 0.5)
    run = edge.post("/v1/payouts:run", headers=admin.headers, json={})
    assert run.status_code == 200, run.text
    mine = [p for p in run.json()["payouts"] if p["sellerId"] == seller.user_id]
    assert [cents(p["amount"]) for p in mine] == [12000 - 1200 - 500 + 50]
    again = edge.post("/v1/payouts:run", headers=admin.headers, json={})
    assert not [p for p in again.json().get("payouts", []) if p["sellerId"] == seller.user_id]

    listed = edge.get("/v1/sellers/me/payouts", headers=seller.headers)
    assert listed.status_code == 200, listed.text
    assert [p["payoutId"] for p in listed.json()["payouts"]] == [mine[0]["payoutId"]]
    # The ledger balances: sales - refunds - commission + commission back - payouts == 0.
    entries = whole_ledger(edge, seller)
    totals: dict[str, int] = {}
    for entry in entries:
        kind = entry["kind"].removeprefix("LEDGER_ENTRY_KIND_")
        totals[kind] = totals.get(kind, 0) + cents(entry["amount"])
    assert totals == {
        "SALE": 12000,
        "COMMISSION": -1200,
        "REFUND": -500,
        "COMMISSION_REFUND": 50,
        "PAYOUT": -(12000 - 1200 - 500 + 50),
    }
    assert sum(totals.values()) == 0
    assert usd_balance(edge, seller) == (0, 0)
    # An admin reads the same balance by the seller's id.
    by_admin = edge.get(f"/v1/sellers/{seller.user_id}/balance", headers=admin.headers)
    assert by_admin.status_code == 200 and by_admin.json()["sellerId"] == seller.user_id
