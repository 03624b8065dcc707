"""Traces, request ids, business metrics and quiet health checks on the running mesh."""

from __future__ import annotations

import json
import secrets
import time
import urllib.request
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from services.devmesh.mesh import Mesh
from tests.support.edge import Account, create_product, place_order

TRACED = {"edge", "order", "user", "product", "payment-gateway"}


def _orphans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans whose parent is not in the trace, apart from the edge's entry point."""
    ids = {span["span_id"] for span in spans}
    return [s for s in spans if s["parent_id"] not in ids and s["service"] != "edge"]


def _spans_of(mesh: Mesh, trace_id: str) -> list[dict[str, Any]]:
    """The spans of `trace_id` once the tree is whole (or after 15 s).

    A server span ends after its children and each process exports in batches, so the
    children of a span can be on disk a moment before the span itself.
    """
    spans: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if mesh.traces_path.exists():
            lines = mesh.traces_path.read_text().splitlines()
            spans = [s for s in map(json.loads, lines) if s["trace_id"] == trace_id]
            if {span["service"] for span in spans} >= TRACED and not _orphans(spans):
                break
        time.sleep(0.2)
    return spans


def _log_lines(mesh: Mesh, name: str) -> list[dict[str, Any]]:
    lines = (mesh.state_dir / "logs" / f"{name}.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_a_checkout_is_one_trace_from_the_edge_to_the_gateway_with_one_request_id(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=3)
    trace_id = secrets.token_hex(16)
    edge.headers["traceparent"] = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    try:
        response = place_order(edge, buyer, product["productId"])
    finally:
        del edge.headers["traceparent"]
    assert response.status_code == 200, response.text

    spans = _spans_of(mesh, trace_id)
    assert {span["service"] for span in spans} >= TRACED, spans
    # One tree: every span but the client's entry point has its parent in the trace.
    assert _orphans(spans) == [], spans
    for span in spans:
        assert span["duration"] >= 0 and span["start"] > 0 and span["name"]

    order_lines = [line for line in _log_lines(mesh, "order") if line.get("trace_id") == trace_id]
    assert order_lines, "the order service logged nothing under the trace"
    request_ids = {line["request_id"] for line in order_lines if "request_id" in line}
    assert len(request_ids) == 1, request_ids
    (request_id,) = request_ids
    for name in ("user", "product"):
        lines = [line for line in _log_lines(mesh, name) if line.get("trace_id") == trace_id]
        assert lines, f"{name} logged nothing under the trace"
        assert {line.get("request_id") for line in lines} == {request_id}, (name, lines)


def _scrape(mesh: Mesh) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    url = f"http://127.0.0.1:{mesh.services['order'].ops_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as answer:
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_a_checkout_and_a_declined_payment_move_the_business_counters(
    mesh: Mesh, edge: httpx.Client, buyer: Account, seller: Account
) -> None:
    product = create_product(edge, seller, stock=5, price=12)
    before = _scrape(mesh)

    assert place_order(edge, buyer, product["productId"]).status_code == 200
    declined = place_order(edge, buyer, product["productId"], token="tok_chargeDeclined")
    assert declined.status_code >= 400, declined.text
    reason = next(d["reason"] for d in declined.json()["details"] if "reason" in d)

    after = _scrape(mesh)

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("orders_placed_total") == 1
    assert moved("revenue_minor_total", currency="USD") == 1200
    assert moved("orders_failed_total", reason=reason) == 1
    assert moved("payment_outcomes_total", operation="authorize", outcome="success") == 1
    assert moved("payment_outcomes_total", operation="capture", outcome="success") == 1
    assert moved("payment_outcomes_total", operation="authorize", outcome="declined") == 1
    assert moved("payment_duration_seconds_count", operation="authorize") == 2
    assert after[("process_resident_memory_bytes", ())] > 0


def test_a_health_check_writes_no_info_log_line(mesh: Mesh) -> None:
    endpoint = mesh.services["order"]
    request_id = f"health-{secrets.token_hex(8)}"
    with grpc.secure_channel(endpoint.target, mesh.operator_credentials()) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), metadata=(("x-request-id", request_id),), timeout=5
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    log = (mesh.state_dir / "logs" / "order.log").read_text()
    assert request_id not in log
    # Envoy checks every service each second: none of those may reach the log either.
    assert "/grpc.health.v1.Health/" not in log
    assert '"rpc_finished"' in log or "rpc_finished" in log
