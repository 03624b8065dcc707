"""What a dev mesh is made of: its options, its service instances, and the probes it waits on."""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devmesh import edge, processes
from services.devmesh.edge import EdgeSettings
from services.devmesh.processes import ManagedProcess, free_port

SERVICE_NAMES = {
    "user": "marketplace.user.v1.UserService",
    "product": "marketplace.product.v1.ProductService",
    "order": "marketplace.order.v1.OrderService",
}


# How long a service instance may take to serve after its start (imports included), generous
# for a machine shared with other work.
SERVICE_START_SECONDS = 180.0


@dataclass(frozen=True)
class MeshOptions:
    """How to run the mesh; each *_url set means "use that server instead of starting one"."""

    state_dir: Path
    edge_port: int = 8080
    environment: str = "dev"
    demo_password: str = "marketplace-demo"
    seed_demo_data: bool = True
    postgres_url: str | None = None
    mongo_url: str | None = None
    redis_url: str | None = None
    rate_limit_burst: int = 500
    rate_limit_per_second: int = 250
    payment_latency_ms: int = 150
    extra_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # HTTPS port, per-client limits, trusted proxies, CORS: services/devmesh/edge.py.
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    # (gRPC port, ops port) per service; 0 or a busy port means any free port.
    service_ports: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Restart every process that exits unasked, with backoff (`nox -s up`, the fault suite).
    supervise: bool = False
    # Instances of every service, each on its own ports, all registered in etcd.
    replicas: int = 1
    # The registration lease: a killed instance leaves the registry this long after.
    registry_ttl_seconds: int = 3
    # The share of traces started (edge and services alike, so an edge-sampled request is
    # traced in every service and nothing else is): 1.0 in dev and the tests, which follow
    # traces; the bench runs production's ratio (k8s/base: 0.1).
    trace_sample_ratio: float = 1.0


@dataclass
class ServiceEndpoint:
    """Where one service of the running mesh listens."""

    name: str
    grpc_port: int
    ops_port: int
    env: dict[str, str]
    process: ManagedProcess | None = None
    replica: int = 0

    @property
    def process_name(self) -> str:
        """Replica 0 is named after its service ("user"), the others "user-1", "user-2"..."""
        return self.name if self.replica == 0 else f"{self.name}-{self.replica}"

    @property
    def target(self) -> str:
        """host:port for gRPC clients and grpcurl."""
        return f"127.0.0.1:{self.grpc_port}"


def grpc_serving(target: str, service: str, credentials: grpc.ChannelCredentials) -> bool:
    """Whether `service` at `target` answers its health check with SERVING."""
    with grpc.secure_channel(target, credentials) as channel:
        try:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=1
            )
        except grpc.RpcError:
            return False
    return bool(response.status == health_pb2.HealthCheckResponse.SERVING)


def http_status(url: str) -> int:
    """The HTTP status of GET `url`, or 0 when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except (urllib.error.URLError, OSError):
        return 0


# Well-known local ports, so the README's grpcurl commands work as written.
DEV_SERVICE_PORTS = {"user": (50051, 9464), "product": (50052, 9465), "order": (50053, 9466)}


def port_or_free(preferred: int) -> int:
    """`preferred` when nothing listens there, else any free port."""
    if preferred and not processes.tcp_ready(preferred):
        return preferred
    return free_port()


def options_from_environment(state_dir: Path) -> MeshOptions:
    """MeshOptions from MARKETPLACE_* variables, as documented in the README."""
    env = os.environ
    return MeshOptions(
        state_dir=state_dir,
        edge_port=int(env.get("MARKETPLACE_EDGE_PORT", "8080")),
        demo_password=env.get("MARKETPLACE_DEMO_PASSWORD", "marketplace-demo"),
        postgres_url=env.get("MARKETPLACE_POSTGRES_URL") or None,
        mongo_url=env.get("MARKETPLACE_MONGO_URL") or None,
        redis_url=env.get("MARKETPLACE_REDIS_URL") or None,
        service_ports=DEV_SERVICE_PORTS,
        edge=edge.settings_from_environment(),
        supervise=True,
        replicas=int(env.get("MARKETPLACE_REPLICAS", "1")),
    )
