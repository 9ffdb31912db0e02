"""VAT by the customer's situation (DESIGN.md "Money"), to the cent."""

from __future__ import annotations

from decimal import Decimal

import pytest

from billing.vat import (
    DOMESTIC,
    EU_B2C,
    OUTSIDE_EU,
    REVERSE_CHARGE,
    quote,
    situation_for,
    vat_cents,
)

# An NVMe VPS at €4.99 a month and a dedicated server at €129.99 with a €49.00 setup fee.
CASES = [
    # country, VAT ID, treatment, rate, monthly, setup, monthly VAT, setup VAT, due today
    ("DE", "", DOMESTIC, "19", 499, 0, 95, 0, 594),
    ("DE", "DE123456789", DOMESTIC, "19", 12999, 4900, 2470, 931, 21300),
    ("FR", "", EU_B2C, "20", 499, 0, 100, 0, 599),
    ("FR", "", EU_B2C, "20", 12999, 4900, 2600, 980, 21479),
    ("FR", "FRXX123456789", REVERSE_CHARGE, "0", 499, 0, 0, 0, 499),
    ("FR", "FRXX123456789", REVERSE_CHARGE, "0", 12999, 4900, 0, 0, 17899),
    ("US", "", OUTSIDE_EU, "0", 499, 0, 0, 0, 499),
    ("US", "", OUTSIDE_EU, "0", 12999, 4900, 0, 0, 17899),
]


@pytest.mark.parametrize(
    "country,vat_id,treatment,rate,monthly,setup,monthly_vat,setup_vat,due", CASES
)
def test_quote_for_each_situation(
    country, vat_id, treatment, rate, monthly, setup, monthly_vat, setup_vat, due
):
    situation = situation_for(country, vat_id)
    assert situation.treatment == treatment
    assert situation.rate == Decimal(rate)
    assert situation.country == country
    amounts = quote(monthly_cents=monthly, setup_cents=setup, currency="EUR", situation=situation)
    assert (amounts.monthly_vat, amounts.setup_vat) == (monthly_vat, setup_vat)
    assert amounts.first_total == due
    assert amounts.monthly_gross == monthly + monthly_vat


def test_reverse_charge_note_names_the_vat_id():
    assert "FRXX123456789" in situation_for("FR", "FRXX123456789").note
    assert situation_for("DE").note == "VAT at 19%"
    assert situation_for("FI").note == "VAT at 25.5% (FI)"


def test_the_seller_country_decides_what_is_domestic(settings):
    settings.SELLER_COUNTRY = "FR"
    assert situation_for("FR", "FRXX123456789").treatment == DOMESTIC
    assert situation_for("DE").treatment == EU_B2C


@pytest.mark.parametrize(
    "net,rate,vat",
    [(950, "19", 181), (850, "19", 162), (1, "19", 0), (3, "19", 1), (1000, "25.5", 255)],
)
def test_vat_rounds_half_up_per_line(net, rate, vat):
    assert vat_cents(net, Decimal(rate)) == vat


def test_lowercase_and_empty_countries():
    assert situation_for("de").treatment == DOMESTIC
    assert situation_for("").treatment == OUTSIDE_EU
