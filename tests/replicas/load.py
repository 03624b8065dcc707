"""Bounded read load through the edge, over REST and gRPC, counting every failed read."""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

import grpc
import httpx
from marketplace.order.v1 import order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc

from services.devmesh.mesh import Mesh, ServiceEndpoint
from tests.faults.harness import Account

# A read that outlives this is a failure: long enough for a call caught by a stalled
# replica to finish once it resumes, short enough to bound the case.
READ_TIMEOUT_SECONDS = 20.0


@dataclass
class ReadLoad:
    """Threads reading from every service through the edge until stopped; failures listed."""

    edge_url: str
    edge_grpc: str
    buyer: Account
    product_id: str
    pause: float = 0.02
    reads: int = 0
    failures: list[str] = field(default_factory=list)
    slowest: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> ReadLoad:
        """Two REST and two gRPC readers: one caught by a stalled replica leaves three going."""
        self._threads = [
            threading.Thread(target=reader, daemon=True)
            for reader in (self._rest, self._grpc, self._rest, self._grpc)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> ReadLoad:
        """Stop reading and wait for the readers."""
        self._stop.set()
        for thread in self._threads:
            thread.join(READ_TIMEOUT_SECONDS + 5)
        return self

    def _record(self, what: str, started: float, failure: str | None) -> None:
        with self._lock:
            self.reads += 1
            self.slowest = max(self.slowest, time.monotonic() - started)
            if failure is not None:
                self.failures.append(f"{what}: {failure}")

    def _rest(self) -> None:
        paths = [f"/v1/products/{self.product_id}", "/v1/users/me", "/v1/orders?page_size=5"]
        with httpx.Client(
            base_url=self.edge_url, timeout=READ_TIMEOUT_SECONDS, headers=self.buyer.headers
        ) as client:
            i = 0
            while not self._stop.is_set():
                path = paths[i % len(paths)]
                i += 1
                started = time.monotonic()
                try:
                    status = client.get(path).status_code
                    failure = None if status == 200 else f"HTTP {status}"
                except httpx.HTTPError as error:
                    failure = repr(error)
                self._record(f"GET {path}", started, failure)
                time.sleep(self.pause)

    def _grpc(self) -> None:
        auth = (("authorization", f"Bearer {self.buyer.token}"),)
        with grpc.insecure_channel(self.edge_grpc) as channel:
            products = product_service_pb2_grpc.ProductServiceStub(channel)
            users = user_service_pb2_grpc.UserServiceStub(channel)
            orders = order_service_pb2_grpc.OrderServiceStub(channel)
            calls: list[tuple[str, Callable[[], object]]] = [
                (
                    "GetProduct",
                    lambda: products.GetProduct(
                        product_service_pb2.GetProductRequest(product_id=self.product_id),
                        metadata=auth,
                        timeout=READ_TIMEOUT_SECONDS,
                    ),
                ),
                (
                    "GetUser",
                    lambda: users.GetUser(
                        user_service_pb2.GetUserRequest(user_id="me"),
                        metadata=auth,
                        timeout=READ_TIMEOUT_SECONDS,
                    ),
                ),
                (
                    "ListOrders",
                    lambda: orders.ListOrders(
                        order_service_pb2.ListOrdersRequest(page_size=5),
                        metadata=auth,
                        timeout=READ_TIMEOUT_SECONDS,
                    ),
                ),
            ]
            i = 0
            while not self._stop.is_set():
                name, call = calls[i % len(calls)]
                i += 1
                started = time.monotonic()
                try:
                    call()
                    failure = None
                except grpc.RpcError as error:
                    failure = f"{error.code()} {error.details()}"
                self._record(name, started, failure)
                time.sleep(self.pause)


_STARTED = re.compile(r"^grpc_server_started_total\{([^}]*)\} ([0-9.e+]+)$", re.MULTILINE)


def calls_served(endpoint: ServiceEndpoint) -> int:
    """RPCs of the service's own APIs (not health checks) the instance has started."""
    url = f"http://127.0.0.1:{endpoint.ops_port}/metrics"
    with urllib.request.urlopen(url, timeout=2) as response:
        text = response.read().decode()
    return int(
        sum(
            float(value)
            for labels, value in _STARTED.findall(text)
            if "marketplace." in labels and "grpc.health" not in labels
        )
    )


def wait_registered(mesh: Mesh, service: str, count: int, timeout: float = 15.0) -> float:
    """Wait until the edge's endpoint files list `count` instances of `service`; seconds taken."""
    assert mesh.publisher is not None
    started = time.monotonic()
    while len(mesh.publisher.published.get(service, [])) != count:
        assert time.monotonic() - started < timeout, (
            f"{service}: {len(mesh.publisher.published.get(service, []))} registered, not {count}"
        )
        time.sleep(0.05)
    return time.monotonic() - started


def host_flags(mesh: Mesh, service: str, port: int) -> str:
    """What the edge says of one endpoint (health_flags of its /clusters)."""
    url = f"http://127.0.0.1:{mesh.edge_admin_port}/clusters"
    with urllib.request.urlopen(url, timeout=2) as response:
        lines = response.read().decode().splitlines()
    prefix = f"{service}::127.0.0.1:{port}::health_flags::"
    return next((line.removeprefix(prefix) for line in lines if line.startswith(prefix)), "absent")
