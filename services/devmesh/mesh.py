"""The whole mesh on one machine: backing servers, migrations, services, edge and demo data."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path
from types import TracebackType

import grpc

from services.devmesh import mesh_report, mesh_servers, processes
from services.devmesh.endpoints import EndpointFiles, EndpointPublisher
from services.devmesh.mesh_config import (
    DEV_SERVICE_PORTS,
    SERVICE_NAMES,
    SERVICE_START_SECONDS,
    MeshOptions,
    ServiceEndpoint,
    grpc_serving,
    http_status,
    options_from_environment,
    port_or_free,
)
from services.devmesh.mesh_report import print_summary
from services.devmesh.processes import REPO_ROOT, ManagedProcess, free_port, port_free
from services.devmesh.supervisor import Supervisor
from services.devmesh.tls import MeshTls, ensure_mesh_tls
from services.user.adapters.signing import SigningKey

__all__ = [
    "DEV_SERVICE_PORTS",
    "SERVICE_NAMES",
    "SERVICE_START_SECONDS",
    "Mesh",
    "MeshOptions",
    "ServiceEndpoint",
    "grpc_serving",
    "http_status",
    "options_from_environment",
    "port_or_free",
    "print_summary",
]


class Mesh:
    """Starts everything in dependency order and stops it in reverse."""

    def __init__(self, options: MeshOptions) -> None:
        self.options = options
        self.state_dir = options.state_dir
        self._backing: list[ManagedProcess] = []
        # Replica 0 of each service; every replica (0 included) is in `replicas`.
        self.services: dict[str, ServiceEndpoint] = {}
        self.replicas: dict[str, list[ServiceEndpoint]] = {}
        self.etcd_url = ""
        self.endpoint_files: EndpointFiles | None = None
        self.publisher: EndpointPublisher | None = None
        self.envoy: ManagedProcess | None = None
        self.docs: ManagedProcess | None = None
        self.storefront: ManagedProcess | None = None
        self.edge_admin_port = 0
        self.edge_tls_port = 0
        self.postgres_url = ""
        self.mongo_url = ""
        self.redis_url = ""
        self.payment_gateway_url = ""
        self.payment_gateway_api_key = ""
        self.otlp_port = 0
        self.supervisor: Supervisor | None = None
        self._state = "starting"
        # The mesh CA and every identity's certificate (`<state dir>/tls/`), made at start.
        self.tls: MeshTls | None = None

    @property
    def edge_url(self) -> str:
        """The REST and gRPC edge."""
        return f"http://127.0.0.1:{self.options.edge_port}"

    @property
    def edge_tls_url(self) -> str:
        """The same edge over HTTPS; clients trust `<state dir>/tls/ca.pem`."""
        return f"https://localhost:{self.edge_tls_port}"

    def __enter__(self) -> Mesh:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        """Bring the mesh up and wait until the edge reports every service healthy."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.tls = ensure_mesh_tls(self.state_dir / "tls", services=tuple(SERVICE_NAMES))
        self._start_backing_servers()
        users_db = f"{self.postgres_url}/marketplace_users?sslmode=disable"
        orders_db = f"{self.postgres_url}/marketplace_orders?sslmode=disable"
        processes.migrate(users_db, REPO_ROOT / "services" / "user" / "migrations")
        processes.migrate(orders_db, REPO_ROOT / "services" / "order" / "migrations")
        mesh_servers.start_otlp_receiver(self)
        mesh_servers.start_payment_gateway(self)
        self._plan_services(users_db, orders_db)
        # Every instance is launched at once and then waited for: on a busy machine the
        # interpreters' start-up overlaps instead of adding up.
        launched = [
            self._start_replica(endpoint, wait=False)
            for name in ("user", "product", "order")
            for endpoint in self.replicas[name]
        ]
        for endpoint in launched:
            assert endpoint.process is not None
            endpoint.process.wait_ready(timeout=SERVICE_START_SECONDS)
        mesh_servers.start_publisher(self)
        mesh_servers.start_edge(self)
        self._state = "running"
        if self.options.supervise:
            self.supervisor = Supervisor(
                self.state_dir / "logs" / "supervisor.log",
                on_change=self.write_state,
                ready_timeout=SERVICE_START_SECONDS,
            )
            for process in self.processes().values():
                self.supervisor.watch(process)
            self.supervisor.start()
        self.write_state()
        if self.options.seed_demo_data and self.options.environment == "dev":
            from services.devmesh.seed import seed_catalog

            seed_catalog(self)

    def _start_backing_servers(self) -> None:
        options = self.options
        etcd_port = free_port()
        self._backing.append(processes.start_etcd(self.state_dir, etcd_port))
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        if options.postgres_url:
            self.postgres_url = options.postgres_url.rstrip("/")
        else:
            postgres, self.postgres_url = processes.start_postgres(self.state_dir, free_port())
            self._backing.append(postgres)
        if options.redis_url:
            self.redis_url = options.redis_url
        else:
            port = free_port()
            self._backing.append(processes.start_redis(self.state_dir, port))
            self.redis_url = f"redis://127.0.0.1:{port}/0"
        if options.mongo_url:
            self.mongo_url = options.mongo_url
        else:
            port = free_port()
            self._backing.append(processes.start_mongo(self.state_dir, port))
            self.mongo_url = f"mongodb://127.0.0.1:{port}"

    @property
    def traces_path(self) -> Path:
        """Where the OTLP receiver writes the spans: one JSON object per line."""
        return self.state_dir / "traces" / "spans.jsonl"

    def _tracing_env(self) -> dict[str, str]:
        # A short batch delay, so a trace is on disk a moment after the request.
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }
        if self.options.trace_sample_ratio < 1.0:
            # Parent-based, as in k8s/base: a trace the edge (or a caller) sampled is kept.
            env["OTEL_TRACES_SAMPLER"] = "parentbased_traceidratio"
            env["OTEL_TRACES_SAMPLER_ARG"] = str(self.options.trace_sample_ratio)
        return env

    def _plan_services(self, users_db: str, orders_db: str) -> None:
        internal_secret = secrets.token_urlsafe(32)
        signing_key = SigningKey.generate().to_pem()
        preferred = self.options.service_ports
        ports = {
            name: (
                port_or_free(preferred.get(name, (0, 0))[0]),
                port_or_free(preferred.get(name, (0, 0))[1]),
            )
            for name in SERVICE_NAMES
        }
        jwks_url = f"http://127.0.0.1:{ports['user'][1]}/.well-known/jwks.json"
        specific = {
            "user": {
                "DATABASE_URL": users_db,
                "SIGNING_KEY_PEM": signing_key,
                "DEMO_PASSWORD": self.options.demo_password,
                "SEED_DEMO_ACCOUNTS": str(self.options.environment == "dev").lower(),
                # Published ahead of use, so a rotation (the README) finds the edge's
                # cached JWKS already holding the key that starts signing.
                "NEXT_SIGNING_KEY_PEM": SigningKey.generate().to_pem(),
                # Mail lands here as .eml files: open them to follow the links.
                "MAILBOX_DIR": str(self.state_dir / "mailbox"),
                "PUBLIC_BASE_URL": self.edge_url,
                "PRODUCT_TARGET": f"127.0.0.1:{ports['product'][0]}",
                # The data export asks the order service for the user's orders.
                "ORDER_TARGET": f"127.0.0.1:{ports['order'][0]}",
                # The order event stream, for order notifications.
                "REDIS_URL": self.redis_url,
            },
            "product": {
                "MONGO_URL": self.mongo_url,
                "MONGO_DATABASE": "marketplace_products",
                "REDIS_URL": self.redis_url,
            },
            "order": {
                "DATABASE_URL": orders_db,
                "PRODUCT_TARGET": f"127.0.0.1:{ports['product'][0]}",
                "USER_TARGET": f"127.0.0.1:{ports['user'][0]}",
                "PAYMENT_LATENCY_MS": str(self.options.payment_latency_ms),
                "REDIS_URL": self.redis_url,
                "PAYMENT_GATEWAY_URL": self.payment_gateway_url,
                "PAYMENT_GATEWAY_API_KEY": self.payment_gateway_api_key,
            },
        }
        tls = self.mesh_tls()
        for name, (grpc_port, ops_port) in ports.items():
            common = {
                # mTLS: the service's own identity, and the CA every peer must be signed by.
                "TLS_CERT_FILE": str(tls.services[name].cert_path),
                "TLS_KEY_FILE": str(tls.services[name].key_path),
                "TLS_CA_FILE": str(tls.ca_path),
                "ENVIRONMENT": self.options.environment,
                "GRPC_HOST": "127.0.0.1",
                "GRPC_PORT": str(grpc_port),
                "OPS_PORT": str(ops_port),
                "JWKS_URL": jwks_url,
                # Signs page tokens (internal RPCs are authorised by certificate).
                "INTERNAL_SECRET": internal_secret,
                "SHUTDOWN_GRACE_SECONDS": "5",
                "SHUTDOWN_NOTICE_SECONDS": "1.5",
                "REGISTRY_KIND": "etcd",
                "REGISTRY_URL": self.etcd_url,
                "REGISTRY_TTL_SECONDS": str(self.options.registry_ttl_seconds),
                "ADVERTISE_ADDRESS": "127.0.0.1",
            }
            values = {**common, **specific[name], **self.options.extra_env.get(name, {})}
            env = {f"{name.upper()}_{key}": value for key, value in values.items()}
            env.update(self._tracing_env())
            self.services[name] = ServiceEndpoint(name, grpc_port, ops_port, env)
            self.replicas[name] = [self.services[name]]
            for _ in range(1, max(1, self.options.replicas)):
                self._plan_replica(name)

    def _plan_replica(self, name: str) -> ServiceEndpoint:
        """One more instance of `name`: the same settings on its own ports."""
        first = self.services[name]
        replica = len(self.replicas[name])
        grpc_port, ops_port = free_port(), free_port()
        prefix = name.upper()
        env = {
            **first.env,
            f"{prefix}_GRPC_PORT": str(grpc_port),
            f"{prefix}_OPS_PORT": str(ops_port),
            f"{prefix}_REPLICA": str(replica),
        }
        endpoint = ServiceEndpoint(name, grpc_port, ops_port, env, replica=replica)
        self.replicas[name].append(endpoint)
        return endpoint

    def restart_replica(self, endpoint: ServiceEndpoint) -> None:
        """Stop one instance gracefully (it deregisters, then drains) and start it again."""
        if endpoint.process is None:
            return
        endpoint.process.stop()
        endpoint.process.start().wait_ready(timeout=SERVICE_START_SECONDS)
        self.write_state()

    def add_replica(self, name: str) -> ServiceEndpoint:
        """Start one more instance of `name` in the running mesh; it registers itself."""
        return self._start_replica(self._plan_replica(name))

    def start_service(self, name: str) -> ServiceEndpoint:
        """(Re)start replica 0 of one service and wait until its health check says SERVING."""
        return self._start_replica(self.services[name])

    def _start_replica(self, endpoint: ServiceEndpoint, *, wait: bool = True) -> ServiceEndpoint:
        name = endpoint.name
        endpoint.process = ManagedProcess(
            endpoint.process_name,
            [sys.executable, "-m", f"services.{name}"],
            self.state_dir / "logs" / f"{endpoint.process_name}.log",
            env=endpoint.env,
            ready=lambda: grpc_serving(
                endpoint.target, SERVICE_NAMES[name], self.operator_credentials()
            ),
            ports={"grpc": endpoint.grpc_port, "ops": endpoint.ops_port},
        )
        if endpoint.replica > 0:
            endpoint.process.before_restart = lambda: self._move_if_taken(endpoint)
        endpoint.process.start()
        if wait:
            endpoint.process.wait_ready(timeout=SERVICE_START_SECONDS)
        if self.supervisor is not None:
            self.supervisor.watch(endpoint.process)
            self.write_state()
        return endpoint

    def _move_if_taken(self, endpoint: ServiceEndpoint) -> None:
        """New ports for a dead replica whose ports another process took meanwhile.

        A replica's ports are free ones picked at start, and callers find it through the
        registry, so they need not survive a restart; but while it is down (a restart takes
        a minute on a loaded machine) another program may bind one, and restarting on it
        would fail for as long as that program runs. Replica 0 keeps its well-known ports.
        """
        process = endpoint.process
        if process is None or all(port_free(p) for p in (endpoint.grpc_port, endpoint.ops_port)):
            return
        endpoint.grpc_port, endpoint.ops_port = free_port(), free_port()
        prefix = endpoint.name.upper()
        endpoint.env[f"{prefix}_GRPC_PORT"] = str(endpoint.grpc_port)
        endpoint.env[f"{prefix}_OPS_PORT"] = str(endpoint.ops_port)
        process.env = endpoint.env
        process.ports = {"grpc": endpoint.grpc_port, "ops": endpoint.ops_port}

    def stop(self) -> None:
        """Stop the edge, then the services (gracefully), then the backing servers."""
        # The supervisor goes first: nothing it does may undo the shutdown.
        if self.supervisor is not None:
            self.supervisor.stop()
        self._state = "stopping"
        if self.envoy is not None:
            self.envoy.stop()
        if self.docs is not None:
            self.docs.stop()
        if self.storefront is not None:
            self.storefront.stop()
        for endpoints in reversed(list(self.replicas.values())):
            for endpoint in reversed(endpoints):
                if endpoint.process is not None:
                    endpoint.process.stop()
        if self.publisher is not None:
            self.publisher.stop()
        for process in reversed(self._backing):
            process.stop()
        self._state = "stopped"
        if self.state_dir.exists():
            self.write_state()
        self._backing.clear()

    def mesh_tls(self) -> MeshTls:
        """The mesh's TLS material; made by start()."""
        if self.tls is None:
            raise RuntimeError("the mesh has not made its certificates yet")
        return self.tls

    def operator_credentials(self) -> grpc.ChannelCredentials:
        """Channel credentials of the operator's certificate, for reaching a service directly."""
        tls = self.mesh_tls()
        return grpc.ssl_channel_credentials(
            tls.ca_path.read_bytes(),
            tls.operator.key_path.read_bytes(),
            tls.operator.cert_path.read_bytes(),
        )

    def operator_channel(self, name: str) -> grpc.Channel:
        """A (blocking) channel to service `name`, authenticated by the operator certificate."""
        return grpc.secure_channel(self.services[name].target, self.operator_credentials())

    def processes(self) -> dict[str, ManagedProcess]:
        """Every process the mesh started, by name, in start order."""
        found = {p.name: p for p in self._backing}
        found |= {
            e.process_name: e.process
            for endpoints in self.replicas.values()
            for e in endpoints
            if e.process is not None
        }
        if self.envoy is not None:
            found[self.envoy.name] = self.envoy
        return found

    def process(self, name: str) -> ManagedProcess:
        """The process called `name` (postgres, redis, mongo, payment-gateway, a service, envoy)."""
        return self.processes()[name]

    def snapshot(self) -> dict[str, object]:
        """What `mesh.json` says: every process with its pid, ports, log, restarts and state."""
        return mesh_report.snapshot(self)

    def write_state(self) -> None:
        """Write `mesh.json` atomically (a temp file renamed over it): readers never see half."""
        mesh_report.write_state(self)

    def describe(self) -> dict[str, object]:
        """Where everything listens, for people and scripts."""
        return mesh_report.describe(self)
