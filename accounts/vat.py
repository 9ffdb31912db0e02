"""EU VAT identification numbers: the format each member state uses.

This checks the shape only (VIES would confirm the number is live; billing does that before
granting a reverse charge). Patterns follow the European Commission's published VIES formats.
"""

from __future__ import annotations

import re

# Prefix as written on a VAT ID (Greece uses EL, not GR) → pattern for what follows it.
_FORMATS = {
    "AT": r"U\d{8}",
    "BE": r"[01]\d{9}",
    "BG": r"\d{9,10}",
    "CY": r"\d{8}[A-Z]",
    "CZ": r"\d{8,10}",
    "DE": r"\d{9}",
    "DK": r"\d{8}",
    "EE": r"\d{9}",
    "EL": r"\d{9}",
    "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}",
    "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}",
    "HR": r"\d{11}",
    "HU": r"\d{8}",
    "IE": r"\d{7}[A-W][A-I]?|\d[A-Z+*]\d{5}[A-W]",
    "IT": r"\d{11}",
    "LT": r"\d{9}|\d{12}",
    "LU": r"\d{8}",
    "LV": r"\d{11}",
    "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}",
    "PL": r"\d{10}",
    "PT": r"\d{9}",
    "RO": r"[1-9]\d{1,9}",
    "SE": r"\d{10}01",
    "SI": r"\d{8}",
    "SK": r"\d{10}",
}
_PREFIX_FOR_COUNTRY = {"GR": "EL"}
EU_COUNTRIES = frozenset("GR" if code == "EL" else code for code in _FORMATS)


class InvalidVATID(ValueError):
    """The VAT ID does not have the shape its country uses; the message says what is expected."""


def normalise_vat_id(raw: str) -> str:
    return re.sub(r"[\s.\-]", "", raw or "").upper()


def validate_vat_id(raw: str, country: str) -> str:
    """Return the normalised VAT ID for an EU `country` (ISO 3166 alpha-2), or raise."""
    country = (country or "").upper()
    if country not in EU_COUNTRIES:
        raise InvalidVATID("An EU VAT ID only applies to a billing address in the EU.")
    prefix = _PREFIX_FOR_COUNTRY.get(country, country)
    value = normalise_vat_id(raw)
    if not value.startswith(prefix):
        raise InvalidVATID(
            f"A VAT ID for this country starts with {prefix}, e.g. {prefix}{_example(prefix)}."
        )
    if not re.fullmatch(_FORMATS[prefix], value[len(prefix) :]):
        raise InvalidVATID(
            f"This does not look like a {prefix} VAT ID; expected something like "
            f"{prefix}{_example(prefix)}."
        )
    return value


# One well-formed (made-up) example per prefix, shown in error messages.
_EXAMPLES = {
    "AT": "U12345678", "BE": "0123456789", "BG": "123456789", "CY": "12345678L",
    "CZ": "12345678", "DE": "123456789", "DK": "12345678", "EE": "123456789",
    "EL": "123456789", "ES": "A1234567B", "FI": "12345678", "FR": "AB123456789",
    "HR": "12345678901", "HU": "12345678", "IE": "1234567T", "IT": "12345678901",
    "LT": "123456789", "LU": "12345678", "LV": "12345678901", "MT": "12345678",
    "NL": "123456789B01", "PL": "1234567890", "PT": "123456789", "RO": "1234567",
    "SE": "123456789001", "SI": "12345678", "SK": "1234567890",
}  # fmt: skip


def _example(prefix: str) -> str:
    return _EXAMPLES[prefix]
