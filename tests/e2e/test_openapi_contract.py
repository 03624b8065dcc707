"""The live edge against its OpenAPI document: schemathesis drives every operation.

Checks, per generated request (valid and invalid ones): no 5xx, every status is one the
document lists, every JSON body matches the schema the document gives for that status.
Bounded: a few examples per operation, no shrinking, no stateful phase.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from requests.adapters import HTTPAdapter
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import SchemathesisConfig

from services.devmesh.mesh import Mesh
from services.devmesh.openapi_docs import DOCUMENT
from tests.support.edge import DEMO_PASSWORD, login, register

MAX_EXAMPLES = 6
# Failed sign-ins are throttled per client address: the fuzzer connects from an address
# of its own on the loopback network, so its failures never lock out the other tests.
FUZZER_ADDRESS = "127.0.0.77"

CONFIG = SchemathesisConfig.from_dict(
    {
        "generation": {"max-examples": MAX_EXAMPLES, "mode": "all", "no-shrink": True},
        "phases": {
            "examples": {"enabled": True},
            "coverage": {"enabled": False},
            "fuzzing": {"enabled": True},
            "stateful": {"enabled": False},
        },
    }
)
schema = schemathesis.openapi.from_path(DOCUMENT, config=CONFIG)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


class _FromAddress(HTTPAdapter):
    """Opens every connection from one local source address."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (FUZZER_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


@pytest.fixture(scope="module")
def fuzz_token(mesh: Mesh, edge: httpx.Client) -> str:
    """An account of its own (customer and seller), so what the fuzzer does to it, such
    as signing out everywhere, touches no other test's account."""
    email, user_id = register(edge)
    admin = login(edge, "admin@example.com", DEMO_PASSWORD)
    promoted = edge.post(
        f"/v1/users/{user_id}:setRoles",
        headers=admin.headers,
        json={"roles": ["ROLE_CUSTOMER", "ROLE_SELLER"]},
    )
    assert promoted.status_code == 200, promoted.text
    return login(edge, email, "correct-horse-battery").access_token


@pytest.fixture(scope="module")
def fuzz_session() -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.mount("http://", _FromAddress())
        yield session


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_edge_keeps_its_openapi_contract(
    case: schemathesis.Case[Any], mesh: Mesh, fuzz_token: str, fuzz_session: requests.Session
) -> None:
    headers = {"Authorization": f"Bearer {fuzz_token}", "X-Request-Id": uuid.uuid4().hex}
    case.call_and_validate(
        base_url=mesh.edge_url,
        session=fuzz_session,
        headers=headers,
        checks=CHECKS,
        timeout=20,
    )


def test_the_documented_query_names_are_the_ones_the_edge_reads(edge: httpx.Client) -> None:
    """The document names query parameters in camelCase; the edge refuses unknown ones."""
    parameters = {
        p["name"]
        for p in json.loads(DOCUMENT.read_text())["paths"]["/v1/products"]["get"]["parameters"]
        if p["in"] == "query"
    }
    assert {"pageSize", "minPriceMinor"} <= parameters
    response = edge.get("/v1/products", params={"pageSize": 2, "minPriceMinor": "1"})
    assert response.status_code == 200, response.text
    assert len(response.json()["products"]) == 2
    assert edge.get("/v1/products", params={"notAField": 1}).status_code == 400
