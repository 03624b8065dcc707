"""The fault suite's tools: REST accounts, bounded checkout load, a gateway tap and a stall."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from services.devmesh.processes import ManagedProcess
from tests.support.edge import register

DEMO_PASSWORD = "faults-demo-password"
CATEGORY = "faults"
# How long a client keeps retrying one checkout with its key, as an operator would; the
# issue asks for a final answer within about 15 s after an order-service crash.
RETRY_BUDGET_SECONDS = 30.0
# Gateway calls time out after ORDER_PAYMENT_TIMEOUT_SECONDS (5 s by default); a stall
# longer than that is what turns an outcome unknown.
STALL_SECONDS = 8.0
# Answers an operator retries with the same key: the edge or a dependency was away.
FINAL_VERDICTS = frozenset({"PAYMENT_UNAVAILABLE", "ORDER_INTERRUPTED"})
RETRYABLE = {409, 429, 500, 502, 503, 504}
ADDRESS = {
    "recipientName": "Fault Buyer",
    "line1": "1 Main Street",
    "city": "Springfield",
    "postalCode": "12345",
    "countryCode": "US",
}


@dataclass(frozen=True)
class Account:
    """A signed-in user of the REST edge."""

    user_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


def login(edge: httpx.Client, email: str, password: str) -> Account:
    """Sign in over REST, retrying while the user service comes back from a fault."""
    deadline = time.monotonic() + 60
    while True:
        try:
            response = edge.post("/v1/auth/login", json={"email": email, "password": password})
            if response.status_code == 200:
                token = response.json()["accessToken"]
                me = edge.get("/v1/users/me", headers={"Authorization": f"Bearer {token}"})
                if me.status_code == 200:
                    return Account(str(me.json()["userId"]), token)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"cannot sign in {email}")
        time.sleep(0.5)


def new_buyer(edge: httpx.Client) -> Account:
    """A freshly registered, signed-in buyer."""
    password = "correct-horse-battery"
    email, _ = register(edge, password)
    return login(edge, email, password)


def create_product(edge: httpx.Client, seller: Account, stock: int, price: int = 20) -> str:
    """A published product of the demo seller; returns its id."""
    response = edge.post(
        "/v1/products",
        headers=seller.headers,
        json={
            "product": {
                "title": f"Fault Lamp {uuid.uuid4().hex[:8]}",
                "description": "A lamp that lives through faults.",
                "category": CATEGORY,
                "listPrice": {"currencyCode": "USD", "units": price},
                "initialStock": stock,
            },
            "publish": True,
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["productId"])


def ensure_category(edge: httpx.Client, admin: Account) -> None:
    """The category the suite's products are listed under."""
    response = edge.post(
        "/v1/categories",
        headers=admin.headers,
        json={"categoryId": CATEGORY, "displayName": "Fault lamps"},
    )
    assert response.status_code in (200, 409), response.text


def minor(money: dict[str, Any] | None) -> int:
    """Money as JSON (google.type.Money) in cents."""
    if not money:
        return 0
    return int(money.get("units", 0)) * 100 + int(money.get("nanos", 0)) // 10_000_000


@dataclass
class Checkout:
    """One checkout as a client saw it: every attempt with the same Idempotency-Key."""

    key: str
    buyer: Account
    product_id: str
    quantity: int = 1
    answers: list[int] = field(default_factory=list)  # 0 for no answer (connection, timeout)
    order_id: str | None = None
    reason: str = ""
    final: bool = False
    started: float = 0.0
    ended: float = 0.0

    @property
    def status(self) -> int:
        """The last answer's HTTP status (0 when nothing answered)."""
        return self.answers[-1] if self.answers else 0

    @property
    def retried(self) -> bool:
        """Whether the client had to send the key more than once."""
        return len(self.answers) > 1


def post_order(client: httpx.Client, checkout: Checkout) -> None:
    """Send the checkout once and record the answer."""
    try:
        response = client.post(
            "/v1/orders",
            headers={**checkout.buyer.headers, "Idempotency-Key": checkout.key},
            json={
                "items": [{"productId": checkout.product_id, "quantity": checkout.quantity}],
                "shippingAddress": ADDRESS,
                "paymentMethodToken": "tok_visa",
            },
        )
    except httpx.TransportError:
        checkout.answers.append(0)
        return
    checkout.answers.append(response.status_code)
    body: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        body = response.json()
    if response.status_code == 200:
        checkout.order_id, checkout.final = str(body["orderId"]), True
        return
    details = body.get("details") or [{}]
    checkout.reason = str(next((d.get("reason") for d in details if d.get("reason")), ""))
    # The service's own verdicts "cancelled, nothing charged (or refunded in full): use a
    # new key" are final too, at the saga's end or the reconciler's; the invariants check
    # that they were true.
    if response.status_code not in RETRYABLE or checkout.reason in FINAL_VERDICTS:
        checkout.final = True


def run_checkout(client: httpx.Client, checkout: Checkout, budget: float) -> None:
    """Send the key until a final answer or the retry budget ends, backing off in between."""
    checkout.started = time.monotonic()
    delay = 0.25
    while True:
        post_order(client, checkout)
        if checkout.final or time.monotonic() - checkout.started > budget:
            break
        time.sleep(delay)
        delay = min(2.0, delay * 2)
    checkout.ended = time.monotonic()


class Load:
    """A few concurrent clients, each placing a bounded number of checkouts in a row."""

    def __init__(
        self,
        edge_url: str,
        buyers: list[Account],
        products: list[str],
        *,
        per_client: int = 5,
        budget: float = RETRY_BUDGET_SECONDS,
    ) -> None:
        self.checkouts = [
            Checkout(uuid.uuid4().hex, buyer, products[(b + i) % len(products)])
            for b, buyer in enumerate(buyers)
            for i in range(per_client)
        ]
        self._edge_url = edge_url
        self._per_client = per_client
        self._budget = budget
        self._threads = [
            threading.Thread(target=self._client, args=(b,), daemon=True)
            for b in range(len(buyers))
        ]
        self.ended = 0.0

    def _client(self, index: int) -> None:
        mine = self.checkouts[index * self._per_client : (index + 1) * self._per_client]
        with httpx.Client(base_url=self._edge_url, timeout=20) as client:
            for checkout in mine:
                run_checkout(client, checkout, self._budget)
                # Paced, so the load spans the fault and the recovery after it.
                time.sleep(0.5)

    def start(self) -> Load:
        """Start every client."""
        for thread in self._threads:
            thread.start()
        return self

    def wait_finished(self, count: int, timeout: float = 60) -> None:
        """Wait until `count` checkouts have a final answer (the moment to strike)."""
        deadline = time.monotonic() + timeout
        while sum(c.final for c in self.checkouts) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def join(self) -> None:
        """Wait for every client; bounded by the checkouts' retry budget."""
        for thread in self._threads:
            thread.join(self._per_client * (self._budget + 25))
        self.ended = time.monotonic()


def wait_running(process: ManagedProcess, old_pid: int | None, timeout: float = 90) -> None:
    """Wait until the supervisor has the process back (a new pid, serving)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.pid != old_pid and process.state == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"{process.name} was not restarted ({process.state})")


@contextlib.contextmanager
def stalled(process: ManagedProcess, *, group: bool = False) -> Iterator[None]:
    """SIGSTOP the process (or its whole process group) for the block, SIGCONT after."""
    pid = process.pid
    assert pid is not None
    send: Callable[[int, int], None] = os.killpg if group else os.kill
    send(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            send(pid, signal.SIGCONT)


class GatewayTap:
    """A loopback TCP relay between the order service and the gateway, to time stalls.

    The order service is pointed at the tap (ORDER_PAYMENT_GATEWAY_URL). Once armed with a
    request marker (b"POST /v1/authorizations " or b"/capture "), the first request carrying
    it passes, the gateway does the work, and the moment its answer comes back `on_match`
    runs (the test SIGSTOPs the gateway there): the answer waits, as it would in a stopped
    process's socket, until `release()` (after SIGCONT). So the call's outcome is decided at
    the gateway but unknown to the order service, which times out: the issue's case. Bytes
    are never altered or dropped.
    """

    def __init__(self, port: int, upstream: Callable[[], tuple[str, int]]) -> None:
        self.port = port
        self._upstream = upstream
        self._marker: bytes | None = None
        self._on_match: Callable[[], None] = lambda: None
        self._lock = threading.Lock()
        self.matched = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def arm(self, marker: bytes, on_match: Callable[[], None]) -> None:
        """Call `on_match` once, when the answer to the next request carrying `marker` comes."""
        with self._lock:
            self.matched.clear()
            self._released.clear()
            self._marker, self._on_match = marker, on_match

    def release(self) -> None:
        """Let the held answer go on (the gateway resumed)."""
        self._released.set()

    def close(self) -> None:
        """Stop accepting connections and let anything held go."""
        self._closed = True
        self._released.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self._upstream(), timeout=5)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        peers = {client: upstream, upstream: client}
        marked = False  # this connection carries the marked request; hold its answer
        try:
            while True:
                readable, _, _ = select.select(list(peers), [], [], 1.0)
                if self._closed:
                    return
                for source in readable:
                    data = source.recv(65536)
                    if not data:
                        return
                    if source is client:
                        marked = marked or self._claims(data)
                    elif marked:
                        marked = False
                        self._stall()
                    peers[source].sendall(data)
        except OSError:
            return
        finally:
            client.close()
            upstream.close()

    def _claims(self, data: bytes) -> bool:
        with self._lock:
            if self._marker is None or self._marker not in data:
                return False
            self._marker = None
            return True

    def _stall(self) -> None:
        with self._lock:
            on_match = self._on_match
        on_match()
        self.matched.set()
        self._released.wait(60)
