"""The OpenAPI 3.1 document of the public services: info, tags, paths and components."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from services.common.access import Access, contract_rpcs
from services.devmesh.openapi.descriptors import Index
from services.devmesh.openapi.errors import ERROR_MEANINGS, STATUS_SCHEMA, response_name
from services.devmesh.openapi.operations import OperationBuilder, routes
from services.devmesh.openapi.schemas import SchemaBuilder
from services.devmesh.openapi.wellknown import Schema

# The services the edge transcodes (envoy/envoy.yaml.tmpl); internal services have no route.
PUBLIC_SERVICES = (
    "marketplace.user.v1.UserService",
    "marketplace.product.v1.ProductService",
    "marketplace.order.v1.OrderService",
    "marketplace.order.v1.CartService",
    "marketplace.order.v1.ReturnService",
    "marketplace.order.v1.PayoutService",
)


def build(
    descriptor_set: descriptor_pb2.FileDescriptorSet, public_methods: frozenset[str]
) -> Schema:
    """The OpenAPI 3.1 document of the public services in `descriptor_set`.

    Args:
        descriptor_set: The contracts and all their imports, with source info.
        public_methods: Full method names (`/pkg.Service/Method`) callable without a token;
            every other method requires a bearer access token.

    Returns:
        The document as JSON-ready dicts.
    """
    index = Index.of(descriptor_set.file)
    components = SchemaBuilder(index)
    builder = OperationBuilder(components, public_methods)
    components.ref(".google.protobuf.Any")
    paths: dict[str, dict[str, Schema]] = {}
    tags = []
    for service_name in PUBLIC_SERVICES:
        service = index.services[service_name]
        tags.append(
            {
                "name": service_name.rsplit(".", 1)[-1],
                "description": index.comments.get(f".{service_name}", ""),
            }
        )
        for method in service.method:
            for route in routes(method):
                path, operation = builder.operation(service_name, method, route)
                if route.method in paths.setdefault(path, {}):
                    raise ValueError(f"two operations for {route.method.upper()} {path}")
                paths[path][route.method] = operation
    schemas = dict(sorted(components.schemas.items()))
    schemas["Status"] = STATUS_SCHEMA
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Marketplace API",
            "version": "v1",
            "description": (
                "The REST/JSON surface of the marketplace edge, transcoded to the gRPC "
                "services of `proto/`. JSON follows the proto3 JSON mapping: camelCase names "
                "(snake_case is accepted in requests), 64-bit integers as strings, enums by "
                "name, timestamps as RFC 3339 strings. Sign in with `POST /v1/auth/login` "
                "and send the `accessToken` as `Authorization: Bearer <token>`."
            ),
        },
        "servers": [
            {"url": "/", "description": "This edge"},
            {"url": "http://127.0.0.1:8080", "description": "The dev mesh of `nox -s up`"},
        ],
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": schemas,
            "responses": {
                response_name(status): {
                    "description": meaning,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Status"}}
                    },
                }
                for status, meaning in ERROR_MEANINGS.items()
            },
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "The accessToken of POST /v1/auth/login (EdDSA-signed JWT).",
                }
            },
        },
    }


def public_methods(descriptor_set: descriptor_pb2.FileDescriptorSet) -> frozenset[str]:
    """The methods callable without a token: the contract's ACCESS_PUBLIC RPCs."""
    return frozenset(
        rpc.path for rpc in contract_rpcs(descriptor_set) if rpc.access is Access.PUBLIC
    )
