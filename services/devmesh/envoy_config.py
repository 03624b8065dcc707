"""Render envoy/envoy.yaml.tmpl for a given set of service addresses."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template

from google.protobuf import descriptor_pb2

from services.common.access import Access, ContractRpc, contract_rpcs
from services.devmesh.processes import REPO_ROOT

TEMPLATE = REPO_ROOT / "envoy" / "envoy.yaml.tmpl"
DESCRIPTORS = REPO_ROOT / "gen" / "descriptors" / "marketplace.binpb"
# "#[if NAME]" ... "#[end NAME]": a block of the template kept only when NAME is enabled.
_SECTION = re.compile(r"^[ \t]*#\[if (\w+)\]\n(.*?)^[ \t]*#\[end \1\]\n", re.MULTILINE | re.DOTALL)
# A path template variable: `{name}` or `{name=products/*}`.
_VARIABLE = re.compile(r"\{([\w.]+)(?:=([^}]*))?\}")
_RULE_INDENT = " " * 24
# The jwt_authn requirement of each access level; INTERNAL RPCs have no edge route.
TOKEN_OPTIONAL = (
    "{ requires_any: { requirements: [{ provider_name: marketplace }, { allow_missing: {} }] } }"
)
TOKEN_REQUIRED = "{ provider_name: marketplace }"
REQUIREMENTS = {Access.PUBLIC: TOKEN_OPTIONAL, Access.AUTHENTICATED: TOKEN_REQUIRED}


@dataclass(frozen=True)
class EdgeConfig:
    """Every value the Envoy template needs.

    Rate limits are token buckets (burst, then a refill rate); the client limits hold per
    client address, the user limit per token subject, the global one for the whole edge.
    """

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
    # Global safety bucket, all clients together.
    rate_limit_burst: int = 500
    rate_limit_per_second: int = 250
    # Per client address, every request.
    client_rate_limit_burst: int = 200
    client_rate_limit_per_second: int = 100
    # Per client address: sign-in, registration and password reset.
    auth_rate_limit_burst: int = 100
    auth_rate_limit_per_minute: int = 600
    # Per signed-in user (token subject).
    user_rate_limit_burst: int = 200
    user_rate_limit_per_second: int = 100
    # Proxies in front of the edge whose X-Forwarded-For entries are believed.
    xff_num_trusted_hops: int = 0
    # Origins browsers may call the API from (CORS); none by default.
    cors_allowed_origins: tuple[str, ...] = ()
    body_max_bytes: int = 1024 * 1024
    url_max_bytes: int = 8192
    health_interval: str = "1s"
    # The API reference server (services/devmesh/openapi_docs.py) behind /docs.
    docs_host: str = "127.0.0.1"
    docs_port: int = 8081
    # The storefront's static server (services/devmesh/storefront.py, or its own image).
    storefront_host: str = "127.0.0.1"
    storefront_port: int = 8082
    descriptor_path: str = str(DESCRIPTORS)
    access_log_path: str = "/dev/stdout"
    # HTTPS: tls_primary makes the edge port itself TLS (production); tls_port > 0 adds a
    # TLS listener beside the plain one (dev mesh).
    tls_primary: bool = False
    tls_port: int = 0
    tls_cert_path: str = ""
    tls_key_path: str = ""
    # Tracing: spans go over OTLP/gRPC to a collector (the dev mesh's receiver, or the
    # cluster's OpenTelemetry Collector).
    otlp_host: str = "127.0.0.1"
    otlp_port: int = 4317
    # A listener serving only /stats/prometheus (never the rest of the admin API), for
    # Prometheus; 0 picks a free port.
    stats_port: int = 0


def _segment_regex(segments: str) -> str:
    """The regex of a template's literal text and `*` / `**` wildcards."""
    parts = []
    for piece in re.split(r"(\*\*|\*)", segments):
        if piece == "**":
            parts.append(".+")
        elif piece == "*":
            parts.append("[^/]+")
        else:
            parts.append(re.escape(piece))
    return "".join(parts)


def template_regex(template: str) -> str:
    """The regex a REST path must match to reach the RPC of a google.api.http template."""
    regex, last = [], 0
    for variable in _VARIABLE.finditer(template):
        regex.append(_segment_regex(template[last : variable.start()]))
        regex.append(_segment_regex(variable.group(2) or "*"))
        last = variable.end()
    regex.append(_segment_regex(template[last:]))
    return "^" + "".join(regex) + "$"


def load_contract(path: Path = DESCRIPTORS) -> list[ContractRpc]:
    """The RPCs of the descriptor set the edge serves."""
    return contract_rpcs(descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()))


def jwt_rules(rpcs: list[ContractRpc]) -> list[dict[str, object]]:
    """The jwt_authn rules of the contract, in match order (the first match decides).

    One rule per REST binding and per gRPC path of every public or authenticated RPC;
    bindings with a custom verb come first, so `/v1/orders/1:watch` is never taken for
    `/v1/orders/{order_id}`. Last, any other method of the public gRPC services needs a
    token. Other REST paths need none: the routes admit only the contract's bindings, so
    an unknown path answers 404 whether or not a token came with it.
    """
    rest: list[dict[str, object]] = []
    grpc: list[dict[str, object]] = []
    services: dict[str, None] = {}
    for rpc in rpcs:
        if rpc.access is Access.INTERNAL:
            continue
        requirement = REQUIREMENTS[rpc.access]
        for verb, template in rpc.http:
            match: dict[str, object] = (
                {"safe_regex": {"regex": template_regex(template)}}
                if "{" in template or "*" in template
                else {"path": template}
            )
            match["headers"] = [{"name": ":method", "string_match": {"exact": verb}}]
            has_verb = ":" in template.rsplit("/", 1)[-1]
            rest.append(
                {"match": match, "requires": requirement, "rpc": rpc.path, "verb": has_verb}
            )
        grpc.append({"match": {"path": rpc.path}, "requires": requirement, "rpc": rpc.path})
        services[rpc.path.rsplit("/", 1)[0] + "/"] = None
    rest.sort(key=lambda rule: not rule.pop("verb"))  # stable: verbs first, else in order
    fallbacks: list[dict[str, object]] = [
        {"match": {"prefix": prefix}, "requires": TOKEN_REQUIRED, "rpc": ""} for prefix in services
    ]
    return [*rest, *grpc, *fallbacks]


def _render_rules(rules: list[dict[str, object]]) -> str:
    lines = []
    for rule in rules:
        lines.append(f"# {rule['rpc'] or 'any other method of the service'}")
        lines.append(f"- match: {json.dumps(rule['match'])}")
        lines.append(f"  requires: {rule['requires']}")
    return "\n".join(_RULE_INDENT + line for line in lines)


def render(config: EdgeConfig) -> str:
    """The Envoy bootstrap YAML for `config`; a missing placeholder is an error."""
    sections = {"tls_primary": config.tls_primary, "tls_secondary": config.tls_port > 0}
    if any(sections.values()) and not (config.tls_cert_path and config.tls_key_path):
        raise ValueError("TLS needs tls_cert_path and tls_key_path")

    def keep(match: re.Match[str]) -> str:
        return match.group(2) if sections[match.group(1)] else ""

    text = _SECTION.sub(keep, TEMPLATE.read_text())
    values = {key: str(value) for key, value in asdict(config).items()}
    values["cors_allowed_origins"] = json.dumps(
        [{"exact": origin} for origin in config.cors_allowed_origins]
    )
    values["jwt_rules"] = _render_rules(jwt_rules(load_contract(DESCRIPTORS)))
    return Template(text).substitute(values)


def write(config: EdgeConfig, path: Path) -> Path:
    """Render `config` into `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config))
    return path


def kubernetes() -> EdgeConfig:
    """The edge inside the cluster: HTTPS only, services by their Service names.

    The certificate comes from the `edge-tls` Secret (k8s/edge.yaml); the cluster's load
    balancer connects straight to the pods, so no X-Forwarded-For hop is trusted.
    """
    return EdgeConfig(
        listen_address="0.0.0.0",
        edge_port=8443,
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
        client_rate_limit_burst=100,
        client_rate_limit_per_second=20,
        auth_rate_limit_burst=10,
        auth_rate_limit_per_minute=10,
        user_rate_limit_burst=100,
        user_rate_limit_per_second=20,
        descriptor_path="/app/gen/descriptors/marketplace.binpb",
        tls_primary=True,
        tls_cert_path="/etc/envoy-tls/tls.crt",
        tls_key_path="/etc/envoy-tls/tls.key",
        otlp_host="otel-collector",
        stats_port=9902,
        storefront_host="storefront",
        storefront_port=8080,
    )


if __name__ == "__main__":
    import sys

    write(kubernetes(), Path(sys.argv[1]))
