"""Render envoy/envoy.yaml.tmpl for a given set of service addresses."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template

from services.devmesh.processes import REPO_ROOT

TEMPLATE = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
DESCRIPTORS = REPO_ROOT / "gen" / "descriptors" / "marketplace.binpb"


@dataclass(frozen=True)
class EdgeConfig:
    """Every value the Envoy template needs."""

    edge_port: int
    admin_port: int
    user_port: int
    user_ops_port: int
    product_port: int
    order_port: int
    listen_address: str = "127.0.0.1"
    user_host: str = "127.0.0.1"
    user_ops_host: str = "127.0.0.1"
    product_host: str = "127.0.0.1"
    order_host: str = "127.0.0.1"
    jwt_issuer: str = "marketplace"
    jwt_audience: str = "marketplace"
    rate_limit_burst: int = 500
    rate_limit_per_second: int = 250
    health_interval: str = "1s"
    # The API reference server (services/devmesh/openapi_docs.py) behind /docs.
    docs_host: str = "127.0.0.1"
    docs_port: int = 8081
    descriptor_path: str = str(DESCRIPTORS)


def render(config: EdgeConfig) -> str:
    """The Envoy bootstrap YAML for `config`; a missing placeholder is an error."""
    return Template(TEMPLATE.read_text()).substitute(
        {key: str(value) for key, value in asdict(config).items()}
    )


def write(config: EdgeConfig, path: Path) -> Path:
    """Render `config` into `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config))
    return path


def kubernetes() -> EdgeConfig:
    """The edge inside the cluster: services by their Service names, files from the image."""
    return EdgeConfig(
        listen_address="0.0.0.0",
        edge_port=8080,
        admin_port=9901,
        user_host="user",
        user_ops_host="user",
        product_host="product",
        order_host="order",
        user_port=50051,
        user_ops_port=9464,
        product_port=50051,
        order_port=50051,
        health_interval="5s",
        rate_limit_burst=2000,
        rate_limit_per_second=1000,
        descriptor_path="/app/gen/descriptors/marketplace.binpb",
    )


if __name__ == "__main__":
    import sys

    write(kubernetes(), Path(sys.argv[1]))
