"""The generated OpenAPI document says what the edge speaks (nox -s lint keeps it fresh)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openapi_spec_validator import validate

from services.common.access import Access
from services.devmesh.envoy_config import load_contract
from services.devmesh.openapi_docs import DOCUMENT

METHODS = ("get", "put", "post", "delete", "patch")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DOCUMENT.read_text())
    return loaded


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_it_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_http_rule_is_one_operation_on_one_path_template(document: dict[str, Any]) -> None:
    found = operations(document)
    assert len(found) == 79  # 77, with ExportMyData and DeleteMyAccount
    assert len({op["operationId"] for _, _, op in found}) == len(found)
    # `{product_id}` and `{product.product_id}` are the same route: one path, same name.
    shapes = [(method, re.sub(r"\{[^}]+\}", "{}", path)) for method, path, _ in found]
    assert len(set(shapes)) == len(shapes)
    assert not [
        path for path in document["paths"] if "." in "".join(re.findall(r"\{[^}]+\}", path))
    ]
    assert "patch" in document["paths"]["/v1/products/{productId}"]


def test_names_and_types_are_proto3_json(document: dict[str, Any]) -> None:
    product = document["components"]["schemas"]["Product"]
    properties = product["properties"]
    assert {"productId", "listPrice", "stockAvailable", "createTime"} <= set(properties)
    assert not [name for name in properties if "_" in name]
    assert properties["stockAvailable"]["type"] == "string"  # int64
    assert properties["createTime"]["$ref"] == "#/components/schemas/Timestamp"
    assert document["components"]["schemas"]["Timestamp"]["format"] == "date-time"
    assert document["components"]["schemas"]["Money"]["properties"]["units"]["type"] == "string"
    assert "PRODUCT_STATE_PUBLISHED" in document["components"]["schemas"]["ProductState"]["enum"]
    mask = document["paths"]["/v1/products/{productId}"]["patch"]["parameters"][1]
    assert (mask["name"], mask["in"], mask["schema"]["type"]) == ("updateMask", "query", "string")


def test_field_behaviours_become_required_and_read_only(document: dict[str, Any]) -> None:
    product = document["components"]["schemas"]["Product"]
    assert set(product["required"]) == {"title", "category", "listPrice"}
    assert product["properties"]["productId"]["readOnly"] is True
    # A partial update reads only the fields in updateMask, so none is required there.
    assert "required" not in document["components"]["schemas"]["ProductUpdate"]


def test_bearer_security_exactly_where_the_contract_demands_a_token(
    document: dict[str, Any],
) -> None:
    public = {
        op["operationId"].split("_", 1)[1]
        for _, _, op in operations(document)
        if {} in op["security"]
    }
    declared = {
        rpc.path.rsplit("/", 1)[1] for rpc in load_contract() if rpc.access is Access.PUBLIC
    }
    assert public == declared
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    for _, _, op in operations(document):
        assert {"bearer": []} in op["security"]


def test_idempotency_key_header_on_the_operations_that_read_it(document: dict[str, Any]) -> None:
    with_header = {
        op["operationId"]
        for _, _, op in operations(document)
        for parameter in op.get("parameters", [])
        if parameter["in"] == "header" and parameter["name"] == "Idempotency-Key"
    }
    assert with_header == {
        "OrderService_CreateOrder",
        "OrderService_RefundOrder",
        "CartService_CheckoutCart",
        "ReturnService_CreateReturn",
    }


def test_every_error_status_has_the_json_error_body(document: dict[str, Any]) -> None:
    status = document["components"]["schemas"]["Status"]
    assert status["required"] == ["code", "message"]
    for _, _, op in operations(document):
        errors = {code for code in op["responses"] if code != "200"}
        assert {"400", "401", "404", "429", "503"} <= errors
        for code in errors:
            name = op["responses"][code]["$ref"].rsplit("/", 1)[1]
            content = document["components"]["responses"][name]["content"]
            assert content["application/json"]["schema"]["$ref"].endswith("/Status")
