"""Shared limits: rules two services enforce on the same data, written once (pure Python).

An order's shipping address may come from the buyer's address book (user service) or be
sent inline (order service); both apply these limits, so an address the book accepts is
one an order accepts and the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping

RECIPIENT_NAME_MAX = 100
ADDRESS_LINE_MAX = 200
CITY_MAX = 100
REGION_MAX = 100
POSTAL_CODE_MAX = 20
# E.164: a plus sign and at most 15 digits.
PHONE_NUMBER_MAX = 16

# The free-text fields of an address: name -> (required, maximum length in characters).
ADDRESS_TEXT_FIELDS: Mapping[str, tuple[bool, int]] = {
    "recipient_name": (True, RECIPIENT_NAME_MAX),
    "line1": (True, ADDRESS_LINE_MAX),
    "line2": (False, ADDRESS_LINE_MAX),
    "city": (True, CITY_MAX),
    "region": (False, REGION_MAX),
}

# Every officially assigned ISO 3166-1 alpha-2 code (249 of them). Kept inline: the list
# changes a few times a decade and a dependency for it would cost more than it saves.
COUNTRY_CODES = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ
    VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
    """.split()  # noqa: SIM905 - a block of codes reads and diffs better than 249 literals
)
