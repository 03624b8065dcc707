"""Address-book rules without I/O: country codes, field validation and masks."""

from __future__ import annotations

from services.user.domain.addresses import COUNTRY_CODES, AddressFields, address_violations


def test_every_assigned_iso_3166_alpha_2_code_and_no_other() -> None:
    assert len(COUNTRY_CODES) == 249
    assert {"DE", "US", "GB", "JP", "SS", "XK"} - COUNTRY_CODES == {"XK"}
    assert not {"UK", "EU", "XX", "ZZ"} & COUNTRY_CODES


def test_a_complete_address_has_no_violations_after_normalising() -> None:
    fields = AddressFields(
        recipient_name=" Ada ", line1="1 Main St", city="Berlin", country_code="de"
    ).normalised()
    assert fields.country_code == "DE"
    assert fields.recipient_name == "Ada"
    assert address_violations(fields) == []


def test_every_missing_required_field_is_reported_at_once() -> None:
    fields = [v.field for v in address_violations(AddressFields())]
    assert fields == [
        "address.recipient_name",
        "address.line1",
        "address.city",
        "address.country_code",
    ]


def test_merge_takes_only_the_masked_fields() -> None:
    old = AddressFields(recipient_name="A", line1="L", city="C", country_code="FR")
    new = AddressFields(city="Paris", line1="ignored")
    merged = old.merged(new, frozenset({"city"}))
    assert (merged.city, merged.line1) == ("Paris", "L")
