"""The descriptor set indexed by full name, with every element's comment, and field facts."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

# googleapis-common-protos types its extensions as plain FieldDescriptors.
_FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior

FieldProto = descriptor_pb2.FieldDescriptorProto

# SourceCodeInfo paths: field numbers inside FileDescriptorProto and its children.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE = 4, 5, 6
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE, _SERVICE_METHOD = 2, 2


@dataclass
class Index:
    """The descriptor set, indexed by full name, with the comments of every element."""

    messages: dict[str, descriptor_pb2.DescriptorProto] = field(default_factory=dict)
    enums: dict[str, descriptor_pb2.EnumDescriptorProto] = field(default_factory=dict)
    services: dict[str, descriptor_pb2.ServiceDescriptorProto] = field(default_factory=dict)
    comments: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, files: Iterable[descriptor_pb2.FileDescriptorProto]) -> Index:
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


def field_behaviours(item: FieldProto) -> set[int]:
    """The google.api.field_behavior values of a field."""
    return set(item.options.Extensions[_FIELD_BEHAVIOR])


def is_map(index: Index, item: FieldProto) -> bool:
    """Whether a field is a map (a repeated, synthesized map-entry message)."""
    if item.type != FieldProto.TYPE_MESSAGE or item.label != FieldProto.LABEL_REPEATED:
        return False
    entry = index.messages.get(item.type_name)
    return entry is not None and entry.options.map_entry


def printed_when_unset(item: FieldProto) -> bool:
    """Whether the edge's JSON (always_print_primitive_fields) shows the field when unset."""
    in_oneof = item.HasField("oneof_index")
    return is_repeated(item) or (item.type != FieldProto.TYPE_MESSAGE and not in_oneof)


def is_repeated(item: FieldProto) -> bool:
    """Whether a field is repeated (maps included)."""
    return item.label == FieldProto.LABEL_REPEATED
