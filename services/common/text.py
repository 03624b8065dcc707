"""One shape check for every text field of every request, before any handler sees it.

Mappers check each field's own rules (length, syntax); this chassis guard makes sure no RPC
forgets the rules every text shares, so a NUL byte or invalid UTF-8 is a 400 with a field
violation, never a 500 from a database driver or the protobuf decoder:

- text must be valid UTF-8 (a request that does not decode is refused, naming the field);
- no C0 control character except tab, newline and carriage return, and no DEL;
- no string longer than `MAX_TEXT_LENGTH` characters (each field's own limit is lower).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from services.common.errors import FieldViolation, InvalidArgument

MAX_TEXT_LENGTH = 20_000
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

type Unary = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], Awaitable[Any]]
type Stream = Callable[[Any, grpc.aio.ServicerContext[Any, Any]], AsyncIterator[Any]]


def text_problem(value: str, *, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """What is wrong with `value` as text in any field, or None when it is acceptable."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    if len(value) > max_length:
        return f"must be at most {max_length} characters"
    return None


def is_single_line(value: str) -> bool:
    """Whether `value` fits on one line: no line breaks, tabs or other control characters.

    For names and titles, which every page shows inline; the request-wide guard allows tab
    and line breaks, which multi-line text such as descriptions and review bodies needs.
    """
    return not any(ord(ch) < 0x20 or ch in "\x7f\u2028\u2029" for ch in value)


def text_violations(message: Message, prefix: str = "") -> list[FieldViolation]:
    """Every string field of `message`, nested ones included, that breaks the shared rules."""
    violations: list[FieldViolation] = []
    for path, value in _strings(message, prefix):
        problem = text_problem(value)
        if problem is not None:
            violations.append(FieldViolation(path, problem))
    return violations


def _strings(message: Message, prefix: str) -> Iterator[tuple[str, str]]:
    for field, value in message.ListFields():
        path = f"{prefix}{field.name}"
        if field.type == FieldDescriptor.TYPE_STRING:
            if field.is_repeated:
                for index, item in enumerate(value):
                    yield f"{path}[{index}]", item
            else:
                yield path, value
        elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
            entry = field.message_type
            if entry.GetOptions().map_entry:
                yield from _map_strings(path, entry, value)
            elif field.is_repeated:
                for index, item in enumerate(value):
                    yield from _strings(item, f"{path}[{index}].")
            else:
                yield from _strings(value, f"{path}.")


def _map_strings(path: str, entry: Descriptor, value: Any) -> Iterator[tuple[str, str]]:
    key_field = entry.fields_by_name["key"]
    value_field = entry.fields_by_name["value"]
    for key, item in value.items():
        # The key itself is shown only when it is clean: a key with control characters
        # would make the field path itself unreadable.
        shown = key if isinstance(key, str) and text_problem(key) is None else "?"
        if key_field.type == FieldDescriptor.TYPE_STRING:
            yield f"{path}[{shown}]", key
        if value_field.type == FieldDescriptor.TYPE_STRING:
            yield f"{path}[{shown}]", item
        elif value_field.type == FieldDescriptor.TYPE_MESSAGE:
            yield from _strings(item, f"{path}[{shown}].")


@dataclass(frozen=True)
class Undecodable:
    """Stands in for a request whose bytes are not a valid message of its type."""

    field: str


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, position
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def undecodable_field(data: bytes, descriptor: Descriptor, prefix: str = "") -> str | None:
    """The path of the first string field whose bytes are not UTF-8, walking the wire format."""
    position = 0
    try:
        while position < len(data):
            key, position = _varint(data, position)
            number, wire_type = key >> 3, key & 7
            if wire_type == 0:
                _, position = _varint(data, position)
            elif wire_type == 1:
                position += 8
            elif wire_type == 5:
                position += 4
            elif wire_type == 2:
                length, position = _varint(data, position)
                chunk, position = data[position : position + length], position + length
                field = descriptor.fields_by_number.get(number)
                if field is None:
                    continue
                name = f"{prefix}{field.name}"
                if field.type == FieldDescriptor.TYPE_STRING:
                    try:
                        chunk.decode("utf-8")
                    except UnicodeDecodeError:
                        return name
                elif field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type is not None:
                    found = undecodable_field(chunk, field.message_type, f"{name}.")
                    if found is not None:
                        return found
            else:
                return None
    except (IndexError, ValueError):
        return None
    return None


def lenient(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    """A deserializer that hands the behaviour an `Undecodable` instead of raising.

    grpc answers a deserializer's exception with INTERNAL and its own text; the guard turns
    it into INVALID_ARGUMENT naming the field instead.
    """
    if deserializer is None:
        return None
    message_type = getattr(deserializer, "__self__", None)

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception:
            descriptor = getattr(message_type, "DESCRIPTOR", None)
            field = undecodable_field(data, descriptor) if descriptor is not None else None
            return Undecodable(field or "")

    return deserialize


def check_request(request: Any) -> None:
    """Raise InvalidArgument if the request did not decode or breaks the text rules."""
    if isinstance(request, Undecodable):
        raise InvalidArgument(
            [FieldViolation(request.field, "must be valid UTF-8 text")]
            if request.field
            else [FieldViolation("", "the request body is not a valid message")]
        )
    if isinstance(request, Message):
        violations = text_violations(request)
        if violations:
            raise InvalidArgument(violations)


def guards(method: str) -> bool:
    """Whether the guard checks `method`'s requests: the marketplace's own, not grpc's."""
    return not method.startswith("/grpc.")
