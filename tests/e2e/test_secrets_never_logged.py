"""Canary secrets sent with failing and succeeding requests never reach any log of the mesh."""

from __future__ import annotations

import contextlib
import time
import uuid
from pathlib import Path

import grpc
import httpx

from services.devmesh.mesh import Mesh
from tests.support.edge import Account, create_product, login, mail_token, place_order, register


def canary(kind: str) -> str:
    return f"canary{kind}{uuid.uuid4().hex}"


def log_files(mesh: Mesh) -> list[Path]:
    state = Path(mesh.state_dir)
    files = {p for p in (state / "logs").rglob("*") if p.is_file()}
    files |= {p for p in state.rglob("*.log") if p.is_file()}
    return sorted(files)


def raw(data: bytes) -> bytes:
    return data


def call_direct(
    mesh: Mesh, target: str, method: str, metadata: tuple[tuple[str, str], ...]
) -> None:
    """A raw gRPC call straight to a service (bypassing the edge), expected to fail."""
    with grpc.secure_channel(target, mesh.operator_credentials()) as channel:
        with contextlib.suppress(grpc.RpcError):
            channel.unary_unary(method, request_serializer=raw, response_deserializer=raw)(
                b"", metadata=metadata, timeout=5
            )


def test_canary_secrets_never_reach_a_log(mesh: Mesh, edge: httpx.Client, seller: Account) -> None:
    secrets: list[str] = []

    def secret(kind: str) -> str:
        value = canary(kind)
        secrets.append(value)
        return value

    # A real account whose password, tokens and mailed tokens are all canaries.
    password = secret("pw")
    email, _ = register(edge, password=password)
    account = login(edge, email, password)
    signed_in = edge.post("/v1/auth/login", json={"email": email, "password": password}).json()
    secrets += [account.access_token, signed_in["accessToken"], signed_in["refreshToken"]]
    secrets.append(mail_token(mesh, email, "verify_email"))

    # Sign-in and sign-up that fail in every way we know.
    for body in (
        {"email": "ada\u0000@example.org", "password": secret("pw")},
        {"email": email, "password": secret("pw") + "\u0000"},
        {"email": email, "password": secret("pw")},  # wrong password
        {"email": "nobody-" + uuid.uuid4().hex + "@example.org", "password": secret("pw")},
        {"email": "\u001b[2J" + email, "password": secret("pw")},
    ):
        assert edge.post("/v1/auth/login", json=body).status_code >= 400
    raw = b'{"email":"\xff\xfe@example.org","password":"' + secret("pw").encode() + b'"}'
    assert edge.post("/v1/auth/login", content=raw).status_code >= 400
    for username in ("bad\u0000name", "x", "\u00ff" * 40):
        edge.post(
            "/v1/users",
            json={
                "email": f"c{uuid.uuid4().hex[:8]}@example.org",
                "username": username,
                "password": secret("pw"),
                "displayName": "Canary",
            },
        )
    # Mailed-token and refresh-token flows with forged tokens, NUL bytes and invalid UTF-8.
    for path, body in (
        ("/v1/auth/email:verify", {"token": secret("verify")}),
        ("/v1/auth/email:verify", {"token": secret("verify") + "\u0000"}),
        ("/v1/auth/password:reset", {"token": secret("reset"), "newPassword": secret("pw")}),
        ("/v1/auth/password:reset", {"token": "\u0000" + secret("reset"), "newPassword": "x"}),
        ("/v1/auth/refresh", {"refreshToken": secret("refresh")}),
        ("/v1/auth/refresh", {"refreshToken": secret("refresh") + "\u0000"}),
    ):
        assert edge.post(path, json=body).status_code >= 400, path
    # Signing out an unknown session succeeds (it is idempotent), but must not log the token.
    edge.post("/v1/auth/logout", json={"refreshToken": secret("refresh")})
    assert (
        edge.post(
            "/v1/auth/password:change",
            headers=account.headers,
            json={"currentPassword": secret("pw"), "newPassword": secret("pw") + "\u0000"},
        ).status_code
        >= 400
    )
    # Malformed and forged bearer tokens at the edge and at each service directly.
    forged_jwt = "eyJhbGciOiJFZERTQSJ9." + secret("jwt") + ".c2ln"
    for header in (f"Bearer {secret('bearer')}", f"Bearer {forged_jwt}", secret("auth")):
        edge.get("/v1/users/me", headers={"Authorization": header})
        edge.get("/v1/orders", headers={"Authorization": header})
    internal = secret("internal")
    for name, service in mesh.services.items():
        call_direct(
            mesh,
            service.target,
            {
                "user": "/marketplace.user.v1.UserService/GetUser",
                "product": "/marketplace.product.v1.ProductService/CreateProduct",
                "order": "/marketplace.order.v1.OrderService/ListOrders",
            }.get(name, "/marketplace.user.v1.UserService/GetUser"),
            (("authorization", f"Bearer {secret('direct')}"),),
        )
        call_direct(
            mesh,
            service.target,
            "/marketplace.product.v1.ProductInternalService/ReserveInventory",
            (("x-internal-token", internal), ("authorization", f"Bearer {forged_jwt}")),
        )

    # Orders: a card token the gateway does not know, a NUL in the token, unknown ids.
    product = create_product(edge, seller, stock=5)
    place_order(edge, account, product["productId"], token="tok_" + secret("card"))
    place_order(edge, account, product["productId"], token="tok_visa\u0000" + secret("card"))
    place_order(edge, account, "no-such-product", token="tok_" + secret("card"))
    edge.get(f"/v1/orders/{uuid.uuid4()}", headers=account.headers)
    # Product search and reviews with NUL and control bytes, signed in with a real token.
    edge.get("/v1/products", params={"query": "lamp\u0000"}, headers=account.headers)
    edge.post(
        f"/v1/products/{product['productId']}/reviews",
        headers=account.headers,
        json={"review": {"rating": 5, "title": "\u0000", "body": secret("body")}},
    )

    time.sleep(1.5)  # let every process flush its log lines
    files = log_files(mesh)
    assert len(files) >= 4, files  # the services, the gateway and the edge all log
    leaks = [
        f"{path.name}: {value[:16]}..."
        for path in files
        for value in secrets
        if value and value in path.read_text(errors="replace")
    ]
    assert leaks == []
