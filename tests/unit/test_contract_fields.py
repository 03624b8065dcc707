"""Every field of the contract documents its AIP-203 field behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2

# The googleapis stubs type the extension as a plain FieldDescriptor.
FIELD_BEHAVIOR: Any = field_behavior_pb2.field_behavior
DESCRIPTORS = Path(__file__).resolve().parents[2] / "gen" / "descriptors" / "marketplace.binpb"


def _fields() -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto]]:
    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())

    def walk(
        prefix: str, messages: list[descriptor_pb2.DescriptorProto]
    ) -> Iterator[tuple[str, descriptor_pb2.FieldDescriptorProto]]:
        for message in messages:
            if message.options.map_entry:
                continue  # protoc's synthetic key/value pair; the map field carries it
            for field in message.field:
                yield f"{prefix}{message.name}.{field.name}", field
            yield from walk(f"{prefix}{message.name}.", list(message.nested_type))

    for file in files.file:
        if file.package.startswith("marketplace."):
            yield from walk(f"{file.package}.", list(file.message_type))


def test_every_field_has_a_behaviour_and_identifier_marks_only_names() -> None:
    missing, misplaced = [], []
    fields = list(_fields())
    for path, field in fields:
        behaviours = list(field.options.Extensions[FIELD_BEHAVIOR])
        if not behaviours:
            missing.append(path)
        if field_behavior_pb2.IDENTIFIER in behaviours and field.name != "name":
            misplaced.append(path)
    assert len(fields) > 200
    assert missing == []
    assert misplaced == []
