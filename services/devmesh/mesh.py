"""The whole mesh on one machine: backing servers, migrations, services, edge and demo data."""

from __future__ import annotations

import json
import os
import secrets
import sys
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.devmesh import edge, envoy_config, processes
from services.devmesh.edge import EdgeSettings
from services.devmesh.endpoints import EndpointFiles, EndpointPublisher
from services.devmesh.processes import REPO_ROOT, ManagedProcess, free_port, port_free
from services.devmesh.supervisor import Supervisor
from services.devmesh.tls import MeshTls, ensure_mesh_tls
from services.user.adapters.signing import SigningKey

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
        self._start_otlp_receiver()
        self._start_payment_gateway()
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
        self._start_publisher()
        self._start_edge()
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
        return {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{self.otlp_port}",
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        }

    def _start_otlp_receiver(self) -> None:
        """The OTLP/gRPC receiver standing in for a collector (services/devmesh/otlp_receiver)."""
        self.otlp_port = free_port()
        receiver = ManagedProcess(
            "otlp-receiver",
            [
                sys.executable,
                "-m",
                "services.devmesh.otlp_receiver",
                str(self.otlp_port),
                str(self.traces_path),
            ],
            self.state_dir / "logs" / "otlp-receiver.log",
            ready=lambda: processes.tcp_ready(self.otlp_port),
            ports={"grpc": self.otlp_port},
        ).start()
        self._backing.append(receiver)
        receiver.wait_ready()

    def _start_payment_gateway(self) -> None:
        """The sandbox card processor, its own process as a real gateway would be."""
        port = free_port()
        self.payment_gateway_api_key = secrets.token_urlsafe(24)
        self.payment_gateway_url = f"http://127.0.0.1:{port}"
        gateway_state = self.state_dir / "payment-gateway"
        gateway_state.mkdir(parents=True, exist_ok=True)
        gateway = ManagedProcess(
            "payment-gateway",
            [sys.executable, "-m", "services.order.sandbox_gateway"],
            self.state_dir / "logs" / "payment-gateway.log",
            env={
                "SANDBOX_GATEWAY_PORT": str(port),
                "SANDBOX_GATEWAY_API_KEY": self.payment_gateway_api_key,
                "SANDBOX_GATEWAY_LATENCY_MS": str(self.options.payment_latency_ms),
                # A processor remembers its charges across its own restarts; the fault
                # suite and the order reconciler rely on asking it after one.
                "SANDBOX_GATEWAY_STATE_DIR": str(gateway_state),
                **self._tracing_env(),
            },
            ready=lambda: http_status(f"{self.payment_gateway_url}/healthz") == 200,
            ports={"http": port},
        ).start()
        self._backing.append(gateway)
        gateway.wait_ready()

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

    def _start_publisher(self) -> None:
        """Keep the edge's endpoint files equal to the registry, from before the edge starts."""
        self.endpoint_files = EndpointFiles(self.state_dir / "eds")
        self.publisher = EndpointPublisher(
            self.etcd_url, self.endpoint_files, list(SERVICE_NAMES)
        ).start()
        # Every planned instance registers once it serves; wait until the files list them.
        wanted = {name: len(endpoints) for name, endpoints in self.replicas.items()}
        processes.wait_until(
            lambda: (
                all(len(self.publisher.published.get(n, [])) >= c for n, c in wanted.items())
                if self.publisher is not None
                else False
            ),
            timeout=60,
            what="the registry's instances",
            log=None,
        )

    def _start_edge(self) -> None:
        self.edge_admin_port = free_port()
        self.edge_tls_port = port_or_free(self.options.edge.tls_port)
        config = replace(
            edge.config_for(self, self.edge_admin_port, self.edge_tls_port),
            docs_port=self._start_docs(),
            storefront_port=self._start_storefront(),
            otlp_port=self.otlp_port,
            eds_dir=str(self.state_dir / "eds"),
        )
        path = envoy_config.write(config, self.state_dir / "envoy.yaml")
        admin = f"http://127.0.0.1:{self.edge_admin_port}"
        self.envoy = processes.start_envoy(
            self.state_dir,
            path,
            # After a restart the edge is ready when it listens, whatever the services do.
            ready=lambda: http_status(f"{admin}/ready") == 200,
            ports={"http": self.options.edge_port, "admin": self.edge_admin_port},
        )
        # The first start also waits for every service to be healthy behind it.
        self.envoy.wait_ready(lambda: http_status(f"{self.edge_url}/healthz") == 200)

    def _start_docs(self) -> int:
        """The API reference server (Swagger UI, /openapi.json) the edge routes /docs to."""
        port = free_port()
        self.docs = ManagedProcess(
            "docs",
            [sys.executable, "-m", "services.devmesh.openapi_docs", str(port)],
            self.state_dir / "logs" / "docs.log",
        ).start()
        self.docs.wait_ready(lambda: http_status(f"http://127.0.0.1:{port}/openapi.json") == 200)
        return port

    def _start_storefront(self) -> int:
        """The storefront's static server (web/dist) the edge routes page loads to."""
        port = free_port()
        self.storefront = ManagedProcess(
            "storefront",
            [sys.executable, "-m", "services.devmesh.storefront", str(port)],
            self.state_dir / "logs" / "storefront.log",
        ).start()
        # Ready when it answers at all: before the first build it answers 503 "not built".
        self.storefront.wait_ready(lambda: http_status(f"http://127.0.0.1:{port}/") in (200, 503))
        return port

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
        return {
            "state": self._state,
            "updated": datetime.now(UTC).isoformat(),
            "supervised": self.supervisor is not None,
            "edge": {
                "rest": self.edge_url,
                "grpc": f"127.0.0.1:{self.options.edge_port}",
                "health": f"{self.edge_url}/healthz",
                "admin": f"http://127.0.0.1:{self.edge_admin_port}",
            },
            "registry": self.etcd_url,
            # Every instance of every service, in replica order.
            "instances": [
                {
                    "service": e.name,
                    "replica": e.replica,
                    "process": e.process_name,
                    "pid": e.process.pid if e.process is not None else None,
                    "ports": {"grpc": e.grpc_port, "ops": e.ops_port},
                    "log": str(self.state_dir / "logs" / f"{e.process_name}.log"),
                    "state": e.process.state if e.process is not None else "planned",
                    "restarts": e.process.restarts if e.process is not None else 0,
                }
                for endpoints in self.replicas.values()
                for e in endpoints
            ],
            "processes": {
                name: {
                    "pid": process.pid,
                    "ports": process.ports,
                    "log": str(process.log_path),
                    "restarts": process.restarts,
                    "state": process.state,
                }
                for name, process in self.processes().items()
            },
            "postgres": self.postgres_url,
            "mongo": self.mongo_url,
            "redis": self.redis_url,
            "payment_gateway": self.payment_gateway_url,
            "mailbox": str(self.state_dir / "mailbox"),
        }

    def write_state(self) -> None:
        """Write `mesh.json` atomically (a temp file renamed over it): readers never see half."""
        path = self.state_dir / "mesh.json"
        temporary = path.with_name(f".mesh.json.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(self.snapshot(), indent=2) + "\n")
        os.replace(temporary, path)

    def describe(self) -> dict[str, object]:
        """Where everything listens, for people and scripts."""
        return {
            "edge": self.edge_url,
            "edge_admin": f"http://127.0.0.1:{self.edge_admin_port}",
            "edge_tls": self.edge_tls_url,
            "edge_ca": str(edge.ca_path(self.state_dir)),
            # grpcurl -cacert CA -cert OPERATOR -key OPERATOR_KEY <service grpc> list
            "mesh_tls": {
                "ca": str(self.mesh_tls().ca_path),
                "operator_cert": str(self.mesh_tls().operator.cert_path),
                "operator_key": str(self.mesh_tls().operator.key_path),
            },
            "edge_access_log": str(edge.access_log_path(self.state_dir)),
            "services": {
                name: {
                    "grpc": e.target,
                    "metrics": f"http://127.0.0.1:{e.ops_port}/metrics",
                    "log": str(self.state_dir / "logs" / f"{name}.log"),
                    "replicas": [r.target for r in self.replicas[name]],
                }
                for name, e in self.services.items()
            },
            # The service registry: every instance under /marketplace/services/.
            "registry": self.etcd_url,
            "postgres": self.postgres_url,
            "mongo": self.mongo_url,
            "redis": self.redis_url,
            "logs": str(self.state_dir / "logs"),
            # Every process with its pid, ports, log, restarts and state, kept current.
            "state_file": str(self.state_dir / "mesh.json"),
            # Verification and password-reset mails of the user service, as .eml files.
            "mailbox": str(self.state_dir / "mailbox"),
        }


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


def print_summary(mesh: Mesh) -> None:
    """Tell the person at the terminal where everything is."""
    print(json.dumps(mesh.describe(), indent=2), flush=True)
    print(
        f"\nThe mesh is up. Try: curl -s {mesh.edge_url}/v1/products?page_size=3\n"
        "Demo accounts: admin@example.com, seller@example.com, buyer@example.com "
        "(password from MARKETPLACE_DEMO_PASSWORD). Ctrl-C stops everything.",
        flush=True,
    )
