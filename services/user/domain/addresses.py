"""The address book: addresses, their validation rules and the ISO 3166-1 country codes."""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from services.common.errors import FieldViolation
from services.common.limits import (
    ADDRESS_TEXT_FIELDS,
    COUNTRY_CODES,
    PHONE_NUMBER_MAX,
    POSTAL_CODE_MAX,
)

__all__ = [
    "COUNTRY_CODES",
    "MAX_ADDRESSES_PER_USER",
    "MUTABLE_FIELDS",
    "TEXT_FIELDS",
    "Address",
    "AddressFields",
    "address_violations",
]

# A user may keep this many addresses; a bound keeps one account from filling the table.
MAX_ADDRESSES_PER_USER = 20

_E164 = re.compile(rf"^\+[1-9][0-9]{{1,{PHONE_NUMBER_MAX - 2}}}$")
_POSTAL_CODE = re.compile(rf"^[A-Za-z0-9][A-Za-z0-9 -]{{0,{POSTAL_CODE_MAX - 1}}}$")

# The fields a caller may write, with their maximum lengths (shared with the order service).
TEXT_FIELDS = ADDRESS_TEXT_FIELDS
MUTABLE_FIELDS = frozenset(
    {*TEXT_FIELDS, "postal_code", "country_code", "phone_number", "is_default_shipping"}
)


@dataclass(frozen=True)
class AddressFields:
    """What a caller writes of an address, already trimmed."""

    recipient_name: str = ""
    line1: str = ""
    line2: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country_code: str = ""
    phone_number: str = ""
    is_default_shipping: bool = False

    def normalised(self) -> AddressFields:
        """Trimmed text, an upper-case country code."""
        return AddressFields(
            recipient_name=self.recipient_name.strip(),
            line1=self.line1.strip(),
            line2=self.line2.strip(),
            city=self.city.strip(),
            region=self.region.strip(),
            postal_code=self.postal_code.strip(),
            country_code=self.country_code.strip().upper(),
            phone_number=self.phone_number.strip(),
            is_default_shipping=self.is_default_shipping,
        )

    def merged(self, other: AddressFields, paths: frozenset[str]) -> AddressFields:
        """These fields with the ones named in `paths` taken from `other`."""
        return replace(self, **{p: getattr(other, p) for p in paths})


def address_violations(fields: AddressFields, *, prefix: str = "address.") -> list[FieldViolation]:
    """Every problem of a (normalised) address, with field paths under `prefix`."""
    found: list[FieldViolation] = []
    for name, (required, limit) in TEXT_FIELDS.items():
        value: str = getattr(fields, name)
        if required and not value:
            found.append(FieldViolation(prefix + name, "is required"))
        elif len(value) > limit:
            found.append(FieldViolation(prefix + name, f"must be at most {limit} characters"))
        elif _has_control_characters(value):
            found.append(FieldViolation(prefix + name, "must not contain control characters"))
    if fields.postal_code and not _POSTAL_CODE.match(fields.postal_code):
        found.append(
            FieldViolation(prefix + "postal_code", "must be 1 to 20 letters, digits, spaces or '-'")
        )
    if not fields.country_code:
        found.append(FieldViolation(prefix + "country_code", "is required"))
    elif fields.country_code not in COUNTRY_CODES:
        found.append(
            FieldViolation(
                prefix + "country_code", "must be an ISO 3166-1 alpha-2 code such as 'DE'"
            )
        )
    if fields.phone_number and not _E164.match(fields.phone_number):
        found.append(
            FieldViolation(prefix + "phone_number", "must be in E.164 form such as +4930123456")
        )
    return found


def _has_control_characters(value: str) -> bool:
    # Control and format characters would corrupt shipping labels and hide text.
    return any(unicodedata.category(ch).startswith("C") for ch in value)


@dataclass
class Address:
    """One entry of a user's address book."""

    id: uuid.UUID
    user_id: uuid.UUID
    fields: AddressFields
    created_at: datetime
    updated_at: datetime

    @classmethod
    def create(cls, *, user_id: uuid.UUID, fields: AddressFields, now: datetime) -> Address:
        """A new address with a fresh id."""
        return cls(uuid.uuid4(), user_id, fields, now, now)

    @property
    def is_default_shipping(self) -> bool:
        """Whether this is the user's default shipping address."""
        return self.fields.is_default_shipping
