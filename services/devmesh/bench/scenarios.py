"""The scenarios R1 to R6 and search, each a ratio measured against its baseline."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import argon2
import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.devmesh.bench.loads import Load, run_load, run_paced
from services.devmesh.bench.native import EchoServer, h2load_grpc, profiled, wrk_get
from services.devmesh.bench.ratios import Ratio
from services.devmesh.bench.sql import (
    ORDERS_DB,
    asyncpg_replay,
    capture_checkout_sql,
    pgbench,
    pgbench_script,
)
from services.devmesh.mesh import Mesh
from services.user.config import Settings as UserSettings

GET_PRODUCT = "/marketplace.product.v1.ProductService/GetProduct"
CONCURRENCY = 16
# The product cache's key prefix (services/product/adapters/cache.py).
CACHE_PREFIX = "product:doc:"


@dataclass
class Bench:
    """One mesh, its clients, and the ratios filled in by each repetition."""

    mesh: Mesh
    calls: int
    concurrency: int = CONCURRENCY
    ratios: dict[str, Ratio] = field(default_factory=dict)
    figures: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Where py-spy profiles go (a pass of their own, before the measured ones); None: none.
    profile_dir: Path | None = None
    repetition: int = 0

    def profile(self, service: str, scenario: str) -> Any:
        """Profile `service` during `scenario` of the profiling pass, when asked to."""
        if self.profile_dir is None or self.repetition != -1:
            return profiled(None, None)
        process = self.mesh.services[service].process
        output = self.profile_dir / f"{scenario}-{service}.txt"
        self.figures.setdefault("profiles", []).append(str(output))
        return profiled(process.pid if process else None, output)

    async def setup(self) -> None:
        """Sign in, pick products with stock, open channels and clients."""
        mesh = self.mesh
        self.user_channel = grpc.aio.secure_channel(
            mesh.services["user"].target, mesh.operator_credentials()
        )
        self.users = user_service_pb2_grpc.UserServiceStub(self.user_channel)
        login = await self.users.Login(self.login_request())
        self.auth = (("authorization", f"Bearer {login.access_token}"),)
        self.product_channel = grpc.aio.secure_channel(
            mesh.services["product"].target, mesh.operator_credentials()
        )
        self.products = product_service_pb2_grpc.ProductServiceStub(self.product_channel)
        self.order_channel = grpc.aio.secure_channel(
            mesh.services["order"].target, mesh.operator_credentials()
        )
        self.orders = order_service_pb2_grpc.OrderServiceStub(self.order_channel)
        ids: list[str] = []
        token = ""
        while True:
            page = await self.products.SearchProducts(
                product_service_pb2.SearchProductsRequest(
                    page_size=100, in_stock_only=True, page_token=token
                )
            )
            ids += [p.product_id for p in page.products if p.stock_available > 20]
            token = page.next_page_token
            if not token:
                break
        self.ids = ids
        self.mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mesh.mongo_url)
        self.collection = self.mongo["marketplace_products"]["products"]
        self.redis = Redis.from_url(mesh.redis_url)
        self.http = aiohttp.ClientSession(base_url=mesh.edge_url)
        self.state = Path(tempfile.mkdtemp(prefix="bench-", dir=mesh.state_dir))

    async def close(self) -> None:
        """Close every client."""
        for channel in (self.user_channel, self.product_channel, self.order_channel):
            await channel.close()
        await self.mongo.close()
        await self.redis.aclose()
        await self.http.close()

    def ratio(self, key: str, meaning: str, unit: str, *, lower: bool = False) -> Ratio:
        """The ratio called `key`, created on first use."""
        return self.ratios.setdefault(key, Ratio(key, meaning, unit, lower))

    def login_request(self) -> user_service_pb2.LoginRequest:
        """The demo buyer's sign-in."""
        return user_service_pb2.LoginRequest(
            email="buyer@example.com", password=self.mesh.options.demo_password
        )

    async def get(self, i: int) -> None:
        """One direct GetProduct."""
        await self.products.GetProduct(
            product_service_pb2.GetProductRequest(product_id=self.ids[i % len(self.ids)]),
            timeout=10,
        )

    async def place(self, i: int) -> None:
        """One checkout of one unit."""
        await self.orders.CreateOrder(
            order_service_pb2.CreateOrderRequest(
                items=[order_pb2.OrderItem(product_id=self.ids[i % len(self.ids)], quantity=1)],
                shipping_address=order_pb2.ShippingAddress(
                    recipient_name="Bench", line1="1 Main St", city="Springfield", country_code="US"
                ),
                payment_method_token="tok_visa",
            ),
            metadata=(*self.auth, ("idempotency-key", str(uuid.uuid4()))),
            timeout=30,
        )

    async def login(self, i: int) -> None:
        """One sign-in of the demo buyer."""
        await self.users.Login(self.login_request(), timeout=60)

    # R1 ---------------------------------------------------------------------------------
    async def r1(self, echo: EchoServer, plaintext_echo: EchoServer, body: Path) -> None:
        """Cached GetProduct / the bare server (Python client; h2load beside it).

        The services serve only mTLS, so the bare server does too, with the product
        service's certificate and the same client certificate: the ratio then counts the
        service's own work, not the transport the mesh requires. The same calls to a
        plaintext bare server are reported beside it (R1/plaintext) to show what mTLS costs.
        """
        ratio = self.ratio("R1", "GetProduct cache hit / bare grpc.aio mTLS server", "calls/s")
        await run_load(len(self.ids), self.concurrency, self.get)  # every product cached
        channel = grpc.aio.secure_channel(echo.target, self.mesh.operator_credentials())
        plaintext = grpc.aio.insecure_channel(plaintext_echo.target)
        bare: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GET_PRODUCT)
        bare_plaintext: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = plaintext.unary_unary(
            GET_PRODUCT
        )

        async def bare_get(i: int) -> None:
            await bare(b"", timeout=10)

        async def bare_plaintext_get(i: int) -> None:
            await bare_plaintext(b"", timeout=10)

        with self.profile("product", "R1-cache-hit"):
            service = await run_load(self.calls, self.concurrency, self.get)
        baseline = await run_load(self.calls, self.concurrency, bare_get)
        without_tls = await run_load(self.calls, self.concurrency, bare_plaintext_get)
        await channel.close()
        await plaintext.close()
        ratio.add(service.rate, baseline.rate, service, baseline)
        self.ratio("R1/plaintext", "R1 against a plaintext bare server", "calls/s").add(
            service.rate, without_tls.rate
        )
        native_service = h2load_grpc(
            self.mesh.services["product"].target, GET_PRODUCT, body, self.calls, self.concurrency
        )
        native_bare = h2load_grpc(echo.target, GET_PRODUCT, body, self.calls, self.concurrency)
        if native_service and native_bare:
            self.ratio("R1/h2load", "R1 with h2load as the client", "calls/s").add(
                native_service.rate, native_bare.rate
            )

    # R2 ---------------------------------------------------------------------------------
    async def r2(self) -> None:
        """GetProduct on a miss / find_one by id; both unlink the cache entry first."""
        ratio = self.ratio("R2", "GetProduct cache miss / bare find_one by id", "calls/s")
        calls = max(100, self.calls // 4)

        async def miss(i: int) -> None:
            await self.redis.unlink(CACHE_PREFIX + self.ids[i % len(self.ids)])
            await self.get(i)

        async def find(i: int) -> None:
            product_id = self.ids[i % len(self.ids)]
            await self.redis.unlink(CACHE_PREFIX + "bench-none")
            if await self.collection.find_one({"_id": product_id}) is None:
                raise RuntimeError(f"product {product_id} is not in the collection")

        with self.profile("product", "R2-cache-miss"):
            service = await run_load(calls, self.concurrency, miss)
        baseline = await run_load(calls, self.concurrency, find)
        ratio.add(service.rate, baseline.rate, service, baseline)

    # R3 ---------------------------------------------------------------------------------
    async def r3(self, seconds: int) -> None:
        """CreateOrder / pgbench replaying one checkout's order-database SQL."""
        ratio = self.ratio("R3", "CreateOrder / pgbench replay of its SQL", "checkouts/s")
        if "checkout_sql" not in self.figures:
            captured = await capture_checkout_sql(self.mesh, self.place)
            script = pgbench_script(captured.statements)
            (self.state / "checkout.pgbench.sql").write_text(script)
            self.script = script
            self.figures["checkout_sql"] = {
                "round_trips_per_checkout": round(captured.round_trips_per_checkout, 1),
                "transactions_per_checkout": round(captured.transactions_per_checkout, 1),
                "statements_replayed": len(captured.statements),
                "script": str(self.state / "checkout.pgbench.sql"),
            }
        calls = max(40, self.calls // 20)
        with (
            self.profile("order", "R3-checkout-order"),
            self.profile("product", "R3-checkout-product"),
        ):
            service = await run_load(calls, self.concurrency, self.place)
        database = f"{self.mesh.postgres_url}/{ORDERS_DB}?sslmode=disable"
        baseline = pgbench(database, self.script, seconds, self.concurrency)
        if baseline is None:
            ratio.notes.append("pgbench failed: the floor is an asyncpg replay of the same SQL")
            baseline = await asyncpg_replay(database, self.script, seconds, self.concurrency)
        self.figures.setdefault("R3_floor_tool", baseline.tool)
        ratio.add(service.rate, baseline.rate, service)

    # R4 ---------------------------------------------------------------------------------
    async def r4(self) -> None:
        """REST via Envoy / direct gRPC, both cached reads."""
        ratio = self.ratio("R4", "GetProduct REST edge / direct gRPC", "calls/s")

        async def rest(i: int) -> None:
            async with self.http.get(f"/v1/products/{self.ids[i % len(self.ids)]}") as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"REST GetProduct answered {response.status}")

        edge = await run_load(self.calls, self.concurrency, rest)
        direct = await run_load(self.calls, self.concurrency, self.get)
        ratio.add(edge.rate, direct.rate, edge, direct)

    def r4_native(self, body: Path) -> None:
        """Wrk on the REST edge / h2load on direct gRPC."""
        direct = h2load_grpc(
            self.mesh.services["product"].target, GET_PRODUCT, body, self.calls, self.concurrency
        )
        edge = wrk_get(f"{self.mesh.edge_url}/v1/products/{self.ids[0]}", 3, self.concurrency)
        if direct and edge:
            self.ratio("R4/native", "R4 with wrk (REST) and h2load (gRPC)", "calls/s").add(
                edge.rate, direct.rate
            )

    # R5 ---------------------------------------------------------------------------------
    async def r5(self) -> None:
        """Login / raw argon2id verifies with the service's parameters, same concurrency."""
        ratio = self.ratio("R5", "Login / raw argon2id verify", "verifies/s")
        defaults = UserSettings.model_fields
        hasher = argon2.PasswordHasher(
            time_cost=int(defaults["password_time_cost"].default),
            memory_cost=int(defaults["password_memory_kib"].default),
            parallelism=int(defaults["password_parallelism"].default),
        )
        password = self.mesh.options.demo_password
        stored = hasher.hash(password)
        # Fewer in flight than the reads: each verify is ~0.1 s of a core, and 16 of them
        # queued on 2 cores would only measure the queue.
        calls, concurrency = 16, 4
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(concurrency) as pool:

            async def verify(i: int) -> None:
                await loop.run_in_executor(pool, hasher.verify, stored, password)

            with self.profile("user", "R5-login"):
                service = await run_load(calls, concurrency, self.login)
            baseline = await run_load(calls, concurrency, verify)
        ratio.add(service.rate, baseline.rate, service)

    # R6 ---------------------------------------------------------------------------------
    async def r6(self, rate: float = 200.0, seconds: float = 3.0) -> None:
        """GetProduct p99 at `rate` during 8 sign-ins + 8 checkouts / alone (lower is better).

        At most half the cached-read rate R1 measured: past capacity both tails are the
        queue (the deadline, on a machine shared with other work), and the ratio says nothing.
        Each half of the burst is also measured on its own (R6/logins, R6/checkouts), to
        tell which of them the reads suffer from.
        """
        if self.ratios.get("R1") and self.ratios["R1"].numerators:
            rate = min(rate, max(10.0, self.ratios["R1"].numerators[-1] / 2))
        self.figures["R6_rate_per_s"] = round(rate, 1)
        alone = await run_paced(rate, seconds, self.get)
        bursts = (("R6", 8, 8), ("R6/logins", 8, 0), ("R6/checkouts", 0, 8))
        for key, logins, checkouts in bursts:
            during = await self._during_burst(rate, seconds, logins, checkouts)
            meaning = f"GetProduct p99 during {logins} sign-ins + {checkouts} checkouts / alone"
            ratio = self.ratio(key, meaning, "ms", lower=True)
            ratio.add(during.percentile(0.99), alone.percentile(0.99), during, alone)

    async def _during_burst(self, rate: float, seconds: float, logins: int, checkouts: int) -> Load:
        """The reads at `rate` while `logins` sign-ins and `checkouts` checkouts run at once."""

        async def burst() -> None:
            await asyncio.sleep(seconds / 4)
            outcomes = await asyncio.gather(
                *(self.login(i) for i in range(logins)),
                *(self.place(20_000 + i) for i in range(checkouts)),
                return_exceptions=True,
            )
            # A burst call that fails is a finding, not a broken bench: count it.
            failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
            self.figures.setdefault("R6_burst_failures", []).append(len(failed))
            if failed:
                total = logins + checkouts
                self.notes.append(f"R6 burst: {len(failed)} of {total} calls failed: {failed[0]}")

        during, _ = await asyncio.gather(run_paced(rate, seconds, self.get), burst())
        return during

    # Search -----------------------------------------------------------------------------
    async def search(self) -> None:
        """SearchProducts: a text query, and a category + attribute filter with facets."""
        calls = max(50, self.calls // 10)

        async def text(i: int) -> None:
            await self.products.SearchProducts(
                product_service_pb2.SearchProductsRequest(query="wireless", page_size=20),
                timeout=10,
            )

        async def facets(i: int) -> None:
            await self.products.SearchProducts(
                product_service_pb2.SearchProductsRequest(
                    category="electronics", in_stock_only=True, page_size=20
                ),
                timeout=10,
            )

        for name, call in (("search_text", text), ("search_facets", facets)):
            load = await run_load(calls, self.concurrency, call)
            entry = self.figures.setdefault(name, {"rates": [], "p99_ms": []})
            entry["rates"].append(load.rate)
            entry["p99_ms"].append(load.percentile(0.99))
