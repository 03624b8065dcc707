"""The JSON forms of proto3 scalars and well-known types, and examples of common messages."""

from __future__ import annotations

from typing import Any

from services.devmesh.openapi.descriptors import FieldProto

type Schema = dict[str, Any]

INT32_TYPES = {FieldProto.TYPE_INT32, FieldProto.TYPE_SINT32, FieldProto.TYPE_SFIXED32}
UINT32_TYPES = {FieldProto.TYPE_UINT32, FieldProto.TYPE_FIXED32}
INT64_TYPES = {FieldProto.TYPE_INT64, FieldProto.TYPE_SINT64, FieldProto.TYPE_SFIXED64}
UINT64_TYPES = {FieldProto.TYPE_UINT64, FieldProto.TYPE_FIXED64}

INT64: Schema = {"type": "string", "format": "int64", "pattern": r"^-?[0-9]+$", "examples": ["42"]}
UINT64: Schema = {"type": "string", "format": "uint64", "pattern": r"^[0-9]+$", "examples": ["42"]}

# The JSON forms proto3 gives the well-known types (protobuf.dev, "JSON Mapping").
WELL_KNOWN: dict[str, Schema] = {
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
    "google.protobuf.Int64Value": {**INT64, "type": ["string", "null"]},
    "google.protobuf.UInt64Value": {**UINT64, "type": ["string", "null"]},
    "google.protobuf.Int32Value": {"type": ["integer", "null"], "format": "int32"},
    "google.protobuf.UInt32Value": {"type": ["integer", "null"], "minimum": 0},
    "google.protobuf.BoolValue": {"type": ["boolean", "null"]},
    "google.protobuf.StringValue": {"type": ["string", "null"]},
    "google.protobuf.BytesValue": {"type": ["string", "null"], "contentEncoding": "base64"},
}
# Well-known types that travel as one scalar, so they can be path or query parameters.
SCALAR_WELL_KNOWN = {
    name for name, schema in WELL_KNOWN.items() if schema.get("type") not in ("object", "array")
} - {"google.protobuf.Value"}

# Examples of the common value types, shown in the reference and used by the fuzzer first.
MESSAGE_EXAMPLES: dict[str, list[Any]] = {
    ".google.type.Money": [{"currencyCode": "USD", "units": "24", "nanos": 990000000}],
    ".google.type.Date": [{"year": 2026, "month": 1, "day": 31}],
}
