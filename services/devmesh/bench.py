"""`nox -s bench`: throughput and latency of the running mesh, direct gRPC against the edge.

A bounded grpc.aio/aiohttp load script (no ghz on these machines): each scenario runs a fixed
number of calls with a fixed concurrency and reports calls per second and latency
percentiles, then the ratios that matter (what the edge costs, what a write costs).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from services.devmesh.edge import EdgeSettings
from services.devmesh.mesh import Mesh, MeshOptions
from services.devmesh.processes import free_port


@dataclass(frozen=True)
class Result:
    """What one scenario measured."""

    name: str
    calls: int
    seconds: float
    latencies_ms: list[float]

    @property
    def rate(self) -> float:
        """Calls per second."""
        return self.calls / self.seconds

    def percentile(self, q: float) -> float:
        """Latency at quantile q, in milliseconds."""
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(
    name: str, calls: int, concurrency: int, call: Callable[[int], Awaitable[None]]
) -> Result:
    """Run `call(i)` for i in range(calls) with at most `concurrency` in flight."""
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await call(i)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    return Result(name, calls, time.perf_counter() - started, latencies)


async def scenarios(mesh: Mesh, calls: int, concurrency: int) -> list[Result]:
    """The measured scenarios, in a fixed order."""
    user = grpc.aio.secure_channel(mesh.services["user"].target, mesh.operator_credentials())
    login = await user_service_pb2_grpc.UserServiceStub(user).Login(
        user_service_pb2.LoginRequest(
            email="buyer@example.com", password=mesh.options.demo_password
        )
    )
    await user.close()
    auth = (("authorization", f"Bearer {login.access_token}"),)
    product_channel = grpc.aio.secure_channel(
        mesh.services["product"].target, mesh.operator_credentials()
    )
    products = product_service_pb2_grpc.ProductServiceStub(product_channel)
    page = await products.SearchProducts(product_service_pb2.SearchProductsRequest(page_size=50))
    ids = [p.product_id for p in page.products if p.stock_available > 20]
    results: list[Result] = []

    async def grpc_get(i: int) -> None:
        await products.GetProduct(
            product_service_pb2.GetProductRequest(product_id=ids[i % len(ids)]), timeout=10
        )

    results.append(await run("GetProduct, gRPC direct", calls, concurrency, grpc_get))

    async with aiohttp.ClientSession(base_url=mesh.edge_url) as http:

        async def rest_get(i: int) -> None:
            async with http.get(f"/v1/products/{ids[i % len(ids)]}") as response:
                await response.read()
                assert response.status == 200

        results.append(await run("GetProduct, REST via Envoy", calls, concurrency, rest_get))

    async def grpc_search(i: int) -> None:
        await products.SearchProducts(
            product_service_pb2.SearchProductsRequest(query="wireless", page_size=20), timeout=10
        )

    results.append(await run("SearchProducts text, gRPC", calls // 2, concurrency, grpc_search))

    order_channel = grpc.aio.secure_channel(
        mesh.services["order"].target, mesh.operator_credentials()
    )
    orders = order_service_pb2_grpc.OrderServiceStub(order_channel)

    async def place(i: int) -> None:
        await orders.CreateOrder(
            order_service_pb2.CreateOrderRequest(
                items=[order_pb2.OrderItem(product_id=ids[i % len(ids)], quantity=1)],
                shipping_address=order_pb2.ShippingAddress(
                    recipient_name="Bench", line1="1 Main St", city="Springfield", country_code="US"
                ),
                payment_method_token="tok_visa",
            ),
            metadata=(*auth, ("idempotency-key", uuid.uuid4().hex)),
            timeout=30,
        )

    results.append(await run("CreateOrder saga, gRPC", max(20, calls // 20), concurrency, place))
    await product_channel.close()
    await order_channel.close()
    return results


def report(results: list[Result]) -> None:
    """Print a table and the ratios."""
    print(f"{'scenario':34} {'calls':>6} {'calls/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    for r in results:
        print(
            f"{r.name:34} {r.calls:6d} {r.rate:9.1f} {r.percentile(0.5):8.2f} {r.percentile(0.99):8.2f}"
        )
    direct, edge = results[0], results[1]
    print(f"\nedge/direct throughput ratio: {edge.rate / direct.rate:.2f}")
    print(f"edge/direct p50 latency ratio: {edge.percentile(0.5) / direct.percentile(0.5):.2f}")
    print(
        f"read/write throughput ratio (GetProduct/CreateOrder): {direct.rate / results[3].rate:.1f}"
    )
    print(f"mean GetProduct latency: {statistics.mean(direct.latencies_ms):.2f} ms")


def main() -> int:
    """Start a mesh (no payment latency), run the scenarios, print the figures."""
    calls = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-bench-"))
    state_dir.chmod(0o755)
    options = MeshOptions(
        state_dir=state_dir,
        edge_port=free_port(),
        payment_latency_ms=0,
        rate_limit_burst=100_000,
        rate_limit_per_second=100_000,
        # One client drives all the load: lift the per-client and per-user buckets too.
        edge=EdgeSettings(
            client_rate_limit_burst=100_000,
            client_rate_limit_per_second=100_000,
            user_rate_limit_burst=100_000,
            user_rate_limit_per_second=100_000,
        ),
    )
    with Mesh(options) as mesh:
        report(asyncio.run(scenarios(mesh, calls, concurrency=16)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
