"""OpenAPI schemas of the messages, enums and fields: the components of the document."""

from __future__ import annotations

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

from services.devmesh.openapi.descriptors import (
    FieldProto,
    Index,
    field_behaviours,
    is_map,
    is_repeated,
    printed_when_unset,
)
from services.devmesh.openapi.wellknown import (
    INT32_TYPES,
    INT64,
    INT64_TYPES,
    MESSAGE_EXAMPLES,
    UINT32_TYPES,
    UINT64,
    UINT64_TYPES,
    WELL_KNOWN,
    Schema,
)


class SchemaBuilder:
    """Turns the indexed descriptors into the schemas of components/schemas."""

    def __init__(self, index: Index) -> None:
        self.index = index
        self.schemas: dict[str, Schema] = {}
        self.names = self._component_names()

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

    def ref(self, type_name: str) -> Schema:
        """A reference to the component of a message or enum, created on first use."""
        if type_name[1:] in WELL_KNOWN:
            name = type_name.rsplit(".", 1)[-1]
            self.schemas.setdefault(name, dict(WELL_KNOWN[type_name[1:]]))
            return {"$ref": f"#/components/schemas/{name}"}
        name = self.names[type_name]
        if name not in self.schemas:
            self.schemas[name] = {}  # a placeholder first, so recursive types terminate
            if type_name in self.index.enums:
                self.schemas[name] = self._enum_schema(type_name)
            else:
                self.schemas[name] = self.message_schema(type_name)
                if type_name in MESSAGE_EXAMPLES:
                    self.schemas[name]["examples"] = MESSAGE_EXAMPLES[type_name]
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
            behaviours = field_behaviours(item)
            description = self.index.comments.get(f"{type_name}.{item.name}", "")
            if description:
                schema["description"] = description
            if field_behavior_pb2.OUTPUT_ONLY in behaviours:
                schema["readOnly"] = True
            if field_behavior_pb2.INPUT_ONLY in behaviours:
                if printed_when_unset(item):
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
        if is_map(self.index, item):
            entry = self.index.messages[item.type_name]
            return {"type": "object", "additionalProperties": self.field_schema(entry.field[1])}
        single = self._single_schema(item)
        if is_repeated(item):
            return {"type": "array", "items": single}
        return single

    def _single_schema(self, item: FieldProto) -> Schema:
        kind = item.type
        if kind in (FieldProto.TYPE_MESSAGE, FieldProto.TYPE_GROUP, FieldProto.TYPE_ENUM):
            return self.ref(item.type_name)
        if kind in INT32_TYPES:
            return {
                "type": "integer",
                "format": "int32",
                "minimum": -(2**31),
                "maximum": 2**31 - 1,
            }
        if kind in UINT32_TYPES:
            return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
        if kind in INT64_TYPES:
            return dict(INT64)
        if kind in UINT64_TYPES:
            return dict(UINT64)
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
