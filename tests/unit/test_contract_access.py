"""The access option of every RPC is the one source of the services' policy and the edge's rules."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.common.access import Access, AccessPolicy, ContractRpc
from services.devmesh import envoy_config
from services.order.app import CART_SERVICE_NAME as CART_SERVICE
from services.order.app import INTERNAL_SERVICE_NAME as ORDER_INTERNAL_SERVICE
from services.order.app import PAYOUT_SERVICE_NAME as PAYOUT_SERVICE
from services.order.app import RETURN_SERVICE_NAME as RETURN_SERVICE
from services.order.app import SERVICE_NAME as ORDER_SERVICE
from services.product.app import POLICY as PRODUCT_POLICY
from services.user.app import POLICY as USER_POLICY

ROOT = Path(__file__).resolve().parents[2]
K8S_EDGE = ROOT / "k8s" / "envoy" / "envoy.yaml"
CONTRACT = envoy_config.load_contract()
OPTIONAL = "optional"
REQUIRED = "required"
NONE = "none"


def _sample_path(template: str) -> str:
    """A concrete path the template matches: every variable becomes one id segment."""
    return re.sub(r"\{[^}]*\}", "id-1", template)


def _jwt_rules(config_text: str) -> list[dict[str, Any]]:
    config = yaml.safe_load(config_text)
    listener = config["static_resources"]["listeners"][0]
    manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
    jwt = next(f for f in manager["http_filters"] if f["name"] == "envoy.filters.http.jwt_authn")
    rules: list[dict[str, Any]] = jwt["typed_config"]["rules"]
    return rules


def _requirement(rules: list[dict[str, Any]], verb: str, path: str) -> str:
    """What Envoy's jwt_authn asks of a request: the first matching rule decides."""
    for rule in rules:
        match = rule["match"]
        headers = {h["name"]: h["string_match"]["exact"] for h in match.get("headers", [])}
        if headers.get(":method", verb) != verb:
            continue
        if "path" in match and match["path"] != path:
            continue
        if "prefix" in match and not path.startswith(match["prefix"]):
            continue
        if "safe_regex" in match and not re.fullmatch(match["safe_regex"]["regex"], path):
            continue
        requires = rule["requires"]
        allow_missing = {"allow_missing": {}} in requires.get("requires_any", {}).get(
            "requirements", []
        )
        return OPTIONAL if allow_missing else REQUIRED
    return NONE


def test_every_rpc_declares_its_access_and_only_internal_ones_have_no_route() -> None:
    assert len(CONTRACT) > 60
    for rpc in CONTRACT:
        is_internal = ".v1." in rpc.path and "InternalService/" in rpc.path
        assert (rpc.access is Access.INTERNAL) == is_internal, rpc.path
        assert bool(rpc.http) == (rpc.access is not Access.INTERNAL), rpc.path


def test_the_services_policies_are_the_contracts_options() -> None:
    declared = {rpc.path: rpc.access for rpc in CONTRACT}
    order_policy = AccessPolicy.from_contract(
        ORDER_SERVICE, CART_SERVICE, RETURN_SERVICE, ORDER_INTERNAL_SERVICE, PAYOUT_SERVICE
    )
    served = {**USER_POLICY.methods, **PRODUCT_POLICY.methods, **order_policy.methods}
    assert served == declared
    assert USER_POLICY.is_public("/marketplace.user.v1.UserService/Login")
    assert not USER_POLICY.is_public("/marketplace.user.v1.UserService/GetUser")
    assert PRODUCT_POLICY.is_internal(
        "/marketplace.product.v1.ProductInternalService/ReserveInventory"
    )
    assert USER_POLICY.is_public("/grpc.health.v1.Health/Check")


@pytest.mark.parametrize("config_text", [K8S_EDGE.read_text(), "dev"], ids=["k8s", "dev"])
def test_the_edge_requires_a_token_exactly_where_the_contract_does(config_text: str) -> None:
    if config_text == "dev":
        config_text = envoy_config.render(
            envoy_config.EdgeConfig(
                edge_port=1, admin_port=2, user_port=3, user_ops_port=4, product_port=5,
                order_port=6, upstream_plaintext=True,
            )
        )  # fmt: skip
    rules = _jwt_rules(config_text)
    expected = {Access.PUBLIC: OPTIONAL, Access.AUTHENTICATED: REQUIRED, Access.INTERNAL: NONE}
    seen: dict[tuple[str, str], str] = {}
    for rpc in CONTRACT:
        seen[("POST", rpc.path)] = _requirement(rules, "POST", rpc.path)
        for verb, template in rpc.http:
            seen[(verb, _sample_path(template))] = _requirement(rules, verb, _sample_path(template))
    wanted: dict[tuple[str, str], str] = {}
    for rpc in CONTRACT:
        wanted[("POST", rpc.path)] = expected[rpc.access]
        for verb, template in rpc.http:
            wanted[(verb, _sample_path(template))] = expected[rpc.access]
    assert seen == wanted
    # gRPC methods the contract does not know fail closed. A REST path it does not bind
    # needs no token: no route admits it, so it answers 404 with or without one (e2e).
    assert _requirement(rules, "POST", "/marketplace.user.v1.UserService/Unknown") == REQUIRED
    assert _requirement(rules, "PUT", "/v1/products/id-1") == NONE
    assert _requirement(rules, "GET", "/healthz") == NONE


def test_a_contract_rpc_without_access_is_refused() -> None:
    from google.protobuf import descriptor_pb2

    from services.common.access import contract_rpcs

    files = descriptor_pb2.FileDescriptorSet()
    file = files.file.add(name="marketplace/x/v1/x.proto", package="marketplace.x.v1")
    file.service.add(name="XService").method.add(name="Get")
    with pytest.raises(ValueError, match="does not set"):
        contract_rpcs(files)


def test_verb_templates_are_matched_before_the_plain_resource_template() -> None:
    rpcs = [
        ContractRpc("/p.S/Get", Access.PUBLIC, (("GET", "/v1/{name=things/*}"),)),
        ContractRpc("/p.S/Watch", Access.AUTHENTICATED, (("GET", "/v1/{name=things/*}:watch"),)),
    ]
    text = envoy_config._render_rules(envoy_config.jwt_rules(rpcs))
    rules = yaml.safe_load(text)
    assert _requirement(rules, "GET", "/v1/things/a:watch") == REQUIRED
    assert _requirement(rules, "GET", "/v1/things/a") == OPTIONAL


@pytest.mark.parametrize("config_text", [K8S_EDGE.read_text(), "dev"], ids=["k8s", "dev"])
def test_idempotent_routes_retry_elsewhere_and_one_slow_check_ejects_nothing(
    config_text: str,
) -> None:
    if config_text == "dev":
        config_text = envoy_config.render(
            envoy_config.EdgeConfig(
                edge_port=1, admin_port=2, user_port=3, user_ops_port=4, product_port=5,
                order_port=6, upstream_plaintext=True,
            )
        )  # fmt: skip
    config = yaml.safe_load(config_text)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
    routes = hcm["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    retried = {
        r["match"].get("path"): r["route"]["retry_policy"]
        for r in routes
        if "retry_policy" in r.get("route", {})
    }
    idempotent = {
        rpc.path for rpc in CONTRACT if rpc.idempotent and rpc.access is not Access.INTERNAL
    }
    assert set(retried) == idempotent
    for policy in retried.values():
        # A retry never goes back to the instance that just failed (a killed replica).
        assert [p["name"] for p in policy["retry_host_predicate"]] == [
            "envoy.retry_host_predicates.previous_hosts"
        ]
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for name in ("user", "product", "order"):
        (check,) = clusters[name]["health_checks"]
        assert check["unhealthy_threshold"] == 2
