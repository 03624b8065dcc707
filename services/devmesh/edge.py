"""The dev mesh's edge settings and how they become an Envoy config (ports, TLS, limits)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from services.devmesh import envoy_config
from services.devmesh.tls import EdgeTls, ensure_edge_tls

if TYPE_CHECKING:
    from services.devmesh.mesh import Mesh

# The storefront's dev server (Vite's default port), on both spellings of the local host.
DEV_STOREFRONT_ORIGINS = ("http://localhost:5173", "http://127.0.0.1:5173")


@dataclass(frozen=True)
class EdgeSettings:
    """What an operator of the dev mesh may tune at the edge (MARKETPLACE_EDGE_* variables).

    The dev defaults are looser than the cluster's (envoy_config.kubernetes()): the demo
    seed and the test suites drive the whole API from one address.
    """

    # HTTPS beside the plain port; 0 picks any free port.
    tls_port: int = 0
    # Proxies in front of the edge whose X-Forwarded-For entry is believed (0: none).
    xff_num_trusted_hops: int = 0
    # Origins browsers may call from; the edge's own origins are added in dev.
    cors_allowed_origins: tuple[str, ...] = DEV_STOREFRONT_ORIGINS
    client_rate_limit_burst: int = 200
    client_rate_limit_per_second: int = 100
    auth_rate_limit_burst: int = 100
    auth_rate_limit_per_minute: int = 600
    user_rate_limit_burst: int = 200
    user_rate_limit_per_second: int = 100
    body_max_bytes: int = 1024 * 1024
    url_max_bytes: int = 8192
    # Successful requests in the access log, in percent; errors are always written.
    access_log_success_percent: int = 100


def settings_from_environment() -> EdgeSettings:
    """EdgeSettings from MARKETPLACE_EDGE_* variables, as documented in the README."""
    env = os.environ
    defaults = EdgeSettings()
    origins = env.get("MARKETPLACE_EDGE_CORS_ORIGINS")
    return EdgeSettings(
        tls_port=int(env.get("MARKETPLACE_EDGE_TLS_PORT", "8443")),
        xff_num_trusted_hops=int(env.get("MARKETPLACE_EDGE_XFF_TRUSTED_HOPS", "0")),
        cors_allowed_origins=(
            tuple(o.strip() for o in origins.split(",") if o.strip())
            if origins is not None
            else defaults.cors_allowed_origins
        ),
    )


def config_for(mesh: Mesh, admin_port: int, tls_port: int) -> envoy_config.EdgeConfig:
    """The Envoy config of the mesh's edge: plain on the edge port, HTTPS on `tls_port`."""
    options, settings = mesh.options, mesh.options.edge
    certificate = edge_certificate(mesh.state_dir)
    own_origins = (
        f"http://127.0.0.1:{options.edge_port}",
        f"http://localhost:{options.edge_port}",
        f"https://127.0.0.1:{tls_port}",
        f"https://localhost:{tls_port}",
    )
    return envoy_config.EdgeConfig(
        edge_port=options.edge_port,
        admin_port=admin_port,
        user_port=mesh.services["user"].grpc_port,
        user_ops_port=mesh.services["user"].ops_port,
        product_port=mesh.services["product"].grpc_port,
        order_port=mesh.services["order"].grpc_port,
        rate_limit_burst=options.rate_limit_burst,
        rate_limit_per_second=options.rate_limit_per_second,
        client_rate_limit_burst=settings.client_rate_limit_burst,
        client_rate_limit_per_second=settings.client_rate_limit_per_second,
        auth_rate_limit_burst=settings.auth_rate_limit_burst,
        auth_rate_limit_per_minute=settings.auth_rate_limit_per_minute,
        user_rate_limit_burst=settings.user_rate_limit_burst,
        user_rate_limit_per_second=settings.user_rate_limit_per_second,
        xff_num_trusted_hops=settings.xff_num_trusted_hops,
        cors_allowed_origins=(*settings.cors_allowed_origins, *own_origins),
        body_max_bytes=settings.body_max_bytes,
        url_max_bytes=settings.url_max_bytes,
        access_log_path=str(access_log_path(mesh.state_dir)),
        access_log_success_percent=settings.access_log_success_percent,
        trace_sampling_percent=options.trace_sample_ratio * 100,
        tls_port=tls_port,
        tls_cert_path=str(certificate.cert_path),
        tls_key_path=str(certificate.key_path),
        **upstream_tls(mesh),
    )


def upstream_tls(mesh: Mesh) -> envoy_config.UpstreamTls:
    """The EdgeConfig fields of the edge's mTLS to the mesh's services (its client cert)."""
    tls = mesh.mesh_tls()
    return {
        "upstream_cert_path": str(tls.edge_client.cert_path),
        "upstream_key_path": str(tls.edge_client.key_path),
        "upstream_ca_path": str(tls.ca_path),
    }


def edge_certificate(state_dir: Path) -> EdgeTls:
    """The dev CA (`<state dir>/tls/ca.pem`) and the edge's certificate, reused when valid."""
    return ensure_edge_tls(state_dir / "tls")


def ca_path(state_dir: Path) -> Path:
    """The dev CA certificate clients trust to reach the edge over HTTPS."""
    return state_dir / "tls" / "ca.pem"


def access_log_path(state_dir: Path) -> Path:
    """The edge's JSON-lines access log."""
    return state_dir / "logs" / "edge-access.log"
