"""The typed client (clients/marketplace-client) and its examples against the running mesh."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import grpc
import pytest
from marketplace.order.v1 import order_pb2
from marketplace_client import (
    InvalidArgumentError,
    MarketplaceClient,
    NotFoundError,
    UnauthenticatedError,
)

from services.devmesh.mesh import Mesh
from services.devmesh.processes import REPO_ROOT
from tests.support.edge import DEMO_PASSWORD

BUYER = "buyer@example.com"
ADDRESS = order_pb2.ShippingAddress(
    recipient_name="Demo Buyer", line1="1 Example Street", city="Springfield", country_code="US"
)


def _edge_target(mesh: Mesh) -> str:
    return f"127.0.0.1:{mesh.options.edge_port}"


async def test_signed_in_order_through_the_edge_is_idempotent_and_listed(mesh: Mesh) -> None:
    async with MarketplaceClient.connect(
        _edge_target(mesh), email=BUYER, password=DEMO_PASSWORD, plaintext=True
    ) as client:
        me = await client.me()
        assert me.email == BUYER
        products = [p async for p in client.search_products("headphones", in_stock_only=True)]
        assert products, "the demo catalog has headphones in stock"
        key = str(uuid.uuid4())
        first = await client.create_order(
            [(products[0].product_id, 1)],
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
            idempotency_key=key,
        )
        again = await client.create_order(
            [(products[0].product_id, 1)],
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
            idempotency_key=key,
        )
        assert again.order_id == first.order_id
        # A page size of one makes the iterator follow next_page_token.
        listed = [o.order_id async for o in client.list_orders(page_size=1)]
        assert first.order_id in listed
        assert len(listed) == len(set(listed))


async def test_errors_from_the_services_are_typed_with_their_reason(mesh: Mesh) -> None:
    user = mesh.services["user"].target
    # Straight to the services' mTLS ports, with the operator's certificate.
    tls = mesh.mesh_tls()
    async with MarketplaceClient.connect(
        user,
        product_target=mesh.services["product"].target,
        order_target=mesh.services["order"].target,
        email=BUYER,
        password=DEMO_PASSWORD,
        ca_file=tls.ca_path,
        cert_file=tls.operator.cert_path,
        key_file=tls.operator.key_path,
    ) as client:
        with pytest.raises(InvalidArgumentError) as invalid:
            await client.create_order([], shipping_address=ADDRESS, payment_method_token="tok_visa")
        assert invalid.value.reason
        assert invalid.value.domain
        assert invalid.value.field_violations
        with pytest.raises(NotFoundError) as missing:
            await client.get_product("no-such-product")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
    async with MarketplaceClient.connect(
        user,
        email=BUYER,
        password="not-the-password",
        ca_file=tls.ca_path,
        cert_file=tls.operator.cert_path,
        key_file=tls.operator.key_path,
    ) as client:
        with pytest.raises(UnauthenticatedError) as refused:
            await client.me()
        assert refused.value.reason


@pytest.mark.parametrize("example", ["browse_and_order.py"])
def test_example_runs_against_the_mesh(mesh: Mesh, example: str) -> None:
    env = {
        **os.environ,
        "MARKETPLACE_USER_GRPC": mesh.services["user"].target,
        "MARKETPLACE_PRODUCT_GRPC": mesh.services["product"].target,
        "MARKETPLACE_ORDER_GRPC": mesh.services["order"].target,
        "MARKETPLACE_TLS_DIR": str(mesh.mesh_tls().ca_path.parent),
        "MARKETPLACE_DEMO_PASSWORD": DEMO_PASSWORD,
    }
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / example)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "signed in as" in result.stdout
    assert "ordered" in result.stdout
