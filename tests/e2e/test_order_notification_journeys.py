"""Order notifications through the edge: each mail lands once in the dev mailbox."""

from __future__ import annotations

import email
import email.policy
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

from services.devmesh.mesh import Mesh
from tests.support.edge import DEMO_PASSWORD, Account, create_product, login, place_order

# After the last expected mail, how long a duplicate would have to show up.
SETTLE_SECONDS = 2.0


def order_mail(mesh: Mesh, to: str, order_id: str) -> Counter[str]:
    """The kinds of the mails to `to` about one order, with how many of each."""
    kinds: Counter[str] = Counter()
    for path in sorted((Path(mesh.state_dir) / "mailbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == to and order_id in str(message["Subject"]):
            kinds[str(message["X-Marketplace-Kind"])] += 1
    return kinds


def wait_for_mail(mesh: Mesh, to: str, order_id: str, kind: str) -> Counter[str]:
    """The order's mail to `to` once a mail of `kind` arrived (the relay and the consumer
    poll), and a while longer, so a duplicate would be seen too."""
    deadline = time.monotonic() + 20
    while order_mail(mesh, to, order_id)[kind] == 0:
        assert time.monotonic() < deadline, f"no {kind} mail: {order_mail(mesh, to, order_id)}"
        time.sleep(0.2)
    time.sleep(SETTLE_SECONDS)
    return order_mail(mesh, to, order_id)


def mail_body(mesh: Mesh, to: str, kind: str, order_id: str) -> str:
    for path in sorted((Path(mesh.state_dir) / "mailbox").glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if (
            message["To"] == to
            and message["X-Marketplace-Kind"] == kind
            and order_id in str(message["Subject"])
        ):
            body = message.get_body()
            assert body is not None
            return str(body.get_content())
    raise AssertionError(f"no {kind} mail to {to}")


def ship_deliver_refund(edge: httpx.Client, order_id: str, seller: Account, admin: Account) -> None:
    shipped = edge.post(
        f"/v1/orders/{order_id}:ship",
        headers=seller.headers,
        json={"carrier": "DHL", "trackingNumber": f"JD{uuid.uuid4().hex[:10]}"},
    )
    assert shipped.status_code == 200, shipped.text
    delivered = edge.post(f"/v1/orders/{order_id}:deliver", headers=admin.headers, json={})
    assert delivered.status_code == 200, delivered.text
    refunded = edge.post(
        f"/v1/orders/{order_id}:refund",
        headers={**admin.headers, "Idempotency-Key": uuid.uuid4().hex},
        json={"amount": {"currencyCode": "USD", "units": 5}, "reason": "damaged box"},
    )
    assert refunded.status_code == 200, refunded.text


def test_a_buyer_and_the_seller_get_each_order_mail_once(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    product = create_product(edge, seller, stock=3, price=25)
    placed = place_order(edge, buyer, product["productId"])
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    ship_deliver_refund(edge, order_id, seller, admin)

    to_buyer = wait_for_mail(mesh, buyer.email, order_id, "order_refunded")
    assert to_buyer == {
        "order_placed": 1,
        "order_shipped": 1,
        "order_delivered": 1,
        "order_refunded": 1,
    }
    body = mail_body(mesh, buyer.email, "order_placed", order_id)
    assert product["title"] in body and "Total: 25.00 USD" in body
    assert f"{mesh.edge_url.rstrip('/')}/orders/{order_id}" in body
    assert "Refunded now: 5.00 USD" in mail_body(mesh, buyer.email, "order_refunded", order_id)
    assert wait_for_mail(mesh, seller.email, order_id, "order_sold") == {"order_sold": 1}

    cancelled_order = place_order(edge, buyer, product["productId"]).json()["orderId"]
    cancelled = edge.post(
        f"/v1/orders/{cancelled_order}:cancel", headers=buyer.headers, json={"reason": "oops"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert wait_for_mail(mesh, buyer.email, cancelled_order, "order_cancelled") == {
        "order_placed": 1,
        "order_cancelled": 1,
    }


def test_a_buyer_who_opted_out_of_email_gets_no_order_updates(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    opted_out = edge.patch(
        "/v1/users/me/preferences",
        headers=buyer.headers,
        params={"updateMask": "notificationChannels"},
        json={"notificationChannels": ["NOTIFICATION_CHANNEL_PUSH"]},
    )
    assert opted_out.status_code == 200, opted_out.text
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    product = create_product(edge, seller, stock=2, price=25)
    placed = place_order(edge, buyer, product["productId"])
    assert placed.status_code == 200, placed.text
    order_id = placed.json()["orderId"]
    ship_deliver_refund(edge, order_id, seller, admin)

    # The refund comes after the shipment and the delivery on the stream, so once its mail
    # is out, theirs would be too: the confirmation and the refund are transactional mail
    # (sent whatever the preferences), the updates are not.
    assert wait_for_mail(mesh, buyer.email, order_id, "order_refunded") == {
        "order_placed": 1,
        "order_refunded": 1,
    }
