"""Shipping profiles and tax rates between their protobuf messages and the domain (shape checks)."""

from __future__ import annotations

import re
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from google.type import money_pb2
from marketplace.order.v1 import pricing_pb2, pricing_service_pb2

from services.common.errors import FieldViolation, InvalidArgument
from services.common.field_mask import mask_paths
from services.common.identity import Caller
from services.common.limits import COUNTRY_CODES
from services.common.money import Money
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.proto_money import money_from_proto, money_to_proto
from services.order.domain.pricing import MAX_BASIS_POINTS, ShippingProfile, ShippingRate, TaxRate
from services.order.service_layer.pricing import SetTaxRate, UpdateShippingProfile

DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 300
MAX_COUNTRY_RATES = 250
PROFILE_FIELDS = frozenset({"currency_code", "default_rate", "country_rates"})


def _timestamp(at: datetime | None) -> Timestamp | None:
    if at is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def _country(value: str, field: str) -> str:
    code = value.strip().upper()
    if code not in COUNTRY_CODES:
        raise InvalidArgument(
            [FieldViolation(field, "must be an ISO 3166-1 alpha-2 code such as 'DE'")]
        )
    return code


def _amount(money: money_pb2.Money, field: str, currency: str) -> int:
    """Minor units of an amount of the profile; its currency, if sent, must be the profile's."""
    if not money.currency_code:
        money = money_pb2.Money(currency_code=currency, units=money.units, nanos=money.nanos)
    parsed = money_from_proto(money, field)
    if parsed.currency != currency:
        raise InvalidArgument(
            [FieldViolation(f"{field}.currency_code", "must be the profile's currency_code")]
        )
    return parsed.minor


def _rate(
    message: pricing_pb2.ShippingRate, field: str, currency: str, *, default: bool
) -> ShippingRate:
    if default and message.country_code:
        raise InvalidArgument(
            [FieldViolation(f"{field}.country_code", "must be empty on the default rate")]
        )
    country = "" if default else _country(message.country_code, f"{field}.country_code")
    return ShippingRate(
        country_code=country,
        flat_fee_minor=_amount(message.flat_fee, f"{field}.flat_fee", currency),
        per_item_fee_minor=_amount(message.per_item_fee, f"{field}.per_item_fee", currency),
        free_over_minor=(
            _amount(message.free_over, f"{field}.free_over", currency)
            if message.HasField("free_over")
            else None
        ),
    )


def update_shipping_profile_command(
    request: pricing_service_pb2.UpdateShippingProfileRequest, caller: Caller
) -> UpdateShippingProfile:
    """Validate an UpdateShippingProfileRequest."""
    profile = request.shipping_profile
    currency = profile.currency_code.strip().upper()
    if not re.fullmatch("[A-Z]{3}", currency):
        raise InvalidArgument(
            [
                FieldViolation(
                    "shipping_profile.currency_code", "must be an ISO 4217 code such as USD"
                )
            ]
        )
    if len(profile.country_rates) > MAX_COUNTRY_RATES:
        raise InvalidArgument(
            [FieldViolation("shipping_profile.country_rates", f"at most {MAX_COUNTRY_RATES}")]
        )
    rates = tuple(
        _rate(r, f"shipping_profile.country_rates[{i}]", currency, default=False)
        for i, r in enumerate(profile.country_rates)
    )
    if len({r.country_code for r in rates}) != len(rates):
        raise InvalidArgument(
            [FieldViolation("shipping_profile.country_rates", "name each country once")]
        )
    default = (
        _rate(profile.default_rate, "shipping_profile.default_rate", currency, default=True)
        if profile.HasField("default_rate")
        else None
    )
    fields: frozenset[str] = frozenset()
    if request.update_mask.paths:
        fields = mask_paths(request.update_mask.paths, PROFILE_FIELDS)
        if fields == PROFILE_FIELDS:
            fields = frozenset()
    return UpdateShippingProfile(caller, currency, default, rates, fields)


def _rate_to_proto(rate: ShippingRate, currency: str) -> pricing_pb2.ShippingRate:
    message = pricing_pb2.ShippingRate(
        country_code=rate.country_code,
        flat_fee=money_to_proto(Money(rate.flat_fee_minor, currency)),
        per_item_fee=money_to_proto(Money(rate.per_item_fee_minor, currency)),
    )
    if rate.free_over_minor is not None:
        message.free_over.CopyFrom(money_to_proto(Money(rate.free_over_minor, currency)))
    return message


def shipping_profile_to_proto(profile: ShippingProfile) -> pricing_pb2.ShippingProfile:
    """The wire form of a shipping profile."""
    message = pricing_pb2.ShippingProfile(
        name=f"sellers/{profile.seller_id}/shippingProfile",
        currency_code=profile.currency,
        country_rates=[_rate_to_proto(r, profile.currency) for r in profile.country_rates],
        update_time=_timestamp(profile.updated_at),
    )
    if profile.default_rate is not None:
        message.default_rate.CopyFrom(_rate_to_proto(profile.default_rate, profile.currency))
    return message


def tax_rate_to_proto(rate: TaxRate) -> pricing_pb2.TaxRate:
    """The wire form of a tax rate."""
    return pricing_pb2.TaxRate(
        name=f"taxRates/{rate.country_code}",
        country_code=rate.country_code,
        basis_points=rate.basis_points,
        update_time=_timestamp(rate.updated_at),
    )


def set_tax_rate_command(
    request: pricing_service_pb2.UpdateTaxRateRequest, caller: Caller
) -> SetTaxRate:
    """Validate an UpdateTaxRateRequest."""
    country = _country(request.tax_rate.country_code, "tax_rate.country_code")
    points = request.tax_rate.basis_points
    if not 0 <= points <= MAX_BASIS_POINTS:
        raise InvalidArgument(
            [FieldViolation("tax_rate.basis_points", f"must be 0 to {MAX_BASIS_POINTS}")]
        )
    return SetTaxRate(caller, country, points, request.allow_missing)


def delete_tax_rate_country(request: pricing_service_pb2.DeleteTaxRateRequest) -> str:
    """The country of a DeleteTaxRateRequest."""
    return _country(request.country_code, "country_code")


def tax_rates_page(request: pricing_service_pb2.ListTaxRatesRequest) -> tuple[str, int]:
    """The country the page starts after, and its size."""
    size = clamp_page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    position = decode_page_token(request.page_token)
    after = position.get("after") if position else ""
    if not isinstance(after, str):
        raise InvalidArgument([FieldViolation("page_token", "is not a token this API issued")])
    return after, size


def tax_rates_token(page: list[TaxRate], size: int) -> str:
    """The next page's token; empty after a short page."""
    return encode_page_token({"after": page[-1].country_code}) if len(page) == size else ""
