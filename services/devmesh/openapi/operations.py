"""OpenAPI paths and operations from the methods' google.api.http bindings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from services.devmesh.openapi.descriptors import (
    FieldProto,
    field_behaviours,
    is_map,
    is_repeated,
)
from services.devmesh.openapi.errors import response_name
from services.devmesh.openapi.schemas import SchemaBuilder
from services.devmesh.openapi.wellknown import SCALAR_WELL_KNOWN, WELL_KNOWN, Schema

# googleapis-common-protos types its extensions as plain FieldDescriptors.
_HTTP_RULE: Any = annotations_pb2.http

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class Route:
    """One google.api.http binding of a method."""

    method: str
    template: str
    body: str


class OperationBuilder:
    """Turns a method's binding into a path and an operation; schemas go to `components`."""

    def __init__(self, components: SchemaBuilder, public_methods: frozenset[str]) -> None:
        self.components = components
        self.index = components.index
        self.public_methods = public_methods

    def operation(
        self,
        service_name: str,
        method: descriptor_pb2.MethodDescriptorProto,
        route: Route,
    ) -> tuple[str, Schema]:
        """The OpenAPI path and the operation object of one method's binding."""
        request_type = method.input_type
        request = self.index.messages[request_type]
        path, path_params = self._path(request_type, route.template)
        bound = {field_path for field_path, _ in path_params}
        full_method = f"/{service_name}/{method.name}"
        public = full_method in self.public_methods
        description = self.index.comments.get(f".{service_name}.{method.name}", "")
        operation: Schema = {
            "operationId": f"{service_name.rsplit('.', 1)[-1]}_{method.name}",
            "tags": [service_name.rsplit(".", 1)[-1]],
            "summary": _first_sentence(description) or method.name,
            "description": description,
        }
        parameters: list[Schema] = [
            {
                "name": name,
                "in": "path",
                "required": True,
                "schema": self._leaf_schema(request_type, field_path),
                "description": self._leaf_description(request_type, field_path),
            }
            for field_path, name in path_params
        ]
        if IDEMPOTENCY_HEADER.lower() in description.lower():
            # An AIP-155 request_id in the body can stand in for the header.
            has_request_id = any(f.name == "request_id" for f in request.field)
            parameters.append(
                {
                    "name": IDEMPOTENCY_HEADER,
                    "in": "header",
                    "required": not has_request_id,
                    "description": (
                        "A key unique to this operation, 1 to 255 printable ASCII characters; "
                        "a retry with the same key and body returns the first result."
                        + (
                            " Optional when the body carries a requestId; if both are sent "
                            "they must be equal."
                            if has_request_id
                            else ""
                        )
                    ),
                    "schema": {
                        "type": "string",
                        "minLength": 1,
                        "maxLength": 255,
                        "pattern": r"^[\x21-\x7e]+$",
                        "examples": ["7d0e4c52-6f1b-4a3e-9a57-1c2b3d4e5f60"],
                    },
                }
            )
        if route.body == "*":
            body = self.components.message_schema(
                request_type, omit=frozenset(p for p in bound if "." not in p)
            )
            body["description"] = self.index.comments.get(request_type, "")
            operation["requestBody"] = {
                "required": bool(body.get("required")),
                "content": {"application/json": {"schema": body}},
            }
        else:
            if route.body:
                body_field = next(f for f in request.field if f.name == route.body)
                schema = self._body_field_schema(request, body_field)
                description = self.index.comments.get(f"{request_type}.{body_field.name}", "")
                operation["requestBody"] = {
                    "required": True,
                    "description": description,
                    "content": {"application/json": {"schema": schema}},
                }
            skip = bound | ({route.body} if route.body else set())
            parameters += list(self._query_parameters(request_type, "", "", skip))
        if parameters:
            operation["parameters"] = parameters
        operation["responses"] = self._responses(method, route, public)
        operation["security"] = [{}, {"bearer": []}] if public else [{"bearer": []}]
        return path, operation

    def _body_field_schema(
        self, request: descriptor_pb2.DescriptorProto, body_field: FieldProto
    ) -> Schema:
        """The schema of a `body: "field"` binding: a partial update drops required."""
        has_mask = any(f.type_name == ".google.protobuf.FieldMask" for f in request.field)
        if has_mask and body_field.type == FieldProto.TYPE_MESSAGE:
            name = f"{self.components.names[body_field.type_name]}Update"
            if name not in self.components.schemas:
                schema = self.components.message_schema(body_field.type_name, partial=True)
                schema["description"] = (
                    f"{schema.get('description', '')} For an update: only the fields named "
                    "in updateMask are read, so none is required."
                ).strip()
                self.components.schemas[name] = schema
            return {"$ref": f"#/components/schemas/{name}"}
        return self.components.field_schema(body_field)

    def _responses(
        self, method: descriptor_pb2.MethodDescriptorProto, route: Route, public: bool
    ) -> Schema:
        response = self.components.ref(method.output_type)
        description = self.index.comments.get(method.output_type, "") or "OK"
        if method.server_streaming:
            description = (
                "A stream: one JSON object per line, each the resource as it is at that moment."
            )
        responses: Schema = {
            "200": {
                "description": description,
                "content": {"application/json": {"schema": response}},
            }
        }
        statuses = ["400", "401", "404", "414", "429", "431", "503", "504"]
        if not public:
            statuses.append("403")
        if route.method != "get":
            statuses.append("409")
        if route.body:
            statuses.append("413")
        for status in sorted(statuses):
            responses[status] = {"$ref": f"#/components/responses/{response_name(status)}"}
        return responses

    def _path(self, request_type: str, template: str) -> tuple[str, list[tuple[str, str]]]:
        """The OpenAPI path of a template and its (field path, parameter name) pairs."""
        variables = re.findall(r"\{([^}=]+)(?:=([^}]*))?\}", template)
        leaves = [name.rsplit(".", 1)[-1] for name, _ in variables]
        params: list[tuple[str, str]] = []
        path = template
        for (field_path, pattern), leaf in zip(variables, leaves, strict=True):
            # The leaf's JSON name, so `{product_id}` and `{product.product_id}` name one
            # parameter and the two templates become one OpenAPI path.
            label = leaf if leaves.count(leaf) == 1 else field_path.replace(".", "_")
            name = _camel(label)
            params.append((field_path, name))
            original = f"{{{field_path}={pattern}}}" if pattern else f"{{{field_path}}}"
            path = path.replace(original, f"{{{name}}}")
        return path, params

    def _leaf(self, request_type: str, field_path: str) -> tuple[str, FieldProto]:
        type_name = request_type
        parts = field_path.split(".")
        for part in parts[:-1]:
            type_name = next(
                f.type_name for f in self.index.messages[type_name].field if f.name == part
            )
        leaf = next(f for f in self.index.messages[type_name].field if f.name == parts[-1])
        return type_name, leaf

    def _leaf_schema(self, request_type: str, field_path: str) -> Schema:
        _, leaf = self._leaf(request_type, field_path)
        schema = self.components.field_schema(leaf)
        if schema.get("type") == "string" and "pattern" not in schema:
            # A path segment: never empty, and the transcoder splits on '/'.
            schema = {**schema, "minLength": 1}
        return schema

    def _leaf_description(self, request_type: str, field_path: str) -> str:
        type_name, leaf = self._leaf(request_type, field_path)
        return self.index.comments.get(f"{type_name}.{leaf.name}", "")

    def _query_parameters(
        self, type_name: str, prefix: str, proto_prefix: str, skip: set[str]
    ) -> Iterator[Schema]:
        """Every field the transcoder reads from the query string, nested ones dotted."""
        for item in self.index.messages[type_name].field:
            proto_path = f"{proto_prefix}{item.name}"
            if proto_path in skip or is_map(self.index, item):
                continue
            name = f"{prefix}{item.json_name}"
            description = self.index.comments.get(f"{type_name}.{item.name}", "")
            behaviours = field_behaviours(item)
            if field_behavior_pb2.OUTPUT_ONLY in behaviours:
                continue
            is_message = item.type == FieldProto.TYPE_MESSAGE
            if is_message and item.type_name[1:] not in SCALAR_WELL_KNOWN:
                if is_repeated(item):
                    continue  # the transcoder cannot bind repeated messages from a query
                yield from self._query_parameters(
                    item.type_name, f"{name}.", f"{proto_path}.", skip
                )
                continue
            schema = self.components.field_schema(item)
            if is_message:
                schema = dict(WELL_KNOWN[item.type_name[1:]])
            parameter: Schema = {
                "name": name,
                "in": "query",
                "required": field_behavior_pb2.REQUIRED in behaviours and not prefix,
                "schema": schema,
                "description": description,
            }
            if is_repeated(item):
                parameter["style"] = "form"
                parameter["explode"] = True
            yield parameter


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def routes(method: descriptor_pb2.MethodDescriptorProto) -> list[Route]:
    """Every google.api.http binding of `method`, additional bindings included."""
    if not method.options.HasExtension(_HTTP_RULE):
        return []
    rule: http_pb2.HttpRule = method.options.Extensions[_HTTP_RULE]
    found = []
    for binding in [rule, *rule.additional_bindings]:
        kind = binding.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            found.append(Route(binding.custom.kind.lower(), binding.custom.path, binding.body))
        else:
            found.append(Route(kind, getattr(binding, kind), binding.body))
    return found
