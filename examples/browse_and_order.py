"""Sign in as the demo buyer, search, place an order with an automatic key, page through orders.

Run against `uvx nox -s up` (the defaults) or any mesh:

    uv run python examples/browse_and_order.py --user 127.0.0.1:50051 \
        --product 127.0.0.1:50052 --order 127.0.0.1:50053

The password comes from MARKETPLACE_DEMO_PASSWORD (what `nox -s up` printed). The services
speak mTLS only: the example presents the operator's certificate from the dev mesh's
`.mesh/tls/` (MARKETPLACE_TLS_DIR).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from marketplace.order.v1 import order_pb2
from marketplace_client import MarketplaceClient, MarketplaceError


async def main(args: argparse.Namespace) -> int:
    """Browse, order and list; prints one line per step."""
    async with MarketplaceClient.connect(
        args.user,
        product_target=args.product,
        order_target=args.order,
        email=args.email,
        password=args.password,
        ca_file=args.tls_dir / "ca.pem",
        cert_file=args.tls_dir / "operator.pem",
        key_file=args.tls_dir / "operator-key.pem",
    ) as client:
        me = await client.me()
        print(f"signed in as {me.username} ({me.user_id})")
        found = []
        async for product in client.search_products(args.query, page_size=5, in_stock_only=True):
            found.append(product)
            if len(found) == 10:
                break
        print(f"{len(found)} products match {args.query!r}")
        if not found:
            return 1
        product = found[0]
        address = order_pb2.ShippingAddress(
            recipient_name=me.display_name or me.username,
            line1="1 Example Street",
            city="Springfield",
            country_code="US",
        )
        try:
            # No idempotency key given: the client makes one and sends it with every retry.
            order = await client.create_order(
                [(product.product_id, 1)],
                shipping_address=address,
                payment_method_token="tok_visa",
            )
        except MarketplaceError as error:
            print(f"order refused: {error.reason or error.code.name}: {error.message}")
            return 1
        print(
            f"ordered {product.title!r}: {order.order_id} {order_pb2.OrderStatus.Name(order.status)}"
        )
        count = 0
        async for _ in client.list_orders(page_size=2):
            count += 1
        print(f"{count} orders in all, read two per page")
    return 0


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; addresses default to `nox -s up`'s ports."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--user", default=os.environ.get("MARKETPLACE_USER_GRPC", "127.0.0.1:50051")
    )
    parser.add_argument(
        "--product", default=os.environ.get("MARKETPLACE_PRODUCT_GRPC", "127.0.0.1:50052")
    )
    parser.add_argument(
        "--order", default=os.environ.get("MARKETPLACE_ORDER_GRPC", "127.0.0.1:50053")
    )
    parser.add_argument("--email", default=os.environ.get("MARKETPLACE_EMAIL", "buyer@example.com"))
    parser.add_argument("--password", default=os.environ.get("MARKETPLACE_DEMO_PASSWORD", ""))
    parser.add_argument("--query", default="headphones")
    parser.add_argument(
        "--tls-dir", type=Path, default=Path(os.environ.get("MARKETPLACE_TLS_DIR", ".mesh/tls"))
    )
    return parser.parse_args(argv)


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(parse())))
