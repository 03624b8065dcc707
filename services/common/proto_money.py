"""google.type.Money <-> the domain's Money, for mappers and clients of other services."""

from __future__ import annotations

import re

from google.type import money_pb2

from services.common.errors import FieldViolation, InvalidArgument
from services.common.money import Money

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_NANOS_PER_MINOR = 10_000_000  # two decimal places: 1 cent = 10^7 nanos


def money_to_proto(money: Money) -> money_pb2.Money:
    """The google.type.Money of `money`."""
    units, rest = divmod(abs(money.minor), 100)
    sign = -1 if money.minor < 0 else 1
    return money_pb2.Money(
        currency_code=money.currency,
        units=sign * units,
        nanos=sign * rest * _NANOS_PER_MINOR,
    )


def money_from_proto(money: money_pb2.Money, field: str, *, allow_negative: bool = False) -> Money:
    """Validate a google.type.Money from a request; violations name `field`."""
    violations: list[FieldViolation] = []
    if not _CURRENCY.match(money.currency_code):
        violations.append(
            FieldViolation(f"{field}.currency_code", "must be an ISO 4217 code such as USD")
        )
    if not -999_999_999 <= money.nanos <= 999_999_999 or money.nanos % _NANOS_PER_MINOR:
        violations.append(FieldViolation(f"{field}.nanos", "must be whole cents"))
    if (money.units > 0 and money.nanos < 0) or (money.units < 0 and money.nanos > 0):
        violations.append(FieldViolation(f"{field}.nanos", "must have the sign of units"))
    minor = money.units * 100 + money.nanos // _NANOS_PER_MINOR
    if minor < 0 and not allow_negative:
        violations.append(FieldViolation(field, "must not be negative"))
    if abs(minor) > 10**13:
        violations.append(FieldViolation(field, "is too large"))
    if violations:
        raise InvalidArgument(violations)
    return Money(minor, money.currency_code)
