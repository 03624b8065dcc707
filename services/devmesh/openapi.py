"""Generate the OpenAPI 3.1 document of the REST edge from the contracts' descriptor set.

The document describes the wire format Envoy's gRPC-JSON transcoder speaks: proto3 JSON
names (camelCase), 64-bit integers as strings, enums by name, the well-known types in their
JSON forms, path and query parameters bound as the transcoder binds them, and the JSON error
body of every status the edge answers with. Run it as
`python -m services.devmesh.openapi DESCRIPTOR_SET OUT.json`; the descriptor set must carry
source info (`protoc --include_source_info --include_imports`) for the descriptions.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from services.common.access import Access, contract_rpcs

type Schema = dict[str, Any]

# googleapis-common-protos types its extensions as plain FieldDescriptors.
_HTTP_RULE: Any = annotations_pb2.http
_FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior

FieldProto = descriptor_pb2.FieldDescriptorProto

# The services the edge transcodes (envoy/envoy.yaml.tmpl); internal services have no route.
PUBLIC_SERVICES = (
    "marketplace.user.v1.UserService",
    "marketplace.product.v1.ProductService",
    "marketplace.order.v1.OrderService",
    "marketplace.order.v1.CartService",
    "marketplace.order.v1.ReturnService",
)
IDEMPOTENCY_HEADER = "Idempotency-Key"

# SourceCodeInfo paths: field numbers inside FileDescriptorProto and its children.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2

_INT32_TYPES = {FieldProto.TYPE_INT32, FieldProto.TYPE_SINT32, FieldProto.TYPE_SFIXED32}
_UINT32_TYPES = {FieldProto.TYPE_UINT32, FieldProto.TYPE_FIXED32}
_INT64_TYPES = {FieldProto.TYPE_INT64, FieldProto.TYPE_SINT64, FieldProto.TYPE_SFIXED64}
_UINT64_TYPES = {FieldProto.TYPE_UINT64, FieldProto.TYPE_FIXED64}

_INT64: Schema = {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$", "examples": ["42"]}
_UINT64: Schema = {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$", "examples": ["42"]}

# The JSON forms proto3 gives the well-known types (protobuf.dev, "JSON Mapping").
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {
        "type": "string",
        "format": "date-time",
        "examples": ["2026-01-31T12:00:00Z"],
    },
    "google.protobuf.Duration": {
        "type": "string",
        "pattern": r"^-?[0-9]+(\.[0-9]{1,9})?s$",
        "examples": ["1.5s"],
    },
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated field paths in their JSON names, e.g. `title,listPrice`.",
        "examples": ["displayName"],
    },
    "google.protobuf.Empty": {"type": "object", "properties": {}, "additionalProperties": False},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
        "additionalProperties": True,
    },
    "google.protobuf.DoubleValue": {"type": ["number", "null"]},
    "google.protobuf.FloatValue": {"type": ["number", "null"]},
    "google.protobuf.Int64Value": {**_INT64, "type": ["string", "null"]},
    "google.protobuf.UInt64Value": {**_UINT64, "type": ["string", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "minimum": 0},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
}
# Well-known types that travel as one scalar, so they can be path or query parameters.
_SCALAR_WELL_KNOWN = {
    name for name, schema in _WELL_KNOWN.items() if schema.get("type") not in ("object", "array")
} - {"google.protobuf.Value"}

# Examples of the common value types, shown in the reference and used by the fuzzer first.
_MESSAGE_EXAMPLES: dict[str, list[Any]] = {
    ".google.type.Money": [{"currencyCode": "USD", "units": "24", "nanos": 990000000}],
    ".google.type.Date": [{"year": 2026, "month": 1, "day": 31}],
}

_STATUS_SCHEMA: Schema = {
    "type": "object",
    "description": (
        "An error. A gRPC error of a service is google.rpc.Status as JSON: `code` is the "
        "gRPC status code and `details` carries google.rpc error details (ErrorInfo with "
        "its `reason`, BadRequest with field violations, ...). An error the edge answers "
        "itself (a missing or invalid token, a rate limit, an unknown path, a body too "
        "large, no healthy service) has `code` set to the HTTP status and no details."
    ),
    "properties": {
        "code": {"type": "integer", "format": "int32", "examples": [3]},
        "message": {"type": "string", "examples": ["page_size must not be negative"]},
        "details": {"type": "array", "items": {"$ref": "#/components/schemas/Any"}},
    },
    "required": ["code", "message"],
}

# What each error status means at this edge; the transcoder maps gRPC codes to HTTP
# statuses the way google.rpc.Code documents, and the edge adds its own local replies.
_ERROR_MEANINGS = {
    "400": "Invalid input (INVALID_ARGUMENT, OUT_OF_RANGE), a precondition that does not "
    "hold (FAILED_PRECONDITION), or a request body or parameter the transcoder cannot parse.",
    "401": "No valid access token (UNAUTHENTICATED), or a token that was sent is invalid.",
    "403": "The caller may not do this (PERMISSION_DENIED).",
    "404": "The resource does not exist or is not visible to the caller (NOT_FOUND).",
    "409": "A conflict: it exists already (ALREADY_EXISTS) or a concurrent change won (ABORTED).",
    "413": "The request body is larger than the edge accepts.",
    "414": "The request URI is longer than the edge accepts.",
    "431": "The request's headers are larger than the edge accepts.",
    "429": "Too many requests (RESOURCE_EXHAUSTED or the edge's rate limit); see Retry-After.",
    "503": "A service or one of its dependencies is unavailable (UNAVAILABLE); retry later.",
    "504": "The service did not answer in time (DEADLINE_EXCEEDED).",
}


@dataclass(frozen=True)
class _Route:
    """One google.api.http binding of a method."""

    method: str
    template: str
    body: str


@dataclass
class _Index:
    """The descriptor set, indexed by full name, with the comments of every element."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> _Index:
        """Index every message, enum, service and comment of `files`."""
        index = cls()
        for file in files:
            located = {
                tuple(location.path): _clean_comment(location.leading_comments)
                for location in file.source_code_info.location
                if location.leading_comments
            }
            package = f".{file.package}" if file.package else ""
            for number, message in enumerate(file.message_type):
                index._add_message(
                    f"{package}.{message.name}", message, (_FILE_MESSAGE, number), located
                )
            for number, enum in enumerate(file.enum_type):
                index._add_enum(f"{package}.{enum.name}", enum, (_FILE_ENUM, number), located)
            for number, service in enumerate(file.service):
                name = f"{package}.{service.name}"
                index.services[name[1:]] = service
                path = (_FILE_SERVICE, number)
                index.comments[name] = located.get(path, "")
                for method_number, method in enumerate(service.method):
                    index.comments[f"{name}.{method.name}"] = located.get(
                        (*path, _SERVICE_METHOD, method_number), ""
                    )
        return index

    def _add_message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.messages[name] = message
        self.comments[name] = located.get(path, "")
        for number, item in enumerate(message.field):
            self.comments[f"{name}.{item.name}"] = located.get((*path, _MESSAGE_FIELD, number), "")
        for number, nested in enumerate(message.nested_type):
            self._add_message(
                f"{name}.{nested.name}", nested, (*path, _MESSAGE_NESTED, number), located
            )
        for number, enum in enumerate(message.enum_type):
            self._add_enum(f"{name}.{enum.name}", enum, (*path, _MESSAGE_ENUM, number), located)

    def _add_enum(
        self,
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple[int, ...],
        located: dict[tuple[int, ...], str],
    ) -> None:
        self.enums[name] = enum
        self.comments[name] = located.get(path, "")
        for number, value in enumerate(enum.value):
            self.comments[f"{name}.{value.name}"] = located.get((*path, _ENUM_VALUE, number), "")


def _clean_comment(text: str) -> str:
    """A proto comment as one paragraph of prose."""
    return " ".join(line.strip() for line in text.strip().splitlines() if line.strip())


def _behaviours(item: FieldProto) -> set[int]:
    return set(item.options.Extensions[_FIELD_BEHAVIOR])


def _is_map(index: _Index, item: FieldProto) -> bool:
    if item.type != FieldProto.TYPE_MESSAGE or item.label != FieldProto.LABEL_REPEATED:
        return False
    entry = index.messages.get(item.type_name)
    return entry is not None and entry.options.map_entry


def _printed_when_unset(item: FieldProto) -> bool:
    """Whether the edge's JSON (always_print_primitive_fields) shows the field when unset."""
    in_oneof = item.HasField("oneof_index")
    return _is_repeated(item) or (item.type != FieldProto.TYPE_MESSAGE and not in_oneof)


def _is_repeated(item: FieldProto) -> bool:
    return item.label == FieldProto.LABEL_REPEATED


class _Builder:
    """Turns the indexed descriptors into OpenAPI schemas, parameters and operations."""

    def __init__(self, index: _Index, public_methods: frozenset[str]) -> None:
        self.index = index
        self.public_methods = public_methods
        self.schemas: dict[str, Schema] = {}
        self._names = self._component_names()

    def _component_names(self) -> dict[str, str]:
        """Short component names (`Product`) where unique, the full name where not."""
        full_names = [name[1:] for name in [*self.index.messages, *self.index.enums]]
        short_counts: dict[str, int] = {}
        for name in full_names:
            short_counts[name.rsplit(".", 1)[-1]] = short_counts.get(name.rsplit(".", 1)[-1], 0) + 1
        return {
            f".{name}": (
                name.rsplit(".", 1)[-1] if short_counts[name.rsplit(".", 1)[-1]] == 1 else name
            )
            for name in full_names
        }

    # Schemas -------------------------------------------------------------------------

    def ref(self, type_name: str) -> Schema:
        """A reference to the component of a message or enum, created on first use."""
        if type_name[1:] in _WELL_KNOWN:
            name = type_name.rsplit(".", 1)[-1]
            self.schemas.setdefault(name, dict(_WELL_KNOWN[type_name[1:]]))
            return {"$ref": f"#/components/schemas/{name}"}
        name = self._names[type_name]
        if name not in self.schemas:
            self.schemas[name] = {}  # a placeholder first, so recursive types terminate
            if type_name in self.index.enums:
                self.schemas[name] = self._enum_schema(type_name)
            else:
                self.schemas[name] = self.message_schema(type_name)
                if type_name in _MESSAGE_EXAMPLES:
                    self.schemas[name]["examples"] = _MESSAGE_EXAMPLES[type_name]
        return {"$ref": f"#/components/schemas/{name}"}

    def _enum_schema(self, type_name: str) -> Schema:
        enum = self.index.enums[type_name]
        lines = [self.index.comments.get(type_name, "")]
        lines += [
            f"- `{value.name}`: {self.index.comments.get(f'{type_name}.{value.name}', '')}"
            for value in enum.value
        ]
        return {
            "type": "string",
            "enum": [value.name for value in enum.value],
            "description": "\n".join(line for line in lines if line),
        }

    def message_schema(
        self, type_name: str, *, omit: frozenset[str] = frozenset(), partial: bool = False
    ) -> Schema:
        """The JSON object of a message; `omit` leaves out fields, `partial` drops required."""
        message = self.index.messages[type_name]
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for item in message.field:
            if item.name in omit:
                continue
            schema = self.field_schema(item)
            behaviours = _behaviours(item)
            description = self.index.comments.get(f"{type_name}.{item.name}", "")
            if description:
                schema["description"] = description
            if field_behavior_pb2.OUTPUT_ONLY in behaviours:
                schema["readOnly"] = True
            if field_behavior_pb2.INPUT_ONLY in behaviours:
                if _printed_when_unset(item):
                    # The edge prints every scalar, repeated and map field, so responses
                    # carry this one at its zero value: writeOnly would be untrue.
                    schema["description"] = (
                        f"{description} Input only: responses show the zero value."
                    ).strip()
                else:
                    schema["writeOnly"] = True
            if field_behavior_pb2.IMMUTABLE in behaviours:
                schema["description"] = f"{description} Immutable once set.".strip()
            if (
                field_behavior_pb2.REQUIRED in behaviours
                and field_behavior_pb2.OUTPUT_ONLY not in behaviours
                and not partial
            ):
                required.append(item.json_name)
            properties[item.json_name] = schema
        oneofs = self._oneof_notes(message)
        result: Schema = {"type": "object", "properties": properties}
        description = " ".join(
            part for part in [self.index.comments.get(type_name, ""), *oneofs] if part
        )
        if description:
            result["description"] = description
        if required:
            result["required"] = required
        return result

    def _oneof_notes(self, message: descriptor_pb2.DescriptorProto) -> list[str]:
        notes = []
        for number, oneof in enumerate(message.oneof_decl):
            members = [
                f"`{item.json_name}`"
                for item in message.field
                if item.HasField("oneof_index")
                and item.oneof_index == number
                and not item.proto3_optional
            ]
            if len(members) > 1:
                notes.append(f"At most one of {', '.join(members)} is set ({oneof.name}).")
        return notes

    def field_schema(self, item: FieldProto) -> Schema:
        """The JSON value of one field, repeated and map fields included."""
        if _is_map(self.index, item):
            entry = self.index.messages[item.type_name]
            return {"type": "object", "additionalProperties": self.field_schema(entry.field[1])}
        single = self._single_schema(item)
        if _is_repeated(item):
            return {"type": "array", "items": single}
        return single

    def _single_schema(self, item: FieldProto) -> Schema:
        kind = item.type
        if kind in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_GROUP, FieldProto.TYPE_ENUM):
            return self.ref(item.type_name)
        if kind in _INT32_TYPES:
            return {
                "type": "integer",
                "format": "int32",
                "minimum": -(2**31),
                "maximum": 2**31 - 1,
            }
        if kind in _UINT32_TYPES:
            return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
        if kind in _INT64_TYPES:
            return dict(_INT64)
        if kind in _UINT64_TYPES:
            return dict(_UINT64)
        if kind in (FieldProto.TYPE_DOUBLE, FieldProto.TYPE_FLOAT):
            return {
                "type": "number",
                "format": "double" if kind == FieldProto.TYPE_DOUBLE else "float",
            }
        if kind == FieldProto.TYPE_BOOL:
            return {"type": "boolean"}
        if kind == FieldProto.TYPE_BYTES:
            return {"type": "string", "contentEncoding": "base64"}
        return {"type": "string"}

    # Operations ----------------------------------------------------------------------

    def operation(
        self,
        service_name: str,
        method: descriptor_pb2.MethodDescriptorProto,
        route: _Route,
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
            body = self.message_schema(
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
            name = f"{self._names[body_field.type_name]}Update"
            if name not in self.schemas:
                schema = self.message_schema(body_field.type_name, partial=True)
                schema["description"] = (
                    f"{schema.get('description', '')} For an update: only the fields named "
                    "in updateMask are read, so none is required."
                ).strip()
                self.schemas[name] = schema
            return {"$ref": f"#/components/schemas/{name}"}
        return self.field_schema(body_field)

    def _responses(
        self, method: descriptor_pb2.MethodDescriptorProto, route: _Route, public: bool
    ) -> Schema:
        response = self.ref(method.output_type)
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
            responses[status] = {"$ref": f"#/components/responses/{_response_name(status)}"}
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
        schema = self.field_schema(leaf)
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
            if proto_path in skip or _is_map(self.index, item):
                continue
            name = f"{prefix}{item.json_name}"
            description = self.index.comments.get(f"{type_name}.{item.name}", "")
            behaviours = _behaviours(item)
            if field_behavior_pb2.OUTPUT_ONLY in behaviours:
                continue
            is_message = item.type == FieldProto.TYPE_MESSAGE
            if is_message and item.type_name[1:] not in _SCALAR_WELL_KNOWN:
                if _is_repeated(item):
                    continue  # the transcoder cannot bind repeated messages from a query
                yield from self._query_parameters(
                    item.type_name, f"{name}.", f"{proto_path}.", skip
                )
                continue
            schema = self.field_schema(item)
            if is_message:
                schema = dict(_WELL_KNOWN[item.type_name[1:]])
            parameter: Schema = {
                "name": name,
                "in": "query",
                "required": field_behavior_pb2.REQUIRED in behaviours and not prefix,
                "schema": schema,
                "description": description,
            }
            if _is_repeated(item):
                parameter["style"] = "form"
                parameter["explode"] = True
            yield parameter


def _first_sentence(text: str) -> str:
    match = re.match(r"(.+?[.!?])(\s|$)", text)
    return match.group(1) if match else text


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _response_name(status: str) -> str:
    return {
        "400": "BadRequest",
        "401": "Unauthorized",
        "403": "Forbidden",
        "404": "NotFound",
        "409": "Conflict",
        "413": "PayloadTooLarge",
        "414": "UriTooLong",
        "429": "TooManyRequests",
        "431": "RequestHeaderFieldsTooLarge",
        "503": "Unavailable",
        "504": "GatewayTimeout",
    }[status]


def _routes(method: descriptor_pb2.MethodDescriptorProto) -> list[_Route]:
    if not method.options.HasExtension(_HTTP_RULE):
        return []
    rule: http_pb2.HttpRule = method.options.Extensions[_HTTP_RULE]
    routes = []
    for binding in [rule, *rule.additional_bindings]:
        kind = binding.WhichOneof("pattern")
        if kind is None:
            continue
        if kind == "custom":
            routes.append(_Route(binding.custom.kind.lower(), binding.custom.path, binding.body))
        else:
            routes.append(_Route(kind, getattr(binding, kind), binding.body))
    return routes


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
    index = _Index.of(descriptor_set.file)
    builder = _Builder(index, public_methods)
    builder.ref(".google.protobuf.Any")
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
            for route in _routes(method):
                path, operation = builder.operation(service_name, method, route)
                if route.method in paths.setdefault(path, {}):
                    raise ValueError(f"two operations for {route.method.upper()} {path}")
                paths[path][route.method] = operation
    schemas = dict(sorted(builder.schemas.items()))
    schemas["Status"] = _STATUS_SCHEMA
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
                _response_name(status): {
                    "description": meaning,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Status"}}
                    },
                }
                for status, meaning in _ERROR_MEANINGS.items()
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


def main(argv: list[str]) -> None:
    """Read a descriptor set and write the document: `openapi.py DESCRIPTORS OUT.json`."""
    descriptors, out = Path(argv[0]), Path(argv[1])
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(descriptors.read_bytes())
    document = build(descriptor_set, public_methods(descriptor_set))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
