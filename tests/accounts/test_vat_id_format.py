"""EU VAT IDs are checked for their country's format and check digits before anyone asks VIES,
and a refusal says what the country's IDs look like."""

from __future__ import annotations

import pytest

from accounts.vat import EU_COUNTRIES, EXAMPLES, InvalidVATID, validate_vat_id


@pytest.mark.parametrize(
    ("raw", "country", "normalised"),
    [
        ("DE123456788", "DE", "DE123456788"),
        ("de 123 456 788", "DE", "DE123456788"),
        ("FR 44 732.829.320", "FR", "FR44732829320"),
        ("NL123456782B01", "NL", "NL123456782B01"),
        ("ATU12345675", "AT", "ATU12345675"),
        ("EL123456783", "GR", "EL123456783"),
        ("IE1234567T", "IE", "IE1234567T"),
        ("ESA12345674", "ES", "ESA12345674"),
        ("BE-0123-456-056", "BE", "BE0123456056"),
    ],
)
def test_valid_vat_ids_are_accepted_and_normalised(raw, country, normalised):
    assert validate_vat_id(raw, country) == normalised


@pytest.mark.parametrize(
    ("raw", "country"),
    [
        ("FRXX123456789", "FR"),  # well-shaped, made up: the reverse charge for free
        ("FR12345678901", "FR"),
        ("DE123456789", "DE"),
        ("ATU12345678", "AT"),
        ("NL123456789B01", "NL"),
        ("EL123456789", "GR"),
        ("ESA1234567B", "ES"),
    ],
)
def test_bad_check_digits_are_refused_naming_the_countrys_format(raw, country):
    prefix = raw[:2]
    with pytest.raises(InvalidVATID) as refused:
        validate_vat_id(raw, country)
    message = str(refused.value)
    assert f"{raw} is not a valid {prefix} VAT ID: its check digits do not match" in message
    assert f"it must look like {EXAMPLES[prefix]}" in message


@pytest.mark.parametrize(
    ("raw", "country", "message"),
    [
        ("DE12345678", "DE", "does not look like a DE VAT ID: it must look like DE123456788"),
        ("ATU1234567", "AT", "must look like ATU12345675"),
        ("NL123456789A01", "NL", "must look like NL123456782B01"),
        ("FR12", "FR", "does not look like a FR VAT ID"),
        ("FR123456782", "DE", "starts with DE, e.g. DE123456788"),  # another country's ID
        ("GR123456783", "GR", "starts with EL"),  # Greece writes EL
        ("DE123456788", "US", "only applies to a billing address in the EU"),
        ("DE123456788", "CH", "only applies to a billing address in the EU"),
    ],
)
def test_malformed_vat_ids_are_refused_with_what_is_expected(raw, country, message):
    with pytest.raises(InvalidVATID, match=message):
        validate_vat_id(raw, country)


@pytest.mark.parametrize(
    "raw",
    [
        "DE１２３４５６７８８",  # fullwidth digits, which stdnum would read as 0-9
        "DE١٢٣٤٥٦٧٨٨",  # Arabic-Indic digits
        "DE12345678８",
    ],
)
def test_only_ascii_digits_count(raw):
    with pytest.raises(InvalidVATID, match="only the letters A-Z and the digits 0-9"):
        validate_vat_id(raw, "DE")


@pytest.mark.parametrize("prefix", sorted(EXAMPLES))
def test_every_example_in_the_messages_is_itself_valid(prefix):
    country = "GR" if prefix == "EL" else prefix
    assert validate_vat_id(EXAMPLES[prefix], country) == EXAMPLES[prefix]


def test_there_is_an_example_for_every_member_state():
    assert {"GR" if prefix == "EL" else prefix for prefix in EXAMPLES} == EU_COUNTRIES
    assert len(EU_COUNTRIES) == 27
