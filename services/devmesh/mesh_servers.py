"""The dev mesh's servers beside the services: OTLP receiver, payment gateway, endpoint publisher, edge, docs and storefront."""

from __future__ import annotations

import secrets
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from services.devmesh import edge, envoy_config, processes
from services.devmesh.endpoints import EndpointFiles, EndpointPublisher
from services.devmesh.mesh_config import SERVICE_NAMES, http_status, port_or_free
from services.devmesh.processes import ManagedProcess, free_port

if TYPE_CHECKING:
    from services.devmesh.mesh import Mesh


def start_otlp_receiver(mesh: Mesh) -> None:
    """The OTLP/gRPC receiver standing in for a collector (services/devmesh/otlp_receiver)."""
    mesh.otlp_port = free_port()
    receiver = ManagedProcess(
        "otlp-receiver",
        [
            sys.executable,
            "-m",
            "services.devmesh.otlp_receiver",
            str(mesh.otlp_port),
            str(mesh.traces_path),
        ],
        mesh.state_dir / "logs" / "otlp-receiver.log",
        ready=lambda: processes.tcp_ready(mesh.otlp_port),
        ports={"grpc": mesh.otlp_port},
    ).start()
    mesh._backing.append(receiver)
    receiver.wait_ready()


def start_payment_gateway(mesh: Mesh) -> None:
    """The sandbox card processor, its own process as a real gateway would be."""
    port = free_port()
    mesh.payment_gateway_api_key = secrets.token_urlsafe(24)
    mesh.payment_gateway_url = f"http://127.0.0.1:{port}"
    gateway_state = mesh.state_dir / "payment-gateway"
    gateway_state.mkdir(parents=True, exist_ok=True)
    gateway = ManagedProcess(
        "payment-gateway",
        [sys.executable, "-m", "services.order.sandbox_gateway"],
        mesh.state_dir / "logs" / "payment-gateway.log",
        env={
            "SANDBOX_GATEWAY_PORT": str(port),
            "SANDBOX_GATEWAY_API_KEY": mesh.payment_gateway_api_key,
            "SANDBOX_GATEWAY_LATENCY_MS": str(mesh.options.payment_latency_ms),
            # A processor remembers its charges across its own restarts; the fault
            # suite and the order reconciler rely on asking it after one.
            "SANDBOX_GATEWAY_STATE_DIR": str(gateway_state),
            **mesh._tracing_env(),
        },
        ready=lambda: http_status(f"{mesh.payment_gateway_url}/healthz") == 200,
        ports={"http": port},
    ).start()
    mesh._backing.append(gateway)
    gateway.wait_ready()


def start_publisher(mesh: Mesh) -> None:
    """Keep the edge's endpoint files equal to the registry, from before the edge starts."""
    mesh.endpoint_files = EndpointFiles(mesh.state_dir / "eds")
    mesh.publisher = EndpointPublisher(
        mesh.etcd_url, mesh.endpoint_files, list(SERVICE_NAMES)
    ).start()
    # Every planned instance registers once it serves; wait until the files list them.
    wanted = {name: len(endpoints) for name, endpoints in mesh.replicas.items()}
    processes.wait_until(
        lambda: (
            all(len(mesh.publisher.published.get(n, [])) >= c for n, c in wanted.items())
            if mesh.publisher is not None
            else False
        ),
        timeout=60,
        what="the registry's instances",
        log=None,
    )


def start_edge(mesh: Mesh) -> None:
    """Render the edge config (docs and storefront servers started first) and start Envoy."""
    mesh.edge_admin_port = free_port()
    mesh.edge_tls_port = port_or_free(mesh.options.edge.tls_port)
    config = replace(
        edge.config_for(mesh, mesh.edge_admin_port, mesh.edge_tls_port),
        docs_port=start_docs(mesh),
        storefront_port=start_storefront(mesh),
        otlp_port=mesh.otlp_port,
        eds_dir=str(mesh.state_dir / "eds"),
    )
    path = envoy_config.write(config, mesh.state_dir / "envoy.yaml")
    admin = f"http://127.0.0.1:{mesh.edge_admin_port}"
    mesh.envoy = processes.start_envoy(
        mesh.state_dir,
        path,
        # After a restart the edge is ready when it listens, whatever the services do.
        ready=lambda: http_status(f"{admin}/ready") == 200,
        ports={"http": mesh.options.edge_port, "admin": mesh.edge_admin_port},
    )
    # The first start also waits for every service to be healthy behind it.
    mesh.envoy.wait_ready(lambda: http_status(f"{mesh.edge_url}/healthz") == 200)


def start_docs(mesh: Mesh) -> int:
    """The API reference server (Swagger UI, /openapi.json) the edge routes /docs to."""
    port = free_port()
    mesh.docs = ManagedProcess(
        "docs",
        [sys.executable, "-m", "services.devmesh.openapi_docs", str(port)],
        mesh.state_dir / "logs" / "docs.log",
    ).start()
    mesh.docs.wait_ready(lambda: http_status(f"http://127.0.0.1:{port}/openapi.json") == 200)
    return port


def start_storefront(mesh: Mesh) -> int:
    """The storefront's static server (web/dist) the edge routes page loads to."""
    port = free_port()
    mesh.storefront = ManagedProcess(
        "storefront",
        [sys.executable, "-m", "services.devmesh.storefront", str(port)],
        mesh.state_dir / "logs" / "storefront.log",
    ).start()
    # Ready when it answers at all: before the first build it answers 503 "not built".
    mesh.storefront.wait_ready(lambda: http_status(f"http://127.0.0.1:{port}/") in (200, 503))
    return port
