"""Shared field conversions of the product mappers: money, times, attributes, masks."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import field_mask_pb2, timestamp_pb2
from marketplace.product.v1 import product_pb2

from services.common.errors import InvalidArgument
from services.common.field_mask import unique_paths
from services.common.money import Money
from services.common.proto_money import money_from_proto
from services.product.domain.commands import ParseProblem
from services.product.domain.model import AttributeValue


def parse_money(
    message: product_pb2.Product | product_pb2.Discount,
    name: str,
    problems: list[ParseProblem],
    prefix: str = "product",
) -> Money | None:
    """A money field of `message`, or None; a malformed one is recorded in `problems`."""
    if not message.HasField(name):  # type: ignore[arg-type]  # names come from this module
        return None
    try:
        return money_from_proto(getattr(message, name), f"{prefix}.{name}")
    except InvalidArgument as error:
        problems.extend(ParseProblem(v.field, v.description) for v in error.violations)
        return None


def parse_attribute(value: product_pb2.AttributeValue) -> AttributeValue | None:
    """The domain value of an attribute, or None when it has no value set."""
    kind = value.WhichOneof("kind")
    if kind == "text_value":
        return value.text_value
    if kind == "number_value":
        return float(value.number_value)
    if kind == "bool_value":
        return bool(value.bool_value)
    return None


def timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    """A time as a protobuf Timestamp."""
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def attribute_proto(value: AttributeValue) -> product_pb2.AttributeValue:
    """The API form of an attribute value."""
    if isinstance(value, bool):
        return product_pb2.AttributeValue(bool_value=value)
    if isinstance(value, str):
        return product_pb2.AttributeValue(text_value=value)
    return product_pb2.AttributeValue(number_value=value)


def mask_paths_of(mask: field_mask_pb2.FieldMask) -> tuple[str, ...]:
    """The distinct paths of an update mask."""
    return unique_paths(mask.paths)
