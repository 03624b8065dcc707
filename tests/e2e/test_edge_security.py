"""The public edge under attack: client address, per-client limits, sizes, headers, CORS, 404s."""

from __future__ import annotations

import json
import signal
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
import yaml
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc

from services.devmesh import edge as dev_edge
from services.devmesh import envoy_config, processes
from services.devmesh.mesh import Mesh, http_status
from tests.support.edge import Account, register

PASSWORD = "correct-horse-battery"


def client_from(base_url: str, address: str) -> httpx.Client:
    """An HTTP client whose connections leave from `address` (any 127.0.0.0/8 address)."""
    return httpx.Client(
        base_url=base_url,
        timeout=10,
        transport=httpx.HTTPTransport(local_address=address),
    )


@contextmanager
def second_edge(mesh: Mesh, name: str, **settings: Any) -> Iterator[str]:
    """Another Envoy edge in front of the mesh's services, with its own settings."""
    config = envoy_config.EdgeConfig(
        edge_port=processes.free_port(),
        admin_port=processes.free_port(),
        user_port=mesh.services["user"].grpc_port,
        user_ops_port=mesh.services["user"].ops_port,
        product_port=mesh.services["product"].grpc_port,
        order_port=mesh.services["order"].grpc_port,
        **dev_edge.upstream_tls(mesh),
        access_log_path=str(mesh.state_dir / "logs" / f"{name}-access.log"),
        **settings,
    )
    path = envoy_config.write(config, mesh.state_dir / f"{name}.yaml")
    process = processes.start_envoy(mesh.state_dir, path, name=name)
    url = f"http://127.0.0.1:{config.edge_port}"
    try:
        process.wait_ready(lambda: http_status(f"{url}/healthz") == 200)
        yield url
    finally:
        process.stop()


def sign_in(client: httpx.Client, email: str, **headers: str) -> dict[str, Any]:
    response = client.post(
        "/v1/auth/login", headers=headers, json={"email": email, "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def session_addresses(client: httpx.Client, access_token: str) -> set[str]:
    response = client.get(
        "/v1/users/me/sessions", headers={"Authorization": f"Bearer {access_token}"}
    )
    assert response.status_code == 200, response.text
    return {s["clientIp"] for s in response.json()["sessions"]}


def wait_for_log_lines(log: Path, wanted: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
    """The access log entries `wanted` picks, waiting for Envoy to flush (every few seconds)."""
    deadline = time.monotonic() + 30
    while True:
        text = log.read_text() if log.exists() else ""
        entries = [e for e in map(json.loads, text.splitlines()) if wanted(e)]
        if entries or time.monotonic() > deadline:
            return entries
        time.sleep(0.5)


SPOOFED = {
    "X-Forwarded-For": "203.0.113.9",
    "X-Real-IP": "203.0.113.10",
    "Forwarded": "for=203.0.113.11",
    "X-Marketplace-Client-Address": "203.0.113.12",
    "X-Envoy-External-Address": "203.0.113.13",
}


# 1. The client address comes from the connection.


def test_client_address_is_the_tcp_peer_whatever_the_headers_say(mesh: Mesh) -> None:
    with client_from(mesh.edge_url, "127.0.0.2") as client:
        email, _ = register(client, PASSWORD)
        tokens = sign_in(client, email, **SPOOFED)
        assert session_addresses(client, tokens["accessToken"]) == {"127.0.0.2"}


def test_a_blocked_client_stays_blocked_whatever_x_forwarded_for_says(mesh: Mesh) -> None:
    """50 failed sign-ins of one address (the user service's limit) block it, spoofing or not."""
    with client_from(mesh.edge_url, "127.0.0.4") as client:
        for attempt in range(50):
            response = client.post(
                "/v1/auth/login",
                headers={"X-Forwarded-For": f"198.51.100.{attempt}"},
                json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "x" * 12},
            )
            assert response.status_code == 401, response.text
        email, _ = register(client, PASSWORD)
        refused = client.post(
            "/v1/auth/login",
            headers={"X-Forwarded-For": "198.51.100.250"},
            json={"email": email, "password": PASSWORD},
        )
    assert refused.status_code == 429, refused.status_code  # (the body would hold tokens)
    reasons = [d.get("reason") for d in refused.json()["details"]]
    assert "TOO_MANY_FAILED_SIGN_INS" in reasons


def test_a_trusted_proxy_hop_supplies_the_client_address(mesh: Mesh) -> None:
    """Behind one declared proxy, the address that proxy appended is the client's."""
    with (
        second_edge(mesh, "envoy-behind-proxy", xff_num_trusted_hops=1) as url,
        client_from(url, "127.0.0.2") as client,
    ):
        email, _ = register(client, PASSWORD)
        # What a load balancer sends: whatever the client claimed, then the peer it saw.
        tokens = sign_in(client, email, **{"X-Forwarded-For": "203.0.113.9, 198.51.100.20"})
        assert session_addresses(client, tokens["accessToken"]) == {"198.51.100.20"}


# 2. Rate limits per client, per user, and for account actions.


@pytest.fixture(scope="module")
def limited_edge(mesh: Mesh) -> Iterator[str]:
    """An edge with tiny per-client buckets and a roomy global one."""
    with second_edge(
        mesh,
        "envoy-per-client",
        rate_limit_burst=10_000,
        rate_limit_per_second=10_000,
        client_rate_limit_burst=10,
        client_rate_limit_per_second=1,
        auth_rate_limit_burst=3,
        auth_rate_limit_per_minute=1,
        user_rate_limit_burst=5,
        user_rate_limit_per_second=1,
    ) as url:
        yield url


def test_one_noisy_client_does_not_rate_limit_the_others(limited_edge: str) -> None:
    with client_from(limited_edge, "127.0.0.11") as noisy:
        codes = [noisy.get("/v1/products", params={"pageSize": 1}).status_code for _ in range(30)]
    assert codes.count(429) >= 15, codes
    with client_from(limited_edge, "127.0.0.12") as quiet:
        answer = quiet.get("/v1/products", params={"pageSize": 1})
    assert answer.status_code == 200, answer.text


def test_requests_the_edge_refuses_itself_count_too(mesh: Mesh, limited_edge: str) -> None:
    with client_from(limited_edge, "127.0.0.13") as client:
        unauthenticated = [client.get("/v1/users/me").status_code for _ in range(15)]
        unrouted = [client.get("/no/such/route") for _ in range(5)]
    assert unauthenticated[:5] == [401] * 5, unauthenticated
    assert unauthenticated.count(429) >= 4, unauthenticated
    assert [r.status_code for r in unrouted].count(429) >= 4
    assert unrouted[-1].json() == {"code": 429, "message": "local_rate_limited"}
    # Refused requests are in the access log too, as the client sent them.
    log = mesh.state_dir / "logs" / "envoy-per-client-access.log"
    limited = wait_for_log_lines(
        log, lambda e: e["client_address"] == "127.0.0.13" and e["status"] == 429
    )
    assert {(e["method"], e["path"]) for e in limited} >= {("GET", "/no/such/route")}


def test_sign_in_has_a_tighter_limit_than_reads(limited_edge: str) -> None:
    with client_from(limited_edge, "127.0.0.14") as client:
        attempts = [
            client.post(
                "/v1/auth/login",
                json={"email": f"nobody-{uuid.uuid4().hex[:8]}@example.org", "password": "x" * 12},
            ).status_code
            for _ in range(5)
        ]
        read = client.get("/v1/products", params={"pageSize": 1})
    # A burst of 3 (one more may drip in when the minute turns), where reads allow 10.
    assert attempts[:3] == [401, 401, 401], attempts
    assert attempts[-1] == 429, attempts
    assert read.status_code == 200, read.text


def test_a_signed_in_user_has_one_bucket_whatever_address_calls(
    limited_edge: str, edge: httpx.Client, buyer: Account
) -> None:
    codes = []
    for host in range(20, 30):  # a fresh address each call: the client buckets stay full
        with client_from(limited_edge, f"127.0.0.{host}") as client:
            codes.append(client.get("/v1/users/me", headers=buyer.headers).status_code)
    assert codes[:5] == [200] * 5, codes
    assert codes.count(429) >= 4, codes
    email, _ = register(edge, PASSWORD)
    other = sign_in(edge, email)
    with client_from(limited_edge, "127.0.0.29") as client:
        answer = client.get(
            "/v1/users/me", headers={"Authorization": f"Bearer {other['accessToken']}"}
        )
    assert answer.status_code == 200, answer.text


def test_health_checks_have_their_own_bucket(limited_edge: str) -> None:
    with client_from(limited_edge, "127.0.0.15") as client:
        health = [client.get("/healthz") for _ in range(40)]
        read = client.get("/v1/products", params={"pageSize": 1})
    codes = [h.status_code for h in health]
    assert codes[:10] == [200] * 10, codes
    assert 429 in codes, codes
    assert health[codes.index(429)].json() == {"code": 429, "message": "local_rate_limited"}
    assert read.status_code == 200, read.text  # the client's own bucket was not touched


# 3. Oversized requests.


def test_a_body_over_one_mebibyte_is_refused_by_the_edge(edge: httpx.Client) -> None:
    body = json.dumps({"email": "a" * (1024 * 1024 + 1) + "@example.org", "password": "x" * 12})
    response = edge.post(
        "/v1/auth/login", content=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == {"code": 413, "message": "Payload Too Large"}


def test_a_url_over_8_kib_is_refused_by_the_edge(edge: httpx.Client) -> None:
    response = edge.get("/v1/products", params={"query": "lamp" * 3750})
    assert response.status_code == 414
    assert response.json() == {"code": 414, "message": "URI Too Long"}


# 4. Headers.

LEAKY = ("server", "x-envoy-upstream-service-time")


def assert_safe_headers(response: httpx.Response) -> None:
    headers = response.headers
    assert headers.get("cache-control") == "no-store", dict(headers)
    assert headers.get("x-content-type-options") == "nosniff", dict(headers)
    for name in LEAKY:
        assert name not in headers, dict(headers)
    assert not [k for k in headers if k.lower().startswith("grpc-")], dict(headers)


def test_token_answers_are_never_cached_and_say_nothing_of_the_internals(
    edge: httpx.Client,
) -> None:
    email, _ = register(edge, PASSWORD)
    login = edge.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200
    assert_safe_headers(login)
    refreshed = edge.post("/v1/auth/refresh", json={"refreshToken": login.json()["refreshToken"]})
    assert refreshed.status_code == 200
    assert_safe_headers(refreshed)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/v1/products?pageSize=1", 200),
        ("GET", "/v1/products/no-such-product", 404),  # a gRPC error, transcoded
        ("GET", "/v1/users/me", 401),  # answered by the edge (no token)
        ("GET", "/no/such/route", 404),  # answered by the edge (no route)
        ("POST", "/v1/auth/login", 400),  # a transcoding error (body is not JSON)
    ],
)
def test_every_rest_answer_carries_the_security_headers(
    edge: httpx.Client, method: str, path: str, status: int
) -> None:
    response = edge.request(method, path, content=b"{not json" if method == "POST" else None)
    assert response.status_code == status, response.text
    assert_safe_headers(response)


@pytest.mark.parametrize("path", ["/v1/products?pageSize=1", "/v1/categories"])
def test_header_names_grpc_cannot_carry_are_dropped_not_a_500(
    edge: httpx.Client, path: str
) -> None:
    # Valid HTTP tokens, but not gRPC metadata keys: forwarded, the service's gRPC core
    # refused the call and the edge answered 500 "Illegal header key".
    response = edge.get(path, headers={"x|~": "v", "A^B": "v", "x~": "v"})
    assert response.status_code == 200, response.text
    assert_safe_headers(response)


def test_native_grpc_clients_still_get_grpc_status_and_details(mesh: Mesh) -> None:
    target = mesh.edge_url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        with pytest.raises(grpc.RpcError) as raised:
            stub.GetProduct(product_service_pb2.GetProductRequest(product_id="nope"), timeout=10)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    trailers = dict(error.trailing_metadata() or ())
    assert "grpc-status-details-bin" in trailers


# 5. CORS.


def test_a_preflight_from_the_storefront_is_answered_without_a_token(edge: httpx.Client) -> None:
    response = edge.options(
        "/v1/users/me",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "authorization" in response.headers["access-control-allow-headers"]
    read = edge.get("/v1/products?pageSize=1", headers={"Origin": "http://localhost:5173"})
    assert read.headers["access-control-allow-origin"] == "http://localhost:5173"


def test_other_origins_get_no_cors_grant(edge: httpx.Client) -> None:
    origin = {"Origin": "https://evil.example"}
    preflight = edge.options(
        "/v1/users/me", headers={**origin, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in preflight.headers
    read = edge.get("/v1/products?pageSize=1", headers=origin)
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers


def test_the_cluster_edge_allows_no_origin_by_default() -> None:
    assert envoy_config.kubernetes().cors_allowed_origins == ()
    assert "allow_origin_string_match: []" in envoy_config.render(envoy_config.kubernetes())


# 6. Unknown routes.


@pytest.mark.parametrize(
    "path", ["/v2/products", "/admin", "/.env", "/v1", "/v1/orders/x/y", "/v1/users/me/zzz"]
)
def test_unknown_routes_answer_404_with_the_json_error_body(edge: httpx.Client, path: str) -> None:
    response = edge.get(path)
    assert response.status_code == 404, response.text
    assert response.json() == {"code": 404, "message": "no such route"}


@pytest.mark.parametrize(
    "method",
    [
        "/marketplace.product.v1.ProductInternalService/ReserveInventory",
        "/marketplace.user.v1.UserInternalService/GetShippingAddress",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        "/grpc.health.v1.Health/Check",
    ],
)
def test_internal_services_and_reflection_are_not_reachable_through_the_edge(
    mesh: Mesh, method: str
) -> None:
    target = mesh.edge_url.removeprefix("http://")
    with grpc.insecure_channel(target) as channel:
        call: grpc.UnaryUnaryMultiCallable[bytes, bytes] = channel.unary_unary(method)
        with pytest.raises(grpc.RpcError) as raised:
            call(b"", timeout=10)
    error: Any = raised.value
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.details()


# 7. Access log.


def test_the_access_log_has_the_client_request_and_user_but_never_the_token(
    mesh: Mesh, edge: httpx.Client, buyer: Account
) -> None:
    marker = f"e2e-access-log-{uuid.uuid4().hex}"
    response = edge.get("/v1/users/me", headers={**buyer.headers, "User-Agent": marker})
    assert response.status_code == 200
    log = dev_edge.access_log_path(mesh.state_dir)
    lines = wait_for_log_lines(log, lambda e: e["user_agent"] == marker)
    assert len(lines) == 1
    entry = lines[0]
    assert entry["method"] == "GET"
    assert entry["path"] == "/v1/users/me"
    assert entry["status"] == 200
    assert entry["user_id"] == buyer.user_id
    assert entry["client_address"] == "127.0.0.1"
    assert int(entry["bytes_sent"]) > 0
    assert entry["duration_ms"] is not None
    assert entry["request_id"]
    assert buyer.access_token not in log.read_text()
    assert buyer.access_token.split(".")[2] not in log.read_text()


# 8. HTTPS.


def test_rest_over_https_with_the_dev_ca(mesh: Mesh) -> None:
    ca = dev_edge.ca_path(mesh.state_dir)
    assert ca == mesh.state_dir / "tls" / "ca.pem"
    trust = ssl.create_default_context(cafile=str(ca))
    with httpx.Client(base_url=mesh.edge_tls_url, verify=trust, timeout=10) as client:
        response = client.get("/v1/products", params={"pageSize": 1})
        health = client.get("/healthz")
    assert response.status_code == 200, response.text
    assert health.json()["status"] == "SERVING"


def test_grpc_over_tls_with_the_dev_ca(mesh: Mesh) -> None:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=dev_edge.ca_path(mesh.state_dir).read_bytes()
    )
    with grpc.secure_channel(f"localhost:{mesh.edge_tls_port}", credentials) as channel:
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        found = stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(page_size=1), timeout=10
        )
    assert len(found.products) <= 1


def test_https_refuses_clients_that_do_not_trust_the_ca(mesh: Mesh) -> None:
    with (
        httpx.Client(base_url=mesh.edge_tls_url, timeout=10) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get("/healthz")


# 9. A sick service does not take the edge down.


def service_states(mesh: Mesh) -> dict[str, str]:
    with httpx.Client(base_url=mesh.edge_url, timeout=10) as client:
        states: dict[str, str] = client.get("/healthz").json()["services"]
    return states


def test_a_stalled_service_answers_503_while_the_others_keep_serving(
    mesh: Mesh, edge: httpx.Client, buyer: Account
) -> None:
    product = mesh.services["product"].process
    assert product is not None
    product.signal(signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 20
        while service_states(mesh)["product"] == "SERVING" and time.monotonic() < deadline:
            time.sleep(0.2)
        health = edge.get("/healthz")
        assert health.status_code == 503
        assert health.json() == {
            "status": "DEGRADED",
            "services": {"user": "SERVING", "product": "UNAVAILABLE", "order": "SERVING"},
        }
        assert edge.get("/readyz").status_code == 200  # the edge itself stays in rotation
        # The edge's own health check ejects the stalled host after two missed checks
        # (0.5 s apart, so a loaded machine's slow answer is not taken for a stall); from
        # then on it answers at once, never waiting on the stalled process.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if edge.get("/v1/products", params={"pageSize": 1}, timeout=2).status_code == 503:
                    break
            except httpx.TimeoutException:
                pass  # sent before the ejection: it waits on the stalled process
            time.sleep(0.2)
        started = time.monotonic()
        stalled = edge.get("/v1/products", params={"pageSize": 1})
        assert time.monotonic() - started < 1.0
        assert stalled.status_code == 503
        assert stalled.json() == {"code": 503, "message": "no healthy upstream"}
        assert edge.get("/v1/users/me", headers=buyer.headers).status_code == 200
        assert edge.get("/v1/orders", headers=buyer.headers).status_code == 200
    finally:
        product.signal(signal.SIGCONT)
        deadline = time.monotonic() + 20
        while edge.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
    assert edge.get("/healthz").json()["status"] == "SERVING"


def test_the_cluster_edge_is_https_only_and_ready_on_its_own(tmp_path: Path) -> None:
    rendered = envoy_config.render(envoy_config.kubernetes())
    # HTTPS towards clients on one listener; mTLS towards each of the three services.
    assert rendered.count("DownstreamTlsContext") == 1
    assert rendered.count("UpstreamTlsContext") == 3
    listeners = yaml.safe_load(rendered)["static_resources"]["listeners"]
    ports = {listener["address"]["socket_address"]["port_value"] for listener in listeners}
    assert 8443 in ports
    assert 8080 not in ports  # no plaintext listener (8080 is the storefront's pod port)
    manifest = (Path(__file__).parents[2] / "k8s" / "base" / "edge.yaml").read_text()
    assert "path: /readyz" in manifest
    assert "scheme: HTTPS" in manifest
