"""EU VAT identification numbers: the format each member state uses.

The format (prefix, length, characters and each member state's check digits) is python-stdnum's
(`stdnum.eu.vat`); the messages are ours. A well-formed number is not yet a registered one
(VIES would confirm that).
"""

from __future__ import annotations

import re

from stdnum.eu import vat as stdnum_vat
from stdnum.exceptions import InvalidChecksum, ValidationError

# Prefix as written on a VAT ID (Greece uses EL, not GR) → ISO country of the billing address.
_COUNTRY_FOR_PREFIX = {
    "AT": "AT", "BE": "BE", "BG": "BG", "CY": "CY", "CZ": "CZ", "DE": "DE", "DK": "DK",
    "EE": "EE", "EL": "GR", "ES": "ES", "FI": "FI", "FR": "FR", "HR": "HR", "HU": "HU",
    "IE": "IE", "IT": "IT", "LT": "LT", "LU": "LU", "LV": "LV", "MT": "MT", "NL": "NL",
    "PL": "PL", "PT": "PT", "RO": "RO", "SE": "SE", "SI": "SI", "SK": "SK",
}  # fmt: skip
_PREFIX_FOR_COUNTRY = {country: prefix for prefix, country in _COUNTRY_FOR_PREFIX.items()}
EU_COUNTRIES = frozenset(_COUNTRY_FOR_PREFIX.values())

# One made-up example per prefix that passes its country's check digits, shown in messages.
EXAMPLES = {
    "AT": "ATU12345675", "BE": "BE0123456056", "BG": "BG123456786", "CY": "CY20123456L",
    "CZ": "CZ12345679", "DE": "DE123456788", "DK": "DK12345674", "EE": "EE123456780",
    "EL": "EL123456783", "ES": "ESA12345674", "FI": "FI12345671", "FR": "FR44732829320",
    "HR": "HR12345678903", "HU": "HU12345676", "IE": "IE1234567T", "IT": "IT01234560017",
    "LT": "LT123456789011", "LU": "LU12345613", "LV": "LV41234567891", "MT": "MT12345634",
    "NL": "NL123456782B01", "PL": "PL1234567802", "PT": "PT123456789", "RO": "RO1234565",
    "SE": "SE123456789701", "SI": "SI12345679", "SK": "SK1234567807",
}  # fmt: skip


class InvalidVATID(ValueError):
    """The VAT ID does not have the shape its country uses; the message says what is expected."""


def normalise_vat_id(raw: str) -> str:
    return re.sub(r"[\s.\-/]", "", raw or "").upper()


def validate_vat_id(raw: str, country: str) -> str:
    """Return the normalised VAT ID for an EU `country` (ISO 3166 alpha-2), or raise."""
    country = (country or "").upper()
    if country not in EU_COUNTRIES:
        raise InvalidVATID("An EU VAT ID only applies to a billing address in the EU.")
    prefix = _PREFIX_FOR_COUNTRY[country]
    example = EXAMPLES[prefix]
    value = normalise_vat_id(raw)
    if not value.startswith(prefix):
        raise InvalidVATID(f"A VAT ID for this country starts with {prefix}, e.g. {example}.")
    # stdnum would read other scripts' digits (fullwidth, Arabic-Indic) as 0-9; a VAT ID has
    # only ASCII letters and digits, and is stored and sent on as such.
    if not re.fullmatch(r"[A-Z0-9+*]+", value):
        raise InvalidVATID(f"A VAT ID has only the letters A-Z and the digits 0-9, e.g. {example}.")
    try:
        stdnum_vat.validate(value)
    except InvalidChecksum:
        raise InvalidVATID(
            f"{value} is not a valid {prefix} VAT ID: its check digits do not match. Copy it "
            f"from your VAT registration; it must look like {example}."
        ) from None
    except ValidationError:
        raise InvalidVATID(
            f"This does not look like a {prefix} VAT ID: it must look like {example}."
        ) from None
    return value
