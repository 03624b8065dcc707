"""Dev-mode demo catalog: the demo seller lists the demo products through the public API."""

from __future__ import annotations

from typing import TYPE_CHECKING

import grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from services.product.demo_catalog import demo_products

if TYPE_CHECKING:
    from services.devmesh.mesh import Mesh

SELLER_EMAIL = "seller@example.com"


def seed_catalog(mesh: Mesh) -> int:
    """Create the demo catalog unless the seller already has products; returns how many."""
    with grpc.insecure_channel(mesh.services["user"].target) as channel:
        login = user_service_pb2_grpc.UserServiceStub(channel).Login(
            user_service_pb2.LoginRequest(email=SELLER_EMAIL, password=mesh.options.demo_password),
            timeout=10,
        )
    metadata = (("authorization", f"Bearer {login.access_token}"),)
    with grpc.insecure_channel(mesh.services["product"].target) as channel:
        products = product_service_pb2_grpc.ProductServiceStub(channel)
        me = user_id_of(login.access_token)
        existing = products.SearchProducts(
            product_service_pb2.SearchProductsRequest(seller_id=me, page_size=1), timeout=10
        )
        if existing.total_size > 0:
            return 0
        created = 0
        for product in demo_products():
            products.CreateProduct(
                product_service_pb2.CreateProductRequest(product=product, publish=True),
                metadata=metadata,
                timeout=10,
            )
            created += 1
    return created


def user_id_of(access_token: str) -> str:
    """The subject of a token the mesh itself just received (no verification needed here)."""
    import jwt

    return str(jwt.decode(access_token, options={"verify_signature": False})["sub"])
