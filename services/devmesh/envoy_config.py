"""Render envoy/envoy.yaml.tmpl for a given set of service addresses."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import TypedDict

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


class UpstreamTls(TypedDict):
    """The EdgeConfig fields of the edge's mTLS to the services (its client certificate)."""

    upstream_cert_path: str
    upstream_key_path: str
    upstream_ca_path: str


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
    # Two missed checks in a row take a replica out (envoy.yaml.tmpl).
    health_interval: str = "0.5s"
    # The API reference server (services/devmesh/openapi_docs.py) behind /docs.
    docs_host: str = "127.0.0.1"
    docs_port: int = 8081
    # The storefront's static server (services/devmesh/storefront.py, or its own image).
    storefront_host: str = "127.0.0.1"
    storefront_port: int = 8082
    descriptor_path: str = str(DESCRIPTORS)
    access_log_path: str = "/dev/stdout"
    # Successful requests written to the access log, in percent (errors always are).
    access_log_success_percent: int = 100
    # Requests without a sampling decision that start a trace, in percent: the same ratio
    # as the services' OTEL_TRACES_SAMPLER_ARG, or the edge decides for them (every trace
    # it starts is followed by the parent-based samplers of the services).
    trace_sampling_percent: float = 100.0
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
    # Where the dev mesh keeps the endpoint files of the user, product, order and user_ops
    # clusters (EDS from files, kept equal to the registry); empty means each cluster
    # resolves its host name instead (STRICT_DNS: Kubernetes' headless Services).
    eds_dir: str = ""
    # mTLS to the services: the edge's client certificate and the mesh CA. Plaintext
    # upstreams only when asked for (a rendering test); the services refuse them anyway.
    upstream_cert_path: str = ""
    upstream_key_path: str = ""
    upstream_ca_path: str = ""
    upstream_plaintext: bool = False
    mesh_trust_domain: str = "marketplace.local"


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


# The cluster of each public service, and the timeout of its routes.
_ROUTE_CLUSTERS = {
    "marketplace.user.v1.UserService": "user",
    "marketplace.product.v1.ProductService": "product",
    "marketplace.order.v1.OrderService": "order",
    "marketplace.order.v1.PayoutService": "order",
}
_ROUTE_INDENT = " " * 24
# Retried only where a repeat is safe: the attempt never reached a service that could act
# (a refused or reset connection, UNAVAILABLE from a draining instance). Each retry goes to
# another instance than the ones already tried (previous_hosts), as long as one is left:
# without it, round-robin under concurrent load may hand a retry to the replica that was
# just killed. Bounded by the cluster's retry circuit breaker.
RETRY_POLICY = (
    '{ retry_on: "connect-failure,refused-stream,reset,unavailable", num_retries: 2, '
    "retry_back_off: { base_interval: 0.025s, max_interval: 0.25s }, "
    "retry_host_predicate: [{ name: envoy.retry_host_predicates.previous_hosts, typed_config: "
    '{ "@type": type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.'
    "PreviousHostsPredicate } }], host_selection_retry_max_attempts: 3 }"
)
# Seconds a call through the edge may take: reads are quick, a checkout waits for the
# payment processor.
READ_TIMEOUT = "15s"
WRITE_TIMEOUT = {"user": "30s", "product": "30s", "order": "60s"}


def retry_routes(rpcs: list[ContractRpc]) -> list[dict[str, str]]:
    """One route per idempotent public or authenticated RPC: its timeout and retry policy.

    The other methods of a service take its prefix route (a timeout, no retry).
    """
    routes = []
    for rpc in rpcs:
        service = rpc.path.split("/")[1]
        cluster = _ROUTE_CLUSTERS.get(service)
        if cluster is None or rpc.access is Access.INTERNAL or not rpc.idempotent:
            continue
        timeout = READ_TIMEOUT if rpc.read_only else WRITE_TIMEOUT[cluster]
        routes.append({"path": rpc.path, "cluster": cluster, "timeout": timeout})
    return routes


def _render_routes(routes: list[dict[str, str]]) -> str:
    lines = []
    for route in routes:
        lines.append(f"- match: {{ path: {route['path']} }}")
        lines.append(
            f"  route: {{ cluster: {route['cluster']}, timeout: {route['timeout']}, "
            f"retry_policy: {RETRY_POLICY} }}"
        )
    return "\n".join(_ROUTE_INDENT + line for line in lines)


def _render_rules(rules: list[dict[str, object]]) -> str:
    lines = []
    for rule in rules:
        lines.append(f"# {rule['rpc'] or 'any other method of the service'}")
        lines.append(f"- match: {json.dumps(rule['match'])}")
        lines.append(f"  requires: {rule['requires']}")
    return "\n".join(_RULE_INDENT + line for line in lines)


def render(config: EdgeConfig) -> str:
    """The Envoy bootstrap YAML for `config`; a missing placeholder is an error."""
    sections = {
        "tls_primary": config.tls_primary,
        "tls_secondary": config.tls_port > 0,
        "eds": bool(config.eds_dir),
        "dns": not config.eds_dir,
        "upstream_tls": not config.upstream_plaintext,
    }
    if (sections["tls_primary"] or sections["tls_secondary"]) and not (
        config.tls_cert_path and config.tls_key_path
    ):
        raise ValueError("TLS needs tls_cert_path and tls_key_path")
    upstream = (config.upstream_cert_path, config.upstream_key_path, config.upstream_ca_path)
    if sections["upstream_tls"] and not all(upstream):
        raise ValueError(
            "mTLS to the services needs upstream_cert_path, upstream_key_path and "
            "upstream_ca_path (or upstream_plaintext=True)"
        )

    def keep(match: re.Match[str]) -> str:
        return match.group(2) if sections[match.group(1)] else ""

    text = _SECTION.sub(keep, TEMPLATE.read_text())
    values = {key: str(value) for key, value in asdict(config).items()}
    values["cors_allowed_origins"] = json.dumps(
        [{"exact": origin} for origin in config.cors_allowed_origins]
    )
    contract = load_contract(DESCRIPTORS)
    values["jwt_rules"] = _render_rules(jwt_rules(contract))
    values["retry_routes"] = _render_routes(retry_routes(contract))
    return Template(text).substitute(values)


def write(config: EdgeConfig, path: Path) -> Path:
    """Render `config` into `path` and return it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(config))
    return path


def kubernetes() -> EdgeConfig:
    """The edge inside the cluster: HTTPS only, every pod of each headless Service.

    The certificate comes from the `edge-tls` Secret (k8s/edge.yaml); the cluster's load
    balancer connects straight to the pods, so no X-Forwarded-For hop is trusted.
    """
    return EdgeConfig(
        listen_address="0.0.0.0",
        edge_port=8443,
        admin_port=9901,
        # Headless Services: each name resolves to every ready pod (STRICT_DNS).
        user_host="user.marketplace.svc.cluster.local",
        user_ops_host="user.marketplace.svc.cluster.local",
        product_host="product.marketplace.svc.cluster.local",
        order_host="order.marketplace.svc.cluster.local",
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
        # cert-manager's edge-mesh-tls Secret (k8s/mesh-tls.yaml).
        upstream_cert_path="/etc/mesh-tls/tls.crt",
        upstream_key_path="/etc/mesh-tls/tls.key",
        upstream_ca_path="/etc/mesh-tls/ca.crt",
        storefront_host="storefront",
        storefront_port=8080,
        # k8s/base samples one trace in ten (OTEL_TRACES_SAMPLER_ARG=0.1): so does the edge.
        trace_sampling_percent=10.0,
        access_log_success_percent=10,
    )


if __name__ == "__main__":
    import sys

    write(kubernetes(), Path(sys.argv[1]))
