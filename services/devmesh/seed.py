"""Dev-mode demo data, created through the public APIs as the demo accounts would.

The demo admin builds the category tree, the demo seller lists the catalog and runs
discounts, and the demo admin and buyer (verified accounts) write reviews.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import timestamp_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from services.product.demo_catalog import (
    demo_categories,
    demo_discount_percent,
    demo_products,
    demo_ratings,
)

if TYPE_CHECKING:
    from services.devmesh.mesh import Mesh

SELLER_EMAIL = "seller@example.com"
ADMIN_EMAIL = "admin@example.com"
BUYER_EMAIL = "buyer@example.com"
# Calls in flight at once: enough to seed in seconds, few enough not to swamp two cores.
PARALLEL_CALLS = 8
REVIEW_TEXTS = {
    1: ("Disappointed", "Did not hold up to everyday use."),
    2: ("Not great", "Works, but I expected more for the price."),
    3: ("Decent", "Does the job; nothing special."),
    4: ("Very good", "Well made and arrived quickly."),
    5: ("Excellent", "Exactly as described. Would buy again."),
}


def _login(mesh: Mesh, email: str) -> tuple[tuple[str, str], ...]:
    with mesh.operator_channel("user") as channel:
        login = user_service_pb2_grpc.UserServiceStub(channel).Login(
            user_service_pb2.LoginRequest(email=email, password=mesh.options.demo_password),
            timeout=10,
        )
    return (("authorization", f"Bearer {login.access_token}"),)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment)
    return value


def seed_catalog(mesh: Mesh) -> int:
    """Create the demo catalog unless the seller already has products; returns how many."""
    seller = _login(mesh, SELLER_EMAIL)
    with mesh.operator_channel("product") as channel:
        products = product_service_pb2_grpc.ProductServiceStub(channel)
        me = user_id_of(seller[0][1].removeprefix("Bearer "))
        existing = products.SearchProducts(
            product_service_pb2.SearchProductsRequest(seller_id=me, page_size=1), timeout=10
        )
        if existing.total_size > 0:
            return 0
        admin, buyer = _login(mesh, ADMIN_EMAIL), _login(mesh, BUYER_EMAIL)
        _seed_categories(products, admin)
        with ThreadPoolExecutor(PARALLEL_CALLS) as pool:
            created = list(
                pool.map(lambda message: _create(products, seller, message), demo_products())
            )
            now = datetime.now(UTC)
            calls: list[Any] = []
            for index, product in enumerate(created):
                percent = demo_discount_percent(index)
                if percent:
                    calls.append(
                        pool.submit(_discount, products, seller, product.product_id, percent, now)
                    )
                for reviewer, stars in zip((admin, buyer), demo_ratings(index), strict=False):
                    calls.append(
                        pool.submit(_review, products, reviewer, product.product_id, stars)
                    )
            for call in calls:
                call.result()
    return len(created)


def _seed_categories(
    products: product_service_pb2_grpc.ProductServiceStub, admin: tuple[tuple[str, str], ...]
) -> None:
    for category in demo_categories():  # parents come first, so they exist for children
        try:
            products.CreateCategory(
                product_service_pb2.CreateCategoryRequest(category=category),
                metadata=admin,
                timeout=10,
            )
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                raise


def _create(
    products: product_service_pb2_grpc.ProductServiceStub,
    seller: tuple[tuple[str, str], ...],
    message: product_pb2.Product,
) -> product_pb2.Product:
    request = product_service_pb2.CreateProductRequest(product=message, publish=True)
    response: product_pb2.Product = products.CreateProduct(request, metadata=seller, timeout=10)
    return response


def _discount(
    products: product_service_pb2_grpc.ProductServiceStub,
    seller: tuple[tuple[str, str], ...],
    product_id: str,
    percent: int,
    now: datetime,
) -> None:
    products.CreateDiscount(
        product_service_pb2.CreateDiscountRequest(
            product_id=product_id,
            discount=product_pb2.Discount(
                percent_off=percent,
                start_time=_stamp(now - timedelta(days=1)),
                end_time=_stamp(now + timedelta(days=30)),
            ),
        ),
        metadata=seller,
        timeout=10,
    )


def _review(
    products: product_service_pb2_grpc.ProductServiceStub,
    reviewer: tuple[tuple[str, str], ...],
    product_id: str,
    stars: int,
) -> None:
    title, body = REVIEW_TEXTS[stars]
    products.CreateReview(
        product_service_pb2.CreateReviewRequest(
            product_id=product_id,
            review=product_pb2.Review(rating=stars, title=title, body=body),
        ),
        metadata=reviewer,
        timeout=10,
    )


def user_id_of(access_token: str) -> str:
    """The subject of a token the mesh itself just received (no verification needed here)."""
    import jwt

    return str(jwt.decode(access_token, options={"verify_signature": False})["sub"])
