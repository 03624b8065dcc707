"""The asyncio gRPC server every service runs: health, reflection, ops HTTP and shutdown.

Shutdown order: health turns NOT_SERVING, the server drains in-flight calls for the grace
period, the ops endpoint stops, and only then does the app close its pools.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import structlog
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    ProcessCollector,
    generate_latest,
)

from services.common.auth import KeySource, TokenVerifier
from services.common.config import ServiceSettings
from services.common.interceptor_chain import ChassisInterceptor
from services.common.interceptors import (
    AccessPolicy,
    AuthInterceptor,
    ErrorMappingInterceptor,
    MetricsInterceptor,
    RequestLoggingInterceptor,
)
from services.common.metrics import GrpcMetrics
from services.common.pagination import configure_page_tokens
from services.common.registry import Registry, ServiceInstance, instance_id, open_registry
from services.common.tracing import server_interceptors, shutdown_tracing

log = structlog.get_logger("server")

type AddServicer = Callable[[Any, grpc.aio.Server], None]


@dataclass
class ServiceApp:
    """What a service's composition root hands to the chassis to serve."""

    name: str
    servicers: Sequence[tuple[AddServicer, Any]]
    service_names: Sequence[str]
    policy: AccessPolicy
    key_source: KeySource
    http_routes: Sequence[web.RouteDef] = field(default_factory=tuple)
    # The service's business metrics live here; the ops endpoint serves it with the
    # gRPC and process metrics. The interceptors run innermost (business events).
    metrics_registry: CollectorRegistry | None = None
    interceptors: Sequence[grpc.aio.ServerInterceptor] = field(default_factory=tuple)
    # Why the instance must not take traffic although it started (e.g. a keyring that
    # opens none of its sealed data), or None: it then stays NOT_SERVING and unregistered,
    # so probes keep it out of rotation and a bad rollout stops at its first pod.
    not_ready: Callable[[], str | None] = lambda: None


@dataclass
class RunningServer:
    """A started server: its bound ports and its health servicer."""

    grpc_port: int
    ops_port: int
    health: health.HealthServicer
    service_names: Sequence[str]
    # The plaintext health-only port (0 when there is none).
    health_port: int = 0

    async def set_serving(self, serving: bool) -> None:
        """Flip every service's health status, including the server-wide "" entry."""
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in (*self.service_names, ""):
            await self.health.set(name, status)


async def _start_ops_server(
    host: str, port: int, metrics: GrpcMetrics, routes: Sequence[web.RouteDef]
) -> tuple[web.AppRunner, int]:
    async def metrics_endpoint(_: web.Request) -> web.Response:
        body = generate_latest(metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    ops = web.Application()
    ops.add_routes([web.get("/metrics", metrics_endpoint), *routes])
    runner = web.AppRunner(ops, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


def server_credentials(settings: ServiceSettings) -> grpc.ServerCredentials | None:
    """mTLS: serve the instance's certificate, admit only clients the mesh CA signed.

    None in plaintext mode, which the settings refuse outside dev mode.
    """
    if settings.plaintext:
        return None
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        raise ValueError("mTLS needs tls_cert_file and tls_key_file")
    if settings.tls_ca_file is None:
        raise ValueError("mTLS needs tls_ca_file")
    return grpc.ssl_server_credentials(
        [(settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())],
        root_certificates=settings.tls_ca_file.read_bytes(),
        require_client_auth=True,
    )


def bind_grpc_port(server: grpc.aio.Server, settings: ServiceSettings) -> int:
    """Bind the service's gRPC port, TLS unless plaintext was asked for; the bound port."""
    address = f"{settings.grpc_host}:{settings.grpc_port}"
    credentials = server_credentials(settings)
    if credentials is None:
        log.warning("serving_plaintext", reason="plaintext=true (dev mode)")
        return server.add_insecure_port(address)
    return server.add_secure_port(address, credentials)


async def _start_health_server(
    host: str, port: int, servicer: health.HealthServicer
) -> tuple[grpc.aio.Server, int]:
    """A plaintext server of the health service alone, sharing the main server's statuses.

    The kubelet's grpc probes speak plaintext; this port tells them what the mTLS port's
    health service would, and serves nothing else.
    """
    probe = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    health_pb2_grpc.add_HealthServicer_to_server(servicer, probe)
    bound = probe.add_insecure_port(f"{host}:{port}")
    await probe.start()
    return probe, bound


@asynccontextmanager
async def running_server(
    settings: ServiceSettings, app: ServiceApp
) -> AsyncIterator[RunningServer]:
    """Serve `app` until the block exits, then shut down gracefully."""
    metrics = GrpcMetrics(app.metrics_registry)
    ProcessCollector(registry=metrics.registry)
    configure_page_tokens(settings.internal_secret.get_secret_value())
    verifier = TokenVerifier(
        app.key_source, issuer=settings.jwt_issuer, audience=settings.jwt_audience
    )
    server = grpc.aio.server(
        interceptors=[
            *server_interceptors(),
            # Request id and logging, metrics, deadline, auth, error mapping and, innermost,
            # the text guard (its InvalidArgument goes through the error mapper like any
            # other): one interceptor running the six steps in that order.
            ChassisInterceptor(
                RequestLoggingInterceptor(sample_every=settings.access_log_sample_every),
                MetricsInterceptor(metrics),
                AuthInterceptor(
                    verifier,
                    app.policy,
                    trust_domain=settings.mesh_trust_domain,
                    error_domain=settings.error_domain,
                ),
                ErrorMappingInterceptor(error_domain=settings.error_domain),
            ),
            *app.interceptors,
        ],
        options=[("grpc.so_reuseport", 0)],
    )
    for add, servicer in app.servicers:
        add(servicer, server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [*app.service_names, health.SERVICE_NAME, reflection.SERVICE_NAME], server
    )
    grpc_port = bind_grpc_port(server, settings)
    running = RunningServer(grpc_port, 0, health_servicer, app.service_names)
    await running.set_serving(False)
    await server.start()
    probe_server = None
    if settings.health_port is not None:
        probe_server, running.health_port = await _start_health_server(
            settings.grpc_host, settings.health_port, health_servicer
        )
    ops_runner, running.ops_port = await _start_ops_server(
        settings.grpc_host, settings.ops_port, metrics, app.http_routes
    )
    unready = app.not_ready()
    if unready is None:
        await running.set_serving(True)
        log.info("serving", grpc_port=grpc_port, ops_port=running.ops_port)
    else:
        log.error("not_ready", reason=unready, grpc_port=grpc_port)
    async with open_registry(
        settings.registry_kind, settings.registry_url, ttl_seconds=settings.registry_ttl_seconds
    ) as registry:
        registering = _start_registration(
            registry if unready is None else None, settings, app, running
        )
        try:
            yield running
        finally:
            # Withdrawn before draining: callers and the edge stop picking this instance
            # while it still answers the calls they already sent.
            await _withdraw(registry, registering)
            await running.set_serving(False)
            log.info("not_serving", notice_seconds=settings.shutdown_notice_seconds)
            await asyncio.sleep(settings.shutdown_notice_seconds)
            log.info("draining", grace_seconds=settings.shutdown_grace_seconds)
            await server.stop(settings.shutdown_grace_seconds)
            if probe_server is not None:
                await probe_server.stop(0)
            await ops_runner.cleanup()
            log.info("stopped")


def _start_registration(
    registry: Registry | None, settings: ServiceSettings, app: ServiceApp, running: RunningServer
) -> asyncio.Task[ServiceInstance] | None:
    """Register in the background, retrying while the registry is away; the server serves anyway."""
    if registry is None:
        return None
    instance = ServiceInstance(
        service=app.name,
        instance_id=instance_id(app.name, settings.replica, running.grpc_port),
        address=settings.advertise_address,
        grpc_port=running.grpc_port,
        ops_port=running.ops_port,
        replica=settings.replica,
        version=_version(),
        health_port=running.health_port,
    )

    async def register() -> ServiceInstance:
        delay = 0.2
        while True:
            try:
                await registry.register(instance, health_service=app.service_names[0])
            except Exception as error:  # any adapter's transport error: retry, never crash
                log.error("register_failed", instance=instance.instance_id, error=repr(error))
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)
            else:
                return instance

    return asyncio.create_task(register(), name="registry-register")


async def _withdraw(
    registry: Registry | None, registering: asyncio.Task[ServiceInstance] | None
) -> None:
    if registry is None or registering is None:
        return
    if not registering.done():
        registering.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await registering
        return
    try:
        await registry.deregister(registering.result())
    except Exception as error:  # the lease or health check removes it soon anyway
        log.error("deregister_failed", error=repr(error))


def _version() -> str:
    try:
        return importlib.metadata.version("marketplace-mesh")
    except importlib.metadata.PackageNotFoundError:
        return ""


async def _wait_for_signal() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def serve(
    settings: ServiceSettings,
    build_app: Callable[[], AbstractAsyncContextManager[ServiceApp]],
    *,
    until: Callable[[], Awaitable[None]] = _wait_for_signal,
) -> None:
    """Build the app, serve it until SIGTERM or SIGINT, then shut down in order."""
    try:
        async with build_app() as app, running_server(settings, app):
            await until()
    finally:
        shutdown_tracing()
