"""The storefront's user journeys over the REST edge, with mail read from the mesh's mailbox."""

from __future__ import annotations

import time
import uuid

import httpx
import jwt

from services.devmesh.mesh import Mesh
from services.user.adapters.signing import SigningKey
from tests.support.edge import Account, login, mail_token, register

PASSWORD = "correct-horse-battery"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_sign_up_verify_from_the_mailbox_sign_in_and_refresh(
    mesh: Mesh, edge: httpx.Client
) -> None:
    email_address, user_id = register(edge, PASSWORD)
    token = mail_token(mesh, email_address, "verify_email")

    verified = edge.post("/v1/auth/email:verify", json={"token": token})
    assert verified.status_code == 200, verified.text
    assert verified.json()["user"]["emailVerified"] is True
    again = edge.post("/v1/auth/email:verify", json={"token": token})
    assert again.status_code == 400, again.text

    signed_in = edge.post("/v1/auth/login", json={"email": email_address, "password": PASSWORD})
    assert signed_in.status_code == 200, signed_in.text
    pair = signed_in.json()
    claims = jwt.decode(pair["accessToken"], options={"verify_signature": False})
    assert claims["sub"] == user_id and claims["email_verified"] is True

    refreshed = edge.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert refreshed.status_code == 200, refreshed.text
    new_pair = refreshed.json()
    assert new_pair["refreshToken"] != pair["refreshToken"]
    me = edge.get("/v1/users/me", headers=bearer(new_pair["accessToken"]))
    assert me.status_code == 200 and me.json()["userId"] == user_id

    # Replaying the rotated token ends the session.
    replay = edge.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
    assert replay.status_code == 401, replay.text
    after = edge.post("/v1/auth/refresh", json={"refreshToken": new_pair["refreshToken"]})
    assert after.status_code == 401


def test_manage_the_address_book(edge: httpx.Client, buyer: Account) -> None:
    created = edge.post(
        "/v1/users/me/addresses",
        headers=buyer.headers,
        json={
            "recipientName": "Ada Buyer",
            "line1": "1 Main Street",
            "city": "Springfield",
            "postalCode": "12345",
            "countryCode": "us",
        },
    )
    assert created.status_code == 200, created.text
    home = created.json()
    assert home["isDefaultShipping"] is True and home["countryCode"] == "US"

    work = edge.post(
        "/v1/users/me/addresses",
        headers=buyer.headers,
        json={
            "recipientName": "Ada",
            "line1": "2 Work Way",
            "city": "Shelbyville",
            "countryCode": "US",
        },
    ).json()
    moved = edge.patch(
        f"/v1/users/me/addresses/{work['addressId']}",
        params={"updateMask": "isDefaultShipping,city"},
        headers=buyer.headers,
        json={"isDefaultShipping": True, "city": "Capital City"},
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["city"] == "Capital City"

    listed = edge.get("/v1/users/me/addresses", headers=buyer.headers).json()["addresses"]
    assert [(a["addressId"], a["isDefaultShipping"]) for a in listed] == [
        (work["addressId"], True),
        (home["addressId"], False),
    ]
    bad = edge.post(
        "/v1/users/me/addresses",
        headers=buyer.headers,
        json={"recipientName": "X", "line1": "Y", "city": "Z", "countryCode": "XX"},
    )
    assert bad.status_code == 400, bad.text

    deleted = edge.delete(f"/v1/users/me/addresses/{home['addressId']}", headers=buyer.headers)
    assert deleted.status_code == 200, deleted.text
    gone = edge.get(f"/v1/users/me/addresses/{home['addressId']}", headers=buyer.headers)
    assert gone.status_code == 404

    other_email, _ = register(edge, PASSWORD)
    other = login(edge, other_email, PASSWORD)
    peek = edge.get(f"/v1/users/{buyer.user_id}/addresses", headers=other.headers)
    assert peek.status_code == 403, peek.text


def test_manage_the_wishlist(edge: httpx.Client, buyer: Account) -> None:
    products = edge.get("/v1/products", params={"page_size": 2}).json()["products"]
    first, second = (p["productId"] for p in products)
    for product_id in (first, second, first):
        added = edge.post(
            "/v1/users/me/wishlist", headers=buyer.headers, json={"productId": product_id}
        )
        assert added.status_code == 200, added.text
    items = edge.get("/v1/users/me/wishlist", headers=buyer.headers).json()["items"]
    assert [i["productId"] for i in items] == [second, first]

    missing = edge.post(
        "/v1/users/me/wishlist",
        headers=buyer.headers,
        json={"productId": "0123456789abcdef01234567"},
    )
    assert missing.status_code == 404, missing.text

    removed = edge.delete(f"/v1/users/me/wishlist/{first}", headers=buyer.headers)
    assert removed.status_code == 200, removed.text
    items = edge.get("/v1/users/me/wishlist", headers=buyer.headers).json()["items"]
    assert [i["productId"] for i in items] == [second]


def test_reset_a_forgotten_password(mesh: Mesh, edge: httpx.Client) -> None:
    email_address, _ = register(edge, PASSWORD)
    known = edge.post("/v1/auth/password:requestReset", json={"email": email_address})
    unknown = edge.post(
        "/v1/auth/password:requestReset",
        json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org"},
    )
    assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (200, {})

    token = mail_token(mesh, email_address, "reset_password")
    new_password = "a much better passphrase"
    reset = edge.post("/v1/auth/password:reset", json={"token": token, "newPassword": new_password})
    assert reset.status_code == 200, reset.text
    old = edge.post("/v1/auth/login", json={"email": email_address, "password": PASSWORD})
    assert old.status_code == 401
    login(edge, email_address, new_password)
    reused = edge.post(
        "/v1/auth/password:reset", json={"token": token, "newPassword": "yet another passphrase"}
    )
    assert reused.status_code == 400, reused.text


def test_sessions_and_sign_out_everywhere(edge: httpx.Client) -> None:
    email_address, _ = register(edge, PASSWORD)
    # A client cannot choose the address its sign-ins are counted (and shown) under: the
    # edge overwrites the header the user service reads.
    spoofed = {"x-marketplace-client-address": "203.0.113.9"}
    pairs = [
        edge.post(
            "/v1/auth/login",
            headers=spoofed,
            json={"email": email_address, "password": PASSWORD},
        ).json()
        for _ in range(2)
    ]
    sessions = edge.get("/v1/users/me/sessions", headers=bearer(pairs[1]["accessToken"]))
    assert sessions.status_code == 200, sessions.text
    listed = sessions.json()["sessions"]
    assert [s["current"] for s in listed] == [True, False]
    assert {s["clientIp"] for s in listed} == {"127.0.0.1"}
    ended = edge.post("/v1/auth/logout:all", headers=bearer(pairs[0]["accessToken"]), json={})
    assert ended.status_code == 200, ended.text
    assert ended.json()["revokedSessions"] == 2
    for pair in pairs:
        again = edge.post("/v1/auth/refresh", json={"refreshToken": pair["refreshToken"]})
        assert again.status_code == 401


def test_key_rotation_logs_nobody_out(mesh: Mesh, edge: httpx.Client) -> None:
    """Rotate as docs/user.md says: the key published as "next" starts signing."""
    email_address, _ = register(edge, PASSWORD)
    before = login(edge, email_address, PASSWORD)
    user = mesh.services["user"]
    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    upcoming_pem = user.env["USER_NEXT_SIGNING_KEY_PEM"]
    upcoming = SigningKey.from_pem(upcoming_pem)
    published = edge.get("/.well-known/jwks.json").json()["keys"]
    assert {k["kid"] for k in published} >= {old_kid, upcoming.kid}

    assert user.process is not None
    user.process.stop()
    user.env["USER_PREVIOUS_SIGNING_KEYS_PEM"] = user.env["USER_SIGNING_KEY_PEM"]
    user.env["USER_SIGNING_KEY_PEM"] = upcoming_pem
    user.env["USER_NEXT_SIGNING_KEY_PEM"] = SigningKey.generate().to_pem()
    mesh.start_service("user")
    deadline = time.monotonic() + 15
    while edge.get("/healthz").status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.2)

    # The token signed before the rotation still works at the edge and in the services.
    me = edge.get("/v1/users/me", headers=before.headers)
    assert me.status_code == 200, me.text
    orders = edge.get("/v1/orders", headers=before.headers)
    assert orders.status_code == 200, orders.text
    # New sign-ins are signed with the promoted key, which the edge already knew.
    after = login(edge, email_address, PASSWORD)
    assert jwt.get_unverified_header(after.access_token)["kid"] == upcoming.kid
    assert edge.get("/v1/users/me/addresses", headers=after.headers).status_code == 200
    assert edge.get("/v1/orders", headers=after.headers).status_code == 200
