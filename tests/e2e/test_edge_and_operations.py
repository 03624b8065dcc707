"""Operating the mesh: rate limits at the edge, grpcurl by reflection, health and shutdown."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from services.devmesh import edge as dev_edge
from services.devmesh import envoy_config, processes
from services.devmesh.mesh import Mesh, grpc_serving, http_status
from services.devmesh.tls import ensure_mesh_tls
from tests.support.edge import Account, create_product, stock_of

GRPCURL = processes.console_script("grpcurl")
DESCRIPTORS = str(envoy_config.DESCRIPTORS)


def grpcurl(mesh: Mesh, *args: str) -> subprocess.CompletedProcess[str]:
    """grpcurl straight to a service, as an operator: the mesh CA and the operator cert."""
    tls = mesh.mesh_tls()
    credentials = ["-cacert", str(tls.ca_path), "-cert", str(tls.operator.cert_path)]
    credentials += ["-key", str(tls.operator.key_path)]
    return subprocess.run(
        [GRPCURL, *credentials, *args], capture_output=True, text=True, timeout=30
    )


def grpcurl_edge(*args: str) -> subprocess.CompletedProcess[str]:
    """grpcurl to the edge's plain port, as any outside client."""
    return subprocess.run(
        [GRPCURL, "-plaintext", *args], capture_output=True, text=True, timeout=30
    )


def test_rate_limit_answers_429_with_a_json_body(mesh: Mesh) -> None:
    """A second edge with a tiny bucket, in front of the same services."""
    config = envoy_config.EdgeConfig(
        edge_port=processes.free_port(),
        admin_port=processes.free_port(),
        user_port=mesh.services["user"].grpc_port,
        user_ops_port=mesh.services["user"].ops_port,
        product_port=mesh.services["product"].grpc_port,
        order_port=mesh.services["order"].grpc_port,
        **dev_edge.upstream_tls(mesh),
        rate_limit_burst=5,
        rate_limit_per_second=1,
    )
    path = envoy_config.write(config, mesh.state_dir / "envoy-limited.yaml")
    edge = processes.start_envoy(mesh.state_dir, path, name="envoy-limited")
    url = f"http://127.0.0.1:{config.edge_port}"
    try:
        edge.wait_ready(lambda: http_status(f"{url}/healthz") == 200)
        with httpx.Client(base_url=url, timeout=10) as client:
            responses = [client.get("/v1/products", params={"page_size": 1}) for _ in range(20)]
    finally:
        edge.stop()
    codes = [r.status_code for r in responses]
    assert codes[:5] == [200] * 5
    limited = [r for r in responses if r.status_code == 429]
    assert len(limited) >= 10
    assert limited[0].json() == {"code": 429, "message": "local_rate_limited"}
    assert limited[0].headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("service", "full_name"),
    [
        ("user", "marketplace.user.v1.UserService"),
        ("product", "marketplace.product.v1.ProductService"),
        ("order", "marketplace.order.v1.OrderService"),
    ],
)
def test_grpcurl_lists_each_service_by_reflection(mesh: Mesh, service: str, full_name: str) -> None:
    listed = grpcurl(mesh, mesh.services[service].target, "list")
    assert listed.returncode == 0, listed.stderr
    names = listed.stdout.split()
    assert full_name in names
    assert "grpc.health.v1.Health" in names
    described = grpcurl(mesh, mesh.services[service].target, "describe", full_name)
    assert described.returncode == 0, described.stderr
    assert "rpc " in described.stdout


def test_grpcurl_calls_the_services(mesh: Mesh, seller: Account) -> None:
    search = grpcurl(
        mesh,
        "-d",
        json.dumps({"query": "", "page_size": 2}),
        mesh.services["product"].target,
        "marketplace.product.v1.ProductService/SearchProducts",
    )
    assert search.returncode == 0, search.stderr
    assert len(json.loads(search.stdout)["products"]) == 2

    me = grpcurl(
        mesh,
        "-H",
        f"authorization: Bearer {seller.access_token}",
        "-d",
        json.dumps({"user_id": "me"}),
        mesh.services["user"].target,
        "marketplace.user.v1.UserService/GetUser",
    )
    assert me.returncode == 0, me.stderr
    assert json.loads(me.stdout)["email"] == "seller@example.com"

    unauthenticated = grpcurl(
        mesh,
        "-d",
        "{}",
        mesh.services["order"].target,
        "marketplace.order.v1.OrderService/ListOrders",
    )
    assert unauthenticated.returncode != 0
    assert "Unauthenticated" in unauthenticated.stderr

    health = grpcurl(mesh, mesh.services["order"].target, "grpc.health.v1.Health/Check")
    assert json.loads(health.stdout)["status"] == "SERVING"


def test_native_grpc_through_the_edge(mesh: Mesh) -> None:
    """External gRPC clients reach the public services through Envoy with the descriptor set."""
    edge_target = mesh.edge_url.removeprefix("http://")
    search = grpcurl_edge(
        "-protoset",
        DESCRIPTORS,
        "-d",
        json.dumps({"page_size": 1}),
        edge_target,
        "marketplace.product.v1.ProductService/SearchProducts",
    )
    assert search.returncode == 0, search.stderr
    internal = grpcurl_edge(
        "-protoset",
        DESCRIPTORS,
        "-d",
        json.dumps({"order_id": str(uuid.uuid4())}),
        edge_target,
        "marketplace.product.v1.ProductInternalService/ReleaseReservation",
    )
    assert internal.returncode != 0  # internal services have no route at the edge


def test_metrics_count_calls_by_method_and_status(mesh: Mesh, edge: httpx.Client) -> None:
    edge.get(f"/v1/products/{uuid.uuid4()}")
    metrics = httpx.get(f"http://127.0.0.1:{mesh.services['product'].ops_port}/metrics").text
    assert 'grpc_method="GetProduct"' in metrics
    assert 'grpc_code="NOT_FOUND"' in metrics
    assert "grpc_server_handling_seconds_bucket" in metrics


def test_graceful_shutdown_drains_in_flight_orders(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    """SIGTERM: health turns NOT_SERVING, the in-flight order completes, the process exits 0."""
    product = create_product(edge, seller, stock=3)
    order_service = mesh.services["order"]
    assert order_service.process is not None
    outcome: dict[str, object] = {}

    def place() -> None:
        with grpc.secure_channel(order_service.target, mesh.operator_credentials()) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            try:
                outcome["order"] = stub.CreateOrder(
                    order_service_pb2.CreateOrderRequest(
                        items=[order_pb2.OrderItem(product_id=product["productId"], quantity=1)],
                        shipping_address=order_pb2.ShippingAddress(
                            recipient_name="Ada",
                            line1="1 Main St",
                            city="Springfield",
                            country_code="US",
                        ),
                        payment_method_token="tok_visa",
                    ),
                    metadata=(
                        ("authorization", f"Bearer {buyer.access_token}"),
                        ("idempotency-key", uuid.uuid4().hex),
                    ),
                    timeout=30,
                )
            except grpc.RpcError as error:
                outcome["error"] = error

    caller = threading.Thread(target=place)
    caller.start()
    time.sleep(0.15)  # inside the sandbox gateway's 300 ms latency
    order_service.process.signal(signal.SIGTERM)
    caller.join(30)
    assert "error" not in outcome, outcome.get("error")
    placed = outcome["order"]
    assert isinstance(placed, order_pb2.Order)
    assert placed.status == order_pb2.ORDER_STATUS_PAID
    assert order_service.process.process is not None
    assert order_service.process.process.wait(30) == 0
    assert not grpc_serving(
        order_service.target, "marketplace.order.v1.OrderService", mesh.operator_credentials()
    )
    deadline = time.monotonic() + 10
    while http_status(f"{mesh.edge_url}/healthz") != 503 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert http_status(f"{mesh.edge_url}/healthz") == 503

    mesh.start_service("order")
    deadline = time.monotonic() + 15
    while http_status(f"{mesh.edge_url}/healthz") != 200 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert http_status(f"{mesh.edge_url}/healthz") == 200
    assert stock_of(edge, product["productId"]) == 2
    log = Path(mesh.state_dir / "logs" / "order.log").read_text()
    assert '"msg": "draining"' in log or '"msg":"draining"' in log


def _health_check(target: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """The status a health check to `target` ends with: plaintext when no credentials."""
    if credentials is None:
        channel = grpc.insecure_channel(target)
    else:
        channel = grpc.secure_channel(target, credentials)
    with channel:
        try:
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            return error.code()
    return grpc.StatusCode.OK


def test_every_service_port_refuses_plaintext_and_foreign_certificates(
    mesh: Mesh, tmp_path: Path
) -> None:
    """mTLS on every port: only a certificate of the mesh CA gets an answer."""
    foreign = ensure_mesh_tls(tmp_path / "foreign-ca")  # a valid CA, but not the mesh's
    strangers = {
        "plaintext": None,
        # A certificate the server cannot verify (its CA is not the mesh's).
        "wrong-ca client": grpc.ssl_channel_credentials(
            mesh.mesh_tls().ca_path.read_bytes(),
            foreign.operator.key_path.read_bytes(),
            foreign.operator.cert_path.read_bytes(),
        ),
        # No client certificate at all, though the client trusts the mesh CA.
        "no client certificate": grpc.ssl_channel_credentials(mesh.mesh_tls().ca_path.read_bytes()),
    }
    outcomes = {
        (name, kind): _health_check(service.target, credentials)
        for name, service in mesh.services.items()
        for kind, credentials in strangers.items()
    }
    assert set(outcomes.values()) == {grpc.StatusCode.UNAVAILABLE}, outcomes
    for service in mesh.services.values():
        assert _health_check(service.target, mesh.operator_credentials()) == grpc.StatusCode.OK


def test_the_operator_certificate_calls_no_internal_rpc(mesh: Mesh) -> None:
    """Operators reach reflection, health and the public API, never an internal RPC."""
    refused = grpcurl(
        mesh,
        "-d",
        json.dumps({"order_id": str(uuid.uuid4())}),
        mesh.services["product"].target,
        "marketplace.product.v1.ProductInternalService/ReleaseReservation",
    )
    assert refused.returncode != 0
    assert "PermissionDenied" in refused.stderr, refused.stderr
