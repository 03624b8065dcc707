"""Money as integer minor units (cents) in the domain, google.type.Money on the wire."""

from __future__ import annotations

import re
from dataclasses import dataclass

from google.type import money_pb2

from services.common.errors import FieldViolation, InvalidArgument

_CURRENCY = re.compile(r"^[A-Z]{3}$")
_NANOS_PER_MINOR = 10_000_000  # two decimal places: 1 cent = 10^7 nanos


@dataclass(frozen=True, order=True)
class Money:
    """An amount in minor units of a currency; all marketplace currencies have two decimals."""

    minor: int
    currency: str

    def __add__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor + other.minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same_currency(other)
        return Money(self.minor - other.minor, self.currency)

    def times(self, quantity: int) -> Money:
        """This amount `quantity` times."""
        return Money(self.minor * quantity, self.currency)

    def _same_currency(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")

    def to_proto(self) -> money_pb2.Money:
        """The google.type.Money of this amount."""
        units, rest = divmod(abs(self.minor), 100)
        sign = -1 if self.minor < 0 else 1
        return money_pb2.Money(
            currency_code=self.currency,
            units=sign * units,
            nanos=sign * rest * _NANOS_PER_MINOR,
        )

    @classmethod
    def from_proto(
        cls, money: money_pb2.Money, field: str, *, allow_negative: bool = False
    ) -> Money:
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
        return cls(minor, money.currency_code)
